"""Training that is fast by default, resumable and distributable.

- `train`: data pipelines, model, precision, XLA, compile, fit with checkpoints, test
  metrics, in one call that returns a `TrainResult`.
- The pieces it is made of, for code that runs its own loop (transfer learning, tuning):
  `precision_policy` / `resolve_precision`, `choose_jit_compile` / `resolve_jit_compile`,
  `compile_model` / `make_optimizer` / `learning_rate_schedule` / `regularize_kernels`,
  `kernel_sparsity`, `run_callbacks`,
  `make_strategy`, `configure_determinism`, `build_model`.
- `flip_averaged`: test-time augmentation, a model's prediction combined with its prediction
  on the mirror image.
- `PRESETS`: named recipes, such as ``"fashion-fast"``.

Example:
    >>> from kcnn.training import train
    >>> result = train("simple_cnn", "fashion_mnist", epochs=10, out="saved_models/simple")
    >>> print(result.summary())
"""

from kcnn.training.callbacks import (
    AtomicCheckpoint,
    StopOnNonFiniteLoss,
    TrainingClock,
    TrainingDiverged,
    read_history,
    run_callbacks,
)
from kcnn.training.distribute import make_strategy, multi_worker_fit, worker_role
from kcnn.training.hardware import (
    Hardware,
    choose_jit_compile,
    configure_determinism,
    detect_hardware,
    precision_policy,
    resolve_jit_compile,
    resolve_precision,
    xla_problem,
)
from kcnn.training.loop import TrainResult, build_model, fit_verbosity, read_run, train
from kcnn.training.optimization import (
    classification_loss,
    compile_model,
    learning_rate_schedule,
    make_optimizer,
    model_kernels,
    regularize_kernels,
)
from kcnn.training.presets import PRESETS, preset
from kcnn.training.sparsity import kernel_sparsity
from kcnn.training.tta import flip_averaged

__all__ = [
    "AtomicCheckpoint",
    "Hardware",
    "PRESETS",
    "StopOnNonFiniteLoss",
    "TrainResult",
    "TrainingClock",
    "TrainingDiverged",
    "build_model",
    "choose_jit_compile",
    "classification_loss",
    "compile_model",
    "configure_determinism",
    "detect_hardware",
    "fit_verbosity",
    "flip_averaged",
    "kernel_sparsity",
    "learning_rate_schedule",
    "make_optimizer",
    "make_strategy",
    "model_kernels",
    "multi_worker_fit",
    "precision_policy",
    "preset",
    "read_history",
    "read_run",
    "regularize_kernels",
    "resolve_jit_compile",
    "resolve_precision",
    "run_callbacks",
    "train",
    "worker_role",
    "xla_problem",
]
