"""Transfer learning: a pretrained backbone, a new head, and the course's three strategies.

The course (chapter 07, section 7.2) trains a new classifier on a network pretrained on another
task in one of three ways:

- ``"frozen"`` (feature extraction): the backbone is not trainable, only the new head learns.
- ``"finetune"``: everything learns, with a small learning rate (Adam 1e-4 in the course).
- ``"progressive"``: the head first (Adam 1e-3), then the top blocks of the backbone, or all of
  it, with a lower learning rate (1e-5 in the course).

`build` makes the model: raw 0-255 pixels, the backbone's own ``preprocess_input`` as a layer,
the backbone (a Keras Applications model such as ``"ResNet50"``, or a kcnn registry name such as
``"resnet18"``) nested as one layer, global average pooling, dropout and kcnn's float32
``logits`` / ``predictions`` head. `schedule` turns a strategy into training phases and `train`
runs them with `kcnn.training`, recompiling between phases.

The pitfall this module guards against: when a pretrained backbone with BatchNormalization is
fine-tuned, or partly frozen, its BN layers must run in inference mode, or the first fit steps
replace the moving statistics learned in pre-training with those of small batches of the new
data. The Keras guide's ``base_model(x, training=False)`` does not do it in Keras 3: ``fit``
calls the outer model with ``training=True`` and the Functional model passes that value to the
nested backbone, overriding the ``False`` (keras-team/keras#20285). What Keras 3 honours is a
BatchNormalization layer whose ``trainable`` is False: it then runs in inference mode whatever
the call says. So `set_trainable` keeps every BN layer of the backbone non-trainable (moving
statistics, gamma and beta fixed), except when the backbone is trained from scratch
(``weights=None`` with ``"finetune"``), where BN must learn.

Importing this module needs only Keras (no TensorFlow), so the models build on every backend;
`train` uses `kcnn.training` and TensorFlow.

Example:
    >>> import kcnn
    >>> model = kcnn.transfer.build("MobileNetV2", classes=5, strategy="progressive",
    ...                             input_shape=(160, 160, 3))
    >>> result = kcnn.transfer.train(model, train_data, "progressive", epochs=10,
    ...                              validation_data=val_data)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import time

import keras
from keras import layers

from kcnn import checks
from kcnn.files import save_weights
from kcnn.layers.preprocessing import ApplicationPreprocessing, keras_application
from kcnn.models.common import classifier, global_pool, load_weights_strictly

STRATEGIES = ("frozen", "finetune", "progressive")
# The course's learning rates (chapter 07, Listing 5): the new head with Adam 1e-3, the whole
# network with 1e-4 when fine-tuning from the start, 1e-5 after the head in progressive
# fine-tuning.
HEAD_LEARNING_RATE = 1e-3
FINETUNE_LEARNING_RATE = 1e-4
PROGRESSIVE_LEARNING_RATE = 1e-5
# Arguments of the backbone builder that `build` sets itself.
_RESERVED_OPTIONS = (
    "include_top", "weights", "input_shape", "input_tensor", "pooling", "classes",
    "classifier_activation", "include_preprocessing",
)
# How the blocks of known backbones are named; the first pattern that matches a layer of the
# backbone is used for all its layers. Layers that match none belong to the block before them.
_BLOCK_PATTERNS = (
    re.compile(r"^(stage\d+_block\d+)"),          # kcnn ResNets: one layer per residual block
    re.compile(r"^(stage\d+)_"),                  # other kcnn models: a stage is a block
    re.compile(r"^(conv\d+_block\d+)_"),          # ResNet, ResNetV2, DenseNet
    re.compile(r"^(.+_stage_\d+_block_\d+)_"),    # ConvNeXt
    re.compile(r"^(block_?\d+[a-z]?)_"),          # VGG, Xception, MobileNetV2, EfficientNet(V2)
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),    # MobileNetV3
)
_NOT_FEATURES = (
    layers.InputLayer,
    layers.Rescaling,
    layers.Normalization,
    layers.ZeroPadding2D,
    layers.MaxPooling2D,
    layers.AveragePooling2D,
)


def _applications() -> list[str]:
    return sorted(name for name in dir(keras.applications) if keras_application(name) is not None)


def _check_strategy(strategy) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def _check_backbone_options(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ValueError(f"backbone_options must be a dict of builder arguments, got {options!r}")
    reserved = sorted(set(options) & set(_RESERVED_OPTIONS))
    if reserved:
        raise ValueError(
            f"backbone_options may not set {reserved}: kcnn.transfer.build sets them (the model "
            "takes raw 0-255 pixels and the backbone's own preprocessing stays on)"
        )
    return dict(options)


def _unknown_backbone(backbone) -> ValueError:
    from kcnn.registry import list_models

    known = list_models() + _applications()
    close = difflib.get_close_matches(str(backbone), known, n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"backbone must be a Keras Applications model name (e.g. 'ResNet50', 'MobileNetV2') or a "
        f"kcnn registry name (e.g. 'resnet18'), got {backbone!r}.{hint}"
    )


def _kcnn_backbone(name, weights, input_shape, options):
    """The kcnn builder ``name`` without its head, with ``weights`` (None or a file)."""
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
        raise ValueError(
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
            raise ValueError(
                f"weights='imagenet': the ImageNet weights of {name} could not be downloaded "
                f"({error}). Without a network, copy the weights file Keras names in that URL "
                "into $KERAS_HOME/models (default ~/.keras/models), or pass weights=<path of "
                "a weights file> or weights=None"
            ) from error
    if weights is not None and not (
        isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)
    ):
        raise ValueError(
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
        weights: ``"imagenet"`` (Keras Applications only; downloaded once into Keras's cache),
            the path of a weights file of this backbone (for kcnn backbones a ``.weights.h5``
            saved from the same builder with the same arguments, e.g. by
            `save_backbone_weights`), or ``None`` (random initialisation).
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
            ``weights="imagenet"`` for a kcnn backbone, or ImageNet weights that cannot be
            downloaded (the message says where to put the file).

    Example:
        >>> model = build("ResNet50", classes=10, strategy="frozen", weights="imagenet")
        >>> model = build("resnet18", 5, "finetune", weights="saved_models/source.weights.h5",
        ...               input_shape=(32, 32, 1), backbone_options={"stem": "cifar"})
    """
    from kcnn.registry import list_models

    _check_strategy(strategy)
    classes = checks.integer("classes", classes, low=1)
    dropout = checks.fraction("dropout", dropout)
    options = _check_backbone_options(backbone_options)
    if isinstance(backbone, str) and backbone in list_models():
        base = _kcnn_backbone(backbone, weights, input_shape, options)
        preprocess = layers.Rescaling(1 / 255, name="preprocess", dtype="float32")
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
        model, 0 if strategy in ("frozen", "progressive") else "all",
        train_batchnorm=weights is None and strategy == "finetune",
    )
    return model


def backbone_of(model) -> keras.Model:
    """The backbone nested in a transfer model made by `build`.

    Raises:
        ValueError: if ``model`` does not hold exactly one nested model.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(
            f"model {model.name!r} is not a kcnn.transfer model: it holds {len(nested)} nested "
            "models, not one backbone"
        )
    return nested[0]


def blocks(backbone) -> list[tuple[str, list]]:
    """The backbone's layers grouped into blocks, bottom to top: ``[(block name, layers)]``.

    Blocks are read from the layer names of the known families (``conv4_block6_...`` in
    ResNet and DenseNet, ``block5_...`` in VGG, ``block_16_...`` in MobileNetV2,
    ``block6a_...`` in EfficientNet, ``..._stage_3_block_2_...`` in ConvNeXt,
    ``expanded_conv_10_...`` in MobileNetV3, ``stage4_block2`` in kcnn ResNets, ``stage3_...``
    in other kcnn models). A layer that matches no block name belongs to the block before it
    (a transition, the last 1x1 convolution, a final BN); layers before the first block form
    the ``"stem"``, which is the first entry. A backbone whose names follow none of these
    patterns gets one block per layer with weights.

    Args:
        backbone: the backbone model (`backbone_of` finds it in a transfer model).
    """
    layer_list = [layer for layer in backbone.layers if not isinstance(layer, layers.InputLayer)]
    pattern = _block_pattern(layer_list)
    groups: list[tuple[str, list]] = [("stem", [])]
    for layer in layer_list:
        match = pattern.match(layer.name) if pattern is not None else None
        if pattern is None and layer.weights:
            groups.append((layer.name, [layer]))
        elif match and match.group(1) != groups[-1][0]:
            groups.append((match.group(1), [layer]))
        else:
            groups[-1][1].append(layer)
    return groups


def _block_pattern(layer_list):
    for pattern in _BLOCK_PATTERNS:
        if any(pattern.match(layer.name) for layer in layer_list):
            return pattern
    return None


def set_trainable(model, unfreeze, train_batchnorm: bool = False) -> None:
    """Make the head and the top ``unfreeze`` blocks of the backbone trainable, the rest not.

    Recompile the model afterwards (`train` does): Keras reads ``trainable`` when it compiles.

    Args:
        model: a transfer model made by `build`.
        unfreeze: ``0`` (the head only), a number of blocks counted from the top (see
            `blocks`), or ``"all"``.
        train_batchnorm: whether the backbone's BatchNormalization layers in the trainable
            blocks learn (batch statistics in training, moving averages, gamma and beta).
            Leave it False for a pretrained backbone: its BN layers then run in inference mode
            and keep their statistics (see the module docstring); True is for training from
            scratch.

    Raises:
        ValueError: if ``unfreeze`` is not one of those, or more blocks than the backbone has.
    """
    backbone = backbone_of(model)
    groups = _check_unfreeze(backbone, unfreeze)
    for layer in model.layers:
        layer.trainable = True
    if unfreeze == 0:
        backbone.trainable = False
    elif unfreeze != "all":
        for _, block_layers in groups[: len(groups) - unfreeze]:
            for layer in block_layers:
                layer.trainable = False
    if not train_batchnorm:
        for layer in _batchnorm_layers(backbone):
            layer.trainable = False


def _batchnorm_layers(backbone) -> list:
    """Every BatchNormalization layer of ``backbone``, those inside custom blocks included."""
    # Keras has no public way to list the sub-layers of a custom layer (kcnn's ResidualBlock
    # holds its BN layers); _flatten_layers is what Keras's own `trainable` setter walks.
    return [
        layer for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, layers.BatchNormalization)
    ]


def batchnorm_trains(model) -> bool:
    """Whether a BatchNormalization layer of the transfer model's backbone is trainable (it is
    only when `build` made the backbone to be trained from scratch)."""
    return any(layer.trainable for layer in _batchnorm_layers(backbone_of(model)))


def _check_unfreeze(backbone, unfreeze) -> list:
    """The backbone's `blocks` (stem first), after checking that ``unfreeze`` fits them."""
    groups = blocks(backbone)
    count = len(groups) - 1
    if unfreeze != "all" and (not checks.is_integer(unfreeze) or not 0 <= unfreeze <= count):
        raise ValueError(
            f"unfreeze must be 'all' or a number of blocks from 0 to {count} (backbone "
            f"{backbone.name!r} has {count} blocks), got {unfreeze!r}"
        )
    return groups


def feature_layers(model) -> list[str]:
    """The backbone's stage outputs: for each spatial resolution its feature maps go through,
    the name of the last layer at that resolution, bottom to top (paddings and poolings left
    out). The last one is the Grad-CAM target (`kcnn.models.gradcam_layer`).

    The layers are inside the nested backbone; `kcnn.models.find_layer` and `kcnn.viz` find
    them by name in the transfer model.

    Example:
        >>> feature_layers(build("ResNet50", 10, weights=None, input_shape=(224, 224, 3)))
        ['conv1_relu', 'conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out',
         'conv5_block3_out']
    """
    last_at = {}
    for layer in backbone_of(model).layers:
        if isinstance(layer, _NOT_FEATURES):
            continue
        shape = tuple(layer.output.shape)
        if len(shape) == 4:
            last_at.pop(shape[1:3], None)
            last_at[shape[1:3]] = layer.name
    return list(last_at.values())


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a transfer schedule: ``epochs`` epochs with the head and the top
    ``unfreeze`` blocks of the backbone trainable (``0``: the head only; ``"all"``: the whole
    network), at ``learning_rate``.

    Raises:
        ValueError: for ``epochs < 1``, a bad ``unfreeze`` or a learning rate that is not > 0.
    """

    epochs: int
    unfreeze: int | str
    learning_rate: float

    def __post_init__(self):
        checks.positive_int("Phase.epochs", self.epochs)
        if self.unfreeze != "all" and (not checks.is_integer(self.unfreeze) or self.unfreeze < 0):
            raise ValueError(
                f"Phase.unfreeze must be 'all' or a number of blocks >= 0, got {self.unfreeze!r}"
            )
        checks.positive_number("Phase.learning_rate", self.learning_rate)


def schedule(
    strategy: str,
    epochs: int,
    *,
    learning_rate: float = HEAD_LEARNING_RATE,
    finetune_learning_rate: float | None = None,
    head_epochs: int | None = None,
    unfreeze="all",
) -> tuple[Phase, ...]:
    """The training phases of a strategy, with the course's learning rates by default.

    - ``"frozen"``: ``epochs`` epochs of the head alone at ``learning_rate`` (1e-3).
    - ``"finetune"``: ``epochs`` epochs of everything at ``finetune_learning_rate`` (1e-4).
    - ``"progressive"``: ``head_epochs`` epochs of the head alone at ``learning_rate``, then the
      rest with the top ``unfreeze`` blocks (default all) at ``finetune_learning_rate`` (1e-5).

    Args:
        strategy: ``"frozen"``, ``"finetune"`` or ``"progressive"``.
        epochs: the epochs of the whole schedule.
        learning_rate: the learning rate of the head-only phase.
        finetune_learning_rate: the learning rate when the backbone trains (default 1e-4 for
            ``"finetune"``, 1e-5 for the second phase of ``"progressive"``).
        head_epochs: ``"progressive"`` only: epochs before the switch (default half of
            ``epochs``, at least 1); the second phase starts at epoch ``head_epochs`` (counted
            from 0).
        unfreeze: ``"progressive"`` only: blocks unfrozen in the second phase, or ``"all"``.

    Returns:
        A tuple of `Phase`; pass it, or a list of your own phases, to `train`.

    Raises:
        ValueError: for an unknown strategy, ``epochs`` < 1 (< 2 for ``"progressive"``), a
            ``head_epochs`` outside [1, epochs), or options of another strategy.

    Example:
        >>> schedule("progressive", 10, head_epochs=3, unfreeze=2)
        (Phase(epochs=3, unfreeze=0, learning_rate=0.001),
         Phase(epochs=7, unfreeze=2, learning_rate=1e-05))
    """
    _check_strategy(strategy)
    epochs = checks.positive_int("epochs", epochs)
    if strategy != "progressive" and (head_epochs is not None or unfreeze != "all"):
        raise ValueError(
            f"head_epochs and unfreeze belong to the 'progressive' strategy, not {strategy!r}"
        )
    if strategy == "frozen":
        return (Phase(epochs, 0, learning_rate),)
    if strategy == "finetune":
        return (Phase(epochs, "all", finetune_learning_rate or FINETUNE_LEARNING_RATE),)
    if epochs < 2:
        raise ValueError(f"the 'progressive' strategy needs epochs >= 2, got {epochs!r}")
    if head_epochs is None:
        head_epochs = max(1, epochs // 2)
    if not checks.is_integer(head_epochs) or not 1 <= head_epochs < epochs:
        raise ValueError(f"head_epochs must be an integer in [1, {epochs}), got {head_epochs!r}")
    head_epochs = int(head_epochs)
    return (
        Phase(head_epochs, 0, learning_rate),
        Phase(epochs - head_epochs, unfreeze, finetune_learning_rate or PROGRESSIVE_LEARNING_RATE),
    )


def trainable_parameters(model) -> int:
    """The number of trainable parameters of ``model`` as it is now."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)


@dataclasses.dataclass
class TransferResult:
    """What `train` did.

    Attributes:
        model: the trained model.
        phases: the `Phase` of the schedule that ran.
        history: one list per metric (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``,
            ``train_seconds``...), one value per epoch of the whole schedule, with ``phase``
            (its index), ``learning_rate`` and ``trainable_parameters`` for each epoch.
        test_metrics: the metrics on the test data after the last phase, or None.
        seconds: wall-clock seconds of the whole call.
        train_seconds: seconds spent in the training phase of the epochs (validation
            excluded).
        trainable_parameters: the trainable parameters of each phase.
        phase_results: the `kcnn.training.TrainResult` of each phase.
    """

    model: keras.Model
    phases: tuple
    history: dict
    test_metrics: dict | None
    seconds: float
    train_seconds: float
    trainable_parameters: list
    phase_results: list

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy, or None without test data."""
        return (self.test_metrics or {}).get("accuracy")

    def summary(self) -> str:
        """A few lines for the end of a run: the phases, accuracy, time."""
        lines = []
        first = 1
        for index, (phase, count) in enumerate(zip(self.phases, self.trainable_parameters)):
            last = first + phase.epochs - 1
            trained = {0: "head only", "all": "all layers"}.get(
                phase.unfreeze, f"head + top {phase.unfreeze} blocks"
            )
            epochs = f"epochs {first}-{last}" if last > first else f"epoch {first}"
            lines.append(
                f"phase {index + 1}      {epochs}, {trained}, learning rate "
                f"{phase.learning_rate:g}, {count:,} trainable parameters"
            )
            first = last + 1
        if "val_accuracy" in self.history:
            lines.append(f"validation   accuracy {self.history['val_accuracy'][-1]:.4f} "
                         "after the last epoch")
        if self.test_accuracy is not None:
            lines.append(f"test         accuracy {self.test_accuracy:.4f}, loss "
                         f"{self.test_metrics['loss']:.4f}")
        lines.append(f"time         {self.seconds:.1f} s in all, {self.train_seconds:.1f} s "
                     "training")
        return "\n".join(lines)


def _phases(strategy_or_phases, epochs) -> tuple:
    if isinstance(strategy_or_phases, str):
        if epochs is None:
            raise ValueError(f"epochs is needed with strategy {strategy_or_phases!r}")
        return schedule(strategy_or_phases, epochs)
    phases = tuple(strategy_or_phases)
    if not phases or not all(isinstance(phase, Phase) for phase in phases):
        raise ValueError(
            f"schedule must be a strategy name {STRATEGIES} or a sequence of Phase, got "
            f"{strategy_or_phases!r}"
        )
    total = sum(phase.epochs for phase in phases)
    if epochs is not None and epochs != total:
        raise ValueError(f"epochs={epochs!r} does not match the {total} epochs of the phases")
    return phases


def _datasets(model, data, batch_size, validation_split, augment, data_dir, seed, test):
    """Batches of raw 0-255 pixels at the model's input size, from a kcnn.data source."""
    from kcnn.data import make_dataset

    height, width, channels = model.inputs[0].shape[1:]
    options = dict(
        image_size=(height, width), channels=channels, normalize=None, seed=seed,
        data_dir=data_dir, validation_split=validation_split,
    )
    train_data, _ = make_dataset(data, batch_size, "train", augment=augment, **options)
    validation = None
    if validation_split:
        validation, _ = make_dataset(data, batch_size, "validation", **options)
    test_data = make_dataset(data, batch_size, "test", **options)[0] if test else None
    return train_data, validation, test_data


def train(
    model,
    data,
    schedule="progressive",
    epochs: int | None = None,
    *,
    validation_data=None,
    test_data=None,
    batch_size: int = 32,
    validation_split: float = 0.1,
    test: bool = True,
    augment=None,
    data_dir=None,
    seed: int | None = 0,
    out=None,
    train_batchnorm: bool | None = None,
    **training_options,
) -> TransferResult:
    """Train a transfer model phase by phase with `kcnn.training.train`.

    Before each phase, `set_trainable` makes the head and the phase's blocks trainable (the
    backbone's BatchNormalization layers stay in inference mode, see `set_trainable`) and
    `kcnn.training.train` recompiles the model with the phase's learning rate (a fresh Adam:
    the new trainable weights get their own moments), then fits it for the phase's epochs.

    Args:
        model: a model made by `build` (under ``kcnn.training.precision_policy(...)`` for mixed
            precision: its head stays float32).
        data: a batched ``tf.data.Dataset`` of ``(images, labels)`` with pixels in [0, 255]
            (then pass ``validation_data``/``test_data`` yourself), or anything
            `kcnn.data.make_dataset` takes (``"tfds:tf_flowers"``, a folder, arrays), read at
            the model's input size and channels, without normalisation (the model has its own).
        schedule: ``"frozen"``, ``"finetune"``, ``"progressive"`` (see `schedule`, with its
            defaults; ``epochs`` needed) or a sequence of `Phase`.
        epochs: the epochs of the whole schedule, for a strategy name.
        validation_data, test_data: batched datasets, with ``tf.data`` ``data`` only.
        batch_size, validation_split, test, augment, data_dir: how a data source is read
            (see `kcnn.data.make_dataset`); ``test`` evaluates on its test split at the end.
        seed: seeds weights, shuffling, augmentation and dropout (see `kcnn.training.train`).
        out: a folder for the run: each phase writes its checkpoints and logs in
            ``out/phase<i>`` (see `kcnn.training.train`); None writes nothing.
        train_batchnorm: whether the backbone's BatchNormalization layers learn (see
            `set_trainable`); default: as `build` left them, which is only when the backbone
            is trained from scratch.
        **training_options: more arguments of `kcnn.training.train` (``optimizer``,
            ``jit_compile``, ``early_stopping``, ``callbacks``, ``verbose``...), the same for
            every phase.

    Returns:
        A `TransferResult`.

    Raises:
        ValueError: for a bad schedule, a model that is not a transfer model, a ``unfreeze``
            larger than the backbone's number of blocks, and what `kcnn.training.train` raises.

    Example:
        >>> model = build("MobileNetV2", 5, "progressive", input_shape=(160, 160, 3))
        >>> result = train(model, "tfds:tf_flowers", "progressive", epochs=10)
        >>> result.test_accuracy
    """
    import tensorflow as tf

    from kcnn.training import train as fit
    from kcnn.training.rundir import locked

    start = time.perf_counter()
    phases = _phases(schedule, epochs)
    backbone = backbone_of(model)
    for phase in phases:
        _check_unfreeze(backbone, phase.unfreeze)
    if train_batchnorm is None:
        train_batchnorm = batchnorm_trains(model)
    if isinstance(data, tf.data.Dataset):
        train_data, validation = data, validation_data
    elif validation_data is not None or test_data is not None:
        raise ValueError(
            "validation_data and test_data go with tf.data input; for a data source use "
            "validation_split and test"
        )
    else:
        train_data, validation, test_data = _datasets(
            model, data, batch_size, validation_split, augment, data_dir,
            0 if seed is None else seed, test,
        )
    history: dict = {}
    counts, results = [], []
    with locked(out):  # one process at a time in out, across the phases
        for index, phase in enumerate(phases):
            set_trainable(model, phase.unfreeze, train_batchnorm)
            counts.append(trainable_parameters(model))
            last = index == len(phases) - 1
            result = fit(
                model, train_data, phase.epochs, validation_data=validation,
                test_data=test_data if last else None, learning_rate=phase.learning_rate,
                seed=seed, out=None if out is None else os.path.join(os.fspath(out), f"phase{index + 1}"),
                **training_options,
            )
            results.append(result)
            ran = len(result.history.get("loss", []))
            for key, values in result.history.items():
                history.setdefault(key, []).extend(values)
            history.setdefault("phase", []).extend([index] * ran)
            history.setdefault("learning_rate", []).extend([phase.learning_rate] * ran)
            history.setdefault("trainable_parameters", []).extend([counts[-1]] * ran)
    return TransferResult(
        model=model,
        phases=phases,
        history=history,
        test_metrics=results[-1].test_metrics,
        seconds=time.perf_counter() - start,
        train_seconds=sum(result.train_seconds for result in results),
        trainable_parameters=counts,
        phase_results=results,
    )


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
        raise ValueError(f"path must end in .weights.h5, got {path!r}")
    is_transfer = any(layer.name == "logits" for layer in model.layers)
    save_weights(backbone_of(model) if is_transfer else model, path)
    return path
