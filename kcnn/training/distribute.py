"""Data-parallel training with ``tf.distribute``: one strategy object per run.

- ``"mirrored"``: ``tf.distribute.MirroredStrategy`` over this machine's GPUs, or over its
  logical CPU devices when it has no GPU and TensorFlow was set up with several.
- ``"multiworker"``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the processes that
  ``TF_CONFIG`` lists. Every worker runs the same command; worker 0 is the chief and writes the
  checkpoints and logs.
- ``"auto"``: multi-worker when ``TF_CONFIG`` lists more than one worker, mirrored when there
  are several GPUs, else the default (single-device) strategy.

The batch size given to `kcnn.training.train` is the global batch, split across the replicas,
so a distributed run takes the same optimizer steps as a single-device run with that batch.
"""

from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def cluster_spec() -> dict:
    """The ``TF_CONFIG`` environment variable, parsed (``{}`` when it is not set).

    Raises:
        ValueError: when it is not valid JSON.
    """
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {text[:200]!r}") from error


def _workers(spec: dict) -> int:
    cluster = spec.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def make_strategy(strategy="auto"):
    """The ``tf.distribute.Strategy`` that ``strategy`` names.

    Create it before any other TensorFlow work in the process (multi-worker strategies must
    be), and build and compile the model inside ``strategy.scope()``.

    Args:
        strategy: ``"auto"``, ``"default"``, ``"mirrored"``, ``"multiworker"`` (see the module
            docstring), or a ``tf.distribute.Strategy``, returned as it is.

    Raises:
        ValueError: for another name, or ``"multiworker"`` without a ``TF_CONFIG`` that lists
            the workers.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy must be one of {STRATEGIES} or a tf.distribute.Strategy, got {strategy!r}"
        )
    spec = cluster_spec()
    if strategy == "auto":
        if _workers(spec) > 1:
            strategy = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            strategy = "mirrored"
        else:
            strategy = "default"
    if strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if _workers(spec) < 1 or "task" not in spec:
        raise ValueError(
            "strategy='multiworker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_multi_worker(strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def worker_role(strategy) -> tuple[bool, int]:
    """``(is_chief, worker_index)`` of this process: the chief writes checkpoints and logs."""
    if not is_multi_worker(strategy):
        return True, 0
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return chief, int(task_id)


def strategy_name(strategy) -> str:
    """A short name for reports: ``default``, ``mirrored``, ``multiworker`` or the class name."""
    if is_multi_worker(strategy):
        return "multiworker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    name = type(strategy).__name__
    return "default" if "Default" in name else name


@contextlib.contextmanager
def multi_worker_fit(model, strategy):
    """Work around two bugs of Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy``
    (keras-team/keras#20585, open as of Keras 3.15): its symbolic build reduces a data batch
    with a collective that fails outside a ``tf.function``, and it reduces the scalar metrics of
    each step along an axis they do not have.

    Inside this block the model resolves its strategy from the active scope instead of the one
    recorded at creation (so the symbolic build is skipped: the model is built on its first
    step), and each step's metrics are returned as vectors of one element. Single-device and
    mirrored training do not need it and do not use it.
    """
    if not is_multi_worker(strategy):
        yield
        return
    recorded = model._distribute_strategy
    train_step, test_step = model.train_step, model.test_step
    model._distribute_strategy = None
    model.train_step = _with_vector_metrics(train_step)
    model.test_step = _with_vector_metrics(test_step)
    try:
        with strategy.scope():
            yield
    finally:
        model._distribute_strategy = recorded
        del model.train_step, model.test_step


def _with_vector_metrics(step):
    def wrapped(data):
        return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), step(data))

    return wrapped
