"""Where does the time of a training step go? TensorFlow's profiler on kcnn's training loop.

Trains ``--model`` on ``--images`` Fashion-MNIST images with `kcnn.training.train` for two
epochs and records the second with TensorFlow's profiler (the first traces the step). Then
reads the profiler's timeline (the XSpace protobuf it writes) and reports, over the recorded
steps:

- the steps' wall-clock time and images/s;
- ``busy``: the share of that time during which at least one TensorFlow op ran on the
  executor's threads (the rest is Python's loop, the input pipeline's hand-off and scheduling);
- ``convolution``: the share during which a convolution ran (forward, or either gradient);
- each kernel's milliseconds per step, summed over the threads (two ops can run at once, as
  the two gradients of one convolution do, so the sum can exceed the wall-clock time).

What this answers: if ``busy`` is near 1 and most of it is convolutions, the step is bound by
oneDNN's convolution kernels, which any Keras program of the same network runs too, and no
setting of the training loop can make it much faster; a low ``busy`` points at the loop.

Usage:
    python benchmarks/step_profile.py                        # simple_cnn, float32, batch 128
    python benchmarks/step_profile.py --batch-size 32        # plain Keras's default batch
    python benchmarks/step_profile.py --precision mixed_bfloat16

Writes ``results/step_profile.json``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STEP_EVENT = "multi_step_on_iterator"  # Keras's traced training function, one call a step


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="simple_cnn", help="a registry name")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--precision", choices=("float32", "mixed_bfloat16", "auto"), default="float32"
    )
    parser.add_argument("--images", type=int, default=20480, help="training images per epoch")
    parser.add_argument("--data-dir", default=None, help="where to look for Fashion-MNIST first")
    parser.add_argument("--top", type=int, default=12, help="kernels to print")
    parser.add_argument("--output", default="results/step_profile.json")
    args = parser.parse_args(argv)
    for name in ("batch_size", "images", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def union_seconds(intervals) -> float:
    """Seconds covered by at least one of ``intervals`` (``(start, end)`` pairs in
    picoseconds), overlaps counted once."""
    covered, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            covered += stop - start
            end = stop
        elif stop > end:
            covered += stop - end
            end = stop
    return covered / 1e12


def kernel_name(event_name: str) -> str | None:
    """The kernel of a TensorFlow op event, ``"layer/op:Kernel"`` -> ``"Kernel"``; None for
    the executor's own events (``"ExecutorState::Process"``, ``"ExecutorDoneCallback"``)."""
    op, colon, kernel = event_name.rpartition(":")
    return kernel if colon and op and not op.endswith(":") else None


def timeline(xspace_path: str) -> dict:
    """The step intervals and each op's interval and kernel, from a profiler XSpace file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(xspace_path, "rb") as file:
        space.ParseFromString(file.read())
    steps, ops = [], []
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            origin = line.timestamp_ns * 1000
            for event in line.events:
                name = names.get(event.metadata_id, "")
                interval = (origin + event.offset_ps, origin + event.offset_ps + event.duration_ps)
                if line.name == "python" and name == STEP_EVENT:
                    steps.append(interval)
                elif line.name.startswith("tf_Compute") and (kernel := kernel_name(name)):
                    ops.append((interval, kernel))
    return {"steps": steps, "ops": ops}


def summarize(recorded: dict, batch_size: int) -> dict:
    """Wall-clock time, busy and convolution shares and per-kernel time of the steps."""
    steps, ops = recorded["steps"], recorded["ops"]
    if not steps:
        raise RuntimeError(f"the profile holds no {STEP_EVENT!r} event: no step was recorded")
    wall = (max(stop for _, stop in steps) - min(start for start, _ in steps)) / 1e12
    kernels = collections.Counter()
    for (start, stop), kernel in ops:
        kernels[kernel] += (stop - start) / 1e12
    convolutions = [interval for interval, kernel in ops if "Conv2D" in kernel]
    return {
        "steps": len(steps),
        "wall_seconds": wall,
        "images_per_second": len(steps) * batch_size / wall,
        "busy": union_seconds(interval for interval, _ in ops) / wall,
        "convolution": union_seconds(convolutions) / wall,
        "kernel_ms_per_step": {
            kernel: 1000 * seconds / len(steps) for kernel, seconds in kernels.most_common()
        },
    }


def profile(args) -> dict:
    """Train two epochs, the second under the profiler; the summary of its steps."""
    import keras
    import tensorflow as tf

    from kcnn.data.named import load_named
    from kcnn.training import train

    raw = load_named("fashion_mnist", args.data_dir)
    (x, y), (x_test, y_test) = raw.train, raw.test
    data = ((x[: args.images], y[: args.images]), (x_test[:512], y_test[:512]))

    with tempfile.TemporaryDirectory(prefix="kcnn-profile-") as folder:

        class ProfileSecondEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    tf.profiler.experimental.start(folder)

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    tf.profiler.experimental.stop()

        result = train(
            args.model,
            data,
            epochs=2,
            batch_size=args.batch_size,
            precision=args.precision,
            validation_split=0.0,
            tensorboard=False,
            verbose=0,
            callbacks=[ProfileSecondEpoch()],
        )
        paths = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
        if not paths:
            raise RuntimeError(f"TensorFlow's profiler wrote no timeline in {folder}")
        summary = summarize(timeline(paths[0]), args.batch_size)
    return {"precision": result.precision, **summary}


def main(argv=None):
    args = parse_args(argv)
    from kcnn.files import write_json
    from kcnn.report import describe_hardware

    machine = describe_hardware()
    load = os.getloadavg()[0]
    summary = profile(args)
    report = {
        "machine": machine,
        "arguments": vars(args),
        "load_average": [load, os.getloadavg()[0]],
        **summary,
    }
    print(
        f"{machine}\n{args.model}, batch {args.batch_size}, {summary['precision']}: "
        f"{summary['steps']} steps in {summary['wall_seconds']:.2f} s "
        f"({summary['images_per_second']:,.0f} images/s; load {load:.1f}->"
        f"{report['load_average'][1]:.1f}); an op ran {100 * summary['busy']:.0f} % of the "
        f"time, a convolution {100 * summary['convolution']:.0f} %"
    )
    print("kernel time per step, summed over threads:")
    for kernel, ms in list(summary["kernel_ms_per_step"].items())[: args.top]:
        print(f"  {ms:7.2f} ms  {kernel}")
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
