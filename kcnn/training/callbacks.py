"""The callbacks of a training run: atomic ``.keras`` checkpoints, stopping on a NaN loss,
timing the training phase, and `run_callbacks`, which assembles them with Keras's own
(``BackupAndRestore``, ``CSVLogger``, ``TensorBoard``, ``EarlyStopping``, ``ReduceLROnPlateau``).

Keras's ``ModelCheckpoint`` writes the file in place, so a run killed during a save leaves a
truncated model; `AtomicCheckpoint` exists for that reason only.
"""

from __future__ import annotations

import math
import os
import time

import keras

from kcnn import checks
from kcnn.files import save_model

BEST = "best.keras"
LAST = "last.keras"
HISTORY = "history.csv"
LOGS = "logs"
BACKUP = "backup"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; training was stopped."""


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model to a ``.keras`` file at the end of each epoch, atomically
    (`kcnn.files.save_model`).

    With ``monitor``, save only when that metric improves on the best value seen (``best``
    carries it over from an interrupted run). Epochs whose loss is not finite are never saved.

    Args:
        path: the ``.keras`` file.
        monitor: a metric name from the epoch logs (e.g. ``"val_accuracy"``), or None to save
            every epoch.
        mode: ``"max"`` or ``"min"``: whether a larger or a smaller ``monitor`` is better.
        best: the best value of ``monitor`` so far.
    """

    def __init__(self, path, monitor: str | None = None, mode: str = "max", best=None):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.saved_epoch = None

    def _improved(self, value) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        if self.monitor is not None:
            value = logs.get(self.monitor)
            if value is None:
                raise ValueError(
                    f"checkpoint monitor {self.monitor!r} is not among the metrics "
                    f"{sorted(logs)}"
                )
            value = float(value)
            if not self._improved(value):
                return
            self.best = value
        save_model(self.model, self.path)
        self.saved_epoch = epoch


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop training with `TrainingDiverged` as soon as a batch's loss is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN``, which lets the epoch end (so checkpoint and backup
    callbacks then save the NaN weights), this raises from the batch: nothing after it is saved,
    and the last good checkpoint and backup stay as they were.

    Args:
        checkpoint: the path of the last good checkpoint, named in the error message.
    """

    def __init__(self, checkpoint=None):
        super().__init__()
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.checkpoint and os.path.exists(self.checkpoint):
            kept = f"the last good checkpoint is {self.checkpoint}"
        else:
            kept = "no checkpoint was saved before it"
        raise TrainingDiverged(
            f"the loss became {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}: "
            f"training stopped ({kept}). Lower the learning rate, or use float32 precision."
        )


class TrainingClock(keras.callbacks.Callback):
    """Seconds spent in the training phase of each epoch, validation excluded.

    Adds them to the epoch logs as ``train_seconds`` (so the CSV log and the history have them)
    and sums them in ``total``.
    """

    def __init__(self):
        super().__init__()
        self.total = 0.0
        self.epochs = 0
        self._start = None
        self._elapsed = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._elapsed = None

    def on_test_begin(self, logs=None):
        if self._start is not None and self._elapsed is None:
            self._elapsed = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        if self._elapsed is None:
            self._elapsed = time.perf_counter() - self._start
        self.total += self._elapsed
        self.epochs += 1
        if logs is not None:
            logs["train_seconds"] = self._elapsed
        self._start = None


def best_so_far(history_csv, monitor: str, mode: str = "max"):
    """The best value of ``monitor`` in a run's CSV log, or None (no log, or no such column)."""
    values = [row[monitor] for row in read_history(history_csv) if monitor in row]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def read_history(history_csv) -> list[dict]:
    """The rows of a ``CSVLogger`` file as dicts of floats, one per epoch, without the cells it
    wrote as ``NA``. The last row of an epoch logged twice (by a run interrupted between the log
    and the backup, then resumed) wins."""
    import csv

    path = os.fspath(history_csv)
    if not os.path.exists(path):
        return []
    rows = {}
    with open(path, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            values = {key: _number(value) for key, value in row.items()}
            values = {key: value for key, value in values.items() if value is not None}
            if "epoch" in values:
                rows[int(values["epoch"])] = values
    return [rows[epoch] for epoch in sorted(rows)]


def _number(text):
    """A CSV cell as a float; None for an empty cell or Keras's ``NA`` (a metric not logged)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def run_callbacks(
    run_dir=None,
    *,
    validation: bool = True,
    early_stopping: int | None = None,
    plateau: bool = False,
    tensorboard: bool = True,
):
    """The callbacks of a kcnn training run, in the order they must run.

    With a ``run_dir``, the run directory holds ``best.keras`` (the best ``val_accuracy``; only
    with validation data) and ``last.keras`` (atomic checkpoints), ``history.csv``, TensorBoard
    logs in ``logs/`` and, while the run is going, the ``BackupAndRestore`` state in ``backup/``
    that lets a killed run resume at the epoch it reached, optimizer state included.

    Args:
        run_dir: the run directory, or None for a run that writes nothing.
        validation: whether ``fit`` gets validation data (the best checkpoint, early stopping
            and the plateau schedule watch the validation metrics, else the training loss).
        early_stopping: stop after this many epochs without a lower monitored loss and restore
            the best weights (None: never stop early).
        plateau: add ``ReduceLROnPlateau`` (halve the learning rate after 2 epochs without a
            lower monitored loss).
        tensorboard: write TensorBoard logs.

    In multi-worker training every worker must run the same callbacks (saving a model takes
    part in collective operations): give the workers other than the chief a scratch folder
    of their own (`kcnn.training.train` uses ``RUN/.worker-N``, deleted at the end).

    Returns:
        ``(callbacks, clock)``: the list to pass to ``fit`` and its `TrainingClock`.
    """
    loss_monitor = "val_loss" if validation else "loss"
    clock = TrainingClock()
    callbacks = [clock]
    last = None
    if run_dir is not None:
        run_dir = os.fspath(run_dir)
        os.makedirs(run_dir, exist_ok=True)
        last = os.path.join(run_dir, LAST)
    callbacks.append(StopOnNonFiniteLoss(last))
    if early_stopping is not None:
        patience = checks.positive_int("early_stopping", early_stopping)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=loss_monitor, patience=patience, restore_best_weights=True
            )
        )
    if plateau:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=loss_monitor, factor=0.5, patience=2, min_lr=1e-6)
        )
    if run_dir is None:
        return callbacks, clock
    history = os.path.join(run_dir, HISTORY)
    if validation:
        best = best_so_far(history, "val_accuracy")
        callbacks.append(AtomicCheckpoint(os.path.join(run_dir, BEST), "val_accuracy", "max", best))
    callbacks.append(AtomicCheckpoint(last))
    callbacks.append(keras.callbacks.CSVLogger(history, append=True))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, LOGS)))
    callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(run_dir, BACKUP)))
    return callbacks, clock
