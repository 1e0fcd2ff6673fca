"""TransferResult: what `kcnn.transfer.train` did, phase by phase."""

from __future__ import annotations

import dataclasses

import keras


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
            lines.append(
                f"validation   accuracy {self.history['val_accuracy'][-1]:.4f} after the last epoch"
            )
        if self.test_accuracy is not None:
            lines.append(
                f"test         accuracy {self.test_accuracy:.4f}, loss "
                f"{self.test_metrics['loss']:.4f}"
            )
        lines.append(
            f"time         {self.seconds:.1f} s in all, {self.train_seconds:.1f} s training"
        )
        return "\n".join(lines)
