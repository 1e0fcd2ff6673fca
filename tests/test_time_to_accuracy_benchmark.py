"""benchmarks/time_to_accuracy.py: how the seeds of a recipe are summarised and which recipe
is named the fastest to a threshold (every seed must reach it; the goal depends on AMX)."""

import pytest

from tests.scripts import load_script


@pytest.fixture(scope="module")
def tta():
    return load_script("benchmarks/time_to_accuracy.py")


def _runs(*pairs):
    return [{"test_accuracy": accuracy, "seconds": seconds} for accuracy, seconds in pairs]


def test_summary_gives_mean_spread_and_lowest(tta):
    summary = tta.summarize(_runs((0.93, 100.0), (0.92, 110.0), (0.94, 120.0)))
    assert summary["test_accuracy_mean"] == pytest.approx(0.93)
    assert summary["test_accuracy_spread"] == pytest.approx(0.01)
    assert summary["test_accuracy_lowest"] == pytest.approx(0.92)
    assert summary["seconds_mean"] == pytest.approx(110.0)
    assert summary["seconds_spread"] == pytest.approx(10.0)


def test_one_seed_has_no_spread(tta):
    summary = tta.summarize(_runs((0.93, 100.0)))
    assert summary["test_accuracy_spread"] == 0.0
    assert summary["seconds_spread"] == 0.0


def test_fastest_needs_every_seed_over_the_threshold(tta):
    recipes = {
        "quick-but-unsteady": tta.summarize(_runs((0.95, 50.0), (0.92, 50.0))),
        "slower-steady": tta.summarize(_runs((0.93, 200.0), (0.93, 220.0))),
    }
    best = tta.fastest(recipes, 0.925, amx=False)
    assert best == {
        "recipe": "slower-steady",
        "seconds": pytest.approx(210.0),
        "goal_seconds": 240,
        "goal_met": True,
    }
    assert tta.fastest(recipes, 0.935, amx=False) is None


def test_goal_depends_on_amx(tta):
    recipes = {"fashion-fast": tta.summarize(_runs((0.93, 200.0)))}
    assert tta.fastest(recipes, 0.925, amx=True)["goal_met"] is False
    assert tta.fastest(recipes, 0.925, amx=False)["goal_met"] is True


def test_float32_on_an_amx_cpu_is_held_to_the_goals_without_amx(tta):
    assert tta.amx_goal_applies(cpu_has_amx=True, precision=None) is True
    assert tta.amx_goal_applies(cpu_has_amx=True, precision="mixed_bfloat16") is True
    assert tta.amx_goal_applies(cpu_has_amx=True, precision="float32") is False
    assert tta.amx_goal_applies(cpu_has_amx=False, precision="mixed_bfloat16") is False
