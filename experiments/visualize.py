"""What did a CNN learn, and do the course's visualisations show it?

The course (chapter 07, sections 1.3 and 8, Listings 7-9) claims that the first layer "detects
edges, contours, gradients", that successive layers detect features of increasing complexity
(a hierarchy from low to high level), and that Grad-CAM shows which regions of the image
influence the prediction. It draws conv1's filters (Listing 7), the feature maps of a layer
(Listing 8) and a "simplified Grad-CAM" (Listing 9) that takes the gradients at the input
instead of the last convolution.

A three-stage version of the course's Listing 1 CNN (`configurable_cnn`, filters
``--filters``) is trained per seed, then measured:

1. conv1's filters against the classic ones: the share of each 3x3 kernel's zero-mean energy
   that lies in the span of the course's vertical and horizontal edge filters (gradients in any
   direction) and the Laplacian (contours) of `kcnn.models.CLASSIC_FILTERS` -- 1 for those, 8/9
   for Sobel -- against the same share for the initial weights and for random kernels of the
   same initializer (3 of the 8 zero-mean directions: 3/8 expected by chance).
2. The hierarchy: a linear probe (softmax regression, Alain & Bengio 2016) trained on each
   stage's globally averaged feature maps; the test accuracy it reaches says how directly the
   features of that depth give the class.
3. The explanations (`kcnn.viz`: Grad-CAM, Grad-CAM++, Score-CAM, saliency, SmoothGrad, and the
   course's Listing 9) on correctly and wrongly classified test images, by the perturbation
   test of Samek et al. ("Evaluating the visualization of what a deep neural network has
   learned", IEEE TNNLS 2017): replacing by uniform noise the 10 % of pixels a map ranks
   highest ("most relevant first") must lower the predicted class's probability more than
   replacing the 10 % it ranks lowest ("least relevant first"); 10 % random pixels are shown
   too. Noise rather than the black background, so that a map pointing at the background (the
   *absence* of pixels below a sneaker) is tested too. Also the share of the map's mass on
   the object (pixels > 0.1).

Writes ``report.md`` (command, hardware, time, tables, one verdict per claim),
``results.json``, ``filters.png`` (conv1 before and after training), ``feature_maps.png``
(three depths, for one test image), ``explanations_correct.png`` and ``explanations_wrong.png``
(every method on test images), and saves the trained model of seed 0.

Example:
    python experiments/visualize.py --quick
    python experiments/visualize.py             # full: about 15 minutes on 2 CPU cores
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

from common import (
    ACCURACY_FLOOR,
    add_plan_option,
    dataset_splits,
    fill_from_plan,
    open_report,
    parser,
    pct,
    positive,
    run,
    run_progress,
    values,
    write_report,
)

MODEL = "configurable_cnn"
METHODS = ("gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad", "listing9")
EDGE_FILTERS = ("vertical_edge", "horizontal_edge", "laplacian")
PERTURBED = 0.10  # share of the pixels the perturbation test replaces by noise
OBJECT = 25  # pixels brighter than this (of 255) are the object; Fashion-MNIST's background is 0
RANDOM_DRAWS = 5  # random perturbations per image for the baseline
NULL_DRAWS = 1000  # random initialisations of conv1 for the chance level of the filter measure
PROBABILITY_FLOOR = 0.02  # falls of probability under 2 points are not called a difference
QUICK = dict(
    train_size=3000,
    validation_size=500,
    test_size=2000,
    epochs=2,
    seeds=1,
    explained=8,
    probe_size=2000,
)
FULL = dict(
    train_size=None,
    validation_size=1000,
    test_size=None,
    epochs=5,
    seeds=2,
    explained=100,
    probe_size=10000,
)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "visualize")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    result.add_argument(
        "--filters",
        type=int,
        nargs=3,
        default=(32, 64, 128),
        metavar="N",
        help="filters of the three stages (default 32 64 128)",
    )
    add_plan_option(
        result,
        "--explained",
        QUICK,
        FULL,
        "correctly and wrongly classified test images explained, each",
        type=int,
    )
    add_plan_option(
        result, "--probe-size", QUICK, FULL, "training images of the linear probes", type=int
    )
    result.add_argument(
        "--model-path",
        help="where to save the trained model of seed 0 (default "
        "saved_models/visualize_<dataset>.keras; quick: in --out)",
    )
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("epochs", "seeds", "explained", "probe_size"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    if args.model_path is None:
        args.model_path = (
            os.path.join(args.out, "model.keras")
            if args.quick
            else os.path.join("saved_models", f"visualize_{args.dataset}.keras")
        )
    return args


def stage_layers(filters) -> list[str]:
    """The convolution of each stage: the feature maps at three depths."""
    return [f"stage{i}_conv" for i in range(1, len(filters) + 1)]


# 1. conv1's filters


def edge_basis() -> np.ndarray:
    """Orthonormal rows spanning the zero-mean parts of the edge, gradient and contour filters
    (`EDGE_FILTERS`): the vertical and horizontal edge filters, whose combinations are the
    gradients in every direction, and the Laplacian."""
    from kcnn.models import classic_kernel

    vectors = np.stack([classic_kernel(name).ravel() for name in EDGE_FILTERS])
    vectors = vectors - vectors.mean(axis=1, keepdims=True)
    basis, _ = np.linalg.qr(vectors.T)
    return basis.T


def _per_filter(kernels: np.ndarray) -> np.ndarray:
    """(3, 3, channels, filters) kernels as (filters, channels, 9) vectors."""
    height, width, channels, filters = kernels.shape
    return np.transpose(kernels, (3, 2, 0, 1)).reshape(filters, channels, height * width)


def edge_share(kernels: np.ndarray) -> np.ndarray:
    """Per filter of ``kernels`` (3, 3, channels, filters): the share of its zero-mean energy
    (summed over input channels) in the span of `edge_basis` -- 1 for the edge filters and the
    Laplacian, 8/9 for Sobel's, 3/8 on average for random ones."""
    vectors = _per_filter(kernels)
    centred = vectors - vectors.mean(axis=-1, keepdims=True)
    inside = ((centred @ edge_basis().T) ** 2).sum(axis=(1, 2))
    energy = (centred**2).sum(axis=(1, 2))
    return inside / np.where(energy > 0, energy, 1)


def dc_share(kernels: np.ndarray) -> np.ndarray:
    """Per filter: the share of its energy in its mean over the window, summed over input
    channels (1 for a blur, 0 for an edge detector, 1/9 on average for random ones)."""
    vectors = _per_filter(kernels)
    mean_energy = vectors.shape[-1] * (vectors.mean(axis=-1) ** 2).sum(axis=1)
    return mean_energy / np.maximum((vectors**2).sum(axis=(1, 2)), 1e-12)


def chance_edge_share(conv, draws: int, seed: int) -> list[float]:
    """The mean `edge_share` of ``draws`` fresh initialisations of the layer ``conv`` by its own
    initializer: the chance level of the trained layer's mean."""
    import keras

    initializer = conv.kernel_initializer
    config = initializer.get_config()
    shape = tuple(conv.kernel.shape)
    return [
        float(
            edge_share(
                keras.ops.convert_to_numpy(
                    type(initializer).from_config({**config, "seed": seed + i})(shape)
                )
            ).mean()
        )
        for i in range(draws)
    ]


def initial_kernel(layer: str):
    """A Keras callback that keeps a copy of ``layer``'s kernel as training begins
    (``.kernel``)."""
    import keras

    class InitialKernel(keras.callbacks.Callback):
        kernel = None

        def on_train_begin(self, logs=None):
            self.kernel = keras.ops.convert_to_numpy(self.model.get_layer(layer).kernel)

    return InitialKernel()


# 2. the hierarchy


def probe_accuracies(model, layers, train, test, seed: int) -> dict:
    """Test accuracy of a linear softmax probe on each layer's globally averaged feature maps.

    Args:
        model: the trained model (it takes raw pixels in [0, 255], as every kcnn model).
        layers: the feature-map layers probed.
        train, test: ``(uint8 images, labels)`` to fit and to score the probes.
        seed: seeds the probes' initialisation and shuffling.
    """
    import keras

    pooled = keras.Model(
        model.inputs,
        [
            keras.layers.GlobalAveragePooling2D(name=f"{n}_probe_pool")(model.get_layer(n).output)
            for n in layers
        ],
    )
    features = {
        part: pooled.predict(images.astype("float32"), batch_size=256, verbose=0)
        for part, (images, _) in (("train", train), ("test", test))
    }
    classes = int(max(train[1].max(), test[1].max())) + 1
    result = {}
    for index, name in enumerate(layers):
        x_train, x_test = features["train"][index], features["test"][index]
        mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
        keras.utils.set_random_seed(seed)
        probe = keras.Sequential(
            [
                keras.Input((x_train.shape[1],)),
                keras.layers.Dense(classes, activation="softmax", name="probe"),
            ]
        )
        probe.compile(
            keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        probe.fit((x_train - mean) / std, train[1], epochs=30, batch_size=256, verbose=0)
        result[name] = float(probe.evaluate((x_test - mean) / std, test[1], verbose=0)[1])
    return result


# 3. the explanations


def listing9(model, images) -> tuple[np.ndarray, np.ndarray]:
    """The course's Listing 9 ("Grad-CAM simplifié"), as written: the gradient of the
    predicted class's logit with respect to the *input*, averaged over the image per input
    channel, weights the input's channels; ReLU; scaled to [0, 1] by min and max.

    Returns:
        ``(maps, empty)``: maps (N, H, W); ``empty`` marks the maps that are constant, where the
        listing divides by zero (NaN); they are returned as zeros.
    """
    import keras
    import tensorflow as tf

    logits_model = keras.Model(model.inputs, model.get_layer("logits").output)
    x = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = logits_model(x, training=False)
        score = tf.gather(logits, tf.argmax(logits, axis=-1), batch_dims=1)
    gradients = tape.gradient(score, x).numpy()
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * images).sum(axis=-1), 0)
    low, high = cam.min(axis=(1, 2), keepdims=True), cam.max(axis=(1, 2), keepdims=True)
    empty = (high - low)[:, 0, 0] == 0
    return np.where(high > low, (cam - low) / np.where(high > low, high - low, 1), 0), empty


def explain(model, images, method: str) -> np.ndarray:
    """Maps (N, H, W) of ``method`` (a `kcnn.viz.METHODS` name, or ``"listing9"``) for the
    predicted classes."""
    from kcnn import viz

    if method == "listing9":
        return listing9(model, images)[0]
    return viz.METHODS[method](model, images)


def predict(model, images) -> np.ndarray:
    return model.predict(images, batch_size=256, verbose=0)


def perturbation(model, images, maps, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The perturbation test: per image, how much the predicted class's probability falls when
    the `PERTURBED` share of the pixels is replaced by uniform noise in [0, 255] (one noise image
    per image, the same for the three choices): the pixels ``maps`` ranks highest (most
    relevant first), those it ranks lowest (least relevant first), and random ones (mean of
    `RANDOM_DRAWS` draws). Ties are broken at random.

    Returns:
        ``(most relevant first, least relevant first, random)`` falls, one value per image.
    """
    count, height, width, channels = images.shape
    pixels = height * width
    replaced = max(1, round(PERTURBED * pixels))
    probabilities = predict(model, images)
    classes = probabilities.argmax(axis=-1)
    before = probabilities[np.arange(count), classes]

    rows = np.arange(count)[:, None]
    noise = 255 * rng.random((count, pixels, channels), dtype="float32")

    def fall(chosen):
        flat = images.reshape(count, pixels, channels).copy()
        flat[rows, chosen] = noise[rows, chosen]
        after = predict(model, flat.reshape(images.shape))[np.arange(count), classes]
        return before - after

    # maps lie in [0, 1]: a random key 1e-7 times smaller only breaks ties
    keys = maps.reshape(count, pixels) + 1e-7 * rng.random((count, pixels))
    most = np.argsort(-keys, axis=1)[:, :replaced]
    least = np.argsort(keys, axis=1)[:, :replaced]
    draws = [
        fall(np.argsort(rng.random((count, pixels)), axis=1)[:, :replaced])
        for _ in range(RANDOM_DRAWS)
    ]
    return fall(most), fall(least), np.mean(draws, axis=0)


def object_mass(images, maps) -> np.ndarray:
    """Per image: the share of the map's mass on the object's pixels."""
    inside = images.max(axis=-1) > OBJECT
    total = maps.sum(axis=(1, 2))
    return np.where(total > 0, (maps * inside).sum(axis=(1, 2)) / np.where(total > 0, total, 1), 0)


def image_correlation(images, maps) -> np.ndarray:
    """Per image: Pearson's correlation between the map and the grey-level image (nan for a
    constant map)."""
    grey = images.mean(axis=-1).reshape(len(images), -1)
    flat = maps.reshape(len(maps), -1)
    grey = grey - grey.mean(axis=1, keepdims=True)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(grey, axis=1) * np.linalg.norm(flat, axis=1)
    return np.where(norms > 0, (grey * flat).sum(axis=1) / np.where(norms > 0, norms, 1), np.nan)


def explained_images(model, test, count: int) -> dict:
    """The first ``count`` correctly and wrongly classified test images, as float32 pixels in
    [0, 255], with their labels and predicted probabilities."""
    images, labels = test
    images = images.astype("float32")
    probabilities = predict(model, images)
    predicted = probabilities.argmax(axis=-1)
    groups = {}
    for name, mask in (("correct", predicted == labels), ("wrong", predicted != labels)):
        chosen = np.flatnonzero(mask)[:count]
        groups[name] = {
            "images": images[chosen],
            "labels": labels[chosen],
            "predicted": predicted[chosen],
            "confidence": probabilities[chosen, predicted[chosen]],
        }
    return groups


def measure_explanations(model, groups, seed: int) -> tuple[dict, dict]:
    """Every method on both groups: the perturbation test, the mass on the object, the time per
    image, and for Listing 9 how often its map is the image itself or empty.

    Returns:
        ``(measures, maps)``: ``measures[group][method]`` is a dict of numbers; ``maps`` the
        maps of each group and method, for the figures.
    """
    rng = np.random.default_rng(seed)
    measures, maps = {}, {}
    for group, data in groups.items():
        images = data["images"]
        measures[group], maps[group] = {}, {}
        if not len(images):
            continue
        for method in METHODS:
            start = time.perf_counter()
            found = explain(model, images, method)
            seconds = (time.perf_counter() - start) / len(images)
            most, least, at_random = perturbation(model, images, found, rng)
            measures[group][method] = {
                "fall": float(most.mean()),
                "least relevant fall": float(least.mean()),
                "random fall": float(at_random.mean()),
                "object mass": float(object_mass(images, found).mean()),
                "uniform object mass": float((images.max(axis=-1) > OBJECT).mean()),
                "seconds per image": seconds,
            }
            if method == "listing9":
                _, empty = listing9(model, images)
                correlation = image_correlation(images, found)
                measures[group][method]["empty"] = float(empty.mean())
                measures[group][method]["image itself"] = float(np.mean(correlation > 0.99))
            maps[group][method] = found
    return measures, maps


# figures


def plot_kernels(model, layer, kernel, title, path) -> str:
    """conv1's filters as `kcnn.viz.plot_filters` draws them, for ``kernel`` (e.g. the initial
    one) put into a copy of ``model``."""
    import keras

    from kcnn import viz

    copy = keras.models.clone_model(model)
    copy.get_layer(layer).kernel.assign(kernel)
    figure = viz.plot_filters(copy, layer)
    figure.suptitle(title, fontsize=10)
    return viz.save_figure(figure, path)


def plot_methods(data, maps, class_names, path, rows: int = 4) -> str | None:
    """One row per image (at most ``rows``): the image, then every method's map over it."""
    from matplotlib.figure import Figure

    from kcnn import viz

    shown = min(rows, len(data["images"]))
    if not shown:
        return None
    figure = Figure(figsize=(1.6 * (len(METHODS) + 1), 1.8 * shown + 0.4))
    axes = figure.subplots(shown, len(METHODS) + 1, squeeze=False)
    for row in range(shown):
        image = data["images"][row]
        truth, guess = class_names[data["labels"][row]], class_names[data["predicted"][row]]
        axes[row, 0].imshow(
            image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1
        )
        axes[row, 0].set_title(
            f"true {truth}\npred. {guess} {data['confidence'][row]:.2f}", fontsize=7
        )
        for column, method in enumerate(METHODS, start=1):
            axes[row, column].imshow(viz.overlay(image, maps[method][row]))
            if not maps[method][row].any():
                axes[row, column].text(
                    0.5,
                    0.05,
                    "empty map",
                    color="white",
                    ha="center",
                    fontsize=7,
                    transform=axes[row, column].transAxes,
                )
            if row == 0:
                axes[row, column].set_title(method, fontsize=8)
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    return viz.save_figure(figure, path)


# the report


def summary_rows(records, layers, receptive) -> dict:
    """The report's tables, mean ± std over seeds."""
    model_rows = [
        {
            "parameters": records[0]["params"],
            "test accuracy %": pct(values(records, "test_accuracy")),
            "train accuracy %": pct(values(records, "train_accuracy")),
            "train images/s": round(statistics.mean(values(records, "images_per_second"))),
        }
    ]
    filter_rows = [
        {
            "conv1 kernels": "trained",
            "edge/gradient share": pct(values(records, "edge_share")),
            "mean share": pct(values(records, "dc_share")),
        },
        {
            "conv1 kernels": "initial (same seeds)",
            "edge/gradient share": pct(values(records, "initial_edge_share")),
            "mean share": pct(values(records, "initial_dc_share")),
        },
        {
            "conv1 kernels": f"random ({NULL_DRAWS} draws of the initializer)",
            "edge/gradient share": pct(records[0]["chance_edge_share"]),
            "mean share": "-",
        },
    ]
    depth_rows = [
        {
            "layer": name,
            "feature maps": "x".join(str(d) for d in records[0]["shapes"][name]),
            "receptive field (px)": receptive[name],
            "linear probe test accuracy %": pct([r["probes"][name] for r in records]),
        }
        for name in layers
    ]
    explanation_rows = []
    for group in ("correct", "wrong"):
        for method in METHODS:
            runs = [
                r["explanations"][group][method]
                for r in records
                if method in r["explanations"].get(group, {})
            ]
            if not runs:
                continue
            explanation_rows.append(
                {
                    "images": f"{group} ({records[0]['explained'][group]})",
                    "method": method,
                    "fall, most relevant 10 % replaced": pct([r["fall"] for r in runs]),
                    "least relevant 10 %": pct([r["least relevant fall"] for r in runs]),
                    "random 10 %": pct([r["random fall"] for r in runs]),
                    "map mass on the object %": pct([r["object mass"] for r in runs]),
                    "uniform map %": pct([r["uniform object mass"] for r in runs]),
                    "ms per image": round(
                        1000 * statistics.mean(r["seconds per image"] for r in runs), 1
                    ),
                }
            )
    return {
        "model": model_rows,
        "filters": filter_rows,
        "depths": depth_rows,
        "explanations": explanation_rows,
    }


def claims(records, layers) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for the course's claims."""
    from kcnn.report import compare

    trained, chance = values(records, "edge_share"), records[0]["chance_edge_share"]
    found = [
        (
            "The first layer detects edges, contours and gradients: conv1's kernels lie in the "
            "span of the edge and Laplacian filters more than random kernels do",
            compare(trained, chance),
            f"edge/gradient share of the zero-mean energy: trained {pct(trained)} %, initial "
            f"{pct(values(records, 'initial_edge_share'))} %, random {pct(chance)} %",
        )
    ]
    probes = [[r["probes"][name] for r in records] for name in layers]
    steps = [
        compare(deeper, shallower, ACCURACY_FLOOR) for shallower, deeper in zip(probes, probes[1:])
    ]
    verdict = False if False in steps else (True if all(steps) else None)
    found.append(
        (
            "Successive layers detect features of increasing level: a linear probe on deeper "
            "features classifies better",
            verdict,
            ", ".join(f"{name} {pct(p)} %" for name, p in zip(layers, probes)),
        )
    )
    for group, words in (("correct", "correctly"), ("wrong", "wrongly")):
        runs = [
            r["explanations"][group]["gradcam"]
            for r in records
            if "gradcam" in r["explanations"].get(group, {})
        ]
        if runs:
            falls, least = [r["fall"] for r in runs], [r["least relevant fall"] for r in runs]
            found.append(
                (
                    f"Grad-CAM shows the regions the prediction rests on ({words} classified "
                    "images): replacing the 10 % of pixels it ranks highest by noise lowers the "
                    "predicted probability more than replacing the 10 % it ranks lowest",
                    compare(falls, least, PROBABILITY_FLOOR),
                    f"fall {pct(falls)} vs {pct(least)} points (random pixels: "
                    f"{pct([r['random fall'] for r in runs])})",
                )
            )
    runs = [
        r["explanations"]["correct"]["listing9"]
        for r in records
        if "listing9" in r["explanations"].get("correct", {})
    ]
    if runs:
        itself = statistics.mean(r["image itself"] + r["empty"] for r in runs)
        falls, least = [r["fall"] for r in runs], [r["least relevant fall"] for r in runs]
        verdict = False if itself >= 0.9 else compare(falls, least, PROBABILITY_FLOOR)
        found.append(
            (
                "The course's simplified Grad-CAM (Listing 9) shows the regions the prediction "
                "rests on",
                verdict,
                f"its map is the input image itself (correlation > 0.99) for "
                f"{pct([r['image itself'] for r in runs])} % of the images and empty (0/0 in the "
                f"listing) for {pct([r['empty'] for r in runs])} % (correctly classified images); "
                f"fall with its most relevant 10 % replaced by noise {pct(falls)} vs least "
                f"relevant {pct(least)} points",
            )
        )
    return found


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "What a CNN learned: filters, feature maps, explanations")
    from kcnn import convmath
    from kcnn.files import save_model

    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    layers = stage_layers(args.filters)
    model_kwargs = {"filters": tuple(args.filters), "fc_units": 128, "dropout": 0.5}
    probe_train = (splits.train[0][: args.probe_size], splits.train[1][: args.probe_size])
    records, start, figures = [], time.perf_counter(), []
    progress = run_progress(args.seeds, [MODEL])
    for seed in range(args.seeds):
        progress.step(f"seed {seed}")
        snapshot = initial_kernel(layers[0])
        record = run(
            MODEL,
            splits,
            args.epochs,
            seed,
            model_kwargs=model_kwargs,
            precision=args.precision,
            callbacks=[snapshot],
            keep_model=True,
        )
        model = record.pop("model")
        kernel = model.get_layer(layers[0]).kernel.numpy()
        record.update(
            edge_share=float(edge_share(kernel).mean()),
            dc_share=float(dc_share(kernel).mean()),
            initial_edge_share=float(edge_share(snapshot.kernel).mean()),
            initial_dc_share=float(dc_share(snapshot.kernel).mean()),
            shapes={n: list(model.get_layer(n).output.shape[1:]) for n in layers},
            probes=probe_accuracies(model, layers, probe_train, splits.test, seed),
        )
        groups = explained_images(model, splits.test, args.explained)
        record["explained"] = {g: len(d["images"]) for g, d in groups.items()}
        record["explanations"], maps = measure_explanations(model, groups, seed)
        if seed == 0:
            record["chance_edge_share"] = chance_edge_share(
                model.get_layer(layers[0]), NULL_DRAWS, seed=1000
            )
            receptive = {n: convmath.receptive_field(model)[n].size[0] for n in layers}
            save_model(model, args.model_path)
            figures += _figures(
                args, model, layers, snapshot.kernel, groups, maps, splits.class_names
            )
        records.append({"seed": seed, **record})
        print(
            f"[{time.perf_counter() - start:6.0f} s] seed {seed}: test "
            f"{record['test_accuracy']:.4f}, edge share {record['edge_share']:.3f}, probes "
            + ", ".join(f"{v:.3f}" for v in record["probes"].values()),
            flush=True,
        )

    for claim, verdict, evidence in claims(records, layers):
        report.claim(claim, verdict, evidence)
    tables = summary_rows(records, layers, receptive)
    report.text(
        f"Data: {splits.describe()}. CIFAR-10 is not on this machine (no network), so the "
        "experiment runs on the dataset given by `--dataset`.\n\n"
        f"Model: `{MODEL}` with filters {'-'.join(map(str, args.filters))} (the course's "
        f"Listing 1 with a third stage), Dense 128, dropout 0.5; Adam 1e-3, batch 128, "
        f"{args.epochs} epochs, precision `{args.precision}`, seeds 0-{args.seeds - 1} (mean ± "
        f"std over seeds; figures from seed 0, whose model is saved as `{args.model_path}`)."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("The model", tables["model"])
    report.text(
        "conv1's kernels: *edge/gradient share* is the share of each kernel's zero-mean energy "
        f"in the span of {', '.join(EDGE_FILTERS)} (`kcnn.models.classic_kernel`: gradients in "
        "every direction and the Laplacian; Sobel's filters have 8/9 of theirs in it), averaged "
        "over the filters; random kernels give 3/8. *Mean share* is the share of the energy in "
        "the kernel's mean (a blur: 1, an edge filter: 0, random: 1/9)."
    )
    report.table("conv1's filters against the classic filters", tables["filters"])
    report.table("Three depths: feature maps and linear probes", tables["depths"])
    report.text(
        f"Perturbation test on the first {args.explained} correctly and wrongly classified "
        "test images: the fall of the predicted class's probability (points) when the 10 % of "
        "pixels a method ranks highest are replaced by uniform noise, against the 10 % it ranks "
        f"lowest, and 10 % random pixels (mean of {RANDOM_DRAWS} draws; scattered noise costs "
        "more than a compact patch, so compare a method's first two columns). *map mass on the "
        f"object*: the share of the map on the object's pixels (brightness > {OBJECT}; a "
        "uniform map gives the object's area)."
    )
    report.table("Explanations", tables["explanations"])
    for path, caption in figures:
        report.figure(path, caption)
    report.results["runs"] = records
    return write_report(report, args.out)


def _figures(args, model, layers, initial, groups, maps, class_names) -> list[tuple[str, str]]:
    """The figures of seed 0, as ``(path, caption)``."""
    from kcnn.viz import plot_feature_maps, plot_filters, save_figure

    out = args.out
    found = [
        (
            save_figure(plot_filters(model, layers[0]), os.path.join(out, "filters.png")),
            "conv1's filters after training (Listing 7; grey scale centred on 0)",
        ),
        (
            plot_kernels(
                model,
                layers[0],
                initial,
                f"{layers[0]} before training",
                os.path.join(out, "filters_initial.png"),
            ),
            "conv1's filters before training, same scale convention",
        ),
    ]
    if len(groups["correct"]["images"]):
        figure = plot_feature_maps(model, groups["correct"]["images"][0], layers)
        found.append(
            (
                save_figure(figure, os.path.join(out, "feature_maps.png")),
                "the 8 strongest feature maps at each depth for a test image (Listing 8)",
            )
        )
    for group in ("correct", "wrong"):
        path = plot_methods(
            groups[group], maps[group], class_names, os.path.join(out, f"explanations_{group}.png")
        )
        if path:
            found.append(
                (
                    path,
                    f"every method on {group}ly classified test images (predicted class explained)",
                )
            )
    return found


if __name__ == "__main__":
    sys.exit(main())
