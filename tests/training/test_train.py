"""`train` end to end on small arrays: the run directory, the result, reloading the saved
model, refusing to overwrite a run, resume after an interruption, seeds, NaN and bad input."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcnn
from kcnn.training import TrainingDiverged, train
from tests.training.conftest import FAST, patterns


def test_train_writes_the_run_and_returns_the_result(tmp_path, pattern_data):
    out = tmp_path / "run"
    result = train(
        "tiny_cnn",
        pattern_data,
        epochs=3,
        out=out,
        learning_rate=1e-2,
        validation_split=0.25,
        **FAST,
    )
    assert sorted(os.listdir(out)) == ["best.keras", "history.csv", "last.keras", "run.json"]
    assert result.epochs == 3 and result.initial_epoch == 0
    assert set(result.history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "train_seconds"}
    assert all(len(values) == 3 for values in result.history.values())
    assert result.test_accuracy is not None and result.test_accuracy > 0.6
    assert result.images_per_second > 0 and 0 < result.train_seconds < result.seconds
    assert result.precision == "float32" and result.jit_compile is False
    assert result.strategy == "default" and result.replicas == 1
    assert result.model_path == str(out / "best.keras")
    assert result.model.get_layer("normalize").output.dtype == "float32"
    assert result.model.inputs[0].shape[1:] == (16, 16, 1)

    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == ["0", "1", "2"] and run["input_range"] == [0.0, 255.0]
    assert run["test_metrics"]["accuracy"] == pytest.approx(result.test_accuracy)
    last = kcnn.load_model(out / "last.keras")
    test_images, test_labels = pattern_data[1]
    best = kcnn.load_model(out / "best.keras")
    predicted = best.predict(test_images.astype("float32"), verbose=0).argmax(axis=-1)
    assert np.mean(predicted == test_labels) == pytest.approx(result.test_accuracy)  # raw pixels
    images = patterns(6, 5)[0].astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(last(images)),
        keras.ops.convert_to_numpy(result.model(images)),
        rtol=1e-5,
        atol=1e-6,
    )
    summary = result.summary()
    assert "test         accuracy" in summary and str(out / "best.keras") in summary

    with pytest.raises(ValueError, match="already holds a training run"):
        train("tiny_cnn", pattern_data, epochs=1, out=out, **FAST)
    with pytest.raises(ValueError, match="has finished"):
        train("tiny_cnn", pattern_data, epochs=1, out=out, resume=True, **FAST)
    again = train("tiny_cnn", pattern_data, epochs=1, out=out, overwrite=True, **FAST)
    assert again.epochs == 1 and len(again.history["loss"]) == 1


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_resume_continues_at_the_epoch_reached(tmp_path, pattern_data):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train("tiny_cnn", pattern_data, epochs=4, out=out, callbacks=[Interrupt()], **FAST)
    assert (out / "backup").is_dir() and not (out / "run.json").exists()
    result = train("tiny_cnn", pattern_data, epochs=4, out=out, resume=True, **FAST)
    assert result.initial_epoch == 2 and result.epochs == 4
    assert len(result.history["loss"]) == 4
    assert int(result.model.optimizer.iterations) == 4 * 4  # 108 images / 30 per batch
    assert not (out / "backup").exists()


def test_resume_keeps_early_stopping_state_in_the_backup(tmp_path, pattern_data):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(
            "tiny_cnn",
            pattern_data,
            epochs=4,
            early_stopping=5,
            out=out,
            callbacks=[Interrupt()],
            **FAST,
        )
    metadata = json.loads((out / "backup" / "training_metadata.json").read_text())
    state = metadata["early_stopping"]
    assert metadata["epoch"] == 2 and 0 <= state["best_epoch"] <= 1
    assert state["wait"] == 1 - state["best_epoch"] and (out / "backup" / state["weights"]).exists()
    result = train(
        "tiny_cnn", pattern_data, epochs=4, early_stopping=5, out=out, resume=True, **FAST
    )
    assert result.initial_epoch == 2 and result.epochs == 4 and not result.stopped_early


def test_same_seed_same_weights(pattern_data):
    weights = []
    for _ in range(2):
        keras.utils.clear_session()
        result = train("tiny_cnn", pattern_data, epochs=1, seed=3, test=False, **FAST)
        weights.append(result.model.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_erasing_reaches_the_training_images(pattern_data):
    weights = []
    for erasing in (None, 1.0):
        keras.utils.clear_session()
        result = train(
            "tiny_cnn", pattern_data, epochs=1, seed=3, test=False, erasing=erasing, **FAST
        )
        weights.append(result.model.get_weights()[0])
    assert not np.allclose(*weights)


def test_tf_data_input_and_a_built_model():
    images, labels = patterns(64, 0)
    dataset = tf.data.Dataset.from_tensor_slices((images / 255.0, labels)).batch(16)
    model = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    result = train(model, dataset, epochs=2, test_data=dataset, **FAST)
    assert result.model is model and result.info is None
    assert result.test_metrics["accuracy"] >= 0 and result.images_per_second is None
    with pytest.raises(ValueError, match="built with 'float32'"):
        train(model, dataset, epochs=1, precision="mixed_bfloat16", verbose=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(augment="flip"), "augment applies to a data source"),
        (dict(erasing=0.5, mixup=0.2), "erasing and mixup apply to a data source"),
        (dict(data_dir="data"), "data_dir applies to a data source"),
        (dict(image_size=32), "images have height 16, not the 32 asked for"),
    ],
)
def test_tf_data_input_refuses_what_only_a_source_can_take(kwargs, message):
    images, labels = patterns(8, 0)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    with pytest.raises(ValueError, match=message):
        train("tiny_cnn", dataset, epochs=1, **kwargs, **FAST)


def test_diverging_run_raises_and_keeps_the_last_checkpoint(tmp_path, pattern_data):
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="the loss became nan .* training stopped"):
        train(
            "tiny_cnn", pattern_data, epochs=3, out=out, optimizer="sgd", learning_rate=1e12, **FAST
        )
    assert not (out / "run.json").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(epochs=0), "epochs must be"),
        (dict(batch_size=0), "batch_size must be"),
        (dict(model="resnet81"), "unknown model name 'resnet81'"),
        (dict(strategy="tpu"), "strategy must be one of"),
        (dict(precision="half"), "precision must be one of"),
        (dict(erasing=1.5), "erasing must be a number in"),
        (dict(resume=True), "resume and overwrite need the run directory"),
        (dict(validation_data=[1]), "validation_data and test_data go with tf.data input"),
    ],
)
def test_bad_arguments(pattern_data, kwargs, message):
    arguments = {"model": "tiny_cnn", "epochs": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        train(arguments.pop("model"), pattern_data, verbose=0, **arguments)
