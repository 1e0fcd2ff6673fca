"""Transfer learning: a pretrained backbone, a new head, and the course's three strategies.

The course (chapter 07, section 7.2) trains a new classifier on a network pretrained on another
task by feature extraction (``"frozen"``), fine-tuning (``"finetune"``) or progressive
fine-tuning (``"progressive"``). The package, one job per module:

- `kcnn.transfer.backbones`: `build` (raw 0-255 pixels, the backbone's own preprocessing, a
  Keras Applications or kcnn backbone nested as one layer, kcnn's float32 head) and
  `save_backbone_weights`.
- `kcnn.transfer.parts`: the parts of a transfer model (`backbone_of`, `blocks`,
  `feature_layers`).
- `kcnn.transfer.freezing`: `set_trainable`, which keeps a pretrained backbone's
  BatchNormalization layers in inference mode (why: that module's docstring).
- `kcnn.transfer.schedules`: `schedule` and `Phase`, the strategies as phases with the course's
  learning rates.
- `kcnn.transfer.loop`: `train`, the phases run with `kcnn.training.train`; `kcnn.transfer.result`:
  `TransferResult`.

Importing this package needs only Keras (no TensorFlow), so the models build on every backend;
`train` uses `kcnn.training` and TensorFlow.

Example:
    >>> import kcnn
    >>> model = kcnn.transfer.build("MobileNetV2", classes=5, strategy="progressive",
    ...                             input_shape=(160, 160, 3))
    >>> result = kcnn.transfer.train(model, train_data, "progressive", epochs=10,
    ...                              validation_data=val_data)
"""

from kcnn.transfer.backbones import build, save_backbone_weights
from kcnn.transfer.freezing import batchnorm_trains, set_trainable, trainable_parameters
from kcnn.transfer.loop import train
from kcnn.transfer.parts import backbone_of, blocks, feature_layers
from kcnn.transfer.result import TransferResult
from kcnn.transfer.schedules import (
    FINETUNE_LEARNING_RATE,
    HEAD_LEARNING_RATE,
    PROGRESSIVE_LEARNING_RATE,
    STRATEGIES,
    Phase,
    schedule,
)

__all__ = [
    "FINETUNE_LEARNING_RATE",
    "HEAD_LEARNING_RATE",
    "PROGRESSIVE_LEARNING_RATE",
    "STRATEGIES",
    "Phase",
    "TransferResult",
    "backbone_of",
    "batchnorm_trains",
    "blocks",
    "build",
    "feature_layers",
    "save_backbone_weights",
    "schedule",
    "set_trainable",
    "train",
    "trainable_parameters",
]
