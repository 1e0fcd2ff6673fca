"""A tiny search on random images, run as a separate process by the resume and distributed
tests: ``python -m tests.tuning.search_script DIRECTORY [--max-trials N] [--epoch-sleep S]``.
Prints the `SearchResult` as one JSON line."""

import argparse
import dataclasses
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402
import numpy as np  # noqa: E402

IMAGE_SHAPE = (16, 16, 1)
CLASSES = 3


def tiny_arrays(count=96, seed=0):
    """uint8 images whose mean brightness gives the class, so the search has something to
    learn, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % CLASSES
    base = rng.integers(0, 60, size=(count, *IMAGE_SHAPE))
    images = np.clip(base + 80 * labels[:, None, None, None], 0, 255).astype("uint8")
    return images, labels


def tiny_hyperparameters():
    """Fix the CNN space to small models; kernel size, dropout, optimizer and learning rate
    stay free."""
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 2)
    hp.Fixed("filters_1", 4)
    hp.Fixed("filters_2", 4)
    hp.Fixed("dense_units", 0)
    hp.Fixed("norm", "none")
    hp.Fixed("conv", "standard")
    hp.Fixed("weight_decay", 0.0)
    hp.Fixed("l1", 0.0)
    hp.Fixed("augment", "none")
    return hp


class SleepEachEpoch(keras.callbacks.Callback):
    """Makes each epoch last at least ``seconds``, so another process can act mid-trial."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)


def main(argv=None):
    from kcnn import tuning

    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--tuner", default="random")
    parser.add_argument("--max-trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--epoch-sleep", type=float, default=0.0)
    args = parser.parse_args(argv)
    data = tuning.SearchData(tiny_arrays(), batch_size=32)
    callbacks = [SleepEachEpoch(args.epoch_sleep)] if args.epoch_sleep else []
    result = tuning.search(
        tuning.CNNHyperModel(data.info, precision="float32"),
        data,
        tuner=args.tuner,
        max_trials=args.max_trials,
        epochs=args.epochs,
        directory=args.directory,
        project_name="search",
        hyperparameters=tiny_hyperparameters(),
        callbacks=callbacks,
        verbose=0,
    )
    print(json.dumps(dataclasses.asdict(result), default=str))


if __name__ == "__main__":
    main()
