"""What the hardware is, and the numeric precision and XLA setting that train fastest on it.

``precision="auto"`` and ``jit_compile="auto"`` resolve here, from `detect_hardware`. On GPUs,
mixed precision and XLA are the known wins (Micikevicius et al., "Mixed Precision Training",
ICLR 2018): bfloat16 from compute capability 8.0, float16 with loss scaling on 7.x. On CPUs,
mixed bfloat16 is chosen only with AMX matrix units. On this project's 2-core AVX512-BF16 CPU
without AMX, ``benchmarks/train_throughput.py --part precision`` measured, per CPU-second,
mixed bfloat16 at 0.71x (``simple_cnn``) and 0.59x (``tiny_resnet``) the speed of float32, and
XLA at 0.36x and 0.60x: float32 without XLA is the CPU default. On a 2-core Xeon with AMX,
``benchmarks/cpu_settings.py`` measured mixed bfloat16 at 2.1x float32 (``simple_cnn``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings

import keras
import tensorflow as tf

from kcnn import checks

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
AMX_CPU_FLAGS = frozenset({"amx_bf16"})


@dataclasses.dataclass(frozen=True)
class Hardware:
    """The devices training can use.

    Attributes:
        cpu_flags: the CPU's feature flags (from ``/proc/cpuinfo`` on Linux; empty elsewhere).
        gpu_capabilities: the CUDA compute capability ``(major, minor)`` of each GPU TensorFlow
            sees (``(0, 0)`` when TensorFlow does not report it).
    """

    cpu_flags: frozenset = frozenset()
    gpu_capabilities: tuple = ()

    @property
    def cpu_has_amx(self) -> bool:
        """Whether the CPU has AMX bfloat16 matrix units (Sapphire Rapids and later)."""
        return bool(AMX_CPU_FLAGS & self.cpu_flags)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpu_capabilities)


@functools.lru_cache(maxsize=1)
def detect_hardware() -> Hardware:
    """The CPU flags and the GPUs of this machine (read once per process)."""
    gpus = tf.config.list_physical_devices("GPU")
    return Hardware(
        cpu_flags=_cpu_flags(),
        gpu_capabilities=tuple(_compute_capability(gpu) for gpu in gpus),
    )


def _cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _compute_capability(gpu) -> tuple:
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability") or (0, 0))


def resolve_precision(precision: str = "auto", hardware: Hardware | None = None) -> str:
    """The Keras dtype policy name that ``precision`` stands for on ``hardware``.

    ``"auto"`` gives ``"mixed_bfloat16"`` on GPUs of compute capability >= 8.0 and on CPUs with
    AMX, ``"mixed_float16"`` on GPUs of capability 7.x, else ``"float32"`` -- also on CPUs with
    AVX512-BF16 but no AMX, where bfloat16 measured slower than float32 (see the module
    docstring). The other values are returned unchanged. kcnn's classifier heads stay float32
    under either mixed policy.

    Args:
        precision: ``"auto"``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        hardware: the hardware to decide for (default: `detect_hardware`).

    Raises:
        ValueError: for another ``precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    hardware = detect_hardware() if hardware is None else hardware
    if hardware.has_gpu:
        oldest = min(hardware.gpu_capabilities)
        if oldest >= (8, 0):
            return "mixed_bfloat16"
        if oldest >= (7, 0):
            return "mixed_float16"
        return "float32"
    return "mixed_bfloat16" if hardware.cpu_has_amx else "float32"


@contextlib.contextmanager
def precision_policy(precision: str = "auto", hardware: Hardware | None = None):
    """Set Keras's global dtype policy to ``precision`` while building a model, then restore it.

    Layers take the global policy when they are created, so a model must be built inside this
    block; it keeps its policy afterwards.

    Example:
        >>> with precision_policy("auto") as policy:
        ...     model = kcnn.create_model("simple_cnn")
    """
    previous = keras.config.dtype_policy()
    name = resolve_precision(precision, hardware)
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_jit_compile(jit_compile="auto", hardware: Hardware | None = None) -> bool:
    """Whether to compile the training step with XLA: ``"auto"`` means on GPU, not on CPU.

    Raises:
        ValueError: when ``jit_compile`` is not ``"auto"``, True or False.
    """
    if isinstance(jit_compile, bool):
        return jit_compile
    if jit_compile != "auto":
        raise ValueError(f"jit_compile must be 'auto', True or False, got {jit_compile!r}")
    hardware = detect_hardware() if hardware is None else hardware
    return hardware.has_gpu


def xla_problem(model, images) -> str | None:
    """Why XLA cannot compile ``model``'s forward and backward pass on ``images``, or None.

    Lowers one training-mode forward pass and its gradient to XLA's HLO without running it, so
    no weight, statistic or random state changes.

    Args:
        model: a built Keras model.
        images: one batch of inputs (a few examples are enough).
    """

    @tf.function(jit_compile=True)
    def gradients(images):
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            total = tf.add_n(
                [tf.reduce_sum(tf.cast(o, tf.float32)) for o in tf.nest.flatten(outputs)]
            )
        return tape.gradient(total, model.trainable_variables)

    try:
        gradients.experimental_get_compiler_ir(images)(stage="hlo")
    except (ValueError, tf.errors.OpError) as error:
        return str(error).splitlines()[0].strip()
    return None


def choose_jit_compile(model, data, jit_compile="auto", hardware: Hardware | None = None) -> bool:
    """`resolve_jit_compile`, falling back to False (with a warning) when XLA cannot compile
    ``model``, e.g. because one of its layers uses an op without an XLA kernel.

    Args:
        model: the built model to train.
        data: a batch of its inputs, or a batched ``tf.data.Dataset`` of ``(inputs, labels)``
            whose first batch is used, to test the compilation (see `xla_problem`); it is read
            only when XLA is wanted.
        jit_compile: ``"auto"``, True or False.
        hardware: as in `resolve_jit_compile`.
    """
    if not resolve_jit_compile(jit_compile, hardware):
        return False
    if isinstance(data, tf.data.Dataset):
        data = next(iter(data.take(1)))[0]
    problem = xla_problem(model, data)
    if problem is None:
        return True
    warnings.warn(
        f"XLA cannot compile model {model.name!r}, training without it (jit_compile=False): "
        f"{problem[:300]}",
        stacklevel=2,
    )
    return False


def configure_determinism(seed: int | None, deterministic: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and optionally make TensorFlow ops deterministic.

    Args:
        seed: the seed (None: leave the random state alone).
        deterministic: also call ``tf.config.experimental.enable_op_determinism()``, which
            makes every run with the same seed give the same weights at some cost in speed.
            It lasts for the rest of the process; Keras then turns XLA off.
    """
    if seed is not None:
        keras.utils.set_random_seed(checks.integer("seed", seed, low=0))
    if deterministic:
        if seed is None:
            raise ValueError("deterministic=True needs a seed")
        tf.config.experimental.enable_op_determinism()
