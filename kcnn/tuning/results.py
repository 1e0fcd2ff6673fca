"""What a search leaves: the results table of every trial (``results.csv``, ``results.md``),
the best trial, and `SearchResult`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os

from kcnn.files import write_text

RESULTS_CSV = "results.csv"
RESULTS_MARKDOWN = "results.md"
BEST_MODEL = "best_model.keras"
BEST_HYPERPARAMETERS = "best_hyperparameters.json"
TRIAL_RECORD = "kcnn_trial.json"
FAILED_STATUSES = ("FAILED", "INVALID")


@dataclasses.dataclass
class SearchResult:
    """What a search found and where it wrote it.

    Attributes:
        role: ``"local"``, ``"chief"`` or ``"worker"`` (see `search_role`). A worker's result
            holds only ``project_dir``; the chief writes the files.
        project_dir: the folder of the search (keras-tuner's files and kcnn's).
        objective: the name of the objective, e.g. ``"val_accuracy"``.
        best_trial: the id of the best completed trial (see `best_trial`).
        best_score: its objective value.
        best_hyperparameters: its hyperparameter values.
        trials: one dict per trial, as in the results table.
        model_path: ``best_model.keras``.
        hyperparameters_path: ``best_hyperparameters.json``.
        results_csv, results_markdown: the results table.
        seconds: the wall-clock time of this call.
    """

    role: str
    project_dir: str
    objective: str | None = None
    best_trial: str | None = None
    best_score: float | None = None
    best_hyperparameters: dict = dataclasses.field(default_factory=dict)
    trials: list = dataclasses.field(default_factory=list)
    model_path: str | None = None
    hyperparameters_path: str | None = None
    results_csv: str | None = None
    results_markdown: str | None = None
    seconds: float = 0.0


def best_trial(oracle):
    """The completed trial with the best score, the earliest of those that tie (so a search
    keeps its first trial, the space's defaults, over a configuration that only equals it);
    None when no trial completed. keras-tuner's own ranking breaks ties in the order it happens
    to reload the trials' files."""
    completed = [
        t for t in oracle.trials.values() if t.status == "COMPLETED" and t.score is not None
    ]
    if not completed:
        return None
    sign = -1.0 if oracle.objective.direction == "max" else 1.0
    return min(completed, key=lambda t: (sign * t.score, _trial_order(t.trial_id)))


def write_results(oracle, project_dir) -> list[dict]:
    """Write ``results.csv`` and ``results.md`` in ``project_dir`` (atomically) and return
    their rows: one per trial of ``oracle``, in the order they started.

    Columns: ``trial``, ``status`` (COMPLETED, FAILED, or RUNNING for a trial interrupted
    before it ended), the objective's best value, ``best_epoch``, ``seconds`` and ``attempts``
    (from ``kcnn_trial.json``), every hyperparameter (empty when inactive), and ``error`` (the
    last line of a failed trial's error).
    """
    objective = oracle.objective.name
    names = []
    for hp in oracle.get_space().space:
        if hp.name not in names:
            names.append(hp.name)
    trials = sorted(oracle.trials.values(), key=lambda t: _trial_order(t.trial_id))
    for trial in trials:
        names += [name for name in trial.hyperparameters.values if name not in names]
    rows = []
    for trial in trials:
        record = read_json(os.path.join(project_dir, f"trial_{trial.trial_id}", TRIAL_RECORD))
        record = record or {}
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            objective: trial.score if trial.status == "COMPLETED" else None,
            "best_epoch": _best_epoch(trial),
            "seconds": record.get("seconds"),
            "attempts": record.get("attempts"),
        }
        row.update({name: trial.hyperparameters.values.get(name) for name in names})
        row["error"] = last_line(trial.message) if trial.status in FAILED_STATUSES else None
        rows.append(row)
    columns = ["trial", "status", objective, "best_epoch", "seconds", "attempts", *names, "error"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: "" if value is None else value for key, value in row.items()} for row in rows
    )
    write_text(os.path.join(project_dir, RESULTS_CSV), text.getvalue())
    write_text(
        os.path.join(project_dir, RESULTS_MARKDOWN), _markdown(rows, columns, oracle, project_dir)
    )
    return rows


def _markdown(rows, columns, oracle, project_dir) -> str:
    objective = oracle.objective
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    counts = {
        status: sum(row["status"] == status for row in rows)
        for status in dict.fromkeys(row["status"] for row in rows)
    }
    lines = [
        f"# Search results: {os.path.basename(os.path.normpath(project_dir))}",
        "",
        f"Objective: `{objective.name}` ({objective.direction}). Trials: "
        + (", ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "none")
        + ".",
    ]
    if completed:
        best = best_trial(oracle)
        lines.append(f"Best: trial {best.trial_id}, {objective.name} = {_format(best.score)}.")
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [_format(row[column]).replace("|", "\\|") for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _best_epoch(trial):
    """The epoch (from 1) of the trial's best objective value; Hyperband's later rounds start
    at ``tuner/initial_epoch``."""
    if trial.status != "COMPLETED" or trial.best_step is None:
        return None
    start = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
    return start + int(trial.best_step) + 1


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _trial_order(trial_id: str):
    return (0, int(trial_id), "") if trial_id.isdigit() else (1, 0, trial_id)


def last_line(message) -> str:
    """The last non-empty line of a trial's error message (its exception, after the traceback)."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def read_json(path):
    """The JSON in ``path``, or None when it is missing or unreadable (a trial that has not
    written its record yet)."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError):
        return None
