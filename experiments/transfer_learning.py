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
0-4 (T-shirt, trouser, pullover, dress, coat) -- and its weights saved under ``saved_models/``;
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

Writes ``report.md`` (command, hardware, time, table, one verdict per claim),
``results.json``, ``val_accuracy.png`` (validation accuracy per epoch, one panel per size) and
``test_accuracy.png`` (test accuracy against the number of labelled examples) in ``--out``.

Example:
    python experiments/transfer_learning.py --quick
    python experiments/transfer_learning.py --seeds 3
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

METHODS = ("scratch", "frozen", "finetune", "progressive")
# Budgets: every run of a size trains for the same epochs; an epoch is the labelled examples
# repeated until it has at least ``epoch_steps`` steps, and a run has at least ``min_steps``
# steps and ``min_epochs`` epochs.
QUICK = dict(sizes=(20, 200), seeds=1, source_per_class=1000, source_epochs=2,
             val_per_class=30, test_per_class=200, epoch_steps=10, min_steps=150, min_epochs=3)
FULL = dict(sizes=(10, 50, 200, 1000), seeds=3, source_per_class=None, source_epochs=3,
            val_per_class=100, test_per_class=None, epoch_steps=25, min_steps=500, min_epochs=5)
NOISE_FLOOR = 0.005  # differences of accuracy below half a point are never called a win


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, one seed, short pre-training: a few minutes on 2 cores")
    parser.add_argument("--seeds", type=int, help="seeds per size (mean ± std); 1 quick, 3 full")
    parser.add_argument("--sizes", help="labelled examples per class, comma-separated "
                        f"(quick {QUICK['sizes']}, full {FULL['sizes']})")
    parser.add_argument("--backbone", default="tiny_resnet",
                        help="kcnn registry or Keras Applications name (default tiny_resnet)")
    parser.add_argument("--backbone-option", action="append", default=[], metavar="KEY=VALUE",
                        help="backbone builder argument (default for tiny_resnet: width=0.25)")
    parser.add_argument("--weights", default="pretrain",
                        help="pretrain (on --source, saved under saved_models/), imagenet, or a "
                        "weights file of the backbone")
    parser.add_argument("--source", default="fashion_mnist", help="pre-training dataset")
    parser.add_argument("--source-classes", default="0-4", help="its classes (default 0-4)")
    parser.add_argument("--target", default="fashion_mnist", help="target dataset")
    parser.add_argument("--target-classes", default="5-9", help="its classes (default 5-9; all)")
    parser.add_argument("--image-size", type=int,
                        help="model input height and width (default: the target's own size)")
    parser.add_argument("--unfreeze", default="2",
                        help="progressive: top blocks unfrozen after the head phase, or all")
    parser.add_argument("--finetune-lr", type=float, default=1e-4,
                        help="progressive: learning rate after the switch (default 1e-4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="auto", help="kcnn.training precision (auto)")
    parser.add_argument("--data-dir", help="folder searched first for the datasets")
    parser.add_argument("--out", default=os.path.join("results", "transfer_learning"))
    return parser.parse_args(argv)


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
                source, 1024, split, image_size=image_size, channels=channels, normalize=None,
                shuffle=False, cache=False, validation_split=0.0, data_dir=data_dir,
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
        (x, y), batch_size, "train", normalize=None, shuffle=training, seed=seed,
        validation_split=0.0, class_names=class_names,
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
            args.backbone, classes, strategy, weights=None if method == "scratch" else weights,
            input_shape=shape, backbone_options=args.options,
        )


def phases_for(args, method, epochs):
    from kcnn import transfer

    if method == "scratch":
        return (transfer.Phase(epochs, "all", transfer.HEAD_LEARNING_RATE),)
    if method == "progressive":
        return transfer.schedule("progressive", epochs, unfreeze=args.unfreeze,
                                 finetune_learning_rate=args.finetune_lr)
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
    print(f"pre-training {args.backbone} on {args.source} classes {args.source_classes} "
          f"({len(y)} images, {epochs} epochs)", flush=True)
    result = transfer.train(
        model, train_data, (transfer.Phase(epochs, "all", transfer.HEAD_LEARNING_RATE),),
        test_data=test_data, verbose=2, tensorboard=False,
    )
    options = "".join(f"_{k}{v}" for k, v in sorted(args.options.items()))
    source_name = args.source.replace(":", "_").replace(os.sep, "_")
    name = (f"transfer_{args.backbone}{options}_{source_name}_{args.source_classes}_"
            f"{len(y)}x{epochs}")
    path = transfer.save_backbone_weights(model, os.path.join("saved_models",
                                                              f"{name}.weights.h5"))
    keras.utils.clear_session(free_memory=True)
    return {"weights": path, "examples": int(len(y)), "epochs": epochs,
            "test_accuracy": result.test_accuracy, "seconds": result.seconds}


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
        model, batches(x[indices], y[indices], args.batch_size, True, seed, names, repeats),
        phases_for(args, method, epochs),
        validation_data=batches(*validation, 256, False, 0, names),
        test_data=batches(*test, 256, False, 0, names), seed=seed, verbose=0,
        tensorboard=False,
    )
    return {
        "method": method, "per_class": int(len(indices) // len(names)), "seed": seed,
        "examples": int(len(indices)), "epochs": epochs, "steps": steps,
        "test_accuracy": result.test_accuracy, "train_seconds": result.train_seconds,
        "trainable_parameters": result.trainable_parameters,
        "val_accuracy": result.history["val_accuracy"],
    }


def summarise(records) -> list[dict]:
    """One row per (size, method): mean and std over seeds."""
    rows = []
    for size in sorted({r["per_class"] for r in records}):
        for method in METHODS:
            runs = [r for r in records if r["per_class"] == size and r["method"] == method]
            if not runs:
                continue
            accuracy = np.array([r["test_accuracy"] for r in runs])
            seconds = np.array([r["train_seconds"] for r in runs])
            rows.append({
                "per_class": size, "examples": runs[0]["examples"], "method": method,
                "epochs": runs[0]["epochs"], "steps": runs[0]["steps"], "seeds": len(runs),
                "accuracy": float(accuracy.mean()), "accuracy_std": float(accuracy.std()),
                "seconds": float(seconds.mean()), "seconds_std": float(seconds.std()),
                "trainable": runs[0]["trainable_parameters"],
            })
    return rows


def _row(rows, size, method):
    return next(r for r in rows if r["per_class"] == size and r["method"] == method)


def better(a: dict, b: dict) -> str:
    """``"yes"`` when row ``a`` is more accurate than ``b`` by more than the noise (the sum of
    their standard deviations over seeds, at least half a point), ``"no"`` when it is less
    accurate by that much, ``"tie"`` otherwise."""
    margin = max(NOISE_FLOOR, a["accuracy_std"] + b["accuracy_std"])
    difference = a["accuracy"] - b["accuracy"]
    return "yes" if difference > margin else "no" if difference < -margin else "tie"


def _points(row) -> str:
    return f"{100 * row['accuracy']:.1f}%"


def verdicts(rows) -> list[str]:
    """One line per claim, from the measured rows."""
    sizes = sorted({r["per_class"] for r in rows})
    small, large = sizes[0], sizes[-1]
    lines = []

    best = max((_row(rows, small, m) for m in METHODS[1:]), key=lambda r: r["accuracy"])
    scratch = _row(rows, small, "scratch")
    outcome = {"yes": "holds", "tie": "not shown (within noise)", "no": "does not hold"}
    lines.append(
        f"1. Transfer beats scratch with little data: {outcome[better(best, scratch)]} -- at "
        f"{small} per class, {best['method']} {_points(best)} vs scratch {_points(scratch)}."
    )

    few = [s for s in sizes if _row(rows, s, "frozen")["examples"] < 1000]
    if few:
        parts, holds = [], []
        for size in few:
            frozen = _row(rows, size, "frozen")
            others = [_row(rows, size, m) for m in METHODS if m != "frozen"]
            beaten = [o["method"] for o in others if better(o, frozen) == "yes"]
            holds.append(not beaten)
            parts.append(f"{size}/class: frozen {_points(frozen)}"
                         + (f", beaten by {', '.join(beaten)}" if beaten else ", not beaten"))
        verdict = "holds" if all(holds) else "does not hold" if not any(holds) else "holds in part"
        lines.append(f"2. Few data (< 1000 images): feature extraction is best: {verdict} -- "
                     + "; ".join(parts) + ".")
    else:
        lines.append("2. Few data (< 1000 images): not tested (no size below 1000 images).")

    frozen, finetune = _row(rows, large, "frozen"), _row(rows, large, "finetune")
    lines.append(
        f"3. With more data, fine-tuning beats feature extraction: "
        f"{outcome[better(finetune, frozen)]} -- at {large} per class "
        f"({finetune['examples']} images), finetune {_points(finetune)} vs frozen "
        f"{_points(frozen)}."
    )

    medium = [s for s in sizes if 1000 <= _row(rows, s, "frozen")["examples"] <= 10000]
    if medium:
        parts, holds = [], []
        for size in medium:
            progressive = _row(rows, size, "progressive")
            ok = all(better(progressive, _row(rows, size, m)) != "no"
                     for m in ("frozen", "finetune"))
            holds.append(ok)
            parts.append(f"{size}/class: progressive {_points(progressive)}, frozen "
                         f"{_points(_row(rows, size, 'frozen'))}, finetune "
                         f"{_points(_row(rows, size, 'finetune'))}")
        verdict = "holds" if all(holds) else "does not hold" if not any(holds) else "holds in part"
        lines.append("4. Medium data (1K-10K images): fine-tuning the last layers is at least as "
                     f"good as either extreme: {verdict} -- " + "; ".join(parts) + ".")
    else:
        lines.append("4. Medium data (1K-10K images): not tested (no size in that range).")

    ratio = finetune["seconds"] / frozen["seconds"]
    lines.append(
        f"5. Feature extraction trains faster: {'holds' if ratio > 1.5 else 'does not hold'} -- "
        f"at {large} per class, frozen {frozen['seconds']:.1f} s vs finetune "
        f"{finetune['seconds']:.1f} s of training ({ratio:.1f}x)."
    )
    return lines


def table(rows) -> str:
    lines = [
        "| examples per class (total) | method | epochs (steps) | test accuracy "
        "| training time (s) | trainable parameters |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        trainable = " → ".join(f"{n:,}" for n in r["trainable"])
        lines.append(
            f"| {r['per_class']} ({r['examples']}) | {r['method']} | {r['epochs']} "
            f"({r['steps']}) | "
            f"{100 * r['accuracy']:.1f}% ± {100 * r['accuracy_std']:.1f} | "
            f"{r['seconds']:.1f} ± {r['seconds_std']:.1f} | {trainable} |"
        )
    return "\n".join(lines)


def plot_validation(records, path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kcnn.viz import save_figure

    sizes = sorted({r["per_class"] for r in records})
    figure, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for method in METHODS:
            curves = np.array([r["val_accuracy"] for r in records
                               if r["per_class"] == size and r["method"] == method])
            if not len(curves):
                continue
            epochs = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            ax.plot(epochs, mean, label=method)
            ax.fill_between(epochs, mean - curves.std(axis=0), mean + curves.std(axis=0),
                            alpha=0.2)
        ax.set_title(f"{size} labelled examples per class")
        steps = next(r["steps"] // r["epochs"] for r in records if r["per_class"] == size)
        ax.set_xlabel(f"epoch ({steps} steps)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    figure.tight_layout()
    return save_figure(figure, path)


def plot_sizes(rows, path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kcnn.viz import save_figure

    figure, ax = plt.subplots(figsize=(5.5, 4))
    for method in METHODS:
        selected = [r for r in rows if r["method"] == method]
        ax.errorbar([r["per_class"] for r in selected],
                    [100 * r["accuracy"] for r in selected],
                    yerr=[100 * r["accuracy_std"] for r in selected], marker="o", capsize=3,
                    label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv=None) -> int:
    start = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    plan = dict(QUICK if args.quick else FULL)
    if args.seeds is not None:
        plan["seeds"] = args.seeds
    if args.sizes:
        plan["sizes"] = tuple(int(s) for s in args.sizes.split(","))
    from kcnn.cli import parse_options
    from kcnn.files import write_json, write_text

    args.options = parse_options(args.backbone_option, "--backbone-option")
    if not args.backbone_option and args.backbone == "tiny_resnet":
        args.options = {"width": 0.25}
    args.unfreeze = args.unfreeze if args.unfreeze == "all" else int(args.unfreeze)
    os.makedirs(args.out, exist_ok=True)

    from kcnn import registry

    kcnn_backbone = args.backbone in registry.list_models()
    channels = None if kcnn_backbone else 3
    size = (args.image_size, args.image_size) if args.image_size else None
    target = class_arrays(args.target, args.target_classes, size, channels, args.data_dir)
    if args.weights == "pretrain":
        source = class_arrays(args.source, args.source_classes, target["shape"][:2],
                              target["shape"][2], args.data_dir)
        pretraining = pretrain(args, source, plan)
        weights = pretraining["weights"]
        print(f"source task: test accuracy {pretraining['test_accuracy']:.4f}, "
              f"{pretraining['seconds']:.0f} s; weights in {weights}", flush=True)
    else:
        pretraining, weights = None, args.weights

    rng = np.random.default_rng(1000)
    x, y = target["train"]
    validation_indices = per_class(y, plan["val_per_class"], rng)
    validation = (x[validation_indices], y[validation_indices])
    if target["test"] is None:
        test_indices = per_class(y, max(plan["test_per_class"] or 100, 100), rng,
                                 exclude=validation_indices)
        target["test"] = (x[test_indices], y[test_indices])
        used = np.concatenate([validation_indices, test_indices])
    else:
        used = validation_indices
        test_x, test_y = target["test"]
        keep = per_class(test_y, plan["test_per_class"], rng)
        target["test"] = (test_x[keep], test_y[keep])

    records = []
    for per_class_count in plan["sizes"]:
        for seed in range(plan["seeds"]):
            indices = per_class(y, per_class_count, np.random.default_rng(seed), exclude=used)
            for method in METHODS:
                record = run(args, method, target, indices, validation, target["test"], plan,
                             weights, seed)
                records.append(record)
                print(f"{per_class_count:>5}/class seed {seed} {method:<11} "
                      f"test {record['test_accuracy']:.4f}  {record['train_seconds']:6.1f} s  "
                      f"{record['epochs']} epochs, {record['steps']} steps", flush=True)

    rows = summarise(records)
    lines = verdicts(rows)
    val_plot = plot_validation(records, os.path.join(args.out, "val_accuracy.png"))
    size_plot = plot_sizes(rows, os.path.join(args.out, "test_accuracy.png"))
    elapsed = time.perf_counter() - start
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python experiments/transfer_learning.py", *arguments])
    write_json(os.path.join(args.out, "results.json"), {
        "command": command, "plan": plan, "pretraining": pretraining, "records": records,
        "rows": rows, "verdicts": lines, "seconds": elapsed})
    report = render_report(args, plan, target, pretraining, weights, rows, lines, command,
                           elapsed, val_plot, size_plot)
    write_text(os.path.join(args.out, "report.md"), report)
    print()
    print(table(rows))
    print()
    print("\n".join(lines))
    print(f"\nreport: {os.path.join(args.out, 'report.md')} ({elapsed / 60:.1f} min)")
    return 0


def render_report(args, plan, target, pretraining, weights, rows, lines, command, elapsed,
                  val_plot, size_plot) -> str:
    from kcnn.report import describe_hardware
    from kcnn.training import resolve_precision

    options = ", ".join(f"{k}={v}" for k, v in args.options.items()) or "defaults"
    if pretraining:
        origin = (
            f"pre-trained from scratch on `{args.source}` classes {args.source_classes} "
            f"({pretraining['examples']} images, {pretraining['epochs']} epochs, source test "
            f"accuracy {100 * pretraining['test_accuracy']:.1f}%, {pretraining['seconds']:.0f} s), "
            f"weights saved to `{weights}`"
        )
    else:
        origin = f"weights `{weights}`"
    unfreeze = "all blocks" if args.unfreeze == "all" else f"the top {args.unfreeze} blocks"
    return f"""# Transfer learning: scratch vs frozen vs fine-tuned vs progressive

Command: `{command}`

Hardware: {describe_hardware()}; precision {resolve_precision('auto')}; load average (1 min) at
the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (above the core count, other processes
shared the CPU and slowed the times). Time taken: {elapsed / 60:.1f} min.

## Set-up

- Backbone: `{args.backbone}` ({options}), {origin}.
- Target task: `{args.target}` classes {args.target_classes} ({', '.join(target['class_names'])}),
  {'x'.join(map(str, target['shape']))} images; for each size, that many labelled training
  examples per class drawn with the seed; validation: {plan['val_per_class']} per class from the
  other training images (curves only, no model selection); test: {len(target['test'][1])}
  images of the test split.
- Same examples and epochs for every method of a size: an epoch is the labelled examples,
  repeated until it has at least {plan['epoch_steps']} steps; at least {plan['min_steps']} steps
  and {plan['min_epochs']} epochs in all; batch {args.batch_size}, Adam, constant learning rates.
  scratch: random weights, everything at 1e-3. frozen: head only at 1e-3. finetune: everything
  at 1e-4. progressive: head at 1e-3 for half the epochs, then {unfreeze} at
  {args.finetune_lr:g}. BatchNormalization of pretrained backbones in inference mode.
- {plan['seeds']} seed(s) per size: mean ± standard deviation. Training time is the time of the
  training steps (validation excluded, graph tracing of the first step included). Trainable
  parameters: per phase.

## Results

{table(rows)}

![validation accuracy per epoch]({os.path.basename(val_plot)})

![test accuracy against labelled examples]({os.path.basename(size_plot)})

## The course's claims in these numbers

A difference counts when it is larger than the sum of the two standard deviations over seeds,
and at least {100 * NOISE_FLOOR:.1f} point.

{chr(10).join('- ' + line for line in lines)}
"""


if __name__ == "__main__":
    sys.exit(main())
