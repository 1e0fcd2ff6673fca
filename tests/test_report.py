"""Experiment reports: the command, the hardware, tables, figures and verdicts, written back."""

import json

import pytest

from kcnn.report import Report, compare, markdown_table, mean_std, no_worse


def test_mean_std_and_markdown_table():
    assert mean_std([0.9, 0.92], digits=1, scale=100) == "91.0 ± 1.4"
    assert mean_std([0.9123], digits=3) == "0.912"
    assert mean_std([-0.0004, 0.0002], digits=1, scale=100) == "0.0 ± 0.0"  # not "-0.0"
    assert mean_std([-0.0004], digits=1, scale=100) == "0.0"
    assert mean_std([-0.0006], digits=1, scale=100) == "-0.1"
    table = markdown_table([{"model": "mlp", "params": 101770, "acc": 0.98123, "note": None}])
    assert table.splitlines() == [
        "| model | params | acc | note |",
        "|---|---|---|---|",
        "| mlp | 101,770 | 0.9812 | - |",
    ]


def test_markdown_table_keeps_the_columns_of_every_row():
    table = markdown_table([{"model": "a", "0°": 1}, {"model": "b", "x0.6": 2}])
    assert table.splitlines() == [
        "| model | 0° | x0.6 |",
        "|---|---|---|",
        "| a | 1 | - |",
        "| b | - | 2 |",
    ]


def test_markdown_table_escapes_pipes_in_headings_and_cells():
    table = markdown_table([{"largest |w|": "a|b"}])
    assert table.splitlines() == ["| largest \\|w\\| |", "|---|", "| a\\|b |"]


def test_report_writes_markdown_and_json_with_command_hardware_and_verdicts(tmp_path):
    report = Report("MLP vs CNN", command="python experiments/mlp_vs_cnn.py --quick")
    report.table("Fashion-MNIST", [{"model": "tiny_cnn", "accuracy": 0.9}])
    report.figure(tmp_path / "curves.png", "training curves")
    report.claim("the CNN is better", True, "0.90 vs 0.88")
    report.claim("ten times smaller", None, "one seed only")
    path = report.write(tmp_path)
    text = open(path).read()
    assert "`python experiments/mlp_vs_cnn.py --quick`" in text
    assert "- Hardware: " in text and "cores" in text
    assert "load average (1 min) at start and end: " in text
    assert "- **holds** — the CNN is better: 0.90 vs 0.88" in text
    assert "- **inconclusive** — ten times smaller" in text
    assert "![training curves](curves.png)" in text
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["results"]["Fashion-MNIST"] == [{"model": "tiny_cnn", "accuracy": 0.9}]
    assert [c["verdict"] for c in results["claims"]] == ["holds", "inconclusive"]
    with pytest.raises(ValueError, match="already has a table titled 'Fashion-MNIST'"):
        report.table("Fashion-MNIST", [{"model": "mlp"}])  # results.json would keep one


def test_compare_calls_a_difference_only_beyond_the_seeds_spread_and_the_floor():
    assert compare([0.91, 0.92], [0.88, 0.89]) is True
    assert compare([0.88, 0.89], [0.91, 0.92]) is False
    assert compare([0.90, 0.94], [0.89, 0.91]) is None  # 0.02 apart, spread 0.031
    assert compare([0.903], [0.900], floor=0.005) is None  # one seed: only the floor
    assert compare([0.91], [0.90], floor=0.005) is True
    with pytest.raises(ValueError, match="both sides"):
        compare([], [0.9])


def test_no_worse_holds_only_when_the_seeds_rule_out_a_loss():
    assert no_worse([0.90, 0.91], [0.905, 0.905], floor=0.02) is True
    assert no_worse([0.99], [0.90], floor=0.005) is True  # a gain is no loss
    assert no_worse([0.898], [0.900], floor=0.005) is True  # one seed: lost within the floor
    assert no_worse([0.80, 0.81], [0.905, 0.905], floor=0.02) is False
    assert no_worse([0.89], [0.90], floor=0.005) is False  # one seed: lost beyond the floor
    assert no_worse([0.80, 0.92], [0.87, 0.87], floor=0.02) is None  # within a wide spread
    # Lost 0.01, beyond the floor but within the spread (0.014): neither verdict is safe.
    assert no_worse([0.88, 0.90], [0.90], floor=0.005) is None
    with pytest.raises(ValueError, match="no_worse needs values on both sides, got 0 and 1"):
        no_worse([], [0.9])
    with pytest.raises(ValueError, match="both sides"):
        no_worse([0.9], [])
