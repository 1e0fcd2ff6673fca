"""Loading saved kcnn models safely."""

from __future__ import annotations

import os

import keras

import kcnn.data.augment  # noqa: F401  (registers RandomResizedCrop; keras-only, like the layers)
import kcnn.models.layers  # noqa: F401  (registers kcnn's layers for deserialisation)


def load_model(path, compile: bool = True):
    """Load a ``.keras`` model file with ``safe_mode=True`` (no arbitrary code from lambdas).

    Importing this module registers kcnn's custom layers (and `RandomResizedCrop`), and loading
    imports `kcnn.transfer`, whose ``ApplicationPreprocessing`` layer the transfer models hold,
    so no ``custom_objects`` are needed for any model kcnn saves.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is a legacy ``.h5`` file or a SavedModel folder, which can run
            arbitrary code or lose custom layers; re-save them as ``.keras``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a folder (a TensorFlow SavedModel?): kcnn loads only .keras files; "
            "load it with TensorFlow and save it with model.save('model.keras')"
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"model file {path!r} does not exist")
    if not path.endswith(".keras"):
        raise ValueError(
            f"{path!r} is not a .keras file: legacy .h5 and other formats are refused; load it "
            "with Keras yourself and save it with model.save('model.keras')"
        )
    import kcnn.transfer  # noqa: F401  registers ApplicationPreprocessing

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (OSError, KeyError, EOFError) as error:
        raise ValueError(f"{path!r} is not a readable .keras model file ({error})") from error
