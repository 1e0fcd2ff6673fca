"""Do the regularisation techniques of the course's Module 3 do what it says?

The course (Module 3, "Techniques avancées", and chapter 07, section 10.2) claims:

- batch normalization "stabilises training and accelerates convergence", "allows higher
  learning rates" and "acts as a regulariser";
- dropout, L2 weight decay (lambda = 1e-4), data augmentation and DropPath (stochastic depth)
  prevent over-fitting (the course recommends dropout 0.5, L2 1e-4 and augmentation).

Each technique is added alone to the same baseline, the course's Listing 1 CNN (`simple_cnn`,
built by `configurable_cnn`) without its dropout, trained with Adam at the course's learning rate
1e-3 on a fixed training subset small enough to over-fit (``--train-size``). Batch normalization
is also compared at higher learning rates (``--high-lr``: 10x and 30x). DropPath needs residual
branches: it is measured on the course's TinyResNet (Listing 4, ``--resnet-width`` narrower),
against the same ResNet without it. For every configuration and seed the script measures the
test accuracy, the training accuracy in inference mode (no dropout, no augmentation), their
difference -- the generalisation gap -- the validation accuracy after each epoch, and the time
per epoch. A difference counts only beyond the seeds' spread (`kcnn.report.compare`).

Writes ``report.md`` (command, hardware, time, table, one verdict per claim), ``results.json``
(every run), ``regularization.png`` (test accuracy and gap per configuration),
``batch_norm.png`` (validation accuracy and training loss per epoch, with and without batch
normalization, at each learning rate) and ``overfitting.png`` (validation loss per epoch of
each group).

Example:
    python experiments/regularization.py --quick
    python experiments/regularization.py            # full: 23 min on 2 CPU cores; it resumes
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time

from measures import first_epoch_accuracy, largest_drop

from common import (
    ACCURACY_FLOOR,
    RunJournal,
    add_journal_option,
    add_plan_option,
    dataset_splits,
    epochs_to,
    fill_from_plan,
    mean_curve,
    open_report,
    parser,
    pct,
    positive,
    run,
    values,
    write_report,
)

CNN = "configurable_cnn"
RESNET = "tiny_resnet"
QUICK = dict(
    train_size=1000,
    validation_size=500,
    test_size=2000,
    epochs=3,
    resnet_epochs=2,
    seeds=1,
    drop_path=(0.2,),
    high_lr=(1e-2,),
)
# 20 epochs, 3 seeds: over-fitting grows with the epochs, so an effect of L2 on the gap has
# more room to show than in the 12 epochs x 2 seeds where it was inconclusive
FULL = dict(
    train_size=4000,
    validation_size=1000,
    test_size=None,
    epochs=20,
    resnet_epochs=8,
    seeds=3,
    drop_path=(0.2,),
    high_lr=(1e-2, 3e-2),
)
TARGET_ACCURACY = 0.85  # "epochs to 85 % validation accuracy" measures the speed of convergence


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One way of training: ``group`` is the technique it tests."""

    name: str
    group: str
    model: str
    model_kwargs: dict
    learning_rate: float = 1e-3
    l2: float = 0.0
    augment: str | None = None


def configurations(args) -> list[Configuration]:
    """Every configuration the run trains, baseline first."""
    base = {"dropout": 0.0}
    bn = {"dropout": 0.0, "batch_norm": True}
    resnet = {"width": args.resnet_width}
    result = [Configuration("baseline (no regularisation)", "baseline", CNN, base)]
    result += [
        Configuration(f"dropout {rate}", "dropout", CNN, {"dropout": rate})
        for rate in (0.2, 0.5, 0.8)
    ]
    result += [Configuration(f"L2 {l2:g}", "L2", CNN, base, l2=l2) for l2 in (1e-4, 1e-3)]
    result += [
        Configuration(f"augmentation {preset}", "augmentation", CNN, base, augment=preset)
        for preset in ("light", "standard")
    ]
    result.append(Configuration("batch norm", "batch norm", CNN, bn))
    for high in args.high_lr:
        result += [
            Configuration(f"baseline, lr {high:g}", "batch norm", CNN, base, learning_rate=high),
            Configuration(f"batch norm, lr {high:g}", "batch norm", CNN, bn, learning_rate=high),
        ]
    result.append(Configuration("ResNet", "DropPath", RESNET, resnet))
    result += [
        Configuration(
            f"ResNet, DropPath {rate}", "DropPath", RESNET, {**resnet, "drop_path_rate": rate}
        )
        for rate in args.drop_path
    ]
    return result


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "regularization")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "CNN epochs", type=int)
    add_plan_option(result, "--resnet-epochs", QUICK, FULL, "ResNet epochs", type=int)
    add_plan_option(
        result,
        "--high-lr",
        QUICK,
        FULL,
        "the high learning rates of the batch-norm comparison",
        type=float,
        nargs="+",
    )
    add_plan_option(
        result,
        "--drop-path",
        QUICK,
        FULL,
        "DropPath rates of the last block",
        type=float,
        nargs="+",
    )
    result.add_argument(
        "--resnet-width",
        type=float,
        default=0.25,
        help="TinyResNet width multiplier (default 0.25: 16-32-64 channels)",
    )
    result.add_argument(
        "--only",
        nargs="+",
        help="run only these groups (baseline, dropout, L2, augmentation, "
        "'batch norm', DropPath); the baseline always runs",
    )
    add_journal_option(result)
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "resnet_epochs", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    return args


def summarise(configs, records) -> list[dict]:
    """One row per configuration: mean ± std over seeds."""
    rows = []
    for config in configs:
        runs = records[config.name]
        seconds = [s for r in runs for s in r["epoch_seconds"][1:]]
        rows.append(
            {
                "technique": config.group,
                "configuration": config.name,
                "model": config.model,
                "lr": config.learning_rate,
                "parameters": runs[0]["params"],
                "test accuracy %": pct(values(runs, "test_accuracy")),
                "train accuracy %": pct(values(runs, "train_accuracy")),
                "gap (points)": pct(values(runs, "gap")),
                "val. acc. epoch 1 %": pct(
                    [r["val_accuracy"][0] for r in runs if r["val_accuracy"]]
                ),
                f"epochs to {TARGET_ACCURACY:.0%} val.": _epochs_to(runs),
                "s/epoch": round(sum(seconds) / len(seconds), 1) if seconds else None,
                "diverged": f"{sum(r['diverged'] for r in runs)}/{len(runs)}",
            }
        )
    return rows


def _epochs_to(runs) -> str:
    found = [epochs_to(r["val_accuracy"], TARGET_ACCURACY) for r in runs]
    return ", ".join("never" if e is None else str(e) for e in found)


def _evidence(records, a: str, b: str, key: str) -> str:
    return f"{a} {pct(values(records[a], key))} vs {b} {pct(values(records[b], key))}"


def claims(configs, records, args) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for each claim whose configurations ran."""
    from kcnn.report import compare

    names = {c.name for c in configs}
    base, bn = "baseline (no regularisation)", "batch norm"
    found = []

    def test_better(claim, a, b, floor=ACCURACY_FLOOR):
        if {a, b} <= names:
            verdict = compare(
                values(records[a], "test_accuracy"), values(records[b], "test_accuracy"), floor
            )
            found.append((claim, verdict, _evidence(records, a, b, "test_accuracy") + " test"))

    def gap_smaller(claim, a, b):
        if {a, b} <= names:
            verdict = compare(values(records[b], "gap"), values(records[a], "gap"), ACCURACY_FLOOR)
            found.append((claim, verdict, _evidence(records, a, b, "gap") + " points of gap"))

    if {base, bn} <= names:
        first = {n: first_epoch_accuracy(records[n]) for n in (bn, base)}
        found.append(
            (
                "Batch normalization accelerates convergence (validation accuracy after one epoch, "
                "lr 1e-3)",
                compare(first[bn], first[base], ACCURACY_FLOOR),
                f"{bn} {pct(first[bn])} vs {base} {pct(first[base])} %; epochs to "
                f"{TARGET_ACCURACY:.0%}: {_epochs_to(records[bn])} vs {_epochs_to(records[base])}",
            )
        )
    for high in args.high_lr:
        base_high, bn_high = f"baseline, lr {high:g}", f"batch norm, lr {high:g}"
        test_better(
            f"Batch normalization allows a higher learning rate ({high:g}): better test "
            "accuracy than without it",
            bn_high,
            base_high,
        )
        if {base_high, bn_high} <= names:
            falls = {n: largest_drop(records[n]) for n in (bn_high, base_high)}
            found.append(
                (
                    f"Batch normalization stabilises training at lr {high:g} (largest fall of "
                    "validation accuracy below its best earlier epoch)",
                    compare(
                        [-v for v in falls[bn_high]], [-v for v in falls[base_high]], ACCURACY_FLOOR
                    ),
                    f"{bn_high} {pct(falls[bn_high])} vs {base_high} "
                    f"{pct(falls[base_high])} points; "
                    f"diverged {sum(r['diverged'] for r in records[bn_high])} vs "
                    f"{sum(r['diverged'] for r in records[base_high])} runs",
                )
            )
    gap_smaller("Batch normalization acts as a regulariser (smaller gap)", bn, base)
    for name, technique in (
        ("dropout 0.5", "Dropout 0.5"),
        ("L2 0.0001", "L2 1e-4"),
        ("augmentation standard", "Data augmentation (the course's Listing 6)"),
    ):
        gap_smaller(f"{technique} prevents over-fitting (smaller gap)", name, base)
        test_better(f"{technique} improves test accuracy", name, base)
    if args.drop_path:
        dropped = f"ResNet, DropPath {max(args.drop_path)}"
        gap_smaller(
            f"DropPath {max(args.drop_path)} prevents over-fitting of the ResNet (smaller gap)",
            dropped,
            "ResNet",
        )
        test_better(
            f"DropPath {max(args.drop_path)} improves the ResNet's test accuracy", dropped, "ResNet"
        )
    return found


def plot_summary(configs, records, path) -> str:
    """Two bar charts: test accuracy and generalisation gap per configuration (mean ± std)."""
    import numpy as np
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    names = [c.name for c in configs]
    figure = Figure(figsize=(11, 0.45 * len(names) + 1.5))
    for column, (key, title) in enumerate(
        (("test_accuracy", "test accuracy (%)"), ("gap", "train - test accuracy (points)"))
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        means = [100 * np.mean(values(records[n], key)) for n in names]
        stds = [100 * np.std(values(records[n], key)) for n in names]
        axis.barh(range(len(names)), means, xerr=stds, color=[_colour(c.group) for c in configs])
        axis.set_yticks(range(len(names)))
        axis.set_yticklabels(names if column == 0 else [], fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel(title)
        if key == "test_accuracy":
            low = min(m - s for m, s in zip(means, stds))
            axis.set_xlim(max(0, low - 2), 100)
    figure.tight_layout()
    return save_figure(figure, path)


def _colour(group: str) -> str:
    palette = {
        "baseline": "grey",
        "dropout": "tab:blue",
        "L2": "tab:orange",
        "augmentation": "tab:green",
        "batch norm": "tab:red",
        "DropPath": "tab:purple",
    }
    return palette.get(group, "black")


def plot_batch_norm(configs, records, path) -> str | None:
    """Validation accuracy and training loss per epoch, with and without batch normalization."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    chosen = [c for c in configs if c.group == "batch norm" or c.group == "baseline"]
    if len(chosen) < 2:
        return None
    figure = Figure(figsize=(10, 4))
    for column, (key, label) in enumerate(
        (("val_accuracy", "validation accuracy"), ("loss", "training loss"))
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        rates = sorted({c.learning_rate for c in chosen})
        for config in chosen:
            curve = mean_curve(records[config.name], key)
            style = ("-", "--", ":", "-.")[rates.index(config.learning_rate) % 4]
            colour = "tab:red" if config.model_kwargs.get("batch_norm") else "grey"
            axis.plot(range(1, len(curve) + 1), curve, style, color=colour, label=config.name)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        if key == "loss":
            axis.set_yscale("log")
        axis.legend(fontsize=7)
    figure.suptitle("batch normalization (mean over seeds)", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_overfitting(configs, records, path) -> str:
    """Validation loss per epoch, one panel per technique, the baseline in each."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    groups = [g for g in dict.fromkeys(c.group for c in configs) if g != "baseline"]
    columns = min(3, max(1, len(groups)))
    rows = max(1, -(-len(groups) // columns))
    figure = Figure(figsize=(4.5 * columns, 3.4 * rows))
    for index, group in enumerate(groups):
        axis = figure.add_subplot(rows, columns, index + 1)
        for config in configs:
            reference = group != "DropPath" and config.group == "baseline"
            if config.group == group or reference:
                curve = mean_curve(records[config.name], "val_loss")
                axis.plot(
                    range(1, len(curve) + 1),
                    curve,
                    label=config.name,
                    color="grey" if reference else None,
                )
        axis.set_title(group, fontsize=9)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation loss")
        axis.legend(fontsize=6)
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Regularisation: batch norm, dropout, L2, augmentation, DropPath")

    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    configs = configurations(args)
    if args.only:
        configs = [c for c in configs if c.group in args.only or c.group == "baseline"]
    records = {c.name: [] for c in configs}
    start = time.perf_counter()
    # a configuration's name says its rates, so the options choosing them do not change a run
    journal = RunJournal(args, exclude=("only", "high_lr", "drop_path"))
    journal.start(args.seeds, records)
    for seed in range(args.seeds):
        for config in configs:
            epochs = args.resnet_epochs if config.model == RESNET else args.epochs
            record = journal.run(
                config.name,
                seed,
                functools.partial(
                    run,
                    config.model,
                    splits,
                    epochs,
                    seed,
                    model_kwargs=config.model_kwargs,
                    augment=config.augment,
                    precision=args.precision,
                    learning_rate=config.learning_rate,
                    l2=config.l2,
                ),
            )
            records[config.name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {config.name:32s} test "
                f"{record['test_accuracy']:.4f} train {record['train_accuracy']:.4f} gap "
                f"{record['gap']:+.4f} ({record['seconds']:.0f} s"
                f"{', diverged' if record['diverged'] else ''})",
                flush=True,
            )

    rows = summarise(configs, records)
    for claim, verdict, evidence in claims(configs, records, args):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run. CIFAR-10 is not on this "
        "machine (no network), so the experiment runs on the dataset given by `--dataset`.\n\n"
        f"Baseline: `{CNN}` with the defaults of the course's Listing 1 (filters 32-64, "
        f"Dense 128) and dropout 0; Adam, learning rate 1e-3 unless the table says otherwise, "
        f"batch 128, {args.epochs} epochs ({args.resnet_epochs} for `{RESNET}`, width "
        f"{args.resnet_width}); precision `{args.precision}`; seeds 0-{args.seeds - 1} "
        f"(mean ± std over seeds). Train accuracy is measured in inference mode on the training "
        "subset; gap = train - test accuracy. `s/epoch` excludes the first epoch (tracing) and "
        "depends on the load of the shared CPU (see the load average above)."
    )
    report.text(journal.describe())
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Test accuracy and generalisation gap", rows)
    figures = [
        (
            plot_summary(configs, records, os.path.join(args.out, "regularization.png")),
            "test accuracy and train - test gap per configuration (mean ± std over seeds)",
        ),
        (
            plot_batch_norm(configs, records, os.path.join(args.out, "batch_norm.png")),
            "validation accuracy and training loss per epoch, with and without batch norm",
        ),
        (
            plot_overfitting(configs, records, os.path.join(args.out, "overfitting.png")),
            "validation loss per epoch: over-fitting shows as a rising curve",
        ),
    ]
    for path, caption in figures:
        if path:
            report.figure(path, caption)
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
