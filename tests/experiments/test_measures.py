"""experiments/measures.py: magnitude pruning restores the weights, accuracy on arrays, and the
largest fall of validation accuracy."""

import numpy as np
import pytest


def _dense_model():
    import keras

    inputs = keras.Input((4,), name="image")
    hidden = keras.layers.Dense(8, name="fc1")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="logits")(hidden)
    return keras.Model(inputs, outputs)


def test_pruning_zeroes_the_smallest_weights_of_each_kernel_and_restores_them():
    from measures import pruned

    model = _dense_model()
    kernels = {
        layer: np.array(model.get_layer(layer).kernel.numpy()) for layer in ("fc1", "logits")
    }
    with pruned(model, 0.75, layer_names=["logits"]):
        inside = np.array(model.get_layer("logits").kernel.numpy())
        assert np.count_nonzero(inside == 0) == 18  # 75 % of 8 x 3
        kept = np.sort(np.abs(kernels["logits"]), axis=None)[-6:]
        np.testing.assert_allclose(np.sort(np.abs(inside[inside != 0])), kept)
        np.testing.assert_array_equal(model.get_layer("fc1").kernel.numpy(), kernels["fc1"])
    for layer, weights in kernels.items():
        np.testing.assert_array_equal(model.get_layer(layer).kernel.numpy(), weights)
    with pytest.raises(ValueError, match="layer_names"):
        with pruned(model, 0.5, layer_names=["nowhere"]):
            pass
    with pytest.raises(ValueError, match="fraction"):
        with pruned(model, 1.5):
            pass


def test_accuracy_and_pruned_accuracy_count_correct_predictions():
    from measures import accuracy, predictions, pruned_accuracy

    model = _dense_model()
    images = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    labels = predictions(model, images)
    labels[:3] = (labels[:3] + 1) % 3
    assert accuracy(model, images, labels) == pytest.approx(0.7)
    found = pruned_accuracy(model, images, labels, levels=(0.5,))
    assert list(found) == [0.0, 0.5] and found[0.0] == pytest.approx(0.7)


def test_a_run_that_diverged_in_its_first_epoch_counts_zero_there():
    from measures import first_epoch_accuracy

    runs = [{"val_accuracy": [0.7, 0.8]}, {"val_accuracy": []}]
    assert first_epoch_accuracy(runs) == [0.7, 0.0]


def test_largest_drop_is_the_worst_fall_below_an_earlier_best():
    from measures import largest_drop

    runs = [
        {"val_accuracy": [0.5, 0.8, 0.6, 0.7, 0.9], "diverged": False},
        {"val_accuracy": [0.5, 0.6, 0.7], "diverged": False},
        {"val_accuracy": [0.8], "diverged": True},  # its curve stops before the blow-up
        {"val_accuracy": [], "diverged": True},
    ]
    assert largest_drop(runs) == pytest.approx([0.2, 0.0, 1.0, 1.0])
