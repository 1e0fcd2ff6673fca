"""Does the course's advice on transfer learning (chapter 07, sections 7.2 and 10.3) hold?

The course's claims, checked against measured numbers:

1. Transfer works "even with little data": a pretrained backbone beats training from scratch
   when the new task has few labelled examples.
2. "Few data (< 1000): feature extraction" -- with few examples the frozen backbone is the best
   choice.
3. Fine-tuning gives "better performance" but "needs more data": with many examples, fine-tuning
   beats feature extraction.
4. "Medium data (1K-10K): fine-tune the last layers" -- there, unfreezing the top blocks after
   the head (progressive) is at least as good as either extreme.
5. Feature extraction is "very fast": it trains in much less time than fine-tuning.

Offline (the default) it is a real transfer experiment on data that is here: a backbone
(TinyResNet, course Listing 4, narrowed) is pre-trained on a source task -- Fashion-MNIST classes
0-4 (T-shirt, trouser, pullover, dress, coat) -- and its weights saved in ``--out``;
the target task is a different one -- classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) --
with few labels (``--sizes`` examples per class). For each size and seed, four models train on
the same examples for the same number of epochs: ``scratch`` (same architecture, random
weights, everything trained at 1e-3), ``frozen`` (head only, 1e-3), ``finetune`` (everything,
1e-4) and ``progressive`` (the head for half the epochs at 1e-3, then the top ``--unfreeze``
blocks at ``--finetune-lr``). A fixed validation set from the rest of the target training
images gives the curves (it selects nothing); the target test split gives the accuracy. BN
layers of pretrained backbones run in inference mode (see `kcnn.transfer`).

With ``--weights imagenet`` and a tfds or folder dataset (e.g. ``--target tfds:tf_flowers
--target-classes all --backbone MobileNetV2 --image-size 160``) the backbone is the ImageNet one
and there is no pre-training step: the real thing, for a machine with a network.

Writes ``report.md`` (command, hardware, the precision the models were built with, time,
table, one verdict per claim; `kcnn.report`), ``results.json``, ``val_accuracy.png``
(validation accuracy per epoch, one panel per size) and ``test_accuracy.png`` (test accuracy
against the number of labelled examples) in ``--out``.

Example:
    python experiments/transfer_learning.py --quick
    python experiments/transfer_learning.py --seeds 3
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from common import (
    ACCURACY_FLOOR,
    add_plan_option,
    fill_from_plan,
    open_report,
    parser,
    pct,
    positive,
    run_progress,
    write_report,
)

METHODS = ("scratch", "frozen", "finetune", "progressive")
# Budgets: every run of a size trains for the same epochs; an epoch is the labelled examples
# repeated until it has at least ``epoch_steps`` steps, and a run has at least ``min_steps``
# steps and ``min_epochs`` epochs.
QUICK = dict(
    sizes=(5, 20),
    seeds=1,
    source_per_class=40,
    source_epochs=1,
    val_per_class=10,
    test_per_class=20,
    epoch_steps=2,
    min_steps=4,
    min_epochs=2,
)
FULL = dict(
    sizes=(10, 50, 200, 1000),
    seeds=3,
    source_per_class=None,
    source_epochs=3,
    val_per_class=100,
    test_per_class=None,
    epoch_steps=25,
    min_steps=500,
    min_epochs=5,
)
FEW, MEDIUM = 1000, (1000, 10000)  # the course's "few data (< 1000)", "medium (1K-10K)" images


def parse_args(argv=None):
    result = parser(__doc__.split("\n\n")[0], "transfer_learning")
    add_plan_option(
        result, "--sizes", QUICK, FULL, "labelled examples per class", type=int, nargs="+"
    )
    result.add_argument(
        "--backbone",
        default="tiny_resnet",
        help="kcnn registry or Keras Applications name (default tiny_resnet)",
    )
    result.add_argument(
        "--backbone-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backbone builder argument (default for tiny_resnet: width=0.25)",
    )
    result.add_argument(
        "--weights",
        default="pretrain",
        help="pretrain (on --source, saved in --out), imagenet, or a weights file of the backbone",
    )
    result.add_argument("--source", help="pre-training dataset (default: --dataset)")
    result.add_argument("--source-classes", default="0-4", help="its classes (default 0-4)")
    result.add_argument(
        "--target", help="target dataset (default: --dataset; tfds:NAME or a folder too)"
    )
    result.add_argument("--target-classes", default="5-9", help="its classes (default 5-9; all)")
    result.add_argument(
        "--image-size",
        type=int,
        help="model input height and width (default: the target's own size)",
    )
    result.add_argument(
        "--unfreeze",
        default="2",
        help="progressive: top blocks unfrozen after the head phase, or all",
    )
    result.add_argument(
        "--finetune-lr",
        type=float,
        default=1e-4,
        help="progressive: learning rate after the switch (default 1e-4)",
    )
    result.add_argument("--batch-size", type=int, default=32)
    args = result.parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    for key in ("seeds", "batch_size"):
        positive(f"--{key.replace('_', '-')}", getattr(args, key))
    for size in args.sizes:
        positive("--sizes", size)
    args.source = args.source or args.dataset
    args.target = args.target or args.dataset
    return args


def plan_of(args) -> dict:
    """The budget of this run: the quick or full plan with the command line's choices."""
    return {key: getattr(args, key) for key in QUICK}


def class_list(text: str, count: int) -> list[int]:
    """``"0-4"``, ``"5,7,9"`` or ``"all"`` as sorted class indices below ``count``.

    Raises:
        ValueError: naming the text, for anything else or an index out of range.
    """
    try:
        if text == "all":
            classes = list(range(count))
        elif "-" in text:
            low, high = (int(part) for part in text.split("-"))
            classes = list(range(low, high + 1))
        else:
            classes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ValueError(f"classes must be 'all', 'A-B' or 'A,B,...', got {text!r}") from None
    if len(classes) < 2 or classes[0] < 0 or classes[-1] >= count:
        raise ValueError(f"classes {text!r}: need at least 2 classes in [0, {count})")
    return classes


def class_arrays(source, classes_text, image_size, channels, data_dir) -> dict:
    """The images of some classes of a dataset, as uint8 arrays, labels renumbered from 0.

    Returns:
        ``{"train": (x, y), "test": (x, y) or None, "class_names": [...], "shape": (h, w, c)}``.
    """
    from kcnn.data import make_dataset

    splits = {}
    for split in ("train", "test"):
        try:
            dataset, info = make_dataset(
                source,
                1024,
                split,
                image_size=image_size,
                channels=channels,
                normalize=None,
                shuffle=False,
                cache=False,
                validation_split=0.0,
                data_dir=data_dir,
            )
        except ValueError as error:
            if split == "test" and "no test split" in str(error):
                splits[split] = None
                continue
            raise
        images, labels = [], []
        for x, y in dataset.as_numpy_iterator():
            images.append(np.round(x).astype("uint8"))
            labels.append(y)
        splits[split] = (np.concatenate(images), np.concatenate(labels))
        if split == "train":
            classes = class_list(classes_text, info.num_classes)
            names = [info.class_names[c] for c in classes]
    result = {"class_names": names, "shape": splits["train"][0].shape[1:]}
    for split, arrays in splits.items():
        if arrays is None:
            result[split] = None
            continue
        keep = np.isin(arrays[1], classes)
        renumber = {c: i for i, c in enumerate(classes)}
        result[split] = (arrays[0][keep], np.array([renumber[c] for c in arrays[1][keep]]))
    return result


def per_class(labels, count, rng, exclude=()) -> np.ndarray:
    """Indices of ``count`` examples of every class (all of them when ``count`` is None),
    chosen with ``rng`` among those not in ``exclude``.

    Raises:
        ValueError: when a class has fewer than ``count`` examples left.
    """
    chosen = []
    excluded = np.zeros(len(labels), bool)
    excluded[list(exclude)] = True
    for label in np.unique(labels):
        members = np.flatnonzero((labels == label) & ~excluded)
        if count is not None and len(members) < count:
            raise ValueError(f"class {label} has {len(members)} examples left, {count} asked")
        chosen.append(rng.permutation(members)[:count])
    return np.sort(np.concatenate(chosen))


def batches(x, y, batch_size, training, seed, class_names, repeats=1):
    """A kcnn.data pipeline of raw 0-255 pixels (the transfer model normalises itself), the
    examples ``repeats`` times per epoch (reshuffled each time)."""
    from kcnn.data import make_dataset

    dataset, _ = make_dataset(
        (x, y),
        batch_size,
        "train",
        normalize=None,
        shuffle=training,
        seed=seed,
        validation_split=0.0,
        class_names=class_names,
    )
    return dataset.repeat(repeats) if repeats > 1 else dataset


def budget(examples: int, batch_size: int, plan: dict) -> tuple[int, int, int]:
    """``(repeats per epoch, epochs, steps)`` for ``examples`` training images: an epoch of at
    least ``epoch_steps`` steps, at least ``min_steps`` steps and ``min_epochs`` epochs."""
    per_pass = math.ceil(examples / batch_size)
    repeats = max(1, math.ceil(plan["epoch_steps"] / per_pass))
    epochs = max(plan["min_epochs"], math.ceil(plan["min_steps"] / (per_pass * repeats)))
    return repeats, epochs, epochs * per_pass * repeats


def build(args, method, classes, shape, weights):
    from kcnn import transfer
    from kcnn.training import precision_policy

    strategy = "finetune" if method == "scratch" else method
    with precision_policy(args.precision):
        return transfer.build(
            args.backbone,
            classes,
            strategy,
            weights=None if method == "scratch" else weights,
            input_shape=shape,
            backbone_options=args.options,
        )


def phases_for(args, method, epochs):
    from kcnn import transfer

    if method == "scratch":
        return (transfer.Phase(epochs, "all", transfer.HEAD_LEARNING_RATE),)
    if method == "progressive":
        return transfer.schedule(
            "progressive", epochs, unfreeze=args.unfreeze, finetune_learning_rate=args.finetune_lr
        )
    return transfer.schedule(method, epochs)


def pretrain(args, source: dict, plan: dict) -> dict:
    """Train the backbone from scratch on the source task; save its weights."""
    import keras

    from kcnn import transfer

    rng = np.random.default_rng(0)
    x, y = source["train"]
    picked = per_class(y, plan["source_per_class"], rng)
    x, y = x[picked], y[picked]
    model = build(args, "scratch", len(source["class_names"]), source["shape"], None)
    train_data = batches(x, y, args.batch_size, True, 0, source["class_names"])
    test_data = batches(*source["test"], 256, False, 0, source["class_names"])
    epochs = plan["source_epochs"]
    print(
        f"pre-training {args.backbone} on {args.source} classes {args.source_classes} "
        f"({len(y)} images, {epochs} epochs)",
        flush=True,
    )
    result = transfer.train(
        model,
        train_data,
        (transfer.Phase(epochs, "all", transfer.HEAD_LEARNING_RATE),),
        test_data=test_data,
        verbose=2,
        tensorboard=False,
    )
    options = "".join(f"_{k}{v}" for k, v in sorted(args.options.items()))
    source_name = args.source.replace(":", "_").replace(os.sep, "_")
    name = (
        f"transfer_{args.backbone}{options}_{source_name}_{args.source_classes}_{len(y)}x{epochs}"
    )
    path = transfer.save_backbone_weights(model, os.path.join(args.out, f"{name}.weights.h5"))
    keras.utils.clear_session(free_memory=True)
    return {
        "weights": path,
        "examples": int(len(y)),
        "epochs": epochs,
        "test_accuracy": result.test_accuracy,
        "seconds": result.seconds,
    }


def run(args, method, target, indices, validation, test, plan, weights, seed) -> dict:
    import keras

    from kcnn import transfer

    keras.utils.clear_session(free_memory=True)
    keras.utils.set_random_seed(seed)
    x, y = target["train"]
    names = target["class_names"]
    model = build(args, method, len(names), target["shape"], weights)
    repeats, epochs, steps = budget(len(indices), args.batch_size, plan)
    result = transfer.train(
        model,
        batches(x[indices], y[indices], args.batch_size, True, seed, names, repeats),
        phases_for(args, method, epochs),
        validation_data=batches(*validation, 256, False, 0, names),
        test_data=batches(*test, 256, False, 0, names),
        seed=seed,
        verbose=0,
        tensorboard=False,
    )
    return {
        "method": method,
        "per_class": int(len(indices) // len(names)),
        "seed": seed,
        "examples": int(len(indices)),
        "epochs": epochs,
        "steps": steps,
        "test_accuracy": result.test_accuracy,
        "train_seconds": result.train_seconds,
        "trainable_parameters": result.trainable_parameters,
        "val_accuracy": result.history["val_accuracy"],
        "precision": model.dtype_policy.name,
    }


def accuracies(records, size, method) -> list[float]:
    """Per seed: the test accuracy of ``method`` trained on ``size`` examples per class."""
    return [r["test_accuracy"] for r in records if r["per_class"] == size and r["method"] == method]


def seconds(records, size, method) -> list[float]:
    return [r["train_seconds"] for r in records if r["per_class"] == size and r["method"] == method]


def summarise(records) -> list[dict]:
    """One row per (size, method): mean ± std over seeds."""
    from kcnn.report import mean_std

    rows = []
    for size in sorted({r["per_class"] for r in records}):
        for method in METHODS:
            runs = [r for r in records if r["per_class"] == size and r["method"] == method]
            if runs:
                rows.append(
                    {
                        "examples per class (total)": f"{size} ({runs[0]['examples']})",
                        "method": method,
                        "epochs (steps)": f"{runs[0]['epochs']} ({runs[0]['steps']})",
                        "test accuracy %": pct(accuracies(records, size, method)),
                        "training s": mean_std(seconds(records, size, method), digits=1),
                        "trainable parameters": " → ".join(
                            f"{n:,}" for n in runs[0]["trainable_parameters"]
                        ),
                    }
                )
    return rows


def _evidence(records, size, methods) -> str:
    return ", ".join(f"{m} {pct(accuracies(records, size, m))} %" for m in methods)


def best_of(records, size, methods) -> str:
    """The method of ``methods`` with the highest mean test accuracy at ``size``."""
    return max(methods, key=lambda m: np.mean(accuracies(records, size, m)))


def claims(records) -> list[tuple[str, bool | None, str]]:
    """``(claim, verdict, evidence)`` for the course's five claims, from the runs."""
    from kcnn.report import compare, mean_std, no_worse

    sizes = sorted({r["per_class"] for r in records})
    examples = {
        size: next(r["examples"] for r in records if r["per_class"] == size) for size in sizes
    }
    small, large = sizes[0], sizes[-1]
    transferred = best_of(records, small, METHODS[1:])
    found = [
        (
            f"Transfer beats training from scratch with little data ({small} per class)",
            compare(
                accuracies(records, small, transferred),
                accuracies(records, small, "scratch"),
                ACCURACY_FLOOR,
            ),
            _evidence(records, small, (transferred, "scratch")),
        )
    ]
    for size in (s for s in sizes if examples[s] < FEW):
        others = [
            compare(
                accuracies(records, size, m), accuracies(records, size, "frozen"), ACCURACY_FLOOR
            )
            for m in METHODS
            if m != "frozen"
        ]
        verdict = False if True in others else True if all(v is False for v in others) else None
        found.append(
            (
                f"Few data (< {FEW} images): feature extraction is best ({size} per class, "
                f"{examples[size]} images)",
                verdict,
                _evidence(records, size, METHODS),
            )
        )
    found.append(
        (
            f"With more data, fine-tuning beats feature extraction ({large} per class)",
            compare(
                accuracies(records, large, "finetune"),
                accuracies(records, large, "frozen"),
                ACCURACY_FLOOR,
            ),
            _evidence(records, large, ("finetune", "frozen")),
        )
    )
    for size in (s for s in sizes if MEDIUM[0] <= examples[s] <= MEDIUM[1]):
        each = [
            no_worse(
                accuracies(records, size, "progressive"),
                accuracies(records, size, m),
                ACCURACY_FLOOR,
            )
            for m in ("frozen", "finetune")
        ]
        verdict = False if False in each else True if all(each) else None
        found.append(
            (
                f"Medium data ({MEDIUM[0]:,}-{MEDIUM[1]:,} images): fine-tuning the last blocks "
                f"(progressive) is at least as good as either extreme ({size} per class)",
                verdict,
                _evidence(records, size, ("progressive", "frozen", "finetune")),
            )
        )
    frozen, finetune = seconds(records, large, "frozen"), seconds(records, large, "finetune")
    found.append(
        (
            f"Feature extraction trains faster than fine-tuning ({large} per class)",
            compare(finetune, frozen),
            f"frozen {mean_std(frozen, digits=1)} s vs finetune {mean_std(finetune, digits=1)} s "
            "of training",
        )
    )
    return found


def plot_validation(records, path) -> str:
    """Validation accuracy per epoch, one panel per size (mean and spread over seeds)."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    sizes = sorted({r["per_class"] for r in records})
    figure = Figure(figsize=(4.2 * len(sizes), 3.6))
    for index, size in enumerate(sizes):
        axis = figure.add_subplot(1, len(sizes), index + 1)
        for method in METHODS:
            curves = np.array(
                [
                    r["val_accuracy"]
                    for r in records
                    if r["per_class"] == size and r["method"] == method
                ]
            )
            epochs = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            axis.plot(epochs, mean, label=method)
            axis.fill_between(
                epochs, mean - curves.std(axis=0), mean + curves.std(axis=0), alpha=0.2
            )
        steps = next(r["steps"] // r["epochs"] for r in records if r["per_class"] == size)
        axis.set_title(f"{size} labelled examples per class")
        axis.set_xlabel(f"epoch ({steps} steps)")
        axis.set_ylabel("validation accuracy")
        axis.grid(alpha=0.3)
        if index == 0:
            axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_sizes(records, path) -> str:
    """Test accuracy (mean ± std over seeds) against the labelled examples per class."""
    from matplotlib.figure import Figure

    from kcnn.viz import save_figure

    sizes = sorted({r["per_class"] for r in records})
    figure = Figure(figsize=(5.5, 4))
    axis = figure.add_subplot(1, 1, 1)
    for method in METHODS:
        found = [100 * np.array(accuracies(records, size, method)) for size in sizes]
        axis.errorbar(
            sizes,
            [a.mean() for a in found],
            yerr=[a.std() for a in found],
            marker="o",
            capsize=3,
            label=method,
        )
    axis.set_xscale("log")
    axis.set_xlabel("labelled examples per class")
    axis.set_ylabel("test accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def split_target(target, plan) -> tuple:
    """``(validation, used indices)``: the fixed validation examples from the target's
    training split, and the test split (taken from the training split too when the dataset
    has none) put in ``target["test"]``."""
    rng = np.random.default_rng(1000)
    x, y = target["train"]
    validation_indices = per_class(y, plan["val_per_class"], rng)
    validation = (x[validation_indices], y[validation_indices])
    if target["test"] is None:
        test_indices = per_class(
            y, max(plan["test_per_class"] or 100, 100), rng, exclude=validation_indices
        )
        target["test"] = (x[test_indices], y[test_indices])
        return validation, np.concatenate([validation_indices, test_indices])
    test_x, test_y = target["test"]
    keep = per_class(test_y, plan["test_per_class"], rng)
    target["test"] = (test_x[keep], test_y[keep])
    return validation, validation_indices


def main(argv=None) -> int:
    args = parse_args(argv)
    report = open_report(args, "Transfer learning: scratch vs frozen vs fine-tuned vs progressive")
    plan = plan_of(args)
    from kcnn import registry
    from kcnn.options import parse_options

    args.options = parse_options(args.backbone_option, "--backbone-option")
    if not args.backbone_option and args.backbone == "tiny_resnet":
        args.options = {"width": 0.25}
    args.unfreeze = args.unfreeze if args.unfreeze == "all" else int(args.unfreeze)

    channels = None if args.backbone in registry.list_models() else 3
    size = (args.image_size, args.image_size) if args.image_size else None
    target = class_arrays(args.target, args.target_classes, size, channels, args.data_dir)
    if args.weights == "pretrain":
        source = class_arrays(
            args.source, args.source_classes, target["shape"][:2], target["shape"][2], args.data_dir
        )
        pretraining = pretrain(args, source, plan)
        weights = pretraining["weights"]
        print(
            f"source task: test accuracy {pretraining['test_accuracy']:.4f}, "
            f"{pretraining['seconds']:.0f} s; weights in {weights}",
            flush=True,
        )
    else:
        pretraining, weights = None, args.weights
    validation, used = split_target(target, plan)

    x, y = target["train"]
    records = []
    progress = run_progress(plan["seeds"], [(s, m) for s in plan["sizes"] for m in METHODS])
    for per_class_count in plan["sizes"]:
        for seed in range(plan["seeds"]):
            indices = per_class(y, per_class_count, np.random.default_rng(seed), exclude=used)
            for method in METHODS:
                progress.step(f"{per_class_count}/class, seed {seed}, {method}")
                record = run(
                    args, method, target, indices, validation, target["test"], plan, weights, seed
                )
                records.append(record)
                print(
                    f"{per_class_count:>5}/class seed {seed} {method:<11} "
                    f"test {record['test_accuracy']:.4f}  {record['train_seconds']:6.1f} s  "
                    f"{record['epochs']} epochs, {record['steps']} steps",
                    flush=True,
                )

    for claim, verdict, evidence in claims(records):
        report.claim(claim, verdict, evidence)
    report.text(describe_setup(args, plan, target, pretraining, weights, records))
    if args.quick:
        report.text(
            "Quick mode: a smoke test of the script on tiny subsets, few epochs and one "
            "seed; its verdicts say nothing about the course. Run without `--quick`."
        )
    report.table("Test accuracy and training time", summarise(records))
    report.figure(
        plot_validation(records, os.path.join(args.out, "val_accuracy.png")),
        "validation accuracy per epoch, one panel per size (mean and spread over seeds)",
    )
    report.figure(
        plot_sizes(records, os.path.join(args.out, "test_accuracy.png")),
        "test accuracy against the labelled examples per class",
    )
    report.results.update({"plan": plan, "pretraining": pretraining, "runs": records})
    return write_report(report, args.out)


def describe_setup(args, plan, target, pretraining, weights, records) -> str:
    """The report's paragraph on the backbone, the data, the budget and the precision."""
    options = ", ".join(f"{k}={v}" for k, v in args.options.items()) or "defaults"
    if pretraining:
        origin = (
            f"pre-trained from scratch on `{args.source}` classes {args.source_classes} "
            f"({pretraining['examples']} images, {pretraining['epochs']} epochs, source test "
            f"accuracy {100 * pretraining['test_accuracy']:.1f} %, {pretraining['seconds']:.0f} "
            f"s), weights saved to `{weights}`"
        )
    else:
        origin = f"weights `{weights}`"
    unfreeze = "all blocks" if args.unfreeze == "all" else f"the top {args.unfreeze} blocks"
    built = ", ".join(sorted({r["precision"] for r in records}))
    return (
        f"Backbone: `{args.backbone}` ({options}), {origin}. Precision the models were built "
        f"with: `{built}` (asked: `{args.precision}`).\n\n"
        f"Target task: `{args.target}` classes {args.target_classes} "
        f"({', '.join(target['class_names'])}), {'x'.join(map(str, target['shape']))} images; "
        "for each size, that many labelled training examples per class drawn with the seed; "
        f"validation: {plan['val_per_class']} per class from the other training images (curves "
        f"only, no model selection); test: {len(target['test'][1])} images.\n\n"
        "Same examples and epochs for every method of a size: an epoch is the labelled "
        f"examples, repeated until it has at least {plan['epoch_steps']} steps; at least "
        f"{plan['min_steps']} steps and {plan['min_epochs']} epochs in all; batch "
        f"{args.batch_size}, Adam, constant learning rates. scratch: random weights, everything "
        "at 1e-3. frozen: head only at 1e-3. finetune: everything at 1e-4. progressive: head at "
        f"1e-3 for half the epochs, then {unfreeze} at {args.finetune_lr:g}. BatchNormalization "
        f"of pretrained backbones in inference mode. Seeds 0-{plan['seeds'] - 1} per size "
        "(mean ± std). Training time: the training steps (validation excluded, tracing of the "
        "first step included). Trainable parameters: per phase."
    )


if __name__ == "__main__":
    sys.exit(main())
