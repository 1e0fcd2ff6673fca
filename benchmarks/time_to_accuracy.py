"""How soon does kcnn reach 92.5%, 93.5% and 94.0% test accuracy on Fashion-MNIST?

Each recipe is a named preset of `kcnn.training.PRESETS` (a model, a schedule, augmentation,
precision and a fixed number of epochs), run as ``kcnn train --preset NAME --seed S`` in a
fresh process, once per seed. A run's time is the wall-clock from the start of that process
(imports, data loading and the final test evaluation included) to its exit, and its accuracy is
the final model's accuracy on the 10,000 test images, read from the run's ``run.json`` (for a
recipe with ``test_time_flip``, that of the predictions combined with the mirror images', the
model's own accuracy beside it). No recipe looks at the test set while it trains.

A recipe reaches a threshold only if every seed's final accuracy does; its time is then the
mean over the seeds (reported with their spread). For each threshold, the report names the
fastest recipe that reached it and whether that meets issue 18's goal for this kind of CPU
(`GOALS`: 92.5% within 90 s with AMX, 240 s without; 93.5% within 600 s; 94.0% within 1,200 s).
``--precision float32`` trains every recipe in float32 instead of the precision it picks
(``"auto"``: mixed bfloat16 with AMX), which on a CPU with AMX times the path of the CPUs
without it; the goal is then theirs.

Usage:
    python benchmarks/time_to_accuracy.py                         # every fashion-* preset
    python benchmarks/time_to_accuracy.py --recipes fashion-fast  # one recipe, 3 seeds
    python benchmarks/time_to_accuracy.py --seeds 1 --quick       # 1 epoch each, to check
    python benchmarks/time_to_accuracy.py --recipes fashion-quick --precision float32

Writes ``results/time_to_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

THRESHOLDS = (0.925, 0.935, 0.940)
GOALS = {  # threshold: (seconds with AMX, seconds without)
    0.925: (90, 240),
    0.935: (600, 600),
    0.940: (1200, 1200),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--recipes",
        default=None,
        help="comma-separated preset names (default: every fashion-* preset)",
    )
    parser.add_argument("--data-dir", default=None, help="where to look for Fashion-MNIST first")
    parser.add_argument("--seeds", type=int, default=3, help="runs per recipe (seeds 0, 1, ...)")
    parser.add_argument("--quick", action="store_true", help="one epoch per recipe")
    parser.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16", "mixed_float16"),
        default=None,
        help="train every recipe in this precision (default: the recipe's own, auto)",
    )
    parser.add_argument("--output", default="results/time_to_accuracy.json")
    return parser.parse_args(argv)


def run_recipe(name: str, seed: int, args) -> dict:
    """Run ``kcnn train --preset name --seed seed`` in a new process; its wall-clock time and
    accuracy."""
    with tempfile.TemporaryDirectory(prefix="kcnn-tta-") as folder:
        out = os.path.join(folder, name)
        command = [sys.executable, "-m", "kcnn.cli", "train", "--preset", name, "--out", out]
        command += ["--seed", str(seed)]
        if args.quick:
            command += ["--epochs", "1"]
        if args.precision:
            command += ["--precision", args.precision]
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
        "seed": seed,
        "seconds": seconds,
        "test_accuracy": run["test_metrics"]["accuracy"],
        "single_view_accuracy": (run.get("single_view_test_metrics") or {}).get("accuracy"),
        "epochs": run["epochs"],
        "train_seconds": run["train_seconds"],
        "images_per_second": run["images_per_second"],
        "precision": run["precision"],
        "load_average": [load, os.getloadavg()[0]],
    }


def summarize(runs: list[dict]) -> dict:
    """The seeds' accuracies and times of one recipe: mean, spread (sample standard deviation,
    0 for one seed) and the lowest accuracy, which decides the thresholds reached."""
    accuracies = [run["test_accuracy"] for run in runs]
    seconds = [run["seconds"] for run in runs]
    spread = statistics.stdev if len(runs) > 1 else (lambda values: 0.0)
    return {
        "test_accuracy_mean": statistics.mean(accuracies),
        "test_accuracy_spread": spread(accuracies),
        "test_accuracy_lowest": min(accuracies),
        "seconds_mean": statistics.mean(seconds),
        "seconds_spread": spread(seconds),
    }


def fastest(recipes: dict, threshold: float, amx: bool) -> dict | None:
    """The recipe with the smallest mean time among those whose every seed reached
    ``threshold``, and whether it meets the goal of `GOALS` for this kind of CPU; None when no
    recipe reached it."""
    reached = [
        (summary["seconds_mean"], name)
        for name, summary in recipes.items()
        if summary["test_accuracy_lowest"] >= threshold
    ]
    if not reached:
        return None
    seconds, name = min(reached)
    goal = GOALS[threshold][0 if amx else 1]
    return {"recipe": name, "seconds": seconds, "goal_seconds": goal, "goal_met": seconds <= goal}


def amx_goal_applies(cpu_has_amx: bool, precision: str | None) -> bool:
    """Whether a run is held to the goals of CPUs with AMX: on such a CPU, unless it trains in
    float32, which AMX's tile units do not multiply."""
    return cpu_has_amx and precision != "float32"


def main(argv=None):
    args = parse_args(argv)
    from kcnn.files import write_json
    from kcnn.report import describe_hardware
    from kcnn.training import PRESETS
    from kcnn.training.hardware import detect_hardware

    names = (
        args.recipes.split(",")
        if args.recipes
        else sorted(name for name in PRESETS if name.startswith("fashion-"))
    )
    cpu_has_amx = detect_hardware().cpu_has_amx
    amx = amx_goal_applies(cpu_has_amx, args.precision)
    report = {
        "machine": describe_hardware(),
        "seeds": args.seeds,
        "precision": args.precision or "each recipe's own",
        "goals_of": "CPUs with AMX" if amx else "CPUs without AMX",
        "recipes": {},
        "fastest": {},
    }
    print(
        f"{report['machine']}; {'AMX' if cpu_has_amx else 'no AMX'}; precision "
        f"{report['precision']}; goals of {report['goals_of']}",
        flush=True,
    )
    for name in names:
        runs = []
        for seed in range(args.seeds):
            measured = run_recipe(name, seed, args)
            runs.append(measured)
            alone = measured["single_view_accuracy"]
            mirrored = "" if alone is None else f" with mirror images ({alone:.4f} without)"
            print(
                f"{name:<16} seed {seed}: test accuracy {measured['test_accuracy']:.4f}"
                f"{mirrored} in "
                f"{measured['seconds']:.0f} s from process start ({measured['epochs']} epochs, "
                f"{measured['images_per_second']:,.0f} training images/s, "
                f"{measured['precision']}, load "
                f"{measured['load_average'][0]:.1f}->{measured['load_average'][1]:.1f})",
                flush=True,
            )
        summary = summarize(runs)
        report["recipes"][name] = {"recipe": PRESETS[name], "runs": runs, **summary}
        print(
            f"{name:<16} {args.seeds} seeds: test accuracy "
            f"{100 * summary['test_accuracy_mean']:.2f} ± "
            f"{100 * summary['test_accuracy_spread']:.2f}"
            f" % (lowest {100 * summary['test_accuracy_lowest']:.2f}) in "
            f"{summary['seconds_mean']:.0f} ± {summary['seconds_spread']:.0f} s",
            flush=True,
        )
    for threshold in THRESHOLDS:
        key = f"{100 * threshold:.1f}%"
        best = fastest(report["recipes"], threshold, amx)
        report["fastest"][key] = best
        if best:
            print(
                f"{key}: {best['recipe']} in {best['seconds']:.0f} s (every seed); goal "
                f"<= {best['goal_seconds']} s {'met' if best['goal_met'] else 'missed'}"
            )
        else:
            print(f"{key}: not reached by every seed of any of {', '.join(names)}")
    write_json(args.output, report)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
