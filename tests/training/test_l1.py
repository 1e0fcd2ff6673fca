"""L1 next to L2: the training loss holds l1 * sum|w| over the kernels of convolutions and dense
layers (depthwise, pointwise and those inside residual blocks included), never biases nor
normalization parameters; the kernels' sparsity is measured and written to run.json; bad values
are named (the command line's one-line errors are tested in tests/test_cli.py)."""

import json

import keras
import numpy as np
import pytest

import kcnn
from kcnn.layers import TargetedDropout
from kcnn.training import compile_model, kernel_sparsity, regularize_kernels, train


def _kernel_model():
    """Conv (with a bias) -> BN -> separable conv -> dense: every kind of kernel, and biases and
    BN parameters that must stay unpenalised."""
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, bias_initializer="ones", name="conv")(inputs)
    x = keras.layers.BatchNormalization(gamma_initializer="ones", name="bn")(x)
    x = keras.layers.SeparableConv2D(2, 3, name="separable")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="dense")(x)
    return keras.Model(inputs, outputs)


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable)


def _abs_sum_of_kernels(model):
    return sum(
        float(np.sum(np.abs(_numpy(v)))) for v in model.trainable_weights if "kernel" in v.path
    )


def test_l1_penalises_every_kernel_and_nothing_else():
    model = _kernel_model()
    assert regularize_kernels(model, l1=0.01) == 4
    penalised = sorted(v.path for v in model.trainable_weights if v.regularizer is not None)
    assert penalised == [
        "conv/kernel",
        "dense/kernel",
        "separable/depthwise_kernel",
        "separable/pointwise_kernel",
    ]
    penalty = sum(float(_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(0.01 * _abs_sum_of_kernels(model), rel=1e-5)


def test_the_first_training_loss_is_the_cross_entropy_plus_l1_times_the_kernels():
    model = _kernel_model()
    rng = np.random.default_rng(0)
    images, labels = rng.random((4, 6, 6, 1), dtype="float32"), np.array([0, 1, 2, 1])
    compile_model(model, "sgd", learning_rate=0.01, l1=0.05, metrics=())
    probabilities = model.predict(images, verbose=0)  # BN's moving statistics: its identity
    cross_entropy = -np.mean(np.log(probabilities[np.arange(4), labels]))
    expected = cross_entropy + 0.05 * _abs_sum_of_kernels(model)
    model.get_layer("bn").trainable = False  # the same normalisation in the training step
    compile_model(model, "sgd", learning_rate=0.01, l1=0.05, metrics=())
    loss = float(np.asarray(model.train_on_batch(images, labels)))
    assert loss - cross_entropy > 0.05  # the penalty is there, and not a rounding error
    assert loss == pytest.approx(expected, rel=1e-5)


def test_l1_and_l2_reach_the_convolutions_inside_residual_blocks():
    model = kcnn.create_model("tiny_resnet", input_shape=(8, 8, 3), classes=3, width=0.125)
    count = regularize_kernels(model, l1=1e-4, l2=1e-4)
    kernels = [v for v in model.trainable_weights if v.path.endswith("kernel")]
    assert count == len(kernels) > 10
    assert all(v.regularizer is not None for v in kernels)
    others = [v for v in model.trainable_weights if not v.path.endswith("kernel")]
    assert others and all(v.regularizer is None for v in others)
    expected = sum(
        1e-4 * float(np.sum(np.abs(_numpy(v)))) + 1e-4 * float(np.sum(np.square(_numpy(v))))
        for v in kernels
    )
    assert sum(float(_numpy(loss)) for loss in model.losses) == pytest.approx(expected, rel=1e-5)


def test_a_reloaded_model_keeps_the_penalty_on_the_kernels_inside_its_blocks(tmp_path):
    model = kcnn.create_model(
        "tiny_resnet",
        input_shape=(8, 8, 3),
        classes=3,
        width=0.125,
        attention="cbam",
        attention_ratio=2,
    )
    count = regularize_kernels(model, l1=1e-4, l2=1e-3)
    penalty = sum(float(_numpy(loss)) for loss in model.losses)
    model.save(tmp_path / "model.keras")
    loaded = kcnn.load_model(tmp_path / "model.keras")
    assert len(loaded.losses) == len(model.losses) == count
    assert sum(float(_numpy(loss)) for loss in loaded.losses) == pytest.approx(penalty, rel=1e-5)


def test_targeted_dropout_kernels_are_penalised_as_dense_ones():
    inputs = keras.Input((5,))
    model = keras.Model(inputs, TargetedDropout(4, name="targeted")(inputs))
    assert regularize_kernels(model, l1=0.1) == 1
    kernel = model.get_layer("targeted").kernel
    penalty = sum(float(_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(0.1 * float(np.sum(np.abs(_numpy(kernel)))), rel=1e-5)


@pytest.mark.parametrize(
    "call",
    [
        lambda model: regularize_kernels(model, l1=-1),
        lambda model: compile_model(model, l1=-1),
        lambda model: compile_model(model, l1=float("nan")),
    ],
)
def test_a_negative_l1_is_named(call):
    with pytest.raises(ValueError, match="l1 must be"):
        call(_kernel_model())


def test_train_names_a_negative_l1(pattern_data):
    with pytest.raises(ValueError, match="l1 must be a number >= 0, got -1"):
        train("tiny_cnn", pattern_data, epochs=1, l1=-1, test=False, verbose=0)


def test_sparsity_counts_the_kernel_weights_near_zero():
    model = _kernel_model()
    dense = model.get_layer("dense")
    kernel = np.ones(dense.kernel.shape, "float32")
    kernel[: kernel.shape[0] // 2] = 5e-4
    dense.kernel.assign(kernel)
    sparsity = kernel_sparsity(model)
    assert sparsity["threshold"] == 1e-3
    assert sparsity["layers"]["dense"] == pytest.approx(0.5)
    assert set(sparsity["layers"]) == {"conv", "separable", "dense"}
    small = kernel.size / 2 + sum(
        int(np.sum(np.abs(_numpy(v)) < 1e-3))
        for v in model.trainable_weights
        if "kernel" in v.path and not v.path.startswith("dense")
    )
    total = sum(int(np.prod(v.shape)) for v in model.trainable_weights if "kernel" in v.path)
    assert sparsity["overall"] == pytest.approx(small / total)
    with pytest.raises(ValueError, match="threshold"):
        kernel_sparsity(model, threshold=0)


def test_train_with_l1_writes_the_sparsity_to_run_json(tmp_path, pattern_data):
    result = train(
        "tiny_cnn",
        pattern_data,
        epochs=1,
        l1=1e-3,
        out=tmp_path / "run",
        validation_split=0.0,
        test=False,
        batch_size=60,
        tensorboard=False,
        verbose=0,
        precision="float32",
    )
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["sparsity"] == kernel_sparsity(result.model)
    assert set(run["sparsity"]["layers"]) == {"stage1_conv", "stage2_conv", "logits"}
    assert "sparsity" in result.summary()
