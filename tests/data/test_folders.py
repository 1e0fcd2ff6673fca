"""Folders of images: layouts, decoding of awkward files, skipping broken ones with one warning
each, folder errors, statistics."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from kcnn.data import SkippedImageWarning, SkippedLinkWarning, load, make_dataset
from tests.data.conftest import add_broken_files, save_image, write_png_bomb


def images_by_path(dataset, paths_in_order):
    return dict(zip(paths_in_order, (image for image, _ in dataset.as_numpy_iterator())))


def test_folder_loads_classes_labels_and_exact_pixels(image_folder):
    root, pixels = image_folder
    dataset, info = load(root, validation_split=0.0)
    assert info.class_names == ("circle", "square", "triangle")
    assert (info.num_examples, info.image_shape, info.source) == (18, (20, 24, 3), str(root))
    assert info.name == "shapes" and info.skipped == ()
    expected = sorted(pixels)  # class folders, then files, in sorted order
    for path, (image, label) in zip(expected, dataset.as_numpy_iterator()):
        np.testing.assert_array_equal(image, pixels[path])
        assert info.class_names[label] == os.path.basename(os.path.dirname(path))


def test_validation_is_a_stratified_seeded_hold_out(image_folder):
    root, _ = image_folder
    _, train_info = load(root, validation_split=0.5, seed=3)
    val, val_info = load(root, split="validation", validation_split=0.5, seed=3)
    assert (train_info.num_examples, val_info.num_examples) == (9, 9)
    assert sorted(int(label) for _, label in val.as_numpy_iterator()) == [0] * 3 + [1] * 3 + [2] * 3
    again, _ = load(root, split="validation", validation_split=0.5, seed=3)
    other, _ = load(root, split="validation", validation_split=0.5, seed=4)
    first = [image.tobytes() for image, _ in val.as_numpy_iterator()]
    assert first == [image.tobytes() for image, _ in again.as_numpy_iterator()]
    assert first != [image.tobytes() for image, _ in other.as_numpy_iterator()]


def test_a_validation_split_that_holds_out_nothing_is_refused(image_folder):
    root, _ = image_folder  # 6 images per class: round(6 * 0.05) = 0
    with pytest.raises(ValueError, match=r"validation_split=0.05 holds out no image of the 18"):
        load(root, split="validation", validation_split=0.05)
    _, info = load(root, validation_split=0.05)
    assert info.num_examples == 18


def test_statistics_are_those_of_the_training_split(image_folder):
    root, _ = image_folder
    train, info = load(root, validation_split=0.5, seed=1)
    images = np.stack([image for image, _ in train.as_numpy_iterator()]).astype(np.float64)
    np.testing.assert_allclose(info.mean, images.mean(axis=(0, 1, 2)) / 255, rtol=1e-9)
    np.testing.assert_allclose(info.std, images.std(axis=(0, 1, 2)) / 255, rtol=1e-9)


def test_broken_files_are_skipped_with_one_warning_each(image_folder):
    root, pixels = image_folder
    broken = add_broken_files(root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset, info = load(root, validation_split=0.0)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedImageWarning)]
    assert sorted(info.skipped) == sorted(broken)
    assert len(messages) == len(broken)
    for path in broken:
        assert sum(path in message for message in messages) == 1
    assert any("empty" in message for message in messages if "empty.jpg" in message)
    assert info.num_examples == len(pixels)
    assert len(list(dataset)) == len(pixels)  # training goes on over the good files
    with warnings.catch_warnings(record=True) as caught:  # the split's other loads: no repeat
        warnings.simplefilter("always")
        load(root, split="validation", validation_split=0.5)
    assert not [w for w in caught if issubclass(w.category, SkippedImageWarning)]


def test_awkward_files_are_decoded_correctly(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "awkward"
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    save_image(str(root / "a" / "lying.jpg"), rgb, format="PNG")  # a PNG named .jpg
    save_image(str(root / "a" / "rgba.png"), np.dstack([rgb, np.full((16, 16), 7, np.uint8)]))
    Image.fromarray(rgb).convert("CMYK").save(root / "a" / "cmyk.jpg", quality=95)
    (root / "b").mkdir()
    Image.fromarray(deep).save(root / "b" / "deep.png")  # 16-bit grayscale
    gif = [Image.fromarray(frame) for frame in frames]
    gif[0].save(root / "b" / "animated.gif", save_all=True, append_images=gif[1:], duration=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedImageWarning)
        dataset, info = load(root, validation_split=0.0)
    assert info.image_shape == (16, 16, 3) and info.num_examples == 5
    paths = ["a/cmyk.jpg", "a/lying.jpg", "a/rgba.png", "b/animated.gif", "b/deep.png"]
    decoded = images_by_path(dataset, paths)
    np.testing.assert_array_equal(decoded["a/lying.jpg"], rgb)
    np.testing.assert_array_equal(decoded["a/rgba.png"], rgb)
    reference = np.asarray(Image.open(root / "a" / "cmyk.jpg").convert("RGB"), np.int64)
    assert np.abs(decoded["a/cmyk.jpg"].astype(np.int64) - reference).max() <= 8
    assert np.abs(decoded["a/cmyk.jpg"].astype(np.int64) - rgb).mean() < 6
    gif_reference = np.asarray(Image.open(root / "b" / "animated.gif").convert("RGB"))
    np.testing.assert_array_equal(decoded["b/animated.gif"], gif_reference)
    np.testing.assert_array_equal(decoded["b/deep.png"], np.repeat((deep >> 8)[..., None], 3, -1))


def test_grayscale_folder_has_one_channel(tmp_path, rng):
    for label in ("x", "y"):
        for i in range(3):
            image = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            save_image(str(tmp_path / "g" / label / f"{i}.png"), image)
    _, info = load(tmp_path / "g", validation_split=0.0)
    assert info.image_shape == (8, 8, 1) and len(info.mean) == 1


def test_images_of_different_sizes_need_image_size(tmp_path, rng):
    for label, size in (("x", (10, 12)), ("y", (14, 9))):
        for i in range(2):
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            save_image(str(tmp_path / "m" / label / f"{i}.png"), image)
    _, info = load(tmp_path / "m", validation_split=0.0)
    assert info.image_shape == (None, None, 3)
    with pytest.raises(ValueError, match="different sizes.*image_size"):
        make_dataset(tmp_path / "m", 2, validation_split=0.0)
    batches, out = make_dataset(tmp_path / "m", 4, image_size=(16, 16), validation_split=0.0)
    images = next(iter(batches))[0]
    assert images.shape == (4, 16, 16, 3) and out.image_shape == (16, 16, 3)


def test_split_folders_train_val_test(tmp_path, rng):
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        for label in ("cat", "dog"):
            for i in range(count):
                save_image(
                    str(tmp_path / "pets" / split / label / f"{i}.png"),
                    rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
                )
    _, train = load(tmp_path / "pets")
    _, val = load(tmp_path / "pets", split="validation")
    _, test = load(tmp_path / "pets", split="test")
    assert train.class_names == ("cat", "dog")
    assert (train.num_examples, val.num_examples, test.num_examples) == (8, 4, 6)
    assert train.mean == test.mean


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"a": 2, "b": 0}, "class folder .*b'? has no image files"),
        ({"a": 3}, "single class"),
        ({}, "no class sub-folders"),
    ],
)
def test_bad_folders_are_value_errors_naming_the_folder(tmp_path, rng, layout, message):
    root = tmp_path / "bad"
    root.mkdir()
    for label, count in layout.items():
        (root / label).mkdir()
        for i in range(count):
            image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            save_image(str(root / label / f"{i}.png"), image)
    with pytest.raises(ValueError, match=message) as error:
        load(root)
    assert str(root) in str(error.value)


def test_class_whose_files_all_fail_to_decode_is_an_error(tmp_path, rng):
    save_image(str(tmp_path / "f" / "a" / "0.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "f" / "b").mkdir()
    (tmp_path / "f" / "b" / "broken.png").write_bytes(b"\x89PNG broken")
    with (
        pytest.warns(SkippedImageWarning, match="broken.png"),
        pytest.raises(ValueError, match="b'? has no readable images"),
    ):
        load(tmp_path / "f")


def test_test_split_without_test_folder_is_an_error(image_folder):
    root, _ = image_folder
    with pytest.raises(ValueError, match="no test split"):
        load(root, split="test")


def test_images_over_the_pixel_limit_are_skipped_without_decoding(image_folder, monkeypatch):
    root, pixels = image_folder
    bomb = write_png_bomb(root / "circle" / "bomb.png")
    large = str(root / "square" / "large.png")
    save_image(large, np.zeros((40, 50, 3), np.uint8))
    monkeypatch.setenv("KCNN_MAX_IMAGE_PIXELS", "1000")  # the others are 20 x 24 = 480
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset, info = load(root, validation_split=0.0)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedImageWarning)]
    assert sorted(info.skipped) == sorted([bomb, large])
    assert any(large in m and "50 x 40 pixels, more than the limit of 1,000" in m for m in messages)
    assert any(bomb in m and "100,000 x 100,000 pixels" in m for m in messages)
    assert info.num_examples == len(pixels) and info.image_shape == (20, 24, 3)


def test_symbolic_links_lead_to_each_real_folder_once(image_folder, tmp_path, rng):
    root, pixels = image_folder
    os.symlink(root, root / "circle" / "back_to_root")
    os.symlink(root / "square", root / "square" / "itself")
    os.symlink(root / "triangle", root / "circle" / "other_class")
    outside = tmp_path / "outside"  # a link out of the tree is followed
    save_image(str(outside / "extra.png"), rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    os.symlink(outside, root / "circle" / "more")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset, info = load(root, validation_split=0.0)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedLinkWarning)]
    assert info.num_examples == len(pixels) + 1
    labels = [int(label) for _, label in dataset.as_numpy_iterator()]
    assert labels == [0] * 7 + [1] * 6 + [2] * 6
    for link in ("circle/back_to_root", "square/itself", "circle/other_class"):
        assert sum(str(root / link) in message for message in messages) == 1, messages
    assert len(messages) == 3


def test_a_grey_bmp_in_a_grey_folder_decodes(tmp_path, rng):
    """TensorFlow's BMP decoder refuses channels=1: a grey folder with a BMP used to fail when
    the first batch was read."""
    for label in ("x", "y"):
        save_image(str(tmp_path / "g" / label / "0.bmp"), rng.integers(0, 256, (8, 8), np.uint8))
        save_image(str(tmp_path / "g" / label / "1.png"), rng.integers(0, 256, (8, 8), np.uint8))
    dataset, info = load(tmp_path / "g", validation_split=0.0)
    assert info.image_shape == (8, 8, 1)
    images = [image for image, _ in dataset.as_numpy_iterator()]
    bmp = np.asarray(Image.open(tmp_path / "g" / "x" / "0.bmp"))
    np.testing.assert_array_equal(images[0][..., 0], bmp)


def test_a_large_folder_decodes_in_parts_with_progress(image_folder, monkeypatch, capsys):
    from kcnn.data import folders

    root, pixels = image_folder
    broken = add_broken_files(root)
    paths = tuple(sorted(pixels) + broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        whole = folders.scan_images(paths)
        assert "image" not in capsys.readouterr().err  # 22 files: no progress
        folders._scan_cached.cache_clear()
        monkeypatch.setattr(folders, "PROGRESS_MIN_FILES", 10)
        monkeypatch.setattr(folders, "PROGRESS_PARTS", 4)
        parts = folders.scan_images(paths)
    for field in ("readable", "heights", "widths", "channels", "sums", "squares"):
        np.testing.assert_array_equal(getattr(parts, field), getattr(whole, field))
    lines = [line for line in capsys.readouterr().err.splitlines() if "image" in line]
    checked = len(paths) - 2  # the empty and the text file are refused before decoding
    assert lines[0] == f"image 5/{checked} (decoding {root})"
    assert lines[3].startswith(f"image {checked}/{checked} (decoding {root}), ")
    assert lines[4].startswith(f"{checked} images in ") and len(lines) == 5
