"""A training process killed with SIGKILL at any moment -- after an epoch, while its backup is
written, between an epoch's log and its backup, after its last epoch -- resumes where it was,
with the weights and the optimizer state (Adam's step count and moments) of its last complete
epoch, logs each epoch once, and leaves no temporary file; while it trains, its run directory
is locked against a second process."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kcnn import cli
from kcnn.training import train
from kcnn.training.rundir import RunInUse
from tests.training.conftest import ROOT, patterns

# Trains 6 epochs of 4 steps (a new run, or resume=True), with one of these hooks, each of which
# creates DUMPS/hooked and then sleeps PAUSE seconds, so that the test kills the process there:
#   epoch-2         after epoch 2 (once its backup is saved);
#   before-backup-2 when the backup of epoch 2 starts writing its weights (its log row is written);
#   torn-backup-2   when the backup of epoch 2 has written half of its weights file;
#   after-fit       after the last epoch, once fit has ended (before run.json).
# Dumps the weights and optimizer variables after each epoch, and those the resumed run starts
# from; prints the result.
SCRIPT = """
import json, os, sys, time
import keras, numpy as np
from kcnn.training import train
from tests.training.conftest import patterns

out, dumps, hook, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def hooked():
    open(f"{dumps}/hooked", "w").close()
    time.sleep(pause)

def state(model):
    variables = [*model.weights, *model.optimizer.variables]
    return [np.asarray(v) for v in variables]

class Dump(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        np.savez(f"{dumps}/start.npz", *state(self.model))
    def on_epoch_end(self, epoch, logs=None):
        np.savez(f"{dumps}/epoch{epoch + 1}.npz", *state(self.model))
        if hook == "epoch-2" and epoch + 1 == 2:
            hooked()
    def on_train_end(self, logs=None):
        if hook == "after-fit":
            hooked()

save_weights, saves = keras.Model.save_weights, []

def save_weights_hooked(self, *args, **kwargs):  # the backup's weights, once per epoch
    saves.append(1)
    if hook == "before-backup-2" and len(saves) == 2:
        hooked()
    save_weights(self, *args, **kwargs)
    if hook == "torn-backup-2" and len(saves) == 2:
        path = kwargs.get("filepath", args[0] if args else None)
        with open(path, "r+b") as file:
            file.truncate(os.path.getsize(path) // 2)
        hooked()

keras.Model.save_weights = save_weights_hooked
data = (patterns(120, 0), patterns(30, 1))
result = train("tiny_cnn", data, epochs=6, batch_size=27, out=out, resume=hook == "resume",
               tensorboard=False, precision="float32", verbose=0, callbacks=[Dump()])
print(json.dumps({"initial_epoch": result.initial_epoch, "epochs": result.epochs,
                  "iterations": int(result.model.optimizer.iterations),
                  "history": len(result.history["loss"]),
                  "resumed_from": getattr(result, "resumed_from", None)}))
"""

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _arrays(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def _start(out, dumps, hook, pause=60):
    """The training process, started with ``hook``; returns once it reached the hook."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(out), str(dumps), hook, str(pause)],
        cwd=ROOT,
        env=ENV,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while (
        time.monotonic() < deadline and process.poll() is None and not (dumps / "hooked").exists()
    ):
        time.sleep(0.1)
    assert process.poll() is None, process.stderr.read().decode()[-3000:]
    return process


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def _resume(out, dumps):
    """Resume the run in a new process; returns what it printed (the result)."""
    resumed = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), str(dumps), "resume", "0"],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return json.loads(resumed.stdout.strip().splitlines()[-1])


def _logged_epochs(out):
    with open(out / "history.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file)]


def _temporaries(out):
    return [
        os.path.join(folder, name)
        for folder, _, names in os.walk(out)
        for name in names
        if name.startswith(".")
    ]


def _finished(out):
    """Checks common to every resumed run: finished, each epoch logged once, nothing left over."""
    assert sorted(os.listdir(out)) == ["best.keras", "history.csv", "last.keras", "run.json"]
    assert _logged_epochs(out) == [0, 1, 2, 3, 4, 5]
    assert _temporaries(out) == []
    return json.loads((out / "run.json").read_text())


@pytest.mark.slow
def test_sigkill_then_resume_restores_epoch_weights_and_optimizer(tmp_path, capsys):
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    victim = _start(out, dumps, "epoch-2")
    assert not (out / "run.json").exists()

    # While it trains, the run directory is locked: a second train (API or CLI) is refused.
    data = (patterns(120, 0), patterns(30, 1))
    with pytest.raises(
        RunInUse, match=rf"'{out}' is in use: process {victim.pid} on .* is training in it"
    ):
        train("tiny_cnn", data, epochs=6, batch_size=27, out=out, resume=True, verbose=0)
    assert cli.main(["train", "--model", "tiny_cnn", "--out", str(out), "--epochs", "6"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"process {victim.pid} on" in error

    _kill(victim)  # the killed process's lock goes with it
    report = _resume(out, dumps)
    assert report == {
        "initial_epoch": 2,
        "epochs": 6,
        "iterations": 6 * 4,
        "history": 6,
        "resumed_from": "backup",
    }
    killed_at, restored = _arrays(dumps / "epoch2.npz"), _arrays(dumps / "start.npz")
    assert len(killed_at) == len(restored)
    for before, after in zip(killed_at, restored):
        np.testing.assert_array_equal(before, after)
    iterations = [a for a in restored if a.shape == () and a.dtype.kind == "i"]
    assert 8 in [int(a) for a in iterations]
    assert _finished(out)["resumed_from"] == "backup"


@pytest.mark.slow
def test_a_kill_while_the_backup_is_written_resumes_from_the_last_complete_backup(tmp_path):
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    _kill(_start(out, dumps, "torn-backup-2"))
    assert _logged_epochs(out) == [0, 1]
    report = _resume(out, dumps)
    assert report == {
        "initial_epoch": 1,
        "epochs": 6,
        "iterations": 6 * 4,
        "history": 6,
        "resumed_from": "backup",
    }
    for before, after in zip(_arrays(dumps / "epoch1.npz"), _arrays(dumps / "start.npz")):
        np.testing.assert_array_equal(before, after)
    _finished(out)


@pytest.mark.slow
def test_a_kill_between_the_log_and_the_backup_logs_each_epoch_once(tmp_path):
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    _kill(_start(out, dumps, "before-backup-2"))
    assert _logged_epochs(out) == [0, 1]
    report = _resume(out, dumps)
    assert report["initial_epoch"] == 1 and report["epochs"] == 6 and report["history"] == 6
    _finished(out)


@pytest.mark.slow
def test_a_kill_after_the_last_epoch_finishes_the_run_without_training_again(tmp_path):
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    _kill(_start(out, dumps, "after-fit"))
    assert not (out / "run.json").exists()
    trained = (out / "last.keras").read_bytes()
    (dumps / "start.npz").unlink()
    report = _resume(out, dumps)
    assert report == {
        "initial_epoch": 6,
        "epochs": 6,
        "iterations": 6 * 4,
        "history": 6,
        "resumed_from": "backup",
    }
    assert not (dumps / "start.npz").exists()  # fit did not run again
    assert (out / "last.keras").read_bytes() == trained
    run = _finished(out)
    assert run["epochs"] == 6 and run["test_metrics"]["accuracy"] is not None
