"""kcnn.transfer.schedule and train: phases, learning rates, what changes in each phase."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcnn import transfer
from kcnn.training import precision_policy
from tests.transfer.conftest import tiny_model, values


class PhaseRecorder(keras.callbacks.Callback):
    """What the optimizer and the model look like at the start of every epoch."""

    def __init__(self):
        super().__init__()
        self.learning_rates, self.trainable_counts = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.learning_rates.append(
            float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        )
        self.trainable_counts.append(len(self.model.trainable_weights))


def _batches(images, batch_size=8):
    x, y = images
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def _train(model, images, schedule, epochs=None, **options):
    data = _batches(images)
    return transfer.train(
        model,
        data,
        schedule,
        epochs,
        validation_data=data,
        test_data=data,
        verbose=0,
        tensorboard=False,
        **options,
    )


def test_progressive_switches_phase_at_the_epoch_and_learning_rate_asked(images):
    model = tiny_model("progressive")
    base = transfer.backbone_of(model)
    bottom = [w for w in base.weights if w.path.startswith("stage1_")]
    top = [w for w in base.trainable_weights if w.path.startswith("stage3_block2/")]
    statistics = [w for w in base.weights if "moving_" in w.path]
    bottom_before, statistics_before = values(bottom), values(statistics)
    recorder = PhaseRecorder()
    phases = transfer.schedule(
        "progressive", 3, head_epochs=2, unfreeze=2, finetune_learning_rate=3e-4
    )
    top_before = values(top)
    result = _train(model, images, phases, callbacks=[recorder])
    np.testing.assert_allclose(recorder.learning_rates, [1e-3, 1e-3, 3e-4], rtol=1e-6)
    head_only, with_top = recorder.trainable_counts[0], recorder.trainable_counts[2]
    assert head_only == 2 and recorder.trainable_counts[1] == 2 and with_top > 2
    assert result.history["phase"] == [0, 0, 1]
    assert result.history["learning_rate"] == [1e-3, 1e-3, 3e-4]
    assert len(result.history["val_accuracy"]) == 3
    assert result.trainable_parameters[0] == 64 * 3 + 3
    assert result.trainable_parameters[1] > result.trainable_parameters[0]
    assert all(np.array_equal(a, b) for a, b in zip(bottom_before, values(bottom)))
    assert all(np.array_equal(a, b) for a, b in zip(statistics_before, values(statistics)))
    assert not any(np.array_equal(a, b) for a, b in zip(top_before, values(top)))
    assert result.test_accuracy is not None and result.train_seconds > 0


def test_frozen_training_under_mixed_precision_leaves_the_backbone_bit_identical(images):
    with precision_policy("mixed_bfloat16"):
        model = tiny_model("frozen")
    base = transfer.backbone_of(model)
    before = values(base.weights)
    result = _train(model, images, "frozen", epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, values(base.weights)))
    assert result.phases == (transfer.Phase(1, 0, 1e-3),)
    assert result.phase_results[0].precision == "mixed_bfloat16"
    output = model(images[0][:2])
    assert keras.backend.standardize_dtype(output.dtype) == "float32"
    assert np.isfinite(result.history["loss"][0])


def test_training_from_a_data_source_reads_raw_pixels_at_the_model_size():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(24, 20, 20, 1), dtype=np.uint8)
    y = np.arange(24) % 3
    model = tiny_model("frozen")
    result = transfer.train(
        model,
        ((x, y), (x[:6], y[:6])),
        "frozen",
        epochs=1,
        batch_size=8,
        validation_split=0.25,
        verbose=0,
        tensorboard=False,
    )
    assert set(result.test_metrics) >= {"loss", "accuracy"}
    assert len(result.history["val_loss"]) == 1


def test_schedules_of_the_course():
    assert transfer.schedule("frozen", 5) == (transfer.Phase(5, 0, 1e-3),)
    assert transfer.schedule("finetune", 5) == (transfer.Phase(5, "all", 1e-4),)
    assert transfer.schedule("progressive", 5) == (
        transfer.Phase(2, 0, 1e-3),
        transfer.Phase(3, "all", 1e-5),
    )


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("progressive", 1), {}, "needs epochs >= 2"),
        (("progressive", 4), {"head_epochs": 4}, r"head_epochs must be an integer in \[1, 4\)"),
        (("frozen", 4), {"unfreeze": 2}, "belong to the 'progressive' strategy"),
        (("finetune", 0), {}, "epochs must be a positive integer"),
        (("scratch", 3), {}, "strategy must be one of"),
    ],
)
def test_bad_schedules_are_named(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        transfer.schedule(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "Phase.epochs"),
        ({"unfreeze": -1}, "Phase.unfreeze"),
        ({"learning_rate": 0}, "Phase.learning_rate"),
    ],
)
def test_bad_phases_are_named(kwargs, message):
    arguments = {"epochs": 1, "unfreeze": 0, "learning_rate": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=message):
        transfer.Phase(**arguments)


def test_train_checks_the_schedule_before_training(images):
    model = tiny_model()
    data = _batches(images)
    with pytest.raises(ValueError, match="from 0 to 6"):
        transfer.train(model, data, [transfer.Phase(1, 0, 1e-3), transfer.Phase(1, 9, 1e-5)])
    with pytest.raises(ValueError, match="epochs is needed"):
        transfer.train(model, data, "frozen")
    with pytest.raises(ValueError, match="does not match the 2 epochs"):
        transfer.train(model, data, transfer.schedule("progressive", 2), epochs=3)
    with pytest.raises(ValueError, match="go with tf.data input"):
        transfer.train(model, "fashion_mnist", "frozen", 1, validation_data=data)


class StopAtEpoch(keras.callbacks.Callback):
    """Raise KeyboardInterrupt (a kill) at the start of the ``at``-th epoch of the schedule."""

    def __init__(self, at):
        super().__init__()
        self.at, self.begun = at, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.begun += 1
        if self.begun == self.at:
            raise KeyboardInterrupt


class StartingWeights(keras.callbacks.Callback):
    """The model's weights when each ``fit`` (phase) begins."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_begin(self, logs=None):
        self.seen.append(self.model.get_weights())


def test_a_run_killed_between_phases_resumes_from_the_ended_phase_weights(tmp_path, images):
    phases = transfer.schedule("progressive", 4, head_epochs=2)
    with pytest.raises(KeyboardInterrupt):  # killed as phase 2 begins its first epoch
        _train(tiny_model("progressive"), images, phases, out=tmp_path, callbacks=[StopAtEpoch(3)])
    assert (tmp_path / "phase1" / "run.json").exists()
    ended = tiny_model("progressive")
    ended.load_weights(tmp_path / "phase1" / "final.weights.h5")

    starts = StartingWeights()
    result = _train(
        tiny_model("progressive"), images, phases, out=tmp_path, resume=True, callbacks=[starts]
    )
    assert len(starts.seen) == 1  # phase 1 was not trained again
    for seen, expected in zip(starts.seen[0], ended.get_weights()):
        np.testing.assert_array_equal(seen, expected)
    assert result.history["phase"] == [0, 0, 1, 1] and result.test_accuracy is not None
    assert result.phase_results[0].epochs == 2 and result.phase_results[1].initial_epoch == 0

    again = _train(tiny_model("progressive"), images, phases, out=tmp_path, resume=True)
    assert again.history == result.history and again.test_metrics == result.test_metrics
    for read, trained in zip(again.model.get_weights(), result.model.get_weights()):
        np.testing.assert_array_equal(read, trained)


def test_a_run_killed_inside_a_phase_resumes_at_its_epoch(tmp_path, images):
    phases = transfer.schedule("progressive", 4, head_epochs=2)
    with pytest.raises(KeyboardInterrupt):  # killed as phase 2 begins its second epoch
        _train(tiny_model("progressive"), images, phases, out=tmp_path, callbacks=[StopAtEpoch(4)])
    result = _train(tiny_model("progressive"), images, phases, out=tmp_path, resume=True)
    assert result.phase_results[1].initial_epoch == 1 and result.phase_results[1].epochs == 2
    assert result.history["phase"] == [0, 0, 1, 1]


def test_resume_refuses_what_it_cannot_do(tmp_path, images):
    model = tiny_model("frozen")
    with pytest.raises(ValueError, match="resume needs the run's folder"):
        _train(model, images, "frozen", 1, resume=True)
    with pytest.raises(ValueError, match="resume and overwrite exclude each other"):
        _train(model, images, "frozen", 1, out=tmp_path, resume=True, overwrite=True)
    _train(model, images, "frozen", 1, out=tmp_path)
    (tmp_path / "phase1" / "final.weights.h5").unlink()  # killed between run.json and it
    with pytest.raises(ValueError, match="ended but its final weights"):
        _train(model, images, "frozen", 1, out=tmp_path, resume=True)
    _train(model, images, "frozen", 1, out=tmp_path, overwrite=True)
    assert (tmp_path / "phase1" / "final.weights.h5").exists()
