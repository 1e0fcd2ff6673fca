"""Precision and XLA choices: "auto" resolved for mocked hardware, the policy kept to the model
built under it (head in float32), and the XLA fallback for a layer XLA cannot compile."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcnn
from kcnn.training import hardware
from kcnn.training.hardware import (
    Hardware,
    choose_jit_compile,
    precision_policy,
    resolve_jit_compile,
    resolve_precision,
    xla_problem,
)

CPU_PLAIN = Hardware(cpu_flags=frozenset({"avx2", "avx512f", "fma"}))
CPU_BF16 = Hardware(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}))
CPU_AMX = Hardware(cpu_flags=frozenset({"avx2", "amx_bf16", "amx_tile"}))


@pytest.mark.parametrize(
    "machine, expected",
    [
        (CPU_PLAIN, "float32"),
        (CPU_BF16, "float32"),
        (CPU_AMX, "mixed_bfloat16"),
        (Hardware(CPU_PLAIN.cpu_flags, ((8, 0),)), "mixed_bfloat16"),
        (Hardware(CPU_PLAIN.cpu_flags, ((9, 0), (8, 6))), "mixed_bfloat16"),
        (Hardware(CPU_BF16.cpu_flags, ((7, 5),)), "mixed_float16"),
        (Hardware(CPU_PLAIN.cpu_flags, ((8, 0), (7, 0))), "mixed_float16"),
        (Hardware(CPU_BF16.cpu_flags, ((6, 1),)), "float32"),
    ],
)
def test_auto_precision_follows_the_hardware(machine, expected):
    assert resolve_precision("auto", machine) == expected


def test_explicit_precision_is_kept_and_bad_one_refused():
    assert resolve_precision("float32", CPU_BF16) == "float32"
    assert resolve_precision("mixed_float16", CPU_PLAIN) == "mixed_float16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("bfloat16", CPU_PLAIN)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n\n")
    flags = hardware._cpu_flags(str(cpuinfo))
    assert {"avx512_bf16", "amx_tile"} <= flags
    assert not Hardware(flags).cpu_has_amx
    assert Hardware(frozenset({"amx_bf16"})).cpu_has_amx
    assert hardware._cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_detect_hardware_with_mocked_cpu_and_no_gpu(monkeypatch):
    hardware.detect_hardware.cache_clear()
    monkeypatch.setattr(hardware, "_cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16"}))
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    try:
        found = hardware.detect_hardware()
        assert found == Hardware(frozenset({"avx512_bf16", "amx_bf16"}), ())
        assert found.cpu_has_amx
        assert resolve_precision("auto") == "mixed_bfloat16"
        assert resolve_jit_compile("auto") is False
    finally:
        hardware.detect_hardware.cache_clear()


def test_jit_compile_auto_means_gpu_only():
    assert resolve_jit_compile("auto", CPU_BF16) is False
    assert resolve_jit_compile("auto", Hardware(gpu_capabilities=((8, 0),))) is True
    assert resolve_jit_compile(True, CPU_PLAIN) is True
    assert resolve_jit_compile(False, Hardware(gpu_capabilities=((8, 0),))) is False
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="jit_compile must be"):
            resolve_jit_compile(bad, CPU_PLAIN)


def test_policy_applies_to_the_model_built_under_it_and_is_restored():
    with precision_policy("mixed_bfloat16") as name:
        model = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    assert name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    assert model.get_layer("stage1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("stage1_conv").kernel.dtype == "float32"
    for head in ("logits", "predictions"):
        assert model.get_layer(head).compute_dtype == "float32"
    output = model(np.zeros((2, 16, 16, 1), "float32"))
    assert output.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(output).sum(axis=1), 1.0, atol=1e-5)


class PythonIdentity(keras.layers.Layer):
    """A layer running NumPy code through tf.numpy_function, which XLA cannot compile."""

    def call(self, inputs):
        outputs = tf.numpy_function(lambda a: a, [inputs], tf.float32)
        return tf.ensure_shape(outputs, inputs.shape)


def _model_with_python_layer():
    inputs = keras.Input((8, 8, 1))
    x = PythonIdentity(name="python")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


def test_xla_problem_names_the_op_and_jit_falls_back_with_a_warning():
    images = np.zeros((2, 8, 8, 1), "float32")
    model = _model_with_python_layer()
    problem = xla_problem(model, images)
    assert problem is not None and "PyFunc" in problem
    with pytest.warns(UserWarning, match="XLA cannot compile"):
        assert choose_jit_compile(model, images, True) is False
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=False)
    history = model.fit(images, np.array([0, 1]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_xla_compilable_model_keeps_jit_and_no_weights_change():
    model = kcnn.create_model("tiny_cnn", input_shape=(8, 8, 1), classes=3)
    before = [w.copy() for w in model.get_weights()]
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.ones((4, 8, 8, 1), "float32"), np.zeros(4, "int64"))
    ).batch(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert choose_jit_compile(model, dataset, True) is True
    assert choose_jit_compile(model, dataset, "auto", CPU_BF16) is False
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
