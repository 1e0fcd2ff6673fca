"""`train`: a transfer model trained phase by phase with `kcnn.training.train`.

Between phases the trainable layers change (`kcnn.transfer.freezing`) and the model is
recompiled with the phase's learning rate; the histories are joined into one `TransferResult`.
Each phase that ends saves the weights it hands to the next, so a killed run resumes phase by
phase.
"""

from __future__ import annotations

import os
import time

from kcnn.transfer.freezing import (
    batchnorm_trains,
    check_unfreeze,
    set_trainable,
    trainable_parameters,
)
from kcnn.transfer.parts import backbone_of
from kcnn.transfer.result import TransferResult
from kcnn.transfer.schedules import phases_of


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
    resume: bool = False,
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
            ``out/phase<i>`` (see `kcnn.training.train`), and once it has ended the weights it
            hands to the next phase (``final.weights.h5``); None writes nothing.
        resume: continue the run killed in ``out``, with the same model, data and schedule:
            the phases that had ended are not trained again (their final weights are loaded,
            their results read from their ``run.json``), the phase that was running continues
            at its last completed epoch (see `kcnn.training.train`), the others run.
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
            larger than the backbone's number of blocks, ``resume`` without ``out`` or with
            ``overwrite``, a phase that ended without its final weights (`ended_phase`), and
            what `kcnn.training.train` raises.

    Example:
        >>> model = build("MobileNetV2", 5, "progressive", input_shape=(160, 160, 3))
        >>> result = train(model, "tfds:tf_flowers", "progressive", epochs=10)
        >>> result.test_accuracy
    """
    from kcnn.data.sources import training_datasets
    from kcnn.files import save_weights
    from kcnn.training import train as fit
    from kcnn.training.rundir import FINAL_WEIGHTS, locked

    start = time.perf_counter()
    if resume and out is None:
        raise ValueError("resume needs the run's folder (out=)")
    if resume and training_options.get("overwrite"):
        raise ValueError("resume and overwrite exclude each other")
    phases = phases_of(schedule, epochs)
    backbone = backbone_of(model)
    for phase in phases:
        check_unfreeze(backbone, phase.unfreeze)
    if train_batchnorm is None:
        train_batchnorm = batchnorm_trains(model)
    height, width, channels = model.inputs[0].shape[1:]
    train_data, validation, test_data, _ = training_datasets(
        data,
        batch_size,
        validation_data=validation_data,
        test_data=test_data,
        validation_split=validation_split,
        test=test,
        image_size=(height, width),
        channels=channels,
        augment=augment,
        data_dir=data_dir,
        seed=0 if seed is None else seed,
    )
    history: dict = {}
    counts, results = [], []
    with locked(out):  # one process at a time in out, across the phases
        for index, phase in enumerate(phases):
            set_trainable(model, phase.unfreeze, train_batchnorm)
            counts.append(trainable_parameters(model))
            last = index == len(phases) - 1
            phase_out = None if out is None else os.path.join(os.fspath(out), f"phase{index + 1}")
            state = phase_state(phase_out) if resume else "new"
            if state == "ended":
                result = ended_phase(model, phase_out)
            else:
                result = fit(
                    model,
                    train_data,
                    phase.epochs,
                    validation_data=validation,
                    test_data=test_data if last else None,
                    learning_rate=phase.learning_rate,
                    seed=seed,
                    out=phase_out,
                    resume=state == "started",
                    **training_options,
                )
                if phase_out is not None:
                    save_weights(model, os.path.join(phase_out, FINAL_WEIGHTS))
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


def phase_state(phase_out) -> str:
    """Where the phase run in ``phase_out`` stands: ``"ended"`` (its ``run.json`` is written),
    ``"started"`` (a run is there to resume) or ``"new"`` (nothing there, or no folder)."""
    from kcnn.training import read_run
    from kcnn.training.rundir import resumable

    if phase_out is None or not os.path.isdir(phase_out):
        return "new"
    if read_run(phase_out) is not None:
        return "ended"
    if resumable(phase_out):
        return "started"
    return "new"


def ended_phase(model, phase_out):
    """Load into ``model`` the final weights of the phase that ended in ``phase_out``, and
    return that phase's `kcnn.training.TrainResult`, read from its ``run.json``.

    Raises:
        ValueError: naming the folder, when the phase ended without its final weights saved
            (killed in the instant between the two): it must be trained again.
    """
    from kcnn.training import TrainResult, read_run
    from kcnn.training.rundir import FINAL_WEIGHTS

    weights = os.path.join(phase_out, FINAL_WEIGHTS)
    if not os.path.exists(weights):
        raise ValueError(
            f"the phase in {phase_out!r} ended but its final weights ({FINAL_WEIGHTS}) were not "
            "saved, so the next phase cannot start from them: start the run again with "
            "overwrite=True (--overwrite)"
        )
    model.load_weights(weights)
    return TrainResult.from_run(model, read_run(phase_out))
