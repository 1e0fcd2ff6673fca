"""A three-class tensorflow-datasets builder of random 16x16 images, prepared offline by the
tests (tfds finds a builder's code by its module, so it lives in a module of its own)."""

import numpy as np
import tensorflow_datasets as tfds


class KcnnTinyImages(tfds.core.GeneratorBasedBuilder):
    """60 training and 15 test images, labels cycling a, b, c; no validation split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(16, 16, 3)),
                    "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 60), "test": self._generate_examples(1, 15)}

    def _generate_examples(self, seed, count):
        for index, (image, label) in enumerate(zip(*images(seed, count))):
            yield index, {"image": image, "label": int(label)}


def images(seed, count):
    """The images and labels of a split, as the builder writes them."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8), np.arange(count) % 3
