"""The modern architectures: MobileNetV2, EfficientNet-B0..B3, DenseNet-121, Inception-v3,
ResNeXt-50 and Wide ResNet-50: parameter counts, stages, Grad-CAM targets, their options
(padding convention, stochastic depth, SE, small-input stems) and bad arguments. Runs on every
Keras backend (no TensorFlow import); the full-size parameter counts on TensorFlow alone."""

import keras
import numpy as np
import pytest

import kcnn
from kcnn.models import gradcam_layer, stage_outputs
from kcnn.models.units import UnitOptions, conv_unit, make_divisible, strided_padding
from tests.models.helpers import COUNTED_ON_TENSORFLOW


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# torchvision's counts with 1000 classes; a few seconds to build each on two cores.
@COUNTED_ON_TENSORFLOW
@pytest.mark.parametrize(
    ("name", "expected"), [("mobilenet_v2", 3_504_872), ("efficientnet_b0", 5_288_548)]
)
def test_parameter_count_matches_torchvision(name, expected):
    assert trainable_count(kcnn.create_model(name)) == expected


@pytest.mark.slow
@COUNTED_ON_TENSORFLOW
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("efficientnet_b1", 7_794_184),
        ("efficientnet_b2", 9_109_994),
        ("efficientnet_b3", 12_233_232),
        ("densenet121", 7_978_856),
        ("resnext50_32x4d", 25_028_904),
        ("wide_resnet50_2", 68_883_240),
    ],
)
def test_parameter_count_of_the_larger_models_matches_torchvision(name, expected):
    assert trainable_count(kcnn.create_model(name)) == expected


@pytest.mark.slow
@COUNTED_ON_TENSORFLOW
def test_inception_v3_has_the_trainable_parameters_of_keras_applications():
    reference = keras.applications.InceptionV3(weights=None)
    expected = trainable_count(reference)
    del reference
    keras.utils.clear_session(free_memory=False)
    model = kcnn.create_model("inception_v3")
    assert trainable_count(model) == expected == 23_817_352
    assert model.count_params() == 23_851_784


def test_alpha_scales_mobilenet_v2_and_keeps_1280_features_below_one():
    half = kcnn.create_model(
        "mobilenet_v2", alpha=0.5, include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    assert half.get_layer("stem_conv").filters == 16
    assert half.get_layer("stage5_block4_project_conv").filters == 160
    assert half.output_shape == (None, 1280)


# Stage outputs (height, channels) at 64x64 with thin configurations, and the Grad-CAM target.
STAGES = [
    (
        "mobilenet_v2",
        {"alpha": 0.25},
        [(32, 8), (16, 8), (8, 8), (4, 24), (2, 1280)],
        "stage5_top_act",
    ),
    (
        "efficientnet_b0",
        {"width": 0.25},
        [(32, 8), (16, 8), (8, 16), (4, 32), (2, 320)],
        "stage5_top_act",
    ),
    (
        "efficientnet_b3",
        {"width": 0.25, "depth": 0.5},
        [(32, 8), (16, 8), (8, 16), (4, 32), (2, 384)],
        "stage5_top_act",
    ),
    (
        "densenet121",
        {"growth_rate": 4, "blocks": (1, 2, 1, 2)},
        [(16, 12), (8, 14), (4, 11), (2, 13)],
        "stage4_act",
    ),
    ("inception_v3", {"width": 0.125}, [(7, 36), (3, 96), (1, 256)], "stage3_block3_concat"),
    ("resnext50_32x4d", {"width": 0.25}, [(16, 64), (8, 128), (4, 256), (2, 512)], "stage4_block3"),
    ("wide_resnet50_2", {"width": 0.125}, [(16, 32), (8, 64), (4, 128), (2, 256)], "stage4_block3"),
]


@pytest.mark.parametrize(("name", "kwargs", "stages", "target"), STAGES)
def test_stage_outputs_halve_the_resolution_and_gradcam_targets_the_last_map(
    name, kwargs, stages, target
):
    size = 75 if name == "inception_v3" else 64
    model = kcnn.create_model(name, input_shape=(size, size, 3), classes=3, **kwargs)
    outputs = stage_outputs(model)
    assert [(o.shape[1], o.shape[-1]) for o in outputs.values()] == stages
    assert all(o.shape[1] == o.shape[2] for o in outputs.values())
    assert gradcam_layer(model) == target == kcnn.model_info(name).gradcam_layer
    assert model.get_layer(target).output.shape[1:] == list(outputs.values())[-1].shape[1:]


@pytest.mark.parametrize(
    ("name", "kwargs", "final_size"),
    [
        ("mobilenet_v2", {"alpha": 0.25}, 4),
        ("efficientnet_b0", {"width": 0.25, "depth": 0.1}, 4),
        ("densenet121", {"growth_rate": 4, "blocks": (1, 1, 1, 1)}, 4),
        ("inception_v3", {"width": 0.125}, 7),
    ],
)
def test_cifar_stem_keeps_small_images_large_enough(name, kwargs, final_size):
    model = kcnn.create_model(name, input_shape=(32, 32, 3), stem="cifar", classes=3, **kwargs)
    last = list(stage_outputs(model).values())[-1]
    assert last.shape[1:3] == (final_size, final_size)
    imagenet_size = 75 if name == "inception_v3" else 32
    with pytest.raises(ValueError, match="input_shape"):
        kcnn.create_model(name, input_shape=(imagenet_size - 1, imagenet_size - 1, 3), **kwargs)


def test_strided_padding_is_symmetric_or_keras_applications_correct_pad():
    assert strided_padding(3, (32, 32), "symmetric") == ((1, 1), (1, 1))
    assert strided_padding(3, (32, 31), "asymmetric") == ((0, 1), (1, 1))
    assert strided_padding(5, (32, None), "asymmetric") == ((1, 2), (1, 2))
    symmetric = kcnn.create_model("efficientnet_b0", input_shape=(32, 32, 3), width=0.25)
    asymmetric = kcnn.create_model(
        "efficientnet_b0", input_shape=(32, 32, 3), width=0.25, strided_padding="asymmetric"
    )
    assert symmetric.get_layer("stage3_block1_dw_pad").padding == ((2, 2), (2, 2))
    assert asymmetric.get_layer("stage3_block1_dw_pad").padding == ((1, 2), (1, 2))
    assert [layer.name for layer in symmetric.layers] == [layer.name for layer in asymmetric.layers]


@pytest.mark.parametrize("size", [8, 9])
def test_asymmetric_padding_computes_keras_same_padding(size):
    # Keras Applications' correct_pad then a "valid" convolution is TensorFlow's "same".
    x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
    inputs = keras.Input((size, size, 3))
    padded = keras.Model(
        inputs,
        conv_unit(
            inputs,
            4,
            3,
            UnitOptions(norm=None, strided_padding="asymmetric"),
            prefix="u",
            strides=2,
            activation=None,
        ),
    )
    same = keras.layers.Conv2D(4, 3, strides=2, padding="same")
    same.build((None, size, size, 3))
    same.set_weights(padded.get_layer("u_conv").get_weights())
    np.testing.assert_allclose(numpy(padded(x)), numpy(same(x)), atol=1e-5)


def test_efficientnet_mbconv_has_swish_se_on_a_quarter_of_its_input_and_linear_drop_path():
    model = kcnn.create_model("efficientnet_b0", input_shape=(32, 32, 3), classes=3)
    se = model.get_layer("stage2_block2_se")
    assert isinstance(se, kcnn.layers.SqueezeExcite)
    assert se.activation == "swish" and se.reduce.units == 24 // 4
    assert model.get_layer("stage1_block1_se").reduce.units == 32 // 4
    rates = {
        layer.name: layer.rate for layer in model.layers if isinstance(layer, kcnn.layers.DropPath)
    }
    # Blocks 0..15; the ones with a shortcut (stride 1, same width) hold a DropPath.
    assert rates["stage2_block2_drop_path"] == pytest.approx(0.2 * 2 / 16)
    assert rates["stage5_block4_drop_path"] == pytest.approx(0.2 * 14 / 16)
    assert len(rates) == 9
    assert not any(
        isinstance(layer, kcnn.layers.DropPath)
        for layer in kcnn.create_model(
            "efficientnet_b0", input_shape=(32, 32, 3), drop_path_rate=0.0
        ).layers
    )


def test_efficientnet_variants_scale_width_depth_and_resolution():
    b3 = kcnn.create_model("efficientnet_b3", width=0.25)
    assert b3.input_shape == (None, 300, 300, 3)
    blocks = {
        layer.name.split("_")[1] for layer in b3.layers if layer.name.startswith("stage5_block")
    }
    assert len(blocks) == 6 + 2  # ceil(4 * 1.4) + ceil(1 * 1.4)
    assert b3.get_layer("head_dropout").rate == 0.3
    assert make_divisible(32 * 1.2) == 40 and make_divisible(1280 * 1.1) == 1408


def test_mobilenet_attention_drop_path_and_group_norm():
    model = kcnn.create_model(
        "mobilenet_v2",
        alpha=0.25,
        input_shape=(32, 32, 3),
        attention="cbam",
        attention_ratio=4,
        drop_path_rate=0.1,
        norm="group",
        norm_groups=4,
    )
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "BatchNormalization" not in kinds and "GroupNormalization" in kinds
    assert isinstance(model.get_layer("stage3_block2_cbam"), kcnn.layers.CBAM)
    assert model.get_layer("stage3_block2_drop_path").rate == pytest.approx(0.1 * 4 / 17)


def test_inception_norm_scale_and_resnext_groups():
    plain = kcnn.create_model("inception_v3", width=0.125, input_shape=(75, 75, 3))
    scaled = kcnn.create_model(
        "inception_v3", width=0.125, input_shape=(75, 75, 3), norm_scale=True
    )
    assert not plain.get_layer("stem1_bn").scale and scaled.get_layer("stem1_bn").scale
    assert trainable_count(scaled) - trainable_count(plain) == sum(
        layer.gamma.shape[0]
        for layer in scaled.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    resnext = kcnn.create_model("resnext50_32x4d", width=0.25, input_shape=(32, 32, 3))
    assert resnext.get_layer("stage1_block1").groups == 32
    assert resnext.get_layer("stage1_block1").inner_channels == 32


def test_efficientnet_saves_and_loads_with_its_swish_squeeze_excite(tmp_path):
    model = kcnn.create_model(
        "efficientnet_b0", width=0.25, depth=0.4, input_shape=(32, 32, 3), classes=3
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("stage4_block2_se").activation == "swish"
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("mobilenet_v2", {"alpha": 0}, "alpha"),
        ("mobilenet_v2", {"stem": "tiny"}, "stem"),
        ("mobilenet_v2", {"strided_padding": "same"}, "strided_padding"),
        ("mobilenet_v2", {"attention": "se", "attention_ratio": 64}, "attention_ratio"),
        ("mobilenet_v2", {"drop_path_rate": 1.0}, "drop_path_rate"),
        ("mobilenet_v2", {"input_shape": (31, 31, 3)}, "input_shape"),
        ("efficientnet_b0", {"dropout": -0.1}, "dropout"),
        ("efficientnet_b0", {"width": 0}, "width"),
        ("efficientnet_b1", {"depth": "deep"}, "depth"),
        ("efficientnet_b2", {"attention": "transformer"}, "attention"),
        ("efficientnet_b3", {"width_coefficient": 2.0}, "width_coefficient"),
        ("efficientnet_b0", {"norm": "batchnorm"}, "norm"),
        ("densenet121", {"growth_rate": 0}, "growth_rate"),
        ("densenet121", {"blocks": (6, 12, 24)}, "blocks"),
        ("densenet121", {"blocks": "6,12,24,16"}, "blocks"),
        ("inception_v3", {"input_shape": (74, 74, 3)}, "input_shape"),
        ("inception_v3", {"norm_scale": "yes"}, "norm_scale"),
        ("inception_v3", {"width": -1}, "width"),
        ("resnext50_32x4d", {"groups": 0}, "groups"),
        ("wide_resnet50_2", {"attention": "x"}, "attention"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        kcnn.create_model(name, **kwargs)


def test_squeeze_excite_refuses_an_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        kcnn.layers.SqueezeExcite(4, activation="wiggle")
