"""The best checkpoint's monitor (atomic saves are tested in tests/test_files.py),
the NaN stop that saves nothing after the NaN, the clock, the CSV history reader, and early
stopping that keeps its state across a resume."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcnn
from kcnn.training.callbacks import (
    AtomicBackup,
    AtomicCheckpoint,
    ResumableEarlyStopping,
    ResumablePlateau,
    StopOnNonFiniteLoss,
    TrainingClock,
    TrainingDiverged,
    best_so_far,
    read_history,
    restore_backup,
    run_callbacks,
    truncate_history,
)


def _tiny_model():
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _predict(model, images):
    return keras.ops.convert_to_numpy(model(images))


def test_best_checkpoint_saves_only_improvements_and_never_nan(tmp_path):
    model = _tiny_model()
    checkpoint = AtomicCheckpoint(tmp_path / "best.keras", "val_accuracy", "max", best=0.5)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.4})
    assert not (tmp_path / "best.keras").exists()
    checkpoint.on_epoch_end(1, {"loss": 1.0, "val_accuracy": 0.6})
    assert checkpoint.saved_epoch == 1 and checkpoint.best == 0.6
    checkpoint.on_epoch_end(2, {"loss": float("nan"), "val_accuracy": 0.9})
    assert checkpoint.saved_epoch == 1 and checkpoint.best == 0.6
    with pytest.raises(ValueError, match="'val_top5' is not among the metrics"):
        AtomicCheckpoint(tmp_path / "x.keras", "val_top5").on_epoch_end(0, {"loss": 1.0})


class Explode(keras.callbacks.Callback):
    """Make the loss infinite from the second epoch on, as a too-high learning rate would."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            kernel = self.model.get_layer("logits").kernel
            kernel.assign(np.full(kernel.shape, np.inf, "float32"))


def test_nan_loss_stops_at_the_batch_and_keeps_last_good_checkpoint(tmp_path):
    images = np.random.default_rng(0).random((32, 8, 8, 1), dtype="float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(32) % 3)).batch(8)
    model = _tiny_model()
    callbacks, _ = run_callbacks(tmp_path, validation=False, tensorboard=False)
    saved_weights = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: saved_weights.append(model.get_weights())
    )
    with pytest.raises(
        TrainingDiverged, match=r"epoch 2, batch 1.*last good checkpoint is .*last\.keras"
    ):
        model.fit(
            dataset, epochs=3, callbacks=callbacks + [keep, Explode()], verbose=0, shuffle=False
        )
    assert len(saved_weights) == 1
    backup = json.loads((tmp_path / "backup" / "training_metadata.json").read_text())
    assert backup["epoch"] == 1
    for path in (tmp_path / "last.keras", tmp_path / "backup" / backup["weights"]):
        if path.suffix == ".keras":
            restored = kcnn.load_model(path, compile=False)
        else:
            restored = _tiny_model()
            restored.optimizer.build(restored.trainable_variables)
            restored.load_weights(path)
        for expected, actual in zip(saved_weights[0], restored.get_weights()):
            np.testing.assert_array_equal(expected, actual)
    assert [row["epoch"] for row in read_history(tmp_path / "history.csv")] == [0]


def test_nan_message_without_checkpoint():
    stop = StopOnNonFiniteLoss(None)
    stop.on_epoch_begin(4)
    with pytest.raises(TrainingDiverged, match="inf at epoch 5, batch 2.*no checkpoint"):
        stop.on_train_batch_end(1, {"loss": float("inf")})
    stop.on_train_batch_end(2, {"loss": 0.5})


def test_clock_counts_training_not_validation():
    clock = TrainingClock()
    logs = {}
    clock.on_epoch_begin(0)
    clock.on_test_begin()
    clock._start -= 100.0  # validation taking long must not count
    clock.on_epoch_end(0, logs)
    assert 0 <= logs["train_seconds"] < 50 and clock.total == logs["train_seconds"]
    assert clock.epochs == 1


def test_history_reader_keeps_the_last_row_of_an_epoch(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,accuracy,loss,val_accuracy\n0,0.5,1.0,0.4\n1,0.6,0.9,0.7\n1,0.61,0.89,0.65\n2,0.7,0.8,NA\n"
    )
    rows = read_history(path)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert rows[1]["val_accuracy"] == 0.65 and "val_accuracy" not in rows[2]
    assert best_so_far(path, "val_accuracy") == 0.65
    assert best_so_far(path, "loss", "min") == 0.8
    assert best_so_far(tmp_path / "none.csv", "loss") is None


def test_run_callbacks_layout(tmp_path):
    callbacks, clock = run_callbacks(tmp_path, early_stopping=3, plateau=True)
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == [
        "TrainingClock",
        "StopOnNonFiniteLoss",
        "ResumableEarlyStopping",
        "ResumablePlateau",
        "AtomicCheckpoint",
        "AtomicCheckpoint",
        "CSVLogger",
        "TensorBoard",
        "AtomicBackup",
    ]
    assert callbacks[0] is clock
    assert callbacks[2].monitor == "val_loss" and callbacks[2].restore_best_weights
    none, _ = run_callbacks(None)
    assert [type(c).__name__ for c in none] == ["TrainingClock", "StopOnNonFiniteLoss"]
    with pytest.raises(ValueError, match="early_stopping must be"):
        run_callbacks(None, early_stopping=0)


def test_truncate_history_keeps_each_completed_epoch_once(tmp_path):
    path = tmp_path / "history.csv"
    rows = "epoch,loss\r\n0,1.0\r\n1,0.9\r\n1,0.8\r\n2,0.7\r\n3,0."
    path.write_text(rows, newline="")
    truncate_history(path, 2)  # the backup holds 2 epochs: 2 and the torn 3 go, 1 is the later row
    assert path.read_bytes() == b"epoch,loss\r\n0,1.0\r\n1,0.8\r\n"
    before = path.stat().st_mtime_ns
    truncate_history(path, 2)
    assert path.stat().st_mtime_ns == before


def _start(model, backup_dir, patience=3):
    """The early stopping and backup callbacks of a run, at the start of its ``fit``."""
    stopper = ResumableEarlyStopping("val_loss", patience)
    backup = AtomicBackup(backup_dir, early_stopping=stopper)
    for callback in (stopper, backup):  # fit's order: the stopper before the backup
        callback.set_model(model)
        callback.on_train_begin()
    return stopper, backup


def _end_epoch(model, callbacks, epoch, val_loss):
    """One epoch: new weights, then the callbacks see its validation loss."""
    for variable in model.trainable_variables:
        variable.assign(variable + 1.0)
    for callback in callbacks:
        callback.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})


def test_early_stopping_keeps_its_count_and_best_weights_across_a_resume(tmp_path):
    backup_dir = tmp_path / "backup"
    model = _tiny_model()
    model.optimizer.build(model.trainable_variables)
    callbacks = _start(model, backup_dir)
    assert callbacks[0].state() is None  # nothing monitored yet: nothing to save
    for epoch, val_loss in enumerate([1.0, 0.5, 0.7]):  # best at epoch 1
        _end_epoch(model, callbacks, epoch, val_loss)
        if epoch == 1:
            best = model.get_weights()
    last = model.get_weights()
    assert sorted(p.name for p in backup_dir.iterdir()) == [
        "epoch-2.weights.h5",  # the best epoch's, kept
        "epoch-3.weights.h5",
        "training_metadata.json",
    ]

    resumed = _tiny_model()  # the run is killed; a new process resumes it
    stopper, backup = _start(resumed, backup_dir)
    assert backup.restored.epoch == 3 and "best epoch 2, 1 epoch(s)" in backup.restored.message
    for restored, expected in zip(resumed.get_weights(), last):
        np.testing.assert_array_equal(restored, expected)
    assert (stopper.wait, stopper.best, stopper.best_epoch) == (1, 0.5, 1)

    _end_epoch(resumed, (stopper, backup), 3, 0.8)
    assert not resumed.stop_training
    _end_epoch(resumed, (stopper, backup), 4, 0.9)  # 3 epochs without improvement: stop
    assert resumed.stop_training and stopper.stopped_epoch == 4
    stopper.on_train_end()
    for restored, expected in zip(resumed.get_weights(), best):
        np.testing.assert_array_equal(restored, expected)


def _plateau_start(model, backup_dir):
    """The plateau schedule and backup callbacks of a run, at the start of its ``fit``."""
    model.optimizer.build(model.trainable_variables)
    reducer = ResumablePlateau("val_loss")
    backup = AtomicBackup(backup_dir, plateau=reducer)
    for callback in (reducer, backup):
        callback.set_model(model)
        callback.on_train_begin()
    return reducer, backup


def test_the_plateau_schedule_lowers_the_rate_where_it_would_have_without_the_resume(tmp_path):
    losses = [1.0, 1.1, 1.2, 1.3]  # the third epoch without improvement halves the rate
    uninterrupted = _tiny_model()
    callbacks = _plateau_start(uninterrupted, tmp_path / "one")
    for epoch, val_loss in enumerate(losses):
        _end_epoch(uninterrupted, callbacks, epoch, val_loss)
    rate = float(uninterrupted.optimizer.learning_rate)
    assert rate == pytest.approx(5e-4)

    killed = _tiny_model()
    callbacks = _plateau_start(killed, tmp_path / "two")
    for epoch, val_loss in enumerate(losses[:2]):
        _end_epoch(killed, callbacks, epoch, val_loss)
    resumed = _tiny_model()  # a new process resumes the run
    reducer, backup = _plateau_start(resumed, tmp_path / "two")
    assert backup.restored.epoch == 2 and (reducer.wait, reducer.best) == (1, 1.0)
    for epoch, val_loss in list(enumerate(losses))[2:]:
        _end_epoch(resumed, (reducer, backup), epoch, val_loss)
    assert float(resumed.optimizer.learning_rate) == pytest.approx(rate)

    restored = restore_backup(_tiny_model(), tmp_path / "two")
    fresh, _ = run_callbacks(tmp_path, plateau=True, restored=restored)
    (schedule,) = [callback for callback in fresh if isinstance(callback, ResumablePlateau)]
    schedule.on_train_begin()  # fit's start keeps the restored count
    assert (schedule.wait, schedule.best) == (1, 1.0)


def test_run_callbacks_give_early_stopping_the_state_restored_before_fit(tmp_path):
    model = _tiny_model()
    model.optimizer.build(model.trainable_variables)
    callbacks = _start(model, tmp_path / "backup", patience=2)
    _end_epoch(model, callbacks, 0, 0.5)
    _end_epoch(model, callbacks, 1, 0.6)
    restored = restore_backup(_tiny_model(), tmp_path / "backup")
    assert restored.early_stopping["wait"] == 1 and len(restored.best_weights) > 0
    fresh, _ = run_callbacks(tmp_path, early_stopping=2, restored=restored)
    stopper = fresh[2]
    stopper.set_model(model)
    stopper.on_train_begin()  # fit's start keeps the restored count
    assert (stopper.wait, stopper.best, stopper.best_epoch) == (1, 0.5, 0)
    stopper.on_epoch_end(2, {"val_loss": 0.7})
    assert model.stop_training
