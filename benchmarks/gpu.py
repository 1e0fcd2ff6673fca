"""How fast do kcnn's ResNets train on a GPU? Training images/s on synthetic data, on JAX.

Issue 18, goal 3. kcnn's ResNet-50 at 224 px (1000 classes, batch 256) and ResNet-18 with the
CIFAR stem at 32 px (10 classes, batch 512), each trained by ``model.fit`` (SGD with momentum
0.9, sparse categorical cross-entropy) in float32 and in mixed bfloat16, with XLA compilation of
the training step (``jit_compile=True``) and without it (op by op), on Keras's JAX backend. The
data is one batch of random images and labels put on the device once and fed again at every
step, so the numbers are the training step's alone, as in NVIDIA's synthetic-data benchmark.
float32 is JAX's default precision, which lets cuDNN use TF32 on Ampere and later GPUs, as
TensorFlow does by default.

Each setting is one ``fit`` of short epochs (``--steps-per-epoch`` steps). The first
``--warmup-epochs`` (compilation, autotuning) are excluded; then epochs are timed until
``--seconds`` have passed. An epoch's time ends when its loss has been read back from the
device, so it holds all its steps. Each figure is printed as it is measured and the JSON file
is rewritten after each, so a run cut short keeps what it measured.

Anchor: NVIDIA's tuned TensorFlow ResNet-50 v1.5 (DeepLearningExamples), mixed precision and
XLA, trains 2,375 images/s on one A100-40GB; the goal for kcnn on an H200 is >= 3,000.

Usage (on the device machine, with the keras wheels carried; see ``benchmarks/README.md``):
    KERAS_BACKEND=jax python benchmarks/gpu.py --out $OUT/gpu.json
    python benchmarks/gpu.py --smoke     # a few steps at tiny sizes, on CPU: checks the script

Writes ``$OUT/gpu.json`` when ``OUT`` is set, else ``results/gpu.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

PRECISIONS = ("mixed_bfloat16", "float32")
ANCHOR = {
    "what": "NVIDIA's tuned TensorFlow ResNet-50 v1.5, mixed precision + XLA",
    "device": "one A100-40GB",
    "images_per_second": 2375,
    "goal_on_h200": 3000,
}


@dataclasses.dataclass(frozen=True)
class Workload:
    """One model to train: its registry name and options, image size, classes and batch."""

    model: str
    image_size: int
    classes: int
    batch_size: int
    options: tuple = ()


WORKLOADS = {
    "resnet50": Workload("resnet50", 224, 1000, 256),
    "resnet18": Workload("resnet18", 32, 10, 512, (("stem", "cifar"),)),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        default="resnet50,resnet18",
        help=f"comma-separated, from {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--precisions",
        default=",".join(PRECISIONS),
        help=f"comma-separated, from {', '.join(PRECISIONS)}",
    )
    parser.add_argument("--xla", default="on,off", help="'on', 'off' or 'on,off'")
    parser.add_argument("--steps-per-epoch", type=int, default=10)
    parser.add_argument(
        "--warmup-epochs",
        type=int,
        default=1,
        help="epochs excluded from the timing (the first compiles)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="time each setting for at least this long (one epoch at least)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=50, help="timed epochs at most, however short they are"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="batch 2 at 32 px, one warm-up and one timed step: checks the script",
    )
    parser.add_argument(
        "--out", default=None, help="the JSON file (default: $OUT/gpu.json, else results/gpu.json)"
    )
    args = parser.parse_args(argv)
    try:
        args.models = _choices("--models", args.models, WORKLOADS)
        args.precisions = _choices("--precisions", args.precisions, PRECISIONS)
        args.xla = [value == "on" for value in _choices("--xla", args.xla, ("on", "off"))]
    except ValueError as error:
        parser.error(str(error))
    if args.smoke:
        args.steps_per_epoch, args.warmup_epochs, args.seconds, args.max_epochs = 1, 1, 0.0, 1
    if args.out is None:
        folder = os.environ.get("OUT") or "results"
        args.out = os.path.join(folder, "gpu.json")
    return args


def _choices(option, text, allowed):
    from kcnn import checks

    return [checks.choice(option, value, tuple(allowed)) for value in text.split(",")]


def workload_for(name, smoke):
    """The workload of ``name``; with ``smoke``, the same model at 32 px and batch 2."""
    workload = WORKLOADS[name]
    if smoke:
        return dataclasses.replace(workload, image_size=32, batch_size=2)
    return workload


def device_description():
    """The accelerator JAX trains on, e.g. ``{"kind": "NVIDIA H200", "platform": "gpu", ...}``."""
    import jax

    devices = jax.devices()
    return {
        "kind": devices[0].device_kind,
        "platform": devices[0].platform,
        "count": len(devices),
        "jax": jax.__version__,
    }


def synthetic_batches(workload):
    """An endless generator of one batch of random images and labels, kept on the device."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (workload.batch_size, workload.image_size, workload.image_size, 3)
    images = keras.ops.convert_to_tensor(rng.uniform(0, 1, shape).astype("float32"))
    labels = keras.ops.convert_to_tensor(
        rng.integers(0, workload.classes, workload.batch_size).astype("int32")
    )
    while True:
        yield images, labels


def epoch_clock(warmup_epochs, seconds, max_epochs):
    """A callback that times epochs after the warm-up ones and stops the fit when enough are.

    Reading an epoch's loss waits for the device to finish its steps, so each end time is
    where the work ended, not where Python stopped queueing it.
    """
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            float(logs["loss"])
            self.ends.append(time.perf_counter())
            timed = self.timed_epochs()
            if timed >= max_epochs or (timed >= 1 and self.timed_seconds() >= seconds):
                self.model.stop_training = True

        def timed_epochs(self):
            return max(0, len(self.ends) - 1 - warmup_epochs)

        def timed_seconds(self):
            return self.ends[-1] - self.ends[warmup_epochs] if self.timed_epochs() else 0.0

        def warmup_seconds(self):
            return self.ends[min(warmup_epochs, len(self.ends) - 1)] - self.ends[0]

    return EpochClock()


def measure(workload, precision, jit_compile, args):
    """Training images/s of ``workload`` in ``precision``, with or without XLA."""
    import keras

    import kcnn

    keras.utils.clear_session()
    keras.config.set_dtype_policy(precision)
    try:
        model = kcnn.create_model(
            workload.model,
            input_shape=(workload.image_size, workload.image_size, 3),
            classes=workload.classes,
            **dict(workload.options),
        )
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    clock = epoch_clock(args.warmup_epochs, args.seconds, args.max_epochs)
    model.fit(
        synthetic_batches(workload),
        steps_per_epoch=args.steps_per_epoch,
        epochs=args.warmup_epochs + args.max_epochs,
        callbacks=[clock],
        shuffle=False,
        verbose=0,
    )
    steps = clock.timed_epochs() * args.steps_per_epoch
    return {
        "model": workload.model,
        "options": dict(workload.options),
        "image_size": workload.image_size,
        "batch_size": workload.batch_size,
        "precision": precision,
        "jit_compile": jit_compile,
        "images_per_second": steps * workload.batch_size / clock.timed_seconds(),
        "timed_steps": steps,
        "timed_seconds": clock.timed_seconds(),
        "warmup_seconds": clock.warmup_seconds(),
    }


def describe(result):
    """One line for a result; ResNet-50's show the anchor beside them."""
    line = (
        f"{result['model']:>9} {result['image_size']:>3} px batch {result['batch_size']:>3}"
        f"  {result['precision']:<14} XLA {'on ' if result['jit_compile'] else 'off'}"
        f"  {result['images_per_second']:>9,.0f} images/s"
        f"  ({result['timed_steps']} steps in {result['timed_seconds']:.1f} s,"
        f" warm-up {result['warmup_seconds']:.1f} s)"
    )
    if result["model"] == "resnet50":
        line += (
            f"  | anchor {ANCHOR['images_per_second']:,} (A100-40GB, mixed + XLA),"
            f" goal >= {ANCHOR['goal_on_h200']:,} on an H200"
        )
    return line


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    args = parse_args(argv)
    import keras

    from kcnn.files import write_json
    from kcnn.report import describe_hardware

    if keras.backend.backend() != "jax":
        raise SystemExit("benchmarks/gpu.py runs on Keras's JAX backend: set KERAS_BACKEND=jax")
    report = {
        "device": device_description(),
        "machine": describe_hardware(),
        "keras": keras.__version__,
        "smoke": args.smoke,
        "anchor": ANCHOR,
        "arguments": vars(args),
        "results": [],
    }
    print(
        f"device: {report['device']['kind']} ({report['device']['platform']}); {report['machine']}",
        flush=True,
    )
    print(
        f"anchor: {ANCHOR['what']}, {ANCHOR['images_per_second']:,} images/s on "
        f"{ANCHOR['device']}; goal >= {ANCHOR['goal_on_h200']:,} on an H200",
        flush=True,
    )
    for jit_compile in args.xla:
        for name in args.models:
            for precision in args.precisions:
                result = measure(workload_for(name, args.smoke), precision, jit_compile, args)
                report["results"].append(result)
                print(describe(result), flush=True)
                write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
