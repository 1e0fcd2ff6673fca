"""`flip_averaged` against predictions combined by hand, saved and loaded, and
`train(test_time_flip=True)`."""

import keras
import numpy as np
import pytest

import kcnn
from kcnn.training import classification_loss, flip_averaged, train
from tests.training.conftest import FAST, patterns


def _classifier(activation):
    inputs = keras.Input((6, 5, 2))
    features = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    outputs = keras.layers.Dense(4, activation=activation)(keras.layers.Flatten()(features))
    return keras.Model(inputs, outputs, name="asymmetric")


def _softmax(x):
    exp = np.exp(x - x.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


IMAGES = np.random.default_rng(0).normal(size=(7, 6, 5, 2)).astype("float32")


def test_logits_are_averaged_then_softmaxed():
    model = _classifier(None)
    plain, mirrored = model.predict(IMAGES, verbose=0), model.predict(IMAGES[:, :, ::-1], verbose=0)
    assert not np.allclose(plain, mirrored)  # the test would not see a missing flip
    expected = _softmax((plain + mirrored) / 2)
    np.testing.assert_allclose(flip_averaged(model).predict(IMAGES, verbose=0), expected, atol=1e-6)


def test_probabilities_are_combined_by_their_geometric_mean():
    model = _classifier("softmax")
    plain, mirrored = model.predict(IMAGES, verbose=0), model.predict(IMAGES[:, :, ::-1], verbose=0)
    geometric = np.sqrt(plain * mirrored)
    expected = geometric / geometric.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(flip_averaged(model).predict(IMAGES, verbose=0), expected, atol=1e-6)


def _ends_in_a_softmax_layer():
    inputs = keras.Input((6, 5, 2))
    scores = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Softmax()(scores), name="softmax_layer")


def _ends_in_a_head_model():
    scores = keras.Input((4,))
    head = keras.Model(scores, keras.layers.Activation("softmax")(scores), name="head")
    images = keras.Input((6, 5, 2))
    return keras.Model(images, head(keras.layers.Dense(4)(keras.layers.Flatten()(images))))


@pytest.mark.parametrize("build", [_ends_in_a_softmax_layer, _ends_in_a_head_model])
def test_a_softmax_layer_or_a_nested_head_counts_as_probabilities(build):
    # Taken for logits, their probabilities would be softmaxed again, and the loss built with
    # from_logits=True.
    model = build()
    assert classification_loss(model).get_config()["from_logits"] is False
    plain, mirrored = model.predict(IMAGES, verbose=0), model.predict(IMAGES[:, :, ::-1], verbose=0)
    geometric = np.sqrt(plain * mirrored)
    expected = geometric / geometric.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(flip_averaged(model).predict(IMAGES, verbose=0), expected, atol=1e-6)


def test_the_view_is_mirror_invariant_and_shares_the_weights():
    model = _classifier(None)
    view = flip_averaged(model)
    assert len(view.weights) == len(model.weights)
    before = view.predict(IMAGES, verbose=0)
    np.testing.assert_allclose(view.predict(IMAGES[:, :, ::-1], verbose=0), before, atol=1e-6)
    model.layers[-1].bias.assign(np.arange(4, dtype="float32"))
    assert not np.allclose(view.predict(IMAGES, verbose=0), before)


def test_the_view_saves_and_loads(tmp_path):
    view = flip_averaged(_classifier("softmax"))
    view.save(tmp_path / "view.keras")
    loaded = kcnn.load_model(tmp_path / "view.keras", compile=False)
    np.testing.assert_allclose(
        loaded.predict(IMAGES, verbose=0), view.predict(IMAGES, verbose=0), atol=1e-6
    )


def test_the_view_fits_the_classification_loss():
    view = flip_averaged(_classifier(None))
    assert classification_loss(view).get_config()["from_logits"] is False


def test_bad_models_are_refused():
    with pytest.raises(ValueError, match="ends in a 'sigmoid' activation"):
        flip_averaged(_classifier("sigmoid"))
    inputs = keras.Input((8,))
    flat = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="flat")
    with pytest.raises(ValueError, match="must take one batch of 2-D images"):
        flip_averaged(flat)


def test_train_evaluates_the_test_split_with_mirror_images(pattern_data):
    result = train(
        "tiny_cnn", pattern_data, epochs=2, test_time_flip=True, label_smoothing=0.1, **FAST
    )
    assert result.test_time_flip and "(with mirror images)" in result.summary()
    images, labels = patterns(30, 1)
    probabilities = flip_averaged(result.model).predict(images.astype("float32"), verbose=0)
    accuracy = np.mean(probabilities.argmax(axis=-1) == labels)
    assert result.test_metrics["accuracy"] == pytest.approx(accuracy)
    alone = np.mean(result.model.predict(images, verbose=0).argmax(axis=-1) == labels)
    assert result.single_view_test_metrics["accuracy"] == pytest.approx(alone)
    assert "without them" in result.summary()
