"""Atomic saves: a file is either its previous complete version or the new complete one.

Every save in kcnn (models, weights, checkpoints, figures, reports, JSON and CSV tables) goes
through `atomic_path`: the content is written to a temporary file in the destination's folder,
then renamed over it with ``os.replace`` (atomic on POSIX and Windows). A crash, a full disk or a
read-only folder therefore never leaves a half-written file, and never destroys the previous one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None):
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    Args:
        path: the destination; its folder is created when missing.
        suffix: the temporary file's extension (default: the destination's), for writers that
            choose the format from it (Keras wants ``.keras`` / ``.weights.h5``, matplotlib
            ``.png``...).

    Raises:
        OSError: when the folder cannot be written (the message names ``path``); ``path`` is
            left as it was.

    Example:
        >>> with atomic_path("model.keras") as temporary:
        ...     model.save(temporary)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        name = os.path.basename(path)
        suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=folder
        )
    except OSError as error:
        raise OSError(
            error.errno, f"could not write {path!r} ({error.strerror}); the previous file is intact"
        ) from error
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text(path, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
    return os.fspath(path)


def jsonable(value):
    """``value`` with NumPy scalars and arrays as Python numbers and lists, tuples as lists,
    and NaN or infinite floats as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, data) -> str:
    """Write ``data`` as indented JSON to ``path`` atomically (see `jsonable`); returns ``path``."""
    return write_text(path, json.dumps(jsonable(data), indent=2) + "\n")


def save_model(model, path) -> str:
    """``model.save(path)`` (a ``.keras`` file), atomically; returns ``path``."""
    with atomic_path(path, suffix=".keras") as temporary:
        model.save(temporary)
    return os.fspath(path)


def save_weights(model, path) -> str:
    """``model.save_weights(path)`` (a ``.weights.h5`` file), atomically; returns ``path``."""
    with atomic_path(path, suffix=".weights.h5") as temporary:
        model.save_weights(temporary)
    return os.fspath(path)
