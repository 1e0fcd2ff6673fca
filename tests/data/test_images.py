"""kcnn.data.images: sizes read from headers alone, the pixel limit, and one decoding that gives
the same pixels as the image-folder pipeline."""

import struct

import numpy as np
import pytest
from PIL import Image

from kcnn.data import make_dataset
from kcnn.data.images import (
    MAX_IMAGE_PIXELS,
    ImageFileError,
    check_image_file,
    max_image_pixels,
    read_image,
)
from tests.data.conftest import save_image, write_png_bomb


@pytest.mark.parametrize(
    "name, options",
    [
        ("a.png", {}),
        ("a.jpg", {"quality": 90}),
        ("progressive.jpg", {"progressive": True}),
        ("a.bmp", {}),
        ("a.gif", {}),
        ("lossy.webp", {}),
        ("lossless.webp", {"lossless": True}),
    ],
)
def test_header_gives_the_size_of_each_format(tmp_path, rng, name, options):
    path = tmp_path / name
    Image.fromarray(rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)).save(path, **options)
    header = check_image_file(path)
    assert (header.height, header.width, header.pixels) == (7, 9, 63)


def test_jpeg_size_is_found_after_a_large_exif_segment(tmp_path, rng):
    exif = Image.Exif()
    exif[0x010E] = "x" * 20_000  # an image description: a 20 kB APP1 segment before the frame
    Image.fromarray(rng.integers(0, 256, (5, 11, 3), dtype=np.uint8)).save(
        tmp_path / "exif.jpg", exif=exif
    )
    assert check_image_file(tmp_path / "exif.jpg")[1:3] == (5, 11)


def test_a_gif_counts_the_pixels_of_all_its_frames(tmp_path, rng):
    frames = [Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)) for _ in range(4)]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    header = check_image_file(tmp_path / "animated.gif")
    assert (header.height, header.width, header.pixels) == (6, 5, 4 * 30)
    with pytest.raises(ImageFileError, match="120 in all its frames"):
        check_image_file(tmp_path / "animated.gif", max_pixels=100)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = write_png_bomb(tmp_path / "bomb.png")
    with pytest.raises(ImageFileError) as error:
        read_image(bomb, 3, (16, 16))
    assert str(error.value).startswith(repr(bomb))
    assert f"100,000 x 100,000 pixels, more than the limit of {MAX_IMAGE_PIXELS:,}" in str(
        error.value
    )
    assert "KCNN_MAX_IMAGE_PIXELS" in str(error.value)


def test_the_limit_comes_from_the_argument_or_the_environment(tmp_path, rng, monkeypatch):
    path = tmp_path / "a.png"
    save_image(str(path), rng.integers(0, 256, (10, 10), dtype=np.uint8))
    assert max_image_pixels() == MAX_IMAGE_PIXELS == 100_000_000
    assert read_image(path, max_pixels=100).shape == (10, 10, 1)
    with pytest.raises(ImageFileError, match="limit of 99 "):
        read_image(path, max_pixels=99)
    monkeypatch.setenv("KCNN_MAX_IMAGE_PIXELS", "99")
    with pytest.raises(ImageFileError, match="limit of 99 "):
        read_image(path)
    monkeypatch.setenv("KCNN_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="KCNN_MAX_IMAGE_PIXELS must be a positive integer"):
        read_image(path)
    with pytest.raises(ValueError, match="max_pixels must be a positive integer"):
        read_image(path, max_pixels=0)


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "it is a folder, not an image file"),
        (b"", "the file is empty"),
        (b"hello, I am text", "not a JPEG, PNG, GIF, BMP or WebP file"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0", "its header is truncated"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "ends before its frame header"),
    ],
)
def test_unreadable_files_are_errors_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "x.png"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ImageFileError, match=reason) as error:
        read_image(path)
    assert repr(str(path)) in str(error.value) and error.value.path == str(path)
    with pytest.raises(ImageFileError, match="does not exist"):
        read_image(tmp_path / "missing.png")


def test_16_bit_png_keeps_its_8_most_significant_bits(tmp_path, rng):
    deep = rng.integers(0, 65536, (12, 10), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png"), (deep >> 8)[..., None])
    rgb = read_image(tmp_path / "deep.png", channels=3)
    np.testing.assert_array_equal(rgb, np.repeat((deep >> 8)[..., None], 3, -1))


def test_read_image_gives_the_pixels_the_folder_pipeline_gives(tmp_path, rng):
    """One decoding: channels converted and images resized as make_dataset does it."""
    root = tmp_path / "mixed"
    colour = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    save_image(str(root / "a" / "colour.png"), colour)
    save_image(str(root / "b" / "grey.bmp"), rng.integers(0, 256, (20, 24), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 65536, (20, 24), dtype=np.uint16)).save(root / "b" / "d.png")
    paths = [root / "a" / "colour.png", root / "b" / "d.png", root / "b" / "grey.bmp"]
    for channels in (1, 3):
        dataset, _ = make_dataset(
            root,
            3,
            image_size=(9, 13),
            channels=channels,
            normalize=None,
            validation_split=0.0,
            shuffle=False,
        )
        images = next(iter(dataset))[0].numpy()
        for path, image in zip(paths, images):
            np.testing.assert_array_equal(read_image(path, channels, (9, 13)), image)


def test_bmp_header_sizes_are_read_for_bottom_up_and_top_down_images(tmp_path, rng):
    save_image(str(tmp_path / "a.bmp"), rng.integers(0, 256, (6, 4, 3), dtype=np.uint8))
    data = bytearray((tmp_path / "a.bmp").read_bytes())
    data[22:26] = struct.pack("<i", -6)  # a negative height: rows stored top-down
    (tmp_path / "top_down.bmp").write_bytes(bytes(data))
    assert check_image_file(tmp_path / "top_down.bmp")[1:3] == (6, 4)
