"""Progress of long work outside Keras's ``fit``: an experiment's runs, a search's trials, the
decoding of an image folder.

Keras shows the progress of each epoch; nothing shows which run of twelve is going and when the
last will end. `Progress` prints that, one line per step: ``run 3/12, 1 min 20 s elapsed, about
4 min left``, the time left estimated from the steps done so far. On a terminal the line is
redrawn in place; written to a log file or a pipe, each step is one line, and nothing more.

The module imports neither TensorFlow nor Keras.

Example:
    >>> from kcnn.progress import track
    >>> for seed in track(range(3), "run"):  # doctest: +SKIP
    ...     train_one(seed)
    run 1/3
    run 2/3, 40 s elapsed, about 1 min 20 s left
    run 3/3, 1 min 21 s elapsed, about 40 s left
    3 runs in 2 min 2 s
"""

from __future__ import annotations

import sys
import time

from kcnn import checks

__all__ = ["Progress", "format_duration", "is_terminal", "track"]


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (it has ``isatty()`` and it is true)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def format_duration(seconds: float) -> str:
    """``seconds`` the way a person says it: ``"45 s"``, ``"1 min 20 s"``, ``"2 h 5 min"``.

    Raises:
        ValueError: when ``seconds`` is negative or not a number.
    """
    total = round(checks.non_negative_number("seconds", seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


class Progress:
    """Which step of how many, the time elapsed and the time left, one line per step.

    Call `step` when each step starts and `close` when the work is over (`track` does both).
    The time left is the mean time of the steps done so far times the steps not done yet,
    the current one included; the first step has no estimate. A step may count several units
    (``step(size=256)`` for a batch of 256 images of a folder).

    Args:
        total: the number of steps (units).
        what: the name of one step, in the singular (``"run"``, ``"trial"``, ``"image"``).
        stream: where the lines go (default ``sys.stderr``, so that the results a script prints
            on standard output stay apart).
        clock: seconds from a fixed origin (``time.monotonic``; a test passes a fake one).

    Raises:
        ValueError: when ``total`` is a negative or not an integer, or ``what`` is empty.
    """

    def __init__(self, total: int, what: str = "step", stream=None, clock=time.monotonic):
        self.total = checks.integer("total", total, low=0)
        if not isinstance(what, str) or not what:
            raise ValueError(f"what must be a non-empty string, got {what!r}")
        self.what = what
        self.stream = sys.stderr if stream is None else stream
        self.clock = clock
        self.started = clock()
        self.count = 0
        self.done = 0
        self._redraw = is_terminal(self.stream)
        self._width = 0

    def line(self, detail: str = "") -> str:
        """Where the work stands now that the step up to ``count`` has started, as one line."""
        parts = [f"{self.what} {self.count}/{self.total}" + (f" ({detail})" if detail else "")]
        if self.done > 0:
            elapsed = self.clock() - self.started
            left = elapsed / self.done * (self.total - self.done)
            parts.append(f"{format_duration(elapsed)} elapsed")
            parts.append(f"about {format_duration(left)} left")
        return ", ".join(parts)

    def step(self, detail: str = "", size: int = 1) -> None:
        """Start the next step and show where the work stands.

        Args:
            detail: what this step is, shown in brackets (``"seed 1, resnet18"``).
            size: the units this step counts.

        Raises:
            ValueError: when ``size`` is not a positive integer or goes past ``total``.
        """
        size = checks.positive_int("size", size)
        if self.count + size > self.total:
            raise ValueError(
                f"size must keep the count within {self.total} {self.what}s, got {size!r} "
                f"after {self.count}"
            )
        self.done = self.count
        self.count += size
        self._show(self.line(detail))

    def close(self) -> None:
        """End the progress with the steps done and the total time, on a line of its own."""
        elapsed = format_duration(self.clock() - self.started)
        noun = self.what if self.count == 1 else self.what + "s"
        self._show(f"{self.count} {noun} in {elapsed}")
        if self._redraw:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, text: str) -> None:
        if self._redraw:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def track(items, what: str = "step", total: int | None = None, stream=None, detail=None):
    """Yield each of ``items``, showing the progress of the loop (see `Progress`).

    Args:
        items: an iterable; its ``len`` is the total unless ``total`` is given.
        what: the name of one step, in the singular.
        total: the number of items, for an iterable without ``len``.
        stream: where the lines go (default ``sys.stderr``).
        detail: a function of an item giving the text shown in brackets for it, or None.

    Raises:
        ValueError: when ``total`` is negative or not an integer.
    """
    progress = Progress(len(items) if total is None else total, what, stream)
    for item in items:
        progress.step(detail(item) if detail is not None else "")
        yield item
    progress.close()
