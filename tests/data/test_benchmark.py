"""benchmarks/input_pipeline.py runs end to end (--quick, on a small Fashion-MNIST-like set)."""

import importlib.util
import json
import os

import pytest

from tests.data.conftest import write_idx_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_input_pipeline_benchmark_quick(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "input_pipeline", os.path.join(ROOT, "benchmarks", "input_pipeline.py")
    )
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
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
