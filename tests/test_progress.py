"""kcnn.progress: which step of how many, elapsed and remaining time."""

import io

import pytest

from kcnn.progress import Progress, format_duration, track


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0 s"),
        (44.6, "45 s"),
        (60, "1 min"),
        (80, "1 min 20 s"),
        (3600, "1 h"),
        (7530, "2 h 5 min"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_one_line_per_step_with_elapsed_and_remaining_time():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(12, "run", stream=stream, clock=clock)
    progress.step()
    clock.now += 40
    progress.step("seed 0, vgg11")
    clock.now += 40
    progress.step()
    clock.now += 160
    progress.close()
    assert stream.getvalue().splitlines() == [
        "run 1/12",
        "run 2/12 (seed 0, vgg11), 40 s elapsed, about 7 min 20 s left",
        "run 3/12, 1 min 20 s elapsed, about 6 min 40 s left",
        "3 runs in 4 min",
    ]


def test_steps_of_several_units_estimate_from_the_units_done():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(1000, "image", stream=stream, clock=clock)
    progress.step(size=250)
    clock.now += 10
    progress.step(size=250)
    assert stream.getvalue().splitlines()[-1] == "image 500/1000, 10 s elapsed, about 30 s left"


def test_a_terminal_line_is_redrawn_in_place():
    clock, stream = FakeClock(), Terminal()
    progress = Progress(2, "trial", stream=stream, clock=clock)
    progress.step("a much longer name of the first trial")
    clock.now += 5
    progress.step()
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.rstrip("\n").split("\r")[1:]
    assert frames[2].rstrip() == "2 trials in 5 s"
    assert frames[0] == "trial 1/2 (a much longer name of the first trial)"
    assert frames[1].startswith("trial 2/2, 5 s elapsed, about 5 s left")
    assert len(frames[1]) == len(frames[0])  # padded over the longer line it replaces


def test_track_yields_every_item_and_closes():
    stream = io.StringIO()
    items = list(track(["a", "b"], "fold", stream=stream, detail=str.upper))
    assert items == ["a", "b"]
    lines = stream.getvalue().splitlines()
    assert lines[0] == "fold 1/2 (A)" and lines[1].startswith("fold 2/2 (B), ")
    assert lines[2].startswith("2 folds in ")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"total": -1}, "total"), ({"total": 2.5}, "total"), ({"total": 3, "what": ""}, "what")],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Progress(**kwargs)


def test_more_steps_than_announced_is_an_error():
    progress = Progress(2, stream=io.StringIO())
    progress.step(size=2)
    with pytest.raises(ValueError, match="size"):
        progress.step()
