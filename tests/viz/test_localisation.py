"""Evidence that the explanations point at what decides the class.

The task: grey noise images, half of them with a bright 8x8 square at a random place. The class
is the square's presence, so a correct explanation of the "square" class has something to point
at, the square, and nothing else (unlike square-vs-disc images, where one class can be told by
the other's absence). Each image's background has its own brightness range, so the mean
brightness does not give the class away. A small kcnn CNN (tiny_cnn) learns it in seconds.

Run ``pytest tests/viz/test_localisation.py -m slow -s`` to see the figures of every method.
"""

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

import kcnn
from kcnn import viz

pytestmark = pytest.mark.slow

SIZE, SIDE = 32, 8
SQUARE = 1


def squares_in_noise(count, rng):
    """Images (count, SIZE, SIZE, 1), labels (1: a square is there) and the squares' boxes."""
    brightness = rng.uniform(0.4, 0.7, size=(count, 1, 1, 1))
    images = (rng.uniform(0, 1, size=(count, SIZE, SIZE, 1)) * brightness).astype("float32")
    labels = rng.integers(0, 2, size=count)
    boxes = np.zeros((count, 4), dtype="int64")
    for i in np.flatnonzero(labels == SQUARE):
        top, left = rng.integers(0, SIZE - SIDE + 1, size=2)
        images[i, top : top + SIDE, left : left + SIDE, 0] = rng.uniform(
            0.85, 1.0, size=(SIDE, SIDE)
        )
        boxes[i] = (top, left, top + SIDE, left + SIDE)
    return images, labels, boxes


def trained_cnn(x, y, seed):
    keras.utils.set_random_seed(seed)
    model = kcnn.create_model("tiny_cnn", input_shape=(SIZE, SIZE, 1), classes=2)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x_train, y_train, _ = squares_in_noise(2000, rng)
    x_test, y_test, boxes = squares_in_noise(400, rng)
    model = trained_cnn(x_train, y_train, seed=0)
    accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
    squares = y_test == SQUARE
    return {
        "model": model,
        "accuracy": accuracy,
        "x": x_test[squares],
        "boxes": boxes[squares],
        "x_train": x_train,
        "y_train": y_train,
    }


def test_explanations_point_at_the_square(task):
    assert task["accuracy"] >= 0.97
    rng = np.random.default_rng(1)
    chance = viz.pointing_game(rng.uniform(size=(len(task["x"]), SIZE, SIZE)), task["boxes"])
    hits = {
        name: viz.pointing_game(method(task["model"], task["x"], class_index=SQUARE), task["boxes"])
        for name, method in viz.METHODS.items()
    }
    print(
        f"\npointing game on {len(task['x'])} square images (test accuracy "
        f"{task['accuracy']:.3f}; random maps: {chance:.3f})"
    )
    for name, rate in hits.items():
        print(f"  {name:<11} {rate:.3f}")
    for name in ("gradcam", "gradcam++", "scorecam"):
        assert hits[name] >= 0.9, name
    for name in ("saliency", "smoothgrad"):  # pixel-level maps: noisier peaks
        assert hits[name] >= 0.75, name


def mean_rank_correlation(maps, others):
    """Mean Spearman correlation over the images whose two maps are not constant, and their
    number (a constant map has no ranking)."""
    values = [
        spearmanr(a.ravel(), b.ravel())[0]
        for a, b in zip(maps, others)
        if a.std() > 0 and b.std() > 0
    ]
    return (float(np.mean(values)) if values else 0.0), len(values)


def test_randomising_the_weights_changes_the_maps(task):
    """Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018: an explanation that
    survives re-initialising the model's weights does not explain the model. The retrained
    model (another seed) shows what "similar" looks like for comparison.

    Checked for Grad-CAM and the two gradient maps. Only printed: re-initialising the
    classifier alone (the top step of Adebayo's cascade), and the CAM variants whose channel
    weights are mostly positive (Grad-CAM++, Score-CAM): their maps are positive mixtures of
    feature maps, and even random convolutions respond most to a bright square, so these maps
    keep pointing at it."""
    model, x = task["model"], task["x"][:64]
    retrained = trained_cnn(task["x_train"], task["y_train"], seed=1)
    keras.utils.set_random_seed(2)
    randomised = keras.models.clone_model(model)
    new_head = keras.models.clone_model(model)
    new_head.set_weights(model.get_weights())
    logits = new_head.get_layer("logits")
    logits.kernel.assign(keras.initializers.GlorotUniform(seed=3)(logits.kernel.shape))
    print(
        f"\nmean Spearman correlation with the trained model's maps ({len(x)} square images; "
        "images with a constant map left out, counted in brackets)"
    )
    results = {}
    for name, method in viz.METHODS.items():
        maps = method(model, x, class_index=SQUARE)
        results[name] = {
            other: mean_rank_correlation(maps, method(variant, x, class_index=SQUARE))
            for other, variant in (
                ("retrained", retrained),
                ("random weights", randomised),
                ("random head", new_head),
            )
        }
        print(
            f"  {name:<11} "
            + "  ".join(
                f"{other} {value:+.2f} ({count})" for other, (value, count) in results[name].items()
            )
        )
    for name in ("gradcam", "saliency", "smoothgrad"):
        retrained, random_weights = (results[name][k][0] for k in ("retrained", "random weights"))
        assert random_weights < 0.3 and retrained > random_weights + 0.2, name
