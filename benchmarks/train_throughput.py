"""How fast does kcnn train, and what do its defaults buy? Training images per second.

Two parts, each measured in one run:

``precision``: the same network trained by ``model.fit`` in float32, mixed bfloat16 and with
    XLA, one epoch of each in turn for ``--rounds`` rounds (interleaved, so a burst of load
    from other processes hits every setting alike). Reports the median of wall-clock images/s
    and of images per CPU-second of this process: on a shared machine the second is the
    steadier measure of the work a setting needs. This is what ``precision="auto"`` and
    ``jit_compile="auto"`` are chosen from.

``contenders``: ``simple_cnn`` (the course's Listing 1) on Fashion-MNIST for ``--epochs``
    epochs on the 60,000 training images, test accuracy on the 10,000 test images, by
    (1) `kcnn.training.train` with its defaults (what ``kcnn train`` runs; ``--kcnn-precision
    float32`` fixes its precision, to time on a CPU with AMX the float32 path that CPUs
    without bfloat16 hardware take), (2) the same
    network written by hand in plain Keras with Keras's defaults (``Sequential``, ``fit`` on
    NumPy arrays scaled to [0, 1], batch 32, float32), and (3) the course's PyTorch Listing 1 +
    Listing 2 (batch 64, Adam 1e-3, per-image ToTensor + Normalize in the Dataset, as
    torchvision's transforms do; skipped with a message when torch is not installed).
    Images/s count the training loop only (evaluation excluded), first epoch included. Each
    contender runs once per round for ``--rounds`` rounds, in the reverse order every other
    round; kcnn's speed-up over another is the median of the ratios within each round (this
    shared VM's speed drifts by a third within an hour: one run of each is not a measurement).

Usage:
    python benchmarks/train_throughput.py                    # both parts
    python benchmarks/train_throughput.py --part precision --models simple_cnn,tiny_resnet
    python benchmarks/train_throughput.py --part contenders --epochs 3 --no-torch
    python benchmarks/train_throughput.py --part contenders --epochs 3 --kcnn-precision float32
    python benchmarks/train_throughput.py --quick            # a smoke run

Writes ``results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SETTINGS = (("float32", False), ("mixed_bfloat16", False), ("float32", True))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "precision", "contenders"), default="all")
    parser.add_argument("--data-dir", default=None, help="where to look for Fashion-MNIST first")
    parser.add_argument(
        "--models",
        default="simple_cnn",
        help="comma-separated registry names for the precision part",
    )
    parser.add_argument(
        "--precision-images",
        type=int,
        default=12800,
        help="training images per timed epoch in the precision part",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (both parts)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each contender")
    parser.add_argument(
        "--limit", type=int, default=None, help="use only this many training images"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch listing")
    parser.add_argument(
        "--kcnn-precision",
        choices=("auto", "float32", "mixed_bfloat16"),
        default="auto",
        help="kcnn's precision in the contenders part (default auto, its default)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny run, to check the script")
    parser.add_argument("--output", default="results/train_throughput.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.precision_images, args.rounds, args.epochs, args.limit = 512, 1, 1, 2048
    return args


def load_arrays(data_dir, limit):
    """Fashion-MNIST as uint8 arrays, through kcnn.data (the same files every contender reads)."""
    from kcnn.data.named import load_named

    raw = load_named("fashion_mnist", data_dir)
    (x_train, y_train), (x_test, y_test) = raw.train, raw.test
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    return (x_train, y_train.astype("int64")), (x_test, y_test.astype("int64"))


class CpuClock:
    """Wall-clock and CPU seconds of this process over the training phase of each epoch."""

    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    def start(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def keras_clock():
    import keras

    clock = CpuClock()

    class Callback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            clock.start()

        def on_epoch_end(self, epoch, logs=None):
            clock.stop()

    return clock, Callback()


def precision_part(args, train):
    """Median images/s of each setting of `SETTINGS`, per model, interleaved."""
    import keras
    import tensorflow as tf

    import kcnn
    from kcnn.training import compile_model

    x, y = train
    count = min(args.precision_images, len(x))
    dataset = tf.data.Dataset.from_tensor_slices((x[:count] / 255.0, y[:count]))
    dataset = dataset.batch(128).cache().prefetch(tf.data.AUTOTUNE)
    results = {}
    for name in args.models.split(","):
        models = {}
        for precision, jit in SETTINGS:
            keras.config.set_dtype_policy(precision)
            model = kcnn.create_model(name, input_shape=x.shape[1:], classes=10)
            keras.config.set_dtype_policy("float32")
            compile_model(model, "adam", jit_compile=jit)
            # trace and compile outside the clock
            model.fit(dataset.take(2), epochs=1, verbose=0, shuffle=False)
            models[f"{precision}{' + XLA' if jit else ''}"] = model
        wall = {key: [] for key in models}
        cpu = {key: [] for key in models}
        for _ in range(args.rounds):
            for key, model in models.items():
                clock, callback = keras_clock()
                model.fit(dataset, epochs=1, verbose=0, callbacks=[callback], shuffle=False)
                wall[key].append(count / clock.wall)
                cpu[key].append(count / clock.cpu)
        results[name] = {
            key: {
                "images_per_second": statistics.median(wall[key]),
                "images_per_cpu_second": statistics.median(cpu[key]),
                "all_wall": wall[key],
                "all_cpu": cpu[key],
            }
            for key in models
        }
        base = results[name]["float32"]
        for key, value in results[name].items():
            print(
                f"{name:<12} {key:<16} {value['images_per_second']:>8,.0f} img/s "
                f"{value['images_per_cpu_second']:>8,.0f} img/CPU-s   "
                f"x{value['images_per_cpu_second'] / base['images_per_cpu_second']:.2f} "
                f"of float32 (per CPU-s)",
                flush=True,
            )
        results[name]["verdict"] = bfloat16_verdict(results[name])
        print(f"{name:<12} {results[name]['verdict']['line']}", flush=True)
        keras.utils.clear_session(free_memory=True)
    return results


def bfloat16_verdict(settings):
    """Whether mixed bfloat16 trains faster than float32 on this machine (per CPU-second, the
    steadier measure on a shared CPU), and whether ``precision="auto"`` picks the faster one."""
    from kcnn.training.hardware import detect_hardware, resolve_precision

    hardware = detect_hardware()
    ratio = (
        settings["mixed_bfloat16"]["images_per_cpu_second"]
        / settings["float32"]["images_per_cpu_second"]
    )
    wins = ratio > 1
    auto = resolve_precision("auto", hardware)
    right = (auto == "mixed_bfloat16") == wins
    cpu = (
        "AMX"
        if hardware.cpu_has_amx
        else "AVX512-BF16, no AMX"
        if "avx512_bf16" in hardware.cpu_flags
        else "no bfloat16 instructions"
    )
    line = (
        f"mixed bfloat16 x{ratio:.2f} float32 per CPU-s: it {'wins' if wins else 'loses'} "
        f"here ({cpu}{', GPU' if hardware.has_gpu else ''}); precision='auto' picks {auto}: "
        f"{'right' if right else 'WRONG (see kcnn/training/hardware.py)'}"
    )
    return {
        "bfloat16_over_float32": ratio,
        "bfloat16_wins": wins,
        "auto_precision": auto,
        "auto_is_right": right,
        "line": line,
    }


def kcnn_contender(args, train, test):
    """`kcnn.training.train` with its defaults (but ``--kcnn-precision``), on the same
    arrays."""
    import keras

    from kcnn.training import train as kcnn_train

    keras.utils.clear_session(free_memory=True)
    clock, callback = keras_clock()
    result = kcnn_train(
        "simple_cnn",
        (train, test),
        epochs=args.epochs,
        validation_split=0.0,
        precision=args.kcnn_precision,
        tensorboard=False,
        verbose=0,
        callbacks=[callback],
    )
    return {
        "images": len(train[0]) * args.epochs,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "test_accuracy": result.test_accuracy,
        "settings": f"batch 128, {result.precision}, XLA {'on' if result.jit_compile else 'off'}",
    }


def plain_keras_contender(args, train, test):
    """Listing 1 in plain Keras, every setting at Keras's default."""
    import keras
    from keras import layers

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = train
    clock, callback = keras_clock()
    model.fit(x / 255.0, y, epochs=args.epochs, verbose=0, callbacks=[callback])
    accuracy = model.evaluate(test[0] / 255.0, test[1], verbose=0)[1]
    return {
        "images": len(x) * args.epochs,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "test_accuracy": float(accuracy),
        "settings": "batch 32, float32, NumPy input",
    }


def torch_contender(args, train, test):
    """The course's PyTorch Listing 1 (SimpleCNN) and Listing 2 (its training loop)."""
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    torch.manual_seed(0)

    class SimpleCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
            self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
            self.fc1 = nn.Linear(64 * 7 * 7, 128)
            self.fc2 = nn.Linear(128, 10)
            self.dropout = nn.Dropout(0.5)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = x.view(-1, 64 * 7 * 7)
            x = F.relu(self.fc1(x))
            x = self.dropout(x)
            return self.fc2(x)

    class Images(Dataset):
        """uint8 images through ToTensor + Normalize((0.1307,), (0.3081,)), one at a time."""

        def __init__(self, images, labels):
            self.images, self.labels = images[..., 0], labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, index):
            image = torch.from_numpy(self.images[index].astype(np.float32) / 255.0)[None]
            return (image - 0.1307) / 0.3081, int(self.labels[index])

    loader = DataLoader(Images(*train), batch_size=64, shuffle=True)
    model = SimpleCNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    clock = CpuClock()
    for _ in range(args.epochs):
        model.train()
        clock.start()
        for data, target in loader:
            optimizer.zero_grad()
            loss = criterion(model(data), target)
            loss.backward()
            optimizer.step()
        clock.stop()
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in DataLoader(Images(*test), batch_size=1000):
            correct += int((model(data).argmax(1) == target).sum())
    return {
        "images": len(train[1]) * args.epochs,
        "wall": clock.wall,
        "cpu": clock.cpu,
        "test_accuracy": correct / len(test[1]),
        "settings": (
            f"batch 64, float32, torch {torch.__version__}, {torch.get_num_threads()} threads"
        ),
    }


KCNN = "kcnn train (defaults)"


def contender_runs(args):
    """The contenders to time, by name, kcnn's first (the others are compared with it)."""
    runs = {KCNN: kcnn_contender, "plain Keras (defaults)": plain_keras_contender}
    try:
        import torch  # noqa: F401

        if not args.no_torch:
            runs["PyTorch Listing 1+2"] = torch_contender
    except ImportError:
        print("torch is not installed: the PyTorch listing is skipped (pip install torch)")
    return runs


def time_contender(run, args, train, test):
    """One run of a contender, with its images/s and the load average around it."""
    start_load = os.getloadavg()[0]
    measured = run(args, train, test)
    measured["images_per_second"] = measured["images"] / measured["wall"]
    measured["images_per_cpu_second"] = measured["images"] / measured["cpu"]
    measured["load_average"] = [start_load, os.getloadavg()[0]]
    return measured


def summarize_contenders(rounds_by_name):
    """Medians over the rounds of each contender, and kcnn's speed-up over each other one.

    The speed-up is the median of the ratios within each round (kcnn's run and the other's ran
    minutes apart, so a drift of the machine's speed over the hour cancels out of them), with
    the lowest and highest round beside it.
    """
    summary = {}
    for name, runs in rounds_by_name.items():
        summary[name] = {
            "images_per_second": statistics.median(r["images_per_second"] for r in runs),
            "images_per_cpu_second": statistics.median(r["images_per_cpu_second"] for r in runs),
            "test_accuracy": statistics.mean(r["test_accuracy"] for r in runs),
            "settings": runs[0]["settings"],
            "rounds": runs,
        }
    kcnn = rounds_by_name[KCNN]
    for name, runs in rounds_by_name.items():
        if name == KCNN:
            continue
        for measure in ("images_per_second", "images_per_cpu_second"):
            ratios = [mine[measure] / theirs[measure] for mine, theirs in zip(kcnn, runs)]
            summary[name][f"kcnn_speedup_{measure}"] = {
                "median": statistics.median(ratios),
                "lowest": min(ratios),
                "highest": max(ratios),
            }
    return summary


def contenders_part(args, train, test):
    """Each contender once per round for ``--rounds`` rounds, the order reversed every other
    round (kcnn first, then last), so neither always runs on the fresher machine."""
    runs = contender_runs(args)
    measured = {name: [] for name in runs}
    for index in range(args.rounds):
        order = list(runs) if index % 2 == 0 else list(runs)[::-1]
        for name in order:
            result = time_contender(runs[name], args, train, test)
            measured[name].append(result)
            print(
                f"round {index + 1} {name:<24} {result['images_per_second']:>8,.0f} img/s "
                f"{result['images_per_cpu_second']:>8,.0f} img/CPU-s  test accuracy "
                f"{result['test_accuracy']:.4f}  ({result['settings']}; load "
                f"{result['load_average'][0]:.1f}->{result['load_average'][1]:.1f})",
                flush=True,
            )
    summary = summarize_contenders(measured)
    kcnn = summary[KCNN]
    for name, result in summary.items():
        line = (
            f"median of {args.rounds}: {name:<24} {result['images_per_second']:>8,.0f} img/s "
            f"{result['images_per_cpu_second']:>8,.0f} img/CPU-s  mean test accuracy "
            f"{result['test_accuracy']:.4f}"
        )
        if result is not kcnn:
            wall = result["kcnn_speedup_images_per_second"]
            cpu = result["kcnn_speedup_images_per_cpu_second"]
            line += (
                f"\n  kcnn / {name}: x{wall['median']:.2f} wall (rounds {wall['lowest']:.2f}-"
                f"{wall['highest']:.2f}), x{cpu['median']:.2f} per CPU-s (rounds "
                f"{cpu['lowest']:.2f}-{cpu['highest']:.2f}); accuracy difference "
                f"{100 * (kcnn['test_accuracy'] - result['test_accuracy']):+.2f} points"
            )
        print(line, flush=True)
    return summary


def main(argv=None):
    args = parse_args(argv)
    from kcnn.files import write_json
    from kcnn.report import describe_hardware

    train, test = load_arrays(args.data_dir, args.limit)
    report = {
        "machine": describe_hardware(),
        "load_average_at_start": os.getloadavg(),
        "arguments": vars(args),
    }
    print(f"{report['machine']}; load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.part in ("all", "precision"):
        report["precision"] = precision_part(args, train)
    if args.part in ("all", "contenders"):
        report["contenders"] = contenders_part(args, train, test)
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
