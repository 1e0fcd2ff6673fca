"""The course's classic architectures compared on the same data and budget: parameters,
multiply-accumulates, accuracy and speed, measured.

The course (chapter 07, section 5 and Table 1) compares LeNet-5 (1998, "60K" parameters),
AlexNet ("60M"), VGG-16 ("138M", "très lourd !") and ResNet-50 ("25M", skip connections) by
their ImageNet figures, and presents each architecture as an improvement on the previous one.

Two measurements:

1. The parameter column of Table 1, recounted on kcnn's builders of the ImageNet-size models
   (AlexNet with its two-GPU groups, as published), with their multiply-accumulates per image
   (`kcnn.convmath.macs`); nothing is trained.
2. LeNet-5, `simple_cnn` (Listing 1), `tiny_vgg` (Listing 3), `tiny_resnet` (Listing 4) and
   ResNet-18 with the CIFAR stem are trained with the same data, seeds and budget (Adam 1e-3,
   batch 128, ``--epochs`` on ``--train-size`` images) on 32x32 images: ``--dataset``
   (Fashion-MNIST by default) zero-padded from 28x28 to 32x32, the input size of LeNet-5. Every
   model is built for the data's channels (one for Fashion-MNIST: the first convolution of the
   ResNets and VGG takes 1 channel instead of 3; no channel conversion). For each: trainable
   parameters, MACs, test accuracy, training and inference speed (images/s).

Writes ``report.md`` (command, hardware, time, tables, one verdict per claim), ``results.json``
(every run), ``architectures.png`` (accuracy and speed against MACs) and ``curves.png``
(validation accuracy per epoch).

Example:
    python experiments/architectures.py --quick
    python experiments/architectures.py             # full: about 2.1 h on 2 CPU cores; it resumes
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time

import numpy as np

from common import (
    ACCURACY_FLOOR,
    RunJournal,
    add_journal_option,
    add_plan_option,
    dataset_splits,
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

SIZE = 32
ARCHITECTURES = (  # (name, registry name, builder arguments, origin)
    ("lenet5", "lenet5", {}, "LeCun et al. 1998"),
    ("simple_cnn", "simple_cnn", {}, "course, Listing 1"),
    ("tiny_vgg", "tiny_vgg", {}, "course, Listing 3 (VGG, 2014)"),
    ("tiny_resnet", "tiny_resnet", {}, "course, Listing 4 (ResNet, 2015)"),
    ("resnet18", "resnet18", {"stem": "cifar"}, "He et al. 2016, CIFAR stem"),
)
COURSE_TABLE = (  # (model, registry name, builder arguments, parameters in the course's Table 1)
    ("LeNet-5", "lenet5", {}, 60e3),
    ("AlexNet", "alexnet", {"groups": 2}, 60e6),
    ("VGG-16", "vgg16", {}, 138e6),
    ("ResNet-50", "resnet50", {}, 25e6),
)
TABLE_TOLERANCE = 0.05  # the course's rounded counts, within 5 %
QUICK = dict(train_size=128, validation_size=50, test_size=100, epochs=2, seeds=1)
# 375 steps, 3 seeds: after the 47 steps of 3,000 images x 2 epochs, the ResNets' batch-norm
# averages still lagged behind their weights (TinyResNet vs TinyVGG was inconclusive)
FULL = dict(train_size=8000, validation_size=500, test_size=1000, epochs=6, seeds=3)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "architectures")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--test-size", QUICK, FULL, "test images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_journal_option(result)
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "test_size", "epochs", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    return args


def size(name: str, kwargs: dict, **shape) -> tuple[int, int]:
    """``(trainable parameters, multiply-accumulates per image)`` of a freshly built model."""
    import keras

    import kcnn
    from kcnn import convmath
    from kcnn.transfer import trainable_parameters

    model = kcnn.create_model(name, **kwargs, **shape)
    counts = trainable_parameters(model), int(convmath.macs(model))
    del model
    keras.utils.clear_session(free_memory=False)
    return counts


def course_table() -> list[dict]:
    """Table 1's parameter column against kcnn's builders (default ImageNet input sizes)."""
    import kcnn

    rows = []
    for title, name, kwargs, claimed in COURSE_TABLE:
        params, macs = size(name, kwargs)
        shape = kcnn.model_info(name).input_shape
        rows.append(
            {
                "model": title,
                "builder": name + "".join(f", {k}={v}" for k, v in kwargs.items()),
                "course's parameters": (
                    f"{claimed / 1e6:g}M" if claimed >= 1e6 else f"{claimed / 1e3:g}K"
                ),
                "trainable parameters": params,
                "difference": f"{params / claimed - 1:+.1%}",
                "input": "x".join(str(d) for d in shape),
                "MACs": macs,
            }
        )
    return rows


def train_all(args, splits, journal) -> dict:
    """``{name: [one record per seed]}``; the seeds alternate between the models, so a change
    of load on the shared CPU hits them alike. Runs already in ``journal`` are read back."""
    records = {name: [] for name, *_ in ARCHITECTURES}
    start = time.perf_counter()
    journal.start(args.seeds, [name for name, *_ in ARCHITECTURES])
    for seed in range(args.seeds):
        for name, registry_name, kwargs, _ in ARCHITECTURES:
            record = journal.run(
                name,
                seed,
                functools.partial(
                    run,
                    registry_name,
                    splits,
                    args.epochs,
                    seed,
                    model_kwargs=kwargs or None,
                    precision=args.precision,
                    time_inference=True,
                ),
            )
            record["train_seconds"] = sum(record["epoch_seconds"])
            records[name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {name:12s} test "
                f"{record['test_accuracy']:.4f}, train {record['images_per_second']:.0f} img/s, "
                f"inference {record['inference_images_per_second']:.0f} img/s "
                f"({record['seconds']:.0f} s)",
                flush=True,
            )
    return records


def summary_rows(records: dict, costs: dict) -> list[dict]:
    rows = []
    for name, _, _, origin in ARCHITECTURES:
        runs = records[name]
        rows.append(
            {
                "model": name,
                "origin": origin,
                "trainable parameters": costs[name][0],
                "MACs": costs[name][1],
                "test accuracy %": pct(values(runs, "test_accuracy")),
                "train accuracy %": pct(values(runs, "train_accuracy")),
                "last-epoch training loss": round(statistics.mean(r["loss"][-1] for r in runs), 3),
                "training time s": round(statistics.mean(values(runs, "train_seconds")), 1),
                "train images/s": round(statistics.mean(values(runs, "images_per_second"))),
                "inference images/s": round(
                    statistics.mean(values(runs, "inference_images_per_second"))
                ),
            }
        )
    return rows


def claims(table: list[dict], records: dict) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for Table 1's counts and the trained comparison."""
    from kcnn.report import compare

    counted = {row["model"]: row for row in table}
    found = [
        (
            "Table 1's parameter counts: LeNet-5 60K, AlexNet 60M, VGG-16 138M, ResNet-50 25M",
            all(
                abs(params / claimed - 1) <= TABLE_TOLERANCE
                for params, claimed in (
                    (counted[t]["trainable parameters"], c) for t, _, _, c in COURSE_TABLE
                )
            ),
            ", ".join(
                f"{t} {counted[t]['trainable parameters']:,} ({counted[t]['difference']})"
                for t, *_ in COURSE_TABLE
            ),
        )
    ]
    vgg, resnet = counted["VGG-16"], counted["ResNet-50"]
    found.append(
        (
            "VGG-16 is much heavier than ResNet-50 (138M against 25M parameters)",
            (
                vgg["trainable parameters"] > resnet["trainable parameters"]
                and vgg["MACs"] > resnet["MACs"]
            ),
            f"VGG-16 {vgg['trainable parameters'] / resnet['trainable parameters']:.1f}x the "
            f"parameters and {vgg['MACs'] / resnet['MACs']:.1f}x the multiply-accumulates of "
            "ResNet-50 at 224x224",
        )
    )

    def accuracy(name):
        return values(records[name], "test_accuracy")

    def loss(name):
        return statistics.mean(r["loss"][-1] for r in records[name])

    found.append(
        (
            "With skip connections (TinyResNet) the network is more accurate than the plain "
            "VGG-style stack (TinyVGG), same data and budget",
            compare(accuracy("tiny_resnet"), accuracy("tiny_vgg"), ACCURACY_FLOOR),
            f"tiny_resnet {pct(accuracy('tiny_resnet'))} vs tiny_vgg {pct(accuracy('tiny_vgg'))} % "
            f"test accuracy (last-epoch training loss {loss('tiny_resnet'):.3f} vs "
            f"{loss('tiny_vgg'):.3f})",
        )
    )
    later = [name for name, *_ in ARCHITECTURES if name != "lenet5"]
    verdicts = [compare(accuracy(name), accuracy("lenet5"), ACCURACY_FLOOR) for name in later]
    found.append(
        (
            "Every later architecture is more accurate than LeNet-5 (1998), same data and budget",
            False if False in verdicts else (True if all(verdicts) else None),
            f"lenet5 {pct(accuracy('lenet5'))} %; "
            + ", ".join(f"{name} {pct(accuracy(name))} %" for name in later),
        )
    )
    return found


def plot_costs(records: dict, costs: dict, path) -> str:
    """Test accuracy and training / inference speed against MACs (log scales), one colour per
    architecture."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    for index, (name, *_) in enumerate(ARCHITECTURES):
        runs, (params, macs), colour = records[name], costs[name], f"C{index}"
        accuracy = 100 * np.array(values(runs, "test_accuracy"))
        left.errorbar(
            macs,
            accuracy.mean(),
            yerr=accuracy.std(),
            fmt="o",
            capsize=4,
            color=colour,
            label=f"{name} ({params / 1e6:.2f}M parameters)",
        )
        right.scatter(
            macs,
            statistics.mean(values(runs, "images_per_second")),
            marker="o",
            color=colour,
            label=f"{name}, training",
        )
        right.scatter(
            macs,
            statistics.mean(values(runs, "inference_images_per_second")),
            marker="s",
            facecolors="none",
            edgecolors=colour,
            label=f"{name}, inference",
        )
    left.set_ylabel("test accuracy (%)")
    left.set_title("accuracy against computation (same data and budget)", fontsize=10)
    right.set_yscale("log")
    right.set_ylabel("images per second")
    right.set_title("speed on this CPU", fontsize=10)
    for axis in (left, right):
        axis.set_xscale("log")
        axis.margins(x=0.15, y=0.15)
        axis.set_xlabel("multiply-accumulates per image")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return save_figure(figure, path)


def plot_curves(records: dict, path) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2), layout="constrained")
    axis = figure.add_subplot(1, 1, 1)
    for name, runs in records.items():
        curve = 100 * np.array(mean_curve(runs, "val_accuracy"))
        axis.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation accuracy (%, mean over seeds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Classic architectures: size, computation, accuracy and speed")

    table = course_table()
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    ).padded(SIZE)
    journal = RunJournal(args)
    records = train_all(args, splits, journal)
    shape = splits.train[0].shape[1:]
    costs = {
        name: size(registry_name, kwargs, input_shape=shape, classes=len(splits.class_names))
        for name, registry_name, kwargs, _ in ARCHITECTURES
    }
    for claim, verdict, evidence in claims(table, records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}, zero-padded to {SIZE}x{SIZE}x{shape[-1]}; the same subsets "
        f"for every run. Every model is built for {shape[-1]} input channel(s) (no channel "
        "conversion of the data); the course's CIFAR-10 needs `--dataset cifar10` and the "
        "files or a network.\n\n"
        f"Budget: Adam 1e-3, batch 128, {args.epochs} epochs on the {len(splits.train[1]):,} "
        f"training images, precision `{args.precision}`, seeds 0-{args.seeds - 1} (mean ± std "
        "over seeds). Training speed excludes the first epoch (tracing); inference speed is "
        "`model.predict` on the test images, timed on a second pass. Speeds depend on the load "
        "of the shared CPU (see the load average above); the models ran in alternation. A "
        "difference of accuracy counts only beyond the seeds' spread and "
        f"{ACCURACY_FLOOR:.1%} (`kcnn.report.compare`). MACs: `kcnn.convmath.macs`, one per "
        "weight applied (convolutions and dense layers), for one image. The accuracies are "
        "measured in inference mode, where batch normalization uses its moving averages; the "
        "last-epoch training loss is the running loss in training mode: after few steps a "
        "network with batch normalization can have a low training loss and a low accuracy, "
        "while its moving averages lag behind its weights."
    )
    report.text(journal.describe())
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("The course's Table 1, parameters recounted", table)
    report.table(
        f"Trained on {splits.name}, {SIZE}x{SIZE}, same budget", summary_rows(records, costs)
    )
    report.figure(
        plot_costs(records, costs, os.path.join(args.out, "architectures.png")),
        "test accuracy (mean ± std) and speed against multiply-accumulates per image",
    )
    report.figure(
        plot_curves(records, os.path.join(args.out, "curves.png")),
        "validation accuracy per epoch (mean over seeds)",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
