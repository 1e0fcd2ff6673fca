"""The best checkpoint's monitor (atomic saves are tested in tests/test_files.py),
the NaN stop that saves nothing after the NaN, the clock, and the CSV history reader."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcnn
from kcnn.training.callbacks import (
    AtomicCheckpoint,
    StopOnNonFiniteLoss,
    TrainingClock,
    TrainingDiverged,
    best_so_far,
    read_history,
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
        model.fit(dataset, epochs=3, callbacks=callbacks + [keep, Explode()], verbose=0)
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
        "EarlyStopping",
        "ReduceLROnPlateau",
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
