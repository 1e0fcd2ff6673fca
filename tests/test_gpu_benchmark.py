"""benchmarks/gpu.py: its options, its timing of epochs, and a --smoke run on JAX without
TensorFlow (as on the GPU machine), so the script cannot rot between the sessions lent a GPU."""

import json
import types

import pytest

from tests.no_tensorflow import run_without_tensorflow
from tests.scripts import ROOT, load_script

SCRIPT = ROOT / "benchmarks" / "gpu.py"


@pytest.fixture(scope="module")
def gpu():
    return load_script("benchmarks/gpu.py")


@pytest.mark.parametrize(
    ("option", "value"), [("--models", "resnet34"), ("--precisions", "float16"), ("--xla", "yes")]
)
def test_bad_choice_is_a_usage_error_naming_the_option(gpu, capsys, option, value):
    with pytest.raises(SystemExit):
        gpu.parse_args([option, value])
    assert f"{option} must be one of" in capsys.readouterr().err


def test_output_goes_to_the_device_folder_when_out_is_set(gpu, monkeypatch):
    monkeypatch.setenv("OUT", "/device/out")
    assert gpu.parse_args([]).out == "/device/out/gpu.json"
    monkeypatch.delenv("OUT")
    assert gpu.parse_args([]).out == "results/gpu.json"
    assert gpu.parse_args(["--out", "x.json"]).out == "x.json"


def test_smoke_is_the_same_models_tiny(gpu):
    args = gpu.parse_args(["--smoke", "--xla", "off"])
    assert args.models == ["resnet50", "resnet18"] and args.xla == [False]
    assert (args.steps_per_epoch, args.warmup_epochs, args.max_epochs) == (1, 1, 1)
    workload = gpu.workload_for("resnet50", smoke=True)
    assert (workload.model, workload.image_size, workload.batch_size) == ("resnet50", 32, 2)
    assert gpu.workload_for("resnet50", smoke=False).image_size == 224


def test_clock_excludes_warmup_and_stops_when_timed_long_enough(gpu):
    clock = gpu.epoch_clock(warmup_epochs=2, seconds=3600, max_epochs=3)
    model = types.SimpleNamespace(stop_training=False)
    clock.set_model(model)
    clock.on_train_begin()
    for epoch in range(5):
        clock.on_epoch_end(epoch, {"loss": 1.0})
        assert model.stop_training == (epoch == 4)
    assert clock.timed_epochs() == 3
    assert clock.timed_seconds() == pytest.approx(clock.ends[5] - clock.ends[2])
    assert clock.warmup_seconds() == pytest.approx(clock.ends[2] - clock.ends[0])

    short = gpu.epoch_clock(warmup_epochs=1, seconds=0.0, max_epochs=50)
    short.set_model(model)
    model.stop_training = False
    short.on_train_begin()
    short.on_epoch_end(0, {"loss": 1.0})
    assert not model.stop_training
    short.on_epoch_end(1, {"loss": 1.0})
    assert model.stop_training and short.timed_epochs() == 1


def test_resnet50_lines_show_the_anchor(gpu):
    result = {
        "model": "resnet50",
        "image_size": 224,
        "batch_size": 256,
        "precision": "mixed_bfloat16",
        "jit_compile": True,
        "images_per_second": 3210.4,
        "timed_steps": 40,
        "timed_seconds": 3.2,
        "warmup_seconds": 50.0,
    }
    line = gpu.describe(result)
    assert "3,210 images/s" in line and "anchor 2,375" in line and "3,000" in line
    assert "anchor" not in gpu.describe({**result, "model": "resnet18"})


# One setting: each more compiles ResNet-18 again (XLA off compiles every op alone, the
# slowest); the others run the same function with other arguments.
@pytest.mark.slow
def test_smoke_run_on_jax_without_tensorflow(tmp_path):
    out = tmp_path / "gpu.json"
    result = run_without_tensorflow(
        [
            str(SCRIPT),
            "--smoke",
            "--models",
            "resnet18",
            "--precisions",
            "mixed_bfloat16",
            "--xla",
            "on",
            "--out",
            str(out),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"]["platform"] == "cpu" and report["smoke"]
    assert report["anchor"]["images_per_second"] == 2375
    assert [r["jit_compile"] for r in report["results"]] == [True]
    for measured in report["results"]:
        assert measured["model"] == "resnet18" and measured["image_size"] == 32
        assert measured["timed_steps"] == 1 and measured["images_per_second"] > 0
    assert result.stdout.count("resnet18  32 px batch   2  mixed_bfloat16 XLA on") == 1
