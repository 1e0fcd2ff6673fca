# The two commands of the README: `make test` (install, then every test) and `make run` (the main job).
# Everything is installed into .venv; set PYTHON to choose the interpreter that creates it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test test-fast run docs

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(PY)
	@# Debian's full Fashion-MNIST (offline data for the main job and the tests), when apt is usable.
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null || echo "note: apt-get could not install dataset-fashion-mnist"; \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"

# Lint and format checks, every test on the TensorFlow backend (slow ones included), then the
# model and layer tests on JAX.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n 2 -m "slow or not slow"
	KERAS_BACKEND=jax $(PY) -m pytest -n 2 -m "slow or not slow" tests/models

# The default suite a developer runs between changes (plain `pytest` too): no slow tests.
test-fast: install
	$(PY) -m pytest -n 2

# The main job: train simple_cnn (the course's Listing 1) on the full Fashion-MNIST, report test accuracy.
run: install
	@$(PY) -c "import kcnn.data; kcnn.data.load('fashion_mnist', download=False)" 2>/dev/null || { \
		echo "make run needs Fashion-MNIST: on Debian/Ubuntu run 'make run' as root (it installs the"; \
		echo "dataset-fashion-mnist package), or put the four IDX files (train-images-idx3-ubyte.gz ...)"; \
		echo "in a folder and set KCNN_DATA_DIR to it."; exit 1; }
	$(VENV)/bin/kcnn train --preset fashion-quick --out saved_models/main-job --overwrite

# The API reference, generated from the docstrings by pdoc into docs/api/ (fails on any warning).
docs: install
	$(PY) docs/build.py docs/api
