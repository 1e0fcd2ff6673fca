"""XLA settings for the JAX processes of a test run, on the CPU: quick compilation, and a
compilation cache that the processes share.

A JAX test run compiles hundreds of small programs once each (every operation of an eager
forward pass, every initializer, a training step); XLA's CPU optimisations cost more time than
they save there: efficientnet_b0's forward and gradient tests took 49 s with them and 30 s
without (`pytest -n 0 tests/models/test_builders.py -k "efficientnet_b0 and (forward or
gradient)"` with XLA_FLAGS="" and with these flags, KERAS_BACKEND=jax, on an idle 2-core AMD
EPYC). TensorFlow's XLA does not know the second flag, so they are set only for JAX processes.

The same programs come back in other processes: the two workers of ``pytest -n 2`` build the
same models, and a save-and-reload test loads its models in a fresh process, which compiles
every initializer and operation its parent compiled. JAX's persistent compilation cache,
kept in pytest's cache folder, compiles each of them once per machine: on a 2-core Xeon with
AMX, the fresh-process reload of every model went from 189 s to 99 s of the JAX pass, and the
whole pass from 609 s to 460 s from an empty cache (about a minute of that from dropping tests
it ran twice, in the same change).
The cache has no size limit: JAX's limit rescans the whole folder at every write, which made
the pass slower; it holds what the tests compile (48 MB, about 5,000 programs, after a JAX
pass), and ``pytest --cache-clear`` empties it.
"""

import os

from tests.scripts import ROOT

QUICK_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

COMPILATION_CACHE = ROOT / ".pytest_cache" / "jax"


def share_compilation_cache(environ=os.environ) -> None:
    """Point the JAX processes started with ``environ`` (this one, and the subprocesses that
    inherit it) at `COMPILATION_CACHE`, caching every program however quick its compilation;
    settings already there are kept."""
    environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(COMPILATION_CACHE))
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
