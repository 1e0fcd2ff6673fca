"""What the experiments of this folder share: their common command-line options, the dataset
subsets they train on, one training run measured the same way for every configuration, the
journal that lets a long experiment resume, and the mean ± std over seeds.

A run trains with `kcnn.training.train` on a fixed training subset, follows a fixed validation
subset epoch by epoch, and measures at the end the test accuracy and the training accuracy, both
in inference mode (no dropout, no augmentation), so that the generalisation gap
``train accuracy - test accuracy`` compares configurations fairly.

Import it from a script of this folder (``python experiments/<name>.py`` puts the folder on
``sys.path``): ``from common import ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

import numpy as np

from kcnn.checks import positive_int as positive  # the scripts' option check

ACCURACY_FLOOR = 0.005  # differences of accuracy under half a point are never called a win
DATASETS = ("fashion_mnist", "mnist", "cifar10")
JOURNAL = "runs.jsonl"


def parser(description: str, name: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the options every experiment takes.

    ``--quick`` (the smoke test CI runs), ``--seeds`` (runs per configuration, reported as
    mean ± std; None lets the script choose for its mode), ``--out`` (default
    ``results/<name>``), ``--dataset``, ``--data-dir`` and ``--precision``.
    """
    result = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    result.add_argument(
        "--quick",
        action="store_true",
        help="small subsets, few epochs, one seed: a few minutes on 2 CPU cores",
    )
    result.add_argument(
        "--seeds", type=int, help="runs per configuration, with seeds 0..N-1 (mean ± std)"
    )
    result.add_argument(
        "--out",
        default=os.path.join("results", name),
        help=f"folder of the report and figures (default results/{name})",
    )
    result.add_argument(
        "--dataset",
        default="fashion_mnist",
        choices=DATASETS,
        help="found on disk first, downloaded otherwise (default fashion_mnist)",
    )
    result.add_argument("--data-dir", help="folder searched first for the dataset")
    result.add_argument(
        "--precision",
        default="auto",
        help="kcnn.training precision: auto, float32, mixed_bfloat16...",
    )
    return result


def open_report(args, title: str):
    """What every training experiment does first: quiet TensorFlow's C++ logs (before it is
    imported), resolve ``args.precision`` in place (``"auto"`` becomes what it picks on this
    machine, so that the report names it), and open the report, whose clock starts now.

    Returns:
        the `kcnn.report.Report` titled ``title``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from kcnn.report import Report
    from kcnn.training import resolve_precision

    args.precision = resolve_precision(args.precision)
    return Report(title)


def write_report(report, out: str) -> int:
    """Write ``report`` (``report.md`` and ``results.json``) into ``out``, print it, and return
    the exit status 0."""
    path = report.write(out)
    print(report.markdown())
    print(f"wrote {path}", file=sys.stderr)
    return 0


def add_plan_option(
    argument_parser: argparse.ArgumentParser,
    flag: str,
    quick: dict,
    full: dict,
    help: str,
    *,
    note: str = "",
    **kwargs,
) -> None:
    """Declare ``flag`` (``"--train-size"``), an option whose default is the script's ``quick``
    or ``full`` plan: its help is ``help`` followed by both values, ``"epochs (quick 2, full
    6)"`` (``"full: all"`` for a value None: no limit; a tuple's items as typed, ``"full 0.2
    0.5"``), then ``"; note"`` inside the brackets when there is one. ``kwargs`` go to
    ``add_argument`` (``type``, ``nargs``...).

    The default stays None, so that `fill_from_plan`, called after parsing, can tell a value
    given on the command line (kept) from an unset one (the ``--quick`` or full plan's).

    Raises:
        KeyError: naming the flag, when either plan lacks its key (``"train_size"``).
    """
    key = flag.removeprefix("--").replace("-", "_")
    missing = [name for name, plan in (("quick", quick), ("full", full)) if key not in plan]
    if missing:
        raise KeyError(f"{flag}: the {' and '.join(missing)} plan has no {key!r}")
    modes = ", ".join(
        f"{mode}: all" if plan[key] is None else f"{mode} {_as_typed(plan[key])}"
        for mode, plan in (("quick", quick), ("full", full))
    )
    argument_parser.add_argument(
        flag, help=f"{help} ({modes}{'; ' + note if note else ''})", **kwargs
    )


def _as_typed(value) -> str:
    """A plan's value as it would be typed on the command line: ``(0.2, 0.5)`` as ``0.2 0.5``."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def fill_from_plan(args, quick: dict, full: dict) -> None:
    """Set every option the command line left unset (None), those of `add_plan_option` among
    them, to its value in the ``quick`` plan (with ``--quick``) or the ``full`` one."""
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


@dataclasses.dataclass(frozen=True)
class Splits:
    """uint8 image and int64 label arrays of a dataset's training, validation and test subsets."""

    train: tuple
    validation: tuple
    test: tuple
    class_names: tuple
    source: str
    name: str

    def describe(self) -> str:
        """One line: the dataset, where it was read, and the size of each subset."""
        return (
            f"{self.name} ({self.source}): {len(self.train[1]):,} training, "
            f"{len(self.validation[1]):,} validation and {len(self.test[1]):,} test images"
        )

    def padded(self, size: int) -> Splits:
        """These subsets with every image zero-padded, centred, to ``size`` x ``size``: 28x28
        MNIST digits become the 32x32 inputs of LeNet-5 (LeCun et al. 1998) and CIFAR-stem
        ResNets. Images already ``size`` x ``size`` are left as they are.

        Raises:
            ValueError: when ``size`` is smaller than the images.
        """
        height, width = self.train[0].shape[1:3]
        if isinstance(size, bool) or not isinstance(size, int) or size < max(height, width):
            raise ValueError(f"size must be an int of at least {max(height, width)}, got {size!r}")
        top, left = (size - height) // 2, (size - width) // 2
        pad = ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0))
        parts = {
            part: (np.pad(getattr(self, part)[0], pad), getattr(self, part)[1])
            for part in ("train", "validation", "test")
        }
        return dataclasses.replace(self, **parts)


def _stratified(labels, size: int | None, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` examples with the class proportions of ``labels`` (all when
    ``size`` is None or not smaller)."""
    from kcnn.data.splits import stratified_split

    if size is None or size >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, size / len(labels), seed)[1]


def dataset_splits(
    name: str = "fashion_mnist",
    train_size: int | None = None,
    validation_size: int = 1000,
    test_size: int | None = None,
    data_dir=None,
) -> Splits:
    """Fixed, stratified subsets of a named dataset (the same for every seed and configuration).

    The validation subset is taken from the training split (it never overlaps the training
    subset), the training subset from the rest, the test subset from the test split.

    Args:
        name: ``"fashion_mnist"``, ``"mnist"`` or ``"cifar10"`` (see `kcnn.data.load`).
        train_size: training images (None: all that are left after validation).
        validation_size: validation images.
        test_size: test images (None: the whole test split).
        data_dir: folder searched first.

    Raises:
        ValueError: for an unknown name or sizes that are not positive.
        FileNotFoundError: when the dataset is neither on disk nor downloadable.
    """
    from kcnn.data.named import NAMED_DATASETS, load_named

    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    for option, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None:
            positive(option, value)
    positive("validation_size", validation_size)
    raw = load_named(name, data_dir)
    x, y = raw.train
    held = _stratified(y, validation_size, seed=0)
    rest = np.setdiff1d(np.arange(len(y)), held, assume_unique=True)
    chosen = rest[_stratified(y[rest], train_size, seed=1)]
    x_test, y_test = raw.test
    tested = _stratified(y_test, test_size, seed=2)
    return Splits(
        train=(x[chosen], y[chosen]),
        validation=(x[held], y[held]),
        test=(x_test[tested], y_test[tested]),
        class_names=NAMED_DATASETS[name].class_names,
        source=raw.source,
        name=name,
    )


def add_journal_option(argument_parser: argparse.ArgumentParser) -> None:
    """Declare ``--fresh``, for the experiments whose runs a `RunJournal` keeps."""
    argument_parser.add_argument(
        "--fresh",
        action="store_true",
        help=f"train every run again instead of reading back those already in OUT/{JOURNAL} "
        "(which are kept: the new lines come after them)",
    )


class RunJournal:
    """The finished runs of one experiment, one JSON line each in ``<out>/runs.jsonl``, so that
    a full run stopped part-way (a session that ended, a kill, a crash) resumes where it
    stopped: the same command again reads back the runs already done instead of training them.

    A run is known by its configuration's name, its seed and the experiment's plan: every
    option but ``--out``, ``--fresh``, ``--seeds`` (seed 2 of three is seed 2 of five) and the
    script's ``exclude`` (options that choose which runs or measure something else, never what
    one run does). A different plan, precision included, trains again. Each line is written
    whole and synced to disk, so a kill can tear only the line being written, which is skipped
    when read; nothing is ever removed, and with ``--fresh`` the runs are trained again and
    their newer lines win. Each line names the machine it was trained on: `describe` lists them,
    since the speeds of runs read back were measured there.

    Only the runs a script can rebuild from their record can be journaled: not those that keep
    their model (``keep_model``) or fill a callback's measurements.

    Args:
        args: the parsed options, after `open_report` resolved ``precision``; ``args.out`` is
            the folder, ``args.fresh`` (`add_journal_option`) whether to train every run again.
        exclude: more option names left out of the plan.
    """

    def __init__(self, args, exclude=()):
        from kcnn.report import describe_hardware

        ignored = {"out", "fresh", "seeds", *exclude}
        self.path = os.path.join(args.out, JOURNAL)
        self.plan = json.loads(
            json.dumps(
                {k: v for k, v in sorted(vars(args).items()) if k not in ignored}, default=str
            )
        )
        self.hardware = describe_hardware()
        self.trained = self.resumed = 0
        self.machines: dict[str, int] = {}
        self.progress = None
        self._runs = {} if args.fresh else self._read()

    def _read(self) -> dict:
        """``{(name, seed): line}`` of the journal's runs of this plan (the last line wins)."""
        try:
            with open(self.path, encoding="utf-8") as file:
                lines = file.readlines()
        except FileNotFoundError:
            return {}
        runs = {}
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # torn by a kill while it was written
                continue
            if isinstance(entry, dict) and entry.get("plan") == self.plan:
                runs[(entry["name"], entry["seed"])] = entry
        return runs

    def start(self, seeds: int, names) -> None:
        """Count the runs (``seeds`` x ``names``) still to train, for the progress lines that
        `run` prints before each (``run 3/7 (seed 1, vgg11), ... about 20 min left``)."""
        from kcnn.progress import Progress

        missing = sum((name, seed) not in self._runs for seed in range(seeds) for name in names)
        self.progress = Progress(missing, "run")

    def run(self, name: str, seed: int, train) -> dict:
        """The record of configuration ``name`` at ``seed``: read back from the journal, or
        ``train()``'s (a `run` record without a model), appended to it. Both come back the same,
        as JSON reads them (tuples as lists, NaN as NaN)."""
        entry = self._runs.get((name, seed))
        if entry is None:
            if self.progress is not None:
                self.progress.step(f"seed {seed}, {name}")
            entry = self._append(
                {"plan": self.plan, "name": name, "seed": seed, "hardware": self.hardware}, train()
            )
            self._runs[(name, seed)] = entry
            self.trained += 1
        else:
            self.resumed += 1
        self.machines[entry["hardware"]] = self.machines.get(entry["hardware"], 0) + 1
        return entry["record"]

    def _append(self, entry: dict, record: dict) -> dict:
        line = json.dumps({**entry, "record": record}, default=_plain) + "\n"
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        with open(self.path, "a+b") as file:
            if file.tell() and not _ends_with_newline(file):
                line = "\n" + line  # after a line torn by a kill
            file.write(line.encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())
        return json.loads(line)

    def describe(self) -> str:
        """One paragraph: how many runs were trained now and read back, and on which machines."""
        where = "; ".join(f"{machine} ({count})" for machine, count in self.machines.items())
        return (
            f"Runs: {self.trained} trained by this command, {self.resumed} read back from "
            f"`{JOURNAL}`, where an earlier command of the same plan had finished them (`--fresh` "
            f"trains them all again). Trained on: {where}."
        )


def _plain(value):
    """A NumPy number or array as Python's, for `json.dumps`."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"a journaled run record holds {type(value).__name__}, not JSON: {value!r}")


def _ends_with_newline(file) -> bool:
    file.seek(-1, os.SEEK_END)
    return file.read(1) == b"\n"


def run_progress(seeds: int, configurations):
    """A `kcnn.progress.Progress` over the ``seeds`` x ``len(configurations)`` runs of an
    experiment. Call its ``step(f"seed {seed}, {name}")`` before each `run`: standard error then
    says which run of how many is going, the time elapsed and about how much is left
    (``run 3/12 (seed 0, vgg11), 1 min 20 s elapsed, about 4 min left``).
    """
    from kcnn.progress import Progress

    return Progress(seeds * len(configurations), "run")


def run(
    model: str,
    splits: Splits,
    epochs: int,
    seed: int,
    *,
    model_kwargs=None,
    augment=None,
    batch_size: int = 128,
    precision: str = "auto",
    time_inference: bool = False,
    callbacks=(),
    keep_model: bool = False,
    **train_kwargs,
) -> dict:
    """Train the registered ``model`` on ``splits`` and measure it.

    Args:
        model: a registry name, built for the data by `kcnn.training.build_model`.
        splits: the data (`dataset_splits`).
        epochs: training epochs.
        seed: seeds the weights, the shuffling, the augmentation and dropout.
        model_kwargs: builder arguments.
        augment: `kcnn.data.make_dataset`'s augmentation (training batches only).
        batch_size: training batch size.
        precision: `kcnn.training.train`'s precision.
        time_inference: also measure ``inference_images_per_second``: ``model.predict`` over
            the test subset, timed on a second pass (the first compiles).
        callbacks: more Keras callbacks for ``fit``.
        keep_model: put the trained model in the result, as ``model``.
        **train_kwargs: more `kcnn.training.train` arguments (``learning_rate``, ``l2``...).

    Returns:
        A dict: ``params``, ``test_accuracy``, ``train_accuracy`` (inference mode, on the
        training subset), ``gap`` (their difference), the per-epoch ``val_accuracy``,
        ``val_loss``, ``loss`` and ``epoch_seconds``, ``images_per_second`` (training, after
        the first epoch, which also compiles), ``seconds`` (the whole run) and
        ``diverged`` (the loss became NaN or infinite: the run stopped there, and its
        accuracies are those of the diverged weights).
    """
    import keras

    from kcnn.data import make_dataset
    from kcnn.training import TrainingDiverged, build_model, train

    start = time.perf_counter()
    options = dict(normalize=None, validation_split=0.0, class_names=splits.class_names)
    train_data, info = make_dataset(splits.train, batch_size, augment=augment, seed=seed, **options)
    evaluation = {
        part: make_dataset(getattr(splits, part), 256, shuffle=False, **options)[0]
        for part in ("train", "validation", "test")
    }
    built = {}

    def make_model():
        built["model"] = build_model(model, info, model_kwargs)
        return built["model"]

    history = keras.callbacks.History()
    diverged = False
    try:
        result = train(
            make_model,
            train_data,
            epochs,
            validation_data=evaluation["validation"],
            test_data=evaluation["test"],
            precision=precision,
            seed=seed,
            verbose=0,
            tensorboard=False,
            callbacks=[history, *callbacks],
            **train_kwargs,
        )
        test_accuracy = result.test_accuracy
    except TrainingDiverged:
        diverged = True
        test_accuracy = _accuracy(built["model"], evaluation["test"])
    net = built["model"]
    train_accuracy = _accuracy(net, evaluation["train"])
    logs = history.history
    seconds = [float(v) for v in logs.get("train_seconds", [])]
    record = {
        "params": int(net.count_params()),
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "gap": train_accuracy - test_accuracy,
        "val_accuracy": [float(v) for v in logs.get("val_accuracy", [])],
        "val_loss": [float(v) for v in logs.get("val_loss", [])],
        "loss": [float(v) for v in logs.get("loss", [])],
        "epoch_seconds": seconds,
        "images_per_second": _speed(len(splits.train[1]), seconds),
        "seconds": time.perf_counter() - start,
        "diverged": diverged,
    }
    if time_inference:
        record["inference_images_per_second"] = _inference_speed(net, evaluation["test"])
    if keep_model:
        record["model"] = net
    return record


def _inference_speed(model, dataset) -> float:
    """Images per second of ``model.predict`` on ``dataset``, on the second of two passes."""
    model.predict(dataset, verbose=0)
    start = time.perf_counter()
    count = len(model.predict(dataset, verbose=0))
    return count / (time.perf_counter() - start)


def _speed(images: int, seconds: list[float]) -> float | None:
    """Training images per second, over the epochs after the first (which also traces and
    compiles the training step) when there are any."""
    timed = seconds[1:] or seconds
    return images * len(timed) / sum(timed) if timed and sum(timed) > 0 else None


def _accuracy(model, dataset) -> float:
    """Accuracy of ``model`` in inference mode (NaN outputs count as wrong)."""
    import keras

    correct = total = 0
    for images, labels in dataset:
        probabilities = keras.ops.convert_to_numpy(model(images, training=False))
        labels = np.asarray(labels)
        finite = np.isfinite(probabilities).all(axis=-1)
        correct += int(((probabilities.argmax(axis=-1) == labels) & finite).sum())
        total += len(labels)
    return correct / total


def values(records: list[dict], key: str) -> list[float]:
    """``record[key]`` of every record (one per seed), skipping missing ones."""
    return [r[key] for r in records if r.get(key) is not None]


def pct(numbers, digits: int = 1) -> str:
    """Fractions as ``"mean ± std"`` percentages (``"-"`` when there is none)."""
    from kcnn.report import mean_std

    return mean_std(numbers, digits=digits, scale=100) if numbers else "-"


def mean_curve(records: list[dict], key: str) -> list[float]:
    """The per-epoch mean of the curves ``record[key]``, as long as the shortest one (a
    diverged run stops early)."""
    curves = [r[key] for r in records if r.get(key)]
    if not curves:
        return []
    length = min(len(c) for c in curves)
    return [statistics.mean(c[i] for c in curves) for i in range(length)]


def epochs_to(curve: list[float], target: float) -> int | None:
    """The first epoch (from 1) at which ``curve`` reaches ``target``, or None."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)
