"""The configurable builders the hyperparameter search explores: `configurable_cnn` and the
generic `resnet` (depths per stage). Their defaults and special cases must be the named models."""

import numpy as np
import pytest

import kcnn
from kcnn.models import configurable_cnn, gradcam_layer, resnet, stage_outputs


def layer_summary(model):
    """Name, class and weight shapes of every layer: equal summaries mean the same network."""
    return [
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
    ]


def test_configurable_cnn_defaults_are_simple_cnn_and_tiny_settings_are_tiny_cnn():
    assert layer_summary(configurable_cnn()) == layer_summary(kcnn.create_model("simple_cnn"))
    tiny = configurable_cnn(filters=(8, 16), fc_units=None, dropout=0.0)
    assert layer_summary(tiny) == layer_summary(kcnn.create_model("tiny_cnn"))


def test_configurable_cnn_options_build_the_described_layers():
    model = configurable_cnn(
        filters=(8, 16, 32), kernel_size=5, batch_norm=True, fc_units=0, dropout=0.0, classes=4
    )
    names = [layer.name for layer in model.layers]
    assert names[:5] == ["input", "stage1_conv", "stage1_bn", "stage1_relu", "stage1_pool"]
    assert "fc1" not in names and "head_dropout" not in names
    conv = model.get_layer("stage2_conv")
    assert conv.kernel.shape == (5, 5, 8, 16) and not conv.use_bias
    assert list(stage_outputs(model)) == ["stage1", "stage2", "stage3"]
    assert gradcam_layer(model) == "stage3_relu"
    # 28 -> 14 -> 7 -> 3: the flattened map is 3x3x32.
    assert model.get_layer("flatten").output.shape[-1] == 3 * 3 * 32
    x = np.zeros((2, 28, 28, 1), "float32")
    assert model.predict(x, verbose=0).shape == (2, 4)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"filters": ()}, "filters"),
        ({"filters": (32, 0)}, "filters"),
        ({"filters": "32"}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"batch_norm": "yes"}, "batch_norm"),
        ({"fc_units": -1}, "fc_units"),
        ({"dropout": 1.0}, "dropout"),
        # Five 2x2 poolings need 32 pixels; Fashion-MNIST has 28.
        ({"filters": (8, 8, 8, 8, 8)}, "input_shape"),
    ],
)
def test_configurable_cnn_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        configurable_cnn(**kwargs)


def test_generic_resnet_builds_the_registered_resnets():
    small = dict(input_shape=(32, 32, 3), classes=10, width=0.25)
    assert layer_summary(
        resnet(depths=(2, 2, 2, 2), stem="cifar", name="resnet18", **small)
    ) == layer_summary(kcnn.create_model("resnet18", stem="cifar", **small))
    assert layer_summary(
        resnet(depths=(3, 4, 6, 3), block="bottleneck", name="resnet50", **small)
    ) == layer_summary(kcnn.create_model("resnet50", **small))
    assert layer_summary(
        resnet(depths=(2, 2, 2), stem="cifar", name="tiny_resnet", **small)
    ) == layer_summary(kcnn.create_model("tiny_resnet", **small))


def test_generic_resnet_takes_any_depth_per_stage():
    model = resnet(
        depths=(1, 3, 2),
        stem="cifar",
        input_shape=(28, 28, 1),
        classes=5,
        width=0.25,
        attention="se",
        drop_path_rate=0.2,
    )
    blocks = [layer.name for layer in model.layers if "_block" in layer.name]
    assert blocks == [
        "stage1_block1",
        "stage2_block1",
        "stage2_block2",
        "stage2_block3",
        "stage3_block1",
        "stage3_block2",
    ]
    assert gradcam_layer(model) == "stage3_block2"
    np.testing.assert_allclose(model.get_layer("stage3_block2").drop_path_rate, 0.2)
    assert model.get_layer("stage3_block2").output.shape[1:] == (7, 7, 64)
    assert model.predict(np.zeros((1, 28, 28, 1), "float32"), verbose=0).shape == (1, 5)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"depths": ()}, "depths"),
        ({"depths": (2, 2, 2, 2, 2)}, "depths"),
        ({"depths": (2, 0)}, "depths"),
        ({"block": "wide"}, "block"),
        ({"attention": "eca"}, "attention"),
    ],
)
def test_generic_resnet_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        resnet(input_shape=(32, 32, 3), width=0.25, **kwargs)
