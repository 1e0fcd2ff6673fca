"""Reports of measured numbers: what the experiments and benchmarks write.

Every number kcnn publishes comes with the command that produced it, the hardware it ran on and
the time it took. `Report` collects tables, figures and verdicts and writes them as
``report.md`` plus ``results.json`` (atomically, see `kcnn.files`).

Example:
    >>> report = Report("MLP vs CNN", "experiments/mlp_vs_cnn.py")
    >>> report.table("Fashion-MNIST", rows, columns=["model", "parameters", "test accuracy"])
    >>> report.claim("A 10K-parameter CNN beats the 100K-parameter MLP", holds=True,
    ...              evidence="tiny_cnn 90.1 ± 0.2 % vs mlp 88.0 ± 0.3 %")
    >>> report.write("results/mlp_vs_cnn")
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shlex
import statistics
import sys
import time

from kcnn.files import write_json, write_text

VERDICTS = {True: "holds", False: "does not hold", None: "inconclusive"}


def describe_hardware() -> str:
    """One line: CPU model, cores, memory, bfloat16 support, GPUs, Python/TensorFlow/Keras."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} cores"]
    memory = _memory_gib()
    if memory:
        parts.append(f"{memory:.0f} GiB RAM")
    bfloat16 = [
        name
        for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX"))
        if flag in flags
    ]
    if bfloat16:
        parts.append(f"bfloat16 instructions: {' and '.join(bfloat16)}")
    parts.append(_gpus() or "no GPU")
    parts.append(f"Python {platform.python_version()}")
    for module in ("tensorflow", "keras"):
        if module in sys.modules:
            parts.append(f"{module} {sys.modules[module].__version__}")
    return ", ".join(parts)


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _gpus() -> str:
    if "tensorflow" not in sys.modules:
        return ""
    devices = sys.modules["tensorflow"].config.list_physical_devices("GPU")
    return f"{len(devices)} GPU(s)" if devices else ""


def load_average() -> float | None:
    """The 1-minute load average (runnable processes), or None where the OS has none: timings
    on a CPU shared with other jobs are slower when it exceeds the number of cores."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def difference_and_spread(verdict: str, a, b) -> tuple[float, float]:
    """``mean(a) - mean(b)`` and the seeds' spread ``sqrt(std(a)^2 + std(b)^2)`` (a group of one
    value has no spread), from which the verdict functions `compare` and `no_worse` decide, for
    a report that shows the margin beside the verdict.

    Raises:
        ValueError: naming ``verdict`` when ``a`` or ``b`` is empty.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError(f"{verdict} needs values on both sides, got {len(a)} and {len(b)}")
    spread = math.sqrt(sum(statistics.stdev(v) ** 2 for v in (a, b) if len(v) > 1))
    return statistics.mean(a) - statistics.mean(b), spread


def compare(a, b, floor: float = 0.0) -> bool | None:
    """Whether the values ``a`` (one per seed) are larger than ``b``, beyond their noise.

    The difference of the means counts when it exceeds ``floor`` and the seeds' spread:
    ``sqrt(std(a)^2 + std(b)^2)``, the standard deviation of the difference of two single runs
    (a group of one value has no spread; ``floor`` is then the only margin).

    Returns:
        True when ``mean(a) > mean(b)`` by more than that margin, False when ``mean(a) <
        mean(b)`` by more, None (inconclusive) otherwise: what `Report.claim` takes.

    Example:
        >>> compare([0.91, 0.92], [0.88, 0.89], floor=0.005)
        True
    """
    difference, spread = difference_and_spread("compare", a, b)
    if abs(difference) <= max(spread, floor):
        return None
    return difference > 0


def no_worse(a, b, floor: float = 0.0) -> bool | None:
    """Whether the values ``a`` (one per seed) are at least as large as ``b``: the verdict of a
    claim of no loss ("invariant", "at least as good"), which `compare` cannot give, since it
    calls every difference within the noise inconclusive.

    With ``d = mean(a) - mean(b)`` and ``s`` the seeds' spread of `compare`: False when ``a`` is
    smaller beyond the noise (``d < -max(s, floor)``), True when even ``d - s`` is within
    ``floor`` of zero (the loss, if any, is too small to matter, and the seeds say so), None
    (inconclusive) otherwise: what `Report.claim` takes.

    Example:
        >>> no_worse([0.90, 0.91], [0.905, 0.905], floor=0.02)
        True
    """
    difference, spread = difference_and_spread("no_worse", a, b)
    if difference < -max(spread, floor):
        return False
    return True if difference - spread >= -floor else None


def mean_std(values, digits: int = 2, scale: float = 1.0) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (just the value when there is one). A mean
    that rounds to zero prints ``0.0``, never ``-0.0``."""
    values = [v * scale for v in values]
    if len(values) == 1:
        return _rounded(values[0], digits)
    return f"{_rounded(statistics.mean(values), digits)} ± {statistics.stdev(values):.{digits}f}"


def _rounded(value: float, digits: int) -> str:
    return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table of ``rows`` (dicts), in the order of ``columns`` (default: every key of
    every row, in the order first met, so that no row's value is left out). Floats are shown
    with 4 significant digits, integers with separators; a ``|`` in a heading or a cell is
    escaped, so that ``"largest |w|"`` stays one column."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))

    def escaped(text) -> str:
        return str(text).replace("|", "\\|")

    def cell(value):
        if isinstance(value, bool) or value is None:
            return "-" if value is None else str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:.4g}"
        return escaped(value)

    lines = ["| " + " | ".join(map(escaped, columns)) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class Report:
    """The report of one experiment run: tables, figures and one verdict per claim.

    Args:
        title: the report's heading.
        command: the command that reproduces it (default: this process's command line).
    """

    def __init__(self, title: str, command: str | None = None):
        self.title = title
        self.command = command or " ".join(shlex.quote(a) for a in ["python", *sys.argv])
        self.started = time.perf_counter()
        self.load_at_start = load_average()
        self.date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        self.sections: list[str] = []
        self.claims: list[dict] = []
        self.results: dict = {}

    def text(self, markdown: str) -> None:
        """A paragraph of Markdown."""
        self.sections.append(markdown.strip() + "\n")

    def table(self, title: str, rows: list[dict], columns: list[str] | None = None) -> None:
        """A table under a ``### title`` heading; the rows also go to ``results.json``, keyed by
        the title, which must therefore be new (a ValueError otherwise)."""
        if title in self.results:
            raise ValueError(f"the report already has a table titled {title!r}")
        self.sections.append(f"### {title}\n\n{markdown_table(rows, columns)}")
        self.results[title] = rows

    def figure(self, path, caption: str) -> None:
        """A PNG already written next to ``report.md`` (``path`` is relative to it or absolute)."""
        self.sections.append(f"![{caption}]({os.path.basename(os.fspath(path))})\n\n*{caption}*\n")

    def claim(self, claim: str, holds: bool | None, evidence: str) -> None:
        """A claim of the course and what the numbers say of it: ``holds`` is True (holds),
        False (does not hold) or None (inconclusive)."""
        self.claims.append({"claim": claim, "verdict": VERDICTS[holds], "evidence": evidence})

    def markdown(self) -> str:
        seconds = time.perf_counter() - self.started
        lines = [
            f"# {self.title}",
            "",
            f"- Command: `{self.command}`",
            f"- Hardware: {describe_hardware()}",
            f"- Date: {self.date}; time taken: {seconds / 60:.1f} min; load average (1 min) at "
            f"start and end: {self.load_at_start} and {load_average()} on {os.cpu_count()} cores",
            "",
        ]
        if self.claims:
            lines += ["## Verdicts", ""]
            lines += [f"- **{c['verdict']}** — {c['claim']}: {c['evidence']}" for c in self.claims]
            lines.append("")
        lines += ["## Results", ""]
        return "\n".join(lines) + "\n".join(self.sections)

    def write(self, folder) -> str:
        """Write ``report.md`` and ``results.json`` into ``folder``; returns the report's path."""
        folder = os.fspath(folder)
        path = write_text(os.path.join(folder, "report.md"), self.markdown())
        write_json(
            os.path.join(folder, "results.json"),
            {
                "title": self.title,
                "command": self.command,
                "hardware": describe_hardware(),
                "claims": self.claims,
                "results": self.results,
            },
        )
        return path
