"""Run Python in a subprocess on the JAX backend where TensorFlow cannot be imported.

``sitecustomize.py`` in this folder refuses every TensorFlow import; `run_without_tensorflow`
puts the folder first on the subprocess's ``PYTHONPATH``, so Python loads it at start-up.
"""

import os
import pathlib
import subprocess
import sys

from tests.xla import QUICK_COMPILE_FLAGS

FOLDER = pathlib.Path(__file__).parent


def run_without_tensorflow(arguments, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python *arguments`` on Keras's JAX backend (CPU) with TensorFlow blocked.

    XLA's CPU optimizations are turned down (`tests.xla`): such a subprocess compiles a model's
    initializers and training step once, and fully optimised compilation would be most of its
    time.

    Args:
        arguments: the interpreter's arguments, e.g. ``["-c", code]`` or a script and options.
        timeout: seconds before the subprocess is killed (`subprocess.TimeoutExpired`).
    """
    paths = [str(FOLDER), os.environ.get("PYTHONPATH")]
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join(filter(None, paths)),
        XLA_FLAGS=QUICK_COMPILE_FLAGS,
    )
    return subprocess.run(
        [sys.executable, *arguments], env=env, capture_output=True, text=True, timeout=timeout
    )
