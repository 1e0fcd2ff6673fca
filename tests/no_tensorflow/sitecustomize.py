"""Makes TensorFlow impossible to import, as on a machine that has JAX or PyTorch but not it.

A test puts this folder first on ``PYTHONPATH`` of a subprocess: Python imports
``sitecustomize`` at start-up, and the finder below answers every ``tensorflow``,
``tensorflow_*`` and ``tf_keras`` import as a missing module, before the installed one is found.
"""

import sys

BLOCKED = ("tensorflow", "tf_keras")


class NoTensorFlow:
    """A meta path finder that refuses TensorFlow and its add-on packages."""

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.split(".")[0]
        if top in BLOCKED or top.startswith("tensorflow_"):
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None


sys.meta_path.insert(0, NoTensorFlow())
