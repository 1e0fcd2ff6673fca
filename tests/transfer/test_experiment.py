"""experiments/transfer_learning.py: its budget, sampling and claims, and --quick end to end."""

import os

import numpy as np
import pytest

# The conftest puts experiments/ on sys.path, where the script finds its shared `common`.
from tests.experiments.conftest import assert_png, assert_report, run_quick
from tests.scripts import load_script

experiment = load_script("experiments/transfer_learning.py")


def test_class_lists():
    assert experiment.class_list("5-9", 10) == [5, 6, 7, 8, 9]
    assert experiment.class_list("7,1,3", 10) == [1, 3, 7]
    assert experiment.class_list("all", 3) == [0, 1, 2]
    for bad in ("5-12", "a-b", "4"):
        with pytest.raises(ValueError, match="classes"):
            experiment.class_list(bad, 10)


def test_per_class_sampling_is_balanced_disjoint_and_seeded():
    labels = np.repeat(np.arange(3), 10)
    held_out = experiment.per_class(labels, 2, np.random.default_rng(0))
    chosen = experiment.per_class(labels, 5, np.random.default_rng(1), exclude=held_out)
    assert np.bincount(labels[chosen]).tolist() == [5, 5, 5]
    assert not set(chosen) & set(held_out)
    again = experiment.per_class(labels, 5, np.random.default_rng(1), exclude=held_out)
    assert np.array_equal(chosen, again)
    with pytest.raises(ValueError, match="9 examples left, 10 asked"):
        experiment.per_class(labels, 10, np.random.default_rng(0), exclude=[0])


def test_budget_gives_every_size_enough_steps():
    plan = {"epoch_steps": 25, "min_steps": 500, "min_epochs": 5}
    assert experiment.budget(50, 32, plan) == (13, 20, 520)
    assert experiment.budget(1000, 32, plan) == (1, 16, 512)
    assert experiment.budget(5000, 32, plan) == (1, 5, 785)


def test_options_come_from_the_shared_parser_and_plans():
    args = experiment.parse_args(["--quick", "--seeds", "2", "--dataset", "mnist"])
    assert experiment.plan_of(args) == {**experiment.QUICK, "seeds": 2}
    assert (args.source, args.target) == ("mnist", "mnist")
    assert experiment.parse_args(["--sizes", "10", "400"]).sizes == [10, 400]
    with pytest.raises(ValueError, match="--sizes"):
        experiment.parse_args(["--sizes", "0"])


def _records(accuracies, seconds=None, examples_per_size=None):
    """Runs for sizes {size: {method: [accuracy per seed]}}."""
    records = []
    for size, methods in accuracies.items():
        for method, values in methods.items():
            for seed, accuracy in enumerate(values):
                records.append(
                    {
                        "per_class": size,
                        "method": method,
                        "seed": seed,
                        "examples": (examples_per_size or {}).get(size, 5 * size),
                        "test_accuracy": accuracy,
                        "train_seconds": (seconds or {}).get(method, 10.0) + seed,
                    }
                )
    return records


def _verdicts(records):
    return {claim.split(" (")[0]: verdict for claim, verdict, _ in experiment.claims(records)}


def test_claims_when_the_course_is_right():
    verdicts = _verdicts(
        _records(
            {
                10: {
                    "scratch": [0.50, 0.52],
                    "frozen": [0.80, 0.81],
                    "finetune": [0.70, 0.71],
                    "progressive": [0.75, 0.74],
                },
                400: {
                    "scratch": [0.85, 0.85],
                    "frozen": [0.80, 0.80],
                    "finetune": [0.90, 0.90],
                    "progressive": [0.90, 0.91],
                },
            },
            seconds={"frozen": 2.0, "finetune": 10.0},
        )
    )
    assert set(verdicts.values()) == {True}
    assert len(verdicts) == 5  # 50 and 2,000 images: one "few data", one "medium data" claim


def test_claims_when_it_is_not_and_within_noise():
    verdicts = _verdicts(
        _records(
            {
                10: {
                    "scratch": [0.80, 0.80],
                    "frozen": [0.60, 0.61],
                    "finetune": [0.803, 0.80],
                    "progressive": [0.70, 0.70],
                },
                400: {
                    "scratch": [0.95, 0.95],
                    "frozen": [0.70, 0.70],
                    "finetune": [0.80, 0.80],
                    "progressive": [0.75, 0.75],
                },
            }
        )
    )
    assert verdicts["Transfer beats training from scratch with little data"] is None
    assert verdicts["Few data"] is False
    assert verdicts["Medium data"] is False
    assert verdicts["Feature extraction trains faster than fine-tuning"] is None
    noisy = _verdicts(
        _records(
            {
                10: {m: [0.6, 0.8] for m in experiment.METHODS},
                40: {
                    "scratch": [0.8, 0.8],
                    "frozen": [0.7, 0.9],
                    "finetune": [0.75, 0.95],
                    "progressive": [0.8, 0.8],
                },
            }
        )
    )
    assert noisy["With more data, fine-tuning beats feature extraction"] is None
    assert not any(claim.startswith("Medium data") for claim in noisy)  # 200 images: none


@pytest.mark.slow
def test_quick_mode_writes_the_report(tmp_path):
    from kcnn.data import load

    try:
        load("fashion_mnist", "test", download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine")
    results = run_quick("transfer_learning.py", tmp_path)
    assert_report(results, "experiments/transfer_learning.py")
    rows = results["results"]["Test accuracy and training time"]
    assert [(r["examples per class (total)"], r["method"]) for r in rows] == [
        (size, method) for size in ("5 (25)", "20 (100)") for method in experiment.METHODS
    ]
    claims = [c["claim"] for c in results["claims"]]
    assert len(claims) == 5 and claims[0].startswith("Transfer beats training from scratch")
    runs = results["results"]["runs"]
    assert len(runs) == 8 and all(0.0 <= r["test_accuracy"] <= 1.0 for r in runs)
    built = {r["precision"] for r in runs}
    assert (
        f"Precision the models were built with: `{', '.join(sorted(built))}`" in results["markdown"]
    )
    assert os.path.isfile(results["results"]["pretraining"]["weights"])
    for name in ("val_accuracy.png", "test_accuracy.png"):
        assert_png(tmp_path / name)
