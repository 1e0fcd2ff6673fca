"""experiments/common.py: the subsets are fixed, disjoint and stratified; bad sizes are errors;
the options of a quick and a full plan say both values and take the command line's first."""

import numpy as np
import pytest


def test_subsets_are_stratified_disjoint_and_the_same_every_time():
    from common import dataset_splits

    splits = dataset_splits("fashion_mnist", train_size=1000, validation_size=500, test_size=300)
    assert [len(part[1]) for part in (splits.train, splits.validation, splits.test)] == [
        1000,
        500,
        300,
    ]
    for images, labels in (splits.train, splits.validation, splits.test):
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 1)
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), len(labels) // 10)
    train = {image.tobytes() for image in splits.train[0]}
    assert not train & {image.tobytes() for image in splits.validation[0]}
    again = dataset_splits("fashion_mnist", train_size=1000, validation_size=500, test_size=300)
    np.testing.assert_array_equal(again.train[0], splits.train[0])
    assert "1,000 training, 500 validation and 300 test images" in splits.describe()


@pytest.mark.parametrize(("option", "value"), [("train_size", 0), ("validation_size", -1)])
def test_bad_sizes_and_datasets_are_value_errors(option, value):
    from common import dataset_splits

    with pytest.raises(ValueError, match=option):
        dataset_splits("fashion_mnist", **{option: value})
    with pytest.raises(ValueError, match="dataset must be one of"):
        dataset_splits("imagenet")


def test_run_progress_counts_every_seed_of_every_configuration(capsys):
    from common import run_progress

    progress = run_progress(2, ("mlp", "simple_cnn", "vgg11"))
    for seed in range(2):
        for name in ("mlp", "simple_cnn", "vgg11"):
            progress.step(f"seed {seed}, {name}")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "run 1/6 (seed 0, mlp)"
    assert lines[-1].startswith("run 6/6 (seed 1, vgg11), ") and "left" in lines[-1]


QUICK = dict(train_size=300, epochs=1, rates=(0.5,), seeds=1)
FULL = dict(train_size=None, epochs=10, rates=(0.2, 0.5), seeds=3)


def _plan_parser():
    from common import add_plan_option, parser

    result = parser("test", "test")
    add_plan_option(result, "--train-size", QUICK, FULL, "training images", type=int)
    add_plan_option(result, "--epochs", QUICK, FULL, "epochs", note="at least 1", type=int)
    add_plan_option(result, "--rates", QUICK, FULL, "dropout rates", type=float, nargs="+")
    return result


def test_plan_options_say_their_quick_and_full_values(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    text = _plan_parser().format_help()
    assert "training images (quick 300, full: all)" in text
    assert "epochs (quick 1, full 10; at least 1)" in text
    assert "dropout rates (quick 0.5, full 0.2 0.5)" in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"train_size": None, "epochs": 10, "rates": (0.2, 0.5), "seeds": 3}),
        (["--quick"], {"train_size": 300, "epochs": 1, "rates": (0.5,), "seeds": 1}),
        (
            ["--quick", "--epochs", "4", "--rates", "0.1", "0.3", "--seeds", "2"],
            {"train_size": 300, "epochs": 4, "rates": [0.1, 0.3], "seeds": 2},
        ),
        (["--train-size", "50"], {"train_size": 50, "epochs": 10, "rates": (0.2, 0.5), "seeds": 3}),
    ],
)
def test_plan_options_take_the_command_line_then_the_quick_or_full_plan(argv, expected):
    from common import fill_from_plan

    args = _plan_parser().parse_args(argv)
    fill_from_plan(args, QUICK, FULL)
    assert {key: getattr(args, key) for key in expected} == expected


def test_a_plan_option_missing_from_a_plan_is_a_key_error_naming_the_flag():
    from common import add_plan_option, parser

    with pytest.raises(KeyError, match="--width: the quick and full plan has no 'width'"):
        add_plan_option(parser("test", "test"), "--width", QUICK, FULL, "width", type=float)
    with pytest.raises(KeyError, match="--width: the full plan has no 'width'"):
        add_plan_option(parser("test", "test"), "--width", {"width": 1}, FULL, "width")


def _journal_args(out, **changes):
    import argparse

    plan = dict(out=str(out), fresh=False, seeds=3, epochs=2, precision="float32", only=None)
    return argparse.Namespace(**{**plan, **changes})


class _Trainer:
    """A stand-in for `common.run`: counts its calls and returns a record with a NaN loss."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"test_accuracy": 0.5 + self.calls / 100, "loss": [1.0, float("nan")]}


def test_journal_reads_back_finished_runs_instead_of_training_them(tmp_path):
    from common import JOURNAL, RunJournal

    first = RunJournal(_journal_args(tmp_path), exclude=("only",))
    trainer = _Trainer()
    records = [first.run(name, seed, trainer) for seed in (0, 1) for name in ("a", "b")]
    assert trainer.calls == 4 and first.trained == 4 and first.resumed == 0
    assert records[0]["loss"][0] == 1.0 and np.isnan(records[0]["loss"][1])

    # a new command of the same plan, more seeds and another --only: reads back, trains seed 2
    again = RunJournal(_journal_args(tmp_path, seeds=5, only=["L2"]), exclude=("only",))
    more = _Trainer()
    again.start(3, ("a", "b"))
    assert again.progress.total == 2
    read = [again.run(name, seed, more) for seed in (0, 1) for name in ("a", "b")]
    assert more.calls == 0 and np.isnan(read[0]["loss"][1])
    assert [r["test_accuracy"] for r in read] == [r["test_accuracy"] for r in records]
    again.run("a", 2, more)
    assert more.calls == 1 and (again.trained, again.resumed) == (1, 4)
    assert "1 trained by this command, 4 read back" in again.describe()
    assert len((tmp_path / JOURNAL).read_text().splitlines()) == 5


def test_journal_trains_again_for_another_plan_or_fresh_and_keeps_every_line(tmp_path):
    from common import JOURNAL, RunJournal

    trainer = _Trainer()
    RunJournal(_journal_args(tmp_path)).run("a", 0, trainer)
    RunJournal(_journal_args(tmp_path, epochs=3)).run("a", 0, trainer)
    RunJournal(_journal_args(tmp_path, precision="mixed_bfloat16")).run("a", 0, trainer)
    assert trainer.calls == 3
    fresh = RunJournal(_journal_args(tmp_path, fresh=True))
    assert fresh.run("a", 0, trainer)["test_accuracy"] == 0.54 and trainer.calls == 4
    assert RunJournal(_journal_args(tmp_path)).run("a", 0, trainer)["test_accuracy"] == 0.54
    assert trainer.calls == 4  # the newest line of the plan wins
    assert len((tmp_path / JOURNAL).read_text().splitlines()) == 4


def test_journal_skips_a_line_torn_by_a_kill_and_appends_after_it(tmp_path):
    from common import JOURNAL, RunJournal

    trainer = _Trainer()
    RunJournal(_journal_args(tmp_path)).run("a", 0, trainer)
    with open(tmp_path / JOURNAL, "a", encoding="utf-8") as file:
        file.write('{"plan": {"epochs": 2}, "name": "b", "se')  # killed mid-line
    journal = RunJournal(_journal_args(tmp_path))
    journal.run("a", 0, trainer)
    journal.run("b", 0, trainer)
    assert trainer.calls == 2
    reread = RunJournal(_journal_args(tmp_path))
    assert reread.run("b", 0, trainer)["test_accuracy"] == 0.52 and trainer.calls == 2


def test_journal_refuses_a_record_that_is_not_json(tmp_path):
    from common import RunJournal

    with pytest.raises(TypeError, match="journaled run record holds object"):
        RunJournal(_journal_args(tmp_path)).run("a", 0, lambda: {"model": object()})
