"""The search spaces: keras-tuner HyperModels over kcnn's builders.

`CNNHyperModel` and `ResNetHyperModel` declare their hyperparameters with explicit defaults and
build a kcnn model (`kcnn.models.configurable_cnn`, `kcnn.models.resnet`) under kcnn's precision
policy, compiled with kcnn's optimizers (`kcnn.training.compile_model`). Their defaults build the
documented models: `simple_cnn` with Adam 1e-3, and `resnet18` with the CIFAR stem.
"""

from __future__ import annotations

import abc
import math

import keras_tuner

from kcnn import checks
from kcnn.errors import UserError
from kcnn.layers.attention import ATTENTION_KINDS
from kcnn.layers.convolution import CONVS
from kcnn.layers.normalization import NORMS
from kcnn.models.resnet import BLOCKS, STEMS
from kcnn.training import (
    build_model,
    choose_jit_compile,
    compile_model,
    precision_policy,
    resolve_jit_compile,
    resolve_precision,
)
from kcnn.tuning.data import AUGMENT_PRESETS, SearchData


class KcnnHyperModel(keras_tuner.HyperModel, metaclass=abc.ABCMeta):
    """What kcnn's search spaces share: the data they are built for, the precision policy, XLA,
    compiling with `kcnn.training.compile_model`, and fitting on `SearchData`.

    Subclasses name their registry ``builder`` and define `model_arguments` (the builder's
    arguments) and `training_arguments` (``optimizer``, ``learning_rate``, ``weight_decay``,
    ``l1`` and ``augment``), each declaring its hyperparameters on ``hp``.

    Args:
        info: the `kcnn.data.DatasetInfo` of the training data (``SearchData.info``). The model
            then takes raw pixels in [0, 255] and standardises them in its first layer, as
            `kcnn.training.build_model` makes it. ``None``: no such layer.
        input_shape: ``(height, width, channels)``; default ``info``'s, else the space's.
        classes: the number of classes; default ``info``'s, else 10.
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"`` (see
            `kcnn.training.resolve_precision`); every trial's model is built under it.
        jit_compile: ``"auto"`` (XLA on GPU only), True or False; a model XLA cannot compile
            trains without it (`kcnn.training.choose_jit_compile`).
    """

    builder = None
    default_input_shape = (28, 28, 1)

    def __init__(
        self,
        info=None,
        *,
        input_shape=None,
        classes=None,
        precision="auto",
        jit_compile="auto",
        name=None,
    ):
        super().__init__(name=name, tunable=True)
        shape = tuple(
            input_shape
            or (info.image_shape if info is not None else None)
            or self.default_input_shape
        )
        if len(shape) != 3 or any(not checks.is_integer(d) or d < 1 for d in shape):
            raise UserError(
                f"input_shape must be (height, width, channels) of positive integers, got "
                f"{shape!r} (for images of different sizes give SearchData an image_size)"
            )
        if classes is None:
            classes = info.num_classes if info is not None else 10
        classes = checks.integer("classes", classes, low=2)
        resolve_precision(precision)  # raise now for a bad value, not in the first trial
        resolve_jit_compile(jit_compile)
        self.info = info
        self.input_shape = tuple(int(d) for d in shape)
        self.classes = classes
        self.precision = precision
        self.jit_compile = jit_compile

    @abc.abstractmethod
    def model_arguments(self, hp) -> dict:
        """The builder's arguments for ``hp`` (declaring the architecture hyperparameters)."""

    @abc.abstractmethod
    def training_arguments(self, hp) -> dict:
        """``optimizer``, ``learning_rate``, ``weight_decay``, ``l1`` and ``augment`` for
        ``hp``."""

    def declare_hyperparameters(self, hp):
        """Declare the whole space on ``hp`` without building a model (keras-tuner calls this
        first; ``hp.space`` then lists every hyperparameter, ``hp.values`` the defaults)."""
        self.model_arguments(hp)
        self.training_arguments(hp)

    def build(self, hp):
        """Build and compile the model of ``hp`` (defaults for the values ``hp`` lacks)."""
        arguments = self.model_arguments(hp)
        training = self.training_arguments(hp)
        with precision_policy(self.precision):
            model = build_model(
                self.builder,
                self.info,
                {"input_shape": self.input_shape, "classes": self.classes, **arguments},
            )
        compile_model(
            model,
            training["optimizer"],
            training["learning_rate"],
            weight_decay=training["weight_decay"],
            l1=training["l1"],
            jit_compile=resolve_jit_compile(self.jit_compile),
        )
        # The optimizer's variables exist from the start, so the trial checkpoints (which hold
        # them) load completely: Hyperband continues a trial with its optimizer state, and the
        # best model is saved ready to train further.
        model.optimizer.build(model.trainable_variables)
        return model

    def fit(self, hp, model, data, **kwargs):
        """Train ``model`` on ``data`` (a `SearchData`), augmented as ``hp["augment"]`` says.

        keras-tuner passes ``epochs``, ``callbacks`` (with early stopping) and, for Hyperband,
        ``initial_epoch`` in ``kwargs``.
        """
        if not isinstance(data, SearchData):
            raise UserError(
                "the data of a kcnn search must be a kcnn.tuning.SearchData, got "
                f"{type(data).__name__}"
            )
        train, validation = data.splits(hp.values.get("augment"))
        if model.jit_compile:
            model.jit_compile = choose_jit_compile(model, train, True)
        kwargs.setdefault("shuffle", False)  # the pipelines shuffle
        return model.fit(train, validation_data=validation, **kwargs)


class CNNHyperModel(KcnnHyperModel):
    """The search space of `kcnn.models.configurable_cnn` (the course's Listing 1, generalised).

    ========================  ===================================  ======================
    hyperparameter            values                               default
    ========================  ===================================  ======================
    ``conv_blocks``           1 to ``max_blocks``                  2
    ``filters_<i>``           16, 32, 64, 128 (block i <= blocks)  32, 64, 128, 128
    ``kernel_size``           3, 5                                 3
    ``norm``                  none, batch, group, layer, instance  none
    ``conv``                  standard, separable                  standard
    ``dense_units``           0 (none), 64, 128, 256               128
    ``dropout``               0.0 to 0.5, step 0.1                 0.5
    ``optimizer``             adam, sgd (momentum 0.9)             adam
    ``learning_rate``         1e-4 to 1e-1, log-uniform            1e-3
    ``weight_decay``          0, 1e-5, 1e-4, 1e-3 (decoupled)      0
    ``l1``                    0, 1e-6, 1e-5, 1e-4 (on the kernels) 0
    ``augment``               none, light, standard, strong        none
    ========================  ===================================  ======================

    The defaults build `simple_cnn` trained with Adam at 1e-3, the course's Listing 1 and 2.
    ``augment`` is a `kcnn.data.augmentation_layers` preset applied by the data pipeline of
    the training split.

    Args:
        max_blocks: the most conv blocks to try; default the most 2x2 poolings the input
            allows, at most 4. A trial with more ``conv_blocks`` (e.g. from a user's own
            ``hp.Choice``) fails with a clear error.
        (The others as `KcnnHyperModel`.)

    Example:
        >>> hp = keras_tuner.HyperParameters()
        >>> hp.Fixed("norm", "batch")
        >>> model = CNNHyperModel(input_shape=(28, 28, 1), classes=10).build(hp)
    """

    builder = "configurable_cnn"
    default_input_shape = (28, 28, 1)
    FILTERS = (16, 32, 64, 128)

    def __init__(self, info=None, *, max_blocks=None, **kwargs):
        kwargs.setdefault("name", "cnn")
        super().__init__(info, **kwargs)
        allowed = int(math.log2(min(self.input_shape[:2])))
        if max_blocks is None:
            max_blocks = max(1, min(4, allowed))
        if not checks.is_integer(max_blocks) or not 1 <= max_blocks <= allowed:
            raise UserError(
                f"max_blocks must be an integer from 1 to {allowed} for a "
                f"{self.input_shape[0]}x{self.input_shape[1]} input, got {max_blocks!r}"
            )
        self.max_blocks = int(max_blocks)

    def model_arguments(self, hp) -> dict:
        blocks = hp.Int("conv_blocks", 1, self.max_blocks, default=min(2, self.max_blocks))
        if blocks > self.max_blocks:
            raise UserError(
                f"conv_blocks={blocks} is more than max_blocks={self.max_blocks} of this space "
                f"(a {self.input_shape[0]}x{self.input_shape[1]} input)"
            )
        filters = [hp.Choice("filters_1", self.FILTERS, default=32)]
        for block in range(2, self.max_blocks + 1):
            name = f"filters_{block}"
            with hp.conditional_scope("conv_blocks", list(range(block, self.max_blocks + 1))):
                if any(p.name == name and not p.conditions for p in hp.space):
                    chosen = hp.get(name)  # the user fixed it for every number of blocks
                else:
                    chosen = hp.Choice(name, self.FILTERS, default=min(32 * 2 ** (block - 1), 128))
            if block <= blocks:
                filters.append(chosen)
        dense = hp.Choice("dense_units", (0, 64, 128, 256), default=128)
        return {
            "filters": tuple(filters),
            "kernel_size": hp.Choice("kernel_size", (3, 5), default=3),
            "norm": _kind(hp.Choice("norm", _choices(NORMS), default="none")),
            "conv": hp.Choice("conv", CONVS, default="standard"),
            "fc_units": dense or None,
            "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.5),
        }

    def training_arguments(self, hp) -> dict:
        return {
            "optimizer": hp.Choice("optimizer", ("adam", "sgd"), default="adam"),
            "learning_rate": hp.Float("learning_rate", 1e-4, 1e-1, sampling="log", default=1e-3),
            "weight_decay": hp.Choice("weight_decay", (0.0, 1e-5, 1e-4, 1e-3), default=0.0),
            "l1": hp.Choice("l1", (0.0, 1e-6, 1e-5, 1e-4), default=0.0),
            "augment": hp.Choice("augment", AUGMENT_PRESETS, default="none"),
        }


class ResNetHyperModel(KcnnHyperModel):
    """The search space of `kcnn.models.resnet`, the ResNet with any depth per stage.

    ===========================  ===============================  ==========
    hyperparameter               values                           default
    ===========================  ===============================  ==========
    ``stage<i>_blocks``          1, 2, 3 (one per stage)          2
    ``width``                    0.25, 0.5, 1.0                   1.0
    ``attention``                none, se, spatial, cbam          none
    ``norm``                     batch, group, layer, instance,   batch
                                 none
    ``conv``                     standard, separable              standard
    ``drop_path_rate``           0.0 to 0.3, step 0.1             0.0
    ``learning_rate``            1e-4 to 1e-2, log-uniform (Adam) 1e-3
    ===========================  ===============================  ==========

    With the defaults and four stages it builds `resnet18` with ``stem`` (default the CIFAR
    stem, for small images), trained with Adam at 1e-3. Attention is squeeze-and-excitation
    (Hu et al., CVPR 2018), CBAM's spatial attention or CBAM (Woo et al., ECCV 2018); drop-path
    is stochastic depth (Huang et al., ECCV 2016); ``norm`` and ``conv`` are those of
    `kcnn.layers.normalization` and `kcnn.layers.convolution`.

    Args:
        stem: ``"cifar"`` or ``"imagenet"`` (see `kcnn.models.resnet`).
        block: ``"basic"`` or ``"bottleneck"``.
        stages: the number of stages, 1 to 4.
        (The others as `KcnnHyperModel`.)
    """

    builder = "resnet"
    default_input_shape = (32, 32, 3)

    def __init__(self, info=None, *, stem="cifar", block="basic", stages=4, **kwargs):
        kwargs.setdefault("name", "resnet")
        super().__init__(info, **kwargs)
        stages = checks.integer("stages", stages, 1, 4)
        if stem not in STEMS:
            raise UserError(f"stem must be one of {STEMS}, got {stem!r}")
        if block not in BLOCKS:
            raise UserError(f"block must be one of {tuple(BLOCKS)}, got {block!r}")
        self.stem = stem
        self.block = block
        self.stages = stages

    def model_arguments(self, hp) -> dict:
        depths = tuple(
            hp.Int(f"stage{stage}_blocks", 1, 3, default=2) for stage in range(1, self.stages + 1)
        )
        attention = hp.Choice("attention", _choices(ATTENTION_KINDS), default="none")
        norm = hp.Choice("norm", _choices((*NORMS[:-1], None)), default="batch")
        return {
            "depths": depths,
            "block": self.block,
            "stem": self.stem,
            "width": hp.Choice("width", (0.25, 0.5, 1.0), default=1.0),
            "attention": _kind(attention),
            "drop_path_rate": hp.Float("drop_path_rate", 0.0, 0.3, step=0.1, default=0.0),
            "norm": _kind(norm),
            "conv": hp.Choice("conv", CONVS, default="standard"),
        }

    def training_arguments(self, hp) -> dict:
        return {
            "optimizer": "adam",
            "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3),
            "weight_decay": 0.0,
            "l1": 0.0,
            "augment": None,
        }


SPACES = {"cnn": CNNHyperModel, "resnet": ResNetHyperModel}


def _choices(kinds) -> tuple:
    """Layer kinds as keras-tuner choices, which cannot be None: None becomes ``"none"``."""
    return tuple("none" if kind is None else kind for kind in kinds)


def _kind(choice):
    """The layer kind of a keras-tuner choice made by `_choices`."""
    return None if choice == "none" else choice
