"""kcnn's models import, build, train and predict on JAX with TensorFlow impossible to import.

A GPU machine may have JAX or PyTorch and no TensorFlow (``benchmarks/gpu.py`` runs on one), so
``import kcnn`` and ``kcnn.create_model`` must not import it. A subprocess runs with
``tests/no_tensorflow`` first on ``PYTHONPATH``, whose ``sitecustomize`` refuses every TensorFlow
import, and reports what it did as JSON.
"""

import json

import pytest

from tests.models.helpers import SUBPROCESS_ON_JAX
from tests.no_tensorflow import run_without_tensorflow

SCRIPT = r"""
import json, sys
import numpy as np
try:
    import tensorflow
    blocked = False
except ImportError:
    blocked = True
import keras
import kcnn

report = {"tensorflow_blocked": blocked, "backend": keras.backend.backend(), "models": {}}
# ResNet-50 at 64 px: at 32 px its last stage sees 1x1 maps, whose batch statistics over two
# images make the moving averages after one step useless for prediction (NaN on every backend).
y = np.array([1, 2])
models = [("resnet18", 32, {"stem": "cifar", "classes": 10}), ("resnet50", 64, {})]
for name, size, kwargs in models:
    x = np.random.default_rng(0).uniform(0, 1, (2, size, size, 3)).astype("float32")
    model = kcnn.create_model(name, input_shape=(size, size, 3), **kwargs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = keras.ops.convert_to_numpy(model.trainable_weights[0])
    loss = model.fit(x, y, batch_size=2, epochs=1, verbose=0).history["loss"][0]
    after = keras.ops.convert_to_numpy(model.trainable_weights[0])
    predictions = model.predict(x, verbose=0)
    report["models"][name] = {
        "trainable": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
        "loss": float(loss),
        "weights_changed": bool(np.any(before != after)),
        "predictions_shape": list(predictions.shape),
        "probability_sums": predictions.sum(axis=1).tolist(),
    }
report["tensorflow_modules"] = sorted(m for m in sys.modules if m.startswith("tensorflow"))
print(json.dumps(report))
"""


@pytest.mark.slow
@SUBPROCESS_ON_JAX
def test_resnets_build_train_and_predict_without_tensorflow():
    result = run_without_tensorflow(["-c", SCRIPT])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow_blocked"]
    assert report["backend"] == "jax"
    assert report["tensorflow_modules"] == []
    # torchvision's resnet50 (1000 classes); resnet18 with a 3x3 stem and 10 classes, as the
    # common CIFAR ResNet-18 (kuangliu/pytorch-cifar).
    expected = {"resnet18": (11_173_962, 10), "resnet50": (25_557_032, 1000)}
    for name, (trainable, classes) in expected.items():
        model = report["models"][name]
        assert model["trainable"] == trainable
        assert model["weights_changed"]
        assert 0 < model["loss"] < 100
        assert model["predictions_shape"] == [2, classes]
        assert model["probability_sums"] == pytest.approx([1.0, 1.0], abs=1e-4)
