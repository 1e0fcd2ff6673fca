"""`kcnn.load_model` on files that are not good models: each error is one line naming the file and
what is wrong with it, and the code a crafted file names never runs."""

import json
import zipfile

import pytest

import kcnn


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The members of a real tiny model's ``.keras`` archive, by name."""
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=2).save(path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}, path.read_bytes()


def _write_archive(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _load_error(path) -> str:
    with pytest.raises(ValueError) as caught:
        kcnn.load_model(path, compile=False)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def _popen(marker):
    """A config entry that a loader importing what it is told would turn into ``touch marker``."""
    return {
        "module": "subprocess",
        "class_name": "Popen",
        "registered_name": None,
        "config": {"args": ["touch", str(marker)]},
    }


def _whole_model(config, marker):
    return _popen(marker)


def _one_layer(config, marker):
    config["config"]["layers"][1] = {**_popen(marker), "name": "stage1_conv", "inbound_nodes": []}
    return config


def _activation(config, marker):
    layer = config["config"]["layers"][1]["config"]
    layer["activation"] = {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "function",
    }
    return config


@pytest.mark.parametrize(
    "craft, named",
    [
        (_whole_model, "subprocess.Popen"),
        (_one_layer, "subprocess.Popen"),
        (_activation, "os.system"),
    ],
)
def test_a_config_naming_code_outside_keras_is_refused_and_never_run(craft, named, saved, tmp_path):
    members, _ = saved
    marker = tmp_path / "payload-ran"
    config = craft(json.loads(members["config.json"]), marker)
    path = _write_archive(
        tmp_path / "crafted.keras", {**members, "config.json": json.dumps(config)}
    )
    message = _load_error(path)
    assert named in message and "safe mode" in message
    assert not marker.exists()


def _truncated(members, raw):
    return raw[: len(raw) // 2]


def _broken_json(members, raw):
    return {**members, "config.json": b'{"module": "keras",\n  "class_name": }'}


def _without(name):
    return lambda members, raw: {k: v for k, v in members.items() if k != name}


@pytest.mark.parametrize(
    "content, problem",
    [
        (lambda members, raw: b"", "the file is empty"),
        (lambda members, raw: b"not a model, just some text\n", "not a zip archive"),
        (_truncated, "truncated"),
        (_broken_json, "config.json is not valid JSON at line 2 column 17"),
        (_without("model.weights.h5"), "no weights file"),
        (_without("config.json"), "no config.json"),
        (lambda members, raw: {**members, "config.json": b"[1, 2]"}, "not a Keras model config"),
        (lambda members, raw: {**members, "model.weights.h5": b"garbage"}, "model.weights.h5"),
    ],
    ids=[
        "empty",
        "text",
        "truncated",
        "broken-json",
        "no-weights",
        "no-config",
        "json-list",
        "bad-weights",
    ],
)
def test_a_broken_model_file_is_named_with_its_problem(content, problem, saved, tmp_path):
    members, raw = saved
    path = tmp_path / "model.keras"
    data = content(members, raw)
    if isinstance(data, dict):
        _write_archive(path, data)
    else:
        path.write_bytes(data)
    message = _load_error(path)
    assert problem in message
    assert "File not found" not in message


def test_a_lambda_layer_is_refused_in_one_line_naming_the_file(tmp_path):
    import keras

    inputs = keras.Input((4,))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs)).save(path)
    assert "Lambda" in _load_error(path)


def test_a_good_model_file_still_loads(saved, tmp_path):
    _, raw = saved
    path = tmp_path / "good.keras"
    path.write_bytes(raw)
    assert kcnn.load_model(path, compile=False).name == "tiny_cnn"


def test_an_unregistered_loss_does_not_matter_without_compiling(saved, tmp_path):
    members, _ = saved
    config = json.loads(members["config.json"])
    config["compile_config"] = {
        "loss": {
            "module": "mylib.losses",
            "class_name": "MyLoss",
            "config": {},
            "registered_name": "mylib>MyLoss",
        }
    }
    path = _write_archive(
        tmp_path / "custom_loss.keras", {**members, "config.json": json.dumps(config)}
    )
    assert kcnn.load_model(path, compile=False).name == "tiny_cnn"
