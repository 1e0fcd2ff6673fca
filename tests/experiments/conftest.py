"""Running an experiment script's ``--quick`` mode in a subprocess, and importing its helpers."""

import json
import os
import subprocess
import sys

import pytest

from tests.scripts import ROOT

EXPERIMENTS = str(ROOT / "experiments")
VERDICTS = {"holds", "does not hold", "inconclusive"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

if EXPERIMENTS not in sys.path:  # the scripts import their shared module as `common`
    sys.path.insert(0, EXPERIMENTS)


def run_quick(script: str, out, *options, timeout: int = 900) -> dict:
    """Run ``python experiments/<script> --quick --out <out> <options>`` from the repository
    root; return the ``results.json`` it wrote, with its report as ``"markdown"``."""
    command = [
        sys.executable,
        os.path.join("experiments", script),
        "--quick",
        "--out",
        str(out),
        *options,
    ]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    finished = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    with open(os.path.join(out, "results.json"), encoding="utf-8") as file:
        results = json.load(file)
    with open(os.path.join(out, "report.md"), encoding="utf-8") as file:
        results["markdown"] = file.read()
    return results


def assert_png(path) -> None:
    """``path`` is a PNG image that matplotlib reads back, larger than a thumbnail."""
    import matplotlib.image

    with open(path, "rb") as file:
        assert file.read(8) == PNG_SIGNATURE, path
    height, width = matplotlib.image.imread(path).shape[:2]
    assert height > 200 and width > 200, (path, height, width)


def assert_report(results: dict, command_part: str) -> None:
    """The report names the command, the hardware and the time, and every claim has one of the
    three verdicts, written in report.md as in results.json."""
    markdown = results["markdown"]
    assert command_part in results["command"] and "--quick" in results["command"]
    assert f"`{results['command']}`" in markdown
    assert "- Hardware: " in markdown and "time taken: " in markdown
    assert "Quick mode" in markdown
    assert results["claims"], "no verdicts"
    for claim in results["claims"]:
        assert claim["verdict"] in VERDICTS, claim
        assert f"- **{claim['verdict']}** — {claim['claim']}: {claim['evidence']}" in markdown


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory):
    """A fresh folder for one script's quick run, shared by the tests of its module."""
    return tmp_path_factory.mktemp("quick")
