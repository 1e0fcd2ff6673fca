"""make_dataset: batches, determinism, augmentation only in training, normalisation, channels,
resizing, labels, sources."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcnn.data import augmentation_layers, label_mixing, load, make_dataset
from tests.data.conftest import FASHION_MNIST_DIR


def rgb_arrays(count=48, size=12, classes=4, seed=0):
    """RGB images whose channels have different means and spreads."""
    rng = np.random.default_rng(seed)
    images = np.stack(
        [
            rng.integers(0, 100, (count, size, size)),
            rng.integers(50, 250, (count, size, size)),
            rng.integers(0, 256, (count, size, size)),
        ],
        axis=-1,
    ).astype(np.uint8)
    return images, np.arange(count) % classes


def gray_arrays(count=48, size=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, size, size), dtype=np.uint8), np.arange(count) % classes


def epoch(dataset):
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def test_batches_shapes_and_dtypes():
    dataset, info = make_dataset(rgb_arrays(), 8, validation_split=0.25)
    images, labels = next(iter(dataset))
    assert images.shape == (8, 12, 12, 3) and images.dtype == tf.float32
    assert labels.shape == (8,) and labels.dtype == tf.int64
    assert info.image_shape == (12, 12, 3) and info.num_examples == 36
    assert sum(1 for _ in dataset) == 5  # 36 examples: four batches of 8 and one of 4
    dropped, _ = make_dataset(rgb_arrays(), 8, validation_split=0.25, drop_remainder=True)
    assert sum(1 for _ in dropped) == 4


def test_same_seed_same_batches_epoch_after_epoch():
    def build(seed):
        return make_dataset(
            rgb_arrays(), 8, augment="standard", mixup=0.2, label_mode="categorical", seed=seed
        )[0]

    first, again, other = build(1), build(1), build(2)
    epoch1 = epoch(first)
    for a, b in zip(epoch1, epoch(again)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(epoch1[0], epoch(other)[0])
    epoch2 = epoch(first)  # reshuffled and re-augmented
    assert not np.allclose(epoch1[0], epoch2[0])
    np.testing.assert_array_equal(epoch(again)[0], epoch2[0])


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_every_split_runs_without_tf_data_autotuning(split):
    """Its thread made each new epoch's iterator wait seconds for the old one to be deleted."""
    images, labels = rgb_arrays()
    source = ((images, labels), (images[:8], labels[:8]))
    dataset, _ = make_dataset(source, 8, split, validation_split=0.25)
    assert dataset.options().autotune.enabled is False
    assert len(list(dataset)) >= 1


@pytest.mark.parametrize("split", ["validation", "test"])
def test_augmentation_and_shuffle_only_in_training(split):
    source = (rgb_arrays(), rgb_arrays(16, seed=1))
    plain, _ = make_dataset(source, 8, split=split, augment=None)
    augmented, _ = make_dataset(
        source,
        8,
        split=split,
        augment="strong",
        erasing=1.0,
        mixup=0.4,
        cutmix=1.0,
        label_mode="categorical",
    )
    plain_x, plain_y = epoch(plain)
    augmented_x, augmented_y = epoch(augmented)
    np.testing.assert_array_equal(plain_x, augmented_x)
    np.testing.assert_array_equal(np.eye(4)[plain_y], augmented_y)
    loaded, _ = load(source, split=split)
    np.testing.assert_array_equal(plain_y, [label for _, label in loaded.as_numpy_iterator()])
    train, _ = make_dataset(source, 8, split="train", augment="strong")
    train_plain, _ = make_dataset(source, 8, split="train", augment=None, seed=0)
    assert not np.allclose(epoch(train)[0], epoch(train_plain)[0])


def test_standardize_uses_the_training_statistics():
    source = rgb_arrays()
    train, info = make_dataset(source, 16, shuffle=False)
    images, _ = epoch(train)
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    val, _ = make_dataset(source, 16, split="validation")
    raw = np.stack([x for x, _ in load(source, split="validation")[0].as_numpy_iterator()])
    expected = (raw / 255.0 - np.array(info.mean)) / np.array(info.std)
    np.testing.assert_allclose(epoch(val)[0], expected, rtol=1e-5, atol=1e-5)


def test_other_normalisations():
    source = rgb_arrays()
    raw = np.stack([x for x, _ in load(source, split="validation")[0].as_numpy_iterator()])
    raw = raw.astype(np.float32)

    def normalised(normalize):
        return epoch(make_dataset(source, 16, split="validation", normalize=normalize)[0])[0]

    np.testing.assert_allclose(normalised("unit"), raw / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(normalised(None), raw)
    np.testing.assert_allclose(
        normalised(((0.5,), (0.25,))), (raw / 255.0 - 0.5) / 0.25, rtol=1e-5, atol=1e-5
    )
    expected = keras.applications.resnet50.preprocess_input(raw.copy())
    np.testing.assert_allclose(normalised("ResNet50"), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(normalised("mobilenet_v2"), raw / 127.5 - 1.0, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="Did you mean"):
        normalised("resnet_50v3")


def test_channel_conversion_and_resizing():
    gray = gray_arrays()
    as_rgb, info = make_dataset(gray, 16, split="validation", channels=3, normalize=None)
    images, _ = epoch(as_rgb)
    assert images.shape[-1] == 3 and len(info.mean) == 3 and info.mean[0] == info.mean[2]
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    rgb = rgb_arrays()
    as_gray, gray_info = make_dataset(rgb, 16, split="validation", channels=1, normalize=None)
    raw = np.stack([x for x, _ in load(rgb, split="validation")[0].as_numpy_iterator()])
    np.testing.assert_array_equal(epoch(as_gray)[0], tf.image.rgb_to_grayscale(raw).numpy())
    assert len(gray_info.mean) == 1
    bigger, big_info = make_dataset(rgb, 16, split="validation", image_size=20, normalize=None)
    resized = tf.image.resize(raw, (20, 20), antialias=True).numpy().round().clip(0, 255)
    np.testing.assert_array_equal(epoch(bigger)[0], resized)
    assert big_info.image_shape == (20, 20, 3)


def test_labels_modes_and_mixing():
    with pytest.raises(ValueError, match="label_mode='categorical'"):
        make_dataset(rgb_arrays(), 8, mixup=0.2)
    dataset, _ = make_dataset(rgb_arrays(), 8, cutmix=1.0, label_mode="categorical")
    _, labels = epoch(dataset)
    assert labels.shape == (44, 4)
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)


def test_loaded_pair_as_source_and_file_cache(tmp_path):
    pair = load(rgb_arrays(), split="validation")
    dataset, info = make_dataset(pair, 3, cache=str(tmp_path / "cache"))
    assert info.split == "validation" and info.num_examples == 4  # one of each class's 12
    assert sum(1 for _ in dataset) == 2
    assert any(name.startswith("cache") for name in os.listdir(tmp_path))
    with pytest.raises(ValueError, match="split='test'"):
        make_dataset(pair, 4, split="test")


def test_each_split_and_seed_has_its_own_file_cache(tmp_path):
    # tf.data reads an existing cache file as it is: with one file for every split, the test
    # split would be the cached training images.
    (x, y), test = rgb_arrays(), (np.full((6, 12, 12, 3), 200, "uint8"), np.arange(6) % 4)
    x = np.full_like(x, 7)
    source, path = ((x, y), test), str(tmp_path / "cache")
    for split, pixel, count in (("train", 7, 44), ("validation", 7, 4), ("test", 200, 6)):
        dataset, info = make_dataset(source, 8, split, normalize=None, cache=path)
        images, _ = epoch(dataset)
        assert info.num_examples == len(images) == count
        assert np.all(images == pixel), split
    again, _ = make_dataset(source, 8, "test", normalize=None, cache=path)
    assert np.all(epoch(again)[0] == 200)  # read back from its own file
    reseeded, info = make_dataset(source, 8, "validation", normalize=None, cache=path, seed=1)
    assert len(epoch(reseeded)[0]) == info.num_examples
    names = {name.split(".")[0] for name in os.listdir(tmp_path)}
    assert len(names) == 4 and all(name.startswith("cache-") for name in names)


def test_mixed_precision_policy_does_not_reach_the_pipeline():
    keras.config.set_dtype_policy("mixed_bfloat16")
    dataset, _ = make_dataset(rgb_arrays(), 8, augment="strong")
    images, _ = next(iter(dataset))
    assert images.dtype == tf.float32


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 4, "label_mode": "onehot"}, "label_mode"),
        ({"batch_size": 4, "channels": 2}, "channels"),
        ({"batch_size": 4, "image_size": (8, 0)}, "image_size"),
        ({"batch_size": 4, "augment": "extreme"}, "augment"),
        ({"batch_size": 4, "normalize": (1, 2, 3)}, "normalize"),
    ],
)
def test_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(rgb_arrays(), **arguments)


@pytest.mark.parametrize("shape", [(4, 0, 8), (4, 8, 0, 3), (4, 0, 0, 1)])
def test_images_zero_pixels_high_or_wide_are_refused(shape):
    labels = np.arange(4) % 2
    with pytest.raises(
        ValueError, match=rf"training images .*\({shape[0]}, {shape[1]}, {shape[2]}"
    ):
        make_dataset((np.zeros(shape, np.uint8), labels), 2, validation_split=0.0)
    test = ((np.zeros((4, 8, 8), np.uint8), labels), (np.zeros(shape, np.uint8), labels))
    with pytest.raises(ValueError, match="test images .*at least 1 pixel"):
        make_dataset(test, 2, split="test")


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="Debian's Fashion-MNIST absent")
def test_fashion_mnist_pipeline_is_standardised():
    dataset, _ = make_dataset("fashion_mnist", 1000, shuffle=False)
    images, labels = epoch(dataset)
    assert images.shape == (54000, 28, 28, 1) and np.bincount(labels).tolist() == [5400] * 10
    assert abs(images.mean()) < 1e-3 and abs(images.std() - 1.0) < 1e-3


def test_label_mixing_is_seeded_apart_from_every_augmentation_layer(monkeypatch):
    """Keras random layers with one seed draw the same numbers: MixUp and CutMix must not share
    a seed with a crop, a flip or a colour jitter of the same pipeline."""
    import kcnn.data.pipeline as pipeline

    seen = {}

    def layers_spy(*args, **kwargs):
        layers = augmentation_layers(*args, **kwargs)
        seen["augment"] = [layer.seed for layer in layers]
        return layers

    def mixing_spy(mixup, cutmix, seed, **kwargs):
        seen["mixing"] = [seed, seed + 1, seed + 2]  # MixUp, CutMix, the choice between them
        return label_mixing(mixup, cutmix, seed, **kwargs)

    monkeypatch.setattr(pipeline, "augmentation_layers", layers_spy)
    monkeypatch.setattr(pipeline, "label_mixing", mixing_spy)
    images = np.zeros((8, 16, 16, 3), "uint8")
    labels = np.arange(8) % 2
    pipeline.make_dataset(
        (images, labels),
        4,
        "train",
        augment="strong",
        mixup=0.2,
        cutmix=1.0,
        label_mode="categorical",
        validation_split=0.0,
        seed=3,
    )
    assert len(seen["augment"]) >= 3
    assert len(set(seen["augment"])) == len(seen["augment"])
    assert not set(seen["augment"]) & set(seen["mixing"])
