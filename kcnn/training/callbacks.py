"""The callbacks of a training run: atomic ``.keras`` checkpoints, stopping on a NaN loss,
timing the training phase, and `run_callbacks`, which assembles them with Keras's own
(``BackupAndRestore``, ``CSVLogger``, ``TensorBoard``, ``EarlyStopping``, ``ReduceLROnPlateau``).

Keras's ``ModelCheckpoint`` writes the file in place, so a run killed during a save leaves a
truncated model; `AtomicCheckpoint` exists for that reason only. Keras's ``BackupAndRestore``
rewrites its weights file in place too, then its epoch number in a second file, so a kill during
the first write leaves a backup that cannot be read, and one between the two a backup whose
weights and epoch disagree: `AtomicBackup` writes each epoch's weights to a new file, then names
it in the epoch file (atomically: that rename is the moment the backup changes), and
`restore_backup` falls back on ``last.keras`` when a backup cannot be read. Keras's
``EarlyStopping`` starts its count again at every ``fit``: `ResumableEarlyStopping` keeps its
count and best weights in the backup, so a resumed run stops where an uninterrupted one would;
`ResumablePlateau` does the same for ``ReduceLROnPlateau``'s count, so a resumed run lowers its
learning rate where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time

import keras

from kcnn import checks
from kcnn.files import save_model, save_weights, write_json, write_text

BEST = "best.keras"
LAST = "last.keras"
HISTORY = "history.csv"
LOGS = "logs"
BACKUP = "backup"
BACKUP_EPOCH = "training_metadata.json"  # Keras's name for the file that holds the epoch


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
                    f"checkpoint monitor {self.monitor!r} is not among the metrics {sorted(logs)}"
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


@dataclasses.dataclass
class Restored:
    """The training state `restore_backup` put back in a model.

    Attributes:
        epoch: the epochs completed: training continues at this (0-based) epoch.
        source: ``"backup"``, ``"checkpoint"`` (``last.keras``, the backup being unusable),
            or None (nothing to restore: the run starts at its first epoch).
        finished: whether the run's ``fit`` had ended (the weights are then the final ones,
            best weights of early stopping included): nothing is left to train.
        stopped_early: whether early stopping ended it.
        message: one line that says what was restored, and from where.
        early_stopping: the `ResumableEarlyStopping` state saved with the backup (None: the
            run had no early stopping, or the backup predates it).
        best_weights: the weights of that state's best epoch (``model.get_weights()`` form).
        plateau: the `ResumablePlateau` state saved with the backup (None: the run did not
            lower its learning rate on plateaus, or the backup predates it).
    """

    epoch: int = 0
    source: str | None = None
    finished: bool = False
    stopped_early: bool = False
    message: str = ""
    early_stopping: dict | None = None
    best_weights: list | None = None
    plateau: dict | None = None


class _KeepsRestoredState:
    """For a Keras callback that ``fit`` resets at its start: once `resume` (of the class this
    is mixed into) has set its state, the next ``fit`` starts from that state, and the ``fit``
    after it from a fresh one."""

    _resumed = False

    def on_train_begin(self, logs=None):
        if not self._resumed:
            super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self._resumed = False


class ResumableEarlyStopping(_KeepsRestoredState, keras.callbacks.EarlyStopping):
    """Keras's ``EarlyStopping`` with ``restore_best_weights=True``, whose count of epochs
    without improvement, best value and best weights survive a resume.

    Keras's resets them at every ``fit``, so a run killed and resumed would forget its best
    epoch: it could train ``patience`` epochs more than the same run uninterrupted and end on
    weights worse than the best it had seen. `AtomicBackup` saves `state` with each epoch's
    backup (the best epoch's weights file is kept beside it), and `restore_backup` reads it
    back for `resume`.

    Args:
        monitor: the logged quantity watched (``"val_loss"``, or ``"loss"`` without
            validation data); lower is better for a loss, higher for an accuracy.
        patience: epochs without improvement before training stops.
    """

    def __init__(self, monitor: str, patience: int):
        super().__init__(monitor=monitor, patience=patience, restore_best_weights=True)

    def state(self) -> dict | None:
        """The count, best value and best epoch (0-based) after the last epoch, as JSON; None
        before an epoch logged the monitored quantity."""
        if self.best is None or self.best_weights is None:
            return None
        return {
            "wait": int(self.wait),
            "best": float(self.best),
            "best_epoch": int(self.best_epoch),
        }

    def resume(self, state: dict, best_weights: list) -> None:
        """Continue from ``state`` (saved by `state`) and the weights of its best epoch: the
        next ``fit`` starts with them instead of a fresh count."""
        self.wait = state["wait"]
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = best_weights
        self.stopped_epoch = 0
        self._resumed = True


class ResumablePlateau(_KeepsRestoredState, keras.callbacks.ReduceLROnPlateau):
    """Keras's ``ReduceLROnPlateau`` (halve the learning rate after 2 epochs without a lower
    ``monitor``, down to 1e-6) whose count of epochs without improvement, best value and
    cooldown survive a resume.

    Keras's resets them at every ``fit``, so a run killed and resumed would lower its learning
    rate at other epochs than the same run uninterrupted. `AtomicBackup` saves `state` with
    each epoch's backup, and `restore_backup` reads it back for `resume`.
    """

    def __init__(self, monitor: str):
        super().__init__(monitor=monitor, factor=0.5, patience=2, min_lr=1e-6)

    def state(self) -> dict:
        """The count, best value and cooldown after the last epoch, as JSON."""
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "cooldown_counter": self.cooldown_counter}

    def resume(self, state: dict) -> None:
        """Continue from ``state`` (saved by `state`): the next ``fit`` starts with it instead
        of a fresh count."""
        self.wait = state["wait"]
        self.best = state["best"]
        self.cooldown_counter = state["cooldown_counter"]
        self._resumed = True


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` (``backup_dir`` then holds the state of the last completed
    epoch, optimizer included), made safe against a kill at any instant, with a final state.

    Each epoch's weights go to a new file, ``epoch-N.weights.h5``, written atomically; then
    ``training_metadata.json`` (written atomically) names it with its epoch; then the older
    weights are deleted. The backup therefore always pairs complete weights with their epoch.
    When ``fit`` ends, the final weights (after early stopping restored the best ones) are saved
    the same way with ``"finished": true``, and the backup is kept: the caller deletes it once
    its own end-of-run work is saved (`kcnn.training.train` after ``run.json``), so a run killed
    in between is finished on resume instead of trained again.

    At the start of ``fit`` it restores the run with `restore_backup`, unless ``restored`` says
    it was done before (`kcnn.training.train` restores before building the callbacks).

    With a `ResumableEarlyStopping`, each epoch's backup also holds its `state`, and the
    weights file of its best epoch is kept (it is that epoch's backup) until a better one comes.

    Args:
        backup_dir: the folder of the backup (kcnn's own: nothing else may write there).
        checkpoint: ``last.keras``, the fall-back when the backup cannot be read.
        steps_per_epoch: optimizer steps per epoch, which give the checkpoint's epoch.
        restored: the `Restored` state of a restore already done, or None.
        early_stopping: the run's `ResumableEarlyStopping`, placed before this callback (its
            epoch's state must be final when the backup is written), or None.
        plateau: the run's `ResumablePlateau`, placed before this callback too, or None.
    """

    def __init__(
        self,
        backup_dir,
        checkpoint=None,
        steps_per_epoch=None,
        restored=None,
        early_stopping=None,
        plateau=None,
    ):
        super().__init__(os.fspath(backup_dir), delete_checkpoint=False)
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        self.steps_per_epoch = steps_per_epoch
        self.restored = restored
        self.early_stopping = early_stopping
        self.plateau = plateau
        if restored is not None:
            self._current_epoch = restored.epoch

    def on_train_begin(self, logs=None):
        if self.restored is None:
            self.restored = restore_backup(
                self.model, self.backup_dir, self.checkpoint, self.steps_per_epoch
            )
            self.model._initial_epoch = self.restored.epoch
            self._current_epoch = self.restored.epoch
            resume_callbacks(self.restored, self.early_stopping, self.plateau)

    def _save_model(self):
        weights = epoch_weights(self._current_epoch)
        metadata, keep = {"batch": self._last_batch_seen}, [weights]
        state = None if self.early_stopping is None else self.early_stopping.state()
        if state is not None:
            state["weights"] = epoch_weights(state["best_epoch"] + 1)
            metadata["early_stopping"] = state
            keep.append(state["weights"])
        if self.plateau is not None:
            metadata["plateau"] = self.plateau.state()
        self._save(weights, metadata, keep)

    def on_train_end(self, logs=None):
        metadata = {"finished": True, "stopped_early": bool(self.model.stop_training)}
        self._save("final.weights.h5", metadata, ["final.weights.h5"])

    def _save(self, weights: str, metadata: dict, keep: list):
        save_weights(self.model, os.path.join(self.backup_dir, weights))
        write_json(
            os.path.join(self.backup_dir, BACKUP_EPOCH),
            {"epoch": self._current_epoch, "weights": weights, **metadata},
        )
        remove_stale_backups(self.backup_dir, keep=keep)


def epoch_weights(epoch: int) -> str:
    """The name of the backup's weights file after ``epoch`` completed epochs."""
    return f"epoch-{epoch}.weights.h5"


def resume_callbacks(restored: Restored, early_stopping=None, plateau=None) -> None:
    """Give ``early_stopping`` (a `ResumableEarlyStopping`) and ``plateau`` (a
    `ResumablePlateau`), where given, the states ``restored`` holds for them, if it does."""
    if early_stopping is not None and restored.early_stopping is not None:
        early_stopping.resume(restored.early_stopping, restored.best_weights)
    if plateau is not None and restored.plateau is not None:
        plateau.resume(restored.plateau)


_BACKUP_FILE = re.compile(
    r"\.?(epoch-\d+|final|latest)\.weights\.h5(\.bkp|\.[a-z0-9_]{8}\.weights\.h5)?"
    r"|\.?training_metadata\.json(\.bkp|\.[a-z0-9_]{8}\.json)?"
)


def remove_stale_backups(backup_dir, keep=()) -> None:
    """Delete the weights files of ``backup_dir`` other than those named in ``keep`` and the
    temporary files of a killed save: what `AtomicBackup` (or Keras's ``BackupAndRestore``)
    wrote, nothing else. Call it only while no other process writes the backup."""
    backup_dir = os.fspath(backup_dir)
    if not os.path.isdir(backup_dir):
        return
    for name in os.listdir(backup_dir):
        path = os.path.join(backup_dir, name)
        if name in keep or name == BACKUP_EPOCH or not _BACKUP_FILE.fullmatch(name):
            continue
        if os.path.isfile(path):
            os.remove(path)


def restore_backup(model, backup_dir, checkpoint=None, steps_per_epoch=None) -> Restored:
    """Put the training state of a run's last completed epoch back in ``model`` (compiled).

    From the backup (`AtomicBackup`, or Keras's ``BackupAndRestore``) when it can be read;
    otherwise from ``checkpoint`` (``last.keras``: weights and optimizer state), whose epoch is
    its optimizer's step count divided by ``steps_per_epoch``; otherwise nothing (epoch 0).

    Raises:
        ValueError: when the backup or the checkpoint is there but neither fits ``model`` or
            can be read; one line with each problem.
    """
    backup_dir = os.fspath(backup_dir)
    metadata_path = os.path.join(backup_dir, BACKUP_EPOCH)
    problems = []
    if os.path.exists(metadata_path):
        try:
            with open(metadata_path, encoding="utf-8") as file:
                metadata = json.load(file)
            weights = os.path.join(backup_dir, metadata.get("weights", "latest.weights.h5"))
            early_stopping = metadata.get("early_stopping")
            best_weights = None
            if early_stopping is not None:
                _load_state(model, os.path.join(backup_dir, early_stopping["weights"]))
                best_weights = model.get_weights()
            _load_state(model, weights)
            epoch = int(metadata["epoch"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{backup_dir}: {_first_line(error)}")
        else:
            kept = [os.path.basename(weights)]
            if early_stopping is not None:
                kept.append(early_stopping["weights"])
            remove_stale_backups(backup_dir, keep=kept)
            finished = bool(metadata.get("finished"))
            said = (
                f"epoch {epoch} had ended training: finishing the run without training again"
                if finished
                else f"continuing at epoch {epoch + 1}"
            )
            if early_stopping is not None and not finished:
                said += (
                    f" (early stopping: best epoch {early_stopping['best_epoch'] + 1}, "
                    f"{early_stopping['wait']} epoch(s) without improvement since)"
                )
            return Restored(
                epoch,
                "backup",
                finished,
                bool(metadata.get("stopped_early")),
                f"restored the backup of epoch {epoch} ({backup_dir}); {said}",
                early_stopping,
                best_weights,
                metadata.get("plateau"),
            )
    if checkpoint is not None and os.path.exists(checkpoint):
        why = f" ({problems[0]})" if problems else ""
        if not steps_per_epoch:
            raise ValueError(
                f"cannot resume from {checkpoint}: the backup is unusable{why} and the number of "
                "steps per epoch, which gives the checkpoint's epoch, is unknown"
            )
        try:
            _load_state(model, checkpoint)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{checkpoint}: {_first_line(error)}")
        else:
            epoch = int(model.optimizer.iterations) // steps_per_epoch
            return Restored(
                epoch,
                "checkpoint",
                message=(
                    f"restored {checkpoint} (epoch {epoch}), the backup being "
                    f"unusable{why or ' (none)'}; "
                    f"continuing at epoch {epoch + 1}"
                ),
            )
    if problems:
        raise ValueError("cannot resume: " + "; ".join(problems))
    return Restored(message="no epoch had completed: starting at epoch 1")


def _load_state(model, path):
    """Load weights and optimizer state (a ``.weights.h5`` or ``.keras`` file) into ``model``."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _first_line(error) -> str:
    """An error's message cut to its first line (Keras's mismatch errors list every value)."""
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def truncate_history(history_csv, epochs: int) -> None:
    """Keep in a ``CSVLogger`` file only its complete rows of the first ``epochs`` epochs, each
    once: a run killed after logging an epoch but before its backup logs it again on resume.
    Rewritten atomically, and only when something goes."""
    import csv
    import io

    path = os.fspath(history_csv)
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    header, by_epoch = rows[0], {}
    for row in rows[1:]:
        epoch = _number(row[0]) if len(row) == len(header) and header[0] == "epoch" else None
        if epoch is not None and epoch < epochs:
            by_epoch[epoch] = row  # an epoch logged twice: the later row is the run's
    kept = [header] + [by_epoch[epoch] for epoch in sorted(by_epoch)]
    if kept == rows:
        return
    text = io.StringIO()
    csv.writer(text).writerows(kept)  # CSVLogger's dialect (excel)
    write_text(path, text.getvalue())


def best_so_far(history_csv, monitor: str, mode: str = "max"):
    """The best value of ``monitor`` in a run's CSV log, or None (no log, or no such column)."""
    values = [row[monitor] for row in read_history(history_csv) if monitor in row]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def read_history(history_csv) -> list[dict]:
    """The rows of a ``CSVLogger`` file as dicts of floats, one per epoch, without the cells it
    wrote as ``NA``. The last row of an epoch logged twice wins (`truncate_history` keeps each
    epoch once in the runs `kcnn.training.train` resumes; older files may have twice)."""
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
    steps_per_epoch: int | None = None,
    restored: Restored | None = None,
):
    """The callbacks of a kcnn training run, in the order they must run.

    With a ``run_dir``, the run directory holds ``best.keras`` (the best ``val_accuracy``; only
    with validation data) and ``last.keras`` (atomic checkpoints), ``history.csv``, TensorBoard
    logs in ``logs/`` and, until the caller deletes it at the end of the run, the `AtomicBackup`
    state in ``backup/`` that lets a killed run resume at the epoch it reached, optimizer state
    included.

    Args:
        run_dir: the run directory, or None for a run that writes nothing.
        validation: whether ``fit`` gets validation data (the best checkpoint, early stopping
            and the plateau schedule watch the validation metrics, else the training loss).
        early_stopping: stop after this many epochs without a lower monitored loss and restore
            the best weights (None: never stop early).
        plateau: add `ResumablePlateau` (halve the learning rate after 2 epochs without a
            lower monitored loss).
        tensorboard: write TensorBoard logs.
        steps_per_epoch: optimizer steps per epoch, for resuming from ``last.keras`` when the
            backup cannot be read (`restore_backup`).
        restored: the state `restore_backup` already restored, or None to restore it when
            ``fit`` starts.

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
    stopper = None
    if early_stopping is not None:
        stopper = ResumableEarlyStopping(
            loss_monitor, checks.positive_int("early_stopping", early_stopping)
        )
        callbacks.append(stopper)
    reducer = None
    if plateau:
        reducer = ResumablePlateau(loss_monitor)
        callbacks.append(reducer)
    if restored is not None:
        resume_callbacks(restored, stopper, reducer)
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
    callbacks.append(
        AtomicBackup(
            os.path.join(run_dir, BACKUP), last, steps_per_epoch, restored, stopper, reducer
        )
    )
    return callbacks, clock
