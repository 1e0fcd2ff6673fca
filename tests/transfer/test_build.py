"""kcnn.transfer.build: strategies, BatchNormalization in inference mode, preprocessing inside the
model, weights files, mixed precision, and the layers Grad-CAM needs."""

import importlib
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kcnn
from kcnn import transfer
from kcnn.models import find_layer, gradcam_layer
from tests.transfer.conftest import (
    KCNN_BACKBONE,
    KCNN_OPTIONS,
    SHAPE,
    tiny_model,
    values,
    weights_of,
)

APPLICATIONS = (
    "ResNet50",
    "ResNet50V2",
    "VGG16",
    "MobileNetV2",
    "MobileNetV3Small",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ConvNeXtTiny",
    "DenseNet121",
)


def _fit_step(model, images, learning_rate=1e-2):
    """One epoch of two batches, eagerly (tracing a graph costs more than the step here)."""
    x, y = images
    model.compile(
        keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", run_eagerly=True
    )
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)


def _moving_statistics(model):
    return [w for w in model.weights if "moving_" in w.path]


def _changed(before, after):
    return [not np.array_equal(a, b) for a, b in zip(before, after)]


@pytest.mark.parametrize("backbone", [KCNN_BACKBONE, "MobileNetV3Small"])
def test_frozen_step_keeps_every_backbone_weight_and_bn_statistic(backbone, images):
    options = KCNN_OPTIONS if backbone == KCNN_BACKBONE else None
    model = transfer.build(
        backbone, 3, "frozen", weights=None, input_shape=SHAPE, backbone_options=options
    )
    base = transfer.backbone_of(model)
    assert _moving_statistics(base), "the backbone must have BatchNormalization statistics"
    before, head = weights_of(base), weights_of(model.get_layer("logits"))
    _fit_step(model, images)
    assert not any(_changed(before, weights_of(base)))
    assert all(_changed(head, weights_of(model.get_layer("logits"))))
    assert {w.path for w in model.trainable_weights} == {"logits/kernel", "logits/bias"}


def test_partly_frozen_backbone_trains_its_top_blocks_with_bn_in_inference_mode(images):
    model = tiny_model("progressive")
    base = transfer.backbone_of(model)
    transfer.set_trainable(model, 2)
    top = {layer.name for _, layers in transfer.blocks(base)[-2:] for layer in layers}
    assert top == {"stage3_block1", "stage3_block2"}
    before = {w.path: np.array(w.numpy()) for w in base.weights}
    _fit_step(model, images)
    for weight in base.weights:
        changed = not np.array_equal(before[weight.path], weight.numpy())
        in_top = weight.path.split("/")[0] in top
        batchnorm = "_bn" in weight.path.split("/")[1]
        assert changed == (in_top and not batchnorm), weight.path


def test_finetune_from_weights_changes_the_backbone_but_not_bn_statistics(images, tmp_path):
    path = transfer.save_backbone_weights(tiny_model(), tmp_path / "source.weights.h5")
    model = tiny_model("finetune", weights=str(path))
    base = transfer.backbone_of(model)
    kernels = [w for w in base.trainable_weights if w.path.endswith("kernel")]
    statistics = _moving_statistics(base)
    kernels_before, statistics_before = values(kernels), values(statistics)
    _fit_step(model, images)
    assert all(_changed(kernels_before, values(kernels)))
    assert not any(_changed(statistics_before, values(statistics)))
    assert not transfer.batchnorm_trains(model)


def test_finetune_from_scratch_trains_bn_statistics_too(images):
    model = tiny_model("finetune", weights=None)
    base = transfer.backbone_of(model)
    statistics = _moving_statistics(base)
    before = values(statistics)
    _fit_step(model, images)
    assert all(_changed(before, values(statistics)))
    assert transfer.batchnorm_trains(model)


def test_strategies_set_the_trainable_parameters():
    frozen, finetune = tiny_model("frozen"), tiny_model("finetune")
    head = 64 * 3 + 3  # tiny_resnet's last stage has 256 * 0.25 channels
    assert transfer.trainable_parameters(frozen) == head
    assert transfer.trainable_parameters(tiny_model("progressive")) == head
    base = transfer.backbone_of(finetune)
    assert transfer.trainable_parameters(finetune) == head + transfer.trainable_parameters(base)
    transfer.set_trainable(frozen, "all", train_batchnorm=True)
    assert transfer.trainable_parameters(frozen) == transfer.trainable_parameters(finetune)
    transfer.set_trainable(frozen, "all")
    gamma_and_beta = sum(w.shape[0] for w in base.weights if w.path.endswith(("gamma", "beta")))
    assert transfer.trainable_parameters(frozen) == (
        transfer.trainable_parameters(finetune) - gamma_and_beta
    )


def test_each_call_sets_the_trainable_layers_whatever_an_earlier_call_froze():
    # Gradual unfreezing calls set_trainable with more blocks each phase.
    model, fresh = tiny_model("frozen"), tiny_model("frozen")
    transfer.set_trainable(fresh, "all", train_batchnorm=True)
    counts = []
    for unfreeze in (1, 2, "all"):
        transfer.set_trainable(model, unfreeze, train_batchnorm=True)
        counts.append(transfer.trainable_parameters(model))
    assert counts[0] < counts[1] < counts[2] == transfer.trainable_parameters(fresh)
    transfer.set_trainable(model, 1)
    assert transfer.trainable_parameters(model) < counts[0]  # batch norm frozen again
    transfer.set_trainable(model, 1, train_batchnorm=True)
    assert transfer.trainable_parameters(model) == counts[0]


def test_layers_of_the_model():
    model = tiny_model(dropout=0.3)
    names = [layer.name for layer in model.layers]
    assert names == [
        "input",
        "preprocess",
        "tiny_resnet",
        "avg_pool",
        "head_dropout",
        "logits",
        "predictions",
    ]
    assert model.get_layer("head_dropout").rate == 0.3
    assert "head_dropout" not in [layer.name for layer in tiny_model(dropout=0).layers]


def test_kcnn_backbone_takes_raw_pixels_and_divides_by_255():
    model = tiny_model()
    x = np.full((1, *SHAPE), 255.0, dtype="float32")
    assert np.allclose(keras.ops.convert_to_numpy(model.get_layer("preprocess")(x)), 1.0)


def _check_preprocessing_inside(application):
    model = transfer.build(application, 4, "frozen", weights=None, input_shape=SHAPE)
    module = importlib.import_module(getattr(keras.applications, application).__module__)
    x = np.random.default_rng(1).integers(0, 256, size=(2, *SHAPE)).astype("float32")
    inside = keras.ops.convert_to_numpy(model.get_layer("preprocess")(x))
    np.testing.assert_allclose(inside, module.preprocess_input(x.copy()), rtol=1e-6, atol=1e-5)
    base = transfer.backbone_of(model)
    expected = base(module.preprocess_input(x.copy()), training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(base(inside, training=False)),
        keras.ops.convert_to_numpy(expected),
        rtol=1e-5,
        atol=1e-5,
    )
    return model


def test_vgg16_preprocessing_is_caffe_inside_the_model():
    _check_preprocessing_inside("VGG16")


def test_efficientnet_pixels_are_not_rescaled_twice():
    """EfficientNet rescales inside; its preprocess_input, so the model's, is the identity."""
    model = _check_preprocessing_inside("EfficientNetB0")
    x = np.full((1, *SHAPE), 200.0, dtype="float32")
    assert np.array_equal(keras.ops.convert_to_numpy(model.get_layer("preprocess")(x)), x)


@pytest.mark.slow
@pytest.mark.parametrize("application", APPLICATIONS)
def test_every_application_backbone(application, images):
    """Preprocessing as the Keras documentation applies it, blocks, output, and Grad-CAM and the
    stage feature maps through the nested backbone."""
    model = _check_preprocessing_inside(application)
    base = transfer.backbone_of(model)
    assert len(transfer.blocks(base)) > 5
    transfer.set_trainable(model, 1)
    top = transfer.blocks(base)[-1][1]
    batchnorm = keras.layers.BatchNormalization
    assert all(layer.trainable != isinstance(layer, batchnorm) for layer in top)
    assert not any(layer.trainable for layer in transfer.blocks(base)[1][1])
    assert transfer.feature_layers(model)[-1] == gradcam_layer(model)
    output = keras.ops.convert_to_numpy(model(images[0][:2]))
    assert output.shape == (2, 4) and np.allclose(output.sum(axis=1), 1.0, atol=1e-5)
    from kcnn import viz

    assert viz.grad_cam(model, images[0][:2], class_index=0).shape == (2, 32, 32)
    stages = viz.feature_maps(model, images[0][:1], transfer.feature_layers(model))
    assert [maps.shape[1] for maps in stages.values()] == sorted(
        (maps.shape[1] for maps in stages.values()), reverse=True
    )


def test_feature_layers_and_gradcam_target_are_reachable_in_the_nested_backbone():
    model = tiny_model()
    assert transfer.feature_layers(model) == ["stage1_block2", "stage2_block2", "stage3_block2"]
    assert gradcam_layer(model) == "stage3_block2"
    layer = find_layer(model, "stage3_block2")
    assert layer is transfer.backbone_of(model).get_layer("stage3_block2")


def test_grad_cam_explains_a_transfer_model(images):
    from kcnn import viz

    model = tiny_model()
    maps = viz.grad_cam(model, images[0][:2], class_index=1)
    assert maps.shape == (2, 32, 32)
    assert np.all(np.isfinite(maps)) and maps.max() <= 1.0


def test_mixed_precision_keeps_the_head_and_outputs_float32(images):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny_model("finetune")
    assert transfer.backbone_of(model).dtype_policy.name == "mixed_bfloat16"
    for name in ("preprocess", "logits", "predictions"):
        assert model.get_layer(name).dtype_policy.name == "float32", name
    output = model(images[0][:2])
    assert keras.backend.standardize_dtype(output.dtype) == "float32"
    _fit_step(model, images)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(images[0][:2]))))


def test_local_weights_file_round_trips(tmp_path):
    source = tiny_model("finetune", classes=5)
    path = transfer.save_backbone_weights(source, tmp_path / "backbone.weights.h5")
    assert [p.name for p in tmp_path.iterdir()] == ["backbone.weights.h5"]
    target = tiny_model("frozen", weights=path, classes=3)
    for saved, loaded in zip(
        transfer.backbone_of(source).weights, transfer.backbone_of(target).weights
    ):
        assert saved.path == loaded.path
        assert np.array_equal(saved.numpy(), loaded.numpy())


def test_application_weights_file_round_trips(tmp_path):
    source = transfer.build("MobileNetV3Small", 2, weights=None, input_shape=SHAPE)
    path = transfer.save_backbone_weights(source, tmp_path / "mobilenet.weights.h5")
    target = transfer.build("MobileNetV3Small", 2, weights=path, input_shape=SHAPE)
    for saved, loaded in zip(
        transfer.backbone_of(source).weights, transfer.backbone_of(target).weights
    ):
        assert np.array_equal(saved.numpy(), loaded.numpy())


def test_weights_of_another_architecture_are_a_clear_error(tmp_path):
    other = kcnn.create_model("resnet18", include_top=False, input_shape=SHAPE, stem="cifar")
    path = tmp_path / "resnet18.weights.h5"
    other.save_weights(path)
    with pytest.raises(ValueError, match="does not fit"):
        tiny_model(weights=str(path))
    with pytest.raises(ValueError, match="does not fit"):
        transfer.build("MobileNetV3Small", 2, weights=str(path), input_shape=SHAPE)


def test_weights_file_of_the_same_builder_with_other_arguments_is_a_clear_error(tmp_path):
    path = transfer.save_backbone_weights(
        transfer.build(
            KCNN_BACKBONE, 3, weights=None, input_shape=SHAPE, backbone_options={"width": 0.5}
        ),
        tmp_path / "wide.weights.h5",
    )
    with pytest.raises(ValueError, match="does not fit"):
        tiny_model(weights=str(path))


def test_imagenet_weights_for_a_kcnn_backbone_without_them_are_refused():
    with pytest.raises(ValueError, match="has no ImageNet weights"):
        tiny_model(weights="imagenet")


def test_a_kcnn_backbone_with_a_torchvision_state_dict_gets_torchvision_preprocessing(tmp_path):
    from safetensors.numpy import save_file

    from kcnn.models.pretrained import IMAGENET_MEAN, IMAGENET_STD
    from tests.models.test_torchvision_weights import resnet_state

    path = tmp_path / "resnet18.safetensors"
    save_file(
        {k: np.asarray(v, "float32") for k, v in resnet_state(0, False, (2,) * 4, 16).items()},
        str(path),
    )
    options = {"width": 0.25}
    model = transfer.build(
        "resnet18",
        3,
        "frozen",
        weights=str(path),
        input_shape=(33, 33, 3),
        backbone_options=options,
    )
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
    expected = (pixels / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    got = keras.ops.convert_to_numpy(model.get_layer("preprocess")(pixels))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    reference = kcnn.create_model(
        "resnet18", include_top=False, weights=str(path), input_shape=(33, 33, 3), **options
    )
    base = transfer.backbone_of(model)
    assert len(base.weights) == len(reference.weights)
    for ours, theirs in zip(values(base.weights), values(reference.weights)):
        np.testing.assert_array_equal(ours, theirs)


def test_imagenet_weights_offline_say_where_to_put_the_file(monkeypatch):
    from keras.src.utils import file_utils

    def offline(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(ValueError, match=r"could not be downloaded.*~/.keras/models"):
        transfer.build("VGG16", 2, weights="imagenet", input_shape=SHAPE)


def test_saved_transfer_model_loads_and_predicts_the_same(tmp_path, images):
    model = transfer.build("VGG16", 2, weights=None, input_shape=SHAPE)
    model.save(tmp_path / "model.keras")
    loaded = kcnn.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("preprocess").application == "VGG16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(images[0][:2])),
        keras.ops.convert_to_numpy(model(images[0][:2])),
        rtol=1e-6,
    )


def test_kcnn_load_model_alone_loads_a_transfer_model(tmp_path):
    """A fresh process that never imports kcnn.transfer itself (as `kcnn evaluate` does)."""
    transfer.build("VGG16", 2, weights=None, input_shape=SHAPE).save(tmp_path / "model.keras")
    code = (
        "import sys, kcnn; model = kcnn.load_model(sys.argv[1]); "
        "print(model.get_layer('preprocess').application)"
    )
    process = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "model.keras")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip() == "VGG16"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backbone": "ResNet5O"}, "backbone must be .* Did you mean: ResNet50"),
        ({"backbone": "resnet81"}, "Did you mean: .*resnet18"),
        ({"strategy": "freeze"}, "strategy must be one of"),
        ({"classes": 0}, "classes must be an integer"),
        ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ({"backbone_options": {"include_preprocessing": False}}, "may not set"),
        ({"backbone": "VGG16", "input_shape": (32, 32, 1)}, "take RGB images"),
        ({"backbone": "VGG16", "weights": "missing.h5"}, "existing weights file"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {
        "backbone": KCNN_BACKBONE,
        "classes": 2,
        "strategy": "frozen",
        "weights": None,
        "input_shape": SHAPE,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        transfer.build(**arguments)


def test_unfreeze_beyond_the_blocks_is_an_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="from 0 to 6"):
        transfer.set_trainable(model, 7)


def test_backbone_of_a_model_that_is_not_a_transfer_model():
    with pytest.raises(ValueError, match="not a kcnn.transfer model"):
        transfer.backbone_of(kcnn.create_model("tiny_cnn"))
