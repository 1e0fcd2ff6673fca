"""Every registered builder: shapes, gradients, saving, naming, parameter counts, bad arguments."""

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
from kcnn.models import gradcam_layer, stage_outputs
from tests.models.helpers import (
    COUNTED_ON_TENSORFLOW,
    SCALED_VARIANTS,
    SMALL_CLASSES,
    distinct_models,
    models_under_test,
    random_batch,
    small_kwargs,
    small_model,
    trainable_gradients,
)

# The tests of what a model is (its layers' names, the registry's facts about it) take every
# registered model on TensorFlow, the scaled variants as slow tests (make test); those that
# compute with it (a forward pass, gradients, a saved file) or build its headless form take the
# distinct models, as the export sweep does: a scaled variant's layers and blocks are its
# family's (KCNN_EXHAUSTIVE=1 takes every model).
MODEL_PARAMS = [
    pytest.param(name, marks=pytest.mark.slow) if name in SCALED_VARIANTS else name
    for name in models_under_test()
]
COMPUTED_MODELS = distinct_models()

# Trainable parameters with the default head, from the issue (torchvision's counts for the
# ImageNet models, the course's listings for the others).
PUBLISHED_COUNTS = [
    ("mlp", {}, 101_770),
    ("simple_cnn", {}, 421_642),
    ("lenet5", {}, 61_706),
    ("alexnet", {}, 62_378_344),
    ("alexnet", {"groups": 2}, 60_965_224),
    ("vgg11", {}, 132_863_336),
    ("vgg13", {}, 133_047_848),
    ("vgg16", {}, 138_357_544),
    ("vgg19", {}, 143_667_240),
    ("vgg11", {"batch_norm": True}, 132_868_840),
    ("vgg13", {"batch_norm": True}, 133_053_736),
    ("vgg16", {"batch_norm": True}, 138_365_992),
    ("vgg19", {"batch_norm": True}, 143_678_248),
    ("tiny_vgg", {}, 3_838_282),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("resnet101", {}, 44_549_160),
    ("resnet152", {}, 60_192_808),
    ("resnet50", {"groups": 32, "width_per_group": 4}, 25_028_904),  # resnext50_32x4d
    ("tiny_resnet", {}, 2_777_674),
]


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_the_scaled_variants_left_out_on_other_backends_are_registered_models():
    assert SCALED_VARIANTS < set(kcnn.list_models())


@COUNTED_ON_TENSORFLOW
@pytest.mark.parametrize(("name", "kwargs", "expected"), PUBLISHED_COUNTS)
def test_parameter_count_matches_the_reference(name, kwargs, expected):
    assert trainable_count(kcnn.create_model(name, **kwargs)) == expected


def test_tiny_cnn_is_about_ten_thousand_parameters_and_ten_times_smaller_than_the_mlp():
    tiny = trainable_count(kcnn.create_model("tiny_cnn"))
    assert 8_000 <= tiny <= 12_000
    assert trainable_count(kcnn.create_model("mlp")) >= 10 * tiny


@pytest.mark.parametrize("name", COMPUTED_MODELS)
def test_forward_gives_one_probability_row_per_image(name):
    model = small_model(name)
    x, _ = random_batch(model, batch=3)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (3, SMALL_CLASSES)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", COMPUTED_MODELS)
def test_one_training_step_gives_every_weight_a_finite_gradient(name):
    model = small_model(name)
    x, y = random_batch(model, batch=4)
    grads = trainable_gradients(model, x, y)
    assert len(grads) == len(model.trainable_variables)
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, f"{variable.path} gets no gradient"
        assert np.all(np.isfinite(grad)), f"{variable.path} has a non-finite gradient"
        assert np.any(grad != 0), f"{variable.path} has an all-zero gradient"
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    for weight in model.weights:
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(weight))), weight.path


@pytest.mark.parametrize("name", COMPUTED_MODELS)
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_include_top_false_gives_features_of_the_documented_shape(name, pooling):
    kwargs = small_kwargs(name, include_top=False, pooling=pooling)
    if name == "mlp":
        if pooling is not None:
            with pytest.raises(ValueError, match="pooling"):
                kcnn.create_model(name, **kwargs)
            return
        assert kcnn.create_model(name, **kwargs).output_shape == (None, 128)
        return
    model = kcnn.create_model(name, **kwargs)
    feature_map = stage_outputs(model)[f"stage{len(stage_outputs(model))}"]
    channels = feature_map.shape[-1]
    if pooling is None:
        assert len(model.output_shape) == 4
        assert model.output_shape[-1] == channels
        assert all(d >= 1 for d in model.output_shape[1:])
    else:
        assert model.output_shape == (None, channels)


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_layers_have_explicit_stable_names(name):
    # Keras numbers auto-generated names (conv2d, conv2d_1, ...): building the model twice in
    # one session gives the same names only if every layer was named explicitly.
    model = small_model(name)
    again = small_model(name)
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    assert model.layers[-1].name == "predictions"
    assert model.get_layer("logits").dtype_policy.name == "float32"


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_registry_records_the_gradcam_target_and_the_stages(name):
    info = kcnn.model_info(name)
    model = small_model(name)
    assert gradcam_layer(model) == info.gradcam_layer
    if info.gradcam_layer is not None:
        assert len(model.get_layer(info.gradcam_layer).output.shape) == 4
        stages = stage_outputs(model)
        assert list(stages) == [f"stage{i}" for i in range(1, len(stages) + 1)]


@pytest.mark.parametrize("name", MODEL_PARAMS)
def test_registered_default_input_shape_and_minimum_size_build(name):
    info = kcnn.model_info(name)
    model = kcnn.create_model(name, classes=3, **_thin(info))
    assert model.input_shape == (None, *info.input_shape)
    if info.min_input_size > 1 and name != "lenet5":
        size = info.min_input_size
        shape = (size, size, info.input_shape[2])
        kcnn.create_model(name, input_shape=shape, classes=3, **_thin(info))
        too_small = (size - 1, size - 1, info.input_shape[2])
        with pytest.raises(UserError, match="input_shape") as error:
            kcnn.create_model(name, input_shape=too_small, classes=3, **_thin(info))
        assert error.value.argument == "input_shape"


def _thin(info):
    return {
        "vgg": {"fc_units": 8},
        "alexnet": {"fc_units": 8},
        "resnet": {"width": 0.125},
        "resnext": {"width": 0.25},
        "wide_resnet": {"width": 0.125},
        "mobilenet": {"alpha": 0.25},
        "efficientnet": {"width": 0.25, "depth": 0.1},
        "densenet": {"growth_rate": 4, "blocks": (1, 1, 1, 1)},
        "inception": {"width": 0.125},
    }.get(info.family, {})


@pytest.mark.slow
def test_saved_models_load_in_a_fresh_process_and_predict_the_same(tmp_path):
    expected = {}
    variants = {name: (name, small_kwargs(name)) for name in COMPUTED_MODELS}
    variants["resnet18_cbam_droppath"] = (
        "resnet18",
        small_kwargs("resnet18", attention="cbam", drop_path_rate=0.1),
    )
    variants["resnet50_se_preact"] = (
        "resnet50",
        small_kwargs("resnet50", attention="se", preact=True),
    )
    variants["vgg11_bn"] = ("vgg11", small_kwargs("vgg11", batch_norm=True))
    for name, (model_name, kwargs) in variants.items():
        model = kcnn.create_model(model_name, **kwargs)
        x, _ = random_batch(model, batch=2, seed=1)
        np.save(tmp_path / f"{name}_x.npy", x)
        expected[name] = keras.ops.convert_to_numpy(model(x, training=False)).tolist()
        model.save(tmp_path / f"{name}.keras")
        keras.utils.clear_session()
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    script = textwrap.dedent(
        f"""
        import json, pathlib, numpy as np
        import keras
        import kcnn
        root = pathlib.Path({str(tmp_path)!r})
        expected = json.loads((root / "expected.json").read_text())
        for name, want in expected.items():
            model = kcnn.load_model(root / f"{{name}}.keras")
            x = np.load(root / f"{{name}}_x.npy")
            got = keras.ops.convert_to_numpy(model(x, training=False))
            np.testing.assert_allclose(got, np.array(want), rtol=1e-4, atol=1e-6, err_msg=name)
        print("ok", len(expected))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"ok {len(variants)}" in result.stdout


@pytest.mark.parametrize("name", COMPUTED_MODELS)
def test_weights_file_round_trips(name, tmp_path):
    model = small_model(name)
    path = tmp_path / f"{name}.weights.h5"
    model.save_weights(path)
    x, _ = random_batch(model)
    keras.utils.clear_session()
    reloaded = small_model(name, weights=str(path))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-5
    )


def test_weights_from_another_architecture_are_a_clear_error(tmp_path):
    path = tmp_path / "simple.weights.h5"
    kcnn.create_model("simple_cnn").save_weights(path)
    with pytest.raises(ValueError, match="does not fit 'tiny_cnn'"):
        kcnn.create_model("tiny_cnn", weights=str(path))


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("resnet18", {"input_shape": (8, 8, 3)}, "input_shape"),
        ("vgg16", {"input_shape": (16, 16, 3)}, "input_shape"),
        ("alexnet", {"input_shape": (64, 64, 3)}, "input_shape"),
        ("simple_cnn", {"classes": 0}, "classes"),
        ("resnet18", {"classes": -3}, "classes"),
        ("resnet18", {"attention": "transformer"}, "attention"),
        ("resnet50", {"drop_path_rate": -0.1}, "drop_path_rate"),
        ("resnet18", {"stem": "cifar10"}, "stem"),
        ("resnet18", {"width": 0}, "width"),
        ("resnet18", {"skip": False, "drop_path_rate": 0.1}, "drop_path_rate"),
        (
            "resnet18",
            {"attention": "se", "width": 0.125, "input_shape": (32, 32, 3)},
            "attention_ratio",
        ),
        ("simple_cnn", {"weights": "missing.weights.h5"}, "weights"),
        ("simple_cnn", {"weights": "imagenet"}, "weights"),
        ("simple_cnn", {"weights": 3}, "weights"),
        ("simple_cnn", {"input_shape": (None, None, 1)}, "input_shape"),
        ("lenet5", {"input_shape": (64, 64, 1)}, "input_shape"),
        ("simple_cnn", {"input_shape": (28, 28)}, "input_shape"),
        ("simple_cnn", {"pooling": "sum"}, "pooling"),
        ("simple_cnn", {"classifier_activation": "nope"}, "classifier_activation"),
        ("alexnet", {"groups": 3}, "groups"),
        ("alexnet", {"variant": "caffe"}, "variant"),
        ("vgg16", {"fc_units": 0}, "fc_units"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        kcnn.create_model(name, **kwargs)


def test_fully_convolutional_models_take_any_input_size_without_top():
    model = kcnn.create_model(
        "resnet18", input_shape=(None, None, 3), include_top=False, pooling="avg", width=0.125
    )
    assert model.output_shape == (None, 64)
    for size in (32, 45):
        x = np.zeros((1, size, size, 3), "float32")
        assert keras.ops.convert_to_numpy(model(x)).shape == (1, 64)


def test_input_tensor_is_used_as_the_model_input():
    tensor = keras.Input((32, 32, 3), name="my_images")
    model = kcnn.create_model("tiny_resnet", input_tensor=tensor, classes=4)
    assert model.inputs[0] is tensor
    assert model.output_shape == (None, 4)


def test_logits_head_without_activation():
    model = kcnn.create_model("simple_cnn", classifier_activation=None)
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x))
    assert not np.allclose(logits.sum(axis=1), 1.0)


def test_resnet_options_build_the_described_networks():
    plain = kcnn.create_model(
        "resnet18", input_shape=(32, 32, 3), stem="cifar", skip=False, width=0.25, classes=10
    )
    residual = kcnn.create_model(
        "resnet18", input_shape=(32, 32, 3), stem="cifar", width=0.25, classes=10
    )
    # Same layers; the plain network lacks only the projection shortcuts.
    block = plain.get_layer("stage2_block1")
    assert not block.projection and residual.get_layer("stage2_block1").projection
    assert plain.get_layer("stage1_block1").output.shape[1:] == (32, 32, 16)
    rates = [
        residual.get_layer(f"stage{s}_block{b}").drop_path_rate for s in range(1, 5) for b in (1, 2)
    ]
    assert rates == [0.0] * 8
    stochastic = kcnn.create_model(
        "resnet18", input_shape=(32, 32, 3), width=0.25, drop_path_rate=0.2
    )
    rates = [
        stochastic.get_layer(f"stage{s}_block{b}").drop_path_rate
        for s in range(1, 5)
        for b in (1, 2)
    ]
    np.testing.assert_allclose(rates, [0.2 * i / 8 for i in range(1, 9)])
    preact = kcnn.create_model("resnet34", input_shape=(32, 32, 3), preact=True, width=0.25)
    assert preact.get_layer("stage4_post_relu") is not None
    assert gradcam_layer(preact) == "stage4_post_relu"
    se = kcnn.create_model("resnet50", input_shape=(32, 32, 3), attention="se", width=0.25)
    assert se.get_layer("stage1_block1").attention_layer.name == "stage1_block1_se"
    assert trainable_count(se) > trainable_count(
        kcnn.create_model("resnet50", input_shape=(32, 32, 3), width=0.25)
    )


@COUNTED_ON_TENSORFLOW
def test_alexnet_torchvision_variant_has_torchvision_parameter_count():
    assert trainable_count(kcnn.create_model("alexnet", variant="torchvision")) == 61_100_840
