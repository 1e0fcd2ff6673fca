"""Hyperparameter search with keras-tuner over kcnn's builders.

- `CNNHyperModel` and `ResNetHyperModel`: ``keras_tuner.HyperModel`` subclasses whose
  ``build(hp)`` declares a search space with explicit defaults and builds a kcnn model
  (`kcnn.models.configurable_cnn`, `kcnn.models.resnet`) under kcnn's precision policy, compiled
  with kcnn's optimizers (`kcnn.training.compile_model`). Their defaults build the documented
  models: `simple_cnn` with Adam 1e-3, and `resnet18` with the CIFAR stem.
- `SearchData`: the training and validation data of a search, made by `kcnn.data.make_dataset`
  once per augmentation preset a trial asks for.
- `search`: runs a ``"random"``, ``"hyperband"`` or ``"bayesian"`` search -- whose first trial is
  the space's defaults -- with early stopping in each trial, clears the Keras session between
  trials, and writes, in the project folder, the
  results table of every trial (``results.csv`` and ``results.md``: hyperparameters, score,
  time, status, error), the best model (``best_model.keras``, atomically) and its
  hyperparameters (``best_hyperparameters.json``).

Resuming: run the same search again with the same ``directory`` and ``project_name``. keras-tuner
reloads its oracle and its trials; a trial that was running when the process died (even from a
SIGKILL) runs again, and finished trials are never repeated. ``kcnn_trial.json`` in each trial
folder counts its attempts and records its time.

Distributed search uses keras-tuner's chief/worker mode: start the same script (or ``kcnn tune``
command) once per process, all with the same shared ``directory``, and set in each
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief listens) and
``KERASTUNER_TUNER_ID`` (``chief`` for the one process that runs the oracle, a distinct name such
as ``tuner0``, ``tuner1`` for each worker). The workers train the trials; the chief hands them out
over gRPC and, when the search is over, writes the results and the best model.

Example:
    >>> from kcnn import tuning
    >>> data = tuning.SearchData("fashion_mnist", batch_size=128)
    >>> result = tuning.search(tuning.CNNHyperModel(data.info), data, tuner="hyperband",
    ...                        max_trials=20, epochs=9, directory="results/tune")
    >>> result.best_hyperparameters, result.model_path
"""

from __future__ import annotations

import abc
import csv
import dataclasses
import io
import json
import math
import os
import time

import keras
import keras_tuner

from kcnn import checks
from kcnn.files import save_model, write_json, write_text
from kcnn.layers.attention import ATTENTION_KINDS
from kcnn.layers.convolution import CONVS
from kcnn.layers.normalization import NORMS
from kcnn.models.resnet import BLOCKS, STEMS
from kcnn.training import (
    build_model,
    choose_jit_compile,
    compile_model,
    fit_verbosity,
    precision_policy,
    resolve_jit_compile,
    resolve_precision,
)

TUNERS = ("random", "hyperband", "bayesian")
AUGMENT_PRESETS = ("none", "light", "standard", "strong")
RESULTS_CSV = "results.csv"
RESULTS_MARKDOWN = "results.md"
BEST_MODEL = "best_model.keras"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
TRIAL_RECORD = "kcnn_trial.json"
FAILED_STATUSES = ("FAILED", "INVALID")


class SearchError(RuntimeError):
    """A search that cannot go on: its last trials all failed, or none completed."""


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

    def __init__(self, info=None, *, input_shape=None, classes=None, precision="auto",
                 jit_compile="auto", name=None):
        super().__init__(name=name, tunable=True)
        shape = tuple(input_shape or (info.image_shape if info is not None else None)
                      or self.default_input_shape)
        if len(shape) != 3 or any(not checks.is_integer(d) or d < 1 for d in shape):
            raise ValueError(
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
                self.builder, self.info,
                {"input_shape": self.input_shape, "classes": self.classes, **arguments},
            )
        compile_model(
            model, training["optimizer"], training["learning_rate"],
            weight_decay=training["weight_decay"], l1=training["l1"],
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
            raise ValueError(
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
            raise ValueError(
                f"max_blocks must be an integer from 1 to {allowed} for a "
                f"{self.input_shape[0]}x{self.input_shape[1]} input, got {max_blocks!r}"
            )
        self.max_blocks = int(max_blocks)

    def model_arguments(self, hp) -> dict:
        blocks = hp.Int("conv_blocks", 1, self.max_blocks, default=min(2, self.max_blocks))
        if blocks > self.max_blocks:
            raise ValueError(
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
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {block!r}")
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


class SearchData:
    """The training and validation data of a search.

    Either a data source, from which `kcnn.data.make_dataset` makes the pipelines (raw pixels in
    [0, 255], ``normalize=None``, as `kcnn.training.train` uses them) -- a new training
    pipeline for each augmentation preset the trials ask for, kept for the next trials -- or two
    ready-made batched ``tf.data.Dataset`` objects, used as they are (the search then cannot
    try augmentations).

    Args:
        train: what `kcnn.data.make_dataset` takes (``"fashion_mnist"``, a folder, uint8 arrays,
            a ``(dataset, info)`` pair from `kcnn.data.load`), or a batched ``tf.data.Dataset``.
        validation: the validation data: nothing for a source with a validation split (or a
            held-out ``validation_split`` of its training split), another source (e.g. a
            ``(dataset, info)`` pair), or a batched ``tf.data.Dataset`` when ``train`` is one.
        batch_size: examples per batch.
        image_size: ``(height, width)`` or an int to resize to (see `kcnn.data.make_dataset`).
        augment: the augmentation preset of trials that do not choose one (ResNet space).
        validation_split: the share of the training split held out when the source has no
            validation split.
        data_dir: where to look for named datasets first.
        seed: seed of the shuffling, the augmentation and the hold-out.

    Raises:
        ValueError: for a ``tf.data.Dataset`` ``train`` without a ``tf.data.Dataset``
            ``validation``, or a bad ``batch_size``.
    """

    def __init__(self, train, validation=None, *, batch_size=128, image_size=None, augment=None,
                 validation_split=0.1, data_dir=None, seed=0):
        import tensorflow as tf

        batch_size = checks.positive_int("batch_size", batch_size)
        self.ready = isinstance(train, tf.data.Dataset)
        if self.ready and not isinstance(validation, tf.data.Dataset):
            raise ValueError(
                "validation must be a batched tf.data.Dataset when train is one, got "
                f"{type(validation).__name__}"
            )
        if augment not in (None, *AUGMENT_PRESETS):
            raise ValueError(f"augment must be None or one of {AUGMENT_PRESETS}, got {augment!r}")
        self.train = train
        self.validation = validation
        self.batch_size = batch_size
        self.augment = augment
        self.options = dict(image_size=image_size, normalize=None, seed=seed, data_dir=data_dir,
                            validation_split=validation_split)
        self._train = {}
        self._validation = None
        self._info = None

    @property
    def augmentable(self) -> bool:
        """Whether trials can choose an augmentation (the data is a source, not datasets)."""
        return not self.ready

    @property
    def info(self):
        """The `kcnn.data.DatasetInfo` of the training pipeline (None for ready datasets)."""
        if not self.ready and self._info is None:
            self.splits()
        return self._info

    def splits(self, augment=None) -> tuple:
        """``(train, validation)`` batched datasets, the training one augmented with the preset
        ``augment`` (default: this data's ``augment``).

        Raises:
            ValueError: for an augmentation of ready-made datasets, or what kcnn.data raises.
        """
        augment = self.augment if augment is None else augment
        if self.ready:
            if augment not in (None, "none"):
                raise ValueError(
                    f"augment={augment!r}: ready-made tf.data datasets cannot be augmented per "
                    "trial; give the search a data source (a dataset name, a folder, uint8 arrays) "
                    "or fix the augment hyperparameter to 'none'"
                )
            return self.train, self.validation
        from kcnn.data import make_dataset

        key = augment or "none"
        if key not in self._train:
            self._train[key], self._info = make_dataset(
                self.train, self.batch_size, "train", augment=key, **self.options
            )
        if self._validation is None:
            source = self.train if self.validation is None else self.validation
            self._validation, _ = make_dataset(
                source, self.batch_size, "validation", **self.options
            )
        return self._train[key], self._validation


@dataclasses.dataclass
class SearchResult:
    """What a search found and where it wrote it.

    Attributes:
        role: ``"local"``, ``"chief"`` or ``"worker"`` (see `search_role`). A worker's result
            holds only ``project_dir``; the chief writes the files.
        project_dir: the folder of the search (keras-tuner's files and kcnn's).
        objective: the name of the objective, e.g. ``"val_accuracy"``.
        best_trial: the id of the best completed trial (see `best_trial`).
        best_score: its objective value.
        best_hyperparameters: its hyperparameter values.
        trials: one dict per trial, as in the results table.
        model_path: ``best_model.keras``.
        hyperparameters_path: ``best_hyperparameters.json``.
        results_csv, results_markdown: the results table.
        seconds: the wall-clock time of this call.
    """

    role: str
    project_dir: str
    objective: str | None = None
    best_trial: str | None = None
    best_score: float | None = None
    best_hyperparameters: dict = dataclasses.field(default_factory=dict)
    trials: list = dataclasses.field(default_factory=list)
    model_path: str | None = None
    hyperparameters_path: str | None = None
    results_csv: str | None = None
    results_markdown: str | None = None
    seconds: float = 0.0


def search_role() -> str:
    """``"local"``, or in keras-tuner's distributed mode ``"chief"`` (``KERASTUNER_TUNER_ID``
    contains "chief", as keras-tuner decides) or ``"worker"``.

    Raises:
        ValueError: when ``KERASTUNER_ORACLE_IP`` is set without ``KERASTUNER_ORACLE_PORT`` or
            ``KERASTUNER_TUNER_ID``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    for variable in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(variable):
            raise ValueError(
                f"KERASTUNER_ORACLE_IP is set but {variable} is not: a distributed search needs "
                "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID"
            )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


class _DefaultsFirst:
    """Mixed into keras-tuner's oracles: the first values they draw are the space's defaults,
    so every search trains the documented model first and its table holds the baseline
    (keras-tuner itself starts at random)."""

    def _random_values(self):
        defaults = keras_tuner.HyperParameters()
        defaults.merge(self.hyperparameters)  # registers each one with its default
        if not self._duplicate(defaults.values):
            return defaults.values
        return super()._random_values()


class _RandomOracle(_DefaultsFirst, keras_tuner.oracles.RandomSearchOracle):
    pass


class _HyperbandOracle(_DefaultsFirst, keras_tuner.oracles.HyperbandOracle):
    pass


class _BayesianOracle(_DefaultsFirst, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class _KcnnTuner:
    """Mixed into keras-tuner's tuners: records each trial's attempts and time, clears the Keras
    session after it, keeps the results table up to date, and stops after
    ``max_consecutive_failures`` failed trials in a row. The oracle comes made (`search`)."""

    def __init__(self, oracle, hypermodel, *, max_consecutive_failures=3, **kwargs):
        self.max_consecutive_failures = max_consecutive_failures
        self._consecutive_failures = 0
        self._started = {}
        keras_tuner.Tuner.__init__(self, oracle, hypermodel, **kwargs)

    def on_search_begin(self):
        super().on_search_begin()
        if search_role() == "local":
            self.save()

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        path = os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_RECORD)
        record = _read_json(path) or {}
        record.update(attempts=record.get("attempts", 0) + 1, seconds=None,
                      tuner_id=self.tuner_id)
        write_json(path, record)
        self._started[trial.trial_id] = time.perf_counter()

    def on_trial_end(self, trial):
        path = os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_RECORD)
        record = _read_json(path) or {}
        record["seconds"] = round(time.perf_counter() - self._started.pop(trial.trial_id), 3)
        write_json(path, record)
        failed = trial.status in FAILED_STATUSES
        super().on_trial_end(trial)
        keras.utils.clear_session(free_memory=True)
        if search_role() == "local":
            write_results(self.oracle, self.project_dir)
        self._consecutive_failures = self._consecutive_failures + 1 if failed else 0
        if self._consecutive_failures >= self.max_consecutive_failures:
            raise SearchError(_failure_message(self, trial))


class _Tuner(_KcnnTuner, keras_tuner.Tuner):
    """Random search and Bayesian optimisation: their tuners only differ by their oracle."""


class _Hyperband(_KcnnTuner, keras_tuner.Hyperband):
    """Hyperband's tuner runs each trial for its bracket's epochs from its parent's weights."""


def _failure_message(tuner, trial) -> str:
    completed = sum(
        t.status == "COMPLETED" for t in getattr(tuner.oracle, "trials", {}).values()
    )
    what = "no trial could be built and trained" if not completed else "the search stopped"
    return (
        f"{what}: the last {tuner._consecutive_failures} trials failed "
        f"(max_consecutive_failures={tuner.max_consecutive_failures}). The last error: "
        f"{_last_line(trial.message)}. Every trial is listed in "
        f"{os.path.join(tuner.project_dir, RESULTS_MARKDOWN)}."
    )


def search(
    hypermodel,
    data,
    *,
    tuner: str = "random",
    objective="val_accuracy",
    max_trials: int | None = 10,
    epochs: int = 10,
    patience: int | None = 3,
    directory=os.path.join("results", "tune"),
    project_name: str = "search",
    hyperparameters=None,
    seed: int = 0,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
    max_consecutive_failures: int = 3,
    callbacks=(),
    overwrite: bool = False,
    verbose="auto",
) -> SearchResult:
    """Search ``hypermodel``'s space on ``data`` with keras-tuner and save what it finds.

    The first trial trains the space's defaults (for kcnn's spaces, the documented model), so
    the results always hold that baseline; the tuner chooses the others. Each trial builds its
    model after ``keras.utils.clear_session()`` (keras-tuner's graphs and models otherwise pile
    up in memory), trains it for at most ``epochs`` with early stopping on the objective, and
    is timed. After every trial, ``results.csv`` and ``results.md`` in the
    project folder list every trial; at the end the best model is saved there as
    ``best_model.keras`` (written atomically; `kcnn.load_model` loads it) and its
    hyperparameters as ``best_hyperparameters.json``. A trial whose model cannot be built or
    trained is recorded as failed, with its error, and the search goes on.

    Args:
        hypermodel: a `KcnnHyperModel` (or any ``keras_tuner.HyperModel`` whose ``fit`` takes a
            `SearchData`), or a space name, ``"cnn"`` or ``"resnet"``, built for ``data.info``.
        data: a `SearchData`, a pair of batched ``tf.data.Dataset`` objects ``(train,
            validation)``, or a source for `SearchData` (a dataset name, folder, uint8 arrays).
        tuner: ``"random"`` (random search), ``"hyperband"`` (Li et al., JMLR 2018) or
            ``"bayesian"`` (Gaussian-process Bayesian optimisation).
        objective: the metric to optimise (a Keras log name such as ``"val_accuracy"`` or
            ``"val_loss"``, or a ``keras_tuner.Objective``).
        max_trials: the number of trials (for Hyperband, a cap on its schedule; None: none).
        epochs: the most epochs a trial trains (Hyperband's ``max_epochs``).
        patience: early stopping's patience in epochs on the objective (None: no early stopping).
        directory, project_name: the search lives in ``directory/project_name``.
        hyperparameters: a ``keras_tuner.HyperParameters`` that fixes (``hp.Fixed``) or narrows
            hyperparameters of the space.
        seed: the oracle's random seed.
        executions_per_trial: trainings per trial (from new initialisations), averaged.
        hyperband_factor: Hyperband's reduction factor.
        max_consecutive_failures: stop after this many failed trials in a row.
        callbacks: more Keras callbacks for every trial (they must be deep-copyable).
        overwrite: delete an existing search of that name first instead of resuming it (refused
            in a distributed search, where the folder is shared).
        verbose: keras-tuner's and ``fit``'s verbosity (``"auto"``: a progress bar on a
            terminal, one line per epoch elsewhere; see `kcnn.training.fit_verbosity`).

    Returns:
        a `SearchResult`.

    Raises:
        ValueError: for a bad argument.
        SearchError: when ``max_consecutive_failures`` trials fail in a row, or no trial
            completes; the message gives the last error and the results table is written.

    Example:
        >>> hp = keras_tuner.HyperParameters()
        >>> hp.Fixed("augment", "light")
        >>> result = search("cnn", "fashion_mnist", tuner="bayesian", max_trials=15,
        ...                 hyperparameters=hp, project_name="cnn_bayes")
    """
    start = time.perf_counter()
    if tuner not in TUNERS:
        raise ValueError(f"tuner must be one of {TUNERS}, got {tuner!r}")
    epochs = checks.positive_int("epochs", epochs)
    executions_per_trial = checks.positive_int("executions_per_trial", executions_per_trial)
    max_consecutive_failures = checks.positive_int(
        "max_consecutive_failures", max_consecutive_failures
    )
    if max_trials is not None or tuner != "hyperband":
        max_trials = checks.positive_int("max_trials", max_trials)
    if patience is not None:
        patience = checks.positive_int("patience", patience)
    hyperband_factor = checks.integer("hyperband_factor", hyperband_factor, low=2)
    role = search_role()
    if overwrite and role != "local":
        raise ValueError("overwrite=True would delete the folder a distributed search shares")
    data = _search_data(data)
    hypermodel = _hypermodel(hypermodel, data)
    hps = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    if not data.augmentable and isinstance(hypermodel, CNNHyperModel) and "augment" not in hps:
        hps.Fixed("augment", "none")
    # kcnn stops after max_consecutive_failures itself: keras-tuner's own limit raises before
    # the failed trial is saved.
    options = dict(objective=objective, hyperparameters=hps, seed=seed,
                   max_consecutive_failed_trials=None)
    if tuner == "random":
        oracle, kind = _RandomOracle(max_trials=max_trials, **options), _Tuner
    elif tuner == "bayesian":
        oracle, kind = _BayesianOracle(max_trials=max_trials, **options), _Tuner
    else:
        oracle = _HyperbandOracle(max_epochs=epochs, factor=hyperband_factor, **options)
        oracle.max_trials, kind = max_trials, _Hyperband
    search_tuner = kind(
        oracle, hypermodel, directory=os.fspath(directory), project_name=project_name,
        overwrite=overwrite, executions_per_trial=executions_per_trial,
        max_consecutive_failures=max_consecutive_failures,
    )
    target = search_tuner.oracle.objective
    fit_callbacks = list(callbacks)
    if patience is not None:
        fit_callbacks.append(keras.callbacks.EarlyStopping(
            monitor=target.name, mode=target.direction, patience=patience
        ))
    search_tuner.search(data, epochs=epochs, callbacks=fit_callbacks, verbose=fit_verbosity(verbose))
    project_dir = search_tuner.project_dir
    if role == "worker":
        return SearchResult(role=role, project_dir=project_dir,
                            seconds=time.perf_counter() - start)
    return _finish(search_tuner, hypermodel, role, project_dir, start)


def _finish(search_tuner, hypermodel, role, project_dir, start) -> SearchResult:
    """Write the results table, the best model and its hyperparameters."""
    oracle = search_tuner.oracle
    rows = write_results(oracle, project_dir)
    trial = best_trial(oracle)
    if trial is None:
        raise SearchError(
            f"no trial of the search in {project_dir} completed; the errors are in "
            f"{os.path.join(project_dir, RESULTS_MARKDOWN)}"
        )
    model = search_tuner.load_model(trial)  # its weights at its best epoch
    model_path = os.path.join(project_dir, BEST_MODEL)
    save_model(model, model_path)
    hp = trial.hyperparameters
    described = {
        "trial_id": trial.trial_id,
        "objective": oracle.objective.name,
        "direction": oracle.objective.direction,
        "score": trial.score,
        "hyperparameters": dict(hp.values),
    }
    if isinstance(hypermodel, KcnnHyperModel):
        described["builder"] = hypermodel.builder
        described["builder_arguments"] = hypermodel.model_arguments(hp.copy())
        described["training_arguments"] = hypermodel.training_arguments(hp.copy())
    hyperparameters_path = write_json(os.path.join(project_dir, BEST_HYPERPARAMETERS), described)
    keras.utils.clear_session(free_memory=True)
    return SearchResult(
        role=role,
        project_dir=project_dir,
        objective=oracle.objective.name,
        best_trial=trial.trial_id,
        best_score=float(trial.score),
        best_hyperparameters=dict(hp.values),
        trials=rows,
        model_path=model_path,
        hyperparameters_path=hyperparameters_path,
        results_csv=os.path.join(project_dir, RESULTS_CSV),
        results_markdown=os.path.join(project_dir, RESULTS_MARKDOWN),
        seconds=time.perf_counter() - start,
    )


def best_trial(oracle):
    """The completed trial with the best score, the earliest of those that tie (so a search
    keeps its first trial, the space's defaults, over a configuration that only equals it);
    None when no trial completed. keras-tuner's own ranking breaks ties in the order it happens
    to reload the trials' files."""
    completed = [t for t in oracle.trials.values()
                 if t.status == "COMPLETED" and t.score is not None]
    if not completed:
        return None
    sign = -1.0 if oracle.objective.direction == "max" else 1.0
    return min(completed, key=lambda t: (sign * t.score, _trial_order(t.trial_id)))


def write_results(oracle, project_dir) -> list[dict]:
    """Write ``results.csv`` and ``results.md`` in ``project_dir`` (atomically) and return
    their rows: one per trial of ``oracle``, in the order they started.

    Columns: ``trial``, ``status`` (COMPLETED, FAILED, or RUNNING for a trial interrupted
    before it ended), the objective's best value, ``best_epoch``, ``seconds`` and ``attempts``
    (from ``kcnn_trial.json``), every hyperparameter (empty when inactive), and ``error`` (the
    last line of a failed trial's error).
    """
    objective = oracle.objective.name
    names = []
    for hp in oracle.get_space().space:
        if hp.name not in names:
            names.append(hp.name)
    trials = sorted(oracle.trials.values(), key=lambda t: _trial_order(t.trial_id))
    for trial in trials:
        names += [name for name in trial.hyperparameters.values if name not in names]
    rows = []
    for trial in trials:
        record = _read_json(os.path.join(project_dir, f"trial_{trial.trial_id}", TRIAL_RECORD))
        record = record or {}
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            objective: trial.score if trial.status == "COMPLETED" else None,
            "best_epoch": _best_epoch(trial),
            "seconds": record.get("seconds"),
            "attempts": record.get("attempts"),
        }
        row.update({name: trial.hyperparameters.values.get(name) for name in names})
        row["error"] = _last_line(trial.message) if trial.status in FAILED_STATUSES else None
        rows.append(row)
    columns = ["trial", "status", objective, "best_epoch", "seconds", "attempts", *names, "error"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: "" if value is None else value for key, value in row.items()}
                     for row in rows)
    write_text(os.path.join(project_dir, RESULTS_CSV), text.getvalue())
    write_text(os.path.join(project_dir, RESULTS_MARKDOWN),
               _markdown(rows, columns, oracle, project_dir))
    return rows


def _markdown(rows, columns, oracle, project_dir) -> str:
    objective = oracle.objective
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    counts = {status: sum(row["status"] == status for row in rows)
              for status in dict.fromkeys(row["status"] for row in rows)}
    lines = [
        f"# Search results: {os.path.basename(os.path.normpath(project_dir))}",
        "",
        f"Objective: `{objective.name}` ({objective.direction}). Trials: "
        + (", ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "none") + ".",
    ]
    if completed:
        best = best_trial(oracle)
        lines.append(f"Best: trial {best.trial_id}, {objective.name} = {_format(best.score)}.")
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_format(row[column]).replace("|", "\\|") for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _best_epoch(trial):
    """The epoch (from 1) of the trial's best objective value; Hyperband's later rounds start
    at ``tuner/initial_epoch``."""
    if trial.status != "COMPLETED" or trial.best_step is None:
        return None
    start = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
    return start + int(trial.best_step) + 1


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _trial_order(trial_id: str):
    return (0, int(trial_id), "") if trial_id.isdigit() else (1, 0, trial_id)


def _last_line(message) -> str:
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def _search_data(data) -> SearchData:
    import tensorflow as tf

    if isinstance(data, SearchData):
        return data
    if isinstance(data, tuple) and len(data) == 2 and all(
        isinstance(part, tf.data.Dataset) for part in data
    ):
        return SearchData(*data)
    return SearchData(data)


def _hypermodel(hypermodel, data: SearchData):
    if isinstance(hypermodel, str):
        if hypermodel not in SPACES:
            raise ValueError(f"hypermodel must be one of {tuple(SPACES)} or a HyperModel, "
                             f"got {hypermodel!r}")
        if data.info is None:
            raise ValueError(
                f"hypermodel={hypermodel!r} needs a data source to know the input shape and the "
                f"classes; with ready-made datasets pass {SPACES[hypermodel].__name__}("
                "input_shape=..., classes=...)"
            )
        return SPACES[hypermodel](data.info)
    if not isinstance(hypermodel, keras_tuner.HyperModel):
        raise ValueError(
            f"hypermodel must be a keras_tuner.HyperModel or one of {tuple(SPACES)}, got "
            f"{type(hypermodel).__name__}"
        )
    return hypermodel


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None
