"""experiments/transfer_learning.py: its budget, sampling and verdict logic, and --quick end to end."""

import importlib.util
import json
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _experiment():
    path = os.path.join(ROOT, "experiments", "transfer_learning.py")
    spec = importlib.util.spec_from_file_location("transfer_learning_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


experiment = _experiment()


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


def _rows(accuracies, seconds=None, std=0.0):
    """Summary rows for sizes {10: (scratch, frozen, finetune, progressive), ...}."""
    rows = []
    for size, values in accuracies.items():
        for method, accuracy in zip(experiment.METHODS, values):
            rows.append({
                "per_class": size, "examples": 5 * size, "method": method, "epochs": 5,
                "steps": 100, "seeds": 3, "accuracy": accuracy, "accuracy_std": std,
                "seconds": (seconds or {}).get(method, 10.0), "seconds_std": 0.0,
                "trainable": [100],
            })
    return rows


def test_verdicts_when_the_course_is_right():
    lines = experiment.verdicts(_rows(
        {10: (0.50, 0.80, 0.70, 0.75), 400: (0.85, 0.80, 0.90, 0.90)},
        seconds={"frozen": 2.0, "finetune": 10.0},
    ))
    assert lines[0].startswith("1. Transfer beats scratch with little data: holds")
    assert lines[1].startswith("2. Few data (< 1000 images): feature extraction is best: holds")
    assert lines[2].startswith("3. With more data, fine-tuning beats feature extraction: holds")
    assert ": holds -- 400/class" in lines[3]
    assert lines[4].startswith("5. Feature extraction trains faster: holds")


def test_verdicts_when_it_is_not_and_within_noise():
    lines = experiment.verdicts(_rows(
        {10: (0.80, 0.60, 0.803, 0.70), 400: (0.95, 0.70, 0.80, 0.75)}, std=0.0,
    ))
    assert "little data: not shown (within noise)" in lines[0]
    assert "feature extraction is best: does not hold -- 10/class: frozen 60.0%, beaten by " \
           "scratch, finetune, progressive" in lines[1]
    assert ": does not hold -- 400/class: progressive 75.0%" in lines[3]
    assert lines[4].startswith("5. Feature extraction trains faster: does not hold")
    noisy = experiment.verdicts(_rows({10: (0.5, 0.8, 0.7, 0.7), 40: (0.8, 0.8, 0.9, 0.9)},
                                      std=0.06))
    assert "fine-tuning beats feature extraction: not shown (within noise)" in noisy[2]
    assert "4. Medium data (1K-10K images): not tested" in noisy[3]


@pytest.mark.slow
def test_quick_mode_writes_the_report(tmp_path, monkeypatch):
    from kcnn.data import load

    try:
        load("fashion_mnist", "test", download=False)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report"
    assert experiment.main(["--quick", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "Command: `python experiments/transfer_learning.py --quick --out" in report
    for method in experiment.METHODS:
        assert f"| 20 (100) | {method} |" in report and f"| 200 (1000) | {method} |" in report
    for claim in range(1, 6):
        assert f"\n- {claim}. " in report
    results = json.loads((out / "results.json").read_text())
    assert len(results["records"]) == 8
    assert os.path.isfile(results["pretraining"]["weights"])
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in results["records"])
    assert (out / "val_accuracy.png").stat().st_size > 0
    assert (out / "test_accuracy.png").stat().st_size > 0
