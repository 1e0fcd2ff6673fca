"""Normalization, convolution and dropout chosen by name in every builder (issue 13): each
model with each kind it takes builds, trains, saves and reloads through ``import kcnn;
keras.saving.load_model``; the norms against NumPy; the options' bad values."""

import inspect
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kcnn
from kcnn.errors import UserError
from kcnn.layers.convolution import CONVS, GroupedConv2D, computes_on_cpu, convolution
from kcnn.layers.normalization import NORMS, group_count, normalization
from kcnn.models import gradcam_layer, stage_outputs
from tests.models.helpers import random_batch, small_kwargs


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def takes(name, argument):
    return argument in inspect.signature(kcnn.model_info(name).builder).parameters


def conv_kinds(name):
    """The conv kinds ``name`` takes: none when it has no ``conv=``; only ``"standard"`` when
    its convolutions are grouped by default (ResNeXt), which a separable one cannot be."""
    parameters = inspect.signature(kcnn.model_info(name).builder).parameters
    if "conv" not in parameters:
        return ("default",)
    groups = parameters.get("groups")
    return ("standard",) if groups is not None and groups.default != 1 else CONVS


def all_layers(model):
    """Every layer of ``model``, the sublayers of kcnn's blocks included."""
    return list(model._flatten_layers(include_self=False, recursive=True))


# ---------------------------------------------------------------------------------------------
# The norms against NumPy
# ---------------------------------------------------------------------------------------------


def reference_norm(x, axes, epsilon=1e-5):
    mean = x.mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(x.var(axis=axes, keepdims=True) + epsilon)


def apply_norm(norm, x, **options):
    layer = normalization(norm, x.shape[-1], name="norm", **options)
    return numpy(layer(x, training=True))


def test_group_norm_with_one_group_is_layer_norm_and_one_group_per_channel_instance_norm():
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(2, 5, 4, 6)).astype("float32")
    layer_norm = reference_norm(x, axes=(1, 2, 3))
    instance_norm = reference_norm(x, axes=(1, 2))
    tolerance = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(apply_norm("group", x, norm_groups=1), layer_norm, **tolerance)
    np.testing.assert_allclose(apply_norm("layer", x), layer_norm, **tolerance)
    np.testing.assert_allclose(apply_norm("group", x, norm_groups=6), instance_norm, **tolerance)
    np.testing.assert_allclose(apply_norm("instance", x), instance_norm, **tolerance)
    two_groups = np.concatenate(
        [reference_norm(x[..., :3], (1, 2, 3)), reference_norm(x[..., 3:], (1, 2, 3))], axis=-1
    )
    np.testing.assert_allclose(apply_norm("group", x, norm_groups=2), two_groups, **tolerance)


@pytest.mark.parametrize(
    ("channels", "norm_groups", "groups"),
    [(64, 32, 32), (48, 32, 24), (16, 32, 16), (7, 32, 7), (7, 4, 1), (12, 5, 4), (8, 1, 1)],
)
def test_group_count_is_the_largest_divisor_of_the_channels_up_to_norm_groups(
    channels, norm_groups, groups
):
    assert group_count(channels, norm_groups) == groups
    layer = normalization("group", channels, norm_groups=norm_groups, name="gn")
    assert layer.groups == groups


def test_no_norm_and_no_layer():
    assert normalization(None, 8, name="none") is None


# ---------------------------------------------------------------------------------------------
# Separable convolutions: weights and multiply-accumulates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("c_in", "c_out"), [(4, 8), (16, 3)])
def test_separable_3x3_has_9_c_in_plus_c_in_c_out_weights_and_macs_agree(c_in, c_out):
    inputs = keras.Input((6, 6, c_in))
    model = keras.Model(inputs, convolution("separable", c_out, 3, name="sep")(inputs))
    layer = model.get_layer("sep")
    kernels = int(np.prod(layer.depthwise_kernel.shape) + np.prod(layer.pointwise_kernel.shape))
    assert kernels == 9 * c_in + c_in * c_out
    assert model.count_params() == 9 * c_in + c_in * c_out + c_out
    assert kcnn.convmath.conv_params(3, c_in, c_out, conv="separable") == model.count_params()
    assert kcnn.convmath.macs(model) == 6 * 6 * (9 * c_in + c_in * c_out)


# Grouped convolutions: Keras's numbers, computed group by group on a CPU
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strides", "dilation", "padding"), [(1, 1, "same"), (2, 1, "valid"), (1, 2, "same")]
)
def test_grouped_convolution_computes_what_keras_grouped_conv2d_computes(
    strides, dilation, padding
):
    images = np.random.default_rng(0).normal(size=(2, 9, 9, 8)).astype("float32")
    grouped = convolution(
        "standard", 12, 3, groups=4, strides=strides, dilation=dilation, padding=padding, name="g"
    )
    native = keras.layers.Conv2D(
        12, 3, groups=4, strides=strides, dilation_rate=dilation, padding=padding
    )
    assert isinstance(grouped, GroupedConv2D) and computes_on_cpu()  # the split path runs
    grouped.build(images.shape)
    native.build(images.shape)
    native.set_weights(grouped.get_weights())  # the same kernel layout
    np.testing.assert_allclose(numpy(grouped(images)), numpy(native(images)), rtol=1e-5, atol=1e-5)
    assert type(convolution("standard", 12, 3, name="plain")) is keras.layers.Conv2D


def test_a_model_with_grouped_convolutions_trains_saves_and_reloads(tmp_path):
    inputs = keras.Input((8, 8, 4))
    x = convolution("standard", 8, 3, groups=2, activation="relu", name="grouped")(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(1).normal(size=(16, 8, 8, 4)).astype("float32")
    before = numpy(model.get_layer("grouped").kernel).copy()
    model.fit(images, np.arange(16) % 3, epochs=1, verbose=0)
    assert not np.array_equal(before, numpy(model.get_layer("grouped").kernel))
    model.save(tmp_path / "grouped.keras")
    loaded = keras.saving.load_model(tmp_path / "grouped.keras")
    assert type(loaded.get_layer("grouped")) is GroupedConv2D
    np.testing.assert_allclose(numpy(loaded(images)), numpy(model(images)), rtol=1e-6)


def test_grouped_bottleneck_and_separable_basic_block_in_layer_table_and_receptive_field():
    inputs = keras.Input((8, 8, 16))
    x = kcnn.layers.BottleneckBlock(
        8, groups=4, width_per_group=32, norm="group", norm_groups=4, name="next"
    )(inputs)
    x = kcnn.layers.ResidualBlock(16, conv="separable", norm=None, name="sep")(x)
    model = keras.Model(inputs, x)
    rows = {row.name: row for row in kcnn.convmath.layer_table(model)}
    inner = 8 * 32 // 64 * 4  # 16 channels in 4 groups of 4
    assert rows["next_conv2"].macs == 8 * 8 * inner * 9 * (inner // 4)
    assert rows["next_gn2"].macs == 0 and rows["next_gn2"].kind == "GroupNormalization"
    assert rows["sep_conv1"].macs == 8 * 8 * (9 * 32 + 32 * 16)
    assert rows["sep_conv1"].kind == "SeparableConv2D"
    assert sum(row.params for row in rows.values()) == model.count_params()
    assert kcnn.convmath.receptive_field(model)["sep"].size == (7, 7)  # 3 + 2 + 2


def test_dilation_widens_the_receptive_field_of_configurable_cnn():
    model = kcnn.create_model(
        "configurable_cnn", filters=(4, 4), dilation=2, fc_units=None, input_shape=(16, 16, 1)
    )
    fields = kcnn.convmath.receptive_field(model)
    assert fields["stage1_conv"].size == (5, 5)
    assert fields["stage2_conv"].size == (5 + 4 * 2 + 1, 5 + 4 * 2 + 1)  # pool, then d=2 at jump 2


# ---------------------------------------------------------------------------------------------
# Builders: which layers each option gives
# ---------------------------------------------------------------------------------------------

NARROW = {
    "configurable_cnn": {},
    "tiny_vgg": {},
    "tiny_resnet": {"width": 0.125},
    "resnet": {"width": 0.125, "block": "bottleneck", "depths": (1, 1)},
}


@pytest.mark.parametrize("norm", ["group", "layer", "instance", None])
@pytest.mark.parametrize("name", list(NARROW))
def test_a_model_with_another_norm_holds_no_batch_normalization(name, norm):
    model = kcnn.create_model(name, **small_kwargs(name, norm=norm, **NARROW[name]))
    kinds = {type(layer).__name__ for layer in all_layers(model)}
    assert "BatchNormalization" not in kinds
    assert ("GroupNormalization" in kinds) == (norm is not None)
    convs = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Conv2D)]
    # Without a norm every convolution has a bias; with one, the VGGs' keep theirs (torchvision).
    if norm is None or name == "tiny_vgg":
        assert all(conv.use_bias for conv in convs)
    else:
        assert not any(conv.use_bias for conv in convs)


def test_batch_norm_alias_and_norm_build_the_same_model():
    alias = kcnn.create_model("configurable_cnn", batch_norm=True)
    named = kcnn.create_model("configurable_cnn", norm="batch")
    assert [layer.name for layer in alias.layers] == [layer.name for layer in named.layers]
    assert alias.get_layer("stage1_bn").__class__ is keras.layers.BatchNormalization
    assert (
        kcnn.create_model("vgg11", batch_norm=False, fc_units=8)
        .get_layer("stage1_conv1")
        .activation
        is keras.activations.relu
    )


def test_separable_convolutions_spatial_dropout_and_targeted_head():
    model = kcnn.create_model(
        "tiny_vgg", conv="separable", spatial_dropout=0.2, dropout_kind="targeted", fc_units=16
    )
    assert isinstance(model.get_layer("stage1_conv1"), keras.layers.SeparableConv2D)
    dropout = model.get_layer("stage3_spatial_dropout")
    assert isinstance(dropout, keras.layers.SpatialDropout2D) and dropout.rate == 0.2
    assert isinstance(model.get_layer("logits"), kcnn.layers.TargetedDropout)
    assert model.get_layer("logits").drop_rate == 0.5
    assert model.get_layer("logits").targ_rate == 0.5  # the paper's setting, by default
    assert "head_dropout" not in [layer.name for layer in model.layers]
    # The Grad-CAM target stays the last convolutional map at full resolution, and the stage
    # outputs are still the pooled maps.
    assert gradcam_layer(model) == "stage3_conv3"
    assert stage_outputs(model)["stage3"].shape[1:] == (4, 4, 256)


@pytest.mark.parametrize(
    ("name", "kwargs", "targeted"),
    [
        ("configurable_cnn", {"filters": (4,), "fc_units": 8}, ["logits"]),
        ("vgg11", {"fc_units": 8, "input_shape": (32, 32, 3)}, ["fc2", "logits"]),
    ],
)
def test_targeted_fraction_reaches_every_targeted_dense_layer(name, kwargs, targeted):
    model = kcnn.create_model(
        name, dropout=0.3, dropout_kind="targeted", targeted_fraction=0.9, **kwargs
    )
    found = [layer for layer in model.layers if isinstance(layer, kcnn.layers.TargetedDropout)]
    assert [layer.name for layer in found] == targeted
    assert all((layer.drop_rate, layer.targ_rate) == (0.3, 0.9) for layer in found)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targeted_fraction": 0.75}, "targeted_fraction=0.75 applies to dropout_kind='targeted'"),
        ({"targeted_fraction": 0.5}, "targeted_fraction=0.5 applies to dropout_kind='targeted'"),
        ({"dropout_kind": "targeted", "targeted_fraction": 1.5}, "targeted_fraction must be"),
    ],
)
def test_targeted_fraction_is_checked(kwargs, message):
    for name in ("configurable_cnn", "vgg11"):
        with pytest.raises(UserError, match=message) as error:
            kcnn.create_model(name, **kwargs)
        assert error.value.argument == "targeted_fraction"


@pytest.mark.parametrize(
    ("name", "kwargs", "stages", "target"),
    [
        ("configurable_cnn", {"filters": (8, 16)}, 2, "stage2_conv"),
        ("tiny_vgg", {"fc_units": 16}, 3, "stage3_conv3"),
    ],
)
def test_element_dropout_follows_the_pool_of_every_stage(name, kwargs, stages, target):
    plain = kcnn.create_model(name, **kwargs)
    model = kcnn.create_model(name, element_dropout=0.2, **kwargs)
    names = [layer.name for layer in model.layers]
    for stage in range(1, stages + 1):
        dropout = model.get_layer(f"stage{stage}_element_dropout")
        assert type(dropout) is keras.layers.Dropout and dropout.rate == 0.2
        assert names.index(f"stage{stage}_element_dropout") == names.index(f"stage{stage}_pool") + 1
    assert not any("spatial_dropout" in n for n in names)
    assert [n for n in names if "element_dropout" not in n] == [
        layer.name for layer in plain.layers
    ]
    # Dropout has no weights and keeps the shapes; Grad-CAM still reads the last convolution.
    assert model.count_params() == plain.count_params()
    assert model.output_shape == plain.output_shape
    assert [t.shape for t in stage_outputs(model).values()] == [
        t.shape for t in stage_outputs(plain).values()
    ]
    assert gradcam_layer(model) == target
    x = np.random.default_rng(0).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
    model.set_weights(plain.get_weights())
    np.testing.assert_allclose(numpy(model(x)), numpy(plain(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "target"),
    [
        ("configurable_cnn", {"norm": "group", "spatial_dropout": 0.1}, "stage2_relu"),
        ("vgg11", {"norm": "instance", "spatial_dropout": 0.1, "fc_units": 8}, "stage5_relu2"),
        ("tiny_resnet", {"norm": "layer", "preact": True, "width": 0.125}, "stage3_post_relu"),
        (
            "resnet50",
            {"norm": None, "groups": 2, "width_per_group": 32, "width": 0.125},
            "stage4_block3",
        ),
    ],
)
def test_gradcam_target_is_the_last_full_resolution_map_for_every_option(name, kwargs, target):
    model = kcnn.create_model(name, input_shape=(32, 32, 3), classes=3, **kwargs)
    assert gradcam_layer(model) == target
    last_stage = list(stage_outputs(model).values())[-1]
    assert model.get_layer(target).output.shape[1:3] in {
        last_stage.shape[1:3],
        (2 * last_stage.shape[1],) * 2,
    }


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("configurable_cnn", {"norm": "bogus"}, r"norm must be one of \('batch', 'group'"),
        ("tiny_resnet", {"norm": "bogus"}, "norm must be one of"),
        ("vgg11", {"norm_groups": 0}, "norm_groups"),
        ("resnet18", {"norm": "group", "norm_groups": 0}, "norm_groups"),
        ("configurable_cnn", {"spatial_dropout": 1.5}, "spatial_dropout"),
        ("tiny_vgg", {"spatial_dropout": -0.1}, "spatial_dropout"),
        ("configurable_cnn", {"element_dropout": 1.5}, "element_dropout must be a number in"),
        ("tiny_vgg", {"element_dropout": -0.1}, "element_dropout must be a number in"),
        (
            "configurable_cnn",
            {"spatial_dropout": 0.1, "element_dropout": 0.2},
            "spatial_dropout=0.1 and element_dropout=0.2 were both given",
        ),
        (
            "vgg11",
            {"spatial_dropout": 0.3, "element_dropout": 0.1},
            "spatial_dropout=0.3 and element_dropout=0.1 were both given",
        ),
        ("configurable_cnn", {"conv": "x"}, r"conv must be one of \('standard', 'separable'\)"),
        ("resnet34", {"conv": "x"}, "conv must be one of"),
        ("configurable_cnn", {"dilation": 0}, "dilation"),
        ("configurable_cnn", {"dropout_kind": "spatial"}, r"dropout_kind must be one of"),
        ("resnet50", {"groups": 0}, "groups"),
        ("resnet50", {"conv": "separable", "groups": 2}, "groups"),
        ("resnet18", {"groups": 2}, "bottleneck"),
        ("configurable_cnn", {"batch_norm": True, "norm": "group"}, "batch_norm"),
        ("vgg11", {"batch_norm": "yes"}, "batch_norm"),
    ],
)
def test_bad_options_raise_value_error_naming_the_argument_and_the_choices(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        kcnn.create_model(name, **kwargs)


# ---------------------------------------------------------------------------------------------
# Build, train one step, save, reload in a fresh process with `import kcnn; keras.saving...`
# ---------------------------------------------------------------------------------------------

TINY = {
    "configurable_cnn": dict(filters=(4, 8), fc_units=8, input_shape=(16, 16, 1)),
    "tiny_resnet": dict(width=0.125, input_shape=(16, 16, 3)),
    "resnet": dict(block="bottleneck", depths=(1, 1), width=0.125, input_shape=(16, 16, 3)),
}


def representative_variants():
    """Every norm and every conv kind on one model of each family (fast)."""
    variants = {}
    for norm in NORMS:
        for name in ("configurable_cnn", "tiny_resnet"):
            variants[f"{name}-{norm}"] = (name, dict(TINY[name], norm=norm))
    variants["configurable_cnn-separable"] = (
        "configurable_cnn",
        dict(
            TINY["configurable_cnn"],
            conv="separable",
            dilation=2,
            spatial_dropout=0.1,
            dropout_kind="targeted",
            norm="group",
        ),
    )
    variants["configurable_cnn-element_dropout"] = (
        "configurable_cnn",
        dict(TINY["configurable_cnn"], element_dropout=0.1),
    )
    variants["tiny_resnet-separable"] = (
        "tiny_resnet",
        dict(
            TINY["tiny_resnet"],
            conv="separable",
            preact=True,
            norm="instance",
            attention="cbam",
            attention_ratio=2,
        ),
    )
    variants["resnext-group"] = (
        "resnet",
        dict(
            TINY["resnet"],
            groups=2,
            width_per_group=32,
            norm="group",
            norm_groups=4,
        ),
    )
    variants["tiny_vgg-separable"] = (
        "tiny_vgg",
        dict(
            conv="separable",
            norm="layer",
            spatial_dropout=0.1,
            dropout_kind="targeted",
            fc_units=8,
        ),
    )
    return variants


def registry_variants():
    """Every registered model with every norm and conv kind it takes (slow)."""
    variants = {}
    for name in kcnn.list_models():
        norms = NORMS if takes(name, "norm") else ("default",)
        convs = conv_kinds(name)
        for norm in norms:
            for conv in convs:
                options = {}
                if norm != "default":
                    options["norm"] = norm
                if conv != "default":
                    options["conv"] = conv
                variants[f"{name}-{norm}-{conv}"] = (name, small_kwargs(name, **options))
    return variants


def save_trained(variants, root, policy):
    """Build and train each variant one step under ``policy``, save it, and return its
    predictions on a fixed batch."""
    expected = {}
    for label, (name, kwargs) in variants.items():
        keras.config.set_dtype_policy(policy)  # clear_session resets it
        model = kcnn.create_model(name, **{"classes": 3, **kwargs})
        x, y = random_batch(model, batch=2, seed=1)
        model.compile(
            optimizer=keras.optimizers.SGD(0.01),
            loss="sparse_categorical_crossentropy",
            run_eagerly=True,
        )  # one step: tracing or XLA would cost more than it saves
        loss = model.train_on_batch(x, y)
        assert np.isfinite(loss), label
        if policy != "float32":
            assert model.get_layer("logits").compute_dtype == "float32"
            assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
        np.save(root / f"{label}_x.npy", x)
        expected[label] = numpy(model(x, training=False)).tolist()
        model.save(root / f"{label}.keras")
        keras.utils.clear_session(free_memory=False)
    keras.config.set_dtype_policy("float32")
    (root / "expected.json").write_text(json.dumps(expected))
    return expected


LOAD_SCRIPT = textwrap.dedent(
    """
    import json, pathlib, sys
    import numpy as np
    import kcnn
    import keras
    root = pathlib.Path(sys.argv[1])
    expected = json.loads((root / "expected.json").read_text())
    for label, want in expected.items():
        model = keras.saving.load_model(root / f"{label}.keras")
        got = keras.ops.convert_to_numpy(model(np.load(root / f"{label}_x.npy"), training=False))
        np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-5, err_msg=label)
    print("ok", len(expected))
    """
)


def assert_reload_in_fresh_process(root, count):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ok {count}" in result.stdout


# The smallest models that hold every norm, both conv kinds and both kinds of block.
FAST_VARIANTS = ("configurable_cnn", "tiny_resnet-separable", "resnext-group")


def test_every_norm_and_conv_kind_trains_saves_and_reloads_with_plain_keras(tmp_path):
    variants = {
        label: variant
        for label, variant in representative_variants().items()
        if label.startswith(FAST_VARIANTS)
    }
    save_trained(variants, tmp_path, "float32")
    assert_reload_in_fresh_process(tmp_path, len(variants))


@pytest.mark.slow
def test_every_norm_and_conv_kind_on_every_family(tmp_path):
    # The representative variants the test above leaves out: the two take every one.
    variants = {
        label: variant
        for label, variant in representative_variants().items()
        if not label.startswith(FAST_VARIANTS)
    }
    save_trained(variants, tmp_path, "float32")
    assert_reload_in_fresh_process(tmp_path, len(variants))


@pytest.mark.slow
def test_every_norm_and_conv_kind_under_mixed_bfloat16(tmp_path):
    variants = representative_variants()
    save_trained(variants, tmp_path, "mixed_bfloat16")
    assert_reload_in_fresh_process(tmp_path, len(variants))


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow" or not os.environ.get("KCNN_EXHAUSTIVE"),
    reason="the whole cross product (over ten minutes on 2 cores) runs on TensorFlow with "
    "KCNN_EXHAUSTIVE=1; make test checks every norm and conv kind on each family's "
    "representative above",
)
def test_every_registered_model_with_every_norm_and_conv_it_takes(tmp_path):
    variants = registry_variants()
    save_trained(variants, tmp_path, "float32")
    assert_reload_in_fresh_process(tmp_path, len(variants))
