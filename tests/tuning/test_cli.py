"""``kcnn tune``: a search end to end on a folder of images, and its one-line errors."""

import csv
import os

import numpy as np
import pytest

import kcnn
from kcnn.cli import main
from tests.tuning.search_script import tiny_arrays

SMALL = [
    "--fix",
    "filters_1=4",
    "--fix",
    "filters_2=4",
    "--fix",
    "dense_units=0",
    "--fix",
    "conv_blocks=2",
]


@pytest.fixture
def image_folder(tmp_path):
    """Three classes of 16x16 grey PNG files, one sub-folder each."""
    import keras

    images, labels = tiny_arrays(count=36)
    root = tmp_path / "images"
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        keras.utils.save_img(folder / f"{index}.png", image, scale=False)
    return root


@pytest.mark.slow
def test_tune_searches_a_folder_and_prints_where_the_results_are(tmp_path, image_folder, capsys):
    out = tmp_path / "tune"
    code = main(
        [
            "tune",
            "--dataset",
            str(image_folder),
            "--tuner",
            "random",
            "--max-trials",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--precision",
            "float32",
            "--quiet",
            "--out",
            str(out),
            *SMALL,
            "--fix",
            "augment=light",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "random search of the cnn space on images" in printed
    assert "trials       2 (2 completed)" in printed
    project = out / "cnn_random"
    with open(project / "results.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["augment"] for row in rows] == ["light", "light"]
    model = kcnn.load_model(project / "best_model.keras")
    assert model.predict(np.zeros((1, 16, 16, 1), "float32"), verbose=0).shape == (1, 3)
    assert os.path.exists(project / "best_hyperparameters.json")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--fix", "conv_blocks"], "--fix must be NAME=VALUE"),
        (["--fix", "colour=3"], "has no hyperparameter 'colour'"),
        (["--dataset", "fashion_mnits"], "unknown dataset 'fashion_mnits'"),
    ],
)
def test_tune_errors_are_one_line(tmp_path, image_folder, capsys, flags, message):
    arguments = ["tune", "--dataset", str(image_folder), "--out", str(tmp_path), *flags]
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error
