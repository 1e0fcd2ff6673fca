"""Datasets and tf.data input pipelines with augmentation, offline first.

- `load`: one split of a named dataset (Fashion-MNIST, MNIST, CIFAR-10/100, found on disk
  before anything is downloaded), a tensorflow-datasets dataset, a folder of images or NumPy
  arrays, as an unbatched ``tf.data.Dataset`` of ``(uint8 image, int64 label)`` and a
  `DatasetInfo`.
- `make_dataset`: the batched, normalised, augmented, cached and prefetched pipeline.
- `augmentation_layers`: the augmentation presets as Keras layers, for a pipeline or a model;
  `RandomResizedCrop`, the layer Keras lacks.

The names are imported on first use, so ``import kcnn.data.augment`` (which models may need, to
deserialise a `RandomResizedCrop`) does not import TensorFlow.

Example:
    >>> import kcnn
    >>> train, info = kcnn.data.make_dataset("fashion_mnist", 128, augment="light")
    >>> val, _ = kcnn.data.make_dataset("fashion_mnist", 128, split="validation")
"""

import importlib

_EXPORTS = {
    "DatasetInfo": "kcnn.data.info",
    "PRESETS": "kcnn.data.augment_presets",
    "RandomResizedCrop": "kcnn.data.augment",
    "SkippedImageWarning": "kcnn.data.folders",
    "SkippedLinkWarning": "kcnn.data.folders",
    "augmentation_layers": "kcnn.data.augment",
    "backbone_preprocess": "kcnn.data.normalize",
    "label_mixing": "kcnn.data.augment",
    "load": "kcnn.data.sources",
    "make_dataset": "kcnn.data.pipeline",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kcnn.data' has no attribute {name!r}")


def __dir__():
    return __all__
