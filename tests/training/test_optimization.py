"""Optimizers with the course's defaults, the schedules' shapes, weight decay that spares biases,
L2 in the loss, the loss that fits the head, and bad arguments named in the error."""

import keras
import numpy as np
import pytest

import kcnn
from kcnn.training.optimization import (
    classification_loss,
    compile_model,
    learning_rate_schedule,
    make_optimizer,
    regularize_kernels,
)


def _rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_course_defaults():
    adam = make_optimizer()
    assert isinstance(adam, keras.optimizers.Adam)
    assert float(adam.learning_rate) == pytest.approx(1e-3)
    sgd = make_optimizer("sgd")
    assert isinstance(sgd, keras.optimizers.SGD)
    assert float(sgd.learning_rate) == pytest.approx(0.1)
    assert sgd.momentum == pytest.approx(0.9)


def test_cosine_warms_up_from_zero_then_anneals_to_zero():
    schedule = learning_rate_schedule("cosine", 0.1, total_steps=100, warmup_steps=10)
    assert _rate(schedule, 0) == pytest.approx(0.0)
    assert _rate(schedule, 5) == pytest.approx(0.05, rel=1e-4)
    assert _rate(schedule, 10) == pytest.approx(0.1, rel=1e-4)
    assert _rate(schedule, 55) == pytest.approx(0.05, rel=1e-3)
    assert _rate(schedule, 100) == pytest.approx(0.0, abs=1e-7)
    default = learning_rate_schedule("cosine", 0.1, total_steps=100)
    assert default.warmup_steps == 5


def test_onecycle_rises_from_a_25th_and_ends_far_below():
    schedule = learning_rate_schedule("onecycle", 0.01, total_steps=100)
    assert schedule.warmup_steps == 30
    assert _rate(schedule, 0) == pytest.approx(0.01 / 25, rel=1e-4)
    assert _rate(schedule, 30) == pytest.approx(0.01, rel=1e-4)
    assert _rate(schedule, 100) == pytest.approx(0.01 / 25 / 1e4, rel=1e-3)
    rates = [_rate(schedule, step) for step in range(0, 101, 5)]
    peak = rates.index(max(rates))
    assert all(a <= b for a, b in zip(rates[:peak], rates[1 : peak + 1]))
    assert all(a >= b for a, b in zip(rates[peak:], rates[peak + 1 :]))


def test_constant_and_plateau_are_floats():
    assert learning_rate_schedule("constant", 0.01) == 0.01
    assert learning_rate_schedule("plateau", 0.01) == 0.01


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: learning_rate_schedule("step", 0.1), "schedule must be one of"),
        (lambda: learning_rate_schedule("cosine", 0.1), "needs total_steps"),
        (lambda: learning_rate_schedule("cosine", 0.1, 10, 10), "warmup_steps must be"),
        (lambda: learning_rate_schedule("constant", -1.0), "learning_rate must be"),
        (lambda: make_optimizer("rmsprop"), "optimizer must be one of"),
        (lambda: make_optimizer(weight_decay=-0.1), "weight_decay must be"),
        (lambda: make_optimizer("sgd", momentum=1.0), "momentum must be"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_weight_decay_shrinks_kernels_not_biases():
    layer = keras.layers.Dense(2, bias_initializer="ones")
    layer.build((None, 3))
    optimizer = make_optimizer("sgd", learning_rate=0.1, weight_decay=0.5, momentum=0.0)
    kernel, bias = (keras.ops.convert_to_numpy(v).copy() for v in (layer.kernel, layer.bias))
    zeros = [keras.ops.zeros_like(v) for v in (layer.kernel, layer.bias)]
    optimizer.apply_gradients(zip(zeros, [layer.kernel, layer.bias]))
    np.testing.assert_allclose(layer.kernel.numpy(), kernel * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(layer.bias.numpy(), bias)


def test_l2_penalty_is_in_the_model_losses_and_config():
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    assert regularize_kernels(model, l2=1e-3) == 3
    expected = 1e-3 * sum(
        float(np.sum(np.square(model.get_layer(name).kernel.numpy())))
        for name in ("stage1_conv", "stage2_conv", "logits")
    )
    assert float(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses)) == pytest.approx(
        expected, rel=1e-5
    )
    assert model.get_layer("logits").get_config()["kernel_regularizer"] is not None


def test_loss_matches_the_head():
    softmax = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    logits = kcnn.create_model(
        "tiny_cnn", input_shape=(8, 8, 1), classes=3, classifier_activation=None
    )
    assert classification_loss(softmax).get_config()["from_logits"] is False
    assert classification_loss(logits).get_config()["from_logits"] is True
    smoothed = classification_loss(softmax, label_smoothing=0.1, one_hot=True)
    assert isinstance(smoothed, keras.losses.CategoricalCrossentropy)
    assert smoothed.get_config()["label_smoothing"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="needs one-hot labels"):
        classification_loss(softmax, label_smoothing=0.1)
    sigmoid = kcnn.create_model(
        "tiny_cnn", input_shape=(8, 8, 1), classes=3, classifier_activation="sigmoid"
    )
    with pytest.raises(ValueError, match="sigmoid"):
        classification_loss(sigmoid)


def test_compile_model_with_a_schedule_trains():
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    compile_model(model, "sgd", schedule="onecycle", total_steps=4, weight_decay=1e-4, l2=1e-4)
    assert model.optimizer.get_config()["learning_rate"]["class_name"] == "CosineDecay"
    history = model.fit(
        np.random.default_rng(0).random((8, 8, 8, 1), dtype="float32"),
        np.arange(8) % 3,
        batch_size=4,
        epochs=2,
        verbose=0,
    )
    assert np.all(np.isfinite(history.history["loss"]))
    with pytest.raises(ValueError, match="configure the Adam object"):
        compile_model(model, keras.optimizers.Adam(), learning_rate=0.1)
