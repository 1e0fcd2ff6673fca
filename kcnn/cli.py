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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kcnn",
        description="Convolutional networks for Keras 3: list, train, evaluate and explain models.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_models_command(subparsers)
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
