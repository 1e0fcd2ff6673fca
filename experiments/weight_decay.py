"""L1 against L2 weight penalties against none: which shrinks the weights, which makes them zero,
and what that is worth when the network is pruned.

The course (Module 3, "Weight Decay & Régularisation L1/L2"): ``Loss + λ ||W||²`` (L2) and
``Loss + λ |W|`` (L1); "L2 penalises large weights, L1 encourages sparsity (weights at zero)".
L1's zeros are what magnitude pruning needs (Han et al., NeurIPS 2015): a network whose small
weights are already zero loses less when they are removed.

Every run trains `configurable_cnn` (Listing 1's stages, ``--filters``, no dropout), Adam 1e-3,
with ``l1=`` or ``l2=`` of `kcnn.training.train` on every kernel (`kcnn.training
.regularize_kernels`). Measured per run: test accuracy, the kernels' Euclidean norm and largest
magnitude, their sparsity (share of weights below 1e-3, `kcnn.training.kernel_sparsity`), and
the test accuracy after setting the 50 %, 75 % and 90 % smallest weights of each kernel to zero.
A difference counts only beyond the seeds' spread (`kcnn.report.compare`).

Writes ``report.md``, ``results.json``, ``weights.png`` (histogram of the trained weights of
each penalty) and ``pruning.png`` (test accuracy against the share of weights pruned).

Example:
    python experiments/weight_decay.py --quick
    python experiments/weight_decay.py --seeds 3
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
    open_report,
    parser,
    pct,
    positive,
    run,
    run_progress,
    values,
    write_report,
)

MODEL = "configurable_cnn"
QUICK = dict(
    train_size=300,
    validation_size=100,
    test_size=300,
    epochs=1,
    seeds=1,
    l2=(1e-3,),
    l1=(1e-4,),
    filters=(8, 16),
)
FULL = dict(
    train_size=5000,
    validation_size=1000,
    test_size=None,
    epochs=10,
    seeds=3,
    l2=(1e-4, 1e-3),
    l1=(1e-5, 1e-4),
    filters=(32, 64),
)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "weight_decay")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_plan_option(result, "--l2", QUICK, FULL, "L2 factors", type=float, nargs="+")
    add_plan_option(result, "--l1", QUICK, FULL, "L1 factors", type=float, nargs="+")
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    for option in ("l1", "l2"):
        if any(not value > 0 for value in getattr(args, option)):
            raise ValueError(f"--{option} factors must be positive, got {getattr(args, option)}")
    return args


def configurations(args) -> dict:
    """``{name: {"l1": ..., "l2": ...}}``, no penalty first."""
    result = {"none": {"l1": 0.0, "l2": 0.0}}
    result.update({f"L2 {v:g}": {"l1": 0.0, "l2": v} for v in args.l2})
    result.update({f"L1 {v:g}": {"l1": v, "l2": 0.0} for v in args.l1})
    return result


def kernel_weights(model) -> np.ndarray:
    """Every kernel weight of ``model`` (those the penalties apply to), flattened."""
    from kcnn.training.optimization import model_kernels

    return np.concatenate([np.ravel(kernel.numpy()) for _, kernel, _ in model_kernels(model)])


def measure_weights(model, splits) -> dict:
    """Norm, largest magnitude, sparsity, histogram and pruned accuracies of a trained model."""
    from kcnn.training import kernel_sparsity

    weights = kernel_weights(model)
    counts, edges = np.histogram(weights, bins=80, range=(-0.3, 0.3))
    return {
        "kernel_norm": float(np.linalg.norm(weights)),
        "largest_weight": float(np.abs(weights).max()),
        "sparsity": kernel_sparsity(model)["overall"],
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        "pruned_accuracy": {
            f"{level:g}": value for level, value in pruned_accuracy(model, *splits.test).items()
        },
    }


def train_all(args, splits, configs) -> dict:
    records = {name: [] for name in configs}
    start = time.perf_counter()
    progress = run_progress(args.seeds, configs)
    for seed in range(args.seeds):
        for name, penalty in configs.items():
            progress.step(f"seed {seed}, {name}")
            record = run(
                MODEL,
                splits,
                args.epochs,
                seed,
                precision=args.precision,
                model_kwargs={"filters": tuple(args.filters), "dropout": 0.0},
                keep_model=True,
                **penalty,
            )
            record.update(measure_weights(record.pop("model"), splits))
            records[name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {name:10s} test "
                f"{record['test_accuracy']:.4f} sparsity {record['sparsity']:.3f}",
                flush=True,
            )
    return records


def pruned(runs, level: float) -> list[float]:
    return [r["pruned_accuracy"][f"{level:g}"] for r in runs]


def summarise(records) -> list[dict]:
    rows = []
    for name, runs in records.items():
        row = {
            "penalty": name,
            "test accuracy %": pct(values(runs, "test_accuracy")),
            "gap (points)": pct(values(runs, "gap")),
            "kernel norm": pct([r["kernel_norm"] / 100 for r in runs], 2),
            "largest |w|": pct([r["largest_weight"] / 100 for r in runs], 3),
            "weights < 1e-3 %": pct(values(runs, "sparsity")),
        }
        for level in PRUNING_LEVELS:
            row[f"acc. {level:.0%} pruned %"] = pct(pruned(runs, level))
        rows.append(row)
    return rows


def claims(args, records) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)``: the strongest L2 and L1 factors against no penalty."""
    from kcnn.report import compare

    l2, l1 = f"L2 {max(args.l2):g}", f"L1 {max(args.l1):g}"

    def measured(name, key):
        return values(records[name], key)

    def evidence(key, names, digits=3, unit=""):
        return ", ".join(
            f"{n} {pct([v / 100 for v in measured(n, key)], digits)}{unit}" for n in names
        )

    found = [
        (
            f"{l2} penalises large weights: a smaller kernel norm than without a penalty",
            compare(measured("none", "kernel_norm"), measured(l2, "kernel_norm")),
            "kernel norm " + evidence("kernel_norm", ("none", l2), 2),
        ),
        (
            f"{l2} penalises large weights: a smaller largest weight than without a penalty",
            compare(measured("none", "largest_weight"), measured(l2, "largest_weight")),
            "largest |w| " + evidence("largest_weight", ("none", l2)),
        ),
    ]
    for other in ("none", l2):
        found.append(
            (
                f"{l1} drives weights to (near) zero: more weights below 1e-3 than {other}",
                compare(measured(l1, "sparsity"), measured(other, "sparsity"), ACCURACY_FLOOR),
                f"{pct(measured(l1, 'sparsity'))} vs {pct(measured(other, 'sparsity'))} % of the "
                "kernel weights",
            )
        )
    for level in PRUNING_LEVELS:
        kept = {
            n: [p - a for p, a in zip(pruned(records[n], level), measured(n, "test_accuracy"))]
            for n in (l1, "none")
        }
        found.append(
            (
                f"L1's sparsity makes pruning cheap: with {level:.0%} of each kernel pruned, the "
                "L1 network loses less test accuracy than the unpenalised one",
                compare(kept[l1], kept["none"], ACCURACY_FLOOR),
                f"{l1} loses {pct([-v for v in kept[l1]])}, none {pct([-v for v in kept['none']])} "
                f"points (to {pct(pruned(records[l1], level))} and "
                f"{pct(pruned(records['none'], level))} %)",
            )
        )
    return found


def plot_weights(records, path) -> str:
    """Histogram of the trained kernel weights of each penalty (first seed), log counts."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6.5, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    for name, runs in records.items():
        histogram = runs[0]["histogram"]
        edges = np.array(histogram["edges"])
        axis.step(
            (edges[:-1] + edges[1:]) / 2,
            np.maximum(histogram["counts"], 0.5),
            where="mid",
            label=name,
        )
    axis.set_yscale("log")
    axis.set_xlabel("kernel weight")
    axis.set_ylabel("count (seed 0)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_pruning(records, path) -> str:
    """Test accuracy (mean over seeds) against the share of each kernel pruned."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    levels = (0.0, *PRUNING_LEVELS)
    for name, runs in records.items():
        axis.plot(
            [100 * v for v in levels],
            [100 * np.mean(pruned(runs, level)) for level in levels],
            marker="o",
            label=name,
        )
    axis.set_xlabel("weights pruned per kernel (%)")
    axis.set_ylabel("test accuracy (%)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Weight decay: L1 vs L2 vs none")
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    records = train_all(args, splits, configurations(args))
    for claim, verdict, evidence in claims(args, records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run.\n\n"
        f"Model: `{MODEL}` with filters {tuple(args.filters)}, Dense 128, no dropout; Adam 1e-3, "
        f"batch 128, {args.epochs} epochs, precision `{args.precision}`, seeds "
        f"0-{args.seeds - 1} (mean ± std over seeds). The penalty applies to every kernel, "
        "never to biases. Pruning sets the smallest weights of each kernel to zero, without "
        "retraining."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Weights, sparsity and pruning", summarise(records))
    report.figure(
        plot_weights(records, os.path.join(args.out, "weights.png")),
        "histogram of the trained kernel weights of each penalty",
    )
    report.figure(
        plot_pruning(records, os.path.join(args.out, "pruning.png")),
        "test accuracy against the share of each kernel's weights pruned",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
