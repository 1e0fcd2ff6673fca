"""Searches across processes: a search killed with SIGKILL in the middle of a trial resumes
without repeating a finished trial, and keras-tuner's chief/worker mode runs one search with a
chief and two workers on 127.0.0.1."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import kcnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = [sys.executable, "-m", "tests.tuning.search_script"]


def environment(**variables):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **variables}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        if name not in variables:
            env.pop(name, None)
    return env


def read_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def wait_for(condition, process, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the search ended before {what}: {process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_search_killed_mid_trial_reruns_only_the_unfinished_trial(tmp_path):
    project = tmp_path / "search"
    arguments = [str(tmp_path), "--max-trials", "3", "--epochs", "2"]
    slow = subprocess.Popen(
        [*SCRIPT, *arguments, "--epoch-sleep", "2"],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    second = project / "trial_1" / "kcnn_trial.json"
    wait_for(second.exists, slow, 300, "trial 1 started")
    time.sleep(1.0)  # inside trial 1's first epoch (each epoch lasts at least 2 s)
    slow.send_signal(signal.SIGKILL)
    slow.wait()
    slow.stdout.close()
    slow.stderr.close()
    assert slow.returncode == -signal.SIGKILL
    assert read_json(second)["seconds"] is None  # it never finished
    first = read_json(project / "trial_0" / "trial.json")
    assert first["status"] == "COMPLETED"
    assert read_json(project / "trial_1" / "trial.json")["status"] == "RUNNING"

    resumed = subprocess.run(
        [*SCRIPT, *arguments],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    rows = read_rows(result["results_csv"])
    assert [(row["trial"], row["status"], row["attempts"]) for row in rows] == [
        ("0", "COMPLETED", "1"),
        ("1", "COMPLETED", "2"),
        ("2", "COMPLETED", "1"),
    ]
    again = read_json(project / "trial_0" / "trial.json")
    assert (again["score"], again["hyperparameters"]) == (first["score"], first["hyperparameters"])
    assert kcnn.load_model(result["model_path"]).output_shape == (None, 3)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_a_chief_and_two_workers_run_one_search_on_loopback(tmp_path):
    port = str(free_port())
    arguments = [str(tmp_path), "--max-trials", "4", "--epochs", "2", "--epoch-sleep", "1.5"]
    processes = {
        tuner_id: subprocess.Popen(
            [*SCRIPT, *arguments],
            cwd=ROOT,
            env=environment(
                KERASTUNER_TUNER_ID=tuner_id,
                KERASTUNER_ORACLE_IP="127.0.0.1",
                KERASTUNER_ORACLE_PORT=port,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tuner_id in ("chief", "tuner0", "tuner1")
    }
    outputs = {}
    try:
        for tuner_id, process in processes.items():
            stdout, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, f"{tuner_id}: {stderr[-3000:]}"
            outputs[tuner_id] = json.loads(stdout.strip().splitlines()[-1])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    assert outputs["tuner0"]["role"] == outputs["tuner1"]["role"] == "worker"
    chief = outputs["chief"]
    assert chief["role"] == "chief"
    rows = read_rows(chief["results_csv"])
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    runners = {
        read_json(tmp_path / "search" / f"trial_{row['trial']}" / "kcnn_trial.json")["tuner_id"]
        for row in rows
    }
    assert runners == {"tuner0", "tuner1"}  # both workers trained trials, the chief none
    assert kcnn.load_model(chief["model_path"]).output_shape == (None, 3)
