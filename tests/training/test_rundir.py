"""The run directory: overwrite deletes only a kcnn run, resume needs a run and its settings,
a lock keeps a second process out, a torn backup falls back on last.keras, kcnn's temporary
files are cleaned. (Kills of a real process are in test_kill_resume.py.)"""

import json
import os

import keras
import pytest

from kcnn import cli
from kcnn.training import train
from kcnn.training.rundir import RunInUse, RunLock, read_settings
from tests.training.conftest import FAST


class Interrupt(keras.callbacks.Callback):
    """Stop the run as a kill would, when epoch ``epoch`` (0-based) begins."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def _interrupted_run(out, data, epoch=1, **kwargs):
    with pytest.raises(KeyboardInterrupt):
        train("tiny_cnn", data, epochs=4, out=out, callbacks=[Interrupt(epoch)], **FAST, **kwargs)


def test_overwrite_refuses_a_folder_that_holds_no_kcnn_run(tmp_path, pattern_data):
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "history.csv").write_text("my own table")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "thesis.tex").write_text("my thesis")
    with pytest.raises(
        ValueError,
        match=rf"'{tmp_path}' holds no kcnn run: backup, history.csv, "
        "notes.txt",
    ):
        train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, overwrite=True, **FAST)
    (tmp_path / "notes.txt").unlink()
    with pytest.raises(ValueError, match=rf"'{tmp_path}' holds no kcnn run: backup, history.csv;"):
        train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, overwrite=True, **FAST)
    assert sorted(os.listdir(tmp_path)) == ["backup", "history.csv"]
    assert (tmp_path / "history.csv").read_text() == "my own table"
    assert (tmp_path / "backup" / "thesis.tex").read_text() == "my thesis"


def test_overwrite_refuses_a_run_folder_that_holds_other_files(tmp_path, pattern_data):
    (tmp_path / "run.json").write_text(json.dumps({"model_name": "tiny_cnn", "epochs": 1}))
    for name in ("last.keras", "history.csv", "notes.txt"):
        (tmp_path / name).write_text(name)
    with pytest.raises(ValueError, match=rf"'{tmp_path}' holds others: notes.txt;"):
        train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, overwrite=True, **FAST)
    assert sorted(os.listdir(tmp_path)) == ["history.csv", "last.keras", "notes.txt", "run.json"]


def test_overwrite_clears_a_phase_killed_while_it_saved_its_final_weights(tmp_path, pattern_data):
    (tmp_path / "run.json").write_text(json.dumps({"model_name": "tiny_cnn", "epochs": 1}))
    (tmp_path / "final.weights.h5").write_text("weights")
    (tmp_path / ".final.weights.h5.k3x_9q2a.weights.h5").write_text("half a save")
    train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, overwrite=True, **FAST)
    assert not (tmp_path / "final.weights.h5").exists()
    assert not (tmp_path / ".final.weights.h5.k3x_9q2a.weights.h5").exists()


def test_resume_without_a_run_says_there_is_nothing_to_resume(tmp_path, pattern_data):
    with pytest.raises(ValueError, match="unknown model name"):
        train("resnet81", pattern_data, epochs=1, out=tmp_path, **FAST)
    assert os.listdir(tmp_path) == []  # a start that failed leaves no run behind
    for out in (tmp_path / "missing", tmp_path):
        with pytest.raises(ValueError, match=rf"nothing to resume in '{out}'"):
            train("tiny_cnn", pattern_data, epochs=1, out=out, resume=True, **FAST)
    assert os.listdir(tmp_path) == []


def test_a_start_that_fails_leaves_no_folder_it_made(tmp_path, pattern_data):
    out = tmp_path / "runs" / "first"
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train("tiny_cnn", pattern_data, epochs=1, optimizer="bogus", out=out, **FAST)
    assert os.listdir(tmp_path / "runs") == []
    (tmp_path / "runs" / "mine").mkdir()
    with pytest.raises(ValueError, match="optimizer must be one of"):
        train(
            "tiny_cnn",
            pattern_data,
            epochs=1,
            optimizer="bogus",
            out=tmp_path / "runs" / "mine",
            **FAST,
        )
    assert os.listdir(tmp_path / "runs") == ["mine"]  # a folder the user made stays


def test_a_locked_run_directory_refuses_a_second_trainer(tmp_path, pattern_data):
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        with pytest.raises(RunInUse, match=rf"is in use: process {os.getpid()} on "):
            train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, **FAST)
    finally:
        lock.release()
    assert os.listdir(tmp_path) == []
    train("tiny_cnn", pattern_data, epochs=1, out=tmp_path, **FAST)
    assert "training.lock" not in os.listdir(tmp_path)


def test_resume_refuses_other_settings_and_names_another_model_in_one_line(tmp_path, pattern_data):
    out = tmp_path / "run"
    _interrupted_run(out, pattern_data, learning_rate=1e-3)
    with pytest.raises(
        ValueError,
        match=r"other settings.*learning_rate: 0\.001 \(now 0\.01\); "
        r"seed: 0 \(now 1\)",
    ):
        train(
            "tiny_cnn",
            pattern_data,
            epochs=4,
            out=out,
            resume=True,
            learning_rate=1e-2,
            seed=1,
            **FAST,
        )
    with pytest.raises(ValueError) as refused:
        train(
            "simple_cnn", pattern_data, epochs=4, out=out, resume=True, learning_rate=1e-3, **FAST
        )
    assert str(refused.value) == (
        f"the run in '{out}' was made with model 'tiny_cnn', not "
        "'simple_cnn': resume it with that model, or start a new run "
        "elsewhere"
    )
    result = train(
        "tiny_cnn", pattern_data, epochs=4, out=out, resume=True, learning_rate=1e-3, **FAST
    )
    assert result.initial_epoch == 1 and result.resumed_from == "backup"
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["learning_rate"] == 1e-3 and run["resumed_from"] == "backup"


def test_the_command_line_resumes_with_the_run_settings_it_leaves_out(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "settings.json").write_text(
        json.dumps(
            {
                "model": "tiny_cnn",
                "data": "digits",
                "epochs": 4,
                "learning_rate": 0.01,
                "seed": 3,
                "no_such_argument": 1,
            }
        )
    )
    parser = cli.build_parser()
    arguments = cli._train_arguments(parser.parse_args(["train", "--out", str(out), "--resume"]))
    assert {k: arguments[k] for k in ("model", "data", "epochs", "learning_rate", "seed")} == {
        "model": "tiny_cnn",
        "data": "digits",
        "epochs": 4,
        "learning_rate": 0.01,
        "seed": 3,
    }
    assert "no_such_argument" not in arguments
    given = cli._train_arguments(
        parser.parse_args(["train", "--out", str(out), "--resume", "--lr", "0.5"])
    )
    assert given["learning_rate"] == 0.5
    assert read_settings(out)["seed"] == 3


def test_a_torn_backup_resumes_from_last_keras_and_says_so(tmp_path, pattern_data, capsys):
    out = tmp_path / "run"
    _interrupted_run(out, pattern_data, epoch=2)
    backup = out / "backup"
    weights = backup / json.loads((backup / "training_metadata.json").read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    temporaries = [out / ".last.keras.k3x_9q2a.keras", out / ".run.json.0a1b2c3d.json"]
    for path in temporaries:
        path.write_bytes(b"PK\x03\x04 partial")
    result = train(
        "tiny_cnn", pattern_data, epochs=4, out=out, resume=True, **{**FAST, "verbose": 2}
    )
    assert result.resumed_from == "checkpoint" and result.initial_epoch == 2 and result.epochs == 4
    assert int(result.model.optimizer.iterations) == 4 * 4
    said = capsys.readouterr().out
    assert (
        f"kcnn: {out}: restored {out / 'last.keras'} (epoch 2), the backup being unusable" in said
    )
    assert json.loads((out / "run.json").read_text())["resumed_from"] == "checkpoint"
    assert not any(path.exists() for path in temporaries)
    assert sorted(os.listdir(out)) == ["best.keras", "history.csv", "last.keras", "run.json"]


def test_a_transfer_run_is_locked_across_its_phases(tmp_path):
    import tensorflow as tf

    from kcnn import transfer
    from tests.transfer.conftest import tiny_model

    data = tf.data.Dataset.from_tensor_slices(
        (tf.zeros((4, 32, 32, 3)), tf.zeros(4, "int64"))
    ).batch(4)
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        with pytest.raises(RunInUse, match=rf"'{tmp_path}' is in use: process {os.getpid()}"):
            transfer.train(
                tiny_model("progressive"),
                data,
                "progressive",
                2,
                out=tmp_path,
                verbose=0,
                tensorboard=False,
            )
    finally:
        lock.release()
    assert os.listdir(tmp_path) == []
