"""benchmarks/cpu_settings.py: its tf.data autotuning setting turns autotuning back on where
kcnn's pipeline has it off, a setting trains in the precision asked for, and unknown settings
are refused by name."""

import os

import numpy as np
import pytest

from tests.data.conftest import FASHION_MNIST_DIR
from tests.scripts import load_script


@pytest.fixture(scope="module")
def cpu_settings():
    return load_script("benchmarks/cpu_settings.py")


def test_unknown_settings_are_refused_by_name(cpu_settings, capsys):
    with pytest.raises(SystemExit):
        cpu_settings.parse_args(["--settings", "defaults,turbo"])
    assert "unknown turbo" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "autotune"), [("defaults", False), ("tf.data autotuning", True)])
def test_only_the_autotuning_setting_has_tf_data_autotuning(cpu_settings, name, autotune):
    images = np.zeros((16, 28, 28), np.uint8)
    dataset = cpu_settings.training_dataset(images, np.arange(16) % 10, cpu_settings.SETTINGS[name])
    assert dataset.options().autotune.enabled is autotune


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="needs Debian's Fashion-MNIST")
def test_a_setting_trains_in_the_precision_asked_for(cpu_settings):
    args = cpu_settings.parse_args(
        ["--images", "256", "--epochs", "2", "--precision", "mixed_bfloat16"]
    )
    measured = cpu_settings.train_once(args, cpu_settings.SETTINGS["batch 256"])
    assert measured["precision"] == "mixed_bfloat16"
    assert measured["images_per_second"] > 0 and measured["cores_busy"] > 0
