"""Export a kcnn model for serving: TensorFlow SavedModel, TFLite (LiteRT) or ONNX.

Every model kcnn trains takes raw pixel values in [0, 255] and normalises them itself, so each
exported file does too: feed it the decoded image as float32, ``(batch, height, width,
channels)``, and read one probability row per image.

- ``saved_model``: a SavedModel folder written by Keras's `keras.export.ExportArchive` (what
  ``model.export(format="tf_saved_model")`` uses), with TF Serving's conventions: a
  ``serving_default`` signature whose input is named ``image`` and output ``predictions``.
  It serves with ``tf.saved_model.load(path).signatures["serving_default"](image=...)`` and
  needs neither Keras nor kcnn.
- ``tflite``: TensorFlow's TFLite converter on that SavedModel (same signature names), in
  float32 or quantized: ``"dynamic"`` (int8 weights, float activations), ``"float16"`` (float16
  weights) or ``"int8"`` (int8 weights and activations, calibrated on ``representative_data``;
  input and output stay float32). It runs in ``ai_edge_litert.interpreter.Interpreter``
  (LiteRT, the maintained runtime) or ``tf.lite.Interpreter``.
- ``onnx``: tf2onnx, as ``model.export(format="onnx")`` uses it, but on the frozen forward pass
  (see `_write_onnx`), input ``image``, output ``predictions``; it runs in
  ``onnxruntime.InferenceSession``. Needs ``pip install 'kcnn[export]'``.

A model trained in mixed precision is exported to TFLite and ONNX as its float32 copy (same
weights; see `float32_copy`): neither converter handles its float16/bfloat16 convolutions.

Writes are atomic (`kcnn.files.atomic_path`; a SavedModel folder is written beside its
destination, then renamed) and an existing file or folder is replaced only with
``overwrite=True``.

The module is callable: ``kcnn.export(...)`` is `export`, and ``kcnn.export.FORMATS`` or
``kcnn.export.representative_images`` are its other names.

Example:
    >>> import kcnn
    >>> kcnn.export("saved_models/simple_cnn-fashion_mnist/best.keras",
    ...             "simple_cnn.tflite", format="tflite", quantize="float16")
    'simple_cnn.tflite'
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import types
import warnings

import numpy as np

from kcnn import checks
from kcnn.files import atomic_path

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = (None, "dynamic", "float16", "int8")
SUFFIXES = {"saved_model": "", "tflite": ".tflite", "onnx": ".onnx"}
INPUT_NAME = "image"
OUTPUT_NAME = "predictions"
REPRESENTATIVE_IMAGES = 200


class ExportError(ValueError):
    """A model that a format cannot hold, or a converter that failed; the message is one line."""


def export(
    model,
    path,
    format: str = "saved_model",
    *,
    quantize: str | None = None,
    representative_data=None,
    overwrite: bool = False,
) -> str:
    """Write ``model`` to ``path`` in ``format``; returns ``path``.

    Args:
        model: a ``keras.Model`` or the path of a ``.keras`` file (loaded with
            `kcnn.load_model`, safe mode).
        path: the file (``.tflite``, ``.onnx``) or folder (``saved_model``) to write.
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: TFLite only: None (float32), ``"dynamic"``, ``"float16"`` or ``"int8"``.
        representative_data: for ``quantize="int8"``: images shaped like the model's input,
            raw 0-255 pixels, as an array or an iterable of arrays (see
            `representative_images`); about 100-500 training images calibrate well.
        overwrite: replace an earlier export of ``format`` at ``path`` (default: refuse). Only
            an export is replaced: a SavedModel folder (with ``saved_model.pb``), a ``.tflite``
            or ``.onnx`` file; anything else at ``path`` is refused, so a mistyped path cannot
            delete a training run.

    Raises:
        ValueError: an unknown ``format`` or ``quantize``, ``quantize`` with another format than
            tflite, int8 without ``representative_data``, or ``path`` already there (and, with
            ``overwrite``, not an export of ``format``).
        ExportError: the format cannot hold this model; the message says why in one line.
            Also when the onnx format's packages (tf2onnx, onnx) are not installed.
        FileNotFoundError: ``model`` is a path to no file.
        OSError: ``path``'s folder cannot be written.
    """
    checks.choice("format", format, FORMATS)
    checks.choice("quantize", quantize, QUANTIZATIONS)
    if quantize is not None and format != "tflite":
        raise ValueError(f"quantize={quantize!r} applies to the tflite format only, not {format!r}")
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "quantize='int8' needs representative_data: training images to calibrate on"
        )
    path = os.fspath(path)
    if os.path.lexists(path) and not overwrite:
        raise ValueError(
            f"{path!r} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    if os.path.lexists(path):
        _check_replaceable(path, format)
    if isinstance(model, (str, os.PathLike)):
        from kcnn.models.saving import load_model

        model = load_model(model, compile=False)
    images = None if representative_data is None else _images_for(model, representative_data)
    try:
        if format == "saved_model":
            _write_folder(path, lambda folder: _write_saved_model(model, folder))
        elif format == "tflite":
            _write_tflite(float32_copy(model), path, quantize, images)
        else:
            _write_onnx(float32_copy(model), path)
    except (ExportError, OSError):  # OSError: a folder that cannot be written, named
        raise
    except Exception as error:  # the converters' own errors, many lines from deep inside
        message = f"{format} export of {model.name} failed: {_first_line(error)}"
        raise ExportError(message) from error
    return path


def float32_copy(model):
    """``model`` itself when it computes in float32, else a float32 copy with its weights.

    A model trained in mixed precision (``precision="auto"`` on a GPU or an AMX CPU) computes
    in bfloat16 or float16: TFLite's converter cannot translate its float16/bfloat16
    convolutions, and onnxruntime refuses bfloat16 convolutions. Its weights are float32
    (mixed precision keeps variables in float32), so the same layers rebuilt under the float32
    policy take them unchanged, and compute what the model computes, more precisely.
    """
    import keras

    if all(layer.compute_dtype == "float32" for layer in model.layers):
        return model
    copy = keras.Model.from_config(_float32_policies(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _float32_policies(config):
    """A model's config with every mixed precision dtype policy replaced by float32."""
    if isinstance(config, list):
        return [_float32_policies(value) for value in config]
    if not isinstance(config, dict):
        return config
    name = config.get("config", {}).get("name") if isinstance(config.get("config"), dict) else None
    if config.get("class_name") == "DTypePolicy" and str(name).startswith("mixed_"):
        return {**config, "config": {**config["config"], "name": "float32"}}
    return {key: _float32_policies(value) for key, value in config.items()}


def input_spec(model):
    """The ``tf.TensorSpec`` of the exported input: the model's, any batch size, named ``image``."""
    import tensorflow as tf

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(
            f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} "
            "outputs; export takes models of one image input and one output"
        )
    return tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=INPUT_NAME)


def _write_saved_model(model, folder):
    """A SavedModel in ``folder`` whose ``serving_default`` maps ``image`` to ``predictions``."""
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[input_spec(model)],
    )
    archive.write_out(folder, verbose=False)


def _write_tflite(model, path, quantize, images):
    """Convert the SavedModel of ``model`` with TensorFlow's TFLite converter (``images``:
    the calibration images of int8)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix=".kcnn-export.") as scratch:
        saved = os.path.join(scratch, "saved_model")
        _write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = lambda: ([image[None]] for image in images)
        flatbuffer = converter.convert()
    with atomic_path(path, suffix=".tflite") as temporary:
        with open(temporary, "wb") as file:
            file.write(flatbuffer)


def _write_onnx(model, path):
    """tf2onnx on the model's frozen forward pass: input ``image``, output ``predictions``.

    Not ``model.export(format="onnx")``: Keras hands tf2onnx the function before freezing, and
    tf2onnx then makes every constant it captures -- the mean and variance of the
    ``normalize`` layer that each model kcnn trains starts with -- an extra input of the ONNX
    graph that onnxruntime asks to be fed. Freezing first makes them constants. A node tf2onnx
    leaves unconverted is an `ExportError` naming it (see `_unconverted_nodes`): the grouped
    convolutions of ResNeXt or AlexNet with ``groups=2`` end there when traced on a GPU (on a
    CPU `kcnn.layers.convolution.GroupedConv2D` computes them with standard convolutions).
    """
    try:
        import tf2onnx
    except ImportError as error:
        raise ExportError(
            f"the onnx format needs tf2onnx and onnx ({error}); "
            "install them with: pip install 'kcnn[export]'"
        ) from None
    import tensorflow as tf
    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    forward = tf.function(lambda image: {OUTPUT_NAME: model(image, training=False)})
    frozen = convert_variables_to_constants_v2(forward.get_concrete_function(input_spec(model)))
    (image,) = [t.name for t in frozen.inputs if t.dtype != tf.resource]
    (output,) = [t.name for t in frozen.outputs]
    with _quiet_converter(), atomic_path(path, suffix=".onnx") as temporary:
        patch_tf2onnx()  # Keras's fix of tf2onnx for NumPy 2, as model.export applies it
        converted, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(),
            name=model.name,
            input_names=[image],
            output_names=[output],
            tensors_to_rename={image: INPUT_NAME, output: OUTPUT_NAME},
            output_path=temporary,
        )
        unconverted = _unconverted_nodes(converted)
        if unconverted:
            raise ExportError(
                f"onnx export of {model.name}: tf2onnx cannot convert "
                f"{len(unconverted)} node(s), the first {unconverted[0]}"
            )


GROUPED_CONVOLUTION_HINT = (
    "a grouped convolution (groups > 1): on a GPU Keras's TensorFlow backend runs it as an "
    "XLA-compiled function call, which tf2onnx does not convert; export this model on a CPU "
    "(CUDA_VISIBLE_DEVICES=-1), or to saved_model or tflite"
)


def _unconverted_nodes(onnx_model) -> list[str]:
    """``"OP (node NAME)"`` for each node of an ONNX model that is no ONNX operator: a
    TensorFlow operation tf2onnx left as it was, which onnxruntime would refuse to load. A
    function call says what puts one there in kcnn's models (`GROUPED_CONVOLUTION_HINT`)."""
    import onnx

    return [
        f"{node.op_type} (node {node.name}"
        + (f", {GROUPED_CONVOLUTION_HINT})" if node.op_type.endswith("PartitionedCall") else ")")
        for node in onnx_model.graph.node
        if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type)
    ]


@contextlib.contextmanager
def _quiet_converter():
    """Silence, while tf2onnx runs, the deprecation notices of the TensorFlow 1 functions it
    calls and the NumPy ``FutureWarning`` of its patch: nothing a user of kcnn can act on."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_replaceable(path: str, format: str) -> None:
    """Refuse to replace anything at ``path`` but an earlier export of ``format``."""
    if format == "saved_model":
        earlier = os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb"))
        what = "a SavedModel folder (it has no saved_model.pb)"
    else:
        earlier = os.path.isfile(path) and path.endswith(f".{format}")
        what = f"a .{format} file"
    if not earlier:
        raise ValueError(
            f"{path!r} is not {what}: overwrite replaces an earlier export only; choose "
            "another path"
        )


def _write_folder(path, write):
    """Call ``write(folder)`` on a new folder beside ``path``, then rename it to ``path``.

    The previous folder (or file) at ``path`` is first renamed aside and deleted only once the
    new one is in place, so a failure at any point leaves a complete version at ``path`` or,
    for a kill between the two renames, the previous one beside it (``.NAME.old.XXXXXXXX``).
    """
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(os.path.normpath(path))
    staging = tempfile.mkdtemp(prefix=f".{name}.", dir=parent)
    try:
        write(os.path.join(staging, name))
        previous = None
        if os.path.lexists(path):
            previous = tempfile.mkdtemp(prefix=f".{name}.old.", dir=parent)
            os.replace(path, os.path.join(previous, name))
        os.replace(os.path.join(staging, name), path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _images_for(model, images) -> np.ndarray:
    """``images`` as a float32 array shaped like the model's input (a clear error otherwise)."""
    images = np.asarray(list(images) if not hasattr(images, "shape") else images, dtype="float32")
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or images.shape[1:] != expected or len(images) == 0:
        raise ValueError(
            f"representative_data must be images of shape "
            f"(N, {', '.join(map(str, expected))}), got shape {images.shape}"
        )
    return images


def representative_images(model, dataset, count: int = REPRESENTATIVE_IMAGES, data_dir=None):
    """Up to ``count`` training images of ``dataset``, raw 0-255 pixels resized to the model's
    input, to calibrate int8 quantization.

    Args:
        model: the ``keras.Model`` to export.
        dataset: anything `kcnn.data.make_dataset` takes: the model's training data.
        count: how many images (shuffled with a fixed seed, so two exports agree).
        data_dir: folder searched first for the dataset files.
    """
    from kcnn.data import make_dataset

    height, width, channels = model.inputs[0].shape[1:]
    batches, _ = make_dataset(
        dataset,
        count,
        "train",
        image_size=(height, width),
        channels=channels,
        normalize=None,
        cache=False,
        data_dir=data_dir,
    )
    images, _ = next(iter(batches))
    return np.asarray(images, dtype="float32")


def training_dataset(model_path) -> tuple[str, str | None] | None:
    """``(data, data_dir)`` that the run beside ``model_path`` was trained on, from its
    ``run.json`` (or ``settings.json``); None without one."""
    from kcnn.training.rundir import read_settings

    settings = read_settings(os.path.dirname(os.path.abspath(model_path))) or {}
    if not isinstance(settings.get("data"), str):
        return None
    return settings["data"], settings.get("data_dir")


def default_path(model_path, format: str, quantize: str | None = None) -> str:
    """Where ``kcnn export`` writes without ``--out``: beside the model, its name with the
    format's suffix (``best.tflite``, ``best-int8.tflite``, ``best.onnx``, ``best_saved_model``)."""
    stem = os.path.splitext(os.fspath(model_path))[0]
    if format == "saved_model":
        return f"{stem}_saved_model"
    return f"{stem}{'-' + quantize if quantize else ''}{SUFFIXES[format]}"


def load_exported(path):
    """A function ``images -> probabilities`` that runs an exported file in its own runtime:
    ``tf.saved_model.load`` for a folder, LiteRT (``ai_edge_litert``, else ``tf.lite``) for a
    ``.tflite`` file, onnxruntime for an ``.onnx`` file. Neither Keras nor kcnn's layers run:
    this is what a server does with the file.

    Args:
        path: what `export` wrote.

    Raises:
        ValueError: ``path`` is none of the three.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        import tensorflow as tf

        signature = tf.saved_model.load(path).signatures["serving_default"]
        return lambda images: signature(**{INPUT_NAME: tf.constant(images, tf.float32)})[
            OUTPUT_NAME
        ].numpy()
    if path.endswith(".tflite"):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
        runner = Interpreter(model_path=path).get_signature_runner("serving_default")
        return lambda images: runner(**{INPUT_NAME: np.asarray(images, np.float32)})[OUTPUT_NAME]
    if path.endswith(".onnx"):
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda images: session.run(None, {INPUT_NAME: np.asarray(images, np.float32)})[0]
    raise ValueError(
        f"{path!r} is not an exported model: a SavedModel folder, a .tflite or an .onnx file"
    )


def size_on_disk(path) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    path = os.fspath(path)
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def _first_line(error) -> str:
    """The first non-empty line of an exception's message (converters print pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _CallableModule(types.ModuleType):
    """The type of this module: calling it calls `export`, so ``kcnn.export(model, path)`` works
    although ``import kcnn.export`` makes ``kcnn.export`` the module."""

    def __call__(self, *args, **kwargs):
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
