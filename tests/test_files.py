"""Atomic saves: the previous file survives any failure, and no temporary file is left."""

import json
import os
import stat

import numpy as np
import pytest

import kcnn
from kcnn.files import (
    atomic_path,
    remove_temporaries,
    save_model,
    save_weights,
    write_json,
    write_text,
)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "table.csv"
    write_text(path, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            with open(temporary, "w") as file:
                file.write("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["table.csv"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_an_os_error_and_keeps_the_file(tmp_path):
    path = tmp_path / "report.md"
    write_text(path, "kept")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OSError, match="report.md.*previous file is intact"):
            write_text(path, "new")
    finally:
        tmp_path.chmod(0o700)
    assert path.read_text() == "kept"


def test_write_json_converts_numpy_and_non_finite_numbers(tmp_path):
    path = write_json(
        tmp_path / "sub" / "r.json",
        {"a": np.float32(0.5), "b": np.arange(3), "c": float("nan"), 1: (1, 2)},
    )
    assert json.loads(open(path).read()) == {"a": 0.5, "b": [0, 1, 2], "c": None, "1": [1, 2]}


def test_models_and_weights_save_atomically_and_load_back(tmp_path):
    model = kcnn.create_model("tiny_cnn")
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32")
    loaded = kcnn.load_model(save_model(model, tmp_path / "m.keras"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    weights = save_weights(model, tmp_path / "m.weights.h5")
    again = kcnn.create_model("tiny_cnn", weights=weights)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["m.keras", "m.weights.h5"]


def test_a_model_save_that_fails_half_way_keeps_the_previous_model(tmp_path, monkeypatch):
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    images = np.random.default_rng(0).random((2, 8, 8, 1), dtype="float32")
    path = save_model(model, tmp_path / "last.keras")
    expected = model.predict(images, verbose=0)
    kernel = model.get_layer("logits").kernel
    kernel.assign(np.zeros(kernel.shape, "float32"))

    def write_half_then_fail(target, *args, **kwargs):
        with open(target, "wb") as file:
            file.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_model(model, path)
    assert os.listdir(tmp_path) == ["last.keras"]
    np.testing.assert_allclose(
        kcnn.load_model(path).predict(images, verbose=0), expected, rtol=1e-6
    )


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_get_the_mode_of_a_plain_open_under_the_umask(tmp_path, umask_027):
    with open(tmp_path / "plain.txt", "w") as file:
        file.write("x")
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    written = [
        write_text(tmp_path / "a.md", "x"),
        write_json(tmp_path / "run.json", {}),
        save_model(model, tmp_path / "m.keras"),
        save_weights(model, tmp_path / "m.weights.h5"),
        save_figure(Figure(figsize=(1, 1)), tmp_path / "curves.png"),
    ]
    assert _mode(tmp_path / "plain.txt") == 0o640
    assert {path: _mode(path) for path in written} == {path: 0o640 for path in written}


def test_a_new_version_keeps_the_mode_of_the_file_it_replaces(tmp_path, umask_027):
    path = write_text(tmp_path / "shared.md", "old")
    os.chmod(path, 0o644)
    write_text(path, "new")
    assert _mode(path) == 0o644


def test_remove_temporaries_deletes_only_the_temporary_files_of_the_names_given(tmp_path):
    names = [".last.keras.ab3_x9zq.keras", ".run.json.0a1b2c3d.json", ".best.keras.k3x_9q2a.keras"]
    kept = [
        "last.keras",
        ".last.keras.notes.keras",
        ".last.keras.ab3_x9zq.txt",
        "notes.txt",
        ".other.keras.ab3_x9zq.keras",
    ]
    for name in names + kept:
        (tmp_path / name).write_text("x")
    removed = remove_temporaries(tmp_path, ["last.keras", "run.json", "best.keras"])
    assert sorted(os.path.basename(path) for path in removed) == sorted(names)
    assert sorted(os.listdir(tmp_path)) == sorted(kept)
    with atomic_path(tmp_path / "last.keras") as temporary:  # the names atomic_path makes
        assert remove_temporaries(tmp_path, ["last.keras"]) == [temporary]
        open(temporary, "w").close()
    assert remove_temporaries(tmp_path / "missing", ["last.keras"]) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")
def test_the_new_version_reaches_the_disk_before_the_rename_and_the_folder_after(
    tmp_path, monkeypatch
):
    events = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(descriptor):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        fsync(descriptor)

    def recorded_replace(source, destination):
        events.append(("replace", os.fspath(destination)))
        replace(source, destination)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    path = tmp_path / "notes.txt"
    write_text(path, "kept after a power cut")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert os.path.basename(events[0][1]).startswith(".notes.txt.")  # the temporary file
    assert events[1][1] == str(path) and events[2][1] == str(tmp_path)
