"""Every named recipe is a valid `train` call whose model builds on Fashion-MNIST's images."""

import inspect

import pytest

import kcnn
from kcnn.training import PRESETS, preset, train


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_binds_to_train_and_its_model_builds(name):
    arguments = preset(name)
    inspect.signature(train).bind(**arguments)
    model = kcnn.create_model(
        arguments["model"], input_shape=(28, 28, 1), classes=10, **arguments.get("model_kwargs", {})
    )
    assert model.output_shape == (None, 10)


def test_preset_is_a_copy_and_unknown_names_list_the_known_ones():
    preset("fashion-accurate")["model_kwargs"]["filters"] = (1,)
    assert PRESETS["fashion-accurate"]["model_kwargs"]["filters"] == (32, 64, 128)
    with pytest.raises(
        ValueError, match="presets: fashion-accurate, fashion-best, fashion-fast, fashion-quick"
    ):
        preset("fashion")
