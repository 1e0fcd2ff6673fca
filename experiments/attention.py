"""Does attention make a ResNet better, and what does it cost?

The course (Module 3, "Mécanismes d'attention") presents channel attention (SE: "learns the
relative importance of each channel") and spatial attention ("determines which spatial regions
are important") as a "focus intelligent" on the important features. The papers claim more
precisely: squeeze-and-excitation improves ResNets "at a slight additional computational cost"
(Hu et al., CVPR 2018); CBAM, channel then spatial attention, improves them more than SE alone
(Woo et al., ECCV 2018).

The course's TinyResNet (Listing 4: kcnn's generic `resnet` with ``depths=(2, 2, 2)`` and the
CIFAR stem; ``--width`` narrower so it trains on a CPU, two blocks in the quick mode) is trained
with ``attention=None``, ``"se"``, ``"spatial"`` and ``"cbam"`` in every residual block, with the
same data, seeds and budget (Adam 1e-3, ``--epochs``). For each it measures the parameters, the
multiply-accumulates (`kcnn.convmath.macs`) and the test accuracy (mean ± std over seeds). A
difference of accuracy counts only beyond the seeds' spread (`kcnn.report.compare`).

The cost in time is measured apart, on a CPU that other jobs share: ``--rounds`` rounds in which
each variant in turn runs ``--steps`` training steps (``train_on_batch``) and as many inference
steps (``predict_on_batch``) on one fixed batch of 128 images. Each round gives the time per
image in wall-clock seconds and in CPU seconds of this process (the work a variant needs,
steadier than the wall clock when the load changes), and the ratio of each variant to no
attention within the round; the report gives the medians and the spread over rounds.

Writes ``report.md`` (command, hardware, time, table, one verdict per claim), ``results.json``,
``attention.png`` (test accuracy against training CPU time per image) and ``curves.png``
(validation accuracy per epoch).

Example:
    python experiments/attention.py --quick
    python experiments/attention.py             # full: 56 min on 2 CPU cores; it resumes
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time

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

MODEL = "resnet"  # with depths (2, 2, 2) and the CIFAR stem: the course's TinyResNet
KINDS = (None, "se", "spatial", "cbam")
QUICK = dict(
    train_size=256,
    validation_size=64,
    test_size=256,
    epochs=1,
    seeds=1,
    rounds=2,
    steps=1,
    depths=(1, 1),
)
# 15,000 images, 10 epochs, 3 seeds: at 5,000 x 6 x 2 SE's effect was within the seeds' spread
FULL = dict(
    train_size=15000,
    validation_size=1000,
    test_size=None,
    epochs=10,
    seeds=3,
    rounds=7,
    steps=10,
    depths=(2, 2, 2),
)
BATCH = 128
COST_LIMIT = 0.10  # "slight cost": under 10 % more parameters and 10 % more training time


def label(kind) -> str:
    return "none" if kind is None else kind


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "attention")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_plan_option(result, "--rounds", QUICK, FULL, "timing rounds", type=int)
    add_plan_option(result, "--steps", QUICK, FULL, "steps per variant and round", type=int)
    add_journal_option(result)
    result.add_argument(
        "--width",
        type=float,
        default=0.25,
        help="TinyResNet width multiplier (default 0.25: 16-32-64 channels)",
    )
    result.add_argument(
        "--attention-ratio",
        type=int,
        default=4,
        help="reduction ratio of SE and CBAM's channel attention (default 4: the "
        "paper's 16 would leave 1 hidden unit on 16 channels)",
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds", "attention_ratio", "rounds", "steps"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    return args


def model_kwargs(args, kind) -> dict:
    return {
        "depths": tuple(args.depths),
        "stem": "cifar",
        "width": args.width,
        "attention": kind,
        "attention_ratio": args.attention_ratio,
    }


def macs(args, kind, shape, classes) -> int:
    """Multiply-accumulates of one forward pass of the variant (`kcnn.convmath.macs`)."""
    import kcnn
    from kcnn import convmath

    model = kcnn.create_model(MODEL, input_shape=shape, classes=classes, **model_kwargs(args, kind))
    return int(convmath.macs(model))


def time_variants(args, shape, classes) -> dict:
    """Interleaved timing of every variant: ``{name: {"train_cpu": [...], "train_wall": [...],
    "inference_cpu": [...], "inference_wall": [...]}}``, seconds per image, one per round."""
    import keras
    import numpy as np

    import kcnn
    from kcnn.training import compile_model, precision_policy

    rng = np.random.default_rng(0)
    images = rng.random((BATCH, *shape), dtype="float32")
    labels = rng.integers(0, classes, BATCH)
    models = {}
    for kind in KINDS:
        keras.utils.set_random_seed(0)
        with precision_policy(args.precision):
            model = kcnn.create_model(
                MODEL, input_shape=shape, classes=classes, **model_kwargs(args, kind)
            )
        compile_model(model, "adam")
        for _ in range(2):  # trace and warm up both steps
            model.train_on_batch(images, labels)
            model.predict_on_batch(images)
        models[label(kind)] = model
    times = {
        name: {key: [] for key in ("train_cpu", "train_wall", "inference_cpu", "inference_wall")}
        for name in models
    }
    for _ in range(args.rounds):
        for name, model in models.items():
            for key in ("train", "inference"):
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    if key == "train":
                        model.train_on_batch(images, labels)
                    else:
                        model.predict_on_batch(images)
                count = args.steps * BATCH
                times[name][f"{key}_wall"].append((time.perf_counter() - wall) / count)
                times[name][f"{key}_cpu"].append((time.process_time() - cpu) / count)
    return times


def relative(times, name: str, key: str) -> list[float]:
    """Per round: the variant's time per image against no attention's, minus 1."""
    return [t / b - 1 for t, b in zip(times[name][key], times["none"][key])]


def summarise(records, costs, times) -> list[dict]:
    """One row per attention kind: accuracy (mean ± std over seeds), and the cost relative to
    no attention (medians over the timing rounds)."""
    rows = []
    base = records["none"]
    for name, runs in records.items():
        timing = times[name]
        rows.append(
            {
                "attention": name,
                "parameters": runs[0]["params"],
                "params vs none": f"{runs[0]['params'] / base[0]['params'] - 1:+.1%}",
                "MACs": costs[name],
                "MACs vs none": f"{costs[name] / costs['none'] - 1:+.1%}",
                "test accuracy %": pct(values(runs, "test_accuracy")),
                "train accuracy %": pct(values(runs, "train_accuracy")),
                "train CPU ms/image": round(1000 * statistics.median(timing["train_cpu"]), 2),
                "train vs none": f"{statistics.median(relative(times, name, 'train_cpu')):+.0%}",
                "train images/s (wall)": round(1 / statistics.median(timing["train_wall"])),
                "inference CPU ms/image": round(
                    1000 * statistics.median(timing["inference_cpu"]), 3
                ),
                "inference vs none": (
                    f"{statistics.median(relative(times, name, 'inference_cpu')):+.0%}"
                ),
            }
        )
    return rows


def claims(records, times) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)``: accuracy against no attention and CBAM against SE, and
    the cost of each kind."""
    from kcnn.report import compare

    def accuracy(name):
        return values(records[name], "test_accuracy")

    def evidence(a, b):
        return f"{a} {pct(accuracy(a))} vs {b} {pct(accuracy(b))} % test accuracy"

    found = [
        (
            "Squeeze-and-excitation (channel attention) improves the ResNet's accuracy",
            compare(accuracy("se"), accuracy("none"), ACCURACY_FLOOR),
            evidence("se", "none"),
        ),
        (
            "Spatial attention improves the ResNet's accuracy",
            compare(accuracy("spatial"), accuracy("none"), ACCURACY_FLOOR),
            evidence("spatial", "none"),
        ),
        (
            "CBAM (channel + spatial) improves the ResNet's accuracy",
            compare(accuracy("cbam"), accuracy("none"), ACCURACY_FLOOR),
            evidence("cbam", "none"),
        ),
        (
            "CBAM improves it more than SE alone (Woo et al.)",
            compare(accuracy("cbam"), accuracy("se"), ACCURACY_FLOOR),
            evidence("cbam", "se"),
        ),
    ]
    base = records["none"]
    for name in ("se", "spatial", "cbam"):
        extra_params = records[name][0]["params"] / base[0]["params"] - 1
        extra_time = relative(times, name, "train_cpu")
        found.append(
            (
                f"{name} attention costs little: under {COST_LIMIT:.0%} more parameters and "
                'training time (Hu et al.\'s "slight additional cost")',
                False if extra_params >= COST_LIMIT else compare([COST_LIMIT], extra_time),
                f"parameters {extra_params:+.1%}, CPU time per training image "
                f"{pct(extra_time, 0)} % (over {len(extra_time)} rounds)",
            )
        )
    return found


def plot_cost(records, times, path) -> str:
    """Test accuracy (mean ± std over seeds) against the training CPU time per image (median,
    spread over rounds), one point per kind."""
    import numpy as np
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    for name, runs in records.items():
        accuracy = 100 * np.array(values(runs, "test_accuracy"))
        milliseconds = 1000 * np.array(times[name]["train_cpu"])
        axis.errorbar(
            np.median(milliseconds),
            accuracy.mean(),
            xerr=milliseconds.std(),
            yerr=accuracy.std(),
            fmt="o",
            capsize=4,
            label=name,
        )
        axis.annotate(
            name,
            (np.median(milliseconds), accuracy.mean()),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=9,
        )
    axis.set_xlabel("training CPU time per image (ms)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("ResNet with attention: accuracy against cost", fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path)


def plot_curves(records, path) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from kcnn.viz import save_figure

    figure = Figure(figsize=(6, 4.2))
    axis = figure.add_subplot(1, 1, 1)
    for name, runs in records.items():
        curve = mean_curve(runs, "val_accuracy")
        axis.plot(range(1, len(curve) + 1), curve, marker="o", label=name)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("epoch")
    axis.set_ylabel("validation accuracy (mean over seeds)")
    axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Attention in a ResNet: none, SE, spatial, CBAM")

    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    records = {label(kind): [] for kind in KINDS}
    start = time.perf_counter()
    journal = RunJournal(args, exclude=("rounds", "steps"))
    journal.start(args.seeds, records)
    for seed in range(args.seeds):
        for kind in KINDS:
            record = journal.run(
                label(kind),
                seed,
                functools.partial(
                    run,
                    MODEL,
                    splits,
                    args.epochs,
                    seed,
                    model_kwargs=model_kwargs(args, kind),
                    precision=args.precision,
                ),
            )
            records[label(kind)].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {label(kind):8s} test "
                f"{record['test_accuracy']:.4f} ({record['seconds']:.0f} s)",
                flush=True,
            )
    shape, classes = splits.train[0].shape[1:], len(splits.class_names)
    costs = {label(k): macs(args, k, shape, classes) for k in KINDS}
    times = time_variants(args, shape, classes)
    for claim, verdict, evidence in claims(records, times):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run. CIFAR-10 is not on this "
        "machine (no network), so the experiment runs on the dataset given by `--dataset`.\n\n"
        f"Model: `{MODEL}` with depths {tuple(args.depths)} and the CIFAR stem ((2, 2, 2) is "
        f"the course's Listing 4, TinyResNet), width {args.width}, attention in every "
        f"residual block (reduction ratio {args.attention_ratio} for SE and CBAM's channel "
        f"attention, 7x7 convolution for the spatial attention); Adam 1e-3, batch 128, "
        f"{args.epochs} epochs, precision `{args.precision}`, seeds 0-{args.seeds - 1} (mean ± std "
        f"over seeds). Times: medians over {args.rounds} interleaved rounds of {args.steps} "
        f"steps of {BATCH} images per variant; *vs none* compares the CPU time per image with "
        "no attention's in the same round. Wall-clock speeds depend on the load of the shared "
        "CPU (see the load average above)."
    )
    report.text(journal.describe())
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Accuracy and cost", summarise(records, costs, times))
    report.figure(
        plot_cost(records, times, os.path.join(args.out, "attention.png")),
        "test accuracy (mean ± std over seeds) against training CPU time per image "
        "(median and spread over rounds)",
    )
    report.figure(
        plot_curves(records, os.path.join(args.out, "curves.png")),
        "validation accuracy per epoch (mean over seeds)",
    )
    report.results["runs"] = records
    report.results["times"] = times
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
