"""Image files: checked from their header, decoded, converted and resized the same way on every
path -- image folders (`kcnn.data.folders`) and ``kcnn predict / explain / visualize``.

Decoding is TensorFlow's (``tf.io.decode_image``: JPEG, PNG, GIF, BMP and WebP, recognised by
their content, not their extension), as uint8: a 16-bit PNG keeps its 8 most significant bits
(0-65535 becomes 0-255), a CMYK JPEG becomes RGB, an animated GIF gives its first frame, an alpha
channel is dropped. Grey becomes RGB by repetition, RGB becomes grey with the luma weights of
``tf.image.rgb_to_grayscale``; resizing is bilinear and antialiased, rounded back to uint8.

Before anything is decoded, the file's header gives its size: an image of more than
`max_image_pixels` pixels (default `MAX_IMAGE_PIXELS`, 100 million; the environment variable
``KCNN_MAX_IMAGE_PIXELS`` sets another) is refused, so a decompression bomb -- a small file that
declares 100,000 x 100,000 pixels -- never reaches the decoder.
"""

from __future__ import annotations

import os
import re
import struct
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from kcnn import checks

MAX_IMAGE_PIXELS = 100_000_000
MAX_PIXELS_VARIABLE = "KCNN_MAX_IMAGE_PIXELS"
FORMATS = "JPEG, PNG, GIF, BMP or WebP"
_HEADER_BYTES = 32
# JPEG start-of-frame markers: C0-CF except C4 (Huffman tables), C8 (reserved), CC (arithmetic).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageFileError(ValueError):
    """An image file that cannot be read: missing, a folder, not an image, too large, corrupt.

    Attributes:
        path: the file.
        reason: why, in a few words (``"the file is empty"``).
    """

    def __init__(self, path, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"{self.path!r} is not a readable image: {reason}")


class ImageHeader(NamedTuple):
    """What an image file's header says: its format, its size, and the pixels decoding it holds
    in memory (for a GIF, all its frames, which the decoder reads even when only the first is
    kept; else ``height * width``)."""

    format: str
    height: int
    width: int
    pixels: int

    def describe(self) -> str:
        size = f"{self.width:,} x {self.height:,} pixels"
        if self.pixels != self.height * self.width:
            size += f" ({self.pixels:,} in all its frames)"
        return size


def max_image_pixels(max_pixels=None) -> int:
    """The pixel limit: ``max_pixels``, else ``$KCNN_MAX_IMAGE_PIXELS``, else `MAX_IMAGE_PIXELS`.

    Raises:
        ValueError: naming ``max_pixels`` or the variable, when it is not a positive integer.
    """
    if max_pixels is not None:
        return checks.positive_int("max_pixels", max_pixels)
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip().replace("_", "")
    if not text:
        return MAX_IMAGE_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"{MAX_PIXELS_VARIABLE} must be a positive integer (pixels), got "
            f"{os.environ[MAX_PIXELS_VARIABLE]!r}"
        )
    return int(text)


def check_image_file(path, max_pixels=None) -> ImageHeader:
    """Read only the header of ``path``: its format and size, within the pixel limit.

    Raises:
        ImageFileError: naming the file, when it does not exist, is a folder, is empty, is not a
            JPEG, PNG, GIF, BMP or WebP file, has a truncated header, or has more than
            ``max_image_pixels(max_pixels)`` pixels.
    """
    limit = max_image_pixels(max_pixels)
    if os.path.isdir(path):
        raise ImageFileError(path, "it is a folder, not an image file")
    try:
        with open(path, "rb") as file:
            header = _parse_header(file)
    except FileNotFoundError:
        raise ImageFileError(path, "it does not exist") from None
    except OSError as error:
        raise ImageFileError(path, error.strerror or str(error)) from None
    except (struct.error, IndexError):
        raise ImageFileError(path, "its header is truncated") from None
    if isinstance(header, str):
        raise ImageFileError(path, header)
    if header.pixels > limit:
        raise ImageFileError(
            path,
            f"{header.describe()}, more than the limit of {limit:,} (set "
            f"{MAX_PIXELS_VARIABLE} to allow more)",
        )
    return header


def decode_image(contents, channels: int | None = None) -> tf.Tensor:
    """Decode an encoded image (a string tensor; usable in a ``tf.data`` map) as uint8.

    Args:
        contents: the file's bytes.
        channels: ``None`` for the file's own channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA;
            a CMYK JPEG gives 3), or 1 (grey) or 3 (RGB); alpha is then dropped.

    Returns:
        ``uint8 (height, width, channels)``.
    """
    image = tf.io.decode_image(contents, channels=0, expand_animations=False, dtype=tf.uint8)
    return image if channels is None else convert_channels(image, channels)


def convert_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``image`` (..., H, W, 1 to 4 channels) as grey (1) or RGB (3), alpha dropped."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")

    def from_colour():
        return tf.image.rgb_to_grayscale(image[..., :3]) if channels == 1 else image[..., :3]

    def from_grey():
        return image[..., :1] if channels == 1 else tf.image.grayscale_to_rgb(image[..., :1])

    own = image.shape[-1]
    if own is not None:
        converted = from_colour() if own >= 3 else from_grey()
    else:
        converted = tf.cond(tf.shape(image)[-1] >= 3, from_colour, from_grey)
    converted.set_shape(image.shape[:-1] + (channels,))
    return converted


def resize_image(image: tf.Tensor, size) -> tf.Tensor:
    """``image`` (uint8) resized to ``size`` ``(height, width)``: bilinear, antialiased, uint8."""
    image = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def read_image(path, channels: int | None = None, size=None, max_pixels=None) -> np.ndarray:
    """Read one image file: header checked, decoded, converted to ``channels``, resized.

    Args:
        path: the image file.
        channels: 1 (grey), 3 (RGB) or ``None`` (the file's own, see `decode_image`).
        size: ``(height, width)`` to resize to, or ``None`` to keep the file's.
        max_pixels: the pixel limit (default `max_image_pixels`).

    Returns:
        ``uint8 (height, width, channels)``.

    Raises:
        ImageFileError: naming the file and why it cannot be read (see `check_image_file`),
            or what the decoder found wrong with it.
    """
    check_image_file(path, max_pixels)
    try:
        image = decode_image(tf.io.read_file(os.fspath(path)), channels)
    except (OSError, tf.errors.OpError) as error:
        raise ImageFileError(path, _decoder_message(error)) from None
    if size is not None and tuple(image.shape[:2]) != tuple(size):
        image = resize_image(image, size)
    return image.numpy()


def _decoder_message(error) -> str:
    """TensorFlow's error message, without its op and function names."""
    message = getattr(error, "message", str(error))
    message = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]", "", message).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _parse_header(file) -> ImageHeader | str:
    """The header of an open image file, or why there is none (a few words)."""
    start = file.read(_HEADER_BYTES)
    if not start:
        return "the file is empty"
    if start.startswith(b"\x89PNG\r\n\x1a\n"):
        if start[12:16] != b"IHDR":
            return "a PNG file without its IHDR header"
        width, height = struct.unpack(">II", start[16:24])
        return _sized("PNG", height, width)
    if start.startswith(b"\xff\xd8"):
        return _jpeg_header(file)
    if start[:6] in (b"GIF87a", b"GIF89a"):
        file.seek(0)
        return _gif_header(file.read())
    if start.startswith(b"BM"):
        if struct.unpack("<I", start[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
            width, height = struct.unpack("<HH", start[18:22])
        else:
            width, height = struct.unpack("<ii", start[18:26])
        return _sized("BMP", abs(height), abs(width))
    if start[:4] == b"RIFF" and start[8:12] == b"WEBP":
        return _webp_header(start)
    return f"not a {FORMATS} file"


def _jpeg_header(file) -> ImageHeader | str:
    """The size in the first start-of-frame segment, skipping the segments before it."""
    file.seek(2)
    while True:
        byte = file.read(1)
        if not byte:
            return "a JPEG file that ends before its frame header"
        if byte != b"\xff":
            continue
        marker = file.read(1)
        while marker == b"\xff":
            marker = file.read(1)
        if not marker:
            return "a JPEG file that ends before its frame header"
        code = marker[0]
        if code == 0x01 or 0xD0 <= code <= 0xD8:  # markers without a length
            continue
        if code in (0xD9, 0xDA):
            return "a JPEG file without a frame header"
        (length,) = struct.unpack(">H", file.read(2))
        if length < 2:
            return "a JPEG file with a corrupt segment length"
        if code in _JPEG_FRAMES:
            _, height, width = struct.unpack(">BHH", file.read(5))
            return _sized("JPEG", height, width)
        file.seek(length - 2, os.SEEK_CUR)


def _gif_header(data: bytes) -> ImageHeader:
    """The screen size, or the size of all frames together when larger: the decoder reads every
    frame into memory, even when only the first is kept."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frame_pixels = 0
    while position < len(data) and data[position] != 0x3B:  # 0x3B: the trailer
        if data[position] == 0x2C:  # an image descriptor, then its LZW data
            frame_width, frame_height, frame_flags = struct.unpack(
                "<HHB", data[position + 5 : position + 10]
            )
            frame_pixels += frame_width * frame_height
            position += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0) + 1
        elif data[position] == 0x21:  # an extension: its label, then its data
            position += 2
        else:
            break
        while position < len(data) and data[position]:  # data sub-blocks, up to an empty one
            position += data[position] + 1
        position += 1
    return ImageHeader("GIF", height, width, max(height * width, frame_pixels))


def _webp_header(start: bytes) -> ImageHeader | str:
    if len(start) < 30:
        return "its header is truncated"
    chunk = start[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(start[24:27], "little") + 1
        height = int.from_bytes(start[27:30], "little") + 1
    elif chunk == b"VP8L":
        bits = int.from_bytes(start[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        width, height = (v & 0x3FFF for v in struct.unpack("<HH", start[26:30]))
    else:
        return "a WebP file without a known image chunk"
    return _sized("WebP", height, width)


def _sized(format: str, height: int, width: int) -> ImageHeader:
    return ImageHeader(format, height, width, height * width)
