"""Atomic saves: a file is either its previous complete version or the new complete one.

Every save in kcnn (models, weights, checkpoints, figures, reports, JSON and CSV tables) goes
through `atomic_path`: the content is written to a temporary file in the destination's folder,
then renamed over it with ``os.replace`` (atomic on POSIX and Windows). A crash, a full disk or a
read-only folder therefore never leaves a half-written file, and never destroys the previous one.
The temporary file is flushed to the disk (``fsync``) before the rename and the folder after it:
without that, a power cut soon after a save can leave an empty file under the new name.
The file gets the permissions a plain ``open(path, "w")`` would give it: the previous file's mode,
or for a new file ``0o666`` less the process's umask.

A process killed while writing leaves its temporary file (``.NAME.XXXXXXXX.EXT``) behind:
`remove_temporaries` deletes those of given files, for a folder that no other process writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
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
        suffix = _suffix(os.path.basename(path))
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
        os.chmod(temporary, _mode_of_new_version(path))
        _sync(temporary)
        os.replace(temporary, path)
        _sync(folder)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _sync(path: str) -> None:
    """Flush a file's content, or a folder's entries, to the disk where the system allows it
    (Windows cannot open a folder, and some file systems cannot sync one)."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if os.path.isdir(path) else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _suffix(name: str) -> str:
    """The extension of a file name, ``.weights.h5`` counted as one."""
    return ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]


def _mode_of_new_version(path) -> int:
    """The permissions ``open(path, "w")`` would leave: those of the file already at ``path``,
    else ``0o666`` less the umask (``tempfile.mkstemp`` makes its files ``0o600``)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read from ``/proc`` where it can be (setting it to read it back is
    not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_temporary_of(entry: str, name: str) -> bool:
    """Whether the file name ``entry`` is a temporary file `atomic_path` makes while it writes
    ``name`` (``.last.keras.k3x_9q2a.keras`` for ``last.keras``)."""
    pattern = rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}{re.escape(_suffix(name))}"
    return re.fullmatch(pattern, entry) is not None


def remove_temporaries(folder, names) -> list[str]:
    """Delete the temporary files that `atomic_path` left in ``folder`` for the files ``names``
    (a process killed while it wrote them); returns their paths.

    Only names of exactly that form go (``.last.keras.k3x_9q2a.keras`` for ``last.keras``), so
    nothing else in the folder is touched. Call it only while no other process writes there.
    """
    folder = os.fspath(folder)
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for entry in sorted(entries):
        path = os.path.join(folder, entry)
        if any(is_temporary_of(entry, name) for name in names) and os.path.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


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
