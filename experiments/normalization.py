"""Batch, layer, group and instance normalization, or none, on the same network and data: does
batch normalization do what the course says, and does group norm survive tiny batches?

The course (Module 3, "Techniques de normalisation") says batch normalization (Ioffe & Szegedy,
ICML 2015) "stabilises and accelerates training", "allows higher learning rates" and "reduces
the sensitivity to the initialization of the weights"; its "simulation" shows the activations
of three layers drifting without it (mean 0.1 -> 15.7, std 2.5 -> 25.3) and staying near
mean 0, std 1 with it. Group normalization (Wu & He, ECCV 2018) claims to keep its accuracy at
batch sizes of 2-4 images, where batch normalization degrades.

Every run trains `configurable_cnn` (Listing 1's stages, ``--filters``, no dropout) with
``norm=`` each kind, Adam, on the same fixed subsets. Measured per configuration and seed: the
validation accuracy after each epoch (convergence, and stability: its largest fall below its
best earlier epoch), the test accuracy at the course's learning rate and at ``--high-lr``, the
test accuracy lost when every initial kernel is multiplied by ``--init-scale``, and the test
accuracy at ``--small-batch`` against ``--batch-size``. For the
figure, the mean and standard deviation of each stage's output (after its ReLU), with and
without batch norm, at initialization and after training, computed on one batch with the
normalization layers using that batch's statistics (as in training). A difference counts only
beyond the seeds' spread (`kcnn.report.compare`).

Writes ``report.md``, ``results.json``, ``curves.png`` (validation accuracy per epoch of each
norm) and ``activations.png`` (mean and std of the activations per layer).

Example:
    python experiments/normalization.py --quick
    python experiments/normalization.py --seeds 3
"""

from __future__ import annotations

import os
import sys
import time

from measures import first_epoch_accuracy, largest_drop

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

MODEL = "configurable_cnn"
NORMS = (None, "batch", "layer", "group", "instance")
QUICK = dict(
    train_size=300,
    validation_size=100,
    test_size=300,
    epochs=1,
    seeds=1,
    norms=(None, "batch", "group"),
    high_lr=(1e-2,),
    small_batch=(4,),
    filters=(8, 16, 16),
)
FULL = dict(
    train_size=5000,
    validation_size=1000,
    test_size=None,
    epochs=8,
    seeds=3,
    norms=NORMS,
    high_lr=(1e-2, 3e-2),
    small_batch=(2, 4),
    filters=(32, 64, 128),
)
STATISTICS_IMAGES = 256


def label(norm) -> str:
    return "none" if norm is None else norm


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "normalization")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    result.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    add_plan_option(
        result, "--high-lr", QUICK, FULL, "higher learning rates", type=float, nargs="+"
    )
    add_plan_option(
        result,
        "--small-batch",
        QUICK,
        FULL,
        "small batch sizes of batch vs group norm",
        type=int,
        nargs="+",
    )
    result.add_argument(
        "--init-scale",
        type=float,
        default=5.0,
        help="factor of every initial kernel in the initialization test (default 5)",
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds", "batch_size"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    for size in args.small_batch:
        positive("--small-batch", size)
    if not args.init_scale > 0:
        raise ValueError(f"--init-scale must be positive, got {args.init_scale}")
    return args


def configurations(args) -> dict:
    """``{name: (norm, learning rate, batch size, initial kernel scale)}``, every run's
    settings; the names say what differs from the norm's plain run."""
    result = {label(n): (n, 1e-3, args.batch_size, 1.0) for n in args.norms}
    for rate in args.high_lr:
        for norm in (None, "batch"):
            result[f"{label(norm)}, lr {rate:g}"] = (norm, rate, args.batch_size, 1.0)
    for norm in (None, "batch"):
        result[f"{label(norm)}, init x{args.init_scale:g}"] = (
            norm,
            1e-3,
            args.batch_size,
            args.init_scale,
        )
    for size in args.small_batch:
        for norm in ("batch", "group"):
            result[f"{norm}, batch {size}"] = (norm, 1e-3, size, 1.0)
    return result


def stage_outputs(norm, stages: int) -> list[str]:
    """The layer ending each stage's unit, after its ReLU."""
    return [f"stage{i}_conv" if norm is None else f"stage{i}_relu" for i in range(1, stages + 1)]


def statistics_callback(images, layer_names, scale: float):
    """A Keras callback that multiplies every initial kernel by ``scale`` and records the
    activation statistics of ``layer_names`` at the start and the end of training (as
    ``.at_start`` and ``.at_end``)."""
    import keras
    from measures import activation_statistics

    from kcnn.training.optimization import model_kernels

    class Statistics(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if scale != 1.0:
                for _, kernel, _ in model_kernels(self.model):
                    kernel.assign(kernel * scale)
            self.at_start = activation_statistics(self.model, images, layer_names, True)

        def on_train_end(self, logs=None):
            self.at_end = activation_statistics(self.model, images, layer_names, True)

    return Statistics()


def model_kwargs(args, norm) -> dict:
    return {"filters": tuple(args.filters), "norm": norm, "dropout": 0.0}


def train_all(args, splits, configs) -> dict:
    records = {name: [] for name in configs}
    images = splits.train[0][:STATISTICS_IMAGES]
    start = time.perf_counter()
    progress = run_progress(args.seeds, configs)
    for seed in range(args.seeds):
        for name, (norm, rate, batch, scale) in configs.items():
            progress.step(f"seed {seed}, {name}")
            probe = statistics_callback(images, stage_outputs(norm, len(args.filters)), scale)
            record = run(
                MODEL,
                splits,
                args.epochs,
                seed,
                model_kwargs=model_kwargs(args, norm),
                batch_size=batch,
                precision=args.precision,
                learning_rate=rate,
                callbacks=[probe],
            )
            record["activations"] = {"initialization": probe.at_start, "trained": probe.at_end}
            records[name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {name:24s} test "
                f"{record['test_accuracy']:.4f} ({record['seconds']:.0f} s"
                f"{', diverged' if record['diverged'] else ''})",
                flush=True,
            )
    return records


def summarise(configs, records) -> list[dict]:
    rows = []
    for name, (norm, rate, batch, scale) in configs.items():
        runs = records[name]
        rows.append(
            {
                "configuration": name,
                "norm": label(norm),
                "lr": rate,
                "batch": batch,
                "initial kernels x": scale,
                "parameters": runs[0]["params"],
                "test accuracy %": pct(values(runs, "test_accuracy")),
                "val. acc. epoch 1 %": pct(
                    [r["val_accuracy"][0] for r in runs if r["val_accuracy"]]
                ),
                "diverged": f"{sum(r['diverged'] for r in runs)}/{len(runs)}",
            }
        )
    return rows


def claims(args, records) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for each of the course's and Wu & He's claims."""
    from kcnn.report import compare

    def accuracy(name):
        return values(records[name], "test_accuracy")

    def evidence(a, b, what="test accuracy"):
        return f"{a} {pct(accuracy(a))} vs {b} {pct(accuracy(b))} % {what}"

    first = {n: first_epoch_accuracy(records[n]) for n in ("batch", "none")}
    found = [
        (
            "Batch normalization accelerates convergence (validation accuracy after one epoch)",
            compare(first["batch"], first["none"], ACCURACY_FLOOR),
            f"batch {pct(first['batch'])} vs none {pct(first['none'])} %",
        )
    ]
    for rate in args.high_lr:
        a, b = f"batch, lr {rate:g}", f"none, lr {rate:g}"
        found.append(
            (
                f"Batch normalization allows a higher learning rate ({rate:g}): better "
                "test accuracy than without it",
                compare(accuracy(a), accuracy(b), ACCURACY_FLOOR),
                evidence(a, b),
            )
        )
        falls = {n: largest_drop(records[n]) for n in (a, b)}
        found.append(
            (
                f"Batch normalization stabilises training at lr {rate:g} (a smaller largest fall "
                "of validation accuracy below its best earlier epoch)",
                compare([-v for v in falls[a]], [-v for v in falls[b]], ACCURACY_FLOOR),
                f"{a} {pct(falls[a])} vs {b} {pct(falls[b])} points; diverged "
                f"{sum(r['diverged'] for r in records[a])} vs "
                f"{sum(r['diverged'] for r in records[b])} runs",
            )
        )
    lost = {
        norm: [
            p - s for p, s in zip(accuracy(norm), accuracy(f"{norm}, init x{args.init_scale:g}"))
        ]
        for norm in ("batch", "none")
    }
    found.append(
        (
            f"Batch normalization is less sensitive to initialization (test accuracy lost when the "
            f"initial kernels are {args.init_scale:g}x larger)",
            compare(lost["none"], lost["batch"], ACCURACY_FLOOR),
            f"batch loses {pct(lost['batch'])}, none {pct(lost['none'])} points",
        )
    )
    for size in args.small_batch:
        drop = {
            norm: [p - s for p, s in zip(accuracy(norm), accuracy(f"{norm}, batch {size}"))]
            for norm in ("batch", "group")
        }
        found.append(
            (
                f"Group norm keeps its accuracy at batch size {size}, where batch norm degrades "
                f"(Wu & He 2018): batch norm loses more than group norm against batch "
                f"{args.batch_size}",
                compare(drop["batch"], drop["group"], ACCURACY_FLOOR),
                f"batch norm loses {pct(drop['batch'])}, group norm {pct(drop['group'])} points "
                f"({evidence(f'batch, batch {size}', f'group, batch {size}')})",
            )
        )
    return found


def activation_rows(args, records) -> list[dict]:
    """Mean ± std over seeds of each stage's activation mean and std, with and without BN."""
    from kcnn.report import mean_std

    rows = []
    for name in ("none", "batch"):
        for moment in ("initialization", "trained"):
            for index, layer in enumerate(
                stage_outputs(None if name == "none" else name, len(args.filters)), start=1
            ):
                stats = [r["activations"][moment][layer] for r in records[name]]
                rows.append(
                    {
                        "norm": name,
                        "when": moment,
                        "stage": index,
                        "mean": mean_std([m for m, _ in stats]),
                        "std": mean_std([s for _, s in stats]),
                    }
                )
    return rows


def plot_activations(args, records, path) -> str:
    """Mean and std of each stage's activations, without and with batch norm, at
    initialization and after training (mean over seeds): the course's simulation, measured."""
    import numpy as np
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(10, 4))
    stages = np.arange(1, len(args.filters) + 1)
    for column, (statistic, title) in enumerate(((0, "mean"), (1, "standard deviation"))):
        axis = figure.add_subplot(1, 2, column + 1)
        for name, colour in (("none", "grey"), ("batch", "tab:red")):
            layers = stage_outputs(None if name == "none" else name, len(stages))
            for moment, style in (("initialization", "--"), ("trained", "-")):
                curve = [
                    np.mean([r["activations"][moment][layer][statistic] for r in records[name]])
                    for layer in layers
                ]
                axis.plot(
                    stages,
                    curve,
                    style,
                    marker="o",
                    color=colour,
                    label=f"{'with' if name == 'batch' else 'without'} BN, {moment}",
                )
        axis.set_xticks(stages)
        axis.set_xlabel("stage (output after ReLU)")
        axis.set_ylabel(f"activation {title}")
        axis.legend(fontsize=7)
    figure.suptitle("activations per layer, with and without batch normalization", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_curves(args, records, path) -> str:
    """Validation accuracy per epoch of each norm at the course's learning rate."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    for norm in args.norms:
        curve = mean_curve(records[label(norm)], "val_accuracy")
        axis.plot(range(1, len(curve) + 1), curve, marker="o", label=label(norm))
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation accuracy (mean over seeds)")
    axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Normalization: batch, layer, group, instance or none")
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    configs = configurations(args)
    records = train_all(args, splits, configs)
    for claim, verdict, evidence in claims(args, records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run.\n\n"
        f"Model: `{MODEL}` with filters {tuple(args.filters)}, Dense 128, no dropout, `norm=` "
        f"between each convolution and its ReLU; Adam at learning rate 1e-3 and batch "
        f"{args.batch_size} unless the configuration says otherwise; {args.epochs} epochs, "
        f"precision `{args.precision}`, seeds 0-{args.seeds - 1} (mean ± std over seeds). "
        f"Activations: {STATISTICS_IMAGES} training images, each stage's output after its ReLU, "
        "normalization layers in training mode (the batch's statistics)."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Accuracy per configuration", summarise(configs, records))
    report.table("Activations per stage (mean ± std over seeds)", activation_rows(args, records))
    report.figure(
        plot_curves(args, records, os.path.join(args.out, "curves.png")),
        "validation accuracy per epoch of each normalization",
    )
    report.figure(
        plot_activations(args, records, os.path.join(args.out, "activations.png")),
        "mean and standard deviation of each stage's activations, with and without "
        "batch norm, at initialization and after training",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
