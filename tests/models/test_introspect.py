"""`kcnn.models.introspect` finds stages, blocks, the Grad-CAM target, the BatchNormalization
layers and the parts of composite layers, in every registry model and in Keras Applications
models."""

import keras
import pytest

import kcnn
from kcnn.layers import CBAM, BottleneckBlock, ResidualBlock, SqueezeExcite
from kcnn.models import introspect
from tests.models.helpers import models_under_test, small_model

# Those that take more than a couple of seconds to build, even small, run with the slow tests.
HEAVY = {
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "inception_v3",
    "mobilenet_v2",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "wide_resnet50_2",
}
ALL_MODELS = [
    pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name
    for name in models_under_test()
]


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_registry_model_is_found_through(name):
    model = small_model(name)
    every = introspect.walk(model)
    assert set(map(id, model.layers[1:])) <= set(map(id, every))
    # Each BatchNormalization layer is found once, those inside kcnn's blocks included.
    reference = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    found = introspect.batchnorm_layers(model)
    assert len(found) == len(reference) and set(map(id, found)) == set(map(id, reference))
    groups = introspect.blocks(model)
    assert groups[0][0] == "stem"
    assert sum(len(layers) for _, layers in groups) == len(model.layers) - 1
    target = introspect.gradcam_layer(model)
    if target is None:
        assert name == "mlp" and not introspect.stage_outputs(model)
        return
    assert introspect.has_feature_map(introspect.find_layer(model, target))
    assert target in introspect.feature_map_layers(model)
    stages = introspect.stage_output_layers(model)
    assert stages and [model.get_layer(n).output for n in stages] == list(
        introspect.stage_outputs(model).values()
    )


def test_resnet18_has_torchvisions_20_batchnorm_layers_and_one_block_per_residual_block():
    model = kcnn.create_model("resnet18", input_shape=(32, 32, 3), classes=3)
    assert len(introspect.batchnorm_layers(model)) == 20  # stem 1, 8 blocks x 2, 3 shortcuts
    names = [name for name, _ in introspect.blocks(model)]
    assert names == ["stem"] + [f"stage{s}_block{b}" for s in range(1, 5) for b in (1, 2)]


def test_composite_layers_list_their_parts_in_order():
    inputs = keras.Input((8, 8, 16))
    block = BottleneckBlock(8, stride=2, attention="cbam", attention_ratio=4, name="b")
    block(inputs)
    parts = [layer.name for layer in introspect.parts(block)]
    assert parts == [
        "b_conv1",
        "b_bn1",
        "b_conv2",
        "b_bn2",
        "b_conv3",
        "b_bn3",
        "b_shortcut_conv",
        "b_shortcut_bn",
        "b_cbam",
    ]
    cbam = introspect.parts(block)[-1]
    assert isinstance(cbam, CBAM)
    assert [layer.name for layer in introspect.parts(cbam)] == ["b_cbam_channel", "b_cbam_spatial"]
    assert [layer.name for layer in introspect.walk(cbam)] == [
        "b_cbam_channel",
        "b_cbam_channel_reduce",
        "b_cbam_channel_expand",
        "b_cbam_spatial",
        "b_cbam_spatial_conv",
    ]
    assert ResidualBlock(4, name="unbuilt").parts() == []
    se = SqueezeExcite(2, name="se")
    se(keras.Input((4, 4, 8)))
    assert [layer.name for layer in se.parts()] == ["se_reduce", "se_expand"]


def test_a_backbone_nested_in_a_model_is_searched():
    backbone = kcnn.create_model("tiny_cnn", include_top=False, pooling="avg")
    inputs = keras.Input(backbone.input_shape[1:])
    model = keras.Model(inputs, keras.layers.Dense(3)(backbone(inputs)))
    assert introspect.nested_models(model) == [backbone]
    assert introspect.gradcam_layer(model) == introspect.gradcam_layer(backbone)
    assert introspect.find_layer(model, "stage1_conv") is backbone.get_layer("stage1_conv")
    assert introspect.holds(model, backbone.get_layer("stage1_conv"))
    with pytest.raises(ValueError, match="no layer named 'nope'.*stage1_conv"):
        introspect.find_layer(model, "nope")


# (application, input size, blocks after the stem: the families' published counts)
APPLICATIONS = [
    pytest.param("InceptionV3", 75, [f"mixed{i}" for i in range(11)], marks=pytest.mark.slow),
    pytest.param(
        "MobileNet", 32, [f"conv_dw_pw_{i}" for i in range(1, 14)], marks=pytest.mark.slow
    ),
    pytest.param("MobileNetV2", 32, [f"block_{i}" for i in range(1, 17)], marks=pytest.mark.slow),
    pytest.param(
        "ResNet50",
        32,
        [f"conv{s}_block{b}" for s, n in zip(range(2, 6), (3, 4, 6, 3)) for b in range(1, n + 1)],
        marks=pytest.mark.slow,
    ),
    ("VGG16", 32, [f"block{i}" for i in range(1, 6)]),
]


@pytest.mark.parametrize(("application", "size", "expected"), APPLICATIONS)
def test_keras_applications_blocks_follow_their_family(application, size, expected):
    model = getattr(keras.applications, application)(
        weights=None, include_top=False, input_shape=(size, size, 3)
    )
    groups = introspect.blocks(model)
    assert [name for name, _ in groups] == ["stem", *expected]
    assert sum(len(layers) for _, layers in groups) == len(model.layers) - 1
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert introspect.batchnorm_layers(model) == bns
    target = introspect.gradcam_layer(model)
    assert target == introspect.resolution_outputs(model)[-1]
    assert introspect.has_feature_map(model.get_layer(target))
    if application == "InceptionV3":
        _check_inception_blocks(dict(groups))


def _check_inception_blocks(groups):
    """InceptionV3's blocks end at their concatenation, its stem at the second max pool."""
    assert all(layers[-1].name == name for name, layers in groups.items() if name != "stem")
    assert isinstance(groups["stem"][-1], keras.layers.MaxPooling2D)
    assert len(groups["stem"]) == 5 * 3 + 2  # 5 conv-BN-ReLU units, 2 max pools
    assert "mixed9_0" in [layer.name for layer in groups["mixed9"]]


@pytest.mark.slow
def test_resolution_outputs_of_resnet50_are_its_stage_outputs():
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    assert introspect.resolution_outputs(model) == [
        "conv1_relu",
        "conv2_block3_out",
        "conv3_block4_out",
        "conv4_block6_out",
        "conv5_block3_out",
    ]
