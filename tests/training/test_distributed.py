"""Distributed training for real on one machine: MirroredStrategy over two logical CPU devices
and MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1; after one step both
agree with single-device training on the loss."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kcnn.training import train
from tests.training.conftest import ROOT, run_python

# One SGD step on one batch of 24 pattern images, then the loss on that batch.
ONE_STEP = """
import json, sys
import keras, numpy as np, tensorflow as tf
import kcnn
from kcnn.training import train
from tests.training.conftest import patterns

def one_step(strategy, out=None):
    images, labels = patterns(24, 0)
    images = images.astype("float32") / 255.0
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(24)
    build = lambda: kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    result = train(build, dataset, epochs=1, strategy=strategy, optimizer="sgd",
                   learning_rate=0.5, precision="float32", verbose=0, out=out,
                   tensorboard=False, seed=0)
    loss = keras.losses.sparse_categorical_crossentropy(labels, result.model(images))
    return result, float(np.mean(keras.ops.convert_to_numpy(loss)))
"""

MIRRORED = (
    ONE_STEP
    + """
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
mirrored, mirrored_loss = one_step("mirrored")
keras.utils.clear_session()
single, single_loss = one_step("default")
print(json.dumps({"replicas": mirrored.replicas, "strategy": mirrored.strategy,
                  "mirrored": mirrored_loss, "single": single_loss,
                  "fit_losses": [mirrored.history["loss"][0], single.history["loss"][0]]}))
"""
)

WORKER = (
    ONE_STEP
    + """
from kcnn.training import make_strategy
strategy = make_strategy("multiworker")  # before any other TensorFlow work, as TF requires
result, loss = one_step(strategy, out=sys.argv[1])
print(json.dumps({"replicas": result.replicas, "strategy": result.strategy, "loss": loss}))
"""
)


def _last_json(process):
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_mirrored_over_two_cpus_agrees_with_one_device():
    measured = _last_json(run_python(MIRRORED))
    assert measured["replicas"] == 2 and measured["strategy"] == "mirrored"
    assert measured["mirrored"] == pytest.approx(measured["single"], rel=1e-5)
    assert measured["fit_losses"][0] == pytest.approx(measured["fit_losses"][1], rel=1e-5)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_two_workers_on_localhost_agree_with_one_device(tmp_path):
    exec(ONE_STEP.replace("import json, sys\n", ""), namespace := {})
    _, single_loss = namespace["one_step"]("default")
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    out = tmp_path / "run"
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(config)}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(out)],
                cwd=ROOT,
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    finished = [process.communicate(timeout=300) for process in processes]
    for process in processes:
        assert process.returncode == 0, "\n".join(error[-3000:] for _, error in finished)
    outputs = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in finished]
    for measured in outputs:
        assert measured["replicas"] == 2 and measured["strategy"] == "multiworker"
        assert measured["loss"] == pytest.approx(single_loss, rel=1e-5)
    assert sorted(os.listdir(out)) == ["history.csv", "last.keras", "run.json"]


def test_built_model_cannot_be_distributed():
    import kcnn

    model = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.zeros((4, 16, 16, 1), "float32"), np.zeros(4, "int64"))
    ).batch(2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with pytest.raises(ValueError, match="not built under the strategy's scope"):
        train(model, dataset, epochs=1, strategy=strategy, verbose=0)


def test_multiworker_without_tf_config_is_explained(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    from kcnn.training import make_strategy

    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        make_strategy("auto")
