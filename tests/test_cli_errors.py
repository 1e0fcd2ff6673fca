"""What the ``kcnn`` command does with errors: a user's mistake is one line (exit 1, or 2 for a bad
flag value, ``--model-option`` values included); a bug keeps its traceback and asks for a report.
The flags that several commands share are declared once and checked alike."""

import numpy as np
import pytest
from PIL import Image

from kcnn import checks, cli
from kcnn.cli import main
from kcnn.errors import UserError
from kcnn.options import parse_options


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes of five 16x16 grey images."""
    root = tmp_path_factory.mktemp("data")
    for label in ("a", "b"):
        folder = root / label
        folder.mkdir()
        for index in range(5):
            pixels = np.full((16, 16), 20 * index + (120 if label == "b" else 0), np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


@pytest.mark.parametrize(
    "options, message",
    [
        (["norm=bogus"], "norm must be one of ('batch', 'group', 'layer', 'instance', None)"),
        (["conv=x"], "conv must be one of ('standard', 'separable'), got 'x'"),
        (["norm_groups=0"], "norm_groups must be a positive integer, got 0"),
        (["spatial_dropout=1.5"], "spatial_dropout must be a number in [0, 1), got 1.5"),
        (["element_dropout=1.5"], "element_dropout must be a number in [0, 1), got 1.5"),
        (
            ["spatial_dropout=0.2", "element_dropout=0.2"],
            "spatial_dropout=0.2 and element_dropout=0.2 were both given",
        ),
    ],
)
def test_a_bad_model_option_value_is_a_usage_error(
    options, message, image_folder, tmp_path, capsys
):
    argv = [
        "train",
        "--model",
        "configurable_cnn",
        "--dataset",
        str(image_folder),
        "--no-test",
        "--epochs",
        "1",
        "--validation-split",
        "0.4",
        *(flag for option in options for flag in ("--model-option", option)),
        "--out",
        str(tmp_path / "run"),
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert error.startswith("kcnn train: error: argument --model-option: ")
    assert message in error


def test_a_bad_model_option_value_of_kcnn_models_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "--family", "vgg", "--model-option", "conv=x"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("kcnn models: error: argument --model-option: conv must be one of")
    assert len(error.splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "transfer", "tune", "evaluate"])
def test_the_shared_data_flags_are_checked_alike_in_every_command(command, capsys):
    required = {
        "transfer": ["--backbone", "tiny_cnn", "--dataset", "x"],
        "evaluate": ["model.keras", "--dataset", "x"],
    }.get(command, [])
    with pytest.raises(SystemExit) as exit_info:
        main([command, *required, "--batch-size", "0"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(
        f"kcnn {command}: error: argument --batch-size: batch_size must be "
        "a positive integer, got 0"
    )


@pytest.mark.parametrize("command", ["train", "transfer", "tune"])
def test_the_shared_hardware_flags_are_in_every_training_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--precision", "half"])
    assert exit_info.value.code == 2
    assert "argument --precision: invalid choice: 'half'" in capsys.readouterr().err


def _bug(args):
    """A run whose error is raised inside NumPy, as a bug in kcnn's use of a library would be."""
    np.reshape(np.zeros(3), (2, 2))


def _user_mistake(args):
    checks.positive_int("epochs", 0)


def test_an_error_raised_inside_a_library_keeps_its_traceback_and_asks_for_a_report(
    monkeypatch, capsys
):
    monkeypatch.setattr(cli, "_run_models", _bug)
    with pytest.raises(ValueError, match="cannot reshape"):
        main(["models"])
    error = capsys.readouterr().err.strip()
    assert error.startswith("kcnn: unexpected error") and "please report it" in error


def test_an_exception_that_is_no_value_error_is_a_bug_too(monkeypatch, capsys):
    def crash(args):
        raise KeyError("layer")

    monkeypatch.setattr(cli, "_run_models", crash)
    with pytest.raises(KeyError):
        main(["models"])
    assert "please report it" in capsys.readouterr().err


def test_a_user_error_from_kcnn_is_one_line_and_exit_status_1(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_run_models", _user_mistake)
    assert main(["models"]) == 1
    error = capsys.readouterr().err.strip()
    assert error == "kcnn: error: epochs must be a positive integer, got 0"


def test_checks_raise_user_errors_that_name_the_argument():
    with pytest.raises(UserError) as error:
        checks.choice("norm", "bogus", ("batch", None))
    assert error.value.argument == "norm" and isinstance(error.value, ValueError)


def test_parse_options_reads_literals_and_lives_outside_the_command():
    assert parse_options(["width=0.5", "stem=cifar", "depths=(2, 2)", "bias=True"]) == {
        "width": 0.5,
        "stem": "cifar",
        "depths": (2, 2),
        "bias": True,
    }
    assert cli.parse_options is parse_options
    with pytest.raises(UserError, match="--fix must be KEY=VALUE, got 'conv_blocks'"):
        parse_options(["conv_blocks"], "--fix")
