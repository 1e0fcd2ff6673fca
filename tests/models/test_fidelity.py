"""Numerical fidelity: the course's PyTorch TinyResNet (Listing 4), written here as a NumPy
forward pass with PyTorch's layouts and conventions, and kcnn's ``tiny_resnet`` given the same
weights compute the same logits.

The reference is NCHW with PyTorch's weight layouts (convolutions OIHW, ``nn.Linear`` weights
(out, in)), ``nn.BatchNorm2d`` in inference mode with PyTorch's epsilon 1e-5, and PyTorch's
symmetric ``padding=1`` on every 3x3 convolution, strided ones included. Its convolutions are
`kcnn.convmath.conv2d`, which the convmath tests check against Keras and the course's formulas.
Runs on every Keras backend (no TensorFlow import).
"""

import keras
import numpy as np
import pytest

import kcnn
from kcnn.convmath import conv2d

BN_EPSILON = 1e-5  # nn.BatchNorm2d's default
# Listing 4: TinyResNet's _make_layer(in, out, blocks=2, stride) for its three stages.
STAGES = [(64, 64, 1), (64, 128, 2), (128, 256, 2)]
CLASSES = 10


# ---------------------------------------------------------------------------------------------
# The PyTorch-style reference: a state dict with PyTorch's names and layouts, and a forward pass
# ---------------------------------------------------------------------------------------------


def _conv_weight(rng, c_out, c_in, k):
    return rng.normal(0, np.sqrt(2 / (c_in * k * k)), (c_out, c_in, k, k))  # OIHW


def _bn_state(rng, prefix, channels):
    """Non-trivial BN parameters and running statistics, so that a mix-up shows."""
    return {
        f"{prefix}.weight": rng.uniform(0.5, 1.5, channels),
        f"{prefix}.bias": rng.normal(0, 0.2, channels),
        f"{prefix}.running_mean": rng.normal(0, 0.5, channels),
        f"{prefix}.running_var": rng.uniform(0.5, 2.0, channels),
    }


def _has_shortcut(c_in, c_out, stride):
    return stride != 1 or c_in != c_out


def random_state_dict(seed=0):
    """The parameters of Listing 4's ``TinyResNet(num_classes=10)``, under the names of its
    ``state_dict()``."""
    rng = np.random.default_rng(seed)
    state = {"conv1.weight": _conv_weight(rng, 64, 3, 3), **_bn_state(rng, "bn1", 64)}
    for layer, (c_in, c_out, stride) in enumerate(STAGES, start=1):
        for block in range(2):
            prefix = f"layer{layer}.{block}"
            block_in, block_stride = (c_in, stride) if block == 0 else (c_out, 1)
            state[f"{prefix}.conv1.weight"] = _conv_weight(rng, c_out, block_in, 3)
            state.update(_bn_state(rng, f"{prefix}.bn1", c_out))
            state[f"{prefix}.conv2.weight"] = _conv_weight(rng, c_out, c_out, 3)
            state.update(_bn_state(rng, f"{prefix}.bn2", c_out))
            if _has_shortcut(block_in, c_out, block_stride):
                state[f"{prefix}.shortcut.0.weight"] = _conv_weight(rng, c_out, block_in, 1)
                state.update(_bn_state(rng, f"{prefix}.shortcut.1", c_out))
    state["fc.weight"] = rng.normal(0, 1 / np.sqrt(256), (CLASSES, 256))
    state["fc.bias"] = rng.normal(0, 0.1, CLASSES)
    return state


def torch_conv2d(x, weight, stride=1, padding=0):
    """``F.conv2d`` without bias: NCHW input, OIHW weight, symmetric zero padding."""
    y = conv2d(
        x.transpose(0, 2, 3, 1), weight.transpose(2, 3, 1, 0), stride=stride, padding=padding
    )
    return y.transpose(0, 3, 1, 2)


def torch_batch_norm(x, state, prefix):
    """``nn.BatchNorm2d`` in ``eval()`` mode."""

    def channel(name):
        return state[f"{prefix}.{name}"][None, :, None, None]

    scale = channel("weight") / np.sqrt(channel("running_var") + BN_EPSILON)
    return (x - channel("running_mean")) * scale + channel("bias")


def relu(x):
    return np.maximum(x, 0)


def residual_block(x, state, prefix, stride):
    """Listing 4's ``ResidualBlock.forward``."""
    out = relu(
        torch_batch_norm(
            torch_conv2d(x, state[f"{prefix}.conv1.weight"], stride, padding=1),
            state,
            f"{prefix}.bn1",
        )
    )
    out = torch_batch_norm(
        torch_conv2d(out, state[f"{prefix}.conv2.weight"], padding=1), state, f"{prefix}.bn2"
    )
    shortcut = x
    if f"{prefix}.shortcut.0.weight" in state:
        shortcut = torch_batch_norm(
            torch_conv2d(x, state[f"{prefix}.shortcut.0.weight"], stride),
            state,
            f"{prefix}.shortcut.1",
        )
    return relu(out + shortcut)


def tiny_resnet_forward(x, state):
    """Listing 4's ``TinyResNet.forward`` on an NCHW batch: the logits."""
    x = relu(torch_batch_norm(torch_conv2d(x, state["conv1.weight"], padding=1), state, "bn1"))
    for layer, (_, _, stride) in enumerate(STAGES, start=1):
        x = residual_block(x, state, f"layer{layer}.0", stride)
        x = residual_block(x, state, f"layer{layer}.1", 1)
    x = x.mean(axis=(2, 3))  # AdaptiveAvgPool2d((1, 1)) and view(batch, -1)
    return x @ state["fc.weight"].T + state["fc.bias"]


# ---------------------------------------------------------------------------------------------
# Porting the weights into kcnn's tiny_resnet
# ---------------------------------------------------------------------------------------------


def _keras_kernel(weight):
    return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _bn_weights(state, prefix):
    return [state[f"{prefix}.{name}"] for name in ("weight", "bias", "running_mean", "running_var")]


def port_weights(state, model) -> int:
    """Copy a TinyResNet state dict into kcnn's ``tiny_resnet``, finding layers by name.

    Returns:
        The number of values copied.
    """
    assignments = [
        (model.get_layer("stem_conv"), [_keras_kernel(state["conv1.weight"])]),
        (model.get_layer("stem_bn"), _bn_weights(state, "bn1")),
        (model.get_layer("logits"), [state["fc.weight"].T, state["fc.bias"]]),
    ]
    for stage in range(1, len(STAGES) + 1):
        for block in range(1, 3):
            layer = model.get_layer(f"stage{stage}_block{block}")
            prefix = f"layer{stage}.{block - 1}"
            (conv1, bn1), (conv2, bn2) = layer.branch
            assignments += [
                (conv1, [_keras_kernel(state[f"{prefix}.conv1.weight"])]),
                (bn1, _bn_weights(state, f"{prefix}.bn1")),
                (conv2, [_keras_kernel(state[f"{prefix}.conv2.weight"])]),
                (bn2, _bn_weights(state, f"{prefix}.bn2")),
            ]
            has_shortcut = f"{prefix}.shortcut.0.weight" in state
            assert layer.projection == has_shortcut, f"{layer.name}: shortcut differs"
            if has_shortcut:
                assignments += [
                    (layer.shortcut_conv, [_keras_kernel(state[f"{prefix}.shortcut.0.weight"])]),
                    (layer.shortcut_bn, _bn_weights(state, f"{prefix}.shortcut.1")),
                ]
    for keras_layer, weights in assignments:
        keras_layer.set_weights([w.astype("float32") for w in weights])
    return sum(w.size for _, weights in assignments for w in weights)


@pytest.mark.parametrize("size", [32, 15], ids=["32x32-as-the-course", "15x15-odd-sizes"])
def test_tiny_resnet_computes_the_logits_of_the_pytorch_reference(size):
    """32x32 is the course's input; 15x15 makes every stride-2 convolution see an odd size
    (15 -> 8 -> 4), where padding conventions differ most (Keras's "same" would pad only the
    bottom and right)."""
    state = random_state_dict(seed=size)
    model = kcnn.create_model(
        "tiny_resnet", input_shape=(size, size, 3), classifier_activation=None
    )
    assert port_weights(state, model) == model.count_params() == sum(v.size for v in state.values())
    images = np.random.default_rng(1).normal(size=(2, 3, size, size))  # NCHW, as PyTorch
    expected = tiny_resnet_forward(images, state)
    logits = model(images.transpose(0, 2, 3, 1).astype("float32"), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.1  # the logits are not trivially small
