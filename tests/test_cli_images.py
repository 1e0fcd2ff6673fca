"""``kcnn predict / explain / visualize`` on awkward image files: 16-bit PNGs read as their 8-bit
picture, unreadable files reported one line each while the others are treated, decompression
bombs refused from their header, folders named like images."""

import numpy as np
import pytest
from PIL import Image

from kcnn.cli import main
from kcnn.data import load
from kcnn.training import build_model
from tests.data.conftest import write_png_bomb


@pytest.fixture
def saved(tmp_path):
    """A saved tiny_cnn (16x16 grey, 3 classes) that standardises 0-255 pixels, as the models
    kcnn trains do (so that its outputs are not all 0 or 1), and two grey 16x16 PNGs."""
    rng = np.random.default_rng(0)
    _, info = load((rng.integers(0, 256, (30, 16, 16), dtype=np.uint8), np.arange(30) % 3))
    build_model("tiny_cnn", info).save(tmp_path / "tiny.keras")
    for name in ("one", "two"):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(
            tmp_path / f"{name}.png"
        )
    return tmp_path


def _outputs(text):
    """The lines of a command's output without the image path before the first ': '."""
    return [line.split(": ", 1)[1] for line in text.strip().splitlines()]


def test_a_16_bit_png_gives_the_answer_of_its_8_bit_picture(saved, capsys):
    deep = np.random.default_rng(1).integers(0, 65536, (16, 16), dtype=np.uint16)
    Image.fromarray(deep).save(saved / "deep.png")
    Image.fromarray((deep >> 8).astype(np.uint8)).save(saved / "eight.png")
    model = str(saved / "tiny.keras")
    for command in (["predict", model], ["explain", model, "--out", str(saved / "out")]):
        assert main([*command, str(saved / "deep.png")]) == 0
        sixteen = _outputs(capsys.readouterr().out)
        assert main([*command, str(saved / "eight.png")]) == 0
        assert sixteen == _outputs(capsys.readouterr().out)


def _bad_images(saved):
    """An image of each kind that cannot be read, and what its error line says."""
    (saved / "text.png").write_text("hello, I am text")
    (saved / "folder.png").mkdir()
    return {
        str(saved / "text.png"): "not a JPEG, PNG, GIF, BMP or WebP file",
        str(saved / "missing.png"): "it does not exist",
        str(saved / "folder.png"): "it is a folder, not an image file",
        write_png_bomb(saved / "bomb.png"): "100,000 x 100,000 pixels, more than the limit",
    }


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_unreadable_images_get_a_line_each_and_the_others_are_treated(saved, capsys, command):
    bad = _bad_images(saved)
    good = [str(saved / "one.png"), str(saved / "two.png")]
    argv = [command, str(saved / "tiny.keras"), good[0], *bad, good[1]]
    if command == "explain":
        argv += ["--out", str(saved / "out")]
    assert main(argv) == 1
    captured = capsys.readouterr()
    treated = captured.out.strip().splitlines()
    assert len(treated) == 2
    if command == "predict":
        assert [line.split(": ")[0] for line in treated] == good
    else:
        assert all((saved / "out" / f"{name}_gradcam.png").is_file() for name in ("one", "two"))
    errors = captured.err.strip().splitlines()
    assert len(errors) == len(bad) and "Traceback" not in captured.err
    for line, (path, reason) in zip(errors, bad.items()):
        assert line.startswith(f"kcnn: error: {path!r} is not a readable image: {reason}"), line


def test_a_single_bad_image_is_one_line(saved, capsys):
    bomb = write_png_bomb(saved / "bomb.png")
    model = str(saved / "tiny.keras")
    for argv in (
        ["predict", model, bomb],
        ["explain", model, bomb],
        ["visualize", "feature-maps", model, bomb],
        ["predict", model, str(saved)],
    ):
        assert main(argv + (["--out", str(saved / "out")] if argv[0] != "predict" else [])) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "is not a readable image" in error, error


def test_the_pixel_limit_is_set_by_the_environment(saved, capsys, monkeypatch):
    monkeypatch.setenv("KCNN_MAX_IMAGE_PIXELS", "255")  # the images are 16 x 16 = 256 pixels
    assert main(["predict", str(saved / "tiny.keras"), str(saved / "one.png")]) == 1
    assert "16 x 16 pixels, more than the limit of 255" in capsys.readouterr().err
    monkeypatch.setenv("KCNN_MAX_IMAGE_PIXELS", "256")
    assert main(["predict", str(saved / "tiny.keras"), str(saved / "one.png")]) == 0
