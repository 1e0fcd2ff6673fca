"""benchmarks/input_pipeline.py runs end to end (--quick, on a small Fashion-MNIST-like set)."""

import json

import pytest

from tests.data.conftest import write_idx_dataset
from tests.scripts import load_script


@pytest.mark.slow
def test_input_pipeline_benchmark_quick(tmp_path):
    benchmark = load_script("benchmarks/input_pipeline.py")
    write_idx_dataset(tmp_path / "fm", train_count=600, test_count=20)
    output = tmp_path / "result.json"
    results = benchmark.main(
        [
            "--quick",
            "--data-dir",
            str(tmp_path / "fm"),
            "--batch-size",
            "32",
            "--output",
            str(output),
        ]
    )
    assert json.loads(output.read_text()) == results
    assert results["examples"] == 540
    for key in ("pipeline_images_per_s", "naive_images_per_s", "pipeline_over_training"):
        assert results[key] > 0
    assert set(results["training_images_per_s"]) == {"float32", "mixed_bfloat16"}
