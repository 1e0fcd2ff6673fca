"""SearchData: the training and validation data of a search, one training pipeline per
augmentation preset the trials ask for.
"""

from __future__ import annotations

from kcnn import checks
from kcnn.data.augment_presets import PRESETS
from kcnn.errors import UserError

# The augmentation presets `CNNHyperModel`'s ``augment`` chooses among: a subset of
# `kcnn.data.PRESETS`, any of which `SearchData` takes.
AUGMENT_PRESETS = ("none", "light", "standard", "strong")


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

    def __init__(
        self,
        train,
        validation=None,
        *,
        batch_size=128,
        image_size=None,
        augment=None,
        validation_split=0.1,
        data_dir=None,
        seed=0,
    ):
        import tensorflow as tf

        batch_size = checks.positive_int("batch_size", batch_size)
        self.ready = isinstance(train, tf.data.Dataset)
        if self.ready and not isinstance(validation, tf.data.Dataset):
            raise UserError(
                "validation must be a batched tf.data.Dataset when train is one, got "
                f"{type(validation).__name__}"
            )
        if augment not in (None, *PRESETS):
            raise UserError(f"augment must be None or one of {tuple(PRESETS)}, got {augment!r}")
        self.train = train
        self.validation = validation
        self.batch_size = batch_size
        self.augment = augment
        self.options = dict(
            image_size=image_size,
            normalize=None,
            seed=seed,
            data_dir=data_dir,
            validation_split=validation_split,
        )
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
                raise UserError(
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


def search_data(data) -> SearchData:
    """``data`` as a `SearchData`: one already, a ``(train, validation)`` pair of batched
    ``tf.data.Dataset`` objects, or a data source."""
    import tensorflow as tf

    if isinstance(data, SearchData):
        return data
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(part, tf.data.Dataset) for part in data)
    ):
        return SearchData(*data)
    return SearchData(data)
