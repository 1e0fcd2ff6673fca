"""kcnn's keras-tuner engine: oracles whose first trial is the space's defaults, tuners that
record each trial, clear the Keras session after it and stop after repeated failures, and the
role of this process in a distributed search.
"""

from __future__ import annotations

import os
import time

import keras
import keras_tuner

from kcnn.errors import UserError
from kcnn.files import write_json
from kcnn.progress import Progress
from kcnn.tuning.results import (
    FAILED_STATUSES,
    RESULTS_MARKDOWN,
    TRIAL_RECORD,
    last_line,
    read_json,
    write_results,
)


class SearchError(RuntimeError):
    """A search that cannot go on: its last trials all failed, or none completed."""


def search_role() -> str:
    """``"local"``, or in keras-tuner's distributed mode ``"chief"`` (``KERASTUNER_TUNER_ID``
    contains "chief", as keras-tuner decides) or ``"worker"``.

    Raises:
        ValueError: when ``KERASTUNER_ORACLE_IP`` is set without ``KERASTUNER_ORACLE_PORT`` or
            ``KERASTUNER_TUNER_ID``.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "local"
    for variable in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if not os.environ.get(variable):
            raise UserError(
                f"KERASTUNER_ORACLE_IP is set but {variable} is not: a distributed search needs "
                "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID"
            )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def make_tuner(
    tuner,
    hypermodel,
    *,
    objective,
    hyperparameters,
    seed,
    max_trials,
    epochs,
    hyperband_factor,
    **tuner_options,
):
    """The keras-tuner tuner of a search, with its oracle: ``"random"``, ``"bayesian"`` or
    ``"hyperband"`` (``max_epochs=epochs``, reduction ``hyperband_factor``, its schedule capped
    at ``max_trials``); ``tuner_options`` go to the tuner (``directory``, ``project_name``,
    ``overwrite``, ``executions_per_trial``, ``max_consecutive_failures``)."""
    # kcnn stops after max_consecutive_failures itself: keras-tuner's own limit raises before
    # the failed trial is saved.
    options = dict(
        objective=objective,
        hyperparameters=hyperparameters,
        seed=seed,
        max_consecutive_failed_trials=None,
    )
    if tuner == "random":
        oracle, kind = _RandomOracle(max_trials=max_trials, **options), _Tuner
    elif tuner == "bayesian":
        oracle, kind = _BayesianOracle(max_trials=max_trials, **options), _Tuner
    else:
        oracle = _HyperbandOracle(max_epochs=epochs, factor=hyperband_factor, **options)
        oracle.max_trials, kind = max_trials, _Hyperband
    return kind(oracle, hypermodel, **tuner_options)


class _DefaultsFirst:
    """Mixed into keras-tuner's oracles: the first values they draw are the space's defaults,
    so every search trains the documented model first and its table holds the baseline
    (keras-tuner itself starts at random)."""

    def _random_values(self):
        defaults = keras_tuner.HyperParameters()
        defaults.merge(self.hyperparameters)  # registers each one with its default
        if not self._duplicate(defaults.values):
            return defaults.values
        return super()._random_values()


class _RandomOracle(_DefaultsFirst, keras_tuner.oracles.RandomSearchOracle):
    pass


class _HyperbandOracle(_DefaultsFirst, keras_tuner.oracles.HyperbandOracle):
    pass


class _BayesianOracle(_DefaultsFirst, keras_tuner.oracles.BayesianOptimizationOracle):
    pass


class _KcnnTuner:
    """Mixed into keras-tuner's tuners: records each trial's attempts and time, clears the Keras
    session after it, keeps the results table up to date, and stops after
    ``max_consecutive_failures`` failed trials in a row. The oracle comes made (`search`)."""

    def __init__(self, oracle, hypermodel, *, max_consecutive_failures=3, **kwargs):
        self.max_consecutive_failures = max_consecutive_failures
        self._consecutive_failures = 0
        self._started = {}
        self._progress = None
        keras_tuner.Tuner.__init__(self, oracle, hypermodel, **kwargs)

    def on_search_begin(self):
        super().on_search_begin()
        if search_role() == "local":
            self.save()
        self._progress = trial_progress(self.oracle)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        if self._progress is not None and self._progress.count < self._progress.total:
            self._progress.step()
        path = os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_RECORD)
        record = read_json(path) or {}
        record.update(attempts=record.get("attempts", 0) + 1, seconds=None, tuner_id=self.tuner_id)
        write_json(path, record)
        self._started[trial.trial_id] = time.perf_counter()

    def on_trial_end(self, trial):
        path = os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_RECORD)
        record = read_json(path) or {}
        record["seconds"] = round(time.perf_counter() - self._started.pop(trial.trial_id), 3)
        write_json(path, record)
        failed = trial.status in FAILED_STATUSES
        super().on_trial_end(trial)
        keras.utils.clear_session(free_memory=True)
        if search_role() == "local":
            write_results(self.oracle, self.project_dir)
        self._consecutive_failures = self._consecutive_failures + 1 if failed else 0
        if self._consecutive_failures >= self.max_consecutive_failures:
            raise SearchError(_failure_message(self, trial))


class _Tuner(_KcnnTuner, keras_tuner.Tuner):
    """Random search and Bayesian optimisation: their tuners only differ by their oracle."""


class _Hyperband(_KcnnTuner, keras_tuner.Hyperband):
    """Hyperband's tuner runs each trial for its bracket's epochs from its parent's weights."""


def trial_progress(oracle):
    """A `kcnn.progress.Progress` over the trials the search has left to run (``max_trials``
    less those a resumed search has already), or None when their number is unknown (Hyperband
    without ``max_trials``, a distributed search) or none is left."""
    if oracle.max_trials is None or search_role() != "local":
        return None
    left = oracle.max_trials - len(oracle.trials)
    return Progress(left, "trial") if left > 0 else None


def _failure_message(tuner, trial) -> str:
    completed = sum(t.status == "COMPLETED" for t in getattr(tuner.oracle, "trials", {}).values())
    what = "no trial could be built and trained" if not completed else "the search stopped"
    return (
        f"{what}: the last {tuner._consecutive_failures} trials failed "
        f"(max_consecutive_failures={tuner.max_consecutive_failures}). The last error: "
        f"{last_line(trial.message)}. Every trial is listed in "
        f"{os.path.join(tuner.project_dir, RESULTS_MARKDOWN)}."
    )
