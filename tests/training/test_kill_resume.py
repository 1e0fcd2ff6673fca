"""A training process killed with SIGKILL resumes at the epoch it reached, with the weights and
the optimizer state (Adam's step count and moments) of that epoch."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.training.conftest import ROOT

# Trains 6 epochs of 4 steps; after each epoch (once BackupAndRestore has saved it) dumps the
# weights and optimizer variables, and pauses after epoch 2 so that the test kills it there. When it
# resumes, dumps the state BackupAndRestore restored before the first new step.
SCRIPT = """
import json, sys, time
import keras, numpy as np
from kcnn.training import train
from tests.training.conftest import patterns

out, dumps, pause = sys.argv[1], sys.argv[2], float(sys.argv[3])

def state(model):
    return [np.asarray(v) for v in model.weights] + [np.asarray(v) for v in model.optimizer.variables]

class Dump(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        np.savez(f"{dumps}/start.npz", *state(self.model))
    def on_epoch_end(self, epoch, logs=None):
        np.savez(f"{dumps}/epoch{epoch + 1}.npz", *state(self.model))
        if epoch + 1 == 2:
            time.sleep(pause)

data = (patterns(120, 0), patterns(30, 1))
result = train("tiny_cnn", data, epochs=6, batch_size=27, out=out, resume=True, tensorboard=False,
               precision="float32", verbose=0, callbacks=[Dump()])
print(json.dumps({"initial_epoch": result.initial_epoch, "epochs": result.epochs,
                  "iterations": int(result.model.optimizer.iterations),
                  "history": len(result.history["loss"])}))
"""


def _arrays(path):
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.mark.slow
def test_sigkill_then_resume_restores_epoch_weights_and_optimizer(tmp_path):
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", SCRIPT, str(out), str(dumps)]
    victim = subprocess.Popen(command + ["30"], cwd=ROOT, env=env, stderr=subprocess.PIPE)
    metadata = out / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        if metadata.exists() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.2)
    assert victim.poll() is None, victim.stderr.read().decode()[-3000:]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    victim.stderr.close()
    assert victim.returncode == -signal.SIGKILL
    assert not (out / "run.json").exists()

    resumed = subprocess.run(command + ["0"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert report == {"initial_epoch": 2, "epochs": 6, "iterations": 6 * 4, "history": 6}
    killed_at, restored = _arrays(dumps / "epoch2.npz"), _arrays(dumps / "start.npz")
    assert len(killed_at) == len(restored)
    for before, after in zip(killed_at, restored):
        np.testing.assert_array_equal(before, after)
    iterations = [a for a in restored if a.shape == () and a.dtype.kind == "i"]
    assert 8 in [int(a) for a in iterations]
    assert (out / "run.json").exists() and not (out / "backup").exists()
