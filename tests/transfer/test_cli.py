"""`kcnn transfer` end to end on a small image folder, and its one-line errors."""

import numpy as np
import pytest
from PIL import Image

import kcnn
from kcnn import transfer
from kcnn.cli import main


@pytest.fixture
def folder(tmp_path):
    """Two classes of 8 small RGB images (dark and bright), one sub-folder per class."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 60), ("bright", 190)):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(rng.normal(level, 30, size=(20, 24, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.png")
    return tmp_path / "images"


def test_transfer_command_trains_the_phases_and_saves_the_model(folder, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "transfer",
            "--backbone",
            "tiny_cnn",
            "--dataset",
            str(folder),
            "--weights",
            "none",
            "--strategy",
            "progressive",
            "--epochs",
            "2",
            "--head-epochs",
            "1",
            "--unfreeze",
            "1",
            "--finetune-lr",
            "1e-4",
            "--batch-size",
            "4",
            "--validation-split",
            "0.25",
            "--no-test",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "phase 1      epoch 1, head only, learning rate 0.001" in printed
    assert "phase 2      epoch 2, head + top 1 blocks, learning rate 0.0001" in printed
    assert (out / "phase1" / "last.keras").exists() and (out / "phase2" / "last.keras").exists()
    assert (out / "curves.png").stat().st_size > 0
    model = kcnn.load_model(out / "model.keras")
    assert model.inputs[0].shape[1:] == (28, 28, 3)
    assert transfer.backbone_of(model).name == "tiny_cnn"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backbone", "ResNet5O"], "Did you mean: ResNet50"),
        (["--backbone", "tiny_cnn", "--weights", "imagenet"], "'tiny_cnn' has no ImageNet weights"),
        (["--backbone", "tiny_cnn", "--unfreeze", "top"], "--unfreeze must be an integer or 'all'"),
        (
            ["--backbone", "tiny_cnn", "--strategy", "frozen", "--unfreeze", "1"],
            "belong to the 'progressive' strategy",
        ),
    ],
)
def test_transfer_command_errors_are_one_line(folder, capsys, flags, message):
    code = main(["transfer", "--dataset", str(folder), "--epochs", "2", *flags])
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("kcnn: error: ") and error.count("\n") == 1
    assert message in error
