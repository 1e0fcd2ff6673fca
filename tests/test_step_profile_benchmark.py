"""benchmarks/step_profile.py: overlapping op intervals count once in the busy share, kernels
are told from the executor's own events, and a profiled run reads its steps and kernels back."""

import json
import os

import pytest

from tests.data.conftest import FASHION_MNIST_DIR
from tests.scripts import load_script

PS = 10**12  # picoseconds per second, the profiler's unit


@pytest.fixture(scope="module")
def step_profile():
    return load_script("benchmarks/step_profile.py")


def test_overlapping_intervals_count_once(step_profile):
    intervals = [(0, 2 * PS), (1 * PS, 3 * PS), (5 * PS, 6 * PS), (5 * PS, 5 * PS + PS // 2)]
    assert step_profile.union_seconds(intervals) == pytest.approx(4.0)
    assert step_profile.union_seconds([]) == 0.0


def test_kernels_are_named_after_the_last_colon_and_executor_events_are_not_kernels(
    step_profile,
):
    name = "gradient_tape/simple_cnn/stage2_conv/Conv2DBackpropInput:_MklNativeConv2DBackpropInput"
    assert step_profile.kernel_name(name) == "_MklNativeConv2DBackpropInput"
    assert step_profile.kernel_name("ExecutorState::Process") is None
    assert step_profile.kernel_name("ExecutorDoneCallback") is None


def test_summary_of_two_steps(step_profile):
    recorded = {
        "steps": [(0, 1 * PS), (1 * PS, 2 * PS)],
        "ops": [
            ((0, PS // 2), "_MklNativeFusedConv2D"),
            ((PS // 4, PS // 2), "ReluGrad"),  # overlaps the convolution
            ((PS, PS + PS // 4), "_MklNativeConv2DBackpropInput"),
        ],
    }
    summary = step_profile.summarize(recorded, batch_size=64)
    assert summary["steps"] == 2
    assert summary["wall_seconds"] == pytest.approx(2.0)
    assert summary["images_per_second"] == pytest.approx(64.0)
    assert summary["busy"] == pytest.approx(0.75 / 2)
    assert summary["convolution"] == pytest.approx(0.75 / 2)
    assert summary["kernel_ms_per_step"] == pytest.approx(
        {"_MklNativeFusedConv2D": 250.0, "ReluGrad": 125.0, "_MklNativeConv2DBackpropInput": 125.0}
    )


def test_a_profile_without_steps_is_an_error(step_profile):
    with pytest.raises(RuntimeError, match="no step was recorded"):
        step_profile.summarize({"steps": [], "ops": []}, batch_size=32)


def test_bad_counts_are_errors_naming_the_option(step_profile, capsys):
    with pytest.raises(SystemExit):
        step_profile.parse_args(["--batch-size", "0"])
    assert "--batch-size must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="needs Debian's Fashion-MNIST")
def test_a_profiled_run_reports_its_steps_and_convolution_kernels(step_profile, tmp_path, capsys):
    output = tmp_path / "profile.json"
    step_profile.main(
        ["--images", "512", "--batch-size", "64", "--data-dir", FASHION_MNIST_DIR]
        + ["--output", str(output)]
    )
    report = json.loads(output.read_text())
    assert report["steps"] == 8 and report["precision"] == "float32"
    assert 0 < report["convolution"] <= report["busy"] <= 1
    assert any("Conv2D" in kernel for kernel in report["kernel_ms_per_step"])
    assert "a convolution" in capsys.readouterr().out
