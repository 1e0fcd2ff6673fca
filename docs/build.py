"""Build kcnn's API reference from its docstrings with pdoc: ``python docs/build.py [OUT]``
(``make docs``), HTML in ``docs/api/`` by default.

pdoc reads a module's ``__all__`` but cannot see the names that a lazy module ``__getattr__``
provides (``kcnn.data.load``, ``kcnn.viz.grad_cam``...: kcnn imports its heavy sub-packages on
first use), so the build resolves them into their modules first. Any warning pdoc gives (a
name it cannot resolve, a docstring it cannot parse) fails the build: the reference is checked
in the tests (``tests/test_docs.py``).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import warnings
from pathlib import Path

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api")


def resolve_lazy_exports(package: str) -> list[str]:
    """Import ``package`` and every sub-package, and put each name of their ``__all__`` that only
    a module ``__getattr__`` provides into the module itself, where pdoc looks.

    Returns:
        the names of the modules.
    """
    root = importlib.import_module(package)
    names = [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]
    for name in names:
        module = importlib.import_module(name)
        for export in getattr(module, "__all__", ()):
            if export not in vars(module) and hasattr(module, "__getattr__"):
                setattr(module, export, getattr(module, export))
    return names


def build(out: str = OUT, package: str = "kcnn") -> list[str]:
    """Write the HTML reference of ``package`` into ``out``.

    Returns:
        the warnings pdoc gave, as text (empty when the build is clean).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import pdoc
    import pdoc.render

    resolve_lazy_exports(package)
    pdoc.render.configure(docformat="google", search=True, show_source=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(package, output_directory=Path(out))
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def main(argv=None) -> int:
    """Build the reference; print each warning and return 1 when there is any."""
    args = sys.argv[1:] if argv is None else argv
    out = args[0] if args else OUT
    problems = build(out)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"wrote {os.path.join(out, 'index.html')} ({len(problems)} warnings)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
