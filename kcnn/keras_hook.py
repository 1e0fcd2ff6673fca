"""Register kcnn's layers with Keras as soon as Keras is imported, without importing it.

Keras finds a custom layer of a saved model only in its table of registered objects, which a
class enters when its module is imported. keras_hub fills it by importing everything at
``import keras_hub``; kcnn keeps ``import kcnn`` light (no Keras, no TensorFlow) instead, and
imports `kcnn.layers` at the moment Keras itself is imported: right away if it already was, else
through a finder on ``sys.meta_path`` that wraps the loading of the ``keras`` package once (the
standard post-import hook). Either way ``import kcnn; keras.saving.load_model(path)`` loads
every kcnn model without ``custom_objects``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

LAYERS_MODULE = "kcnn.layers"


def register_layers_with_keras() -> None:
    """Import `kcnn.layers` now if Keras is loaded, else right after Keras loads."""
    if "keras" in sys.modules:
        importlib.import_module(LAYERS_MODULE)
    elif not any(isinstance(finder, _KerasImportWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasImportWatcher())


class _KerasImportWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself: on the first import of ``keras`` it removes itself, lets the other
    finders find Keras, and makes its loader import `kcnn.layers` once Keras has loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        load_keras = spec.loader.exec_module

        def load_keras_then_kcnn_layers(module):
            load_keras(module)
            importlib.import_module(LAYERS_MODULE)

        spec.loader.exec_module = load_keras_then_kcnn_layers
        return spec
