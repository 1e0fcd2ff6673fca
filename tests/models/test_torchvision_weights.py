"""`kcnn.models.load_torchvision_weights`: torchvision state dicts, written here in NumPy with
torchvision's names and layouts (no torch needed), give kcnn models the logits of a NumPy
forward pass written after torchvision's modules (NCHW, OIHW, symmetric padding, BatchNorm2d in
eval mode with epsilon 1e-5); bad state dicts are refused by name and leave the model as it was.

The numbers are checked on thin configurations (the forward passes are the same code at every
width); the full-size models are checked for the count and names of their tensors against
torchvision's published layout. Runs on every Keras backend (no TensorFlow import).
"""

import math

import keras
import numpy as np
import pytest

import kcnn
from kcnn.models.torchvision_weights import flatten_linear, ignored_keys, torchvision_entries

EPS = 1e-5

# The weights are mapped in NumPy and assigned through Keras, the same on every backend. These
# tests run on TensorFlow only: on JAX, building the models is 10-40 times slower here (a thin
# ResNet-18 took 40 s on two busy cores), which would add minutes to make test's JAX pass; the
# fast tests of both files passed on JAX when run by hand (KERAS_BACKEND=jax).
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="weights loading checked on TensorFlow"
)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------------------------
# torchvision's modules in NumPy (NCHW)
# ---------------------------------------------------------------------------------------------


def conv(x, w, b=None, stride=1, padding=0, groups=1):
    """``F.conv2d``: OIHW weight, symmetric zero padding, groups."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    xg = x.reshape(n, groups, c // groups, *x.shape[2:])
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    out = np.zeros((n, groups, o // groups, ho, wo))
    rows, cols = stride * (ho - 1) + 1, stride * (wo - 1) + 1
    for i in range(kh):
        for j in range(kw):
            patch = xg[:, :, :, i : i + rows : stride, j : j + cols : stride]
            out += np.einsum("ngchw,goc->ngohw", patch, wg[:, :, :, i, j], optimize=True)
    out = out.reshape(n, o, ho, wo)
    return out if b is None else out + b[None, :, None, None]


def bn(x, s, key):
    """``nn.BatchNorm2d`` in eval mode."""

    def channel(name):
        return s[f"{key}.{name}"][None, :, None, None]

    return (x - channel("running_mean")) / np.sqrt(channel("running_var") + EPS) * channel(
        "weight"
    ) + channel("bias")


def relu(x):
    return np.maximum(x, 0)


def silu(x):
    return x / (1 + np.exp(-x))


def max_pool(x, k, stride, padding=0):
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=-np.inf)
    ho, wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    return np.max(
        [
            x[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
            for i in range(k)
            for j in range(k)
        ],
        axis=0,
    )


def linear(x, s, key):
    return x @ s[f"{key}.weight"].T + s[f"{key}.bias"]


# ---------------------------------------------------------------------------------------------
# Random state dicts with torchvision's names and layouts
# ---------------------------------------------------------------------------------------------


class State(dict):
    """A state dict being filled with random tensors."""

    def __init__(self, seed):
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def conv(self, key, c_out, c_in, k, bias=False):
        self[f"{key}.weight"] = self.rng.normal(0, np.sqrt(2 / (c_in * k * k)), (c_out, c_in, k, k))
        if bias:
            self[f"{key}.bias"] = self.rng.normal(0, 0.1, c_out)

    def bn(self, key, channels):
        self[f"{key}.weight"] = self.rng.uniform(0.5, 1.5, channels)
        self[f"{key}.bias"] = self.rng.normal(0, 0.2, channels)
        self[f"{key}.running_mean"] = self.rng.normal(0, 0.2, channels)
        self[f"{key}.running_var"] = self.rng.uniform(0.5, 2.0, channels)
        self[f"{key}.num_batches_tracked"] = np.array(100)

    def linear(self, key, c_out, c_in):
        self[f"{key}.weight"] = self.rng.normal(0, 1 / np.sqrt(c_in), (c_out, c_in))
        self[f"{key}.bias"] = self.rng.normal(0, 0.1, c_out)


def make_divisible(v, divisor=8):
    """torchvision's ``_make_divisible``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


CLASSES = 5


def resnet_state(seed, bottleneck, depths, base, groups=1, width_per_group=64):
    """``torchvision.models.ResNet`` with ``base`` stem channels (64 in torchvision)."""
    s = State(seed)
    s.conv("conv1", base, 3, 7)
    s.bn("bn1", base)
    inplanes, expansion = base, 4 if bottleneck else 1
    for layer, depth in enumerate(depths, start=1):
        planes = base * 2 ** (layer - 1)
        for b in range(depth):
            key, stride = f"layer{layer}.{b}", 2 if b == 0 and layer > 1 else 1
            if bottleneck:
                width = int(planes * width_per_group / 64) * groups
                s.conv(f"{key}.conv1", width, inplanes, 1)
                s.bn(f"{key}.bn1", width)
                s.conv(f"{key}.conv2", width, width // groups, 3)
                s.bn(f"{key}.bn2", width)
                s.conv(f"{key}.conv3", planes * 4, width, 1)
                s.bn(f"{key}.bn3", planes * 4)
            else:
                s.conv(f"{key}.conv1", planes, inplanes, 3)
                s.bn(f"{key}.bn1", planes)
                s.conv(f"{key}.conv2", planes, planes, 3)
                s.bn(f"{key}.bn2", planes)
            if stride != 1 or inplanes != planes * expansion:
                s.conv(f"{key}.downsample.0", planes * expansion, inplanes, 1)
                s.bn(f"{key}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    s.linear("fc", CLASSES, inplanes)
    return s


def resnet_forward(x, s, groups=1):
    x = relu(bn(conv(x, s["conv1.weight"], stride=2, padding=3), s, "bn1"))
    x = max_pool(x, 3, 2, padding=1)
    layer = 1
    while f"layer{layer}.0.conv1.weight" in s:
        b = 0
        while f"layer{layer}.{b}.conv1.weight" in s:
            key, stride = f"layer{layer}.{b}", 2 if b == 0 and layer > 1 else 1
            identity = x
            if f"{key}.conv3.weight" in s:
                out = relu(bn(conv(x, s[f"{key}.conv1.weight"]), s, f"{key}.bn1"))
                out = relu(
                    bn(
                        conv(
                            out, s[f"{key}.conv2.weight"], stride=stride, padding=1, groups=groups
                        ),
                        s,
                        f"{key}.bn2",
                    )
                )
                out = bn(conv(out, s[f"{key}.conv3.weight"]), s, f"{key}.bn3")
            else:
                out = relu(
                    bn(conv(x, s[f"{key}.conv1.weight"], stride=stride, padding=1), s, f"{key}.bn1")
                )
                out = bn(conv(out, s[f"{key}.conv2.weight"], padding=1), s, f"{key}.bn2")
            if f"{key}.downsample.0.weight" in s:
                identity = bn(
                    conv(x, s[f"{key}.downsample.0.weight"], stride=stride),
                    s,
                    f"{key}.downsample.1",
                )
            x = relu(out + identity)
            b += 1
        layer += 1
    return linear(x.mean(axis=(2, 3)), s, "fc")


MOBILENET_V2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenet_v2_state(seed, alpha):
    """``torchvision.models.MobileNetV2(width_mult=alpha)``; returns the state and the blocks'
    (stride, expansion, residual) in order."""
    s, blocks = State(seed), []
    c_in = make_divisible(32 * alpha)
    s.conv("features.0.0", c_in, 3, 3)
    s.bn("features.0.1", c_in)
    index = 1
    for t, c, n, stride in MOBILENET_V2:
        c_out = make_divisible(c * alpha)
        for i in range(n):
            key, hidden, p = f"features.{index}.conv", c_in * t, 0
            if t != 1:
                s.conv(f"{key}.0.0", hidden, c_in, 1)
                s.bn(f"{key}.0.1", hidden)
                p = 1
            s.conv(f"{key}.{p}.0", hidden, 1, 3)
            s.bn(f"{key}.{p}.1", hidden)
            s.conv(f"{key}.{p + 1}", c_out, hidden, 1)
            s.bn(f"{key}.{p + 2}", c_out)
            block_stride = stride if i == 0 else 1
            blocks.append((block_stride, t, block_stride == 1 and c_in == c_out))
            c_in, index = c_out, index + 1
    last = make_divisible(1280 * max(1.0, alpha))
    s.conv(f"features.{index}.0", last, c_in, 1)
    s.bn(f"features.{index}.1", last)
    s.linear("classifier.1", CLASSES, last)
    return s, blocks


def relu6(x):
    return np.clip(x, 0, 6)


def mobilenet_v2_forward(x, s, blocks):
    x = relu6(bn(conv(x, s["features.0.0.weight"], stride=2, padding=1), s, "features.0.1"))
    for index, (stride, t, residual) in enumerate(blocks, start=1):
        key, y, p = f"features.{index}.conv", x, 0
        if t != 1:
            y = relu6(bn(conv(y, s[f"{key}.0.0.weight"]), s, f"{key}.0.1"))
            p = 1
        w = s[f"{key}.{p}.0.weight"]
        y = relu6(bn(conv(y, w, stride=stride, padding=1, groups=w.shape[0]), s, f"{key}.{p}.1"))
        y = bn(conv(y, s[f"{key}.{p + 1}.weight"]), s, f"{key}.{p + 2}")
        x = x + y if residual else y
    last = len(blocks) + 1
    x = relu6(bn(conv(x, s[f"features.{last}.0.weight"]), s, f"features.{last}.1"))
    return linear(x.mean(axis=(2, 3)), s, "classifier.1")


EFFICIENTNET_B0 = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]


def efficientnet_state(seed, width, depth):
    """``torchvision.models.EfficientNet`` of B0's table with ``width_mult`` and
    ``depth_mult``; returns the state and each row's blocks (kernel, stride, expansion,
    residual)."""
    s, rows = State(seed), []
    c_in = make_divisible(32 * width)
    s.conv("features.0.0", c_in, 3, 3)
    s.bn("features.0.1", c_in)
    for row, (t, k, stride, c, n) in enumerate(EFFICIENTNET_B0, start=1):
        c_out, blocks = make_divisible(c * width), []
        for j in range(int(math.ceil(n * depth))):
            key, hidden, p = f"features.{row}.{j}.block", c_in * t, 0
            if t != 1:
                s.conv(f"{key}.0.0", hidden, c_in, 1)
                s.bn(f"{key}.0.1", hidden)
                p = 1
            s.conv(f"{key}.{p}.0", hidden, 1, k)
            s.bn(f"{key}.{p}.1", hidden)
            squeeze = max(1, c_in // 4)
            s.conv(f"{key}.{p + 1}.fc1", squeeze, hidden, 1, bias=True)
            s.conv(f"{key}.{p + 1}.fc2", hidden, squeeze, 1, bias=True)
            s.conv(f"{key}.{p + 2}.0", c_out, hidden, 1)
            s.bn(f"{key}.{p + 2}.1", c_out)
            block_stride = stride if j == 0 else 1
            blocks.append((k, block_stride, t, block_stride == 1 and c_in == c_out))
            c_in = c_out
        rows.append(blocks)
    last = 4 * c_in
    s.conv(f"features.{len(rows) + 1}.0", last, c_in, 1)
    s.bn(f"features.{len(rows) + 1}.1", last)
    s.linear("classifier.1", CLASSES, last)
    return s, rows


def efficientnet_forward(x, s, rows):
    x = silu(bn(conv(x, s["features.0.0.weight"], stride=2, padding=1), s, "features.0.1"))
    for row, blocks in enumerate(rows, start=1):
        for j, (k, stride, t, residual) in enumerate(blocks):
            key, y, p = f"features.{row}.{j}.block", x, 0
            if t != 1:
                y = silu(bn(conv(y, s[f"{key}.0.0.weight"]), s, f"{key}.0.1"))
                p = 1
            w = s[f"{key}.{p}.0.weight"]
            y = silu(
                bn(conv(y, w, stride=stride, padding=k // 2, groups=w.shape[0]), s, f"{key}.{p}.1")
            )
            se = y.mean(axis=(2, 3), keepdims=True)
            se = silu(conv(se, s[f"{key}.{p + 1}.fc1.weight"], s[f"{key}.{p + 1}.fc1.bias"]))
            se = conv(se, s[f"{key}.{p + 1}.fc2.weight"], s[f"{key}.{p + 1}.fc2.bias"])
            y = y / (1 + np.exp(-se))
            y = bn(conv(y, s[f"{key}.{p + 2}.0.weight"]), s, f"{key}.{p + 2}.1")
            x = x + y if residual else y
    last = len(rows) + 1
    x = silu(bn(conv(x, s[f"features.{last}.0.weight"]), s, f"features.{last}.1"))
    return linear(x.mean(axis=(2, 3)), s, "classifier.1")


def densenet_state(seed, growth, blocks):
    """``torchvision.models.DenseNet(growth_rate, block_config, num_init_features=2 * growth,
    bn_size=4)``."""
    s = State(seed)
    channels = 2 * growth
    s.conv("features.conv0", channels, 3, 7)
    s.bn("features.norm0", channels)
    for b, depth in enumerate(blocks, start=1):
        for layer in range(1, depth + 1):
            key = f"features.denseblock{b}.denselayer{layer}"
            s.bn(f"{key}.norm1", channels)
            s.conv(f"{key}.conv1", 4 * growth, channels, 1)
            s.bn(f"{key}.norm2", 4 * growth)
            s.conv(f"{key}.conv2", growth, 4 * growth, 3)
            channels += growth
        if b < len(blocks):
            s.bn(f"features.transition{b}.norm", channels)
            s.conv(f"features.transition{b}.conv", channels // 2, channels, 1)
            channels //= 2
    s.bn("features.norm5", channels)
    s.linear("classifier", CLASSES, channels)
    return s


def densenet_forward(x, s):
    x = relu(bn(conv(x, s["features.conv0.weight"], stride=2, padding=3), s, "features.norm0"))
    x = max_pool(x, 3, 2, padding=1)
    b = 1
    while f"features.denseblock{b}.denselayer1.conv1.weight" in s:
        layer = 1
        while f"features.denseblock{b}.denselayer{layer}.conv1.weight" in s:
            key = f"features.denseblock{b}.denselayer{layer}"
            y = conv(relu(bn(x, s, f"{key}.norm1")), s[f"{key}.conv1.weight"])
            y = conv(relu(bn(y, s, f"{key}.norm2")), s[f"{key}.conv2.weight"], padding=1)
            x = np.concatenate([x, y], axis=1)
            layer += 1
        if f"features.transition{b}.conv.weight" in s:
            key = f"features.transition{b}"
            x = conv(relu(bn(x, s, f"{key}.norm")), s[f"{key}.conv.weight"])
            x = x.reshape(*x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2).mean(axis=(3, 5))
        b += 1
    x = relu(bn(x, s, "features.norm5"))
    return linear(x.mean(axis=(2, 3)), s, "classifier")


VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


def vgg_bn_state(seed, fc_units, map_size):
    """``torchvision.models.vgg11_bn`` with ``fc_units`` hidden units, for a ``map_size``
    square final feature map (7 in torchvision at 224 px)."""
    s, c_in, index = State(seed), 3, 0
    for v in VGG11:
        if v == "M":
            index += 1
            continue
        s.conv(f"features.{index}", v, c_in, 3, bias=True)
        s.bn(f"features.{index + 1}", v)
        c_in, index = v, index + 3
    s.linear("classifier.0", fc_units, 512 * map_size * map_size)
    s.linear("classifier.3", fc_units, fc_units)
    s.linear("classifier.6", CLASSES, fc_units)
    return s


def vgg_bn_forward(x, s):
    """torchvision's ``VGG.forward``, whose ``AdaptiveAvgPool2d`` is the identity when the map
    has the classifier's size; flattened channel-first."""
    index = 0
    for v in VGG11:
        if v == "M":
            x, index = max_pool(x, 2, 2), index + 1
            continue
        x = relu(
            bn(
                conv(x, s[f"features.{index}.weight"], s[f"features.{index}.bias"], padding=1),
                s,
                f"features.{index + 1}",
            )
        )
        index += 3
    x = x.reshape(len(x), -1)
    x = relu(linear(x, s, "classifier.0"))
    x = relu(linear(x, s, "classifier.3"))
    return linear(x, s, "classifier.6")


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def assert_same_logits(model, state, forward, size, **kwargs):
    kcnn.models.load_torchvision_weights(model, state)
    images = np.random.default_rng(1).normal(size=(2, 3, size, size))
    expected = forward(images, state, **kwargs)
    logits = numpy(model(images.transpose(0, 2, 3, 1).astype("float32"), training=False))
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 0.1  # the logits are not trivially small


CASES = {
    "resnet18": lambda: (
        kcnn.create_model(
            "resnet18",
            width=0.25,
            input_shape=(33, 33, 3),
            classes=CLASSES,
            classifier_activation=None,
        ),
        resnet_state(0, False, (2, 2, 2, 2), 16),
        resnet_forward,
        {},
    ),
    "resnext": lambda: (
        kcnn.create_model(
            "resnet",
            depths=(1, 2, 1, 1),
            block="bottleneck",
            groups=4,
            width_per_group=16,
            width=0.25,
            input_shape=(32, 32, 3),
            classes=CLASSES,
            classifier_activation=None,
        ),
        resnet_state(1, True, (1, 2, 1, 1), 16, groups=4, width_per_group=16),
        resnet_forward,
        {"groups": 4},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_resnets_compute_the_logits_of_torchvision(case):
    model, state, forward, kwargs = CASES[case]()
    assert_same_logits(model, state, forward, model.input_shape[1], **kwargs)


def test_mobilenet_v2_computes_the_logits_of_torchvision():
    model = kcnn.create_model(
        "mobilenet_v2",
        alpha=0.25,
        input_shape=(33, 33, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    state, blocks = mobilenet_v2_state(2, 0.25)
    assert_same_logits(model, state, mobilenet_v2_forward, 33, blocks=blocks)


def test_efficientnet_computes_the_logits_of_torchvision():
    model = kcnn.create_model(
        "efficientnet_b0",
        width=0.25,
        depth=0.5,
        input_shape=(33, 33, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    state, rows = efficientnet_state(3, 0.25, 0.5)
    assert_same_logits(model, state, efficientnet_forward, 33, rows=rows)


def test_densenet_computes_the_logits_of_torchvision():
    model = kcnn.create_model(
        "densenet121",
        growth_rate=4,
        blocks=(1, 2, 1, 2),
        input_shape=(32, 32, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    assert_same_logits(model, densenet_state(4, 4, (1, 2, 1, 2)), densenet_forward, 32)


def test_the_linear_after_a_flatten_is_reordered_from_channel_first_to_channel_last():
    feature_map = np.random.default_rng(0).normal(size=(2, 4, 3, 5))  # NCHW
    weight = np.random.default_rng(1).normal(size=(7, 4 * 3 * 5))
    kernel = flatten_linear(3, 5, 4).to_keras(weight)
    channel_last = feature_map.transpose(0, 2, 3, 1).reshape(2, -1)  # keras.layers.Flatten
    np.testing.assert_allclose(channel_last @ kernel, feature_map.reshape(2, -1) @ weight.T)


@pytest.mark.slow
def test_vgg_bn_computes_the_logits_of_torchvision_flattened_channel_first():
    # 64 px leave a 2x2x512 map, so the first Linear's inputs are re-ordered for real. VGG has
    # no width option: 9 million parameters, about 10 s on two cores.
    model = kcnn.create_model(
        "vgg11",
        norm="batch",
        fc_units=16,
        input_shape=(64, 64, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    assert_same_logits(model, vgg_bn_state(5, 16, 2), vgg_bn_forward, 64)


def test_a_safetensors_file_loads_like_the_dict(tmp_path):
    from safetensors.numpy import save_file

    model = kcnn.create_model("resnet18", width=0.25, input_shape=(32, 32, 3), classes=CLASSES)
    state = resnet_state(0, False, (2, 2, 2, 2), 16)
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.astype("float32") for k, v in state.items()}, str(path))
    kcnn.models.load_torchvision_weights(model, path)
    np.testing.assert_allclose(
        numpy(model.get_layer("logits").kernel), state["fc.weight"].T, rtol=1e-6
    )


# torchvision's state_dict() lengths (parameters, plus running mean, variance and
# num_batches_tracked of every BatchNorm2d), as its models publish them.
STATE_DICT_LENGTHS = [
    ("resnet18", {}, 122),
    ("resnet34", {}, 218),
    ("resnet50", {}, 320),
    ("resnet101", {}, 626),
    ("resnet152", {}, 932),
    ("resnext50_32x4d", {}, 320),
    ("wide_resnet50_2", {}, 320),
    ("vgg11", {}, 22),
    ("vgg11", {"norm": "batch"}, 62),
    ("vgg16", {}, 32),
    ("vgg16", {"norm": "batch"}, 97),
    ("vgg19", {}, 38),
    ("vgg19", {"norm": "batch"}, 118),
    ("mobilenet_v2", {}, 314),
    ("efficientnet_b0", {}, 360),
    ("densenet121", {}, 727),
]
SMALL = {
    "resnet": {"width": 0.125},
    "resnext": {"width": 0.25},
    "wide_resnet": {"width": 0.125},
    "vgg": {"fc_units": 8},
    "mobilenet": {"alpha": 0.25},
    "efficientnet": {"width": 0.25},
    "densenet": {"growth_rate": 2},
}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwargs", "length"), STATE_DICT_LENGTHS)
def test_every_tensor_of_torchvision_layout_has_one_place(name, kwargs, length):
    """Full-depth models (thin: the names and counts do not depend on the width): as many
    tensors as torchvision's state dict, each name once, each BatchNorm2d with its counter."""
    small = SMALL[kcnn.model_info(name).family]
    model = kcnn.create_model(name, input_shape=(32, 32, 3), **small, **kwargs)
    entries = torchvision_entries(model)
    keys = [entry.key for entry in entries]
    batch_norms = sum(key.endswith(".running_var") for key in keys)
    assert len(set(keys)) == len(keys)
    assert len(keys) + batch_norms == length
    assert len({id(entry.variable) for entry in entries}) == len(model.weights) - sum(
        "seed_generator" in v.path for v in model.weights
    )


def test_alexnet_torchvision_variant_maps_its_sixteen_tensors():
    model = kcnn.create_model(
        "alexnet", variant="torchvision", fc_units=8, input_shape=(224, 224, 3)
    )
    entries = torchvision_entries(model)
    assert [e.key for e in entries][::2] == [
        "features.0.weight",
        "features.3.weight",
        "features.6.weight",
        "features.8.weight",
        "features.10.weight",
        "classifier.1.weight",
        "classifier.4.weight",
        "classifier.6.weight",
    ]
    assert entries[10].layout.torch_shape(tuple(entries[10].variable.shape)) == (8, 256 * 6 * 6)


def small_resnet():
    model = kcnn.create_model("resnet18", width=0.25, input_shape=(32, 32, 3), classes=CLASSES)
    return model, resnet_state(0, False, (2, 2, 2, 2), 16)


def _broken(state, change):
    state = dict(state)
    if change == "missing":
        del state["layer3.1.bn2.running_var"]
    elif change == "extra":
        state["layer5.0.conv1.weight"] = np.zeros((1, 1, 1, 1))
    else:
        state["layer2.0.downsample.0.weight"] = np.zeros((32, 16, 3, 3))
    return state


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("missing", "layer3.1.bn2.running_var"),
        ("extra", "layer5.0.conv1.weight"),
        ("shape", "layer2.0.downsample.0.weight"),
    ],
)
def test_a_state_dict_that_does_not_fit_is_refused_by_name_and_changes_nothing(change, named):
    model, state = small_resnet()
    before = [numpy(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        kcnn.models.load_torchvision_weights(model, _broken(state, change))
    for old, new in zip(before, model.weights):
        np.testing.assert_array_equal(old, numpy(new))


def test_num_batches_tracked_is_ignored_and_nothing_else():
    _, state = small_resnet()
    assert ignored_keys(state) == {k for k in state if k.endswith("num_batches_tracked")}
    assert len(ignored_keys(state)) == 20


@pytest.mark.parametrize(
    ("name", "kwargs", "named"),
    [
        ("resnet18", {"norm": "group"}, "norm='batch'"),
        ("resnet18", {"attention": "se"}, "se"),
        ("resnet18", {"preact": True}, "preact"),
        ("mobilenet_v2", {"attention": "se", "alpha": 0.5}, "_se"),
        ("tiny_cnn", {}, "family"),
    ],
)
def test_a_model_torchvision_has_no_weights_for_is_refused(name, kwargs, named):
    model = kcnn.create_model(name, input_shape=(32, 32, 3), **kwargs)
    with pytest.raises(ValueError, match=named):
        kcnn.models.load_torchvision_weights(model, {})


@pytest.mark.parametrize("source", ["weights.pth", 3, "missing.safetensors"])
def test_a_bad_source_is_refused(source):
    model, _ = small_resnet()
    with pytest.raises(ValueError, match="source"):
        kcnn.models.load_torchvision_weights(model, source)


def test_without_top_the_classifier_of_the_state_dict_is_left_out():
    model = kcnn.create_model(
        "resnet18", width=0.25, input_shape=(32, 32, 3), include_top=False, pooling="avg"
    )
    state = resnet_state(0, False, (2, 2, 2, 2), 16)
    kcnn.models.load_torchvision_weights(model, state)
    np.testing.assert_allclose(
        numpy(model.get_layer("stem_conv").kernel),
        state["conv1.weight"].transpose(2, 3, 1, 0),
        rtol=1e-6,
    )


def save_state(state, path):
    from safetensors.numpy import save_file

    save_file({k: np.asarray(v, dtype="float32") for k, v in state.items()}, str(path))


def test_create_model_takes_a_safetensors_file_or_imagenet_from_the_weights_folder(
    tmp_path, monkeypatch
):
    state = resnet_state(0, False, (2, 2, 2, 2), 16)
    save_state(state, tmp_path / "resnet18.safetensors")
    monkeypatch.setenv("KCNN_WEIGHTS_DIR", str(tmp_path))
    small = dict(width=0.25, input_shape=(32, 32, 3), classes=CLASSES)
    for weights in ("imagenet", tmp_path / "resnet18.safetensors"):
        model = kcnn.create_model("resnet18", weights=weights, **small)
        np.testing.assert_allclose(
            numpy(model.get_layer("logits").bias), state["fc.bias"], rtol=1e-6
        )


def test_imagenet_weights_neither_at_hand_nor_downloadable_say_which_file_to_put_where(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KCNN_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"put vgg11\.safetensors .* in \$KCNN_WEIGHTS_DIR"):
        kcnn.create_model("vgg11", weights="imagenet", fc_units=8, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="has no ImageNet weights"):
        kcnn.create_model("tiny_cnn", weights="imagenet")
