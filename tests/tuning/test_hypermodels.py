"""The search spaces: their defaults build the documented models, ``hp.Fixed`` overrides any
hyperparameter, precision and data are handled, bad input is a clear error."""

import keras
import keras_tuner
import numpy as np
import pytest

import kcnn
from kcnn.tuning import CNNHyperModel, ResNetHyperModel, SearchData


def layer_summary(model):
    return [
        (layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
    ]


def declared(hypermodel):
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


def test_cnn_space_is_the_documented_one_with_its_defaults():
    hp = declared(CNNHyperModel(input_shape=(28, 28, 1), classes=10))
    assert hp.values == {
        "conv_blocks": 2,
        "filters_1": 32,
        "filters_2": 64,
        "dense_units": 128,
        "kernel_size": 3,
        "norm": "none",
        "conv": "standard",
        "dropout": 0.5,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "l1": 0.0,
        "augment": "none",
    }
    names = [p.name for p in hp.space]
    assert "filters_3" in names and "filters_4" in names  # conditional on conv_blocks >= 3, 4


def test_cnn_defaults_build_simple_cnn_trained_with_adam_at_1e3():
    model = CNNHyperModel(input_shape=(28, 28, 1), classes=10, precision="float32").build(
        keras_tuner.HyperParameters()
    )
    assert layer_summary(model)[1:] == layer_summary(kcnn.create_model("simple_cnn"))[1:]
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.count_params() == 421_642


def test_resnet_defaults_build_resnet18_with_the_cifar_stem():
    hp = declared(ResNetHyperModel())
    assert hp.values == {
        "stage1_blocks": 2,
        "stage2_blocks": 2,
        "stage3_blocks": 2,
        "stage4_blocks": 2,
        "attention": "none",
        "width": 1.0,
        "drop_path_rate": 0.0,
        "norm": "batch",
        "conv": "standard",
        "learning_rate": 1e-3,
    }
    model = ResNetHyperModel(precision="float32").build(keras_tuner.HyperParameters())
    reference = kcnn.create_model("resnet18", stem="cifar", input_shape=(32, 32, 3), classes=10)
    assert layer_summary(model)[1:] == layer_summary(reference)[1:]


def test_fixed_values_override_the_cnn_space():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 3)
    hp.Fixed("filters_3", 16)
    hp.Fixed("norm", "batch")
    hp.Fixed("kernel_size", 5)
    hp.Fixed("dense_units", 0)
    hp.Fixed("optimizer", "sgd")
    hp.Fixed("learning_rate", 0.05)
    model = CNNHyperModel(input_shape=(28, 28, 1), classes=10, precision="float32").build(hp)
    names = [layer.name for layer in model.layers]
    assert "stage3_bn" in names and "fc1" not in names
    assert model.get_layer("stage3_conv").kernel.shape == (5, 5, 64, 16)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize(("norm", "layer"), [("none", None), ("instance", "stage1_in")])
def test_the_cnn_space_searches_the_norm_and_the_convolution(norm, layer):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("norm", norm)
    hp.Fixed("conv", "separable")
    model = CNNHyperModel(input_shape=(16, 16, 1), classes=3, precision="float32").build(hp)
    names = [layer.name for layer in model.layers]
    assert isinstance(model.get_layer("stage1_conv"), keras.layers.SeparableConv2D)
    assert not any(name.endswith("_bn") for name in names)
    assert layer is None or layer in names


def test_l1_of_the_cnn_space_penalises_the_kernels():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("l1", 1e-4)
    model = CNNHyperModel(input_shape=(16, 16, 1), classes=3, precision="float32").build(hp)
    kernels = [
        model.get_layer(name).kernel for name in ("stage1_conv", "stage2_conv", "fc1", "logits")
    ]
    expected = 1e-4 * sum(float(np.sum(np.abs(keras.ops.convert_to_numpy(k)))) for k in kernels)
    penalty = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
    assert penalty == pytest.approx(expected, rel=1e-5)


def test_fixed_values_override_the_resnet_space():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("stage2_blocks", 1)
    hp.Fixed("width", 0.25)
    hp.Fixed("attention", "se")
    hp.Fixed("drop_path_rate", 0.2)
    hp.Fixed("norm", "group")
    hp.Fixed("conv", "separable")
    model = ResNetHyperModel(
        input_shape=(16, 16, 1), classes=4, stages=2, precision="float32"
    ).build(hp)
    block = model.get_layer("stage2_block1")
    assert (block.norm, block.conv) == ("group", "separable")
    assert "stem_gn" in [layer.name for layer in model.layers]
    blocks = [layer.name for layer in model.layers if "_block" in layer.name]
    assert blocks == ["stage1_block1", "stage1_block2", "stage2_block1"]
    assert model.get_layer("stage2_block1").attention_layer.name == "stage2_block1_se"
    assert model.get_layer("stage2_block1").drop_path_rate == pytest.approx(0.2)
    assert model.output_shape == (None, 4)


def test_the_model_standardises_raw_pixels_when_built_for_a_data_source(arrays):
    info = SearchData(arrays, batch_size=16).info
    model = CNNHyperModel(info, precision="float32").build(keras_tuner.HyperParameters())
    normalize = model.layers[1]
    assert normalize.name == "normalize"
    assert model.input_shape == (None, 16, 16, 1) and model.output_shape == (None, 3)
    np.testing.assert_allclose(np.ravel(normalize.mean), 255 * np.array(info.mean), rtol=1e-5)


def test_models_are_built_under_the_precision_policy_which_is_then_restored():
    model = CNNHyperModel(input_shape=(28, 28, 1), classes=10, precision="mixed_bfloat16").build(
        keras_tuner.HyperParameters()
    )
    assert model.get_layer("stage1_conv").dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("logits").dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_more_conv_blocks_than_the_input_allows_is_a_clear_error():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 5)
    with pytest.raises(ValueError, match="conv_blocks=5"):
        CNNHyperModel(input_shape=(28, 28, 1), classes=10).build(hp)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: CNNHyperModel(input_shape=(28, 28)), "input_shape"),
        (lambda: CNNHyperModel(classes=1), "classes"),
        (lambda: CNNHyperModel(precision="float8"), "precision"),
        (lambda: CNNHyperModel(jit_compile="yes"), "jit_compile"),
        (lambda: CNNHyperModel(input_shape=(8, 8, 1), max_blocks=4), "max_blocks"),
        (lambda: ResNetHyperModel(stages=5), "stages"),
    ],
)
def test_bad_hypermodel_arguments_name_them(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_search_data_augments_sources_per_preset_but_not_ready_datasets(arrays):
    data = SearchData(arrays, batch_size=16)
    plain, validation = data.splits("none")
    light, validation_again = data.splits("light")
    assert light is not plain and validation_again is validation
    assert data.splits("light")[0] is light
    images, _ = next(iter(light))
    assert images.shape[1:] == (16, 16, 1) and 1 < float(np.max(images)) <= 255  # raw pixels
    assert data.augmentable and data.info.num_classes == 3
    assert SearchData(arrays, batch_size=16, augment="flip").augment == "flip"
    with pytest.raises(ValueError, match="augment must be None or one of .*'flip'"):
        SearchData(arrays, augment="bogus")

    ready = SearchData(plain, validation)
    assert not ready.augmentable and ready.info is None
    assert ready.splits("none") == (plain, validation)
    with pytest.raises(ValueError, match="augment='light'"):
        ready.splits("light")
    with pytest.raises(ValueError, match="validation"):
        SearchData(plain)
    with pytest.raises(ValueError, match="batch_size"):
        SearchData(arrays, batch_size=0)
