"""Standard, depthwise-separable, dilated and grouped convolutions at equal depth, and the
course's 3x3 rule: two stacked 3x3 convolutions against one 5x5.

The course (Module 3, "Convolutions avancées : efficacité et performance"; chapter 07, VGG):
"2 convolutions 3x3 = receptive field 5x5, but with fewer parameters and more non-linearity",
``Params(5x5) = 25C²`` against ``Params(3x3 x 2) = 18C²``. Separable convolutions (Howard et
al., "MobileNets", 2017) cost ``k²C + C²`` instead of ``k²C²``; dilated ones (Yu & Koltun,
ICLR 2016) widen the receptive field at the same cost; grouped ones (Krizhevsky et al. 2012,
Xie et al.'s ResNeXt, CVPR 2017) divide the cost by the number of groups.

One network, built by this script from kcnn's convolution factory
(`kcnn.layers.convolution`, the ``conv=`` / ``dilation=`` / ``groups=`` of the builders) and
registered for the experiment as ``conv_study``: a 3x3 stem to ``--channels`` channels, then
two stages of ``convs`` convolutions of the kind studied (``C`` to ``C`` channels, ReLU), each
closed by a 2x2 max-pool, global average pooling and the classifier. Every kind has two 3x3
convolutions per stage; ``5x5`` has one 5x5 convolution per stage: the same receptive field as
``standard``. Measured: parameters, MACs (`kcnn.convmath.macs`), receptive field
(`kcnn.convmath.receptive_field`), CPU time per image of inference (this process's CPU
seconds, medians over ``--rounds`` interleaved rounds) and test accuracy after the same
training (Adam 1e-3). A difference counts only beyond the seeds' spread
(`kcnn.report.compare`).

Writes ``report.md``, ``results.json`` and ``convolutions.png`` (test accuracy against
parameters and against CPU time per image).

Example:
    python experiments/convolutions.py --quick
    python experiments/convolutions.py --seeds 3
"""

from __future__ import annotations

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
    open_report,
    parser,
    pct,
    positive,
    run,
    run_progress,
    values,
    write_report,
)

MODEL = "conv_study"
# name: (conv, kernel size, convolutions per stage, dilation, groups)
KINDS = {
    "standard": ("standard", 3, 2, 1, 1),
    "separable": ("separable", 3, 2, 1, 1),
    "dilated": ("standard", 3, 2, 2, 1),
    "grouped": ("standard", 3, 2, 1, 4),
    "5x5": ("standard", 5, 1, 1, 1),
}
QUICK = dict(
    train_size=300, validation_size=100, test_size=300, epochs=1, seeds=1, channels=8, rounds=2
)
FULL = dict(
    train_size=10000,
    validation_size=1000,
    test_size=None,
    epochs=10,
    seeds=3,
    channels=32,
    rounds=7,
)
TIMING_BATCH = 128


def conv_study(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="conv_study",
    channels=32,
    conv="standard",
    kernel_size=3,
    convs=2,
    dilation=1,
    groups=1,
):
    """The experiment's network: a 3x3 stem to ``channels``, two stages of ``convs``
    convolutions (``channels`` to ``channels``, kind ``conv`` with ``kernel_size``,
    ``dilation`` and ``groups``, ReLU) each closed by a 2x2 max-pool, global average pooling,
    the classifier. ``include_top=False`` returns the pooled features (``pooling`` is always
    global average)."""
    from keras import layers

    from kcnn.layers.convolution import convolution
    from kcnn.models.common import classifier, finish, model_input

    inputs = model_input(input_tensor, input_shape or (28, 28, 1))
    x = layers.Conv2D(channels, 3, padding="same", activation="relu", name="stem_conv")(inputs)
    for stage in (1, 2):
        for index in range(1, convs + 1):
            x = convolution(
                conv,
                channels,
                kernel_size,
                dilation=dilation,
                groups=groups,
                activation="relu",
                name=f"stage{stage}_conv{index}",
            )(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)


def register() -> None:
    """Put `conv_study` in kcnn's registry (once per process), so `common.run` trains it."""
    import kcnn
    from kcnn.registry import register_model

    if MODEL not in kcnn.list_models():
        register_model(
            MODEL,
            family="experiment",
            paper="experiments/convolutions.py",
            input_shape=(28, 28, 1),
            min_input_size=4,
            gradcam_layer="stage2_conv2",
        )(conv_study)


def model_kwargs(args, kind) -> dict:
    conv, kernel, convs, dilation, groups = KINDS[kind]
    return {
        "channels": args.channels,
        "conv": conv,
        "kernel_size": kernel,
        "convs": convs,
        "dilation": dilation,
        "groups": groups,
    }


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "convolutions")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    add_plan_option(
        result,
        "--channels",
        QUICK,
        FULL,
        "channels C of every convolution",
        note="a multiple of 4, the groups",
        type=int,
    )
    add_plan_option(result, "--rounds", QUICK, FULL, "timing rounds", type=int)
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds", "channels", "rounds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    if args.channels % 4:
        raise ValueError(f"--channels must be a multiple of 4 (the groups), got {args.channels}")
    return args


def stage_kernel_weights(model) -> int:
    """Kernel weights (no biases) of the stages' convolutions: what the 18C² vs 25C² counts."""
    total = 0
    for layer in model.layers:
        if layer.name.startswith("stage") and "_conv" in layer.name:
            total += sum(
                int(np.prod(w.shape)) for w in layer.trainable_weights if "kernel" in w.path
            )
    return total


def describe(args, kind, shape, classes) -> dict:
    """Parameters, MACs, stage kernel weights and receptive field of one kind (untrained)."""
    import kcnn
    from kcnn import convmath

    model = kcnn.create_model(MODEL, input_shape=shape, classes=classes, **model_kwargs(args, kind))
    return {
        "params": int(model.count_params()),
        "macs": int(convmath.macs(model)),
        "stage_kernel_weights": stage_kernel_weights(model),
        "receptive_field": convmath.receptive_field(model)["stage2_pool"].size[0],
    }


def cpu_per_image(models: dict, images, rounds: int) -> dict:
    """``{kind: [CPU seconds per image, one per round]}`` of inference on one batch, the
    kinds interleaved within each round (after one call that traces)."""
    batch = np.asarray(images[:TIMING_BATCH], dtype="float32")
    for model in models.values():
        model.predict_on_batch(batch)
    times = {kind: [] for kind in models}
    for _ in range(rounds):
        for kind, model in models.items():
            start = time.process_time()
            for _ in range(3):
                model.predict_on_batch(batch)
            times[kind].append((time.process_time() - start) / (3 * len(batch)))
    return times


def train_all(args, splits) -> tuple[dict, dict]:
    records = {kind: [] for kind in KINDS}
    models = {}
    start = time.perf_counter()
    progress = run_progress(args.seeds, KINDS)
    for seed in range(args.seeds):
        for kind in KINDS:
            progress.step(f"seed {seed}, {kind}")
            record = run(
                MODEL,
                splits,
                args.epochs,
                seed,
                model_kwargs=model_kwargs(args, kind),
                precision=args.precision,
                keep_model=seed == 0,
            )
            if seed == 0:
                models[kind] = record.pop("model")
            records[kind].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {kind:10s} test "
                f"{record['test_accuracy']:.4f}",
                flush=True,
            )
    return records, cpu_per_image(models, splits.test[0], args.rounds)


def summarise(records, costs, times) -> list[dict]:
    rows = []
    for kind, runs in records.items():
        conv, kernel, convs, dilation, groups = KINDS[kind]
        rows.append(
            {
                "convolution": kind,
                "layers per stage": f"{convs} x {kernel}x{kernel}",
                "dilation": dilation,
                "groups": groups,
                "parameters": costs[kind]["params"],
                "stage kernel weights": costs[kind]["stage_kernel_weights"],
                "MACs": costs[kind]["macs"],
                "receptive field": costs[kind]["receptive_field"],
                "CPU ms/image": round(1000 * statistics.median(times[kind]), 3),
                "test accuracy %": pct(values(runs, "test_accuracy")),
            }
        )
    return rows


def claims(args, records, costs, times) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)``: the 3x3 rule, then each kind's cost and accuracy."""
    from kcnn.report import compare, no_worse

    def accuracy(kind):
        return values(records[kind], "test_accuracy")

    c = args.channels
    three, five = costs["standard"], costs["5x5"]
    found = [
        (
            "Two stacked 3x3 convolutions see what one 5x5 sees (same receptive field)",
            three["receptive_field"] == five["receptive_field"],
            f"{three['receptive_field']} vs {five['receptive_field']} pixels after both stages",
        ),
        (
            "Two 3x3 convolutions have 18C² weights where one 5x5 has 25C²",
            (three["stage_kernel_weights"], five["stage_kernel_weights"])
            == (2 * 18 * c * c, 2 * 25 * c * c),
            f"C = {c}, two stages: {three['stage_kernel_weights']:,} vs "
            f"{five['stage_kernel_weights']:,} kernel weights (18C² x 2 = {36 * c * c:,}, "
            f"25C² x 2 = {50 * c * c:,})",
        ),
        (
            "Two 3x3 convolutions are at least as accurate as one 5x5",
            no_worse(accuracy("standard"), accuracy("5x5"), ACCURACY_FLOOR),
            f"{pct(accuracy('standard'))} vs {pct(accuracy('5x5'))} % test accuracy",
        ),
    ]
    standard_params = costs["standard"]["params"]
    for kind in ("separable", "grouped"):
        found.append(
            (
                f"{kind.capitalize()} convolutions need fewer parameters and MACs than "
                "standard ones",
                costs[kind]["params"] < standard_params and costs[kind]["macs"] < three["macs"],
                f"{costs[kind]['params']:,} vs {standard_params:,} parameters, "
                f"{costs[kind]['macs']:,} vs {three['macs']:,} MACs",
            )
        )
        found.append(
            (
                f"{kind.capitalize()} convolutions take less CPU time per image than standard ones",
                compare(times["standard"], times[kind]),
                f"{1000 * statistics.median(times[kind]):.3f} vs "
                f"{1000 * statistics.median(times['standard']):.3f} ms (medians over "
                f"{len(times[kind])} rounds)",
            )
        )
        found.append(
            (
                f"{kind.capitalize()} convolutions are about as accurate as standard ones (at most "
                f"{ACCURACY_FLOOR:.1%} less)",
                no_worse(accuracy(kind), accuracy("standard"), ACCURACY_FLOOR),
                f"{pct(accuracy(kind))} vs {pct(accuracy('standard'))} % test accuracy",
            )
        )
    found.append(
        (
            "Dilated convolutions widen the receptive field at the same cost",
            costs["dilated"]["receptive_field"] > three["receptive_field"]
            and costs["dilated"]["params"] == standard_params,
            f"{costs['dilated']['receptive_field']} vs {three['receptive_field']} pixels, "
            f"{costs['dilated']['params']:,} vs {standard_params:,} parameters",
        )
    )
    return found


def plot(records, costs, times, path) -> str:
    """Test accuracy against parameters, and against CPU time per image."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(10, 4))
    for column, (title, cost) in enumerate(
        (
            ("parameters", lambda kind: costs[kind]["params"]),
            ("inference CPU ms per image", lambda kind: 1000 * statistics.median(times[kind])),
        )
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        for kind, runs in records.items():
            accuracy = 100 * np.array(values(runs, "test_accuracy"))
            axis.errorbar(cost(kind), accuracy.mean(), yerr=accuracy.std(), fmt="o", capsize=4)
            axis.annotate(
                kind,
                (cost(kind), accuracy.mean()),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=9,
            )
        axis.set_xlabel(title)
        axis.set_ylabel("test accuracy (%)")
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Convolutions: standard, separable, dilated, grouped; 3x3 vs 5x5")
    register()
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    shape, classes = splits.train[0].shape[1:], len(splits.class_names)
    costs = {kind: describe(args, kind, shape, classes) for kind in KINDS}
    records, times = train_all(args, splits)
    for claim, verdict, evidence in claims(args, records, costs, times):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run.\n\n"
        f"Network: `{MODEL}` (this script), C = {args.channels} channels everywhere; Adam 1e-3, "
        f"batch 128, {args.epochs} epochs, precision `{args.precision}`, seeds "
        f"0-{args.seeds - 1} (mean ± std over seeds). Stage kernel weights: the stages' "
        "convolution kernels without biases (the course's count). Receptive field: of the last "
        f"stage's output, in pixels. CPU time: inference on a batch of {TIMING_BATCH} test "
        f"images, medians over {args.rounds} interleaved rounds (CPU seconds of this process)."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Cost and accuracy per convolution", summarise(records, costs, times))
    report.figure(
        plot(records, costs, times, os.path.join(args.out, "convolutions.png")),
        "test accuracy against parameters and against inference CPU time per image",
    )
    report.results["runs"] = records
    report.results["times"] = times
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
