"""The limits of CNNs the course states: not invariant to rotation and scale, and sensitive to
adversarial examples.

The course (chapter 07, section 11.2, "Limites"): CNNs are "not invariant to rotations/scales
(data augmentation needed)" and "sensitive to adversarial examples (imperceptible
perturbations)". The adversarial perturbation measured is the fast gradient sign method (FGSM,
Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015):
``x + ε sign(∇x loss)``, on the model's raw 0-255 input, clipped to [0, 255].

Listing 1's CNN (`configurable_cnn` with its defaults) is trained twice on the same data, seeds
and budget (Adam 1e-3): without augmentation, and with random rotations (up to ±180°) and zooms
(±40 %) — Keras's ``RandomRotation`` and ``RandomZoom`` through `kcnn.data.make_dataset`. Then
on the test images: the accuracy against the rotation angle and against the scale factor
(about the image centre, the uncovered border black, `keras.ops.image.affine_transform`), and,
for the model without augmentation, the accuracy and the share of predictions changed against
FGSM's ε in pixel levels, against a random ±ε perturbation of the same size (a control: is it
the direction or the size?), and the ε at which half the predictions flip. A difference counts
only beyond the seeds' spread (`kcnn.report.compare`).

Writes ``report.md``, ``results.json``, ``invariance.png`` (accuracy against angle and scale,
with and without augmentation), ``adversarial.png`` (accuracy and predictions flipped against
ε) and ``examples.png`` (one test image rotated, scaled and perturbed).

Example:
    python experiments/limits.py --quick
    python experiments/limits.py --seeds 3
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np
from measures import accuracy, predictions

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
    write_report,
)

MODEL = "configurable_cnn"
ANGLES = (0, 15, 30, 45, 90, 180)  # degrees
SCALES = (0.6, 0.8, 1.0, 1.2, 1.4)
EPSILONS = (0, 1, 2, 4, 8, 16, 32)  # pixel levels of 0-255
ROTATION, ZOOM = 0.5, 0.4  # augmentation: RandomRotation's fraction of 2π, RandomZoom's factor
CLAIM_ANGLE, CLAIM_SCALES, CLAIM_EPSILON = 45, (0.6, 1.4), 8
QUICK = dict(train_size=300, validation_size=100, test_size=300, epochs=1, seeds=1)
FULL = dict(train_size=20000, validation_size=1000, test_size=None, epochs=10, seeds=3)


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "limits")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", type=int)
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("train_size", "epochs", "seeds"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    return args


def augmentation(seed: int) -> list:
    """Random rotations (±180°) and zooms (±40 %), black outside the image.

    Each layer has its own seed: two Keras random layers given the same seed draw the same
    numbers, which would make every zoom a function of the angle (no upright image ever
    shrunk or enlarged)."""
    from keras import layers

    return [
        layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed, name="augment_rotation"),
        layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed + 1, name="augment_zoom"),
    ]


def transform(images, angle: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """``images`` (N, H, W, C) rotated by ``angle`` degrees (counter-clockwise) and scaled by
    ``scale`` about their centre (bilinear; what leaves the frame is lost, the uncovered border
    is black).

    Raises:
        ValueError: for a scale that is not positive.
    """
    import keras

    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    images = np.asarray(images, dtype="float32")
    if angle % 360 == 0 and scale == 1.0:
        return images
    height, width = images.shape[1:3]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    cos, sin = math.cos(math.radians(angle)) / scale, math.sin(math.radians(angle)) / scale
    # affine_transform maps each output pixel (x, y) to the input pixel it reads
    a0, a1, b0, b1 = cos, -sin, sin, cos
    matrix = [a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, 0.0, 0.0]
    result = keras.ops.image.affine_transform(
        images,
        np.array([matrix] * len(images), dtype="float32"),
        interpolation="bilinear",
        fill_mode="constant",
        fill_value=0,
    )
    return keras.ops.convert_to_numpy(result)


def input_gradient_sign(model, images, labels) -> np.ndarray:
    """``sign(∇x loss)`` of ``model``'s cross-entropy on its raw 0-255 input (FGSM's step)."""
    import keras
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, dtype="float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = keras.losses.sparse_categorical_crossentropy(labels, model(x, training=False))
    return keras.ops.convert_to_numpy(keras.ops.sign(tape.gradient(loss, x)))


def fgsm_curve(model, images, labels, seed: int) -> dict:
    """Per ε of `EPSILONS`: accuracy and predictions changed under FGSM and under a random ±ε
    perturbation; and ``half_flip``, the ε at which half the predictions change (linear
    interpolation between the ε measured; None beyond the largest)."""
    images = np.asarray(images, dtype="float32")
    sign = np.concatenate(
        [
            input_gradient_sign(model, images[i : i + 256], labels[i : i + 256])
            for i in range(0, len(images), 256)
        ]
    )
    noise = np.random.default_rng(seed).choice([-1.0, 1.0], size=images.shape)
    clean = predictions(model, images)
    result = {"fgsm_accuracy": [], "fgsm_flipped": [], "random_accuracy": [], "random_flipped": []}
    for epsilon in EPSILONS:
        for kind, direction in (("fgsm", sign), ("random", noise)):
            predicted = predictions(model, np.clip(images + epsilon * direction, 0, 255))
            result[f"{kind}_accuracy"].append(float(np.mean(predicted == labels)))
            result[f"{kind}_flipped"].append(float(np.mean(predicted != clean)))
    result["half_flip"] = crossing(EPSILONS, result["fgsm_flipped"], 0.5)
    return result


def crossing(xs, ys, level: float) -> float | None:
    """The first x at which the piecewise-linear curve ``ys`` reaches ``level`` (None if never)."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 < level <= y1:
            return x0 + (level - y0) * (x1 - x0) / (y1 - y0)
    return xs[0] if ys and ys[0] >= level else None


def measure(model, splits, seed: int, adversarial: bool) -> dict:
    """Accuracy against angle and scale (and FGSM's curve when ``adversarial``)."""
    images, labels = splits.test
    result = {
        "angle_accuracy": [accuracy(model, transform(images, angle=a), labels) for a in ANGLES],
        "scale_accuracy": [accuracy(model, transform(images, scale=s), labels) for s in SCALES],
    }
    if adversarial:
        result.update(fgsm_curve(model, images, labels, seed))
    return result


def train_all(args, splits) -> dict:
    records = {"plain": [], "augmented": []}
    start = time.perf_counter()
    progress = run_progress(args.seeds, records)
    for seed in range(args.seeds):
        for name in records:
            progress.step(f"seed {seed}, {name}")
            record = run(
                MODEL,
                splits,
                args.epochs,
                seed,
                precision=args.precision,
                augment=augmentation(seed) if name == "augmented" else None,
                keep_model=True,
            )
            record.update(measure(record.pop("model"), splits, seed, name == "plain"))
            records[name].append({"seed": seed, **record})
            print(
                f"[{time.perf_counter() - start:6.0f} s] seed {seed} {name:10s} test "
                f"{record['test_accuracy']:.4f}",
                flush=True,
            )
    return records


def at(runs, key: str, axis, value) -> list[float]:
    """Per seed: ``run[key]`` at the position of ``value`` in ``axis``."""
    return [r[key][axis.index(value)] for r in runs]


def claims(records) -> list[tuple[str, bool | None, str]]:
    from kcnn.report import compare

    plain, augmented = records["plain"], records["augmented"]
    found = [
        (
            f"A CNN trained without augmentation is not invariant to rotation (accuracy lower at "
            f"{CLAIM_ANGLE}°)",
            compare(
                at(plain, "angle_accuracy", ANGLES, 0),
                at(plain, "angle_accuracy", ANGLES, CLAIM_ANGLE),
                ACCURACY_FLOOR,
            ),
            f"{pct(at(plain, 'angle_accuracy', ANGLES, 0))} % upright, "
            f"{pct(at(plain, 'angle_accuracy', ANGLES, CLAIM_ANGLE))} % at {CLAIM_ANGLE}°",
        ),
        (
            f"Augmentation (rotations) makes it more robust to rotation "
            f"(accuracy at {CLAIM_ANGLE}°)",
            compare(
                at(augmented, "angle_accuracy", ANGLES, CLAIM_ANGLE),
                at(plain, "angle_accuracy", ANGLES, CLAIM_ANGLE),
                ACCURACY_FLOOR,
            ),
            f"augmented {pct(at(augmented, 'angle_accuracy', ANGLES, CLAIM_ANGLE))} vs plain "
            f"{pct(at(plain, 'angle_accuracy', ANGLES, CLAIM_ANGLE))} %",
        ),
    ]
    for scale in CLAIM_SCALES:
        found.append(
            (
                f"A CNN trained without augmentation is not invariant to scale (accuracy lower at "
                f"x{scale:g})",
                compare(
                    at(plain, "scale_accuracy", SCALES, 1.0),
                    at(plain, "scale_accuracy", SCALES, scale),
                    ACCURACY_FLOOR,
                ),
                f"{pct(at(plain, 'scale_accuracy', SCALES, 1.0))} % at x1, "
                f"{pct(at(plain, 'scale_accuracy', SCALES, scale))} % at x{scale:g}",
            )
        )
        found.append(
            (
                f"Augmentation (zooms) makes it more robust to scale (accuracy at x{scale:g})",
                compare(
                    at(augmented, "scale_accuracy", SCALES, scale),
                    at(plain, "scale_accuracy", SCALES, scale),
                    ACCURACY_FLOOR,
                ),
                f"augmented {pct(at(augmented, 'scale_accuracy', SCALES, scale))} vs plain "
                f"{pct(at(plain, 'scale_accuracy', SCALES, scale))} %",
            )
        )
    fgsm = at(plain, "fgsm_accuracy", EPSILONS, CLAIM_EPSILON)
    noise = at(plain, "random_accuracy", EPSILONS, CLAIM_EPSILON)
    half = [r["half_flip"] for r in plain]
    found.append(
        (
            f"CNNs are sensitive to adversarial examples: an FGSM perturbation of ±{CLAIM_EPSILON} "
            "pixel levels (3 % of the range) lowers the accuracy, far more than random noise of "
            "the same size (Goodfellow et al. 2015)",
            compare(noise, fgsm, ACCURACY_FLOOR),
            f"{pct(fgsm)} % under FGSM, {pct(noise)} % under random ±{CLAIM_EPSILON}, "
            f"{pct(at(plain, 'fgsm_accuracy', EPSILONS, 0))} % clean; half the predictions flip at "
            f"ε = {', '.join('>' + str(EPSILONS[-1]) if h is None else f'{h:.1f}' for h in half)} "
            "pixel levels",
        )
    )
    return found


def curve_rows(records) -> list[dict]:
    """One row per model: its test accuracy at each angle, then at each scale factor."""
    rows = []
    for name, runs in records.items():
        row = {"model": name}
        row.update({f"{a}°": pct(at(runs, "angle_accuracy", ANGLES, a)) for a in ANGLES})
        row.update({f"x{s:g}": pct(at(runs, "scale_accuracy", SCALES, s)) for s in SCALES})
        rows.append(row)
    return rows


def adversarial_rows(records) -> list[dict]:
    runs = records["plain"]
    return [
        {
            "ε (pixel levels)": e,
            "FGSM accuracy %": pct(at(runs, "fgsm_accuracy", EPSILONS, e)),
            "FGSM flipped %": pct(at(runs, "fgsm_flipped", EPSILONS, e)),
            "random ±ε accuracy %": pct(at(runs, "random_accuracy", EPSILONS, e)),
            "random ±ε flipped %": pct(at(runs, "random_flipped", EPSILONS, e)),
        }
        for e in EPSILONS
    ]


def plot_invariance(records, path) -> str:
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(10, 4))
    for column, (key, axis_values, label) in enumerate(
        (
            ("angle_accuracy", ANGLES, "rotation (degrees)"),
            ("scale_accuracy", SCALES, "scale factor"),
        )
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        for name, runs in records.items():
            curve = 100 * np.mean([r[key] for r in runs], axis=0)
            axis.plot(axis_values, curve, marker="o", label=f"{name}")
        axis.set_xlabel(label)
        axis.set_ylabel("test accuracy (%, mean over seeds)")
        axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_adversarial(records, path) -> str:
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    figure = Figure(figsize=(10, 4))
    runs = records["plain"]
    for column, (what, label) in enumerate(
        (("accuracy", "test accuracy (%)"), ("flipped", "predictions changed (%)"))
    ):
        axis = figure.add_subplot(1, 2, column + 1)
        for kind in ("fgsm", "random"):
            curve = 100 * np.mean([r[f"{kind}_{what}"] for r in runs], axis=0)
            axis.plot(EPSILONS, curve, marker="o", label="FGSM" if kind == "fgsm" else "random ±ε")
        axis.set_xlabel("ε (pixel levels of 0-255)")
        axis.set_ylabel(label)
        axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_examples(image, path) -> str:
    """One test image rotated, scaled, and with a random ±8 perturbation (FGSM's size)."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    shown = [(f"{a}°", transform(image[None], angle=a)[0]) for a in (0, 45, 90)]
    shown += [(f"x{s:g}", transform(image[None], scale=s)[0]) for s in CLAIM_SCALES]
    noise = np.random.default_rng(0).choice([-1.0, 1.0], size=image.shape)
    shown.append((f"±{CLAIM_EPSILON} levels", np.clip(image + CLAIM_EPSILON * noise, 0, 255)))
    figure = Figure(figsize=(2 * len(shown), 2.4))
    for index, (title, picture) in enumerate(shown):
        axis = figure.add_subplot(1, len(shown), index + 1)
        axis.imshow(np.squeeze(picture), cmap="gray", vmin=0, vmax=255)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "The limits of CNNs: rotation, scale, adversarial examples")
    splits = dataset_splits(
        args.dataset, args.train_size, args.validation_size, args.test_size, args.data_dir
    )
    records = train_all(args, splits)
    for claim, verdict, evidence in claims(records):
        report.claim(claim, verdict, evidence)
    report.text(
        f"Data: {splits.describe()}; the same subsets for every run.\n\n"
        f"Model: `{MODEL}` (Listing 1), Adam 1e-3, batch 128, {args.epochs} epochs, precision "
        f"`{args.precision}`, seeds 0-{args.seeds - 1} (mean ± std over seeds); *augmented*: "
        f"random rotations up to ±{360 * ROTATION:g}° and zooms of ±{ZOOM:.0%} during "
        "training. FGSM: ε in pixel levels of the raw 0-255 input, on the model without "
        "augmentation; *flipped*: predictions that differ from those on the clean image."
    )
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Test accuracy (%) against rotation and scale", curve_rows(records))
    report.table(
        "FGSM against random noise (model without augmentation)", adversarial_rows(records)
    )
    report.figure(
        plot_invariance(records, os.path.join(args.out, "invariance.png")),
        "test accuracy against rotation angle and scale, with and without augmentation",
    )
    report.figure(
        plot_adversarial(records, os.path.join(args.out, "adversarial.png")),
        "accuracy and predictions changed against ε: FGSM against random noise",
    )
    report.figure(
        plot_examples(splits.test[0][0].astype("float32"), os.path.join(args.out, "examples.png")),
        "a test image rotated, scaled and perturbed by ±8 pixel levels",
    )
    report.results["runs"] = records
    return write_report(report, args.out)


if __name__ == "__main__":
    sys.exit(main())
