"""The degradation problem: does a deeper plain network train worse than a shallower one, and
do shortcut connections fix it?

The course (chapter 07, section 5.4): "Degradation problem (réseaux très profonds difficiles à
entraîner, même avec BN)"; residual connections "permettent d'entraîner des réseaux très
profonds". He et al. (CVPR 2016, Fig. 1 and 4) show it on the *training* error, so it is not
over-fitting: the 34-layer plain network trains to a higher error than the 18-layer one, while
with shortcuts the 34-layer network trains to a lower error than the 18-layer one.

Four networks of kcnn's ResNet builders with the CIFAR stem (3x3 convolution, no pooling) and
``--width`` times the channels (0.25: 16-32-64-128), so that they train on a CPU: ResNet-18 and
ResNet-34 with shortcuts and the same two with ``skip=False`` (the "plain" networks: the same
layers, batch normalization included, without the identity or projection shortcuts). They train
with He et al.'s optimizer -- SGD, momentum 0.9, peak learning rate ``--learning-rate`` (0.1),
batch 128, no weight decay -- and a cosine decay to 0 after a 5 % warm-up (kcnn's
``schedule="cosine"``, a smooth form of the paper's steps down, so that the final errors are not
those of one noisy step at the peak rate) on the same ``--train-size`` images of
``--dataset`` (Fashion-MNIST by default, zero-padded from 28x28 to 32x32; CIFAR-10 with
``--dataset cifar10`` where it can be loaded), with the same seeds. For each network and seed:
the training error along the way (every few batches), the final training error in inference
mode on the whole training subset, the validation error per epoch and the test error.

Writes ``report.md`` (command, hardware, time, table, one verdict per claim), ``results.json``
(every run and curve) and ``degradation.png`` (training and validation error curves, plain
networks on the left, residual ones on the right, as the paper's Fig. 4).

Example:
    python experiments/resnet_vs_plain.py --quick
    python experiments/resnet_vs_plain.py           # full: about 30 minutes on 2 CPU cores
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np

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

SIZE = 32
BATCH_SIZE = 128
NETWORKS = (  # (label, registry name, skip)
    ("plain-18", "resnet18", False),
    ("ResNet-18", "resnet18", True),
    ("plain-34", "resnet34", False),
    ("ResNet-34", "resnet34", True),
)
QUICK = dict(train_size=256, validation_size=100, test_size=200, epochs=2, seeds=1, every=1)
FULL = dict(train_size=5000, validation_size=500, test_size=2000, epochs=6, seeds=2, every=5)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "resnet_vs_plain")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--test-size", QUICK, FULL, "test images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_plan_option(
        result, "--every", QUICK, FULL, "batches per point of the training-error curve", type=int
    )
    result.add_argument(
        "--width",
        type=float,
        default=0.25,
        help="channel multiplier of the ResNets (default 0.25: 16-32-64-128)",
    )
    result.add_argument(
        "--learning-rate",
        type=float,
        default=0.1,
        help="SGD peak learning rate (default 0.1, He et al.'s)",
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "test_size", "epochs", "seeds", "every"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    for key in ("width", "learning_rate"):
        value = getattr(args, key)
        if not value > 0:
            raise ValueError(f"--{key.replace('_', '-')} must be positive, got {value!r}")
    return args


def training_error_curve(every: int):
    """A Keras callback that records the training error of every ``every`` batches.

    Keras logs, after each batch, the running accuracy since the start of the epoch; the
    accuracy of the last ``every`` batches follows from two running means (``(n2 * a2 - n1 *
    a1) / (n2 - n1)``, exact for batches of equal size, clipped to [0, 1] for a smaller last
    batch). Its ``points`` are ``(batches since the start of
    training, error)``, one per ``every`` batches and one at the end of each epoch.
    """
    import keras

    class TrainingErrorCurve(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.points = []
            self.done = 0  # batches of the finished epochs
            self.last = (0, 0.0)  # (batches, batches x running accuracy) at the last point
            self.latest = (0, 0.0)  # (batches, running accuracy) after the latest batch

        def on_epoch_begin(self, epoch, logs=None):
            self.last = (0, 0.0)

        def on_train_batch_end(self, batch, logs=None):
            seen = batch + 1
            if seen % every == 0:
                self._point(seen, logs["accuracy"])
            self.latest = (seen, logs["accuracy"])

        def on_epoch_end(self, epoch, logs=None):
            seen, accuracy = self.latest
            if seen != self.last[0]:
                self._point(seen, accuracy)
            self.done += seen

        def _point(self, seen, accuracy):
            batches, correct = self.last
            interval = (seen * float(accuracy) - correct) / (seen - batches)
            self.points.append((self.done + seen, min(max(1.0 - interval, 0.0), 1.0)))
            self.last = (seen, seen * float(accuracy))

    return TrainingErrorCurve()


def train_all(args, splits) -> dict:
    """``{label: [one record per seed]}``; the seeds alternate between the networks, so a change
    of load on the shared CPU hits them alike."""
    records = {label: [] for label, *_ in NETWORKS}
    start = time.perf_counter()
    progress = run_progress(args.seeds, NETWORKS)
    for seed in range(args.seeds):
        for label, name, skip in NETWORKS:
            progress.step(f"seed {seed}, {label}")
            curve = training_error_curve(args.every)
            record = run(
                name,
                splits,
                args.epochs,
                seed,
                precision=args.precision,
                model_kwargs={"stem": "cifar", "width": args.width, "skip": skip},
                batch_size=BATCH_SIZE,
                callbacks=[curve],
                optimizer="sgd",
                learning_rate=args.learning_rate,
                schedule="cosine",
            )
            record["training_error_curve"] = curve.points
            record["train_error"] = 1.0 - record["train_accuracy"]
            record["test_error"] = 1.0 - record["test_accuracy"]
            records[label].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {label:9s} training "
                f"error {record['train_error']:.4f}, test error {record['test_error']:.4f}, "
                f"{record['images_per_second']:.0f} img/s",
                flush=True,
            )
    return records


def summary_rows(records: dict, costs: dict) -> list[dict]:
    rows = []
    for label, *_ in NETWORKS:
        runs = records[label]
        last_epoch = [1.0 - r["val_accuracy"][-1] for r in runs if r["val_accuracy"]]
        rows.append(
            {
                "network": label,
                "trainable parameters": costs[label][0],
                "MACs": costs[label][1],
                "training error %": pct(values(runs, "train_error")),
                "validation error %": pct(last_epoch),
                "test error %": pct(values(runs, "test_error")),
                "train images/s": round(statistics.mean(values(runs, "images_per_second"))),
                "diverged": sum(bool(r["diverged"]) for r in runs),
            }
        )
    return rows


def claims(records: dict) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)``: degradation of the plain networks, none with shortcuts.

    A claim whose networks had a run diverge is inconclusive: the error of a network that blew
    up (about 90 %) is not the slow degradation of a deep plain network that He et al. describe.
    """
    from kcnn.report import compare

    def error(label, key="train_error"):
        return values(records[label], key)

    def diverged(a, b):
        return sum(bool(r["diverged"]) for label in (a, b) for r in records[label])

    def higher(a, b, key="train_error"):
        """Whether ``a``'s error is higher than ``b``'s (None within the noise, or when a run
        of either diverged)."""
        return None if diverged(a, b) else compare(error(a, key), error(b, key), ACCURACY_FLOOR)

    def evidence(a, b, key="train_error", what="training error"):
        said = f"{a} {pct(error(a, key))} vs {b} {pct(error(b, key))} % {what}"
        count = diverged(a, b)
        return said + (f"; {count} run(s) diverged: inconclusive" if count else "")

    return [
        (
            "Degradation: the deeper plain network (34 layers) trains to a higher training error "
            "than the shallower one (18)",
            higher("plain-34", "plain-18"),
            evidence("plain-34", "plain-18"),
        ),
        (
            "It is not over-fitting: the deeper plain network's test error is higher too",
            higher("plain-34", "plain-18", "test_error"),
            evidence("plain-34", "plain-18", "test_error", "test error"),
        ),
        (
            "With shortcuts, depth helps: ResNet-34 trains to a lower training error than "
            "ResNet-18",
            higher("ResNet-18", "ResNet-34"),
            evidence("ResNet-34", "ResNet-18"),
        ),
        (
            "Shortcuts make the 34-layer network train better: ResNet-34's training error is lower "
            "than plain-34's",
            higher("plain-34", "ResNet-34"),
            evidence("ResNet-34", "plain-34"),
        ),
    ]


def mean_points(runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(batches, mean error, std error)`` of the seeds' training-error curves (the points
    every run has)."""
    curves = [r["training_error_curve"] for r in runs]
    length = min(len(c) for c in curves)
    batches = np.array([p[0] for p in curves[0][:length]])
    errors = np.array([[p[1] for p in c[:length]] for c in curves])
    return batches, errors.mean(axis=0), errors.std(axis=0)


def plot_degradation(records: dict, steps_per_epoch: int, path) -> str:
    """Training error along the way (thin) and validation error per epoch (bold), plain
    networks on the left, residual ones on the right (He et al., Fig. 4)."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    colours = {"18": "C0", "34": "C3"}
    for axis, skip in zip(axes, (False, True)):
        for label, _, has_skip in NETWORKS:
            if has_skip != skip:
                continue
            runs, colour = records[label], colours[label[-2:]]
            batches, mean, std = mean_points(runs)
            epochs = batches / steps_per_epoch
            axis.plot(epochs, 100 * mean, color=colour, linewidth=1, label=f"{label} training")
            axis.fill_between(
                epochs, 100 * (mean - std), 100 * (mean + std), color=colour, alpha=0.15
            )
            validation = 100 * (1 - np.array(mean_curve(runs, "val_accuracy")))
            axis.plot(
                np.arange(1, len(validation) + 1),
                validation,
                color=colour,
                linewidth=2.5,
                marker="o",
                label=f"{label} validation",
            )
        axis.set_title(
            "plain networks" if not skip else "residual networks (shortcuts)", fontsize=10
        )
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[0].set_ylabel("error (%)")
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "The degradation problem: plain against residual networks")
    import kcnn
    from kcnn import convmath
    from kcnn.transfer import trainable_parameters

    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    ).padded(SIZE)
    records = train_all(args, splits)
    shape = splits.train[0].shape[1:]
    costs = {}
    for label, name, skip in NETWORKS:
        model = kcnn.create_model(
            name,
            input_shape=shape,
            classes=len(splits.class_names),
            stem="cifar",
            width=args.width,
            skip=skip,
        )
        costs[label] = (trainable_parameters(model), int(convmath.macs(model)))
    for claim, verdict, evidence in claims(records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}, zero-padded to {SIZE}x{SIZE}x{shape[-1]}; the same subsets "
        "for every run. The course's CIFAR-10 needs `--dataset cifar10` and the files or a "
        "network.\n\n"
        f"Networks: kcnn's `resnet18` and `resnet34`, CIFAR stem, width {args.width}, built for "
        f"{shape[-1]} input channel(s), with and without shortcuts (`skip=False`). Training: SGD "
        f"with momentum 0.9, learning rate {args.learning_rate} with a 5 % warm-up and a cosine "
        f"decay to 0, batch {BATCH_SIZE}, "
        f"{args.epochs} epochs, precision `{args.precision}`, seeds 0-{args.seeds - 1} (mean ± "
        "std over seeds). The training error of the table is measured at the end, in inference "
        "mode, on the whole training subset; the curves are the running error of every "
        f"{args.every} batches during training. A difference counts only beyond the seeds' "
        f"spread and {ACCURACY_FLOOR:.1%} (`kcnn.report.compare`)."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Training and test error", summary_rows(records, costs))
    steps = math.ceil(len(splits.train[1]) / BATCH_SIZE)
    report.figure(
        plot_degradation(records, steps, os.path.join(args.out, "degradation.png")),
        "training error during training (thin, mean ± std over seeds) and validation "
        "error per epoch (bold)",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
