"""benchmarks/grouped_conv.py runs end to end (tiny batches, one short round) and writes a
figure for every shape and kind, with kcnn's speed-up over Keras's grouped convolution."""

import json

import pytest

from tests.scripts import load_script


@pytest.mark.slow
def test_the_benchmark_times_every_kind_of_every_shape(tmp_path, capsys):
    module = load_script("benchmarks/grouped_conv.py")
    output = tmp_path / "grouped.json"
    module.main(["--batch-size", "2", "--rounds", "1", "--seconds", "0", "--output", str(output)])
    shapes = json.loads(output.read_text())["shapes"]
    assert [(s["channels"], s["groups"], s["size"]) for s in shapes] == list(module.SHAPES)
    for shape in shapes:
        assert set(shape["ms_per_step"]) == set(module.KINDS)
        assert all(ms > 0 for ms in shape["ms_per_step"].values())
        assert shape["kcnn_speedup"] > 0
    assert "computes grouped convolutions group by group here: True" in capsys.readouterr().out
