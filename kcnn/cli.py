"""The ``kcnn`` command.

Each sub-command has an ``_add_<name>_command`` function that declares its arguments and a
``_run_<name>`` function that does the work; heavy imports happen inside the ``_run_`` functions
so ``kcnn --help`` is instant. Errors a user can fix (an unknown model, missing data, a bad flag)
print one line and exit with status 1, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys


class CommandError(Exception):
    """An error the user can fix; printed as one line by `main`."""


def _add_models_command(subparsers):
    parser = subparsers.add_parser(
        "models", help="list every registered model with its parameters and input shape",
        description="Build every registered model with its default arguments and print a table: "
        "name, family, trainable parameters, default input shape, multiply-accumulates per "
        "image at that shape (kcnn.convmath.macs) and the Grad-CAM target layer.",
    )
    parser.add_argument("--family", help="only the models of this family (e.g. resnet, vgg)")
    parser.set_defaults(run=_run_models)


def _run_models(args):
    import keras

    import kcnn
    from kcnn.convmath import format_count, macs

    names = kcnn.list_models(args.family)
    if not names:
        families = sorted({kcnn.model_info(n).family for n in kcnn.list_models()})
        raise CommandError(f"no models in family {args.family!r}; families: {', '.join(families)}")
    header = (
        f"{'name':<12} {'family':<11} {'parameters':>12} {'input shape':<14} {'MACs':>9}  "
        "grad-cam layer"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        info = kcnn.model_info(name)
        model = kcnn.create_model(name)
        params = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
        shape = "x".join(str(d) for d in info.input_shape)
        print(
            f"{name:<12} {info.family:<11} {params:>12,} {shape:<14} "
            f"{format_count(macs(model)):>9}  {info.gradcam_layer or '-'}",
            flush=True,
        )
        keras.utils.clear_session(free_memory=True)


_EXPLAIN_METHODS = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad")
_PIXEL_SCALE_HELP = (
    "multiply the image's 0-255 pixel values by this before the model (default 1/255: inputs "
    "in [0, 1]; 1 for a model that rescales its input itself)"
)


def _add_explain_command(subparsers):
    parser = subparsers.add_parser(
        "explain", help="show which pixels a saved model's prediction rests on (Grad-CAM...)",
        description="For each image, explain a saved .keras model's prediction (or --class-index) "
        "with the chosen method and write OUT/<image name>_<method>.png: the image and the map "
        "laid over it. Images are read as grey or RGB to match the model and resized to its "
        "input.",
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
    parser.add_argument("--scale", type=float, default=1 / 255, help=_PIXEL_SCALE_HELP)
    parser.set_defaults(run=_run_explain)


def _load_image_for(model, path, scale):
    """``path`` as a float32 (H, W, C) array that fits ``model``'s input, times ``scale``."""
    import keras

    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    height, width, channels = model.inputs[0].shape[1:]
    if channels not in (1, 3):
        raise CommandError(
            f"model {model.name!r} takes {channels} channels; images can feed models with 1 "
            "(grey) or 3 (RGB)"
        )
    size = (height, width) if height and width else None
    try:
        image = keras.utils.load_img(
            path, color_mode="grayscale" if channels == 1 else "rgb", target_size=size
        )
    except OSError as error:
        raise ValueError(f"{path!r} is not a readable image ({error})") from error
    return keras.utils.img_to_array(image, dtype="float32") * scale


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
    for path in args.images:
        image = _load_image_for(model, path, args.scale)[None]
        heatmap = viz.METHODS[args.method](model, image, **options)
        output = keras.ops.convert_to_numpy(model(image, training=False))[0]
        explained = int(np.argmax(output)) if args.class_index is None else args.class_index
        title = f"{args.method}: class {explained} (output {output[explained]:.3f})"
        name = os.path.splitext(os.path.basename(path))[0]
        target = os.path.join(args.out, f"{name}_{args.method}.png")
        viz.save_figure(viz.plot_explanations(image, heatmap, [title]), target)
        print(f"{target}: class {explained}, model output {output[explained]:.3f}")


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
    parser.add_argument("--scale", type=float, default=1 / 255, help=_PIXEL_SCALE_HELP)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcnn",
        description="Convolutional networks for Keras 3: list, train, evaluate and explain models.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_models_command(subparsers)
    _add_explain_command(subparsers)
    _add_visualize_command(subparsers)
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
