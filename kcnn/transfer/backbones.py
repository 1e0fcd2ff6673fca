"""Transfer models: a Keras Applications or kcnn backbone under a new head, and its weights.

`build` makes the model: raw 0-255 pixels, the backbone's own ``preprocess_input`` as a layer,
the backbone (a Keras Applications model such as ``"ResNet50"``, or a kcnn registry name such as
``"resnet18"``) nested as one layer, global average pooling, dropout and kcnn's float32
``logits`` / ``predictions`` head. `save_backbone_weights` writes the backbone's weights in the
form `build` takes back.
"""

from __future__ import annotations

import difflib
import os

import keras

from kcnn import checks
from kcnn.errors import UserError
from kcnn.files import save_weights
from kcnn.layers.preprocessing import ApplicationPreprocessing, keras_application
from kcnn.models.common import classifier, global_pool, load_weights_strictly
from kcnn.models.pretrained import input_preprocessing
from kcnn.transfer.freezing import set_trainable
from kcnn.transfer.parts import backbone_of
from kcnn.transfer.schedules import check_strategy

# Arguments of the backbone builder that `build` sets itself.
_RESERVED_OPTIONS = (
    "include_top",
    "weights",
    "input_shape",
    "input_tensor",
    "pooling",
    "classes",
    "classifier_activation",
    "include_preprocessing",
)


def _applications() -> list[str]:
    return sorted(name for name in dir(keras.applications) if keras_application(name) is not None)


def _check_backbone_options(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise UserError(f"backbone_options must be a dict of builder arguments, got {options!r}")
    reserved = sorted(set(options) & set(_RESERVED_OPTIONS))
    if reserved:
        raise UserError(
            f"backbone_options may not set {reserved}: kcnn.transfer.build sets them (the model "
            "takes raw 0-255 pixels and the backbone's own preprocessing stays on)"
        )
    return dict(options)


def _unknown_backbone(backbone) -> UserError:
    from kcnn.registry import list_models

    known = list_models() + _applications()
    close = difflib.get_close_matches(str(backbone), known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UserError(
        f"backbone must be a Keras Applications model name (e.g. 'ResNet50', 'MobileNetV2') or a "
        f"kcnn registry name (e.g. 'resnet18'), got {backbone!r}.{hint}"
    )


def _kcnn_backbone(name, weights, input_shape, options):
    """The kcnn builder ``name`` without its head, with ``weights`` (None, "imagenet" or a
    file: see `kcnn.registry.create_model`)."""
    from kcnn.registry import create_model, model_info

    shape = tuple(input_shape) if input_shape is not None else model_info(name).input_shape
    return create_model(name, include_top=False, weights=weights, input_shape=shape, **options)


def _application_backbone(name, weights, input_shape, options):
    """The Keras Applications model ``name`` without its head; ``weights`` is "imagenet" (one
    download, then Keras's cache), a weights file of this backbone, or None."""
    from kcnn.registry import check_options

    constructor = keras_application(name)
    check_options(constructor, options, f"backbone {name!r}")
    if input_shape is not None and (len(input_shape) != 3 or input_shape[-1] != 3):
        raise UserError(
            f"input_shape must be (height, width, 3) for {name}: Keras Applications backbones "
            f"take RGB images (kcnn.data.make_dataset(..., channels=3) converts grey ones), "
            f"got {input_shape!r}"
        )
    shape = tuple(input_shape) if input_shape is not None else None
    if weights == "imagenet":
        try:
            return constructor(include_top=False, weights="imagenet", input_shape=shape, **options)
        except Exception as error:
            if "URL fetch failure" not in str(error):
                raise
            raise UserError(
                f"weights='imagenet': the ImageNet weights of {name} could not be downloaded "
                f"({error}). Without a network, copy the weights file Keras names in that URL "
                "into $KERAS_HOME/models (default ~/.keras/models), or pass weights=<path of "
                "a weights file> or weights=None"
            ) from error
    if weights is not None and not (
        isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)
    ):
        raise UserError(
            f"weights must be 'imagenet', None or the path of an existing weights file, got "
            f"{weights!r}"
        )
    model = constructor(include_top=False, weights=None, input_shape=shape, **options)
    if weights is not None:
        load_weights_strictly(model, weights)
    return model


def build(
    backbone: str,
    classes: int,
    strategy: str = "frozen",
    weights="imagenet",
    input_shape=None,
    dropout: float = 0.2,
    backbone_options: dict | None = None,
    name: str | None = None,
) -> keras.Model:
    """A transfer model: raw pixels, the backbone's preprocessing, the backbone, a new head.

    The model takes images with pixels in [0, 255]. Layers: ``preprocess`` (the backbone's own
    ``preprocess_input`` for Keras Applications, ``x / 255`` for kcnn backbones), the backbone
    as one nested layer (reach it with `backbone_of`), ``avg_pool``, ``head_dropout``, and the
    float32 ``logits`` Dense and ``predictions`` softmax of kcnn's classifier. Its trainable
    layers are those of the strategy's first phase (see `schedule`): the head alone for
    ``"frozen"`` and ``"progressive"``, everything for ``"finetune"`` -- except the
    BatchNormalization layers of a pretrained backbone, which stay in inference mode (see
    `set_trainable`); with ``weights=None`` and ``"finetune"`` (training from scratch) they
    learn too.

    Args:
        backbone: a Keras Applications model name, as the class is called (``"ResNet50"``,
            ``"ResNet50V2"``, ``"VGG16"``, ``"MobileNetV2"``, ``"MobileNetV3Small"``,
            ``"EfficientNetB0"``, ``"EfficientNetV2B0"``, ``"ConvNeXtTiny"``,
            ``"DenseNet121"``...), or a kcnn registry name in lower case (``"resnet18"``,
            ``"tiny_resnet"``...).
        classes: number of classes of the new task.
        strategy: ``"frozen"``, ``"finetune"`` or ``"progressive"``.
        weights: ``"imagenet"`` (Keras Applications' downloaded once into Keras's cache; for
            kcnn backbones those of `kcnn.models.pretrained`, with the input preprocessing
            they expect), the path of a weights file of this backbone (for kcnn backbones a
            ``.weights.h5`` saved from the same builder with the same arguments, e.g. by
            `save_backbone_weights`, or a torchvision ``.safetensors`` state dict), or
            ``None`` (random initialisation).
        input_shape: ``(height, width, channels)``; default the backbone's (224x224x3 for
            Keras Applications). Keras Applications take 3 channels and at least 32x32.
        dropout: dropout rate before the ``logits`` layer (0 for none).
        backbone_options: more arguments of the backbone builder, e.g. ``{"stem": "cifar",
            "width": 0.5}`` for a kcnn ResNet or ``{"alpha": 0.5}`` for MobileNetV2.
        name: the model's name; default ``"<backbone>_transfer"``.

    Returns:
        A Functional ``keras.Model`` (not compiled).

    Raises:
        ValueError: for an unknown backbone or strategy, ``classes < 1``, a bad ``dropout``, a
            weights file that does not fit the backbone (never a half-loaded model),
            ``weights="imagenet"`` for a kcnn backbone that has none, or ImageNet weights that
            cannot be downloaded (the message says where to put the file).

    Example:
        >>> model = build("ResNet50", classes=10, strategy="frozen", weights="imagenet")
        >>> model = build("resnet18", 5, "finetune", weights="saved_models/source.weights.h5",
        ...               input_shape=(32, 32, 1), backbone_options={"stem": "cifar"})
    """
    from kcnn.registry import list_models

    check_strategy(strategy)
    classes = checks.integer("classes", classes, low=1)
    dropout = checks.fraction("dropout", dropout)
    options = _check_backbone_options(backbone_options)
    if isinstance(backbone, str) and backbone in list_models():
        base = _kcnn_backbone(backbone, weights, input_shape, options)
        preprocess = input_preprocessing(backbone, weights)
    elif isinstance(backbone, str) and keras_application(backbone) is not None:
        base = _application_backbone(backbone, weights, input_shape, options)
        preprocess = ApplicationPreprocessing(backbone, name="preprocess")
    else:
        raise _unknown_backbone(backbone)
    inputs = keras.Input(shape=base.inputs[0].shape[1:], name="input")
    x = base(preprocess(inputs))
    x = global_pool(x, "avg")
    outputs = classifier(x, classes, "softmax", dropout=dropout)
    model = keras.Model(inputs, outputs, name=name or f"{backbone.lower()}_transfer")
    set_trainable(
        model,
        0 if strategy in ("frozen", "progressive") else "all",
        train_batchnorm=weights is None and strategy == "finetune",
    )
    return model


def save_backbone_weights(model, path) -> str:
    """Save the backbone of a transfer model (or a backbone model itself) to a
    ``.weights.h5`` file that `build` takes as ``weights``, atomically (`kcnn.files`).

    Args:
        model: a transfer model made by `build`, or the backbone alone.
        path: the file, ending in ``.weights.h5`` (its folder is created).

    Returns:
        ``path``.

    Raises:
        ValueError: if ``path`` does not end in ``.weights.h5``.
    """
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise UserError(f"path must end in .weights.h5, got {path!r}")
    is_transfer = any(layer.name == "logits" for layer in model.layers)
    save_weights(backbone_of(model) if is_transfer else model, path)
    return path
