"""kcnn's custom layers: numbers against NumPy, serialisation, mixed precision, argument checks."""

import inspect
import io
import os
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from kcnn.layers import (
    CBAM,
    BottleneckBlock,
    DropPath,
    ResidualBlock,
    SpatialAttention,
    SqueezeExcite,
)
from tests.models.helpers import SUBPROCESS_ON_JAX

RNG = np.random.default_rng(0)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def dense(layer, x):
    kernel, bias = (numpy(w) for w in layer.weights)
    return x @ kernel + bias


def built(layer, shape):
    layer.build(shape)
    return layer


LAYER_CASES = [
    (SqueezeExcite, dict(ratio=4, squeeze="avg_max"), (2, 6, 6, 8)),
    (SpatialAttention, dict(kernel_size=3), (2, 6, 6, 8)),
    (CBAM, dict(ratio=2, kernel_size=5), (2, 6, 6, 8)),
    (DropPath, dict(rate=0.3, seed=4), (2, 6, 6, 8)),
    (
        ResidualBlock,
        dict(filters=16, stride=2, attention="cbam", attention_ratio=4, drop_path_rate=0.1),
        (2, 8, 8, 8),
    ),
    (ResidualBlock, dict(filters=8, preact=True, skip=False), (2, 8, 8, 8)),
    (ResidualBlock, dict(filters=8, attention="spatial"), (2, 8, 8, 8)),
    (
        BottleneckBlock,
        dict(
            filters=4,
            stride=2,
            attention="se",
            attention_ratio=2,
            bn_epsilon=1e-3,
            bn_momentum=0.99,
        ),
        (2, 8, 8, 8),
    ),
    (
        ResidualBlock,
        dict(filters=8, stride=2, norm="group", norm_groups=4, conv="separable"),
        (2, 8, 8, 8),
    ),
    (ResidualBlock, dict(filters=8, preact=True, norm="instance"), (2, 8, 8, 4)),
    (BottleneckBlock, dict(filters=8, groups=4, width_per_group=16, norm=None), (2, 8, 8, 8)),
    (BottleneckBlock, dict(filters=4, norm="layer", preact=True, stride=2), (2, 8, 8, 8)),
]


def constructor_arguments(cls):
    """The arguments of ``cls`` and of the kcnn classes it extends (not Keras's ``Layer``)."""
    own = [
        c
        for c in cls.__mro__
        if "__init__" in vars(c)
        and issubclass(c, keras.layers.Layer)
        and c.__module__.startswith("kcnn.")
    ]
    return set().union(*(inspect.signature(c.__init__).parameters for c in own)) - {
        "self",
        "kwargs",
    }


@pytest.mark.parametrize(("cls", "kwargs", "shape"), LAYER_CASES)
def test_get_config_is_exactly_the_constructor_arguments(cls, kwargs, shape):
    layer = cls(**kwargs, name="layer_under_test")
    config = layer.get_config()
    own_arguments = constructor_arguments(cls)
    base = set(keras.layers.Layer.get_config(layer))
    assert set(config) == own_arguments | base
    for key, value in kwargs.items():
        assert config[key] == value
    clone = cls.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize(
    ("cls", "kwargs", "shape"),
    [case for case in LAYER_CASES if "kernel_regularizer" in constructor_arguments(case[0])],
)
def test_a_composite_layer_penalises_every_kernel_inside_and_saves_the_penalty(cls, kwargs, shape):
    penalty = keras.regularizers.L2(0.01)
    layer = built(cls(**kwargs, kernel_regularizer=penalty, name="layer_under_test"), shape)
    kernels = [w for w in layer.trainable_weights if w.path.endswith("kernel")]
    assert kernels and all(w.regularizer is penalty for w in kernels)
    expected = sum(0.01 * float(np.sum(numpy(w) ** 2)) for w in kernels)
    assert sum(float(numpy(loss)) for loss in layer.losses) == pytest.approx(expected, rel=1e-5)
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert clone.kernel_regularizer.get_config() == {"l2": 0.01}


@pytest.mark.parametrize(("cls", "kwargs", "shape"), LAYER_CASES)
def test_layer_in_a_model_saves_and_loads_with_the_same_outputs(cls, kwargs, shape, tmp_path):
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, cls(**kwargs, name="layer_under_test")(inputs))
    x = RNG.normal(size=shape).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("cls", "kwargs", "shape"), LAYER_CASES)
def test_mixed_precision_computes_in_bfloat16_with_float32_variables(cls, kwargs, shape):
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = cls(**kwargs, name="layer_under_test")
    y = layer(RNG.normal(size=shape).astype("float32"), training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    for variable in layer.weights:
        assert variable.dtype == "float32", variable.path
    for sublayer in layer._flatten_layers(include_self=False):
        assert sublayer.dtype_policy.name == "mixed_bfloat16", sublayer.name


def test_squeeze_excite_matches_numpy():
    x = RNG.normal(size=(3, 5, 5, 8)).astype("float32")
    for squeeze in ("avg", "avg_max"):
        layer = SqueezeExcite(ratio=2, squeeze=squeeze)
        y = numpy(layer(x))

        def mlp(v, layer=layer):
            return dense(layer.expand, np.maximum(dense(layer.reduce, v), 0))

        logits = mlp(x.mean(axis=(1, 2)))
        if squeeze == "avg_max":
            logits = logits + mlp(x.max(axis=(1, 2)))
        np.testing.assert_allclose(y, x * sigmoid(logits)[:, None, None, :], rtol=1e-5, atol=1e-6)
    # parameters: C*C/r + C/r + C/r*C + C
    assert layer.count_params() == 8 * 4 + 4 + 4 * 8 + 8


def test_spatial_attention_weights_positions_by_a_sigmoid_of_channel_mean_and_max():
    x = RNG.normal(size=(2, 6, 7, 5)).astype("float32")
    layer = SpatialAttention(kernel_size=3)
    y = numpy(layer(x))
    pooled = np.concatenate([x.mean(-1, keepdims=True), x.max(-1, keepdims=True)], axis=-1)
    attention = sigmoid(numpy(layer.conv(pooled)))
    assert attention.shape == (2, 6, 7, 1)
    np.testing.assert_allclose(y, x * attention, rtol=1e-5, atol=1e-6)


def test_cbam_is_channel_then_spatial_attention():
    x = RNG.normal(size=(2, 6, 6, 8)).astype("float32")
    layer = CBAM(ratio=2, kernel_size=3)
    y = numpy(layer(x))
    np.testing.assert_allclose(y, numpy(layer.spatial(layer.channel(x))), rtol=1e-6)
    assert layer.channel.squeeze == "avg_max"


def test_residual_block_spatial_attention_weights_the_branch_before_the_sum():
    x = RNG.normal(size=(2, 6, 6, 8)).astype("float32")
    block = built(ResidualBlock(8, attention="spatial", name="block"), x.shape)
    assert isinstance(block.attention_layer, SpatialAttention)
    assert block.attention_layer.name == "block_spatial"
    branch = x
    for i, (conv, bn) in enumerate(block.branch):
        branch = numpy(bn(conv(branch), training=False))
        if i == 0:
            branch = np.maximum(branch, 0)
    expected = np.maximum(numpy(block.attention_layer(branch)) + x, 0)
    np.testing.assert_allclose(numpy(block(x, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_drop_path_drops_whole_samples_in_training_only():
    x = np.ones((2000, 3, 3, 2), "float32")
    layer = DropPath(rate=0.25, seed=1)
    np.testing.assert_array_equal(numpy(layer(x, training=False)), x)
    y = numpy(layer(x, training=True))
    per_sample = y.reshape(len(y), -1)
    kept = per_sample[:, 0] > 0
    assert np.all(per_sample[kept] == pytest.approx(1 / 0.75))
    assert np.all(per_sample[~kept] == 0)
    assert 0.2 < 1 - kept.mean() < 0.3


def _zero_residual_branch(block):
    """Make the residual branch output zero: the last BN's gamma and beta set to 0."""
    gamma, beta = block.branch[-1][1].gamma, block.branch[-1][1].beta
    gamma.assign(np.zeros(gamma.shape))
    beta.assign(np.zeros(beta.shape))


@pytest.mark.parametrize("cls", [ResidualBlock, BottleneckBlock])
def test_identity_shortcut_carries_the_input_when_the_branch_is_zero(cls):
    channels = 8 * cls.expansion
    x = RNG.normal(size=(2, 6, 6, channels)).astype("float32")
    block = built(cls(8), x.shape)
    assert not block.projection
    _zero_residual_branch(block)
    np.testing.assert_allclose(numpy(block(x, training=False)), np.maximum(x, 0), atol=1e-6)
    plain = built(cls(8, skip=False), x.shape)
    _zero_residual_branch(plain)
    np.testing.assert_allclose(numpy(plain(x, training=False)), 0, atol=1e-6)


def test_preactivation_block_adds_the_branch_to_the_raw_input_without_final_relu():
    x = RNG.normal(size=(2, 6, 6, 8)).astype("float32")
    block = built(ResidualBlock(8, preact=True), x.shape)
    # In a pre-activation block the branch ends with conv2: zero its kernel.
    conv2 = block.branch[-1][0]
    conv2.kernel.assign(np.zeros(conv2.kernel.shape))
    np.testing.assert_allclose(numpy(block(x, training=False)), x, atol=1e-6)


@pytest.mark.parametrize(
    ("cls", "kwargs", "in_channels", "out_shape"),
    [
        (ResidualBlock, dict(filters=16, stride=2), 8, (2, 4, 4, 16)),
        (ResidualBlock, dict(filters=16), 8, (2, 7, 7, 16)),
        (BottleneckBlock, dict(filters=4, stride=2), 8, (2, 4, 4, 16)),
    ],
)
def test_projection_shortcut_when_stride_or_width_changes(cls, kwargs, in_channels, out_shape):
    size = 7 if kwargs.get("stride", 1) == 1 else 8
    x = RNG.normal(size=(2, size, size, in_channels)).astype("float32")
    block = built(cls(**kwargs), x.shape)
    assert block.projection
    assert block.shortcut_conv.kernel.shape == (1, 1, in_channels, out_shape[-1])
    assert numpy(block(x)).shape == out_shape
    assert block.compute_output_shape(x.shape) == out_shape


def test_bottleneck_strides_on_the_3x3_convolution():
    block = built(BottleneckBlock(4, stride=2), (None, 8, 8, 16))
    strides = [conv.strides for conv, _ in block.branch]
    kernels = [conv.kernel_size for conv, _ in block.branch]
    assert kernels == [(1, 1), (3, 3), (1, 1)]
    assert strides == [(1, 1), (2, 2), (1, 1)]


def test_strided_block_pads_symmetrically_like_pytorch():
    # A one-hot input at the top-left corner must reach output (0, 0) through the 3x3/2 conv's
    # centre tap when the padding is one pixel on each side (Keras "same" would pad 0 on top).
    block = built(ResidualBlock(1, stride=2, skip=False), (1, 4, 4, 1))
    conv1, conv2 = block.branch[0][0], block.branch[1][0]
    centre_only = np.zeros((3, 3, 1, 1), "float32")
    centre_only[1, 1] = 1
    conv1.kernel.assign(centre_only)
    conv2.kernel.assign(centre_only)
    x = np.zeros((1, 4, 4, 1), "float32")
    x[0, 0, 0, 0] = 1
    y = numpy(block(x, training=False))
    assert y.shape == (1, 2, 2, 1)
    assert y[0, 0, 0, 0] > 0 and np.all(y.reshape(-1)[1:] == 0)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: built(SqueezeExcite(ratio=16), (None, 4, 4, 8)), "ratio"),
        (lambda: SqueezeExcite(ratio=0), "ratio"),
        (lambda: SqueezeExcite(squeeze="max"), "squeeze"),
        (lambda: SpatialAttention(kernel_size=4), "kernel_size"),
        (lambda: CBAM(kernel_size=0), "kernel_size"),
        (lambda: DropPath(rate=1.0), "rate"),
        (lambda: DropPath(rate=-0.1), "rate"),
        (lambda: ResidualBlock(0), "filters"),
        (lambda: ResidualBlock(8, stride=3), "stride"),
        (lambda: ResidualBlock(8, attention="eca"), "attention"),
        (lambda: ResidualBlock(8, skip=False, drop_path_rate=0.1), "drop_path_rate"),
        (lambda: BottleneckBlock(8, bn_epsilon=0), "bn_epsilon"),
        (lambda: BottleneckBlock(8, kernel_regularizer="l3"), "kernel_regularizer"),
        (lambda: CBAM(kernel_regularizer=0.01), "kernel_regularizer"),
        (lambda: built(ResidualBlock(8), (None, 4, 4)), "4D"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


@SUBPROCESS_ON_JAX
def test_models_and_layers_import_no_tensorflow():
    script = (
        "import sys, kcnn, kcnn.models, kcnn.layers;"
        "kcnn.create_model('resnet18', input_shape=(32, 32, 3), attention='cbam',"
        " drop_path_rate=0.1, width=0.25);"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow');"
        "print(leaked); sys.exit(1 if leaked else 0)"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]


def test_weights_are_saved_under_the_paths_of_files_saved_before_norms_were_choosable(tmp_path):
    # Keras stores a sublayer's weights under its attribute path; these are the paths a
    # projection block had in .keras files saved by kcnn 0.1.0 (before norm= existed), which
    # must still load.
    inputs = keras.Input((8, 8, 4))
    keras.Model(inputs, ResidualBlock(8, stride=2)(inputs)).save(tmp_path / "block.keras")
    with zipfile.ZipFile(tmp_path / "block.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        paths = []
        weights.visititems(
            lambda path, item: paths.append(path) if isinstance(item, h5py.Dataset) else None
        )
    block = "layers/residual_block/"
    expected = [
        f"{block}branch/container{suffix}/{layer}/vars/{i}"
        for suffix in ("", "_1")
        for layer, count in (("batch_normalization", 4), ("conv2d", 1))
        for i in range(count)
    ]
    expected += [f"{block}shortcut_bn/vars/{i}" for i in range(4)]
    expected += [f"{block}shortcut_conv/vars/0"]
    assert sorted(paths) == sorted(expected)
