"""The run directory of `kcnn.training.train`: which files a kcnn run writes there, the lock a
training process holds on it, the checks that start, overwrite or resume a run, the settings
it was started with, and its last steps once ``run.json`` is written.

A run directory holds, while its run goes on: ``settings.json`` (the `run_settings` it started
with), ``training.lock``, ``history.csv``, ``last.keras`` / ``best.keras``, ``logs/``,
``backup/`` (`kcnn.training.callbacks.AtomicBackup`), and the ``.worker-N`` scratch folders of
multi-worker training. A finished run keeps ``run.json`` (the settings inside), the checkpoints,
``history.csv``, ``logs/`` and, from the CLI, ``curves.png``; a phase of `kcnn.transfer.train`
also keeps ``final.weights.h5``, the weights it hands to the next phase.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket

from kcnn.files import is_temporary_of, jsonable, remove_temporaries, write_json
from kcnn.training.callbacks import (
    BACKUP,
    BACKUP_EPOCH,
    BEST,
    HISTORY,
    LAST,
    LOGS,
    Restored,
    restore_backup,
    truncate_history,
)
from kcnn.training.distribute import cluster_spec

RUN_FILE = "run.json"
CURVES = "curves.png"
SETTINGS = "settings.json"
LOCK = "training.lock"
FINAL_WEIGHTS = "final.weights.h5"
RUN_CONTENTS = (BACKUP, LAST, BEST, HISTORY, LOGS, RUN_FILE, CURVES, SETTINGS, LOCK, FINAL_WEIGHTS)
SAVED_ATOMICALLY = (LAST, BEST, RUN_FILE, CURVES, SETTINGS, FINAL_WEIGHTS)
_WORKER = re.compile(r"\.worker-\d+")
_NOT_SETTINGS = (
    "data_dir",
    "out",
    "resume",
    "overwrite",
    "tensorboard",
    "callbacks",
    "verbose",
    "validation_data",
    "test_data",
)


class RunInUse(ValueError):
    """Another process is training in the run directory."""


def run_settings(arguments: dict) -> dict:
    """The settings of a run, as JSON values: ``train``'s arguments but those that do not
    change what it computes (``out``, ``verbose``, ``callbacks``...). A model or data given as
    an object is recorded by name (a model's ``name``, ``"arrays"``, ``"tf.data.Dataset"``),
    another object by its class name."""
    settings = {}
    for name, value in arguments.items():
        if name in _NOT_SETTINGS:
            continue
        if name == "model" and not isinstance(value, str):
            value = getattr(value, "name", None) or getattr(value, "__name__", type(value).__name__)
        elif name == "data" and not isinstance(value, (str, os.PathLike)):
            value = "tf.data.Dataset" if type(value).__name__.endswith("Dataset") else "arrays"
        elif not _plain(value):
            value = type(value).__name__
        settings[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return json.loads(json.dumps(jsonable(settings)))


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return (
        value is None
        or isinstance(value, (str, int, float, bool, os.PathLike))
        or hasattr(value, "tolist")
    )


def read_settings(run_dir) -> dict | None:
    """The settings a run in ``run_dir`` was started with (from ``settings.json`` while it goes
    on, from ``run.json`` once finished), or None."""
    for name, key in ((SETTINGS, None), (RUN_FILE, "settings")):
        path = os.path.join(os.fspath(run_dir), name)
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            continue
        data = data if key is None else data.get(key) if isinstance(data, dict) else None
        if isinstance(data, dict):
            return data
    return None


def settings_differences(recorded: dict, settings: dict) -> list[str]:
    """``"name: RECORDED (now NOW)"`` for each setting that differs between two runs' settings;
    settings only one of them knows are not compared (a kcnn version that added one)."""
    return [
        f"{name}: {recorded[name]!r} (now {settings[name]!r})"
        for name in settings
        if name in recorded and recorded[name] != settings[name]
    ]


class RunLock:
    """An exclusive lock on a folder, held while a process trains in it: ``flock`` on
    ``FOLDER/training.lock``, which holds the owner's pid and host. The operating system
    releases it when the process ends, even by SIGKILL, so a lock never outlives its process.
    (Where ``fcntl`` is missing, as on Windows, nothing is locked.)

    Raises:
        RunInUse: from `acquire`, when another process holds it (the message names it).
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK)
        self._fd = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise RunInUse(
                    f"{self.folder!r} is in use: {owner} is training in it; wait for it to end, "
                    "or choose another folder"
                ) from None
            try:  # the owner before may have deleted the file as we opened it: lock the new one
                current = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None


@contextlib.contextmanager
def locked(folder):
    """Hold the `RunLock` of ``folder`` (created when missing) for the block; None: no lock.
    For runs made of several `kcnn.training.train` calls, such as `kcnn.transfer.train`'s
    phases in ``folder/phase<i>``. In a multi-worker cluster (``TF_CONFIG``) every worker
    shares the folder, so nothing is locked here: each call of ``train`` locks its own."""
    if folder is None or cluster_spec().get("cluster"):
        yield
        return
    os.makedirs(folder, exist_ok=True)
    lock = RunLock(folder)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


class RunDirectory:
    """The run directory of one `kcnn.training.train` call, as a context: entering it checks
    the folder, locks it, clears what ``overwrite`` replaces and kcnn's temporary files, and
    checks the settings of a resumed run; `start` restores the run and records its settings,
    `finish` writes ``run.json``; leaving the context releases the lock (and removes the folder
    it made, when a failed start left it empty).

    Args:
        out: the run directory, or None (then nothing happens).
        resume: continue the run there; ValueError when there is none, or it has finished, or
            it was started with other settings (the message lists them).
        overwrite: delete the run there first; ValueError when the folder holds anything but
            a kcnn run's files (the message names them), so nothing else is ever deleted.
        settings: the `run_settings` of this call.
        worker: None for the process that writes the run (single process, or the chief of
            multi-worker training); a worker's index for the others, which keep a scratch
            copy in ``out/.worker-N`` instead (deleted at the end).
    """

    def __init__(self, out, *, resume=False, overwrite=False, settings=None, worker=None):
        if out is None and (resume or overwrite):
            raise ValueError("resume and overwrite need the run directory (out=)")
        if resume and overwrite:
            raise ValueError("resume and overwrite exclude each other")
        self.path = None if out is None else os.fspath(out)
        if self.path is not None and os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"out={self.path!r} is a file, not a folder")
        self.resume, self.overwrite = resume, overwrite
        self.settings = settings or {}
        self.worker = worker
        self.callbacks_dir = self.path
        if self.path is not None and worker is not None:
            self.callbacks_dir = os.path.join(self.path, f".worker-{worker}")
        self._lock = None
        self._created = []

    def __enter__(self):
        if self.path is None:
            return self
        if self.worker is not None and not self.resume:
            shutil.rmtree(self.callbacks_dir, ignore_errors=True)
        if self.resume and self.worker is None:
            self._check_resumable()
        self._created = [
            folder for folder in (self.path, self.callbacks_dir) if not os.path.exists(folder)
        ]
        os.makedirs(self.callbacks_dir, exist_ok=True)
        self._lock = RunLock(self.callbacks_dir)
        self._lock.acquire()
        try:
            if self.worker is None:
                self._prepare()
            remove_temporaries(self.callbacks_dir, SAVED_ATOMICALLY)
        except BaseException:
            self._lock.release()
            self._remove_if_empty()
            raise
        return self

    def __exit__(self, exc_type, exc, traceback):
        if self._lock is not None:
            self._lock.release()
        if exc_type is not None:
            self._remove_if_empty()
        return False

    def _remove_if_empty(self):
        """Remove the folders this run created, when a failed start left them empty: a bad
        argument found after the folder was made (the data, the optimizer) leaves nothing."""
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    def _check_resumable(self):
        if not resumable(self.path):
            raise ValueError(f"nothing to resume in {self.path!r}: it holds no kcnn run")

    def _prepare(self):
        present = [name for name in RUN_CONTENTS if os.path.exists(os.path.join(self.path, name))]
        present = [name for name in present if name != LOCK]
        finished = RUN_FILE in present
        if self.overwrite:
            self._clear()
        elif self.resume:
            if finished:
                raise ValueError(
                    f"the run in {self.path!r} has finished ({RUN_FILE}); nothing to resume"
                )
            recorded = read_settings(self.path)
            if recorded is not None:
                self._check_settings(recorded)
        elif present:
            raise ValueError(
                f"{self.path!r} already holds a training run: continue it with resume=True (kcnn "
                "train --resume), start again with overwrite=True (--overwrite), or choose another "
                "folder"
            )

    def _clear(self):
        """Delete the run in the folder, after checking that it holds nothing else."""
        entries = sorted(os.listdir(self.path))
        ours = [name for name in entries if _is_run_file(name)]
        foreign = [name for name in entries if name not in ours]
        run = holds_run(self.path)
        if ours and not run:
            foreign = entries
        foreign = [name for name in foreign if name != LOCK]
        if foreign:
            listed = ", ".join(foreign[:10]) + (
                f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
            )
            raise ValueError(
                f"overwrite deletes only a kcnn run's files, and {self.path!r} holds "
                f"{'others' if run else 'no kcnn run'}: {listed}; move them or choose "
                "another folder"
            )
        for name in ours:
            path = os.path.join(self.path, name)
            if name == LOCK:
                continue
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    def _check_settings(self, recorded: dict):
        model = self.settings.get("model")
        if "model" in recorded and recorded["model"] != model:
            raise ValueError(
                f"the run in {self.path!r} was made with model {recorded['model']!r}, not "
                f"{model!r}: resume it with that model, or start a new run elsewhere"
            )
        differences = settings_differences(recorded, self.settings)
        if differences:
            raise ValueError(
                f"the run in {self.path!r} was started with other settings, which resume keeps: "
                f"{'; '.join(differences)}. Resume with the run's settings, or start a new run "
                "(overwrite, or another folder)"
            )

    def start(self, model, steps_per_epoch=None) -> Restored:
        """The run begins (its data and model are ready): restore its last completed epoch in
        ``model`` (compiled), from the backup or ``last.keras``
        (`kcnn.training.callbacks.restore_backup`), drop from ``history.csv`` the rows of the
        epochs after it, and record the settings (a start that failed before leaves none)."""
        if self.callbacks_dir is None:
            return Restored()
        restored = restore_backup(
            model,
            os.path.join(self.callbacks_dir, BACKUP),
            os.path.join(self.callbacks_dir, LAST),
            steps_per_epoch,
        )
        truncate_history(os.path.join(self.callbacks_dir, HISTORY), restored.epoch)
        if self.worker is None and (not self.resume or read_settings(self.path) is None):
            write_json(os.path.join(self.path, SETTINGS), self.settings)
        return restored

    def finish(self, result: dict) -> None:
        """The run's end: ``run.json`` (``result`` and the settings), then the backup and the
        settings file go; a worker deletes its scratch folder."""
        if self.path is None:
            return
        if self.worker is not None:
            shutil.rmtree(self.callbacks_dir, ignore_errors=True)
            return
        write_json(os.path.join(self.path, RUN_FILE), {**result, "settings": self.settings})
        shutil.rmtree(os.path.join(self.path, BACKUP), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.path, SETTINGS))


def holds_run(folder) -> bool:
    """Whether ``folder`` holds a kcnn run: its ``settings.json``, a ``run.json`` that
    `kcnn.training.train` wrote, or a backup with its epoch file (a folder of the user's that
    is merely called ``backup``, or a ``run.json`` of their own, is no run)."""
    folder = os.fspath(folder)
    if os.path.isfile(os.path.join(folder, SETTINGS)):
        return True
    if os.path.isfile(os.path.join(folder, BACKUP, BACKUP_EPOCH)):
        return True
    try:
        with open(os.path.join(folder, RUN_FILE), encoding="utf-8") as file:
            run = json.load(file)
    except (OSError, ValueError):
        return False
    return isinstance(run, dict) and "model_name" in run and "epochs" in run


def resumable(folder) -> bool:
    """Whether ``resume`` has something to continue in ``folder``: a kcnn run (`holds_run`) or
    at least its ``last.keras``."""
    return holds_run(folder) or os.path.exists(os.path.join(os.fspath(folder), LAST))


def _is_run_file(name: str) -> bool:
    """Whether a kcnn run writes files or folders called ``name`` (its temporary files too)."""
    if name in RUN_CONTENTS or _WORKER.fullmatch(name):
        return True
    return any(is_temporary_of(name, saved) for saved in SAVED_ATOMICALLY)
