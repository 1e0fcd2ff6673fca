"""`kcnn.tuning.search` in one process: each tuner runs tiny trials to completion, the results
table, the best model and its hyperparameters are written and read back, failed trials are
recorded, and a search whose every trial fails stops with a readable error."""

import csv
import json
import os

import keras_tuner
import numpy as np
import pytest

import kcnn
from kcnn import tuning


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def run(tmp_path, arrays, small_space, **options):
    data = tuning.SearchData(arrays, batch_size=32)
    options.setdefault("hypermodel", tuning.CNNHyperModel(data.info, precision="float32"))
    options.setdefault("epochs", 2)
    return tuning.search(
        options.pop("hypermodel"),
        data,
        directory=tmp_path,
        project_name="search",
        hyperparameters=small_space,
        verbose=0,
        **options,
    )


def test_random_search_writes_the_table_the_best_model_and_its_hyperparameters(
    tmp_path, arrays, small_space
):
    result = run(tmp_path, arrays, small_space, tuner="random", max_trials=2)
    rows = read_rows(result.results_csv)
    assert [row["trial"] for row in rows] == ["0", "1"]
    assert all(row["status"] == "COMPLETED" for row in rows)
    for row in rows:
        assert 0.0 <= float(row["val_accuracy"]) <= 1.0
        assert float(row["seconds"]) > 0 and row["attempts"] == "1"
        assert row["filters_1"] == "4" and row["optimizer"] in ("adam", "sgd")
        assert 1 <= int(row["best_epoch"]) <= 2
    # The first trial is the space's defaults (those small_space leaves free).
    first = rows[0]
    assert (first["kernel_size"], first["dropout"], first["optimizer"]) == ("3", "0.5", "adam")
    assert float(first["learning_rate"]) == pytest.approx(1e-3)
    assert rows[1] != {
        **rows[1],
        **{k: first[k] for k in ("kernel_size", "dropout", "optimizer", "learning_rate")},
    }
    best_row = max(rows, key=lambda row: float(row["val_accuracy"]))
    assert result.best_score == pytest.approx(float(best_row["val_accuracy"]))

    with open(result.results_markdown, encoding="utf-8") as file:
        markdown = file.read()
    assert "Trials: 2 completed." in markdown and f"Best: trial {result.best_trial}" in markdown
    assert markdown.count("| COMPLETED |") == 2

    with open(result.hyperparameters_path, encoding="utf-8") as file:
        best = json.load(file)
    assert best["trial_id"] == result.best_trial
    assert best["hyperparameters"] == result.best_hyperparameters
    assert best["builder"] == "configurable_cnn"
    assert best["builder_arguments"]["filters"] == [4, 4]
    assert best["training_arguments"]["optimizer"] == result.best_hyperparameters["optimizer"]

    model = kcnn.load_model(result.model_path)
    images, _ = arrays
    predictions = model.predict(images[:5].astype("float32"), verbose=0)  # raw pixels
    assert predictions.shape == (5, 3)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-4)
    assert not [n for n in os.listdir(result.project_dir) if n.startswith(".")]  # no temp files


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path, arrays, small_space):
    hp = keras_tuner.HyperParameters()
    hp.Choice("conv_blocks", [2, 9])  # nine 2x2 poolings do not fit 16x16 images
    for fixed in small_space.space:
        if fixed.name != "conv_blocks":
            hp.Fixed(fixed.name, small_space.values[fixed.name])
    for name, value in (
        ("kernel_size", 3),
        ("dropout", 0.0),
        ("optimizer", "adam"),
        ("learning_rate", 1e-2),
    ):
        hp.Fixed(name, value)
    # Two points in the space: random search tries each once, then stops.
    result = run(tmp_path, arrays, hp, tuner="random", max_trials=3)
    rows = {row["conv_blocks"]: row for row in read_rows(result.results_csv)}
    assert set(rows) == {"2", "9"}
    assert rows["9"]["status"] == "FAILED"
    assert "conv_blocks=9" in rows["9"]["error"] and rows["9"]["val_accuracy"] == ""
    assert rows["2"]["status"] == "COMPLETED"
    assert result.best_hyperparameters["conv_blocks"] == 2
    assert "1 failed" in open(result.results_markdown, encoding="utf-8").read()


def test_a_search_whose_every_trial_fails_stops_with_a_readable_error(
    tmp_path, arrays, small_space
):
    # The model takes 20x20 images; the data has 16x16: every trial fails in fit.
    wrong = tuning.CNNHyperModel(input_shape=(20, 20, 1), classes=3, precision="float32")
    with pytest.raises(tuning.SearchError, match="no trial could be built and trained") as error:
        run(
            tmp_path,
            arrays,
            small_space,
            hypermodel=wrong,
            tuner="random",
            max_trials=5,
            max_consecutive_failures=2,
        )
    assert "results.md" in str(error.value)
    rows = read_rows(tmp_path / "search" / "results.csv")
    assert [row["status"] for row in rows] == ["FAILED", "FAILED"]
    assert all(row["error"] for row in rows)


def test_a_space_whose_default_model_cannot_be_built_fails_before_any_trial(tmp_path, arrays):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 9)
    with pytest.raises(ValueError, match="conv_blocks=9"):
        run(tmp_path, arrays, hp, tuner="random", max_trials=2)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"tuner": "grid"}, "tuner"),
        ({"max_trials": 0}, "max_trials"),
        ({"epochs": 0}, "epochs"),
        ({"patience": 0}, "patience"),
        ({"hyperband_factor": 1}, "hyperband_factor"),
        ({"hypermodel": "vgg"}, "hypermodel"),
    ],
)
def test_bad_search_arguments_name_them(tmp_path, arrays, small_space, options, argument):
    with pytest.raises(ValueError, match=argument):
        run(tmp_path, arrays, small_space, **options)


def test_overwrite_deletes_a_search_only(tmp_path, arrays, small_space):
    # keras-tuner deletes the project folder: under a mistyped name it could be a training run.
    run_folder = tmp_path / "search"
    run_folder.mkdir()
    (run_folder / "best.keras").write_text("a trained model")
    with pytest.raises(ValueError, match="holds no search"):
        run(tmp_path, arrays, small_space, overwrite=True)
    assert (run_folder / "best.keras").read_text() == "a trained model"


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["hyperband", "bayesian"])
def test_hyperband_and_bayesian_run_tiny_trials_to_completion(tmp_path, arrays, small_space, tuner):
    # Hyperband with 2 epochs and factor 2: two 1-epoch trials, then the better one goes on
    # to epoch 2 (its weights are loaded from its checkpoint).
    result = run(tmp_path, arrays, small_space, tuner=tuner, max_trials=3, hyperband_factor=2)
    rows = read_rows(result.results_csv)
    assert len(rows) == 3 and all(row["status"] == "COMPLETED" for row in rows)
    if tuner == "hyperband":
        assert [row["tuner/epochs"] for row in rows] == ["1", "1", "2"]
        assert rows[2]["tuner/trial_id"] in (rows[0]["trial"], rows[1]["trial"])
        assert rows[2]["best_epoch"] == "2"
    assert kcnn.load_model(result.model_path).output_shape == (None, 3)


@pytest.mark.slow
def test_ready_made_datasets_a_space_name_and_the_resnet_space(tmp_path, arrays, small_space):
    data = tuning.SearchData(arrays, batch_size=32)
    train, validation = data.splits()
    with pytest.raises(ValueError, match="needs a data source"):
        tuning.search("cnn", (train, validation), directory=tmp_path)
    ready = tuning.search(
        tuning.CNNHyperModel(data.info, precision="float32"),
        (train, validation),
        max_trials=2,
        epochs=1,
        directory=tmp_path,
        project_name="ready",
        hyperparameters=small_space,
        verbose=0,
    )
    assert ready.best_hyperparameters["augment"] == "none"
    by_name = tuning.search(
        "cnn",
        arrays,
        max_trials=1,
        epochs=1,
        directory=tmp_path,
        project_name="by_name",
        hyperparameters=small_space,
        verbose=0,
    )
    assert kcnn.load_model(by_name.model_path).get_layer("normalize") is not None

    hp = keras_tuner.HyperParameters()
    hp.Fixed("width", 0.25)
    hp.Fixed("stage2_blocks", 1)
    resnet = tuning.search(
        tuning.ResNetHyperModel(data.info, stages=2, precision="float32"),
        data,
        max_trials=2,
        epochs=1,
        directory=tmp_path,
        project_name="resnet",
        hyperparameters=hp,
        verbose=0,
    )
    model = kcnn.load_model(resnet.model_path)
    depth = resnet.best_hyperparameters["stage1_blocks"]
    assert model.get_layer(f"stage1_block{depth}") is not None
    assert model.predict(arrays[0][:2].astype("float32"), verbose=0).shape == (2, 3)


def test_the_best_trial_is_the_earliest_of_those_that_tie():
    from types import SimpleNamespace

    def trial(trial_id, score, status="COMPLETED"):
        return SimpleNamespace(trial_id=trial_id, score=score, status=status)

    trials = [trial("12", 0.8), trial("3", 0.7), trial("18", 0.8), trial("20", None, "FAILED")]
    oracle = SimpleNamespace(
        trials={t.trial_id: t for t in reversed(trials)},
        objective=keras_tuner.Objective("val_accuracy", "max"),
    )
    assert tuning.best_trial(oracle).trial_id == "12"
    oracle.objective = keras_tuner.Objective("val_loss", "min")
    assert tuning.best_trial(oracle).trial_id == "3"
    oracle.trials = {"20": trials[3]}
    assert tuning.best_trial(oracle) is None
