"""How soon does kcnn reach 92.5% and 93.5% test accuracy on Fashion-MNIST?

Each recipe is a named preset of `kcnn.training.PRESETS` (a model, a schedule, augmentation,
precision and a fixed number of epochs), run as ``kcnn train --preset NAME`` in a fresh
process. Its time is the wall-clock from the start of that process (imports, data loading and
the final test evaluation included) to its exit, and its accuracy is the final model's
accuracy on the 10,000 test images, read from the run's ``run.json``. No recipe looks at the
test set while it trains: a recipe reaches a threshold only if its final accuracy does.

For each threshold, the report names the fastest recipe that reached it.

Usage:
    python benchmarks/time_to_accuracy.py                         # every fashion-* preset
    python benchmarks/time_to_accuracy.py --recipes fashion-fast  # one recipe
    python benchmarks/time_to_accuracy.py --quick                 # 1 epoch each, to check

Writes ``results/time_to_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

THRESHOLDS = (0.925, 0.935)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipes",
        default=None,
        help="comma-separated preset names (default: every fashion-* preset)",
    )
    parser.add_argument("--data-dir", default=None, help="where to look for Fashion-MNIST first")
    parser.add_argument("--quick", action="store_true", help="one epoch per recipe")
    parser.add_argument("--output", default="results/time_to_accuracy.json")
    return parser.parse_args(argv)


def run_recipe(name: str, args) -> dict:
    """Run ``kcnn train --preset name`` in a new process; its wall-clock time and accuracy."""
    with tempfile.TemporaryDirectory(prefix="kcnn-tta-") as folder:
        out = os.path.join(folder, name)
        command = [sys.executable, "-m", "kcnn.cli", "train", "--preset", name, "--out", out]
        if args.quick:
            command += ["--epochs", "1"]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        process = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        )
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            raise RuntimeError(f"recipe {name} failed:\n{process.stderr[-3000:]}")
        with open(os.path.join(out, "run.json"), encoding="utf-8") as file:
            run = json.load(file)
    return {
        "seconds": seconds,
        "test_accuracy": run["test_metrics"]["accuracy"],
        "epochs": run["epochs"],
        "train_seconds": run["train_seconds"],
        "images_per_second": run["images_per_second"],
        "precision": run["precision"],
        "load_average": [load, os.getloadavg()[0]],
    }


def main(argv=None):
    args = parse_args(argv)
    from kcnn.files import write_json
    from kcnn.report import describe_hardware
    from kcnn.training import PRESETS

    names = (
        args.recipes.split(",")
        if args.recipes
        else sorted(name for name in PRESETS if name.startswith("fashion-"))
    )
    report = {"machine": describe_hardware(), "recipes": {}, "fastest": {}}
    for name in names:
        measured = run_recipe(name, args)
        measured["recipe"] = PRESETS[name]
        report["recipes"][name] = measured
        print(
            f"{name:<16} test accuracy {measured['test_accuracy']:.4f} in "
            f"{measured['seconds']:.0f} s from process start ({measured['epochs']} epochs, "
            f"{measured['images_per_second']:,.0f} training images/s, load "
            f"{measured['load_average'][0]:.1f}->{measured['load_average'][1]:.1f})",
            flush=True,
        )
    for threshold in THRESHOLDS:
        reached = [
            (m["seconds"], name)
            for name, m in report["recipes"].items()
            if m["test_accuracy"] >= threshold
        ]
        key = f"{100 * threshold:.1f}%"
        if reached:
            seconds, name = min(reached)
            report["fastest"][key] = {"recipe": name, "seconds": seconds}
            print(f"{key}: {name} in {seconds:.0f} s")
        else:
            report["fastest"][key] = None
            print(f"{key}: not reached by {', '.join(names)}")
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
