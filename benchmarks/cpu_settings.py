"""Which CPU settings make kcnn's training faster? Issue 18, goal 1.

kcnn's training step for ``simple_cnn`` (the course's Listing 1: kcnn's input pipeline,
`kcnn.training.compile_model`, ``model.fit``) is timed once per setting, each in a fresh
process, since thread pools and oneDNN are fixed when TensorFlow starts, in the precision
``--precision`` names (float32 unless told; ``auto`` is what `kcnn.training.train` picks on
this machine):

- ``defaults``: what `kcnn.training.train` does (batch 128, TensorFlow's own thread counts,
  oneDNN on, tf.data's autotuning off);
- ``tf.data autotuning``: the same pipeline with tf.data's autotuning back on (TensorFlow's
  default, which kcnn's pipelines turn off: `kcnn.data.pipeline`);
- ``batch 256``: twice the batch (fewer, larger matrix products per epoch);
- ``steps_per_execution 8``: eight training steps per call into TensorFlow;
- ``inter-op 1``: ``TF_NUM_INTEROP_THREADS=1`` (one op at a time, each on every core);
- ``oneDNN off``: ``TF_ENABLE_ONEDNN_OPTS=0`` (Eigen's kernels);
- ``oneDNN bf16 math``: ``ONEDNN_DEFAULT_FPMATH_MODE=BF16``, which lets oneDNN compute a
  float32 convolution or matrix product in bfloat16 inside its kernels (inputs and outputs stay
  float32): the speed of bfloat16 units without Keras's casts, at bfloat16's rounding;
- ``JAX``: ``KERAS_BACKEND=jax`` (XLA-compiled step on the CPU, the same tf.data input).

Each process trains ``--epochs`` epochs of ``--images`` images in one ``fit`` (as
`kcnn.training.train` does) and reports the median images/s of the epochs after the first
(tracing and compilation excluded) and its CPU-seconds per wall-second. Settings run in
``--rounds`` interleaved rounds, so a burst of load hits each alike; the report gives each
setting's median over the rounds and its ratio to ``defaults``. Only throughput is measured:
a setting worth keeping must then keep its accuracy (``train_throughput.py --part
contenders``).

Usage:
    python benchmarks/cpu_settings.py                  # every setting, 2 rounds
    python benchmarks/cpu_settings.py --settings defaults,"batch 256" --rounds 3
    python benchmarks/cpu_settings.py --precision mixed_bfloat16   # the same settings in bfloat16

Writes ``results/cpu_settings.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time


@dataclasses.dataclass(frozen=True)
class Setting:
    environment: dict = dataclasses.field(default_factory=dict)
    batch_size: int = 128
    steps_per_execution: int = 1
    autotune: bool = False  # tf.data's autotuning, which kcnn's pipelines turn off


SETTINGS = {
    "defaults": Setting(),
    "tf.data autotuning": Setting(autotune=True),
    "batch 256": Setting(batch_size=256),
    "steps_per_execution 8": Setting(steps_per_execution=8),
    "inter-op 1": Setting({"TF_NUM_INTEROP_THREADS": "1"}),
    "oneDNN off": Setting({"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "oneDNN bf16 math": Setting({"ONEDNN_DEFAULT_FPMATH_MODE": "BF16"}),
    "JAX": Setting({"KERAS_BACKEND": "jax"}),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--settings",
        default=",".join(SETTINGS),
        help=f"comma-separated settings (default all: {', '.join(SETTINGS)})",
    )
    parser.add_argument("--images", type=int, default=30000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per process (first untimed)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument(
        "--precision",
        default="float32",
        choices=("auto", "float32", "mixed_bfloat16"),
        help="the Keras dtype policy of every setting (auto: what kcnn.training.train picks here)",
    )
    parser.add_argument("--data-dir", default=None, help="where to look for Fashion-MNIST first")
    parser.add_argument("--output", default="results/cpu_settings.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [name for name in args.settings.split(",") if name not in SETTINGS]
    if unknown:
        parser.error(f"--settings: unknown {', '.join(unknown)}; choose from {', '.join(SETTINGS)}")
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is not timed)")
    return args


def training_dataset(images, labels, setting: Setting):
    """kcnn's training pipeline at the setting's batch size, with tf.data's autotuning back on
    where the setting asks for it."""
    import tensorflow as tf

    from kcnn.data import make_dataset

    dataset, _ = make_dataset((images, labels), setting.batch_size, "train", validation_split=0.0)
    if setting.autotune:
        options = tf.data.Options()
        options.autotune.enabled = True
        dataset = dataset.with_options(options)
    return dataset


def train_once(args, setting: Setting) -> dict:
    """Train ``simple_cnn`` in this process; images/s and CPU use of the epochs after the first."""
    import keras

    import kcnn
    from kcnn.data.named import load_named
    from kcnn.training import compile_model, precision_policy

    x, y = load_named("fashion_mnist", args.data_dir).train
    x, y = x[: args.images], y[: args.images].astype("int64")
    dataset = training_dataset(x, y, setting)
    with precision_policy(args.precision) as precision:
        model = kcnn.create_model("simple_cnn", input_shape=(28, 28, 1), classes=10)
    compile_model(model, "adam", steps_per_execution=setting.steps_per_execution)
    epochs = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            wall = time.perf_counter() - self.wall
            epochs.append((len(x) / wall, (time.process_time() - self.cpu) / wall))

    model.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[Clock()], shuffle=False)
    timed = epochs[1:]
    return {
        "images_per_second": statistics.median(speed for speed, _ in timed),
        "cores_busy": statistics.median(cores for _, cores in timed),
        "backend": keras.backend.backend(),
        "precision": precision,
    }


def run_setting(name: str, args) -> dict:
    """`train_once` with the setting ``name`` in a fresh process."""
    environment = SETTINGS[name].environment
    command = [sys.executable, __file__, "--child", name, "--images", str(args.images)]
    command += ["--epochs", str(args.epochs), "--precision", args.precision]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    process = subprocess.run(command, capture_output=True, text=True, env=env)
    if process.returncode != 0:
        raise RuntimeError(f"setting {name!r} failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(train_once(args, SETTINGS[args.child])))
        return
    from kcnn.files import write_json
    from kcnn.report import describe_hardware

    names = args.settings.split(",")
    report = {"machine": describe_hardware(), "arguments": vars(args), "settings": {}}
    print(f"{report['machine']}; load average {os.getloadavg()[0]:.1f}", flush=True)
    runs = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            measured = run_setting(name, args)
            measured["load_average"] = os.getloadavg()[0]
            runs[name].append(measured)
            print(
                f"round {round_ + 1} {name:<22} {measured['images_per_second']:>7,.0f} img/s, "
                f"{measured['precision']}, {measured['cores_busy']:.2f} cores busy "
                f"(load {measured['load_average']:.1f})",
                flush=True,
            )
    base = statistics.median(run["images_per_second"] for run in runs[names[0]])
    for name in names:
        speed = statistics.median(run["images_per_second"] for run in runs[name])
        report["settings"][name] = {
            "images_per_second": speed,
            f"over_{names[0]}": speed / base,
            "runs": runs[name],
        }
        print(f"{name:<22} {speed:>7,.0f} img/s  x{speed / base:.2f} of {names[0]}")
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
