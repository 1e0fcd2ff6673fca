"""Execute the notebooks top to bottom and print how long each took (outputs are not saved).

python notebooks/run.py                      # every notebook, full mode
KCNN_QUICK=1 python notebooks/run.py         # quick mode, as the tests run them
python notebooks/run.py notebooks/01_convolution.ipynb
"""

import argparse
import pathlib
import time

import nbformat
from nbclient import NotebookClient

FOLDER = pathlib.Path(__file__).resolve().parent


def execute(path, timeout: int = 900) -> None:
    """Run every cell of the notebook ``path`` in a fresh kernel, in the notebooks' folder.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell failed (with its traceback).
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(FOLDER)}},
    )
    client.execute()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Execute kcnn's notebooks and time each.")
    parser.add_argument(
        "notebooks", nargs="*", type=pathlib.Path, help="default: every notebook in this folder"
    )
    args = parser.parse_args(argv)
    for path in args.notebooks or sorted(FOLDER.glob("*.ipynb")):
        start = time.perf_counter()
        execute(path)
        print(f"{path.name}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
