"""`import kcnn` registers every kcnn layer with Keras, and loading models needs no transfer."""

import os
import subprocess
import sys

import kcnn.layers


def test_import_kcnn_registers_every_layer_when_keras_is_imported_later():
    script = (
        "import sys, kcnn\n"
        "assert 'keras' not in sys.modules, 'import kcnn imported keras'\n"
        "import keras\n"
        f"names = {kcnn.layers.__all__!r}\n"
        "missing = [n for n in names if keras.saving.get_registered_object('kcnn>' + n) is None]\n"
        "assert not missing, missing\n"
        "import kcnn.models.saving\n"
        "assert 'kcnn.transfer' not in sys.modules, 'kcnn.models.saving imported kcnn.transfer'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"
