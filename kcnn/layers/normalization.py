"""Normalization by name: the one place that turns ``norm="group"`` into a Keras layer.

Every builder and block takes ``norm=`` and calls `normalization`; adding a kind touches this
file only. All kinds are Keras's own layers:

- ``"batch"``: ``BatchNormalization`` (Ioffe & Szegedy, ICML 2015), over the batch and the
  positions, per channel; PyTorch's epsilon and momentum (`BN_EPSILON`, `BN_MOMENTUM`).
- ``"group"``: ``GroupNormalization`` (Wu & He, ECCV 2018), per example, over the positions
  and the channels of each of ``norm_groups`` groups; see `group_count` for channel counts
  that ``norm_groups`` does not divide.
- ``"layer"``: ``GroupNormalization`` with one group (Ba, Kiros & Hinton, 2016): per example,
  over all positions and channels, with one scale and offset per channel.
- ``"instance"``: ``GroupNormalization`` with one group per channel (Ulyanov, Vedaldi &
  Lempitsky, 2016): per example and channel, over the positions.
- ``None``: no normalization; the convolution before it then keeps its bias.

Only batch normalization depends on the batch, and only it keeps moving statistics, so the
other kinds behave the same in training and at inference and suit batches of one or two.
"""

from __future__ import annotations

from keras import layers

from kcnn import checks

__all__ = [
    "BN_EPSILON",
    "BN_MOMENTUM",
    "NORM_GROUPS",
    "NORMS",
    "check_norm",
    "group_count",
    "norm_from_alias",
    "normalization",
    "short_name",
]

BN_EPSILON = 1e-5  # PyTorch's default, which the published ResNet weights were trained with
BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1 in Keras's convention
NORMS = ("batch", "group", "layer", "instance", None)
NORM_GROUPS = 32  # Wu & He's default
_SHORT_NAMES = {"batch": "bn", "group": "gn", "layer": "ln", "instance": "in", None: "norm"}


def check_norm(norm, norm_groups=NORM_GROUPS):
    """Check ``norm`` and ``norm_groups`` before any layer is built.

    Returns:
        ``(norm, norm_groups)``, ``norm_groups`` as a Python ``int``.

    Raises:
        ValueError: naming ``norm`` and listing `NORMS`, or naming ``norm_groups`` (a positive
            integer).
    """
    return checks.choice("norm", norm, NORMS), checks.positive_int("norm_groups", norm_groups)


def norm_from_alias(norm, batch_norm, default):
    """The ``norm`` of a builder that also takes the older ``batch_norm=True/False``.

    ``batch_norm=None`` (not given) leaves ``norm`` as it is; ``True`` means ``"batch"`` and
    ``False`` means ``None``. A builder cannot tell a ``norm`` left at its ``default`` from one
    given, so ``batch_norm`` with any other ``norm`` is refused as ambiguous.

    Raises:
        ValueError: when ``batch_norm`` is not a bool or None, or comes with a ``norm`` other
            than ``default``.
    """
    if batch_norm is None:
        return norm
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
    if norm != default:
        raise ValueError(
            f"batch_norm={batch_norm} and norm={norm!r} were both given: batch_norm is an alias "
            "(True is norm='batch', False is norm=None); give norm only"
        )
    return "batch" if batch_norm else None


def short_name(norm) -> str:
    """The abbreviation in the names of ``norm``'s layers: ``stage1_bn``, ``stage1_gn``..."""
    return _SHORT_NAMES[checks.choice("norm", norm, NORMS)]


def group_count(channels: int, norm_groups: int = NORM_GROUPS) -> int:
    """The number of groups of ``"group"`` normalization over ``channels`` channels.

    Group normalization needs a number of groups that divides the channels. The rule: the
    largest divisor of ``channels`` that is at most ``norm_groups``. So 32 groups stay 32 over
    64 or 256 channels, become 24 over 48 channels and 16 over 16 channels (one channel per
    group: instance normalization); 4 groups over 7 channels become 1 (layer normalization).
    """
    channels = checks.positive_int("channels", channels)
    norm_groups = checks.positive_int("norm_groups", norm_groups)
    return max(g for g in range(1, min(channels, norm_groups) + 1) if channels % g == 0)


def normalization(
    norm,
    channels: int,
    *,
    name: str,
    norm_groups: int = NORM_GROUPS,
    epsilon: float = BN_EPSILON,
    momentum: float = BN_MOMENTUM,
    scale: bool = True,
    dtype=None,
):
    """The normalization layer of kind ``norm`` over ``channels`` channels, or None.

    Args:
        norm: one of `NORMS`.
        channels: the channel count of its input.
        name: the layer's name.
        norm_groups: the groups of ``"group"`` (see `group_count`).
        epsilon: added to the variance (all kinds).
        momentum: of the moving statistics (``"batch"`` only).
        scale: whether it learns a scale per channel besides the offset (Keras's InceptionV3
            has none: the ReLU after it makes a scale redundant with the next convolution).
        dtype: the layer's dtype policy (None: the global one).

    Raises:
        ValueError: for an unknown ``norm`` or a bad ``norm_groups``.
    """
    norm, norm_groups = check_norm(norm, norm_groups)
    if norm is None:
        return None
    if norm == "batch":
        return layers.BatchNormalization(
            epsilon=epsilon, momentum=momentum, scale=scale, name=name, dtype=dtype
        )
    groups = {
        "group": group_count(channels, norm_groups),
        "layer": 1,
        "instance": channels,
    }[norm]
    return layers.GroupNormalization(
        groups=groups, epsilon=epsilon, scale=scale, name=name, dtype=dtype
    )
