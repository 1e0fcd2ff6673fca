"""Loading saved kcnn models safely."""

from __future__ import annotations

import json
import os
import zipfile
import zlib

import keras

import kcnn.layers  # noqa: F401  (registers every kcnn layer for deserialisation)


def load_model(path, compile: bool = True):
    """Load a ``.keras`` model file with ``safe_mode=True`` (no arbitrary code from lambdas).

    Importing this module registers every kcnn layer (`kcnn.layers`), so no ``custom_objects``
    are needed for any model kcnn saves.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is a legacy ``.h5`` file or a SavedModel folder, which can run
            arbitrary code or lose custom layers; re-save them as ``.keras``. Also, in one line
            naming the file and its problem, for a file that is not a ``.keras`` model (see
            `check_archive`: empty, not a zip, truncated, no config or weights, broken JSON, code
            from outside Keras) and for any error Keras meets loading it (a ``Lambda`` layer,
            weights that do not fit the config...).
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
    check_archive(path, compile=compile)
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (
        OSError,
        KeyError,
        EOFError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
        zlib.error,
    ) as error:
        raise _not_a_model(path, _one_line(error)) from error


WEIGHTS_FILES = ("model.weights.h5", "model.weights.npz")
"""The weights members Keras reads from a ``.keras`` archive."""

KERAS_PACKAGES = ("keras", "keras_hub", "keras_cv", "keras_nlp")
"""The packages Keras imports classes from when a model config names them; any other object
must be registered (`keras.saving.register_keras_serializable`)."""

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_archive(path, compile: bool = True) -> None:
    """Check that ``path`` holds what Keras needs from a ``.keras`` archive, before Keras reads it.

    Keras reports an empty, truncated or non-zip file as "File not found", and broken JSON by
    the parser's message alone; this names the problem. It also refuses a config that names an
    object outside Keras's packages that is not registered (``{"module": "os", ...}``): safe
    mode never imports it, so a crafted file's payload cannot run, but Keras says so with a
    traceback-sized ``TypeError``. With ``compile=False`` the model's ``compile_config`` is not
    read (nor by Keras), so what it names does not matter.

    Raises:
        ValueError: naming ``path`` and the problem: the file is empty, not a zip archive, a
            truncated or damaged one, has no ``config.json`` or no weights file, its weights are
            not HDF5, its ``config.json`` is not valid JSON (with line and column) or not a
            JSON object, or it names code outside Keras.
    """
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise _not_a_model(path, "the file is empty")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as file:
            zip_start = file.read(4) == b"PK\x03\x04"
        raise _not_a_model(
            path,
            "it is a truncated or damaged zip archive"
            if zip_start
            else "it is not a zip archive (a .keras file is a zip of config.json, metadata.json "
            "and model.weights.h5)",
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = _read_config(path, archive)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
        raise _not_a_model(path, f"its zip archive is damaged ({_one_line(error)})") from error
    if not compile:
        config = {**config, "compile_config": None}
    foreign = _foreign_objects(config)
    if foreign:
        raise _not_a_model(
            path,
            f"config.json names {', '.join(sorted(set(foreign)))}, which is neither part of Keras "
            "nor registered; safe mode never imports code that a model file names",
        )


def _read_config(path: str, archive: zipfile.ZipFile) -> dict:
    """The parsed ``config.json`` of ``archive``, once its members are known to be there."""
    names = archive.namelist()
    if "config.json" not in names:
        raise _not_a_model(path, "no config.json in the archive")
    weights = [name for name in WEIGHTS_FILES if name in names]
    if not weights:
        raise _not_a_model(path, f"no weights file in the archive ({' or '.join(WEIGHTS_FILES)})")
    if weights[0].endswith(".h5"):
        with archive.open(weights[0]) as file:
            if file.read(len(_HDF5_SIGNATURE)) != _HDF5_SIGNATURE:
                raise _not_a_model(path, f"{weights[0]} in the archive is not an HDF5 file")
    try:
        config = json.loads(archive.read("config.json"))
    except json.JSONDecodeError as error:
        raise _not_a_model(
            path,
            f"config.json is not valid JSON at line {error.lineno} column {error.colno} "
            f"({error.msg})",
        ) from error
    except UnicodeDecodeError as error:
        raise _not_a_model(path, f"config.json is not UTF-8 text ({error.reason})") from error
    if not isinstance(config, dict):
        raise _not_a_model(path, "config.json is not a Keras model config (a JSON object)")
    return config


def _foreign_objects(config) -> list[str]:
    """``module.name`` of each object in a model config that is outside `KERAS_PACKAGES` and not
    registered: what Keras would have to import to build it, and never does in safe mode."""
    found = []
    pending = [config]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        if not isinstance(item, dict):
            continue
        pending.extend(item.values())
        module = item.get("module")
        if "class_name" not in item or not isinstance(module, str):
            continue
        name = item["config"] if item["class_name"] == "function" else item["class_name"]
        if not _importable(module, [item.get("registered_name"), name]):
            found.append(f"{module}.{name}")
    return found


def _importable(module: str, names: list) -> bool:
    """Whether Keras resolves an object of ``module`` known by one of ``names`` without importing
    code from outside Keras: Keras's own packages, its built-in functions, or a registered name."""
    if module.split(".")[0] in KERAS_PACKAGES or module == "builtins":
        return True
    return any(
        isinstance(name, str) and keras.saving.get_registered_object(name) is not None
        for name in names
    )


def _not_a_model(path: str, problem: str) -> ValueError:
    return ValueError(f"{path!r} is not a loadable .keras model: {problem}")


def _one_line(error: Exception, limit: int = 400) -> str:
    """``error``'s message on one line, cut at ``limit`` characters (Keras's messages can hold a
    whole model config)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
