"""kcnn.convmath: the course's worked examples, the NumPy reference against Keras and
tf.GradientTape (property-based, with hypothesis), receptive fields and multiply-accumulates."""

import contextlib
import io
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import kcnn
from kcnn import cli, convmath
from kcnn.convmath import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv_params,
    max_pool2d,
    max_pool2d_backward,
    output_size,
)
from kcnn.layers import CBAM, ResidualBlock, SpatialAttention, SqueezeExcite

PROPERTY = settings(max_examples=60, deadline=None)


COURSE_IMAGE = np.array(
    [[1, 2, 3, 0, 1], [0, 1, 2, 3, 0], [1, 0, 1, 2, 3], [2, 1, 0, 1, 2], [3, 2, 1, 0, 1]]
)
VERTICAL_EDGE = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]])
COURSE_POOL_INPUT = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The course's formulas and worked examples
# ---------------------------------------------------------------------------------------------


def test_course_example_vertical_edge_gives_minus_four_at_the_origin():
    out = conv2d(COURSE_IMAGE, VERTICAL_EDGE)
    assert out.shape == (3, 3)
    assert out[0, 0] == -4


def test_course_example_max_pool_gives_6_8_3_4():
    np.testing.assert_array_equal(max_pool2d(COURSE_POOL_INPUT), [[6, 8], [3, 4]])


def test_course_example_average_pool_is_the_mean_of_each_window():
    np.testing.assert_allclose(avg_pool2d(COURSE_POOL_INPUT), [[3.75, 5.25], [2.0, 2.0]])


def test_course_example_32_pixels_kernel_5_padding_2_gives_32():
    assert output_size(32, 5, stride=1, padding=2) == 32


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((224, 7, 2, 3), 112),  # ResNet stem
        ((227, 11, 4, 0), 55),  # AlexNet conv1, the course's figure
        ((112, 3, 2, 1), 56),  # ResNet's max-pool: (112 + 2 - 3) / 2 floors to 55, + 1
        ((10, 3, 1, 0, 2), 6),  # dilation 2: the 3x3 kernel spans 5 pixels
        ((7, 3, 2, "same"), 4),  # Keras's ceil(7 / 2)
        ((8, 3, 1, "same"), 8),
        ((9, 3, 2, "valid"), 4),
    ],
)
def test_output_size(args, expected):
    assert output_size(*args) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(size=0, kernel=3), "size must be a positive integer, got 0"),
        (dict(size=8, kernel=-1), "kernel must be a positive integer, got -1"),
        (dict(size=8, kernel=3, stride=0), "stride must be a positive integer"),
        (dict(size=8, kernel=3, dilation=0), "dilation must be a positive integer"),
        (dict(size=8, kernel=3, padding=-1), "padding must be a non-negative integer"),
        (dict(size=8, kernel=3, padding="full"), "'valid' or 'same', got 'full'"),
        (dict(size=4, kernel=7, padding=1), r"kernel 7 is larger than the padded input 4 \+ 2\*1"),
        (dict(size=4, kernel=3, dilation=2), "dilation 2 spans 5 is larger than the padded input"),
        (dict(size=10, kernel=3, stride=2, padding="valid"), r"\(10 - 3\) / 2 \+ 1 = 4.5 is not"),
    ],
)
def test_output_size_rejects_bad_geometry(kwargs, message):
    with pytest.raises(ValueError, match=message):
        output_size(**kwargs)


def test_output_size_floors_with_integer_padding_where_valid_refuses():
    assert output_size(10, 3, stride=2, padding=0) == 4


def test_conv_params_course_example_and_variants():
    assert conv_params(3, 3, 64) == 1792  # (3*3*3 + 1) * 64
    assert conv_params(3, 64, 64, bias=False) == 36_864
    assert conv_params((1, 7), 8, 16) == (7 * 8 + 1) * 16
    assert conv_params(3, 96, 256, groups=2) == (9 * 48 + 1) * 256


def test_conv_params_matches_keras_and_rejects_bad_groups():
    layer = keras.layers.Conv2D(256, 5, groups=2)
    layer.build((None, 27, 27, 96))
    assert layer.count_params() == conv_params(5, 96, 256, groups=2)
    with pytest.raises(ValueError, match="groups=3 must divide both c_in=64 and c_out=64"):
        conv_params(3, 64, 64, groups=3)


def test_vgg_insight_two_3x3_convolutions_see_5x5_with_fewer_parameters():
    channels = 64
    assert conv_params(3, channels, channels, bias=False) * 2 == 18 * channels**2
    assert conv_params(5, channels, channels, bias=False) == 25 * channels**2
    model = keras.Sequential(
        [keras.Input((16, 16, 1)), keras.layers.Conv2D(1, 3), keras.layers.Conv2D(1, 3)]
    )
    assert list(convmath.receptive_field(model).values())[-1].size == (5, 5)


# ---------------------------------------------------------------------------------------------
# The NumPy reference against Keras and tf.GradientTape
# ---------------------------------------------------------------------------------------------


def _keras_padding(padding):
    return "valid" if isinstance(padding, int) else padding


def keras_conv(x, kernel, bias, stride, padding, dilation):
    """Keras's convolution, one image at a time: on a batch of several single-channel images
    with a stride of 1 down and more than 1 across, TensorFlow 2.21's oneDNN convolution gets
    some output rows wrong (zeros where this test found it, on an AMX Xeon, 2026-12-06; right
    with TF_ENABLE_ONEDNN_OPTS=0), and each image alone right."""
    if isinstance(padding, int) and padding:
        x = keras.ops.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    images = [
        keras.ops.conv(
            image[None],
            kernel,
            strides=stride,
            padding=_keras_padding(padding),
            dilation_rate=dilation,
        )
        for image in x
    ]
    return keras.ops.concatenate(images) + bias


def _size_for(draw, kernel, stride, padding, dilation):
    """An input size for which the geometry is valid."""
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        return span + stride * draw(st.integers(0, 3))
    if padding == "same":
        return draw(st.integers(1, 9))
    return draw(st.integers(max(1, span - 2 * padding), span + 7))


@st.composite
def conv_cases(draw, keras_compatible=True):
    """Random shapes, strides, paddings and dilations for a convolution. Keras (TensorFlow)
    has no convolution with both a stride and a dilation above 1, so ``keras_compatible``
    keeps one of them at 1."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dilation = draw(st.integers(1, 2))
    max_stride = 1 if keras_compatible and dilation > 1 else 3
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    padding = draw(st.sampled_from([0, 1, 2, "same", "valid"]))
    size = tuple(_size_for(draw, k, s, padding, dilation) for k, s in zip(kernel, stride))
    batch, c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-1, 1, (batch, *size, c_in)).astype("float32")
    k = rng.uniform(-1, 1, (*kernel, c_in, c_out)).astype("float32")
    b = rng.uniform(-1, 1, (c_out,)).astype("float32")
    return x, k, b, dict(stride=stride, padding=padding, dilation=(dilation, dilation)), rng


@PROPERTY
@given(conv_cases())
def test_conv2d_matches_keras(case):
    x, k, b, geometry, _ = case
    expected = keras_conv(x, k, b, geometry["stride"], geometry["padding"], geometry["dilation"])
    assert_close(conv2d(x, k, b, **geometry), expected)


@PROPERTY
@given(conv_cases())
def test_conv2d_backward_matches_gradient_tape(case):
    x, k, b, geometry, rng = case
    out = conv2d(x, k, b, **geometry)
    grad_output = rng.uniform(-1, 1, out.shape).astype("float32")
    variables = [tf.constant(x), tf.constant(k), tf.constant(b)]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        y = keras_conv(*variables, geometry["stride"], geometry["padding"], geometry["dilation"])
        loss = tf.reduce_sum(y * grad_output)
    dx, dk, db = tape.gradient(loss, variables)
    grads = conv2d_backward(x, k, grad_output, **geometry)
    assert_close(grads.image, dx)
    assert_close(grads.kernel, dk)
    assert_close(grads.bias, db)


@PROPERTY
@given(conv_cases(keras_compatible=False))
def test_conv2d_backward_is_the_adjoint_of_the_forward_pass(case):
    """<conv(x, K), G> = <x, dx> = <K, dK>: holds for every geometry, strided and dilated
    together included, which Keras cannot compute."""
    x, k, _, geometry, rng = case
    out = conv2d(x, k, **geometry)
    grad_output = rng.uniform(-1, 1, out.shape)
    grads = conv2d_backward(x, k, grad_output, **geometry)
    inner = np.sum(out * grad_output)
    np.testing.assert_allclose(np.sum(x * grads.image), inner, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.sum(k * grads.kernel), inner, rtol=1e-9, atol=1e-9)


def test_conv2d_backward_is_the_course_formulas_for_one_channel():
    """Eq. 11: dL/dI is the full convolution of dL/dO with the kernel rotated by 180 degrees.
    Eq. 12: dL/dK is the correlation of I with dL/dO."""
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(6, 7)), rng.normal(size=(3, 2))
    grad_output = rng.normal(size=conv2d(image, kernel).shape)
    grads = conv2d_backward(image, kernel, grad_output)
    full = np.pad(grad_output, ((2, 2), (1, 1)))
    np.testing.assert_allclose(grads.image, conv2d(full, np.rot90(kernel, 2)))
    np.testing.assert_allclose(grads.kernel, conv2d(image, grad_output))
    np.testing.assert_allclose(grads.bias, grad_output.sum())


def test_conv2d_keeps_the_rank_of_its_input_and_adds_the_bias():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 2, 4))
    batch = rng.normal(size=(3, 8, 8, 2))
    single = conv2d(batch[0], kernel, bias=np.arange(4.0), padding="same")
    assert single.shape == (8, 8, 4)
    np.testing.assert_allclose(single, conv2d(batch, kernel, np.arange(4.0), padding=1)[0])
    assert conv2d(np.ones((5, 5)), np.ones((3, 3)), bias=1.0)[0, 0] == 10


@pytest.mark.parametrize(
    ("image", "kernel", "message"),
    [
        (np.ones((5, 5, 3)), np.ones((3, 3)), "a 2D kernel"),
        (np.ones((5, 5)), np.ones((3, 3, 1, 1)), "a 4D kernel"),
        (np.ones((5, 5, 3)), np.ones((3, 3, 2, 1)), "image has 3 channels but the kernel expects"),
        (np.ones((5, 5)), np.ones((3, 3, 3)), r"kernel must be \(kh, kw\) or"),
        (np.ones((4, 4)), np.ones((5, 5)), "along the height: kernel 5 is larger than the padded"),
    ],
)
def test_conv2d_rejects_bad_operands(image, kernel, message):
    with pytest.raises(ValueError, match=message):
        conv2d(image, kernel)


def test_conv2d_valid_padding_refuses_windows_that_do_not_tile():
    with pytest.raises(ValueError, match="along the width: padding='valid' needs the windows"):
        conv2d(np.ones((7, 8)), np.ones((3, 3)), stride=2, padding="valid")


def test_conv2d_backward_rejects_a_gradient_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"grad_output must have the shape of the forward output"):
        conv2d_backward(np.ones((5, 5)), np.ones((3, 3)), np.ones((2, 2)))


@st.composite
def pool_cases(draw):
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from([0, "same", "valid"]))
    size = tuple(_size_for(draw, p, s, padding, 1) for p, s in zip(pool, stride))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.uniform(-1, 1, (draw(st.integers(1, 2)), *size, draw(st.integers(1, 3))))
    return x.astype("float32"), dict(pool_size=pool, stride=stride, padding=padding), rng


POOLS = [
    (max_pool2d, max_pool2d_backward, keras.ops.max_pool),
    (avg_pool2d, avg_pool2d_backward, keras.ops.average_pool),
]


@pytest.mark.parametrize(("forward", "backward", "keras_pool"), POOLS)
@PROPERTY
@given(case=pool_cases())
def test_pooling_and_its_backward_pass_match_keras_and_gradient_tape(
    forward, backward, keras_pool, case
):
    x, geometry, rng = case
    out = forward(x, **geometry)
    grad_output = rng.uniform(-1, 1, out.shape).astype("float32")
    tensor = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tensor)
        y = keras_pool(
            tensor, geometry["pool_size"], geometry["stride"], _keras_padding(geometry["padding"])
        )
        loss = tf.reduce_sum(y * grad_output)
    assert_close(out, y)
    assert_close(backward(x, grad_output, **geometry), tape.gradient(loss, tensor))


def test_max_pool_backward_routes_the_gradient_to_the_argmax_only():
    grad = max_pool2d_backward(COURSE_POOL_INPUT, [[10, 20], [30, 40]])
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[2, 0], expected[3, 3] = 10, 20, 30, 40
    np.testing.assert_array_equal(grad, expected)


def test_max_pool_sums_the_gradients_of_overlapping_windows():
    image = np.array([[0, 0, 0], [0, 9, 0], [0, 0, 0]])
    grad = max_pool2d_backward(image, np.ones((2, 2)), pool_size=2, stride=1)
    assert grad[1, 1] == 4 and grad.sum() == 4


def test_integer_padding_of_pooling_is_minus_infinity_for_max_and_left_out_of_the_mean():
    rng = np.random.default_rng(2)
    x = rng.uniform(-2, -1, (1, 6, 6, 2))  # all negative: a zero padding would win the max
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    assert_close(max_pool2d(x, 3, 2, padding=1), keras.ops.max_pool(padded, 3, 2, "valid"))
    # 3x3 windows at stride 1 with padding 1 are Keras's "same" windows.
    assert_close(avg_pool2d(x, 3, 1, padding=1), keras.ops.average_pool(x, 3, 1, "same"))


def test_pooling_backward_passes_are_adjoint_to_their_forward_pass():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 6, 3))
    for forward, backward, _ in POOLS:
        out = forward(x, 3, 2, padding=1)
        g = rng.normal(size=out.shape)
        np.testing.assert_allclose(np.sum(x * backward(x, g, 3, 2, padding=1)), np.sum(out * g))


# ---------------------------------------------------------------------------------------------
# Receptive fields
# ---------------------------------------------------------------------------------------------


def test_receptive_field_of_alexnet_grows_as_published():
    fields = convmath.receptive_field(kcnn.create_model("alexnet", include_top=False))
    sizes = {name: field.size[0] for name, field in fields.items()}
    assert sizes == {
        "stage1_conv": 11,
        "stage1_pool": 19,
        "stage2_conv": 51,
        "stage2_pool": 67,
        "stage3_conv1": 99,
        "stage3_conv2": 131,
        "stage3_conv3": 163,
        "stage3_pool": 195,
    }
    assert fields["stage3_pool"].jump == (32, 32)


def test_receptive_field_of_vgg16_and_resnet18_final_feature_maps():
    vgg = convmath.receptive_field(kcnn.create_model("vgg16", include_top=False))
    assert vgg["stage5_conv3"].size == (196, 196)
    assert vgg["stage5_pool"].size == (212, 212)
    # Independent of width and input size, so a small ResNet-18 gives the ImageNet one's field.
    resnet = kcnn.create_model("resnet18", input_shape=(64, 64, 3), width=0.25, classes=3)
    fields = convmath.receptive_field(resnet)
    assert fields["stage4_block2"] == convmath.ReceptiveField((435, 435), (32, 32))
    assert fields["avg_pool"].size is None and fields["logits"].size is None


def test_receptive_field_of_a_plain_block_equals_the_residual_one_and_attention_is_global():
    def field(**options):
        inputs = keras.Input((16, 16, 8))
        outputs = ResidualBlock(8, stride=2, attention_ratio=4, name="block", **options)(inputs)
        return convmath.receptive_field(keras.Model(inputs, outputs))["block"]

    assert field() == field(skip=False) == convmath.ReceptiveField((7, 7), (2, 2))
    assert field(attention="se").size is None


def test_spatial_attention_in_a_block_is_a_7x7_window_and_channel_attention_keeps_the_local_one():
    def block(attention):
        inputs = keras.Input((16, 16, 8))
        outputs = ResidualBlock(8, stride=2, attention=attention, attention_ratio=4, name="block")(
            inputs
        )
        return convmath.receptive_field(keras.Model(inputs, outputs))["block"]

    plain = convmath.ReceptiveField((7, 7), (2, 2))
    # The branch's 7x7 field (jump 2 after its strided conv) widened by 7x7: 7 + 6 * 2.
    assert block("spatial") == convmath.ReceptiveField((19, 19), (2, 2), (19, 19))
    assert block("se") == convmath.ReceptiveField(None, (2, 2), plain.size)
    assert block("cbam") == convmath.ReceptiveField(None, (2, 2), (19, 19))
    assert plain.local == plain.size


def test_a_resnet_with_spatial_attention_has_a_finite_receptive_field():
    options = dict(
        depths=(1, 1),
        input_shape=(16, 16, 3),
        width=0.125,
        stem="cifar",
        include_top=False,
        attention_ratio=2,
    )
    fields = {
        attention: convmath.receptive_field(
            kcnn.create_model("resnet", attention=attention, **options)
        )["stage2_block1"]
        for attention in (None, "spatial", "se")
    }
    # Without attention: stem 3x3 (3); stage 1: 3x3 (5), 3x3 (7); stage 2: 3x3/2 (9), 3x3 at
    # jump 2 (13). Spatial attention adds a 7x7 window to each block: stage 1 ends at 7 + 6 =
    # 13, stage 2 at 13 + 2 + 4 + 12 = 31.
    assert fields[None].size == (13, 13) and fields["spatial"].size == (31, 31)
    assert fields["se"].size is None and fields["se"].local == fields[None].size


@pytest.mark.parametrize("nesting", ["functional", "sequential"])
def test_receptive_field_follows_a_nested_model_and_dilation(nesting):
    layer = keras.layers.Conv2D(4, 3, dilation_rate=2, name="dilated")
    if nesting == "sequential":
        inner = keras.Sequential([keras.Input((12, 12, 4)), layer], name="backbone")
    else:
        backbone_inputs = keras.Input((12, 12, 4))
        inner = keras.Model(backbone_inputs, layer(backbone_inputs), name="backbone")
    inner(keras.Input((12, 12, 4)))  # a backbone can be called in another model first
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, strides=1, padding="same", name="first")(inputs)
    x = inner(x)
    x = SpatialAttention(7, name="spatial")(x)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x))
    fields = convmath.receptive_field(model)
    assert [name for name in fields] == ["first", "dilated", "spatial", "gap"]
    assert fields["dilated"].size == (7, 7)  # 3 + 2 * (3 - 1)
    assert fields["spatial"].size == (13, 13)
    assert fields["gap"].size is None


def test_receptive_field_refuses_layers_it_does_not_know():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.UpSampling2D(name="up")])
    with pytest.raises(ValueError, match="layer 'up' of type UpSampling2D"):
        convmath.receptive_field(model)


# ---------------------------------------------------------------------------------------------
# Parameters and multiply-accumulates
# ---------------------------------------------------------------------------------------------

PUBLISHED_MACS = [
    pytest.param("resnet18", {}, 1.81e9, id="resnet18"),
    pytest.param("alexnet", {"variant": "torchvision"}, 0.71e9, id="alexnet-torchvision"),
    pytest.param("resnet50", {}, 4.09e9, id="resnet50", marks=pytest.mark.slow),
    pytest.param("vgg16", {}, 15.47e9, id="vgg16", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "kwargs", "published"), PUBLISHED_MACS)
def test_macs_agree_with_torchvision_published_figures(name, kwargs, published):
    model = kcnn.create_model(name, **kwargs)
    count = convmath.macs(model)
    assert abs(count - published) / published < 0.01
    assert convmath.flops(model) == 2 * count


def _rows(model):
    return {row.name: row for row in convmath.layer_table(model)}


def test_layer_table_counts_every_kind_of_convolution_and_dense():
    inputs = keras.Input((10, 10, 4))
    x = keras.layers.Conv2D(8, 3, padding="same", groups=2, name="grouped")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    y = keras.layers.DepthwiseConv2D(
        3, depth_multiplier=2, strides=2, padding="same", name="depthwise"
    )(inputs)
    y = keras.layers.SeparableConv2D(8, 3, padding="same", name="separable")(
        keras.layers.ZeroPadding2D(1, name="pad")(y)
    )
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Add(name="add")([x, keras.layers.Cropping2D(1, name="crop")(y)])
    x = keras.layers.Dense(5, name="pointwise_dense")(x)
    x = keras.layers.Dense(3, name="dense")(keras.layers.Flatten(name="flatten")(x))
    model = keras.Model(inputs, x)
    rows = _rows(model)
    assert rows["grouped"].macs == 10 * 10 * 8 * (3 * 3 * 2)
    assert rows["depthwise"].macs == 5 * 5 * 8 * 9
    assert rows["separable"].macs == 7 * 7 * (8 * 9 + 8 * 8)
    assert rows["pointwise_dense"].macs == 5 * 5 * 8 * 5
    assert rows["dense"].macs == 125 * 3
    for name in ("bn", "pool", "add", "pad", "crop", "flatten"):
        assert rows[name].macs == 0
    assert rows["pool"].output_shape == (5, 5, 8) and rows["add"].kind == "Add"
    assert sum(row.params for row in rows.values()) == model.count_params()
    assert convmath.macs(model) == sum(row.macs for row in rows.values())


def test_layer_table_looks_inside_kcnn_blocks_and_attention_layers():
    inputs = keras.Input((8, 8, 8))
    x = ResidualBlock(
        16, stride=2, attention="cbam", attention_ratio=4, drop_path_rate=0.1, name="block"
    )(inputs)
    x = SqueezeExcite(4, name="se")(x)
    x = CBAM(4, name="cbam")(x)
    model = keras.Model(inputs, SpatialAttention(name="spatial")(x))
    rows = _rows(model)
    assert rows["block_conv1"].macs == 4 * 4 * 16 * 9 * 8
    assert rows["block_conv1"].output_shape == (4, 4, 16)
    assert rows["block_conv2"].macs == 4 * 4 * 16 * 9 * 16
    assert rows["block_shortcut_conv"].macs == 4 * 4 * 16 * 8
    assert rows["block_bn1"].macs == rows["block_shortcut_bn"].macs == 0
    assert rows["block_drop_path"].output_shape is None
    assert rows["se_reduce"].macs == rows["se_expand"].macs == 16 * 4
    # CBAM's channel attention runs its MLP on the average and on the max.
    assert rows["cbam_channel_reduce"].macs == 2 * 16 * 4
    assert rows["cbam_spatial_conv"].macs == rows["spatial_conv"].macs == 4 * 4 * 7 * 7 * 2
    assert sum(row.params for row in rows.values()) == model.count_params()


def test_macs_of_a_nested_model_are_those_of_its_layers():
    inner = kcnn.create_model("tiny_cnn", include_top=False)
    inputs = keras.Input(inner.input_shape[1:])
    outer = keras.Model(inputs, keras.layers.Dense(4, name="head")(inner(inputs)))
    head_macs = math.prod(inner.output_shape[1:]) * 4
    assert convmath.macs(outer) == convmath.macs(inner) + head_macs
    assert [row.name for row in convmath.layer_table(outer)][-1] == "head"


def test_layer_table_refuses_a_layer_with_weights_it_does_not_know():
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.EinsumDense("ab,bc->ac", output_shape=3, name="einsum")]
    )
    with pytest.raises(ValueError, match="layer 'einsum' of type EinsumDense"):
        convmath.layer_table(model)


@pytest.mark.parametrize(
    ("count", "text"),
    [(1_814_073_344, "1.81 G"), (714_188_480, "714.19 M"), (416_520, "416.52 K"), (12, "12")],
)
def test_format_count(count, text):
    assert convmath.format_count(count) == text


def test_models_command_prints_the_macs_column():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert cli.main(["models", "--family", "lenet"]) == 0
    header, _, row = output.getvalue().splitlines()
    assert header.index("MACs") > header.index("input shape")
    assert "32x32x1" in row and "416.52 K" in row


def test_models_command_builds_the_models_that_take_the_options_with_them():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        assert (
            cli.main(
                [
                    "models",
                    "--family",
                    "simple_cnn",
                    "--model-option",
                    "conv=separable",
                    "--model-option",
                    "norm=group",
                    "--model-option",
                    "input_shape=(16, 16, 1)",
                ]
            )
            == 0
        )
    header, _, *rows = output.getvalue().splitlines()
    assert [row.split()[0] for row in rows] == ["configurable_cnn"]  # the others take no conv
    separable = kcnn.create_model(
        "configurable_cnn", conv="separable", norm="group", input_shape=(16, 16, 1)
    )
    assert f"{separable.count_params():,}" in rows[0]
    assert "16x16x1" in rows[0] and rows[0].endswith("stage2_relu")  # after the norm
    assert convmath.format_count(convmath.macs(separable)) in rows[0]
    assert convmath.macs(separable) < convmath.macs(kcnn.create_model("configurable_cnn"))
