"""Dropout and its variants: rates 0.2 / 0.5 / 0.8, spatial dropout, DropPath and targeted
dropout, and whether a network trained with targeted dropout loses less when it is pruned.

The course (Module 3, "Dropout"): dropout "deactivates a random share of the neurons during
training, forcing the network to learn redundant representations", with a simulation of rates
20 %, 50 % and 80 %; its variants: DropPath "removes whole layers (stochastic depth)" (Huang et
al., ECCV 2016), spatial dropout "removes whole channels in CNNs" (Tompson et al., CVPR 2015,
whose claim is that element-wise dropout regularises convolution stages little, their
neighbouring activations being strongly correlated, and that spatial dropout works better there),
targeted dropout "chooses which weights to remove" (Gomez et al. 2019, whose claim is that the
networks it trains lose less accuracy when the weights it targeted, the smallest, are pruned
afterwards).

Every run trains, Adam 1e-3, on the same fixed subsets: `configurable_cnn` (Listing 1's stages,
Dense 128) without dropout, with dropout ``--rates`` before the classifier, with
``spatial_dropout=`` and with ``element_dropout=`` (the same rate) at the end of every
convolution stage, and with ``dropout_kind="targeted"`` (a
`kcnn.layers.TargetedDropout` classifier), once for each pruning level with that share of each
unit's weights targeted (``targeted_fraction=``: the paper's network is robust to pruning the
share it targeted, not more); and a ResNet (kcnn's generic `resnet`, CIFAR stem; the full
mode's is the course's TinyResNet, width 0.25) with and without ``drop_path_rate=``. Measured:
the training curves, the test accuracy, the generalisation gap (train accuracy in inference mode -
test accuracy), and for targeted against standard dropout at the same rate, the test accuracy
after setting 50 %, 75 % and 90 % of the classifier's weights (the layer targeted dropout acts
on) to zero by magnitude; the claim at each level is judged on the targeted network trained
for it. A difference counts only beyond the seeds' spread
(`kcnn.report.compare`); the claim of no effect (element-wise dropout's) holds when the seeds
rule out an effect beyond the floor (`kcnn.report.no_worse`).

Writes ``report.md``, ``results.json``, ``curves.png`` (training loss and validation accuracy
per epoch for each dropout rate) and ``pruning.png`` (test accuracy against the share of the
classifier's weights pruned).

Example:
    python experiments/dropout_variants.py --quick
    python experiments/dropout_variants.py --seeds 3
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from measures import PRUNING_LEVELS, pruned_accuracy

from common import (
    ACCURACY_FLOOR,
    add_plan_option,
    dataset_splits,
    fill_from_plan,
    mean_curve,
    open_report,
    parser,
    pct,
    positive,
    run,
    run_progress,
    values,
    write_report,
)

CNN = "configurable_cnn"
RESNET = "resnet"  # the generic ResNet: FULL's depths (2, 2, 2) are the course's TinyResNet
PRUNED_LAYER = "logits"  # the Dense layer TargetedDropout replaces in configurable_cnn
QUICK = dict(
    train_size=300,
    validation_size=100,
    test_size=300,
    epochs=1,
    seeds=1,
    rates=(0.5,),
    stage_dropout=0.2,  # the rate of spatial and of element-wise dropout in the stages
    drop_path=0.2,
    targeted=0.5,
    filters=(8, 16),
    resnet_width=0.125,
    resnet_depths=(1, 1),
)
FULL = dict(
    train_size=4000,
    validation_size=1000,
    test_size=None,
    epochs=12,
    seeds=3,
    rates=(0.2, 0.5, 0.8),
    stage_dropout=0.2,
    drop_path=0.2,
    targeted=0.5,
    filters=(32, 64),
    resnet_width=0.25,
    resnet_depths=(2, 2, 2),
)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "dropout_variants")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_plan_option(
        result, "--rates", QUICK, FULL, "dropout rates before the classifier", type=float, nargs="+"
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    if any(not 0 < rate < 1 for rate in args.rates):
        raise ValueError(f"--rates must be in (0, 1), got {args.rates}")
    return args


def configurations(args) -> dict:
    """``{name: (model, builder arguments)}``, the baseline (no dropout) first."""
    cnn = {"filters": tuple(args.filters), "dropout": 0.0}
    resnet = {"depths": tuple(args.resnet_depths), "stem": "cifar", "width": args.resnet_width}
    result = {"no dropout": (CNN, cnn)}
    result.update({f"dropout {rate:g}": (CNN, {**cnn, "dropout": rate}) for rate in args.rates})
    for kind in ("spatial", "element"):
        result[f"{kind} dropout {args.stage_dropout:g}"] = (
            CNN,
            {**cnn, f"{kind}_dropout": args.stage_dropout},
        )
    result[f"dropout {args.targeted:g} (for pruning)"] = (CNN, {**cnn, "dropout": args.targeted})
    for level in PRUNING_LEVELS:
        result[targeted_name(args, level)] = (
            CNN,
            {
                **cnn,
                "dropout": args.targeted,
                "dropout_kind": "targeted",
                "targeted_fraction": level,
            },
        )
    result["ResNet"] = (RESNET, resnet)
    result[f"ResNet, DropPath {args.drop_path:g}"] = (
        RESNET,
        {**resnet, "drop_path_rate": args.drop_path},
    )
    if args.targeted in args.rates:  # the standard run at the targeted rate is already there
        del result[f"dropout {args.targeted:g} (for pruning)"]
    return result


def targeted_name(args, level: float) -> str:
    """The targeted dropout network trained to be pruned at ``level``."""
    return f"targeted dropout {args.targeted:g}, {level:.0%} targeted"


def pruned_names(args) -> list[str]:
    """The networks whose classifier is pruned: standard dropout, then targeted."""
    return [
        standard_at_targeted_rate(args),
        *(targeted_name(args, level) for level in PRUNING_LEVELS),
    ]


def standard_at_targeted_rate(args) -> str:
    name = f"dropout {args.targeted:g}"
    return name if args.targeted in args.rates else f"{name} (for pruning)"


def train_all(args, splits, configs) -> dict:
    to_prune = set(pruned_names(args))
    records = {name: [] for name in configs}
    start = time.perf_counter()
    progress = run_progress(args.seeds, configs)
    for seed in range(args.seeds):
        for name, (model, kwargs) in configs.items():
            progress.step(f"seed {seed}, {name}")
            record = run(
                model,
                splits,
                args.epochs,
                seed,
                model_kwargs=kwargs,
                precision=args.precision,
                keep_model=name in to_prune,
            )
            if name in to_prune:
                accuracies = pruned_accuracy(
                    record.pop("model"), *splits.test, layer_names=[PRUNED_LAYER]
                )
                record["pruned_accuracy"] = {f"{k:g}": v for k, v in accuracies.items()}
            records[name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {name:28s} test "
                f"{record['test_accuracy']:.4f} gap {record['gap']:+.4f}",
                flush=True,
            )
    return records


def pruned(runs, level: float) -> list[float]:
    return [r["pruned_accuracy"][f"{level:g}"] for r in runs]


def summarise(configs, records) -> list[dict]:
    rows = []
    for name, (model, _) in configs.items():
        runs = records[name]
        row = {
            "configuration": name,
            "model": model,
            "parameters": runs[0]["params"],
            "test accuracy %": pct(values(runs, "test_accuracy")),
            "train accuracy %": pct(values(runs, "train_accuracy")),
            "gap (points)": pct(values(runs, "gap")),
        }
        for level in PRUNING_LEVELS:
            row[f"acc. {level:.0%} pruned %"] = (
                pct(pruned(runs, level)) if "pruned_accuracy" in runs[0] else "-"
            )
        rows.append(row)
    return rows


def claims(args, records) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for each variant against its baseline."""
    from kcnn.report import compare, no_worse

    def gaps(a, b):
        return (
            f"gap {a} {pct(values(records[a], 'gap'))} vs {b} "
            f"{pct(values(records[b], 'gap'))} points"
        )

    def gap_smaller(claim, a, b):
        return (
            claim,
            compare(values(records[b], "gap"), values(records[a], "gap"), ACCURACY_FLOOR),
            gaps(a, b),
        )

    found = [
        gap_smaller(
            f"Dropout {rate:g} prevents over-fitting (smaller gap than without)",
            f"dropout {rate:g}",
            "no dropout",
        )
        for rate in args.rates
    ]
    if len(args.rates) > 1:
        low, high = f"dropout {min(args.rates):g}", f"dropout {max(args.rates):g}"
        found.append(gap_smaller("The higher the dropout rate, the smaller the gap", high, low))
    spatial = f"spatial dropout {args.stage_dropout:g}"
    element = f"element dropout {args.stage_dropout:g}"
    found.append(
        gap_smaller(
            f"Spatial dropout {args.stage_dropout:g} in the convolution stages prevents "
            "over-fitting",
            spatial,
            "no dropout",
        )
    )
    found.append(
        (
            f"Element-wise dropout {args.stage_dropout:g} in the convolution stages, whose "
            "neighbouring activations are strongly correlated, regularises little: the gap is "
            "no smaller than without dropout (Tompson et al., CVPR 2015)",
            no_worse(
                values(records[element], "gap"),
                values(records["no dropout"], "gap"),
                ACCURACY_FLOOR,
            ),
            gaps(element, "no dropout"),
        )
    )
    found.append(
        gap_smaller(
            "Spatial dropout regularises the convolution stages better than element-wise "
            f"dropout at the same rate {args.stage_dropout:g} (Tompson et al., CVPR 2015)",
            spatial,
            element,
        )
    )
    found.append(
        gap_smaller(
            f"DropPath {args.drop_path:g} prevents the ResNet's over-fitting",
            f"ResNet, DropPath {args.drop_path:g}",
            "ResNet",
        )
    )
    standard = standard_at_targeted_rate(args)
    for level in PRUNING_LEVELS:
        targeted = targeted_name(args, level)
        lost = {
            n: [a - p for a, p in zip(pruned(records[n], 0.0), pruned(records[n], level))]
            for n in (targeted, standard)
        }
        found.append(
            (
                f"Targeted dropout's network, {level:.0%} of each unit's weights targeted, loses "
                f"less accuracy than standard dropout's when those {level:.0%} of the "
                "classifier's weights are pruned (Gomez et al. 2019)",
                compare(lost[standard], lost[targeted], ACCURACY_FLOOR),
                f"targeted loses {pct(lost[targeted])}, standard {pct(lost[standard])} points "
                f"(to {pct(pruned(records[targeted], level))} and "
                f"{pct(pruned(records[standard], level))} %)",
            )
        )
    return found


def plot_curves(args, records, path) -> str:
    """Training loss and validation accuracy per epoch, without dropout and at each rate: the
    course's 20 / 50 / 80 % simulation as training curves."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    names = ["no dropout", *(f"dropout {rate:g}" for rate in args.rates)]
    figure = Figure(figsize=(10, 4))
    for column, (key, title) in enumerate(
        (("loss", "training loss"), ("val_accuracy", "validation accuracy"))
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        for name in names:
            curve = mean_curve(records[name], key)
            axis.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_ylabel(f"{title} (mean over seeds)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_pruning(args, records, path) -> str:
    """Test accuracy against the share of the classifier's weights pruned, standard dropout
    against targeted dropout with each share targeted."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    levels = (0.0, *PRUNING_LEVELS)
    for name in pruned_names(args):
        axis.plot(
            [100 * v for v in levels],
            [100 * np.mean(pruned(records[name], level)) for level in levels],
            marker="o",
            label=name,
        )
    axis.set_xlabel(f"weights of `{PRUNED_LAYER}` pruned (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Dropout variants: rates, spatial, DropPath, targeted")
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    configs = configurations(args)
    records = train_all(args, splits, configs)
    for claim, verdict, evidence in claims(args, records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run.\n\n"
        f"Models: `{CNN}` with filters {tuple(args.filters)} and Dense 128; `{RESNET}` with "
        f"depths {tuple(args.resnet_depths)}, CIFAR stem, width {args.resnet_width}. Adam 1e-3, "
        f"batch 128, {args.epochs} epochs, precision "
        f"`{args.precision}`, seeds 0-{args.seeds - 1} (mean ± std over seeds). Gap = train "
        "accuracy (inference mode) - test accuracy. Pruning sets the smallest weights of the "
        f"`{PRUNED_LAYER}` kernel to zero, without retraining. Spatial dropout comes before "
        "each stage's max-pool, element-wise dropout after it (before the pool, most of its "
        "drops would be hidden by the max). A difference counts only beyond the seeds' spread "
        f"and {ACCURACY_FLOOR:.1%} (`kcnn.report.compare`); the claim that element-wise dropout "
        "regularises little holds when the seeds rule out a gap smaller than without dropout "
        "by more than that margin (`kcnn.report.no_worse`)."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Accuracy, gap and pruning", summarise(configs, records))
    report.figure(
        plot_curves(args, records, os.path.join(args.out, "curves.png")),
        "training loss and validation accuracy per epoch at each dropout rate",
    )
    report.figure(
        plot_pruning(args, records, os.path.join(args.out, "pruning.png")),
        "test accuracy against the share of the classifier's weights pruned",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
