"""`train`: build, compile and fit a classifier with kcnn's defaults, and report what happened."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time

import keras

from kcnn import checks
from kcnn.data.sources import training_datasets
from kcnn.files import jsonable
from kcnn.progress import is_terminal
from kcnn.training.callbacks import BEST, HISTORY, LAST, read_history, run_callbacks
from kcnn.training.distribute import make_strategy, multi_worker_fit, strategy_name, worker_role
from kcnn.training.hardware import choose_jit_compile, configure_determinism, precision_policy
from kcnn.training.optimization import classification_loss, compile_model
from kcnn.training.rundir import RUN_FILE, RunDirectory, run_settings
from kcnn.training.sparsity import kernel_sparsity
from kcnn.training.tta import flip_averaged

INPUT_RANGE = (0.0, 255.0)  # every model kcnn trains takes raw pixels


def fit_verbosity(verbose="auto", stream=None):
    """``fit``'s ``verbose`` for output going to ``stream`` (default ``sys.stdout``).

    ``"auto"`` is 1 (a progress bar redrawn in place) on a terminal and 2 (one line per epoch)
    elsewhere: a progress bar written to a log file or a pipe is hundreds of kilobytes of
    frames. Any other value is returned as given. `train`, and through it ``kcnn train`` and
    ``kcnn transfer``, and `kcnn.tuning.search` (``kcnn tune``) decide with it.
    """
    if verbose != "auto":
        return verbose
    return 1 if is_terminal(sys.stdout if stream is None else stream) else 2


@dataclasses.dataclass
class TrainResult:
    """What `train` did.

    Attributes:
        model: the trained model (the best weights when early stopping restored them).
        history: one list per metric (``loss``, ``accuracy``, ``val_loss``, ``train_seconds``
            ...), one value per epoch, the epochs of an interrupted run included.
        test_metrics: the metrics on the test split (e.g. ``{"loss": 0.25, "accuracy": 0.91}``),
            or None without test data.
        single_view_test_metrics: with ``test_time_flip``, ``test_metrics`` are those of the
            predictions combined with the mirror images' (`flip_averaged`) and these the
            model's own (each image seen once), for comparison; None otherwise.
        seconds: wall-clock seconds of the whole `train` call (data, building, training, test).
        train_seconds: seconds spent in the training phase of the epochs this call ran.
        images_per_second: training images per second over those epochs (None when the number
            of training images is unknown).
        epochs: the number of epochs the run has completed.
        initial_epoch: the epoch this call started from (> 0 when it resumed a run).
        precision: the dtype policy of the model (``"mixed_bfloat16"``...).
        jit_compile: whether the training step was compiled with XLA.
        strategy: ``"default"``, ``"mirrored"`` or ``"multiworker"``.
        replicas: the number of replicas training ran on.
        run_dir: the run directory, or None.
        model_path: the saved model file: ``best.keras`` (best validation accuracy) when the run
            had validation data, else ``last.keras``; None without a run directory.
        info: the training data's `kcnn.data.DatasetInfo` (None for ``tf.data`` input).
        stopped_early: whether early stopping ended the run.
        resumed_from: where a resumed run's state came from: ``"backup"``, ``"checkpoint"``
            (``last.keras``, the backup being unusable), None (a new run, or a resumed one
            that had completed no epoch).
        sparsity: the share of the trained kernels' weights that are nearly zero, overall and
            per layer (`kcnn.training.kernel_sparsity`): what L1 regularization did.
    """

    model: keras.Model
    history: dict
    test_metrics: dict | None
    seconds: float
    train_seconds: float
    images_per_second: float | None
    epochs: int
    initial_epoch: int
    precision: str
    jit_compile: bool
    strategy: str
    replicas: int
    run_dir: str | None = None
    model_path: str | None = None
    info: object = None
    stopped_early: bool = False
    resumed_from: str | None = None
    sparsity: dict | None = None
    single_view_test_metrics: dict | None = None

    @property
    def test_time_flip(self) -> bool:
        """Whether ``test_metrics`` are those of the predictions combined with the mirror
        images'."""
        return self.single_view_test_metrics is not None

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy, or None without test data."""
        if not self.test_metrics:
            return None
        return self.test_metrics.get("accuracy")

    @classmethod
    def from_run(cls, model, run: dict) -> TrainResult:
        """The result of a finished run, read back from its ``run.json`` (`read_run`), with
        ``model`` holding its final weights (``info`` is not kept there: None)."""
        names = {field.name for field in dataclasses.fields(cls)} - {"model", "info"}
        return cls(model=model, **{name: run[name] for name in names if name in run})

    def to_dict(self) -> dict:
        """Everything but the model, as JSON-ready values."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.pop("model")
        info = fields.pop("info")
        fields["model_name"] = self.model.name
        if info is not None:
            fields["dataset"] = info.name
            fields["class_names"] = list(info.class_names)
            fields["image_shape"] = list(self.model.inputs[0].shape[1:])
            fields["input_range"] = list(INPUT_RANGE)
        return jsonable(fields)

    def summary(self) -> str:
        """A few lines for the end of a run: accuracy, time, speed, files."""
        lines = [
            f"model        {self.model.name} ({self.precision}, "
            f"XLA {'on' if self.jit_compile else 'off'}, "
            f"{self.strategy} strategy, {self.replicas} replica{'s' if self.replicas > 1 else ''})"
        ]
        if self.test_metrics:
            accuracy = self.test_metrics.get("accuracy")
            if accuracy is not None:
                lines.append(
                    f"test         accuracy {accuracy:.4f}, loss {self.test_metrics['loss']:.4f}"
                    + (" (with mirror images)" if self.test_time_flip else "")
                )
            if self.single_view_test_metrics:
                alone = self.single_view_test_metrics["accuracy"]
                lines.append(f"             accuracy {alone:.4f} without them")
        if "val_accuracy" in self.history:
            values = self.history["val_accuracy"]
            best = max(range(len(values)), key=values.__getitem__)
            lines.append(f"validation   best accuracy {values[best]:.4f} at epoch {best + 1}")
        speed = (
            f", {self.images_per_second:,.0f} training images/s" if self.images_per_second else ""
        )
        lines.append(
            f"time         {self.seconds:.1f} s in all, {self.train_seconds:.1f} s training{speed}"
        )
        lines.append(
            f"epochs       {self.epochs}"
            + (" (stopped early)" if self.stopped_early else "")
            + (
                f", resumed at epoch {self.initial_epoch + 1} from the {self.resumed_from}"
                if self.resumed_from
                else ""
            )
        )
        if self.sparsity and self.sparsity["overall"] is not None:
            lines.append(
                f"sparsity     {self.sparsity['overall']:.1%} of the kernel weights below "
                f"{self.sparsity['threshold']:g}"
            )
        if self.model_path:
            lines.append(f"model file   {self.model_path}")
        return "\n".join(lines)


def read_run(run_dir) -> dict | None:
    """The ``run.json`` that a finished run wrote in ``run_dir`` (None when there is none).

    Raises:
        ValueError: naming the file, when it is not a JSON object (damaged, or not kcnn's).
    """
    path = os.path.join(os.fspath(run_dir), RUN_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            run = json.load(file)
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path!r} is not a valid {RUN_FILE} ({error})") from error
    if not isinstance(run, dict):
        raise ValueError(f"{path!r} is not a valid {RUN_FILE} (not a JSON object)")
    return run


def build_model(name: str, info=None, model_kwargs=None):
    """Build the registered model ``name`` for data described by ``info``.

    The model takes raw pixel values in [0, 255] and standardises them itself: its first
    layer, ``normalize``, subtracts the training split's per-channel mean and divides by its
    standard deviation (``info.mean`` and ``info.std``, given in [0, 1] units, scaled here by
    255). A saved model therefore needs no preprocessing at all, like the models of
    `kcnn.transfer` (whose backbone's ``preprocess_input`` is inside them): every model kcnn
    trains and saves takes the image as decoded. Build it under the dtype policy wanted (see
    `kcnn.training.precision_policy`).

    Args:
        name: a registry name (``kcnn.list_models()``).
        info: the `kcnn.data.DatasetInfo` of the training data; gives the input shape, the
            number of classes and the statistics (None: the builder's defaults, no
            ``normalize`` layer).
        model_kwargs: more builder arguments (``input_shape`` and ``classes`` override
            ``info``'s).
    """
    import kcnn

    kwargs = dict(model_kwargs or {})
    if info is None:
        return kcnn.create_model(name, **kwargs)
    kcnn.model_info(name)
    shape = tuple(kwargs.pop("input_shape", info.image_shape))
    kwargs.setdefault("classes", info.num_classes)
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if info.mean is not None and info.std is not None:
        x = keras.layers.Normalization(
            mean=[255.0 * m for m in info.mean],
            variance=[(255.0 * s) ** 2 for s in info.std],
            name="normalize",
            dtype="float32",
        )(x)
    return kcnn.create_model(name, input_tensor=x, **kwargs)


def _examples_per_epoch(dataset, info) -> int | None:
    if info is not None:
        return info.num_examples
    batches = int(dataset.cardinality())
    batch = dataset.element_spec[0].shape[0]
    if batches < 0 or batch is None:
        return None
    return batches * batch


def _steps_per_epoch(examples, batch_size, dataset) -> int | None:
    if examples is not None and batch_size:
        return math.ceil(examples / batch_size)
    batches = int(dataset.cardinality())
    return batches if batches > 0 else None


def train(
    model,
    data,
    epochs: int = 10,
    *,
    batch_size: int = 128,
    validation_data=None,
    test_data=None,
    validation_split: float = 0.1,
    test: bool = True,
    test_time_flip: bool = False,
    augment=None,
    erasing: float | None = None,
    image_size=None,
    data_dir=None,
    mixup: float | None = None,
    cutmix: float | None = None,
    model_kwargs: dict | None = None,
    optimizer="adam",
    learning_rate: float | None = None,
    schedule: str = "constant",
    warmup_epochs: float | None = None,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    label_smoothing: float = 0.0,
    early_stopping: int | None = None,
    precision: str = "auto",
    jit_compile="auto",
    strategy="auto",
    seed: int | None = 0,
    deterministic: bool = False,
    out=None,
    resume: bool = False,
    overwrite: bool = False,
    tensorboard: bool = True,
    callbacks=(),
    verbose="auto",
) -> TrainResult:
    """Train a classifier with kcnn's defaults and return a `TrainResult`.

    The steps, each usable alone: seed (`configure_determinism`), pick the strategy
    (`make_strategy`), make the input pipelines (`kcnn.data.make_dataset`), build the model
    under the precision policy (`precision_policy`, `build_model`), decide on XLA
    (`choose_jit_compile`), compile (`compile_model`), fit with the run's callbacks
    (`run_callbacks`), evaluate on the test split (`flip_averaged` with ``test_time_flip``), and
    write ``run.json``.

    Args:
        model: a registry name (built for the data, with a ``normalize`` input layer, see
            `build_model`), a callable returning a new model (called under the precision policy
            and the strategy's scope), or a built ``keras.Model`` (built under the strategy's
            scope when it is not the default; its own dtype policy is kept). Models get the
            raw pixel values, in [0, 255].
        data: what `kcnn.data.make_dataset` takes (``"fashion_mnist"``, a folder, uint8
            arrays...), or a batched ``tf.data.Dataset`` of ``(images, labels)`` (then pass
            ``validation_data``/``test_data`` yourself).
        epochs: the number of epochs of the whole run (a resumed run stops there too).
        batch_size: the global batch size (split across replicas).
        validation_data, test_data: batched datasets, with ``tf.data`` ``data`` only.
        validation_split: share of the training split held out for validation (0: none).
        test: evaluate on the source's test split at the end.
        test_time_flip: evaluate the test split with each image's prediction combined with its
            mirror image's (`flip_averaged`): for data whose classes a left-right flip keeps.
        augment, erasing, image_size, data_dir, mixup, cutmix: passed to
            `kcnn.data.make_dataset` (``erasing``: the probability of RandomErasing, added to
            ``augment``'s layers or overriding its own); with ``tf.data`` ``data`` they are
            refused, and ``image_size`` must be its images' size.
        model_kwargs: builder arguments for a registry name (e.g. ``{"stem": "cifar"}``).
        optimizer, learning_rate, schedule, weight_decay, l1, l2, label_smoothing: see
            `compile_model`; ``schedule="plateau"`` adds ReduceLROnPlateau.
        warmup_epochs: warm-up of the cosine schedules, in epochs (default: theirs).
        early_stopping: patience in epochs on the validation loss, restoring the best weights.
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``
            (see `resolve_precision`).
        jit_compile: ``"auto"`` (XLA on GPU only), True or False; falls back to False when XLA
            cannot compile the model.
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``, ``"multiworker"`` or a
            ``tf.distribute.Strategy`` (see `make_strategy`).
        seed: seeds the weights, dropout and the data (shuffling, augmentation, mixing, the
            validation hold-out). None leaves the weights and dropout unseeded, while the data
            keeps seed 0: a resumed run must hold out the same validation images.
        deterministic: also enable TensorFlow's op determinism (same seed, same weights).
        out: the run directory (checkpoints, logs, ``run.json``; see `run_callbacks`), or None
            to write nothing.
        resume: continue the run in ``out`` from its last completed epoch, if it has one.
        overwrite: delete the run already in ``out`` first.
        tensorboard: write TensorBoard logs in ``out/logs``.
        callbacks: more Keras callbacks.
        verbose: ``fit``'s verbosity (``"auto"``: a progress bar on a terminal, one line per
            epoch elsewhere; see `fit_verbosity`).

    Returns:
        a `TrainResult`.

    Raises:
        ValueError: for a bad argument, an unknown model or dataset, a run directory that
            holds another run (without ``resume``), and what kcnn.data raises.
        FileNotFoundError: when a named dataset is neither on disk nor downloadable.
        kcnn.training.TrainingDiverged: when the loss becomes NaN or infinite; the last good
            checkpoint is kept.
        OSError: when a checkpoint cannot be written (the previous one is kept).

    Example:
        >>> result = train("simple_cnn", "fashion_mnist", epochs=10, out="saved_models/run1")
        >>> result.test_accuracy, result.images_per_second
    """
    settings = run_settings(locals())  # first: locals() are the arguments only
    start = time.perf_counter()
    epochs = checks.positive_int("epochs", epochs)
    batch_size = checks.positive_int("batch_size", batch_size)
    distribution = make_strategy(strategy)
    configure_determinism(seed, deterministic)
    if isinstance(model, keras.Model) and model.distribute_strategy is not distribution:
        raise ValueError(
            "the model given was not built under the strategy's scope: pass a registry name or "
            "a function that builds the model, or build it inside strategy.scope()"
        )
    chief, worker = worker_role(distribution)
    run = RunDirectory(
        out, resume=resume, overwrite=overwrite, settings=settings, worker=None if chief else worker
    )
    run_dir = run.path
    with run:  # locked: no other process trains in run_dir meanwhile
        one_hot = bool(label_smoothing or mixup or cutmix)
        train_data, validation, test_split, info = training_datasets(
            data,
            batch_size,
            validation_data=validation_data,
            test_data=test_data,
            validation_split=validation_split,
            test=test,
            image_size=image_size,
            augment=augment,
            erasing=erasing,
            data_dir=data_dir,
            seed=0 if seed is None else seed,
            label_mode="categorical" if one_hot else "int",
            mixup=mixup,
            cutmix=cutmix,
        )
        examples = _examples_per_epoch(train_data, info)
        steps = _steps_per_epoch(examples, batch_size, train_data)
        total_steps = steps * epochs if steps else None
        warmup_steps = (
            None if warmup_epochs is None or not steps else int(round(warmup_epochs * steps))
        )

        with distribution.scope():
            net = _make_model(model, info, model_kwargs, precision)
            jit = choose_jit_compile(net, train_data, jit_compile)
            compile_model(
                net,
                optimizer,
                learning_rate,
                "constant" if schedule == "plateau" else schedule,
                total_steps,
                warmup_steps,
                weight_decay,
                l1,
                l2,
                label_smoothing,
                one_hot=one_hot,
                jit_compile=jit,
            )
            restored = run.start(net, steps)
        if resume and verbose != 0:
            print(f"kcnn: {run_dir}: {restored.message}", flush=True)
        fit_callbacks, clock = run_callbacks(
            run.callbacks_dir,
            validation=validation is not None,
            early_stopping=early_stopping,
            plateau=schedule == "plateau",
            tensorboard=tensorboard,
            steps_per_epoch=steps,
            restored=restored,
        )
        fit_callbacks = fit_callbacks + list(callbacks)
        trains = not restored.finished and restored.epoch < epochs
        with multi_worker_fit(net, distribution):
            fitted = None
            if trains:
                fitted = net.fit(
                    train_data,
                    epochs=epochs,
                    initial_epoch=restored.epoch,
                    validation_data=validation,
                    callbacks=fit_callbacks,
                    verbose=fit_verbosity(verbose),
                    shuffle=False,
                )
            test_metrics = single_view = None
            if test_split is not None:
                test_metrics = _evaluated(net, test_split)
            if test_split is not None and test_time_flip:
                single_view = test_metrics
                with distribution.scope():
                    flipped = flip_averaged(net)
                    loss = classification_loss(flipped, label_smoothing, one_hot)
                    flipped.compile(loss=loss, metrics=["accuracy"], jit_compile=jit)
                test_metrics = _evaluated(flipped, test_split)
        completed = fitted.epoch[-1] + 1 if fitted and fitted.epoch else restored.epoch
        history = (
            {key: [float(v) for v in values] for key, values in fitted.history.items()}
            if fitted
            else {}
        )
        rows = read_history(os.path.join(run.callbacks_dir, HISTORY)) if run_dir is not None else []
        if rows:
            keys = [key for key in rows[-1] if key != "epoch"]
            history = {key: [row.get(key, math.nan) for row in rows] for key in keys}
        stopped = (
            restored.stopped_early
            if not trains
            else any(
                isinstance(c, keras.callbacks.EarlyStopping) and c.stopped_epoch > 0
                for c in fit_callbacks
            )
        )
        ran = clock.epochs
        result = TrainResult(
            model=net,
            history=history,
            test_metrics=test_metrics,
            seconds=time.perf_counter() - start,
            train_seconds=clock.total,
            images_per_second=(examples * ran / clock.total) if examples and clock.total else None,
            epochs=completed,
            initial_epoch=restored.epoch,
            precision=net.dtype_policy.name,
            jit_compile=jit,
            strategy=strategy_name(distribution),
            replicas=distribution.num_replicas_in_sync,
            run_dir=run_dir,
            info=info,
            stopped_early=stopped,
            resumed_from=restored.source if resume else None,
            sparsity=kernel_sparsity(net),
            single_view_test_metrics=single_view,
        )
        if run_dir is not None:
            best, last = os.path.join(run_dir, BEST), os.path.join(run_dir, LAST)
            result.model_path = best if validation is not None and os.path.exists(best) else last
            run.finish(result.to_dict())
        return result


def _evaluated(model, dataset) -> dict:
    """``model.evaluate``'s metrics on ``dataset``, as floats."""
    metrics = model.evaluate(dataset, verbose=0, return_dict=True)
    return {name: float(value) for name, value in metrics.items()}


def _make_model(model, info, model_kwargs, precision):
    if isinstance(model, keras.Model):
        if model_kwargs:
            raise ValueError("model_kwargs apply to registry names, not to a built model")
        own = model.dtype_policy.name
        if precision not in ("auto", own):
            raise ValueError(
                f"precision={precision!r} but the model given was built with {own!r}: build it "
                "under kcnn.training.precision_policy(...) or pass its name"
            )
        return model
    with precision_policy(precision):
        if isinstance(model, str):
            return build_model(model, info, model_kwargs)
        if callable(model):
            if model_kwargs:
                raise ValueError("model_kwargs apply to registry names, not to a model function")
            built = model()
            if not isinstance(built, keras.Model):
                raise ValueError(
                    f"the model function returned {type(built).__name__}, not a keras.Model"
                )
            return built
    raise ValueError(
        f"model must be a registry name, a function returning a keras.Model or a keras.Model, "
        f"got {type(model).__name__}"
    )
