"""How much faster does kcnn's GroupedConv2D train than Keras's grouped Conv2D on this machine?

For each shape (a ResNeXt-like 3x3 convolution: channels, groups, image size), three one-layer
models (the convolution, global average pooling, a Dense classifier) train on the same random
batch with ``train_on_batch``: Keras's ``Conv2D(groups=g)``, kcnn's `GroupedConv2D` (the same
layer computed group by group on a CPU, see `kcnn.layers.convolution`) and, as the reference
for the work done, a standard ``Conv2D`` (``groups`` times the multiply-accumulates). Each
figure is the median milliseconds per training step over ``--rounds`` interleaved rounds of at
least ``--seconds`` each. Runs on the backend Keras is set to (``KERAS_BACKEND=jax ...``).

Usage:
    python benchmarks/grouped_conv.py
    KERAS_BACKEND=jax python benchmarks/grouped_conv.py --rounds 3

Writes ``results/grouped_conv.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

# (channels, groups, height = width): AlexNet's 2-GPU grouping, ResNeXt-50's 32x4d stages
SHAPES = ((32, 4, 28), (128, 32, 14), (256, 2, 13))
KINDS = ("keras grouped", "kcnn grouped", "standard")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--seconds", type=float, default=2.0, help="least time per measurement")
    parser.add_argument("--output", default="results/grouped_conv.json")
    return parser.parse_args(argv)


def model_of(kind: str, channels: int, groups: int, size: int, batch_size: int):
    """A one-convolution classifier with the convolution ``kind``, compiled, on one batch."""
    import keras
    import numpy as np

    from kcnn.layers.convolution import GroupedConv2D

    conv = {
        "keras grouped": lambda: keras.layers.Conv2D(channels, 3, padding="same", groups=groups),
        "kcnn grouped": lambda: GroupedConv2D(channels, 3, padding="same", groups=groups),
        "standard": lambda: keras.layers.Conv2D(channels, 3, padding="same"),
    }[kind]()
    inputs = keras.Input((size, size, channels))
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(batch_size, size, size, channels)).astype("float32")
    labels = rng.integers(0, 10, batch_size)
    model.train_on_batch(images, labels)  # compile and warm up
    return model, images, labels


def step_milliseconds(model, images, labels, seconds: float) -> float:
    """Mean milliseconds per training step over at least ``seconds``."""
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or steps < 2:
        model.train_on_batch(images, labels)
        steps += 1
    return (time.perf_counter() - start) / steps * 1000


def main(argv=None):
    args = parse_args(argv)
    import keras

    from kcnn.files import write_json
    from kcnn.layers.convolution import computes_on_cpu
    from kcnn.report import describe_hardware

    print(f"{describe_hardware()}; Keras on {keras.backend.backend()}", flush=True)
    print(f"kcnn computes grouped convolutions group by group here: {computes_on_cpu()}")
    results = []
    for channels, groups, size in SHAPES:
        models = {k: model_of(k, channels, groups, size, args.batch_size) for k in KINDS}
        times = {kind: [] for kind in KINDS}
        for _ in range(args.rounds):
            for kind in KINDS:
                times[kind].append(step_milliseconds(*models[kind], args.seconds))
        median = {kind: statistics.median(values) for kind, values in times.items()}
        row = {
            "channels": channels,
            "groups": groups,
            "size": size,
            "ms_per_step": median,
            "kcnn_speedup": median["keras grouped"] / median["kcnn grouped"],
        }
        results.append(row)
        print(
            f"C={channels:4d} groups={groups:2d} {size}x{size}, batch {args.batch_size}: "
            f"Keras grouped {median['keras grouped']:8.1f} ms/step, kcnn grouped "
            f"{median['kcnn grouped']:7.1f}, standard (x{groups} the MACs) "
            f"{median['standard']:7.1f}: kcnn {row['kcnn_speedup']:.1f}x Keras",
            flush=True,
        )
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    write_json(
        args.output,
        {"hardware": describe_hardware(), "backend": keras.backend.backend(), "shapes": results},
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
