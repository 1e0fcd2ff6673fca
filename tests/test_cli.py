"""The ``kcnn`` command end to end: train on a small image folder, evaluate, predict with class
names; errors are one line and a non-zero exit."""

import json
import os
import subprocess
import sys

import pytest

import kcnn
from kcnn.cli import main
from tests.training.conftest import ROOT, patterns

CLASSES = ("square_top", "square_bottom", "bar")


def _write_folder(root, count_train=90, count_test=30):
    from PIL import Image

    for split, count, seed in (("train", count_train, 0), ("test", count_test, 1)):
        images, labels = patterns(count, seed)
        for index, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / CLASSES[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0]).save(folder / f"{index}.png")
    return root


def _kcnn(*args):
    return subprocess.run(
        [sys.executable, "-m", "kcnn.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=600,
    )


def test_evaluate_holds_out_what_the_run_beside_the_model_held_out(tmp_path):
    from kcnn.cli import _hold_out

    model = tmp_path / "best.keras"
    settings = {"data": "fashion_mnist", "seed": 3, "validation_split": 0.2}
    (tmp_path / "run.json").write_text(json.dumps({"settings": settings}))
    assert _hold_out(model, "fashion_mnist") == (0.2, 3)
    assert _hold_out(model, "mnist") == (0.1, 0)  # another dataset: make_dataset's defaults
    (tmp_path / "run.json").write_text(json.dumps({"settings": {**settings, "seed": None}}))
    assert _hold_out(model, "fashion_mnist") == (0.2, 0)  # train's data seed for seed=None
    assert _hold_out(tmp_path / "elsewhere" / "model.keras", "fashion_mnist") == (0.1, 0)


def test_evaluate_refuses_the_validation_split_of_a_run_that_held_out_none(tmp_path, capsys):
    data = _write_folder(tmp_path / "shapes", count_train=9, count_test=3)
    run = tmp_path / "run"
    run.mkdir()
    kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3).save(run / "best.keras")
    settings = {"data": str(data), "seed": 0, "validation_split": 0.0}
    (run / "run.json").write_text(json.dumps({"settings": settings}))
    argv = ["evaluate", str(run / "best.keras"), "--dataset", str(data), "--split", "validation"]
    assert main(argv) == 1
    assert "held out no validation images" in capsys.readouterr().err


@pytest.mark.slow
def test_train_evaluate_predict_on_an_image_folder(tmp_path):
    data = _write_folder(tmp_path / "shapes")
    out = tmp_path / "run"
    trained = _kcnn(
        "train",
        "--model",
        "tiny_cnn",
        "--dataset",
        str(data),
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--out",
        str(out),
        "--validation-split",
        "0.2",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "test         accuracy" in trained.stdout
    assert f"model file   {out / 'best.keras'}" in trained.stdout
    for name in ("best.keras", "last.keras", "history.csv", "run.json", "curves.png"):
        assert (out / name).exists(), name
    assert (out / "logs").is_dir() and not (out / "backup").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == sorted(CLASSES)

    evaluated = _kcnn("evaluate", str(out / "best.keras"), "--dataset", str(data))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "(test, 30 images): accuracy" in evaluated.stdout
    # The run held out 0.2 of the 90 training images: evaluate's validation split is the same.
    held_out = _kcnn(
        "evaluate", str(out / "best.keras"), "--dataset", str(data), "--split", "validation"
    )
    assert "(validation, 18 images): accuracy" in held_out.stdout, held_out.stderr[-3000:]
    flipped = _kcnn("evaluate", str(out / "best.keras"), "--dataset", str(data), "--test-time-flip")
    assert flipped.returncode == 0, flipped.stderr[-3000:]
    assert "(test, 30 images, with mirror images): accuracy" in flipped.stdout

    images = sorted((data / "test" / "bar").glob("*.png"))[:2]
    predicted = _kcnn("predict", str(out / "best.keras"), *map(str, images), "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = predicted.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.split(": ")[1].split()[0] in CLASSES for line in lines)

    again = _kcnn("train", "--model", "tiny_cnn", "--dataset", str(data), "--out", str(out))
    assert again.returncode == 1
    last_line = again.stderr.strip().splitlines()[-1]
    assert last_line.startswith("kcnn: error:") and "--resume" in last_line
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--model", "resnet81", "--dataset", "fashion_mnist"], "unknown model name"),
        (["train", "--preset", "fastest"], "unknown preset 'fastest'"),
        (["train", "--model-option", "stem"], "--model-option must be KEY=VALUE"),
        (["evaluate", "model.h5", "--dataset", "fashion_mnist"], "does not exist"),
        (["predict", "missing.keras", "image.png"], "does not exist"),
    ],
)
def test_errors_are_one_line(argv, message, capsys, tmp_path):
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("kcnn: error:") and message in error
    assert len(error.splitlines()) == 1


def test_h5_models_are_refused(tmp_path, capsys):
    legacy = tmp_path / "model.h5"
    legacy.write_bytes(b"\x89HDF\r\n")
    assert main(["predict", str(legacy), "image.png"]) == 1
    assert "legacy .h5" in capsys.readouterr().err


def test_train_takes_every_augmentation_preset():
    from kcnn.cli import _train_arguments, build_parser
    from kcnn.data import PRESETS

    for name in PRESETS:
        args = build_parser().parse_args(["train", "--augment", name])
        assert _train_arguments(args)["augment"] == (None if name == "none" else name)


def test_preset_and_flags_make_the_train_arguments(tmp_path):
    from kcnn.cli import _train_arguments, build_parser
    from kcnn.training import PRESETS

    args = build_parser().parse_args(
        [
            "train",
            "--preset",
            "fashion-fast",
            "--epochs",
            "2",
            "--jit-compile",
            "off",
            "--model-option",
            "width=0.5",
            "--augment",
            "none",
            "--erasing",
            "0.5",
            "--test-time-flip",
            "--out",
            str(tmp_path),
        ]
    )
    arguments = _train_arguments(args)
    assert arguments["epochs"] == 2 and arguments["jit_compile"] is False
    assert arguments["erasing"] == 0.5 and arguments["test_time_flip"] is True
    turned_off = build_parser().parse_args(["train", "--no-test-time-flip"])
    assert _train_arguments(turned_off)["test_time_flip"] is False
    assert arguments["model"] == PRESETS["fashion-fast"]["model"]
    assert arguments["model_kwargs"] == {"width": 0.5} and arguments["augment"] is None
    assert arguments["out"] == str(tmp_path) and arguments["resume"] is False
    default = _train_arguments(build_parser().parse_args(["train"]))
    assert default["model"] == "simple_cnn" and default["data"] == "fashion_mnist"
    assert default["out"] == os.path.join("saved_models", "simple_cnn-fashion_mnist")
    assert set(default) == {"model", "data", "out", "resume", "overwrite"}


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--epochs", "0", "epochs must be a positive integer"),
        ("--batch-size", "1.5", "batch_size must be a positive integer"),
        ("--validation-split", "1", "validation_split must be a number in [0, 1)"),
        ("--lr", "-0.1", "learning_rate must be a positive number"),
        ("--weight-decay", "-1", "weight_decay must be a number >= 0"),
        ("--l1", "-1", "l1 must be a number >= 0"),
        ("--l2", "x", "l2 must be a number >= 0"),
        ("--label-smoothing", "1.5", "label_smoothing must be a number in [0, 1)"),
        ("--erasing", "1.5", "erasing must be a number in [0, 1]"),
        ("--seed", "-1", "seed must be an integer >= 0"),
        ("--augment", "bogus", "invalid choice: 'bogus'"),
    ],
)
def test_a_bad_train_flag_value_is_one_line_and_exit_status_2(capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", flag, value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith(f"kcnn train: error: argument {flag}: {message}")
