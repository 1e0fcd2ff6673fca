"""The ``kcnn`` command.

Each sub-command has an ``_add_<name>_command`` function that declares its arguments and a
``_run_<name>`` function that does the work; heavy imports happen inside the ``_run_`` functions
so ``kcnn --help`` is instant. Errors a user can fix (an unknown model, missing data) print one
line and exit with status 1, without a traceback; a bad flag or flag value (``--l1 -1``) prints
one line and exits with status 2, argparse's status for usage errors.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from kcnn import checks


class CommandError(Exception):
    """An error the user can fix; printed as one line by `main`."""


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


def _add_models_command(subparsers):
    parser = subparsers.add_parser(
        "models", help="list every registered model with its parameters and input shape",
        description="Build every registered model with its default arguments and print a table: "
        "name, family, trainable parameters, default input shape, multiply-accumulates per "
        "image at that shape (kcnn.convmath.macs) and the Grad-CAM target layer. With "
        "--model-option, the models that take every option, built with them.",
    )
    parser.add_argument("--family", help="only the models of this family (e.g. resnet, vgg)")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a builder argument, e.g. norm=group or conv=separable (repeatable)")
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
        "explain", help="show which pixels a saved model's prediction rests on (Grad-CAM...)",
        description="For each image, explain a saved .keras model's prediction (or --class-index) "
        "with the chosen method and write OUT/<image name>_<method>.png: the image and the map "
        "laid over it. Images are read as grey or RGB to match the model and resized to its "
        "input. " + _UNREADABLE_HELP,
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG...)")
    parser.add_argument("--method", choices=_EXPLAIN_METHODS, default="gradcam",
                        help="explanation method (default: gradcam)")
    parser.add_argument("--out", default=os.path.join("results", "explain"),
                        help="folder for the figures (default: results/explain)")
    parser.add_argument("--class-index", type=int,
                        help="explain this class instead of the predicted one")
    parser.add_argument("--layer", help="feature-map layer of the CAM methods (default: the "
                        "model's Grad-CAM target)")
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
        "visualize", help="draw a saved model's filters, or its feature maps for an image",
        description="filters: the kernels of a convolutional layer (default: the first), written "
        "to OUT/filters_<layer>.png. feature-maps: the activations of several layers for IMAGE "
        "(default: each stage's output, or four layers spread over the network), written to "
        "OUT/feature_maps_<image name>.png.",
    )
    parser.add_argument("what", choices=("filters", "feature-maps"), help="what to draw")
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("image", nargs="?", help="the image (feature-maps only)")
    parser.add_argument("--layer", action="append", dest="layers", metavar="NAME",
                        help="a layer to draw; repeat for several (nested models searched)")
    parser.add_argument("--out", default=os.path.join("results", "visualize"),
                        help="folder for the figures (default: results/visualize)")
    parser.add_argument("--scale", type=float, default=1.0, help=_PIXEL_SCALE_HELP)
    parser.set_defaults(run=_run_visualize)


def _run_visualize(args):
    from kcnn import load_model, viz

    if args.what == "filters" and args.image:
        raise CommandError("'visualize filters' takes no image")
    if args.what == "feature-maps" and not args.image:
        raise CommandError("'visualize feature-maps' needs an image: kcnn visualize feature-maps "
                           "MODEL.keras IMAGE")
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
        "export", help="write a saved model as a SavedModel, TFLite or ONNX file for serving",
        description="Export a .keras model (safe mode) for serving: a TensorFlow SavedModel "
        "folder (serving_default signature: input 'image', output 'predictions'), a TFLite file "
        "(LiteRT), or an ONNX file (onnxruntime; needs pip install 'kcnn[export]'). Like the "
        "model, the exported file takes raw 0-255 pixels. int8 quantization calibrates on "
        "training images: those of --dataset, or of the dataset the run.json beside the model "
        "names.",
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("--format", required=True, choices=("saved_model", "tflite", "onnx"))
    parser.add_argument("--out", help="file or folder to write (default beside the model: "
                        "NAME_saved_model, NAME[-QUANTIZE].tflite, NAME.onnx)")
    parser.add_argument("--quantize", choices=("dynamic", "float16", "int8"),
                        help="tflite only: dynamic-range int8 weights, float16 weights, or int8 "
                        "weights and activations (default: float32)")
    parser.add_argument("--dataset", help="training data for int8 calibration (default: the run's)")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--overwrite", action="store_true", help="replace what is at --out")
    parser.set_defaults(run=_run_export)


def _run_export(args):
    from kcnn import export, load_model

    if args.quantize and args.format != "tflite":
        raise CommandError(f"--quantize applies to --format tflite only, not {args.format}")
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
            raise CommandError(f"--quantize int8 calibrates on training images: pass --dataset "
                               f"(no run.json beside {args.model} names the data)")
        images = export.representative_images(model, dataset, data_dir=data_dir)
    try:
        export.export(model, out, args.format, quantize=args.quantize,
                      representative_data=images, overwrite=args.overwrite)
    except OSError as error:  # a folder that cannot be written: atomic_path's message names it
        if isinstance(error, FileNotFoundError):
            raise
        raise CommandError(str(error)) from error
    kind = args.format + (f", {args.quantize}" if args.quantize else "")
    print(f"{out} ({kind}, {export.size_on_disk(out) / 1e6:.2f} MB; takes raw 0-255 pixels)")


def _add_train_command(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model on a dataset, with checkpoints, logs and resume",
        description="Train a registered model on a dataset (a name such as fashion_mnist, "
        "'tfds:NAME', or a folder of images with one sub-folder per class) and evaluate it on "
        "the test split. The run directory (--out) gets best.keras, last.keras, history.csv, "
        "TensorBoard logs, curves.png and run.json; a run killed at any moment continues with "
        "--resume. Flags left out take the preset's values (--preset), else kcnn's defaults.",
    )
    parser.add_argument("--preset", help="a named recipe (e.g. fashion-fast); other flags override it")
    parser.add_argument("--model", help="registry name (see `kcnn models`; default simple_cnn)")
    parser.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a builder argument, e.g. stem=cifar or width=0.5 (repeatable)")
    parser.add_argument("--dataset", help="dataset name, 'tfds:NAME' or image folder "
                        "(default fashion_mnist)")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--epochs", type=_checked(checks.positive_int, "epochs", int),
                        help="epochs (default 10)")
    parser.add_argument("--batch-size", type=_checked(checks.positive_int, "batch_size", int),
                        help="global batch size (default 128)")
    parser.add_argument("--augment", help="augmentation preset: none, light, standard, strong")
    parser.add_argument("--image-size", type=_checked(checks.positive_int, "image_size", int),
                        help="resize images to this height and width")
    parser.add_argument("--validation-split", type=_checked(checks.fraction, "validation_split"),
                        help="share of the training split held out for validation (default 0.1)")
    parser.add_argument("--no-test", action="store_true",
                        help="skip the final evaluation on the test split (data without one)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), help="default adam")
    parser.add_argument("--lr", type=_checked(checks.positive_number, "learning_rate"),
                        help="(peak) learning rate (default 1e-3 adam, 0.1 sgd)")
    parser.add_argument("--schedule", choices=("constant", "plateau", "cosine", "onecycle"),
                        help="learning-rate schedule (default constant)")
    parser.add_argument("--weight-decay", type=_checked(checks.non_negative_number, "weight_decay"),
                        help="decoupled weight decay (default 0)")
    parser.add_argument("--l1", type=_checked(checks.non_negative_number, "l1"),
                        help="L1 penalty on the kernels, for sparse weights (default 0)")
    parser.add_argument("--l2", type=_checked(checks.non_negative_number, "l2"),
                        help="L2 penalty on the kernels (default 0)")
    parser.add_argument("--label-smoothing", type=_checked(checks.fraction, "label_smoothing"),
                        help="default 0")
    parser.add_argument("--early-stopping", type=_checked(checks.positive_int, "early_stopping", int),
                        metavar="PATIENCE",
                        help="stop after PATIENCE epochs without a better validation loss")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                        help="default auto: the fastest the hardware supports")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"),
                        help="XLA (default auto: on GPU only)")
    parser.add_argument("--strategy", choices=("auto", "default", "mirrored", "multiworker"),
                        help="tf.distribute strategy (default auto; multiworker reads TF_CONFIG)")
    parser.add_argument("--seed", type=_checked(functools.partial(checks.integer, low=0), "seed", int),
                        help="default 0")
    parser.add_argument("--deterministic", action="store_true", default=None,
                        help="enable TensorFlow op determinism (identical weights run to run)")
    parser.add_argument("--out", help="run directory (default saved_models/MODEL-DATASET)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last completed epoch, with the "
                        "settings it was started with (flags given must agree with them)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run already in --out and start again (refused when the "
                        "folder holds files a kcnn run did not write)")
    parser.set_defaults(run=_run_train)


_TRAIN_FLAGS = {
    "model": "model", "dataset": "data", "data_dir": "data_dir", "epochs": "epochs",
    "batch_size": "batch_size", "augment": "augment", "image_size": "image_size",
    "validation_split": "validation_split", "optimizer": "optimizer", "lr": "learning_rate",
    "schedule": "schedule", "weight_decay": "weight_decay", "l1": "l1", "l2": "l2",
    "label_smoothing": "label_smoothing", "early_stopping": "early_stopping",
    "precision": "precision", "strategy": "strategy", "seed": "seed",
    "deterministic": "deterministic",
}


def parse_options(pairs, flag: str = "--model-option") -> dict:
    """``{key: value}`` from ``KEY=VALUE`` strings, each value read as a Python literal
    (``0.5``, ``True``, ``"cifar"``, ``(3, 3)``) or else kept as text -- the ``--model-option``
    and ``--backbone-option`` flags of the commands and of the experiments.

    Raises:
        CommandError: for a string without ``=`` or without a key; the message names ``flag``.
    """
    import ast

    options = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"{flag} must be KEY=VALUE, got {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        options[key.strip()] = value
    return options


def _train_arguments(args) -> dict:
    from kcnn.training import preset

    arguments = preset(args.preset) if args.preset else {}
    for flag, name in _TRAIN_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            arguments[name] = value
    if args.jit_compile is not None:
        arguments["jit_compile"] = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
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
    return os.path.join("saved_models", f"{arguments.get('model', 'simple_cnn')}-{dataset.replace(':', '_')}")


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

    curves = {k: v for k, v in result.history.items() if k.replace("val_", "") in ("loss", "accuracy")}
    path = os.path.join(result.run_dir, CURVES)
    return viz.save_figure(viz.plot_history(curves), path)


def _add_evaluate_command(subparsers):
    parser = subparsers.add_parser(
        "evaluate", help="accuracy and loss of a saved model on a dataset split",
        description="Load a .keras model (safe mode; .h5 and SavedModel are refused) and "
        "evaluate it on a split of a dataset. The images are fed as raw 0-255 pixels, resized to "
        "the model's input, as `kcnn train` feeds them.",
    )
    parser.add_argument("model", help="the .keras model file")
    parser.add_argument("--dataset", required=True, help="dataset name, 'tfds:NAME' or image folder")
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.set_defaults(run=_run_evaluate)


def _run_evaluate(args):
    from kcnn import load_model
    from kcnn.data import make_dataset
    from kcnn.training import classification_loss

    model = load_model(args.model, compile=False)
    height, width, channels = model.inputs[0].shape[1:]
    size = (height, width) if height and width else None
    dataset, info = make_dataset(
        args.dataset, args.batch_size, split=args.split, image_size=size, channels=channels,
        normalize=None, data_dir=args.data_dir,
    )
    classes = model.outputs[0].shape[-1]
    if classes != info.num_classes:
        raise CommandError(
            f"{args.model} predicts {classes} classes but {info.name} has {info.num_classes}"
        )
    model.compile(loss=classification_loss(model), metrics=["accuracy"])
    metrics = model.evaluate(dataset, verbose=0, return_dict=True)
    print(f"{info.name} ({args.split}, {info.num_examples:,} images): "
          f"accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.4f}")


def _add_predict_command(subparsers):
    parser = subparsers.add_parser(
        "predict", help="top-k classes of images under a saved model",
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
        "transfer", help="transfer learning: a new head on a pretrained backbone, then fine-tuning",
        description="Build a transfer model (kcnn.transfer.build: the backbone's own "
        "preprocessing, the backbone, a new float32 head), train it on a dataset with the "
        "strategy's phases (frozen: the head only; finetune: everything at a small learning "
        "rate; progressive: the head, then the top blocks or all at a lower one), evaluate it on "
        "the test split and save OUT/model.keras. The model takes raw 0-255 pixels. Each phase "
        "keeps its checkpoints and logs in OUT/phase<i>.",
    )
    parser.add_argument("--backbone", required=True,
                        help="Keras Applications name (ResNet50, MobileNetV2, EfficientNetB0...) "
                        "or kcnn registry name (resnet18, tiny_resnet...)")
    parser.add_argument("--dataset", required=True,
                        help="dataset name, 'tfds:NAME' or image folder")
    parser.add_argument("--strategy", choices=("frozen", "finetune", "progressive"),
                        default="progressive", help="default progressive")
    parser.add_argument("--weights", default="imagenet",
                        help="imagenet (Keras Applications; downloaded once), none, or a weights "
                        "file of the backbone (default imagenet)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of all phases (default 10)")
    parser.add_argument("--head-epochs", type=int,
                        help="progressive: epochs of the head alone (default half)")
    parser.add_argument("--unfreeze", default="all",
                        help="progressive: blocks unfrozen after the head phase, or all (default)")
    parser.add_argument("--lr", type=float, help="learning rate of the head (default 1e-3)")
    parser.add_argument("--finetune-lr", type=float, help="learning rate when the backbone "
                        "trains (default 1e-4 finetune, 1e-5 progressive)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--image-size", type=int, help="height and width of the model's input "
                        "(default the backbone's: 224 for Keras Applications)")
    parser.add_argument("--augment", help="augmentation preset: none, light, standard, strong")
    parser.add_argument("--validation-split", type=float, default=0.1,
                        help="share of the training split held out for validation (default 0.1)")
    parser.add_argument("--no-test", action="store_true",
                        help="do not evaluate on a test split (for datasets without one)")
    parser.add_argument("--dropout", type=float, default=0.2, help="before the new head (0.2)")
    parser.add_argument("--backbone-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a backbone builder argument, e.g. stem=cifar or alpha=0.5")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                        default="auto", help="default auto: the fastest the hardware supports")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                        help="XLA (default auto: on GPU only)")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--out", help="run folder (default saved_models/transfer-BACKBONE-DATASET)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the runs already in --out and start again")
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
        args.strategy, args.epochs, learning_rate=args.lr or transfer.HEAD_LEARNING_RATE,
        finetune_learning_rate=args.finetune_lr, head_epochs=args.head_epochs, unfreeze=unfreeze,
    )
    with precision_policy(args.precision):
        model = transfer.build(args.backbone, info.num_classes, args.strategy, weights=weights,
                               input_shape=shape, dropout=args.dropout, backbone_options=options)
    dataset = os.path.basename(os.path.normpath(args.dataset)).replace(":", "_")
    out = args.out or os.path.join("saved_models", f"transfer-{args.backbone}-{dataset}")
    print(f"kcnn: {args.strategy} transfer of {args.backbone} ({args.weights}) to {args.dataset} "
          f"({info.num_classes} classes, {'x'.join(map(str, shape))}) -> {out}", flush=True)
    try:
        result = transfer.train(
            model, args.dataset, phases, batch_size=args.batch_size,
            validation_split=args.validation_split, test=not args.no_test,
            augment=None if args.augment == "none" else args.augment, data_dir=args.data_dir,
            seed=args.seed, out=out, overwrite=args.overwrite,
            jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
        )
    except TrainingDiverged as error:
        raise CommandError(str(error)) from error
    path = os.path.join(out, "model.keras")
    save_model(result.model, path)
    curves = {k: v for k, v in result.history.items() if k.replace("val_", "") in ("loss", "accuracy")}
    curves_path = viz.save_figure(viz.plot_history(curves), os.path.join(out, "curves.png"))
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
        "tune", help="search a CNN or ResNet space's hyperparameters with keras-tuner",
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
    parser.add_argument("--dataset", default="fashion_mnist",
                        help="dataset name, 'tfds:NAME' or image folder (default fashion_mnist)")
    parser.add_argument("--data-dir", help="folder searched first for the dataset files")
    parser.add_argument("--tuner", choices=("random", "hyperband", "bayesian"),
                        default="hyperband", help="default hyperband")
    parser.add_argument("--max-trials", type=int, default=10,
                        help="number of trials (for hyperband, a cap on its schedule; default 10)")
    parser.add_argument("--epochs", type=int, default=10,
                        help="most epochs of a trial (hyperband's max_epochs; default 10)")
    parser.add_argument("--patience", type=int, default=3,
                        help="early stopping's patience on the objective (default 3)")
    parser.add_argument("--objective", default="val_accuracy", help="default val_accuracy")
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help="fix a hyperparameter of the space, e.g. conv_blocks=3, "
                        "norm=batch, augment=light (repeatable)")
    parser.add_argument("--batch-size", type=int, default=128, help="default 128")
    parser.add_argument("--image-size", type=int, help="resize images to this height and width")
    parser.add_argument("--validation-split", type=float, default=0.1,
                        help="share of the training split held out for validation (default 0.1)")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
                        default="auto", help="default auto: the fastest the hardware supports")
    parser.add_argument("--jit-compile", choices=("auto", "on", "off"), default="auto",
                        help="XLA (default auto: on GPU only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the oracle and the data")
    parser.add_argument("--out", default=os.path.join("results", "tune"),
                        help="folder of the searches (default results/tune)")
    parser.add_argument("--project", help="the search's sub-folder (default SPACE_TUNER)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the search already in OUT/PROJECT instead of resuming it")
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
            raise CommandError(f"--fix: the {hypermodel.name} space has no hyperparameter "
                               f"{name!r}; it has {', '.join(known)}")
        fixed.Fixed(name, value)
    return fixed


def _run_tune(args):
    from kcnn import tuning

    data = tuning.SearchData(
        args.dataset, batch_size=args.batch_size, image_size=args.image_size,
        validation_split=args.validation_split, data_dir=args.data_dir, seed=args.seed,
    )
    info = data.info
    hypermodel = tuning.SPACES[args.space](
        info, precision=args.precision,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
    )
    project = args.project or f"{args.space}_{args.tuner}"
    print(f"kcnn: {args.tuner} search of the {args.space} space on {info.name} "
          f"({info.num_examples} training images, {'x'.join(map(str, info.image_shape))}, "
          f"{info.num_classes} classes) -> {os.path.join(args.out, project)}", flush=True)
    try:
        result = tuning.search(
            hypermodel, data, tuner=args.tuner, objective=args.objective,
            max_trials=args.max_trials, epochs=args.epochs, patience=args.patience,
            directory=args.out, project_name=project, seed=args.seed, overwrite=args.overwrite,
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
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"kcnn: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kcnn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
