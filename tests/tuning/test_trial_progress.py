"""A search shows which trial of how many it runs, counting only the trials it has left."""

import io
import types

from kcnn.tuning.engine import trial_progress


def oracle(max_trials, done):
    return types.SimpleNamespace(max_trials=max_trials, trials={str(i): None for i in range(done)})


def test_a_new_search_counts_every_trial():
    progress = trial_progress(oracle(10, 0))
    assert (progress.total, progress.what) == (10, "trial")


def test_a_resumed_search_counts_the_trials_left():
    progress = trial_progress(oracle(10, 4))
    progress.stream = io.StringIO()
    progress.step()
    assert progress.stream.getvalue() == "trial 1/6\n"


def test_no_progress_without_a_known_number_of_trials(monkeypatch):
    assert trial_progress(oracle(None, 0)) is None  # Hyperband without max_trials
    assert trial_progress(oracle(10, 10)) is None
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert trial_progress(oracle(10, 0)) is None  # a worker of a distributed search
