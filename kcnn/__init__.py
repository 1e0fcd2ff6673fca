"""kcnn: convolutional networks for Keras 3.

The public API. Importing ``kcnn`` is cheap: the sub-packages that need Keras or TensorFlow
(``kcnn.models``, ``kcnn.layers``, ``kcnn.data``, ...) are imported on first use. kcnn's layers
are registered with Keras when Keras is imported (`kcnn.keras_hook`), so
``import kcnn; keras.saving.load_model(path)`` loads any kcnn model.

Example:
    >>> import kcnn
    >>> kcnn.list_models()[:3]
    ['alexnet', 'configurable_cnn', 'densenet121']
    >>> model = kcnn.create_model("simple_cnn")
"""

import importlib

from kcnn.keras_hook import register_layers_with_keras
from kcnn.registry import (
    ModelInfo,
    create_model,
    list_models,
    model_facts,
    model_info,
    register_model,
)

__version__ = "0.1.0"

_SUBMODULES = (
    "checks",
    "convmath",
    "data",
    "errors",
    "export",
    "files",
    "layers",
    "models",
    "options",
    "progress",
    "report",
    "training",
    "transfer",
    "tuning",
    "viz",
)

__all__ = [
    "ModelInfo",
    "create_model",
    "list_models",
    "load_model",
    "model_facts",
    "model_info",
    "register_model",
    *_SUBMODULES,
]


def load_model(path, compile: bool = True):
    """Load a ``.keras`` model safely; see `kcnn.models.saving.load_model`."""
    from kcnn.models.saving import load_model as _load_model

    return _load_model(path, compile=compile)


register_layers_with_keras()


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"kcnn.{name}")
    raise AttributeError(f"module 'kcnn' has no attribute {name!r}")
