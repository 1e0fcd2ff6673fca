"""`kcnn.export` and ``kcnn export``: each format, reloaded in a fresh process by its own runtime,
predicts what the ``.keras`` model predicts; every registry model exports; bad input is one line;
nothing is overwritten without asking."""

import json
import os

import numpy as np
import pytest

import kcnn
from kcnn.cli import main
from kcnn.export import default_path, load_exported
from tests.models.helpers import distinct_models, small_model
from tests.test_cli import _write_folder
from tests.training.conftest import run_python

# The largest difference from the .keras model's probabilities, per format and quantization.
TOLERANCES = {
    ("saved_model", None): 1e-4,
    ("tflite", None): 1e-4,
    ("onnx", None): 1e-4,
    ("tflite", "float16"): 1e-2,
    ("tflite", "dynamic"): 5e-2,
    ("tflite", "int8"): 5e-2,
}

RUN_EXPORTED = """
import sys
import numpy as np
from kcnn.export import load_exported
path, images, out = sys.argv[1:]
np.save(out, load_exported(path)(np.load(images)))
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny_cnn trained by `kcnn.training.train` on a folder of pattern images:
    ``(best.keras path, test images)``; its run.json names the folder."""
    from kcnn.training import train
    from tests.training.conftest import patterns

    root = tmp_path_factory.mktemp("export")
    data = _write_folder(root / "shapes")
    out = root / "run"
    train(
        "tiny_cnn",
        str(data),
        epochs=4,
        batch_size=30,
        out=out,
        learning_rate=1e-2,
        validation_split=0.2,
        tensorboard=False,
        precision="float32",
        verbose=0,
    )
    images, _ = patterns(12, 5)
    return out / "best.keras", images.astype("float32")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained tiny_cnn saved in a folder without run.json."""
    path = tmp_path_factory.mktemp("untrained") / "model.keras"
    kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3).save(path)
    return path


def _one_error_line(capsys) -> str:
    error = capsys.readouterr().err.strip()
    assert error.startswith("kcnn") and "error:" in error and len(error.splitlines()) == 1, error
    return error


@pytest.mark.slow
@pytest.mark.parametrize(("format", "quantize"), list(TOLERANCES))
def test_an_export_reloaded_in_a_fresh_process_predicts_as_the_keras_model(
    format, quantize, trained_run, tmp_path, capsys
):
    model_path, images = trained_run
    out = tmp_path / ("served" if format == "saved_model" else f"model.{format}")
    argv = ["export", str(model_path), "--format", format, "--out", str(out)]
    assert main(argv + (["--quantize", quantize] if quantize else [])) == 0
    assert str(out) in capsys.readouterr().out
    np.save(tmp_path / "images.npy", images)
    run_python(RUN_EXPORTED, str(out), str(tmp_path / "images.npy"), str(tmp_path / "out.npy"))
    exported = np.load(tmp_path / "out.npy")
    expected = kcnn.load_model(model_path).predict(images, verbose=0)
    assert exported.shape == expected.shape
    np.testing.assert_array_equal(exported.argmax(axis=1), expected.argmax(axis=1))
    assert np.abs(exported - expected).max() <= TOLERANCES[format, quantize]


@pytest.mark.slow
def test_the_saved_model_follows_tf_serving_conventions(trained_run, tmp_path):
    model_path, _ = trained_run
    kcnn.export(model_path, tmp_path / "served", format="saved_model")
    code = """
import sys, json
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
names = [list(signature.structured_input_signature[1]), list(signature.structured_outputs)]
print(json.dumps(names))
"""
    process = run_python(code, str(tmp_path / "served"))
    assert json.loads(process.stdout.splitlines()[-1]) == [["image"], ["predictions"]]


@pytest.mark.slow
@pytest.mark.parametrize("format", ["tflite", "onnx"])
@pytest.mark.parametrize("name", distinct_models())
def test_every_registry_model_exports(name, format, tmp_path):
    """TFLite and ONNX, the two converters that can refuse a layer; the TFLite converter reads
    the SavedModel that the saved_model format writes, so that one is exercised too. Grouped
    convolutions (ResNeXt) go to ONNX too: on a CPU they are standard ones. The scaled variants
    (vgg16, resnet101...) hold no layer the others do not: KCNN_EXHAUSTIVE=1 exports them too."""
    model = small_model(name)
    images = np.random.default_rng(0).uniform(0, 255, (2, *model.input_shape[1:])).astype("float32")
    path = tmp_path / f"model.{format}"
    kcnn.export(model, path, format=format)
    exported = load_exported(path)(images)
    np.testing.assert_allclose(exported, model.predict(images, verbose=0), atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("format", ["tflite", "onnx"])
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_exports_as_its_float32_copy(policy, format, tmp_path):
    import keras

    keras.config.set_dtype_policy(policy)
    model = small_model("tiny_resnet")
    keras.config.set_dtype_policy("float32")
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    path = kcnn.export(model, tmp_path / f"model.{format}", format=format)
    copy = kcnn.export.float32_copy(model)
    assert {layer.compute_dtype for layer in copy.layers} == {"float32"}
    expected = copy.predict(images, verbose=0)
    np.testing.assert_allclose(load_exported(path)(images), expected, atol=1e-4)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=2e-2)


@pytest.mark.slow
def test_an_existing_saved_model_is_replaced_with_overwrite_only(model_file, tmp_path):
    target = tmp_path / "served"
    kcnn.export(model_file, target, format="saved_model")
    with pytest.raises(ValueError, match="already exists"):
        kcnn.export(model_file, target, format="saved_model")
    (target / "stale").write_text("from an older export")
    kcnn.export(model_file, target, format="saved_model", overwrite=True)
    assert not (target / "stale").exists() and (target / "saved_model.pb").exists()
    assert sorted(os.listdir(tmp_path)) == ["served"]  # no temporary folder left beside


def test_overwrite_replaces_an_earlier_export_only(model_file, tmp_path):
    # A mistyped --out must not delete a training run, or the model being exported.
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("kept")
    cases = [
        (run, "saved_model", "not a SavedModel folder"),
        (model_file, "tflite", "not a .tflite file"),
        (run, "onnx", "not a .onnx file"),
    ]
    for target, format, message in cases:
        with pytest.raises(ValueError, match=message):
            kcnn.export(model_file, target, format=format, overwrite=True)
    assert (run / "notes.txt").read_text() == "kept" and model_file.is_file()


def test_a_model_a_format_cannot_hold_is_one_line(tmp_path):
    import keras

    image, mask = keras.Input((8, 8, 1), name="image"), keras.Input((8, 8, 1), name="mask")
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(image * mask))
    model = keras.Model([image, mask], outputs, name="two_inputs")
    with pytest.raises(kcnn.export.ExportError) as error:
        kcnn.export(model, tmp_path / "model.onnx", format="onnx")
    assert "two_inputs has 2 inputs" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "model.onnx").exists()


def test_kcnn_export_is_the_module_and_its_function():
    assert callable(kcnn.export) and kcnn.export.FORMATS == ("saved_model", "tflite", "onnx")


@pytest.mark.parametrize(
    ("format", "quantize", "expected"),
    [
        ("saved_model", None, "run/best_saved_model"),
        ("tflite", None, "run/best.tflite"),
        ("tflite", "int8", "run/best-int8.tflite"),
        ("onnx", None, "run/best.onnx"),
    ],
)
def test_the_default_path_is_beside_the_model(format, quantize, expected):
    assert default_path("run/best.keras", format, quantize) == expected


def test_an_unknown_format_is_a_one_line_usage_error(model_file, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["export", str(model_file), "--format", "pb"])
    assert exit.value.code == 2
    assert "invalid choice: 'pb'" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "saved_model", "--quantize", "int8"], "applies to --format tflite only"),
        (["--format", "tflite", "--quantize", "int8"], "pass --dataset"),
    ],
)
def test_bad_export_flags_are_one_line(argv, message, model_file, tmp_path, capsys):
    assert main(["export", str(model_file), "--out", str(tmp_path / "out"), *argv]) == 1
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_missing_model_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    assert main(["export", str(missing), "--format", "onnx"]) == 1
    assert str(missing) in _one_error_line(capsys)


def test_calibration_data_without_int8_is_a_one_line_error(model_file, tmp_path, capsys):
    argv = ["export", str(model_file), "--format", "tflite", "--out", str(tmp_path / "m.tflite")]
    assert main(argv + ["--dataset", "fashion_mnist"]) == 1
    assert "--quantize int8 only" in _one_error_line(capsys)
    assert not (tmp_path / "m.tflite").exists()


def test_an_existing_target_is_not_overwritten(model_file, tmp_path, capsys):
    target = tmp_path / "model.tflite"
    target.write_text("an earlier export")
    assert main(["export", str(model_file), "--format", "tflite", "--out", str(target)]) == 1
    assert "--overwrite" in _one_error_line(capsys)
    assert target.read_text() == "an earlier export"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(format="pb"), "format must be one of"),
        (dict(format="onnx", quantize="dynamic"), "applies to the tflite format only"),
        (dict(format="tflite", quantize="int4"), "quantize must be one of"),
        (dict(format="tflite", quantize="int8"), "needs representative_data"),
        (
            dict(format="tflite", quantize="int8", representative_data=np.zeros((4, 28, 28, 1))),
            r"shape \(N, 16, 16, 1\)",
        ),
    ],
)
def test_bad_export_arguments_are_value_errors(kwargs, message, model_file, tmp_path):
    with pytest.raises(ValueError, match=message):
        kcnn.export(model_file, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_an_unconverted_function_call_is_named_with_what_puts_it_there():
    """What a grouped convolution traced on a GPU leaves in the ONNX graph (on a CPU kcnn
    computes it with standard convolutions, so no test here can produce one)."""
    from onnx import helper

    from kcnn.export import GROUPED_CONVOLUTION_HINT, _unconverted_nodes

    nodes = [
        helper.make_node("Relu", ["x"], ["y"], name="relu"),
        helper.make_node("StatefulPartitionedCall", ["y"], ["z"], name="conv2"),
    ]
    graph = helper.make_graph(nodes, "g", [], [])
    assert _unconverted_nodes(helper.make_model(graph)) == [
        f"StatefulPartitionedCall (node conv2, {GROUPED_CONVOLUTION_HINT})"
    ]
