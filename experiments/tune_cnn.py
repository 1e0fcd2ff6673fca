"""Does a hyperparameter search find a better CNN than the course's Listing 1 on Fashion-MNIST,
under the same training budget?

1. Search: keras-tuner (Hyperband by default) explores `kcnn.tuning.CNNHyperModel` -- conv
   blocks, filters per block, kernel size, batch norm, dropout, dense width, optimizer, learning
   rate, weight decay, augmentation -- on the training and validation subsets pooled, from which
   `kcnn.data` holds out (stratified) as many images as the validation subset has to score each
   trial: the search trains on as many images as the comparison. The test subset is never used
   by the search.
2. Comparison: the best configuration found and `simple_cnn` (Listing 1, the space's default,
   Adam at 1e-3) are trained from scratch on the same training subset for the same number of
   epochs, with ``--seeds`` seeds each (`experiments/common.py`'s ``run``), and measured on the
   test subset: accuracy (mean ± std), trainable parameters, training time.

Writes ``report.md`` (command, hardware, time, tables, verdict) and ``results.json`` in
``--out``; the search itself (its results table, best model and hyperparameters) lives in
``--out/search/<project>`` and resumes when the command is run again.

Example:
    python experiments/tune_cnn.py --quick            # a few minutes on 2 CPU cores
    python experiments/tune_cnn.py --seeds 3          # the full search and comparison
"""

from __future__ import annotations

import os

from common import (
    ACCURACY_FLOOR,
    add_plan_option,
    dataset_splits,
    fill_from_plan,
    parser,
    pct,
    positive,
    run,
    values,
)

QUICK = dict(train_size=4000, test_size=2000, epochs=3, max_trials=8, seeds=1)
FULL = dict(train_size=None, test_size=None, epochs=10, max_trials=30, seeds=3)
VALIDATION_SIZE = 1000  # images of the comparison's validation subset (curves only)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "tune_cnn")
    result.add_argument(
        "--tuner",
        choices=("random", "hyperband", "bayesian"),
        default="hyperband",
        help="default hyperband",
    )
    add_plan_option(result, "--max-trials", QUICK, FULL, "trials of the search", type=int)
    add_plan_option(
        result,
        "--epochs",
        QUICK,
        FULL,
        "most epochs of a trial and epochs of the comparison",
        type=int,
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("epochs", "max_trials", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    return args


def search(args, splits, epochs: int, max_trials: int):
    """Run (or resume) the search on the training subset; returns the hypermodel and result."""
    import numpy as np

    from kcnn import tuning

    pooled = tuple(np.concatenate([a, b]) for a, b in zip(splits.train, splits.validation))
    held_out = len(splits.validation[1]) / len(pooled[1])
    data = tuning.SearchData(pooled, batch_size=128, validation_split=held_out, seed=0)
    hypermodel = tuning.CNNHyperModel(data.info, precision=args.precision)
    mode = "quick" if args.quick else "full"
    result = tuning.search(
        hypermodel,
        data,
        tuner=args.tuner,
        max_trials=max_trials,
        epochs=epochs,
        patience=3,
        directory=os.path.join(args.out, "search"),
        project_name=f"{args.dataset}_{args.tuner}_{mode}_{epochs}e_{max_trials}t",
        verbose=0,
    )
    return hypermodel, result


def compare(args, splits, hypermodel, hp, epochs: int, seeds: int) -> dict:
    """Train the best configuration ``hp`` and simple_cnn ``seeds`` times each for ``epochs``."""
    model_kwargs = hypermodel.model_arguments(hp)
    training = hypermodel.training_arguments(hp)
    augment = None if training["augment"] == "none" else training["augment"]
    trainings = {
        "best found": lambda seed: run(
            "configurable_cnn",
            splits,
            epochs,
            seed,
            model_kwargs=model_kwargs,
            augment=augment,
            precision=args.precision,
            optimizer=training["optimizer"],
            learning_rate=training["learning_rate"],
            weight_decay=training["weight_decay"],
        ),
        "simple_cnn": lambda seed: run(
            "simple_cnn", splits, epochs, seed, precision=args.precision
        ),
    }
    records = {name: [] for name in trainings}
    for seed in range(seeds):
        # Alternate which model trains first, so neither always pays the process's warm-up.
        for name in sorted(trainings, reverse=seed % 2 == 1):
            records[name].append(trainings[name](seed))
        print(
            f"seed {seed}: best found {records['best found'][-1]['test_accuracy']:.4f}, "
            f"simple_cnn {records['simple_cnn'][-1]['test_accuracy']:.4f}",
            flush=True,
        )
    return records


def configuration(hypermodel, hp) -> dict:
    """The builder's and the training arguments of ``hp`` (the space's defaults where it has no
    value)."""
    return {**hypermodel.model_arguments(hp), **hypermodel.training_arguments(hp)}


def describe(hypermodel, hp) -> str:
    """A configuration in one line of builder and training arguments."""
    arguments = configuration(hypermodel, hp)
    return ", ".join(
        f"{k}={v:.2g}" if isinstance(v, float) else f"{k}={v}" for k, v in arguments.items()
    )


def verdict(records, found_default: bool) -> tuple:
    """(holds, evidence) for "the search beats simple_cnn under the same budget"; it does not
    hold when the best configuration found is the space's default, simple_cnn itself."""
    from kcnn.report import compare, difference_and_spread

    best = values(records["best found"], "test_accuracy")
    baseline = values(records["simple_cnn"], "test_accuracy")
    difference, spread = difference_and_spread("compare", best, baseline)
    margin = max(ACCURACY_FLOOR, spread)
    holds = compare(best, baseline, ACCURACY_FLOOR)
    evidence = (
        f"test accuracy {pct(best, 2)} % vs {pct(baseline, 2)} % "
        f"({100 * difference:+.2f} points, margin {100 * margin:.2f}) over "
        f"{len(best)} seed(s)"
    )
    if found_default:
        return False, (
            "the best configuration found is the space's default, simple_cnn "
            f"itself; retrained, {evidence}"
        )
    return holds, evidence


def keras_tuner_hyperparameters(result):
    """The best trial's values as a ``keras_tuner.HyperParameters`` of fixed values."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in result.best_hyperparameters.items():
        hp.Fixed(name, value)
    return hp


def main(argv=None):
    args = parse_args(argv)
    import keras_tuner

    from kcnn.report import Report, mean_std

    report = Report(f"Hyperparameter search vs the course's CNN ({args.dataset})")
    splits = dataset_splits(
        args.dataset,
        args.train_size,
        VALIDATION_SIZE,
        args.test_size,
        data_dir=args.data_dir,
    )
    print(splits.describe(), flush=True)

    hypermodel, result = search(args, splits, args.epochs, args.max_trials)
    # The trials' own times: a resumed search reports the time its trials took when they ran.
    search_seconds = sum(row["seconds"] or 0.0 for row in result.trials)
    best = keras_tuner_hyperparameters(result)
    found_default = configuration(hypermodel, best) == configuration(
        hypermodel, keras_tuner.HyperParameters()
    )
    print(
        f"search: {len(result.trials)} trials ({search_seconds:.0f} s of training), best "
        f"{result.objective} {result.best_score:.4f}",
        flush=True,
    )
    records = compare(args, splits, hypermodel, best, args.epochs, args.seeds)

    statuses = [row["status"] for row in result.trials]
    report.text(
        f"{splits.describe()}. The search ({args.tuner}, at most {args.max_trials} trials of "
        f"at most {args.epochs} epochs, early stopping after 3 epochs without progress) trained "
        f"each trial on {len(splits.train[1]):,} images and scored it on "
        f"{len(splits.validation[1]):,} held out from the training and validation subsets "
        f"pooled; its table of every trial is `{result.results_markdown}`. The comparison trains "
        f"each model from scratch on the whole training subset for {args.epochs} epochs (batch "
        "128) and measures it on the test subset, which the search never saw."
    )
    if args.quick:
        report.text(
            f"Quick mode: a subset of {splits.name}. With the quick defaults "
            f"({QUICK['max_trials']} trials of at most {QUICK['epochs']} epochs, one seed) it is "
            "a smoke test of the "
            "script whose verdict says nothing about the course; run without `--quick` for the "
            "full search and comparison."
        )
    report.table(
        "Search",
        [
            {
                "tuner": args.tuner,
                "trials": len(statuses),
                "completed": statuses.count("COMPLETED"),
                "failed": sum(s in ("FAILED", "INVALID") for s in statuses),
                "best validation accuracy": result.best_score,
                "time of the trials (s)": round(search_seconds, 1),
            }
        ],
    )
    rows = []
    for name, runs in records.items():
        rows.append(
            {
                "model": name,
                "configuration": describe(hypermodel, best)
                if name == "best found"
                else "Listing 1: 32-64 filters, dense 128, dropout 0.5, Adam 1e-3",
                "parameters": runs[0]["params"],
                "test accuracy (%)": pct(values(runs, "test_accuracy"), 2),
                "training time (s)": mean_std([sum(r["epoch_seconds"]) for r in runs], 1),
                "images/s": mean_std([r["images_per_second"] for r in runs], 0),
            }
        )
    report.table(f"Same budget: {args.epochs} epochs, {args.seeds} seed(s)", rows)
    holds, evidence = verdict(records, found_default)
    report.claim(
        "A keras-tuner search over the CNN space finds a model that beats the course's "
        "Listing 1 (simple_cnn) under the same training budget",
        holds,
        evidence,
    )
    path = report.write(args.out)
    print(f"report: {path}")


if __name__ == "__main__":
    main()
