"""The ``kcnn`` commands on bad model files and model options: one line naming the file or the
option, a non-zero exit, no traceback; a corrupt run.json beside a model is only a warning."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import kcnn
from kcnn.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny 16x16 grey model of 2 classes, saved in a folder of its own."""
    path = tmp_path_factory.mktemp("run") / "best.keras"
    kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=2).save(path)
    return path


def _one_error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("kcnn: error:") and len(error.splitlines()) == 1, error
    return error


def _command(name, model, image):
    return {
        "predict": ["predict", model, image],
        "evaluate": ["evaluate", model, "--dataset", "fashion_mnist"],
        "explain": ["explain", model, image],
    }[name]


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_a_model_file_naming_code_outside_keras_is_one_line_and_never_run(
    command, model_file, tmp_path, capsys
):
    with zipfile.ZipFile(model_file) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    marker = tmp_path / "payload-ran"
    members["config.json"] = json.dumps(
        {
            "module": "subprocess",
            "class_name": "Popen",
            "registered_name": None,
            "config": {"args": ["touch", str(marker)]},
        }
    )
    crafted = tmp_path / "crafted.keras"
    with zipfile.ZipFile(crafted, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert main(_command(command, str(crafted), str(tmp_path / "image.png"))) == 1
    error = _one_error_line(capsys)
    assert str(crafted) in error and "subprocess.Popen" in error
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_an_empty_model_file_is_named_not_reported_missing(command, tmp_path, capsys):
    empty = tmp_path / "empty.keras"
    empty.touch()
    assert main(_command(command, str(empty), str(tmp_path / "image.png"))) == 1
    error = _one_error_line(capsys)
    assert str(empty) in error and "the file is empty" in error


def test_predict_warns_about_a_corrupt_run_json_and_shows_class_indices(
    model_file, tmp_path, capsys
):
    run = model_file.parent / "run.json"
    run.write_text('{"class_names": ["a", "b"],')
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    try:
        assert main(["predict", str(model_file), str(image), "--top-k", "2"]) == 0
    finally:
        run.unlink()
    captured = capsys.readouterr()
    warning = captured.err.strip()
    assert warning.startswith("kcnn: warning:") and len(warning.splitlines()) == 1
    assert str(run) in warning
    ranked = captured.out.strip().split(": ", 1)[1].split(", ")
    assert sorted(entry.split()[0] for entry in ranked) == ["0", "1"]


@pytest.fixture
def image_folder(tmp_path):
    """Two classes of five 8x8 grey images."""
    for label in ("a", "b"):
        folder = tmp_path / "data" / label
        folder.mkdir(parents=True)
        for index in range(5):
            pixels = np.full((8, 8), 30 * index + (100 if label == "b" else 0), np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return tmp_path / "data"


@pytest.mark.parametrize(
    "option, message",
    [
        ("bogus=1", "has no option 'bogus'; its options are: include_top,"),
        ("classes=1000000000", "classes=1,000,000,000 is too many for this machine"),
    ],
)
def test_a_model_option_the_builder_cannot_take_is_one_line(
    option, message, image_folder, tmp_path, capsys
):
    argv = [
        "train",
        "--model",
        "tiny_cnn",
        "--dataset",
        str(image_folder),
        "--no-test",
        "--epochs",
        "1",
        "--validation-split",
        "0.4",
        "--model-option",
        option,
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(argv) == 1
    assert message in _one_error_line(capsys)
