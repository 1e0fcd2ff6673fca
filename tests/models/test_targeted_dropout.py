"""TargetedDropout (Gomez et al. 2019): a plain Dense at inference; in training only the targeted
lowest-magnitude weights (or lowest-norm units) are dropped, at the given rate; seedable,
serialisable, mixed precision, bad arguments named. Backend-agnostic (no TensorFlow)."""

import inspect

import keras
import numpy as np
import pytest

from kcnn.convmath import macs
from kcnn.layers import TargetedDropout

STEPS = 200


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def layer_with_kernel(kernel, **kwargs):
    """A TargetedDropout holding ``kernel`` (inputs x units) and a zero bias."""
    layer = TargetedDropout(kernel.shape[1], **kwargs)
    layer.build((None, kernel.shape[0]))
    layer.kernel.assign(kernel)
    return layer


def kept_kernels(layer, steps=STEPS):
    """The kernel each training step used, ``(steps, inputs, units)``: fed the identity matrix,
    the layer outputs its (masked) kernel, the zero bias added."""
    identity = np.eye(layer.kernel.shape[0], dtype="float32")
    return np.stack([numpy(layer(identity, training=True)) for _ in range(steps)])


def test_inference_is_a_plain_dense_with_every_weight():
    rng = np.random.default_rng(0)
    layer = TargetedDropout(
        5, drop_rate=1.0, targ_rate=1.0, activation="relu", bias_initializer="ones"
    )
    x = rng.normal(size=(4, 7)).astype("float32")
    layer.build(x.shape)
    kernel, bias = numpy(layer.kernel), numpy(layer.bias)
    expected = np.maximum(x @ kernel + bias, 0)
    np.testing.assert_allclose(numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(layer(x, training=False)), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(numpy(layer(x, training=True)), expected)  # all dropped: the bias


def test_weight_variant_drops_only_each_units_lowest_magnitude_weights_at_the_rate():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(20, 8)).astype("float32")
    layer = layer_with_kernel(kernel, drop_rate=0.3, targ_rate=0.25, variant="weight", seed=7)
    dropped = kept_kernels(layer) == 0
    ranks = np.argsort(np.argsort(np.abs(kernel), axis=0), axis=0)
    targeted = ranks < 5  # 25% of the 20 weights of each unit
    assert not dropped[:, ~targeted].any()
    assert dropped[:, targeted].mean() == pytest.approx(0.3, abs=0.03)  # 8,000 draws: 6 sigma
    assert dropped[:, targeted].any(axis=0).all()  # each targeted weight is dropped some time


def test_unit_variant_drops_whole_low_norm_units_only():
    rng = np.random.default_rng(2)
    kernel = rng.normal(size=(6, 20)).astype("float32") * np.linspace(0.1, 2.0, 20, dtype="float32")
    kernel = kernel[:, rng.permutation(20)]
    layer = layer_with_kernel(kernel, drop_rate=0.5, targ_rate=0.4, variant="unit", seed=3)
    dropped = kept_kernels(layer) == 0
    whole_units = dropped.all(axis=1)  # (steps, units)
    np.testing.assert_array_equal(dropped.any(axis=1), whole_units)  # never part of a unit
    norms = np.linalg.norm(kernel, axis=0)
    targeted = norms <= np.sort(norms)[7]  # the 8 weakest of 20 units
    assert not whole_units[:, ~targeted].any()
    assert whole_units[:, targeted].mean() == pytest.approx(0.5, abs=0.06)  # 1,600 draws


def test_the_same_seed_drops_the_same_weights():
    kernel = np.random.default_rng(3).normal(size=(10, 4)).astype("float32")
    first, second = (layer_with_kernel(kernel, seed=11) for _ in range(2))
    np.testing.assert_array_equal(kept_kernels(first, 5), kept_kernels(second, 5))


def test_get_config_is_exactly_the_constructor_arguments():
    layer = TargetedDropout(
        6,
        drop_rate=0.25,
        targ_rate=0.75,
        variant="unit",
        seed=5,
        activation="relu",
        use_bias=False,
        kernel_regularizer="l1",
    )
    config = layer.get_config()
    own = set(inspect.signature(TargetedDropout.__init__).parameters) - {"self", "kwargs"}
    dense_plumbing = {"quantization_config"}
    assert set(config) == own | set(keras.layers.Layer.get_config(layer)) | dense_plumbing
    assert (config["drop_rate"], config["targ_rate"], config["variant"], config["seed"]) == (
        0.25,
        0.75,
        "unit",
        5,
    )
    assert TargetedDropout.from_config(config).get_config() == config


def test_a_model_with_it_trains_saves_and_loads_with_the_same_outputs(tmp_path):
    rng = np.random.default_rng(4)
    inputs = keras.Input((12,))
    hidden = TargetedDropout(16, activation="relu", seed=1, name="targeted")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.normal(size=(8, 12)).astype("float32"), np.arange(8) % 3
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("targeted"), TargetedDropout)
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-5, atol=1e-6)


def test_mixed_precision_computes_in_bfloat16_with_float32_variables():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = TargetedDropout(8, variant="weight", seed=2)
    x = np.random.default_rng(5).normal(size=(4, 10)).astype("float32")
    for training in (True, False):
        y = layer(x, training=training)
        assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
        assert np.isfinite(numpy(keras.ops.cast(y, "float32"))).all()
    assert all(variable.dtype == "float32" for variable in layer.weights)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: TargetedDropout(0), "units"),
        (lambda: TargetedDropout(4, drop_rate=1.5), "drop_rate"),
        (lambda: TargetedDropout(4, drop_rate=-0.1), "drop_rate"),
        (lambda: TargetedDropout(4, targ_rate=-0.5), "targ_rate"),
        (lambda: TargetedDropout(4, targ_rate=2), "targ_rate"),
        (lambda: TargetedDropout(4, variant="column"), "variant"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_convmath_counts_it_as_a_dense():
    inputs = keras.Input((12,))
    assert macs(keras.Model(inputs, TargetedDropout(16)(inputs))) == 12 * 16
