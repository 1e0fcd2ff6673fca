"""Load a script of the repository (a benchmark, an experiment, docs/build.py, notebooks/run.py:
files beside the package, not in it) as a module, for the tests that call its functions."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_script(relative_path):
    """The script at ``ROOT/relative_path``, executed as a module.

    The module is registered in ``sys.modules`` under a name made from the path, where a
    dataclass in the script looks its module up.
    """
    path = ROOT / relative_path
    name = "kcnn_script_" + "_".join(pathlib.PurePath(relative_path).with_suffix("").parts)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
