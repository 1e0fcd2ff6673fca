"""benchmarks/train_throughput.py: kcnn's speed-up over a contender is the median of the ratios
within each round (so a machine that slows down between rounds cancels out), and the contenders
part runs every contender once per round."""

import os

import pytest

from tests.data.conftest import FASHION_MNIST_DIR
from tests.scripts import load_script


@pytest.fixture(scope="module")
def throughput():
    return load_script("benchmarks/train_throughput.py")


def run(images_per_second, images_per_cpu_second, accuracy=0.9):
    return {
        "images_per_second": images_per_second,
        "images_per_cpu_second": images_per_cpu_second,
        "test_accuracy": accuracy,
        "settings": "",
    }


def test_the_speedup_is_the_median_of_the_ratios_within_rounds(throughput):
    # The machine halves its speed in each round, and a burst of load slows plain Keras's
    # second run 4x more: kcnn is 2x in the other two rounds, and the median of the ratios
    # says 2x where the ratio of the two medians (4,000 / 1,000) would say 4x.
    summary = throughput.summarize_contenders(
        {
            throughput.KCNN: [run(8000, 4000, 0.90), run(4000, 2000, 0.92), run(2000, 1000, 0.91)],
            "plain Keras": [run(4000, 1000, 0.88), run(500, 1000), run(1000, 500, 0.92)],
        }
    )
    kcnn, keras = summary[throughput.KCNN], summary["plain Keras"]
    assert kcnn["images_per_second"] == 4000 and keras["images_per_second"] == 1000
    assert kcnn["test_accuracy"] == pytest.approx(0.91)
    assert keras["kcnn_speedup_images_per_second"] == {"median": 2.0, "lowest": 2.0, "highest": 8.0}
    assert keras["kcnn_speedup_images_per_cpu_second"] == {
        "median": 2.0,
        "lowest": 2.0,
        "highest": 4.0,
    }
    assert "kcnn_speedup_images_per_second" not in kcnn


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="needs Debian's Fashion-MNIST")
def test_every_contender_runs_once_a_round(throughput, tmp_path, capsys):
    args = throughput.parse_args(
        [
            "--quick",
            "--part",
            "contenders",
            "--no-torch",
            "--kcnn-precision",
            "float32",
            "--output",
            str(tmp_path / "t.json"),
        ]
    )
    args.rounds = 2
    train, test = throughput.load_arrays(FASHION_MNIST_DIR, args.limit)
    summary = throughput.contenders_part(args, train, test)
    assert set(summary) == {throughput.KCNN, "plain Keras (defaults)"}
    assert all(len(result["rounds"]) == 2 for result in summary.values())
    assert summary[throughput.KCNN]["settings"].startswith("batch 128, float32,")
    printed = capsys.readouterr().out
    assert printed.index("round 1 kcnn") < printed.index("round 1 plain Keras")
    assert printed.index("round 2 plain Keras") < printed.index("round 2 kcnn")
