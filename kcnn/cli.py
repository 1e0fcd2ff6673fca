"""The ``kcnn`` command.

Each sub-command has an ``_add_<name>_command`` function that declares its arguments and a
``_run_<name>`` function that does the work; heavy imports happen inside the ``_run_`` functions
so ``kcnn --help`` is instant. The flags several commands share (which data, how it is read,
precision and XLA) are declared once, in the ``_add_*_flags`` functions.

Errors: a mistake the user can fix (`kcnn.errors.UserError`: an unknown model, missing data)
prints one line and exits with status 1, without a traceback; a bad flag or flag value
(``--l1 -1``, ``--model-option norm=bogus``) prints one line and exits with status 2, argparse's
status for usage errors. Any other exception is a bug: it goes through with its traceback, after
one line asking for a report.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys

from kcnn import checks
from kcnn.data.augment_presets import PRESETS as AUGMENT_PRESETS
from kcnn.errors import UserError
from kcnn.options import parse_options

__all__ = ["CommandError", "UsageError", "build_parser", "main", "parse_options"]

_BUG_REPORT = (
    "kcnn: unexpected error, a bug in kcnn or in how it uses a library: please report it to "
    "the kcnn maintainers with the command you ran and the traceback below"
)
_JIT_COMPILE = {"auto": "auto", "on": True, "off": False}
_PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


class CommandError(UserError):
    """A mistake the user can fix, found by the command itself; printed as one line by `main`."""


class UsageError(CommandError):
    """A flag value the command refuses after parsing it (a ``--model-option`` value the builder
    refuses): printed as argparse prints its own usage errors, one line, exit status 2.

    Args:
        flag: the flag that gave the value, e.g. ``"--model-option"``.
        message: what is wrong with it.
    """

    def __init__(self, flag: str, message: str):
        super().__init__(f"argument {flag}: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line (not the whole usage) with status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _checked(check, name: str, read=float):
    """An argparse ``type`` that reads a flag's text with ``read`` and checks the value with
    ``check``, a `kcnn.checks` function (``checks.non_negative_number``...), so a bad value is a
    usage error that names the argument."""

    def parse(text: str):
        try:
            value = read(text)
        except ValueError:
            value = text  # not a number: the check refuses it with its own message
        try:
            return check(name, value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = name
    return parse


@contextlib.contextmanager
def _values_of(flag: str, options: dict):
    """Turn a `UserError` about one of ``options`` (given with ``flag``) into a `UsageError`:
    the bad value came from that flag. Builders check their options when the model is built."""
    try:
        yield
    except UserError as error:
        if error.argument is not None and error.argument in options:
            raise UsageError(flag, str(error)) from error
        raise


def _add_data_flags(
    parser,
    *,
    dataset=None,
    batch_size,
    held_out=True,
    training=True,
    preset=False,
    image_size_help="resize images to this height and width",
):
    """The flags that say which images a command reads and how.

    ``--dataset`` (required when ``dataset`` is None, else its default), ``--data-dir``,
    ``--batch-size``; with ``held_out`` ``--image-size`` and ``--validation-split``; with
    ``training`` ``--augment`` and ``--no-test``. With ``preset`` (``kcnn train``) a flag left
    out is None, so that the preset's value, else `kcnn.training.train`'s default, applies; the
    help shows the default either way.
    """
    given = (lambda value: None) if preset else (lambda value: value)
    if dataset is None:
        parser.add_argument(
            "--dataset", required=True, help="dataset name, 'tfds:NAME' or image folder"
        )
    else:
        parser.add_argument(
            "--dataset",
            default=given(dataset),
            help=f"dataset name, 'tfds:NAME' or image folder (default {dataset})",
        )
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument(
        "--batch-size",
        type=_checked(checks.positive_int, "batch_size", int),
        default=given(batch_size),
        help=f"batch size (default {batch_size})",
    )
    if held_out:
        parser.add_argument(
            "--image-size",
            type=_checked(checks.positive_int, "image_size", int),
            help=image_size_help,
        )
        parser.add_argument(
            "--validation-split",
            default=given(0.1),
            type=_checked(checks.fraction, "validation_split"),
            help="share of the training split held out for validation (default 0.1)",
        )
    if training:
        parser.add_argument(
            "--augment",
            choices=tuple(AUGMENT_PRESETS),
            help="augmentation preset (default none)",
        )
        parser.add_argument(
            "--no-test",
            action="store_true",
            help="skip the final evaluation on the test split (data without one)",
        )


def _add_options_flag(parser, flag: str, example: str):
    """A repeatable ``KEY=VALUE`` flag of builder arguments (read by `kcnn.options.parse_options`;
    a value the builder refuses is a usage error, see `_values_of`)."""
    parser.add_argument(
        flag,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"a builder argument, e.g. {example} (repeatable)",
    )


def _add_hardware_flags(parser, *, preset=False):
    """``--precision``, ``--jit-compile`` and ``--seed``, default auto, auto and 0 (None with
    ``preset``, as in `_add_data_flags`)."""
    parser.add_argument(
        "--precision",
        choices=_PRECISIONS,
        default=None if preset else "auto",
        help="default auto: the fastest the hardware supports",
    )
    parser.add_argument(
        "--jit-compile",
        choices=tuple(_JIT_COMPILE),
        default=None if preset else "auto",
        help="XLA (default auto: on GPU only)",
    )
    seed = _checked(functools.partial(checks.integer, low=0), "seed", int)
    parser.add_argument(
        "--seed",
        type=seed,
        default=None if preset else 0,
        help="seed of the weights, the data and the search (default 0)",
    )


def _add_models_command(subparsers):
    parser = subparsers.add_parser(
        "models",
        help="list every registered model with its parameters and input shape",
        description="Build every registered model with its default arguments and print a table: "
        "name, family, trainable parameters, default input shape, multiply-accumulates per "
        "image at that shape (kcnn.convmath.macs) and the Grad-CAM target layer. With "
        "--model-option, the models that take every option, built with them.",
    )
    parser.add_argument("--family", help="only the models of this family (e.g. resnet, vgg)")
    _add_options_flag(parser, "--model-option", "norm=group or conv=separable")
    parser.set_defaults(run=_run_models)


def _run_models(args):
    import keras

    import kcnn
    from kcnn.convmath import format_count, macs
    from kcnn.models import gradcam_layer

    names = kcnn.list_models(args.family)
    if not names:
        families = sorted({kcnn.model_info(n).family for n in kcnn.list_models()})
        raise CommandError(f"no models in family {args.family!r}; families: {', '.join(families)}")
    options = parse_options(args.model_option)
    names = [name for name in names if _takes_options(name, options)]
    if not names:
        raise CommandError(f"no model takes every option of {sorted(options)}")
    width = max(len(n) for n in names)
    header = (
        f"{'name':<{width}}  {'family':<11} {'parameters':>12} {'input shape':<14} {'MACs':>9}  "
        "grad-cam layer"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        info = kcnn.model_info(name)
        with _values_of("--model-option", options):
            model = kcnn.create_model(name, **options)
        params = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
        shape = "x".join(str(d) for d in model.input_shape[1:])
        print(
            f"{name:<{width}}  {info.family:<11} {params:>12,} {shape:<14} "
            f"{format_count(macs(model)):>9}  {gradcam_layer(model) or '-'}",
            flush=True,
        )
        keras.utils.clear_session()


def _takes_options(name, options) -> bool:
    """Whether the builder of the registered model ``name`` takes every key of ``options``."""
    from kcnn.registry import check_options, model_info

    try:
        check_options(model_info(name).builder, options, name)
    except ValueError:
        return False
    return True


_UNREADABLE_HELP = (
    "An image that cannot be read, or has more pixels than KCNN_MAX_IMAGE_PIXELS (default 100 "
    "million), gets a line of its own and the others are treated; the exit status is then 1."
)
_EXPLAIN_METHODS = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad")
_PIXEL_SCALE_HELP = (
    "multiply the image's 0-255 pixel values by this before the model (default 1: the raw "
    "pixels, which every model kcnn saves takes; 1/255 for a model of your own that expects "
    "inputs in [0, 1])"
)


def _add_explain_command(subparsers):
    parser = subparsers.add_parser(
        "explain",
        help="show which pixels a saved model's prediction rests on (Grad-CAM...)",
        description="For each image, explain a saved .keras model's prediction (or --class-index) "
        "with the chosen method and write OUT/<image name>_<method>.png: the image and the map "
        "laid over it. Images are read as grey or RGB to match the model and resized to its "
        "input. " + _UNREADABLE_HELP,
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG...)")
    parser.add_argument(
        "--method",
        choices=_EXPLAIN_METHODS,
        default="gradcam",
        help="explanation method (default: gradcam)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join("results", "explain"),
        help="folder for the figures (default: results/explain)",
    )
    parser.add_argument(
        "--class-index", type=int, help="explain this class instead of the predicted one"
    )
    parser.add_argument(
        "--layer",
        help="feature-map layer of the CAM methods (default: the model's Grad-CAM target)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help=_PIXEL_SCALE_HELP)
    parser.set_defaults(run=_run_explain)


def _load_image_for(model, path, scale):
    """``path`` as a float32 (H, W, C) array that fits ``model``'s input, times ``scale``: read
    by `kcnn.data.images.read_image` as image folders are (grey or RGB as the model takes, 16-bit
    mapped to 0-255, resized to the model's input, within the pixel limit).

    Raises:
        CommandError: for a model that takes neither 1 nor 3 channels.
        kcnn.data.images.ImageFileError: naming the file, when it cannot be read.
    """
    from kcnn.data.images import read_image

    height, width, channels = model.inputs[0].shape[1:]
    if channels not in (1, 3):
        raise CommandError(
            f"model {model.name!r} takes {channels} channels; images can feed models with 1 "
            "(grey) or 3 (RGB)"
        )
    size = (height, width) if height and width else None
    return read_image(path, channels, size).astype("float32") * scale


def _load_images_for(model, paths, scale) -> tuple[list, list]:
    """The files of ``paths`` that can be read, as `_load_image_for` reads them: ``(loaded,
    problems)``, ``loaded`` the ``(path, image)`` pairs, ``problems`` a line for each other file,
    naming it and saying why."""
    from kcnn.data.images import ImageFileError

    loaded, problems = [], []
    for path in paths:
        try:
            loaded.append((path, _load_image_for(model, path, scale)))
        except ImageFileError as error:
            problems.append(str(error))
    return loaded, problems


def _unreadable_images(problems) -> CommandError:
    """The error that ends a command whose other images were treated: one line per unreadable
    image, each with `main`'s prefix (which `main` adds to the first)."""
    return CommandError("\nkcnn: error: ".join(problems))


def _run_explain(args):
    import keras
    import numpy as np

    from kcnn import load_model, viz

    if args.layer and args.method in ("saliency", "smoothgrad"):
        raise CommandError(f"--layer applies to the CAM methods, not to {args.method}")
    model = load_model(args.model, compile=False)
    options = {"class_index": args.class_index}
    if args.layer:
        options["layer"] = args.layer
    loaded, problems = _load_images_for(model, args.images, args.scale)
    for path, pixels in loaded:
        image = pixels[None]
        heatmap = viz.METHODS[args.method](model, image, **options)
        output = keras.ops.convert_to_numpy(model(image, training=False))[0]
        explained = int(np.argmax(output)) if args.class_index is None else args.class_index
        title = f"{args.method}: class {explained} (output {output[explained]:.3f})"
        name = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(args.out, f"{name}_{args.method}.png")
        viz.save_figure(viz.plot_explanations(image, heatmap, [title]), target)
        print(f"{target}: class {explained}, model output {output[explained]:.3f}")
    if problems:
        raise _unreadable_images(problems)


def _add_visualize_command(subparsers):
    parser = subparsers.add_parser(
        "visualize",
        help="draw a saved model's filters, or its feature maps for an image",
        description="filters: the kernels of a convolutional layer (default: the first), written "
        "to OUT/filters_<layer>.png. feature-maps: the activations of several layers for IMAGE "
        "(default: each stage's output, or four layers spread over the network), written to "
        "OUT/feature_maps_<image name>.png.",
    )
    parser.add_argument("what", choices=("filters", "feature-maps"), help="what to draw")
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("image", nargs="?", help="the image (feature-maps only)")
    parser.add_argument(
        "--layer",
        action="append",
        dest="layers",
        metavar="NAME",
        help="a layer to draw; repeat for several (nested models searched)",
    )
    parser.add_argument(
        "--out",
        default=os.path.join("results", "visualize"),
        help="folder for the figures (default: results/visualize)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help=_PIXEL_SCALE_HELP)
    parser.set_defaults(run=_run_visualize)


def _run_visualize(args):
    from kcnn import load_model, viz

    if args.what == "filters" and args.image:
        raise CommandError("'visualize filters' takes no image")
    if args.what == "feature-maps" and not args.image:
        raise CommandError(
            "'visualize feature-maps' needs an image: kcnn visualize feature-maps MODEL.keras IMAGE"
        )
    model = load_model(args.model, compile=False)
    if args.what == "filters":
        for layer in args.layers or [None]:
            figure = viz.plot_filters(model, layer)
            name = layer or viz.conv_layers(model)[0]
            target = viz.save_figure(figure, os.path.join(args.out, f"filters_{name}.png"))
            print(target)
        return
    image = _load_image_for(model, args.image, args.scale)
    name = os.path.splitext(os.path.basename(args.image))[0]
    figure = viz.plot_feature_maps(model, image, args.layers)
    print(viz.save_figure(figure, os.path.join(args.out, f"feature_maps_{name}.png")))


def _add_export_command(subparsers):
    parser = subparsers.add_parser(
        "export",
        help="write a saved model as a SavedModel, TFLite or ONNX file for serving",
        description="Export a .keras model (safe mode) for serving: a TensorFlow SavedModel "
        "folder (serving_default signature: input 'image', output 'predictions'), a TFLite file "
        "(LiteRT), or an ONNX file (onnxruntime; needs pip install 'kcnn[export]'). Like the "
        "model, the exported file takes raw 0-255 pixels. int8 quantization calibrates on "
        "training images: those of --dataset, or of the dataset the run.json beside the model "
        "names.",
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("--format", required=True, choices=("saved_model", "tflite", "onnx"))
    parser.add_argument(
        "--out",
        help="file or folder to write (default beside the model: "
        "NAME_saved_model, NAME[-QUANTIZE].tflite, NAME.onnx)",
    )
    parser.add_argument(
        "--quantize",
        choices=("dynamic", "float16", "int8"),
        help="tflite only: dynamic-range int8 weights, float16 weights, or int8 "
        "weights and activations (default: float32)",
    )
    parser.add_argument("--dataset", help="training data for int8 calibration (default: the run's)")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--overwrite", action="store_true", help="replace what is at --out")
    parser.set_defaults(run=_run_export)


def _run_export(args):
    from kcnn import export, load_model

    if args.quantize and args.format != "tflite":
        raise CommandError(f"--quantize applies to --format tflite only, not {args.format}")
    if (args.dataset or args.data_dir) and args.quantize != "int8":
        raise CommandError(
            "--dataset and --data-dir give int8's calibration images: pass them "
            "with --quantize int8 only"
        )
    out = args.out or export.default_path(args.model, args.format, args.quantize)
    if os.path.lexists(out) and not args.overwrite:
        raise CommandError(f"{out} already exists; pass --overwrite to replace it")
    model = load_model(args.model, compile=False)
    images = None
    if args.quantize == "int8":
        dataset, data_dir = args.dataset, args.data_dir
        if dataset is None:
            dataset, data_dir = export.training_dataset(args.model) or (None, None)
            data_dir = args.data_dir or data_dir
        if dataset is None:
            raise CommandError(
                f"--quantize int8 calibrates on training images: pass --dataset "
                f"(no run.json beside {args.model} names the data)"
            )
        images = export.representative_images(model, dataset, data_dir=data_dir)
    try:
        export.export(
            model,
            out,
            args.format,
            quantize=args.quantize,
            representative_data=images,
            overwrite=args.overwrite,
        )
    except OSError as error:  # a folder that cannot be written: atomic_path's message names it
        if isinstance(error, FileNotFoundError):
            raise
        raise CommandError(str(error)) from error
    kind = args.format + (f", {args.quantize}" if args.quantize else "")
    print(f"{out} ({kind}, {export.size_on_disk(out) / 1e6:.2f} MB; takes raw 0-255 pixels)")


def _add_train_command(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset, with checkpoints, logs and resume",
        description="Train a registered model on a dataset (a name such as fashion_mnist, "
        "'tfds:NAME', or a folder of images with one sub-folder per class) and evaluate it on "
        "the test split. The run directory (--out) gets best.keras, last.keras, history.csv, "
        "TensorBoard logs, curves.png and run.json; a run killed at any moment continues with "
        "--resume. Flags left out take the preset's values (--preset), else kcnn's defaults.",
    )
    parser.add_argument(
        "--preset", help="a named recipe (e.g. fashion-fast); other flags override it"
    )
    parser.add_argument("--model", help="registry name (see `kcnn models`; default simple_cnn)")
    _add_options_flag(parser, "--model-option", "stem=cifar or width=0.5")
    _add_data_flags(parser, dataset="fashion_mnist", batch_size=128, preset=True)
    parser.add_argument(
        "--epochs", type=_checked(checks.positive_int, "epochs", int), help="epochs (default 10)"
    )
    parser.add_argument("--optimizer", choices=("adam", "sgd"), help="default adam")
    parser.add_argument(
        "--lr",
        type=_checked(checks.positive_number, "learning_rate"),
        help="(peak) learning rate (default 1e-3 adam, 0.1 sgd)",
    )
    parser.add_argument(
        "--schedule",
        choices=("constant", "plateau", "cosine", "onecycle"),
        help="learning-rate schedule (default constant)",
    )
    parser.add_argument(
        "--weight-decay",
        type=_checked(checks.non_negative_number, "weight_decay"),
        help="decoupled weight decay (default 0)",
    )
    parser.add_argument(
        "--l1",
        type=_checked(checks.non_negative_number, "l1"),
        help="L1 penalty on the kernels, for sparse weights (default 0)",
    )
    parser.add_argument(
        "--l2",
        type=_checked(checks.non_negative_number, "l2"),
        help="L2 penalty on the kernels (default 0)",
    )
    parser.add_argument(
        "--label-smoothing", type=_checked(checks.fraction, "label_smoothing"), help="default 0"
    )
    parser.add_argument(
        "--erasing",
        metavar="P",
        type=_checked(checks.probability, "erasing"),
        help="apply RandomErasing to a training image with probability P, on top of "
        "--augment (default 0)",
    )
    parser.add_argument(
        "--test-time-flip",
        action=argparse.BooleanOptionalAction,
        help="evaluate the test split averaging each image's prediction with its mirror "
        "image's (default off)",
    )
    parser.add_argument(
        "--early-stopping",
        metavar="PATIENCE",
        type=_checked(checks.positive_int, "early_stopping", int),
        help="stop after PATIENCE epochs without a better validation loss",
    )
    _add_hardware_flags(parser, preset=True)
    parser.add_argument(
        "--strategy",
        choices=("auto", "default", "mirrored", "multiworker"),
        help="tf.distribute strategy (default auto; multiworker reads TF_CONFIG)",
    )
    parser.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="enable TensorFlow op determinism (identical weights run to run)",
    )
    parser.add_argument("--out", help="run directory (default saved_models/MODEL-DATASET)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last completed epoch, with the "
        "settings it was started with (flags given must agree with them)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run already in --out and start again (refused when the "
        "folder holds files a kcnn run did not write)",
    )
    parser.set_defaults(run=_run_train)


_TRAIN_FLAGS = {
    "model": "model",
    "dataset": "data",
    "data_dir": "data_dir",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "augment": "augment",
    "erasing": "erasing",
    "test_time_flip": "test_time_flip",
    "image_size": "image_size",
    "validation_split": "validation_split",
    "optimizer": "optimizer",
    "lr": "learning_rate",
    "schedule": "schedule",
    "weight_decay": "weight_decay",
    "l1": "l1",
    "l2": "l2",
    "label_smoothing": "label_smoothing",
    "early_stopping": "early_stopping",
    "precision": "precision",
    "strategy": "strategy",
    "seed": "seed",
    "deterministic": "deterministic",
}


def _train_arguments(args) -> dict:
    from kcnn.training import preset

    arguments = preset(args.preset) if args.preset else {}
    for flag, name in _TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            arguments[name] = value
    if args.jit_compile is not None:
        arguments["jit_compile"] = _JIT_COMPILE[args.jit_compile]
    if args.augment == "none":
        arguments["augment"] = None
    if args.no_test:
        arguments["test"] = False
    options = parse_options(args.model_option)
    if options:
        arguments["model_kwargs"] = {**arguments.get("model_kwargs", {}), **options}
    if args.resume:  # the run's own settings for what the command line leaves out
        for name, value in _recorded_settings(args.out or _default_out(arguments)).items():
            arguments.setdefault(name, value)
    arguments.setdefault("model", "simple_cnn")
    arguments.setdefault("data", "fashion_mnist")
    arguments["out"] = args.out or _default_out(arguments)
    arguments["resume"] = args.resume
    arguments["overwrite"] = args.overwrite
    return arguments


def _default_out(arguments) -> str:
    """``saved_models/MODEL-DATASET``, the run directory when ``--out`` is not given."""
    dataset = os.path.basename(os.path.normpath(str(arguments.get("data", "fashion_mnist"))))
    model = arguments.get("model", "simple_cnn")
    return os.path.join("saved_models", f"{model}-{dataset.replace(':', '_')}")


def _recorded_settings(run_dir) -> dict:
    """The settings the run in ``run_dir`` was started with that `train` takes ({} without)."""
    import inspect

    from kcnn.training import train
    from kcnn.training.rundir import read_settings

    names = inspect.signature(train).parameters
    return {name: value for name, value in (read_settings(run_dir) or {}).items() if name in names}


def _run_train(args):
    from kcnn.training import TrainingDiverged, train

    arguments = _train_arguments(args)
    model, data = arguments.pop("model"), arguments.pop("data")
    print(f"kcnn: training {model} on {data} -> {arguments['out']}", flush=True)
    try:
        with _values_of("--model-option", parse_options(args.model_option)):
            result = train(model, data, **arguments)
    except TrainingDiverged as error:
        raise CommandError(str(error)) from error
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise CommandError(str(error)) from error
    print()
    print(result.summary())
    if result.run_dir:
        curves = _save_curves(result)
        print(f"curves       {curves}")


def _save_curves(result) -> str:
    from kcnn import viz
    from kcnn.training.rundir import CURVES

    return viz.save_figure(_curves_figure(result.history), os.path.join(result.run_dir, CURVES))


def _curves_figure(history):
    """The loss and accuracy curves (training and validation) of a run's ``history``."""
    from kcnn import viz

    curves = {k: v for k, v in history.items() if k.replace("val_", "") in ("loss", "accuracy")}
    return viz.plot_history(curves)


def _add_evaluate_command(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy and loss of a saved model on a dataset split",
        description="Load a .keras model (safe mode; .h5 and SavedModel are refused) and "
        "evaluate it on a split of a dataset. The images are fed as raw 0-255 pixels, resized to "
        "the model's input, as `kcnn train` feeds them. On the dataset the run beside the model "
        "(its run.json) trained on, the train and validation splits are that run's: its "
        "validation share and seed.",
    )
    parser.add_argument("model", help="the .keras model file")
    _add_data_flags(parser, batch_size=256, held_out=False, training=False)
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test")
    parser.add_argument(
        "--test-time-flip",
        action="store_true",
        help="average each image's prediction with its mirror image's",
    )
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from kcnn import load_model
    from kcnn.data import make_dataset
    from kcnn.training import classification_loss, flip_averaged

    model = load_model(args.model, compile=False)
    if args.test_time_flip:
        model = flip_averaged(model)
    height, width, channels = model.inputs[0].shape[1:]
    size = (height, width) if height and width else None
    validation_split, seed = _hold_out(args.model, args.dataset)
    try:
        dataset, info = make_dataset(
            args.dataset,
            args.batch_size,
            split=args.split,
            image_size=size,
            channels=channels,
            normalize=None,
            data_dir=args.data_dir,
            validation_split=validation_split,
            seed=seed,
        )
    except ValueError as error:
        if args.split == "validation" and not validation_split:  # the data has no split of its own
            raise CommandError(
                f"the run of {args.model} held out no validation images (validation_split 0): "
                "it trained on the whole training split"
            ) from error
        raise
    classes = model.outputs[0].shape[-1]
    if classes != info.num_classes:
        raise CommandError(
            f"{args.model} predicts {classes} classes but {info.name} has {info.num_classes}"
        )
    model.compile(loss=classification_loss(model), metrics=["accuracy"])
    metrics = model.evaluate(dataset, verbose=0, return_dict=True)
    mirrored = ", with mirror images" if args.test_time_flip else ""
    print(
        f"{info.name} ({args.split}, {info.num_examples:,} images{mirrored}): "
        f"accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}"
    )


def _hold_out(model_path, dataset) -> tuple[float, int]:
    """``(validation_split, seed)`` of the run beside ``model_path`` when it trained on
    ``dataset``, so that the train and validation splits evaluated are the images it trained
    and was validated on; `kcnn.data.make_dataset`'s defaults otherwise."""
    from kcnn.training.rundir import read_settings

    settings = read_settings(os.path.dirname(os.path.abspath(model_path))) or {}
    data = settings.get("data")
    same = data == dataset or (
        isinstance(data, str)
        and os.path.exists(data)
        and os.path.exists(dataset)
        and os.path.samefile(data, dataset)
    )
    if not same:
        return 0.1, 0
    seed = settings.get("seed")
    return settings.get("validation_split", 0.1), 0 if seed is None else seed


def _add_predict_command(subparsers):
    parser = subparsers.add_parser(
        "predict",
        help="top-k classes of images under a saved model",
        description="Load a .keras model (safe mode) and print the top-k classes of each image, "
        "with the class names of the run.json that `kcnn train` wrote next to the model (class "
        "indices without one). Images are fed as raw 0-255 pixels, resized to the model's input. "
        + _UNREADABLE_HELP,
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG...)")
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per image (default 3)")
    parser.set_defaults(run=_run_predict)


def _class_names(model_path) -> list | None:
    """The class names in the run.json beside ``model_path`` (None without one). A run.json
    that cannot be read costs only the names: a warning line, and classes shown by index."""
    from kcnn.training import read_run

    try:
        run = read_run(os.path.dirname(os.path.abspath(model_path))) or {}
    except (OSError, ValueError) as error:
        print(f"kcnn: warning: {error}; classes are shown by index", file=sys.stderr)
        return None
    return run.get("class_names")


def _run_predict(args):
    import keras
    import numpy as np

    from kcnn import load_model
    from kcnn.training.optimization import outputs_probabilities

    if args.top_k < 1:
        raise CommandError(f"--top-k must be at least 1, got {args.top_k}")
    model = load_model(args.model, compile=False)
    names = _class_names(args.model)
    loaded, problems = _load_images_for(model, args.images, 1.0)
    if loaded:
        paths, images = zip(*loaded)
        outputs = model.predict(np.stack(images), verbose=0)
        if not outputs_probabilities(model):
            outputs = keras.ops.softmax(outputs)
        outputs = keras.ops.convert_to_numpy(outputs)
        for path, scores in zip(paths, outputs):
            top = np.argsort(scores)[::-1][: args.top_k]
            ranked = ", ".join(
                f"{names[i] if names and i < len(names) else i} {scores[i]:.3f}" for i in top
            )
            print(f"{path}: {ranked}")
    if problems:
        raise _unreadable_images(problems)


def _add_transfer_command(subparsers):
    parser = subparsers.add_parser(
        "transfer",
        help="transfer learning: a new head on a pretrained backbone, then fine-tuning",
        description="Build a transfer model (kcnn.transfer.build: the backbone's own "
        "preprocessing, the backbone, a new float32 head), train it on a dataset with the "
        "strategy's phases (frozen: the head only; finetune: everything at a small learning "
        "rate; progressive: the head, then the top blocks or all at a lower one), evaluate it on "
        "the test split and save OUT/model.keras. The model takes raw 0-255 pixels. Each phase "
        "keeps its checkpoints and logs in OUT/phase<i>.",
    )
    parser.add_argument(
        "--backbone",
        required=True,
        help="Keras Applications name (ResNet50, MobileNetV2, EfficientNetB0...) "
        "or kcnn registry name (resnet18, tiny_resnet...)",
    )
    _add_data_flags(
        parser,
        batch_size=32,
        image_size_help="height and width of the model's "
        "input (default the backbone's: 224 for Keras Applications)",
    )
    parser.add_argument(
        "--strategy",
        choices=("frozen", "finetune", "progressive"),
        default="progressive",
        help="default progressive",
    )
    parser.add_argument(
        "--weights",
        default="imagenet",
        help="imagenet (Keras Applications; downloaded once), none, or a weights "
        "file of the backbone (default imagenet)",
    )
    parser.add_argument(
        "--epochs",
        type=_checked(checks.positive_int, "epochs", int),
        default=10,
        help="epochs of all phases (default 10)",
    )
    parser.add_argument(
        "--head-epochs",
        type=_checked(checks.positive_int, "head_epochs", int),
        help="progressive: epochs of the head alone (default half)",
    )
    parser.add_argument(
        "--unfreeze",
        default="all",
        help="progressive: blocks unfrozen after the head phase, or all (default)",
    )
    parser.add_argument(
        "--lr",
        type=_checked(checks.positive_number, "learning_rate"),
        help="learning rate of the head (default 1e-3)",
    )
    parser.add_argument(
        "--finetune-lr",
        type=_checked(checks.positive_number, "learning_rate"),
        help="learning rate when the backbone trains (default 1e-4 finetune, 1e-5 progressive)",
    )
    parser.add_argument(
        "--dropout",
        type=_checked(checks.fraction, "dropout"),
        default=0.2,
        help="before the new head (default 0.2)",
    )
    _add_options_flag(parser, "--backbone-option", "stem=cifar or alpha=0.5")
    _add_hardware_flags(parser)
    parser.add_argument("--out", help="run folder (default saved_models/transfer-BACKBONE-DATASET)")
    parser.add_argument(
        "--overwrite", action="store_true", help="delete the runs already in --out and start again"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run killed in --out, with the same flags: the phases that had ended "
        "are loaded, the one that was running continues at its last completed epoch",
    )
    parser.set_defaults(run=_run_transfer)


def _run_transfer(args):
    from kcnn import data, registry, transfer, viz
    from kcnn.files import save_model
    from kcnn.training import TrainingDiverged, precision_policy

    weights = None if args.weights.lower() == "none" else args.weights
    unfreeze = args.unfreeze if args.unfreeze == "all" else _integer("--unfreeze", args.unfreeze)
    options = parse_options(args.backbone_option, "--backbone-option")
    _, info = data.load(args.dataset, "train", data_dir=args.data_dir)
    if args.backbone in registry.list_models():
        size = args.image_size or registry.model_info(args.backbone).input_shape[0]
        shape = (size, size, info.channels)
    else:
        shape = (args.image_size or 224, args.image_size or 224, 3)
    phases = transfer.schedule(
        args.strategy,
        args.epochs,
        learning_rate=args.lr or transfer.HEAD_LEARNING_RATE,
        finetune_learning_rate=args.finetune_lr,
        head_epochs=args.head_epochs,
        unfreeze=unfreeze,
    )
    with precision_policy(args.precision), _values_of("--backbone-option", options):
        model = transfer.build(
            args.backbone,
            info.num_classes,
            args.strategy,
            weights=weights,
            input_shape=shape,
            dropout=args.dropout,
            backbone_options=options,
        )
    dataset = os.path.basename(os.path.normpath(args.dataset)).replace(":", "_")
    out = args.out or os.path.join("saved_models", f"transfer-{args.backbone}-{dataset}")
    print(
        f"kcnn: {args.strategy} transfer of {args.backbone} ({args.weights}) to {args.dataset} "
        f"({info.num_classes} classes, {'x'.join(map(str, shape))}) -> {out}",
        flush=True,
    )
    try:
        result = transfer.train(
            model,
            args.dataset,
            phases,
            batch_size=args.batch_size,
            validation_split=args.validation_split,
            test=not args.no_test,
            augment=None if args.augment == "none" else args.augment,
            data_dir=args.data_dir,
            seed=args.seed,
            out=out,
            resume=args.resume,
            overwrite=args.overwrite,
            jit_compile=_JIT_COMPILE[args.jit_compile],
        )
    except TrainingDiverged as error:
        raise CommandError(str(error)) from error
    path = os.path.join(out, "model.keras")
    save_model(result.model, path)
    curves_path = viz.save_figure(_curves_figure(result.history), os.path.join(out, "curves.png"))
    print()
    print(result.summary())
    print(f"model file   {path} (takes raw 0-255 pixels)")
    print(f"curves       {curves_path}")


def _integer(flag, text) -> int:
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"{flag} must be an integer or 'all', got {text!r}") from None


def _add_tune_command(subparsers):
    parser = subparsers.add_parser(
        "tune",
        help="search a CNN or ResNet space's hyperparameters with keras-tuner",
        description="Search the hyperparameters of a kcnn search space (kcnn.tuning: cnn = "
        "configurable_cnn's blocks, filters, kernel size, normalization, convolution kind, "
        "dropout, dense width, optimizer, learning rate, weight decay and augmentation; resnet = "
        "blocks per stage, width, attention, drop-path rate, normalization, convolution kind and "
        "learning rate) on a dataset, with early stopping "
        "in each trial. OUT/PROJECT gets results.csv and results.md (every trial), "
        "best_model.keras and best_hyperparameters.json. Run the same command again to resume "
        "an interrupted search. For a distributed search start it once per process with "
        "KERASTUNER_TUNER_ID (chief, tuner0, tuner1...), KERASTUNER_ORACLE_IP and "
        "KERASTUNER_ORACLE_PORT set, and a shared --out.",
    )
    parser.add_argument("--space", choices=("cnn", "resnet"), default="cnn", help="default cnn")
    _add_data_flags(parser, dataset="fashion_mnist", batch_size=128, training=False)
    parser.add_argument(
        "--tuner",
        choices=("random", "hyperband", "bayesian"),
        default="hyperband",
        help="default hyperband",
    )
    parser.add_argument(
        "--max-trials",
        type=_checked(checks.positive_int, "max_trials", int),
        default=10,
        help="number of trials (for hyperband, a cap on its schedule; default 10)",
    )
    parser.add_argument(
        "--epochs",
        type=_checked(checks.positive_int, "epochs", int),
        default=10,
        help="most epochs of a trial (hyperband's max_epochs; default 10)",
    )
    parser.add_argument(
        "--patience",
        type=_checked(checks.positive_int, "patience", int),
        default=3,
        help="early stopping's patience on the objective (default 3)",
    )
    parser.add_argument("--objective", default="val_accuracy", help="default val_accuracy")
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fix a hyperparameter of the space, e.g. conv_blocks=3, "
        "norm=batch, augment=light (repeatable)",
    )
    _add_hardware_flags(parser)
    parser.add_argument(
        "--out",
        default=os.path.join("results", "tune"),
        help="folder of the searches (default results/tune)",
    )
    parser.add_argument("--project", help="the search's sub-folder (default SPACE_TUNER)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the search already in OUT/PROJECT instead of resuming it",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-trial output")
    parser.set_defaults(run=_run_tune)


def _fixed_hyperparameters(pairs, hypermodel):
    """``--fix NAME=VALUE`` flags as a keras-tuner ``HyperParameters`` of ``hp.Fixed`` values."""
    import keras_tuner

    space = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(space)
    known = list(dict.fromkeys(hp.name for hp in space.space))
    fixed = keras_tuner.HyperParameters()
    for pair in pairs:
        if "=" not in pair or not pair.partition("=")[0].strip():
            raise CommandError(f"--fix must be NAME=VALUE, got {pair!r}")
        ((name, value),) = parse_options([pair], "--fix").items()
        if name not in known:
            raise CommandError(
                f"--fix: the {hypermodel.name} space has no hyperparameter "
                f"{name!r}; it has {', '.join(known)}"
            )
        fixed.Fixed(name, value)
    return fixed


def _run_tune(args):
    from kcnn import tuning

    data = tuning.SearchData(
        args.dataset,
        batch_size=args.batch_size,
        image_size=args.image_size,
        validation_split=args.validation_split,
        data_dir=args.data_dir,
        seed=args.seed,
    )
    info = data.info
    hypermodel = tuning.SPACES[args.space](
        info,
        precision=args.precision,
        jit_compile=_JIT_COMPILE[args.jit_compile],
    )
    project = args.project or f"{args.space}_{args.tuner}"
    print(
        f"kcnn: {args.tuner} search of the {args.space} space on {info.name} "
        f"({info.num_examples} training images, {'x'.join(map(str, info.image_shape))}, "
        f"{info.num_classes} classes) -> {os.path.join(args.out, project)}",
        flush=True,
    )
    try:
        result = tuning.search(
            hypermodel,
            data,
            tuner=args.tuner,
            objective=args.objective,
            max_trials=args.max_trials,
            epochs=args.epochs,
            patience=args.patience,
            directory=args.out,
            project_name=project,
            seed=args.seed,
            overwrite=args.overwrite,
            hyperparameters=_fixed_hyperparameters(args.fix, hypermodel),
            verbose=0 if args.quiet else "auto",
        )
    except tuning.SearchError as error:
        raise CommandError(str(error)) from error
    if result.role == "worker":
        print(f"worker finished; the chief writes the results in {result.project_dir}")
        return
    completed = sum(row["status"] == "COMPLETED" for row in result.trials)
    print()
    print(f"trials       {len(result.trials)} ({completed} completed) in {result.seconds:.0f} s")
    print(f"best         trial {result.best_trial}: {result.objective} {result.best_score:.4f}")
    for name, value in result.best_hyperparameters.items():
        print(f"  {name:<22} {value}")
    print(f"results      {result.results_markdown} (and .csv)")
    print(f"model        {result.model_path} (takes raw 0-255 pixels)")
    print(f"parameters   {result.hyperparameters_path}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kcnn",
        description="Convolutional networks for Keras 3: list, train, evaluate and explain models.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_models_command(subparsers)
    _add_train_command(subparsers)
    _add_evaluate_command(subparsers)
    _add_predict_command(subparsers)
    _add_transfer_command(subparsers)
    _add_tune_command(subparsers)
    _add_explain_command(subparsers)
    _add_visualize_command(subparsers)
    _add_export_command(subparsers)
    for command in subparsers.choices.values():
        command.set_defaults(parser=command)  # `main` reports usage errors through it
    return parser


def main(argv=None) -> int:
    """Run the ``kcnn`` command with ``argv`` (default ``sys.argv[1:]``) and return its exit
    status: 0, 1 for a mistake the user can fix (one line), 130 when interrupted.

    A bad flag or flag value ends with ``SystemExit(2)`` after one line, as argparse does. Any
    other exception -- a bug -- is raised again after one line asking for a report, so that its
    traceback is shown.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UsageError as error:
        args.parser.error(str(error))
    except KeyboardInterrupt:
        print("kcnn: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not _is_user_error(error):
            print(_BUG_REPORT, file=sys.stderr)
            raise
        print(f"kcnn: error: {error}", file=sys.stderr)
        return 1
    return 0


def _is_user_error(error: Exception) -> bool:
    """Whether ``error`` is a mistake the user can fix rather than a bug.

    A `kcnn.errors.UserError` is one. So is a ``ValueError`` or ``FileNotFoundError`` raised by
    kcnn's own code (the innermost frame of its traceback is in the ``kcnn`` package): kcnn
    raises ``ValueError`` only for bad input (DESIGN.md), and modules that validate input without
    `kcnn.checks` still raise plain ``ValueError``. The same types raised inside Keras,
    TensorFlow or NumPy are bugs: kcnn checks what it passes them.
    """
    if isinstance(error, UserError):
        return True
    if not isinstance(error, (ValueError, FileNotFoundError)) or error.__traceback__ is None:
        return False
    frame = error.__traceback__
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "")
    return module == "kcnn" or module.startswith("kcnn.")


if __name__ == "__main__":
    sys.exit(main())
