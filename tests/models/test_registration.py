"""`import kcnn` registers every kcnn layer with Keras, and loading models needs no transfer."""

import os
import subprocess
import sys

import pytest

import kcnn
import kcnn.layers


def test_import_kcnn_registers_every_layer_when_keras_is_imported_later():
    script = (
        "import sys, kcnn\n"
        "assert 'keras' not in sys.modules, 'import kcnn imported keras'\n"
        "import keras\n"
        f"names = {kcnn.layers.__all__!r}\n"
        "missing = [n for n in names if keras.saving.get_registered_object('kcnn>' + n) is None]\n"
        "assert not missing, missing\n"
        "import kcnn.models.saving\n"
        "assert 'kcnn.transfer' not in sys.modules, 'kcnn.models.saving imported kcnn.transfer'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


VARIANTS = {
    # name: (generic builder, its fixed arguments, the registry's Grad-CAM layer)
    "resnet18": ("resnet", dict(depths=(2, 2, 2, 2), block="basic"), "stage4_block2"),
    "resnet34": ("resnet", dict(depths=(3, 4, 6, 3), block="basic"), "stage4_block3"),
    "resnet50": ("resnet", dict(depths=(3, 4, 6, 3), block="bottleneck"), "stage4_block3"),
    "resnet101": ("resnet", dict(depths=(3, 4, 23, 3), block="bottleneck"), "stage4_block3"),
    "resnet152": ("resnet", dict(depths=(3, 8, 36, 3), block="bottleneck"), "stage4_block3"),
    "vgg11": ("vgg", dict(depths=(1, 1, 2, 2, 2)), "stage5_conv2"),
    "vgg13": ("vgg", dict(depths=(2, 2, 2, 2, 2)), "stage5_conv2"),
    "vgg16": ("vgg", dict(depths=(2, 2, 3, 3, 3)), "stage5_conv3"),
    "vgg19": ("vgg", dict(depths=(2, 2, 4, 4, 4)), "stage5_conv4"),
}


def test_variants_are_functions_of_their_name_with_the_generic_builders_options():
    import importlib
    import inspect

    import kcnn.models

    for name, (generic, fixed, target) in VARIANTS.items():
        variant = getattr(kcnn.models, name)
        module = importlib.import_module(f"kcnn.models.{generic}")
        assert variant.__name__ == name and variant.__module__ == module.__name__
        source = inspect.getsource(module)
        assert f"\ndef {name}(**kwargs):" in source  # a search for the name finds it
        assert variant.__doc__.count("parameters with 1000 classes") == 1
        generic_parameters = inspect.signature(getattr(module, generic)).parameters
        parameters = inspect.signature(variant).parameters
        assert list(parameters) == [p for p in generic_parameters if p not in fixed]
        assert parameters["name"].default == name
        info = kcnn.model_info(name)
        assert (info.builder, info.gradcam_layer, info.min_input_size) == (variant, target, 32)
        assert info.input_shape == (224, 224, 3)
        with pytest.raises(ValueError, match="has no option 'depths'"):
            kcnn.create_model(name, depths=fixed["depths"])


def test_a_variant_builds_what_its_generic_builder_builds_with_its_depths():
    from kcnn.models.resnet import resnet, resnet18

    small = dict(input_shape=(8, 8, 3), stem="cifar", width=0.125, classes=3)
    variant = resnet18(**small)
    generic = resnet(depths=(2, 2, 2, 2), name="resnet18", **small)
    assert [layer.name for layer in variant.layers] == [layer.name for layer in generic.layers]
    assert variant.count_params() == generic.count_params()


def test_attention_ratio_larger_than_a_bottleneck_blocks_output_names_its_channels():
    # The attention sits after the bottleneck's 4x expansion: 64 * 4 = 256 channels at width 1.
    with pytest.raises(ValueError, match=r"attention_ratio=257 .* the 256 channels"):
        kcnn.create_model("resnet50", attention="se", attention_ratio=257)
    with pytest.raises(ValueError, match=r"attention_ratio=9 .* the 8 channels"):
        kcnn.create_model("resnet18", attention="cbam", attention_ratio=9, width=0.125)


@pytest.mark.parametrize("ratio", [2.5, "4", None, True, 0])
def test_attention_ratio_that_is_not_a_positive_integer_is_a_value_error(ratio):
    with pytest.raises(ValueError, match="attention_ratio must be a positive integer"):
        kcnn.create_model("resnet50", attention="se", attention_ratio=ratio)
