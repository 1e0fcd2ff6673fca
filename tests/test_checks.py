"""kcnn.checks: the argument checks every module uses."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from kcnn import checks


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(5), np.uint8(2)])
def test_positive_int_accepts_python_and_numpy_integers_and_returns_int(value):
    result = checks.positive_int("epochs", value)
    assert result == value and type(result) is int
    json.dumps(result)


@pytest.mark.parametrize(
    "value", [0, -1, np.int64(0), True, False, np.bool_(True), 1.0, 2.5, "3", None, [1]]
)
def test_positive_int_refuses_bools_floats_and_non_positive_values(value):
    with pytest.raises(ValueError) as error:
        checks.positive_int("batch_size", value)
    assert str(error.value) == f"batch_size must be a positive integer, got {value!r}"


def test_integer_bounds_are_inclusive_and_named_in_the_message():
    assert checks.integer("stages", 1, 1, 4) == 1
    assert checks.integer("stages", np.int64(4), 1, 4) == 4
    assert checks.integer("seed", -5) == -5
    assert checks.integer("tolerance", 0, low=0) == 0
    cases = [
        (dict(value=5, low=1, high=4), "stages must be an integer from 1 to 4, got 5"),
        (dict(value=0, low=1, high=4), "stages must be an integer from 1 to 4, got 0"),
        (dict(value=1, low=2), "stages must be an integer >= 2, got 1"),
        (dict(value=9, high=8), "stages must be an integer <= 8, got 9"),
        (dict(value=True), "stages must be an integer, got True"),
        (dict(value=2.0, low=1), "stages must be an integer >= 1, got 2.0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as error:
            checks.integer("stages", **kwargs)
        assert str(error.value) == message


@pytest.mark.parametrize(
    "function, good, bad, message",
    [
        (
            checks.positive_number,
            [1e-3, 2, np.float32(0.5), float("inf")],
            [0, -0.1, math.nan, True, "0.1", None],
            "a positive number",
        ),
        (
            checks.non_negative_number,
            [0, 0.0, 1e-4, np.float64(3.0)],
            [-1e-9, math.nan, False, "0"],
            "a number >= 0",
        ),
        (
            checks.fraction,
            [0, 0.0, 0.5, 0.999, np.float32(0.1)],
            [1, 1.0, -0.1, math.nan, True, False, "0.5"],
            "a number in [0, 1)",
        ),
        (
            checks.probability,
            [0, 0.5, 1, 1.0, np.float16(1.0)],
            [1.01, -0.01, math.nan, True, None],
            "a number in [0, 1]",
        ),
    ],
)
def test_number_checks_accept_their_interval_and_return_float(function, good, bad, message):
    for value in good:
        result = function("rate", value)
        assert type(result) is float and result == float(value)
    for value in bad:
        with pytest.raises(ValueError) as error:
            function("rate", value)
        assert str(error.value) == f"rate must be {message}, got {value!r}"


def test_predicates_refuse_bools_and_accept_numpy_scalars():
    assert checks.is_integer(np.int16(3)) and checks.is_integer(-2)
    assert not any(checks.is_integer(v) for v in (True, np.bool_(False), 3.0, "3", None))
    assert checks.is_number(np.float32(0.5)) and checks.is_number(3)
    assert not any(checks.is_number(v) for v in (False, np.bool_(True), "1", None, 1j))


def test_the_package_uses_the_shared_checks():
    from kcnn import convmath
    from kcnn.data.splits import check_split
    from kcnn.models.layers import DropPath

    with pytest.raises(ValueError, match=r"^stride must be a positive integer, got True$"):
        convmath.output_size(28, 3, stride=True)
    with pytest.raises(ValueError, match=r"^rate must be a number in \[0, 1\), got 1$"):
        DropPath(1)
    assert check_split("train", np.float32(0.25)) == 0.25


def test_numpy_scalars_reach_keras_as_python_numbers():
    import kcnn
    from kcnn import transfer

    model = kcnn.create_model(
        "configurable_cnn",
        filters=(np.int64(4), np.int64(8)),
        kernel_size=np.int64(3),
        fc_units=np.int64(8),
        dropout=np.float32(0.25),
        classes=np.int64(3),
        input_shape=(np.int64(16), np.int64(16), np.int64(1)),
    )
    assert model.output_shape == (None, 3)
    assert model.get_layer("logits").units == 3
    json.loads(model.to_json())
    head, rest = transfer.schedule("progressive", np.int64(5), head_epochs=np.int64(2))
    assert (type(head.epochs), head.epochs, rest.epochs) == (int, 2, 3)


def test_checks_import_neither_tensorflow_nor_keras():
    code = "import sys, kcnn.checks; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
