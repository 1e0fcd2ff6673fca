"""XLA flags for the tests that run on the JAX backend, on the CPU.

A JAX test run compiles hundreds of small programs once each (every operation of an eager
forward pass, every initializer, a training step); XLA's CPU optimisations cost more time than
they save there: efficientnet_b0's forward and gradient tests took 49 s with them and 30 s
without (`pytest -n 0 tests/models/test_builders.py -k "efficientnet_b0 and (forward or
gradient)"` with XLA_FLAGS="" and with these flags, KERAS_BACKEND=jax, on an idle 2-core AMD
EPYC). TensorFlow's XLA does not know the second flag, so they are set only for
JAX processes.
"""

QUICK_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
