"""experiments/mlp_vs_cnn.py: shifting images, and a quick mode that measures size, accuracy,
time and accuracy under translation, with a report, results and figures."""

import os

import numpy as np
import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick

MODELS = ["mlp", "tiny_cnn", "simple_cnn"]


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("mlp_vs_cnn.py", quick_out)


def test_shift_moves_the_image_and_fills_the_border_with_zeros():
    from mlp_vs_cnn import shift_images

    images = np.arange(1, 26, dtype=np.uint8).reshape(1, 5, 5, 1)
    right = shift_images(images, 2, (0, 1))
    np.testing.assert_array_equal(right[0, :, 2:, 0], images[0, :, :3, 0])
    assert not right[0, :, :2].any()
    up = shift_images(images, 1, (-1, 0))
    np.testing.assert_array_equal(up[0, :4, :, 0], images[0, 1:, :, 0])
    assert not up[0, 4].any()
    assert shift_images(images, 0, (0, 1)) is images
    with pytest.raises(ValueError, match="pixels"):
        shift_images(images, 5, (1, 0))


def test_mnist_comes_first_and_options_are_checked():
    import mlp_vs_cnn

    assert mlp_vs_cnn.dataset_names(mlp_vs_cnn.parse_args([])) == ["mnist", "fashion_mnist"]
    assert mlp_vs_cnn.dataset_names(mlp_vs_cnn.parse_args(["--dataset", "mnist"])) == ["mnist"]
    assert mlp_vs_cnn.dataset_names(mlp_vs_cnn.parse_args(["--no-mnist"])) == ["fashion_mnist"]
    with pytest.raises(ValueError, match="--epochs"):
        mlp_vs_cnn.parse_args(["--epochs", "0"])
    with pytest.raises(ValueError, match="--max-shift"):
        mlp_vs_cnn.parse_args(["--max-shift", "-1"])


@pytest.mark.slow
def test_quick_mode_measures_size_accuracy_and_translation(results):
    assert_report(results, "experiments/mlp_vs_cnn.py")
    tables = results["results"]
    missing = tables["missing datasets"]
    datasets = ["fashion_mnist"] if "mnist" in missing else ["mnist", "fashion_mnist"]
    assert list(tables["runs"]) == datasets
    rows = tables["Size, accuracy and time"]
    assert [row["model"] for row in rows] == MODELS * len(datasets)
    assert [row["parameters"] for row in rows[:3]] == [101_770, 9_098, 421_642]
    for dataset in datasets:
        for model in MODELS:
            (run,) = tables["runs"][dataset][model]  # one seed in quick mode
            curve = run["shift_accuracy"]
            assert len(curve) == 7 and all(0 <= value <= 1 for value in curve)
            assert curve[0] == pytest.approx(run["test_accuracy"], abs=1e-6)
            assert run["train_seconds"] > 0 and run["images_per_second"] > 0
    shifted = tables["Test accuracy (%) on shifted test images"]
    assert list(shifted[0])[2:] == [f"{pixels} px" for pixels in range(7)]
    claims = {claim["claim"]: claim for claim in results["claims"]}
    assert (
        claims["The CNN has about 10K parameters, the MLP about 100K: ten times fewer"]["verdict"]
        == "holds"
    )
    if "mnist" in missing:
        assert "MNIST could not be loaded" in results["markdown"]
        assert claims["On MNIST, the MLP reaches 98%"]["verdict"] == "inconclusive"


@pytest.mark.slow
def test_quick_mode_writes_the_figures(results, quick_out):
    for name in ("mlp_vs_cnn.png", "translation.png", "shifts.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]


def _records(unshifted, shifted, max_shift=6):
    """Two seeds of every model, shift accuracy falling linearly from unshifted to shifted."""
    runs = {}
    for name, params in zip(MODELS, (101_770, 9_098, 421_642)):
        runs[name] = [
            {
                "params": params,
                "test_accuracy": a,
                "shift_accuracy": list(np.linspace(a, b, max_shift + 1)),
            }
            for a, b in zip(unshifted, shifted)
        ]
    return {"fashion_mnist": runs}


def _invariance_verdicts(unshifted, shifted):
    from mlp_vs_cnn import claims

    found = claims(_records(unshifted, shifted), {"mnist": "absent"}, 6)
    return {verdict for claim, verdict, _ in found if "invariant to translation" in claim}


def test_invariance_is_inconclusive_within_the_noise_and_fails_beyond_it():
    assert _invariance_verdicts([0.90, 0.90], [0.90, 0.90]) == {True}
    assert _invariance_verdicts([0.90, 0.80], [0.88, 0.78]) == {None}  # 2 points, spread 10
    assert _invariance_verdicts([0.90, 0.90], [0.50, 0.52]) == {False}


def test_the_course_accuracy_counts_the_seeds_spread():
    from mlp_vs_cnn import claims

    def verdict(accuracies):
        records = {"mnist": _records(accuracies, accuracies)["fashion_mnist"]}
        found = claims(records, {}, 6)
        return [v for claim, v, _ in found if claim.startswith("On MNIST, the MLP reaches")][0]

    assert verdict([0.985, 0.983]) is True
    assert verdict([0.99, 0.96]) is None  # the mean, 97.5 %, is within a 2-point spread
    assert verdict([0.95, 0.951]) is False
