"""What every builder shares: the keras.applications arguments (checked before any layer is
built), the model input, the classifier head, and loading a ``.weights.h5`` file.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import keras
from keras import layers

from kcnn import checks
from kcnn.errors import UserError
from kcnn.layers.convolution import convolution
from kcnn.layers.dropout import dense_with_dropout, dropout_layer
from kcnn.layers.normalization import BN_MOMENTUM, NORM_GROUPS, normalization, short_name
from kcnn.models.introspect import producer

POOLINGS = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Head:
    """How a builder's classifier head is made, for the checks that depend on it.

    Attributes:
        flatten: the head flattens the feature map, so it needs a fixed input size.
        exact_size: the head only takes this input height/width (e.g. LeNet-5's C5).
    """

    flatten: bool = False
    exact_size: int | None = None


def check_arguments(
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    default_shape: tuple,
    min_size: int,
    head: Head = Head(),
) -> tuple:
    """Check the keras.applications arguments of a builder and return the input shape to use.

    Raises:
        ValueError: naming the argument and the value received, for: ``classes < 1``, an unknown
            ``pooling`` or ``classifier_activation``, ``weights`` that is neither ``None`` nor an
            existing ``.weights.h5`` file, an input shape that is not (height, width, channels),
            an input smaller than ``min_size``, or a shape the head cannot take.
    """
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, got {include_top!r}")
    checks.integer("classes", classes, low=1)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"classifier_activation must be None or a Keras activation, "
                f"got {classifier_activation!r}"
            ) from error
    check_weights(weights)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    shape = _resolve_shape(input_tensor, input_shape, default_shape)
    _check_size(shape, min_size, include_top, head)
    return shape


def check_weights(weights) -> None:
    """``weights`` must be ``None`` or the path of an existing ``.weights.h5`` file."""
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(
            "weights='imagenet' loads through kcnn.create_model(name, weights='imagenet') "
            "(Keras Applications or torchvision files, see kcnn.models.pretrained); a builder "
            "called directly takes None or the path of a .weights.h5 file it saved"
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be None or a path to a .weights.h5 file, got {weights!r}")
    path = os.fspath(weights)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"weights must be a file ending in .weights.h5, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist")


def _resolve_shape(input_tensor, input_shape, default_shape) -> tuple:
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                f"input_tensor must be a Keras tensor (e.g. keras.Input(...)), "
                f"got {type(input_tensor).__name__}"
            )
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise ValueError(
                f"input_shape={tuple(input_shape)} does not match the shape {tensor_shape} "
                "of input_tensor"
            )
        input_shape = tensor_shape
    if input_shape is None:
        return tuple(default_shape)
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape!r}"
        ) from None
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {shape!r}")
    for dim in shape:
        if dim is not None and (not checks.is_integer(dim) or dim < 1):
            raise ValueError(f"input_shape must hold positive integers or None, got {shape!r}")
    if shape[2] is None:
        raise ValueError(f"input_shape must give the number of channels, got {shape!r}")
    return tuple(None if dim is None else int(dim) for dim in shape)


class InputTooSmall(UserError):
    """An input height or width below what the builder accepts (a mistake in ``input_shape``);
    ``smallest`` is the smallest it accepts with these arguments (`kcnn.registry.model_facts`
    reads it)."""

    def __init__(self, message: str, smallest: int):
        super().__init__(message, argument="input_shape")
        self.smallest = smallest


def _check_size(shape, min_size, include_top, head: Head) -> None:
    height, width = shape[:2]
    for dim in (height, width):
        if dim is not None and dim < min_size:
            raise InputTooSmall(
                f"input_shape={shape} is too small for this network: height and width must be "
                f"at least {min_size}",
                head.exact_size if include_top and head.exact_size is not None else min_size,
            )
    if not include_top:
        return
    if head.flatten and (height is None or width is None):
        raise ValueError(
            f"input_shape={shape}: include_top=True needs a fixed height and width because the "
            "head flattens the feature map; give them, or use include_top=False"
        )
    if head.exact_size is not None and (height, width) != (head.exact_size, head.exact_size):
        raise ValueError(
            f"input_shape={shape}: with include_top=True this network's head only takes "
            f"{head.exact_size}x{head.exact_size} inputs; resize the images or use "
            "include_top=False"
        )


def model_input(input_tensor, shape):
    """The ``keras.Input`` of a builder, or ``input_tensor`` when one is given."""
    if input_tensor is not None:
        return input_tensor
    return keras.Input(shape=shape, name="input")


def classifier(
    x,
    classes,
    classifier_activation,
    dropout: float = 0.0,
    dropout_kind: str = "standard",
    targeted_fraction: float | None = None,
):
    """The head: optional dropout, the ``logits`` Dense layer and the ``predictions`` activation.

    ``dropout_kind="standard"`` drops the head's inputs (``head_dropout``); ``"targeted"`` makes
    ``logits`` a `kcnn.layers.TargetedDropout` that drops its own weakest weights instead (the
    ``targeted_fraction`` of each unit's weights targeted).

    Both stay in float32 under mixed precision (a softmax in bfloat16 or float16 loses accuracy
    and can overflow). The ``logits`` layer is what Grad-CAM scores from.

    Raises:
        ValueError: naming ``classes`` and the parameter count, when the ``logits`` layer could
            not fit in memory (see `dense`).
    """
    x = dense(
        x,
        int(classes),
        name="logits",
        argument="classes",
        dropout=dropout,
        dropout_kind=dropout_kind,
        targeted_fraction=targeted_fraction,
        dropout_name="head_dropout",
        dtype="float32",
    )
    return layers.Activation(
        classifier_activation or "linear", name="predictions", dtype="float32"
    )(x)


def dense(
    x,
    units: int,
    *,
    name: str,
    argument: str,
    dropout: float = 0.0,
    dropout_kind: str = "standard",
    targeted_fraction: float | None = None,
    dropout_name: str | None = None,
    **options,
):
    """``keras.layers.Dense(units, name=name, **options)(x)``, refused up front when its weights
    cannot fit in memory; with ``dropout``, its inputs dropped first (``dropout_kind=
    "standard"``, a ``Dropout`` named ``dropout_name``) or its own weakest weights dropped
    (``"targeted"``, the ``targeted_fraction`` of them targeted), see
    `kcnn.layers.dropout.dense_with_dropout`.

    Keras would start allocating the kernel and fail seconds later with the backend's
    out-of-memory error; this says which builder argument (``argument``, e.g. ``"classes"``)
    made the layer too big, and by how much. The rule: the layer's ``(features + 1) * units``
    parameters, at 4 bytes (float32 variables, also under mixed precision), must not exceed the
    machine's physical memory (`physical_memory`), which no model can exceed and still be
    built. Nothing is checked when the number of input features or the memory is unknown.

    Raises:
        ValueError: naming ``argument``, the layer and its parameter count.
    """
    features, memory = x.shape[-1], physical_memory()
    if features is not None and memory is not None:
        parameters = (int(features) + 1) * int(units)
        if 4 * parameters > memory:
            raise ValueError(
                f"{argument}={units:,} is too many for this machine: layer {name!r} would have "
                f"{parameters:,} parameters (({features:,} inputs + 1) x {units:,}), "
                f"{4 * parameters / 2**30:,.1f} GiB of float32 weights, more than its "
                f"{memory / 2**30:,.1f} GiB of memory"
            )
    for layer in dense_with_dropout(
        units,
        rate=dropout,
        kind=dropout_kind,
        targeted_fraction=targeted_fraction,
        name=name,
        dropout_name=dropout_name,
        **options,
    ):
        x = layer(x)
    return x


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine: psutil's figure when psutil is installed, else
    ``os.sysconf`` (Linux, macOS); None where neither can tell."""
    try:
        import psutil
    except ImportError:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return None
    return psutil.virtual_memory().total


def conv_norm_relu(
    x,
    filters: int,
    kernel_size: int,
    *,
    prefix: str,
    index: str = "",
    conv: str = "standard",
    dilation: int = 1,
    norm=None,
    norm_groups: int = NORM_GROUPS,
    use_bias: bool | None = None,
    momentum: float = BN_MOMENTUM,
):
    """A "same" convolution, its normalization and a ReLU: the unit of the plain CNNs and VGGs.

    Without ``norm`` the ReLU is the convolution's activation, so the layers are
    ``{prefix}_conv{index}`` alone; with one they are ``{prefix}_conv{index}``,
    ``{prefix}_bn{index}`` (``gn``, ``ln``, ``in`` for the other norms) and
    ``{prefix}_relu{index}``. ``use_bias=None`` gives the convolution a bias only without a
    normalization, whose offset would make it redundant.
    """
    use_bias = norm is None if use_bias is None else use_bias
    x = convolution(
        conv,
        filters,
        kernel_size,
        dilation=dilation,
        use_bias=use_bias,
        activation="relu" if norm is None else None,
        name=f"{prefix}_conv{index}",
    )(x)
    if norm is None:
        return x
    x = normalization(
        norm,
        filters,
        norm_groups=norm_groups,
        momentum=momentum,
        name=f"{prefix}_{short_name(norm)}{index}",
    )(x)
    return layers.Activation("relu", name=f"{prefix}_relu{index}")(x)


def check_stage_dropout(spatial_dropout, element_dropout) -> tuple[float, float]:
    """Check the dropout rates of the convolution stages, each in [0, 1), at most one above 0.

    ``spatial_dropout`` drops whole channels, ``element_dropout`` single activations; a stage
    takes one kind, so that a run says which of the two regularises (the comparison of
    ``experiments/dropout_variants.py``).

    Returns:
        ``(spatial_dropout, element_dropout)`` as Python ``float`` s.

    Raises:
        UserError: naming the argument out of range, or naming both when both are above 0.
    """
    spatial = checks.fraction("spatial_dropout", spatial_dropout)
    element = checks.fraction("element_dropout", element_dropout)
    if spatial and element:
        raise UserError(
            f"spatial_dropout={spatial} and element_dropout={element} were both given: a "
            "convolution stage drops whole channels or single activations, not both; set one "
            "of them to 0",
            "element_dropout",
        )
    return spatial, element


def close_stage(x, stage: int, *, spatial_dropout: float = 0.0, element_dropout: float = 0.0):
    """The end of convolution stage ``stage``: its dropout and its 2x2 max-pool.

    ``SpatialDropout2D(spatial_dropout)`` named ``stage{stage}_spatial_dropout`` comes before
    the pool ``stage{stage}_pool``, which is the same as after it (whole channels are dropped,
    and pooling works channel by channel) and keeps the pooled map the stage's output.
    ``Dropout(element_dropout)`` named ``stage{stage}_element_dropout`` comes after the pool,
    on the map the next stage reads: before a max-pool most of its drops would be hidden (a
    pooled value is lost only when its four inputs all are, 0.2 ** 4 = 0.16 % of them at rate
    0.2), which would weaken it for a reason other than the correlation of neighbouring
    activations that spatial dropout answers (Tompson et al., CVPR 2015). A rate of 0 adds no
    layer. Check the rates with `check_stage_dropout` first.
    """
    if spatial_dropout:
        x = dropout_layer("spatial", spatial_dropout, name=f"stage{stage}_spatial_dropout")(x)
    x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    if element_dropout:
        x = dropout_layer("standard", element_dropout, name=f"stage{stage}_element_dropout")(x)
    return x


def global_pool(x, pooling):
    """``pooling`` of ``include_top=False``: the feature map itself, its global average or max."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def finish(inputs, outputs, name, weights):
    """Make the Functional model (from ``input_tensor``'s source inputs when it was given) and
    load ``weights`` into it, with a clear error when the file is from another architecture."""
    if not isinstance(inputs, list) and producer(inputs) is not None:
        source = keras.utils.get_source_inputs(inputs)
        inputs = source[0] if len(source) == 1 else source
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        load_weights_strictly(model, weights)
    return model


def load_weights_strictly(model, path) -> None:
    """``model.load_weights(path)``, but a file that does not fit the model completely is a
    ``ValueError``: Keras only warns when it skips part of a file, leaving random weights."""
    path = os.fspath(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except (ValueError, KeyError) as error:
            raise ValueError(
                f"weights file {path!r} does not fit {model.name!r}: it was not saved from the "
                f"same builder with the same arguments ({error})"
            ) from error
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    if skipped:
        raise ValueError(
            f"weights file {path!r} does not fit {model.name!r}: part of the model has no "
            f"weights in it ({skipped[0]})"
        )
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
