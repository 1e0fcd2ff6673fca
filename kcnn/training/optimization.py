"""Compiling a classifier: optimizers with the course's defaults, learning-rate schedules,
weight decay, L1 and L2, the loss (with optional label smoothing) and `compile_model`.

The course's defaults (chapter 07, section 10.2): Adam with learning rate 1e-3, or SGD with
momentum 0.9 and learning rate 0.1; ReduceLROnPlateau or cosine annealing; L2 of 1e-4.
"""

from __future__ import annotations

import keras

from kcnn import checks

OPTIMIZERS = ("adam", "sgd")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 0.1}
SCHEDULES = ("constant", "plateau", "cosine", "onecycle")
NO_DECAY_VARIABLES = ("bias", "gamma", "beta")

# The one-cycle policy's shape (Smith & Topin 2019, as torch.optim.lr_scheduler.OneCycleLR):
# 30% of the steps rising from peak/25 to the peak, then down to peak/(25 * 1e4).
ONECYCLE_WARMUP_FRACTION = 0.3
ONECYCLE_DIV_FACTOR = 25.0
ONECYCLE_FINAL_DIV_FACTOR = 1e4
COSINE_WARMUP_FRACTION = 0.05


def learning_rate_schedule(
    schedule: str,
    learning_rate: float,
    total_steps: int | None = None,
    warmup_steps: int | None = None,
):
    """The learning rate ``optimizer(learning_rate=...)`` takes for ``schedule``.

    - ``"constant"`` and ``"plateau"``: the float ``learning_rate`` (``"plateau"`` lowers it with
      the ReduceLROnPlateau callback that `kcnn.training.train` adds).
    - ``"cosine"``: a linear warm-up from 0 over ``warmup_steps`` (default 5% of the steps),
      then cosine annealing to 0 (Loshchilov & Hutter, "SGDR", ICLR 2017; warm-up from Goyal et
      al. 2017).
    - ``"onecycle"``: the learning-rate side of the one-cycle policy (Smith & Topin, "Super-
      Convergence", 2019): from ``learning_rate / 25`` up to ``learning_rate`` over
      ``warmup_steps`` (default 30% of the steps), then cosine annealing to
      ``learning_rate / 2.5e5``. The momentum is not cycled.

    Both cosine schedules are ``keras.optimizers.schedules.CosineDecay`` objects, so saved models
    load without kcnn.

    Args:
        schedule: one of ``"constant"``, ``"plateau"``, ``"cosine"``, ``"onecycle"``.
        learning_rate: the base (constant) or peak (cosine, one-cycle) learning rate.
        total_steps: the number of optimizer steps of the whole run (needed by the cosine
            schedules).
        warmup_steps: the steps of the warm-up (cosine schedules only).

    Raises:
        ValueError: for an unknown schedule, a learning rate that is not positive, or a cosine
            schedule without ``total_steps``, or with ``warmup_steps >= total_steps``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    learning_rate = checks.positive_number("learning_rate", learning_rate)
    if schedule in ("constant", "plateau"):
        return learning_rate
    if not checks.is_integer(total_steps) or total_steps < 2:
        raise ValueError(
            f"schedule={schedule!r} needs total_steps (an integer >= 2), got {total_steps!r}"
        )
    fraction = ONECYCLE_WARMUP_FRACTION if schedule == "onecycle" else COSINE_WARMUP_FRACTION
    if warmup_steps is None:
        warmup_steps = int(round(fraction * total_steps))
    if not checks.is_integer(warmup_steps) or not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"warmup_steps must be an integer in [0, total_steps={total_steps}), "
            f"got {warmup_steps!r}"
        )
    if schedule == "cosine":
        start, alpha = 0.0, 0.0
    else:
        start = learning_rate / ONECYCLE_DIV_FACTOR
        alpha = 1.0 / (ONECYCLE_DIV_FACTOR * ONECYCLE_FINAL_DIV_FACTOR)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=start,
        decay_steps=int(total_steps - warmup_steps),
        alpha=alpha,
        warmup_target=learning_rate,
        warmup_steps=int(warmup_steps),
        name=schedule,
    )


def make_optimizer(
    optimizer: str = "adam",
    learning_rate: float | None = None,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int | None = None,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
):
    """A Keras optimizer with the course's defaults.

    Args:
        optimizer: ``"adam"`` (default learning rate 1e-3) or ``"sgd"`` (with ``momentum``,
            default learning rate 0.1).
        learning_rate: the base or peak learning rate (default: the optimizer's, above).
        schedule, total_steps, warmup_steps: see `learning_rate_schedule`.
        weight_decay: decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
            Regularization", ICLR 2019: Adam with it is AdamW), applied to kernels only, not to
            biases nor batch-normalisation parameters.
        momentum: SGD's momentum.

    Returns:
        a ``keras.optimizers.Adam`` or ``keras.optimizers.SGD``.

    Raises:
        ValueError: for an unknown optimizer, a negative weight decay, a momentum outside
            [0, 1), and what `learning_rate_schedule` raises.

    Example:
        >>> make_optimizer("sgd", schedule="cosine", total_steps=4690, weight_decay=5e-4)
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[optimizer]
    rate = learning_rate_schedule(schedule, learning_rate, total_steps, warmup_steps)
    decay = checks.non_negative_number("weight_decay", weight_decay) or None
    if optimizer == "adam":
        result = keras.optimizers.Adam(learning_rate=rate, weight_decay=decay)
    else:
        momentum = checks.fraction("momentum", momentum)
        result = keras.optimizers.SGD(learning_rate=rate, momentum=momentum, weight_decay=decay)
    if decay:
        result.exclude_from_weight_decay(var_names=list(NO_DECAY_VARIABLES))
    return result


# The kernels that L1 and L2 penalise, as (weight attribute, regularizer attribute) of a layer:
# Conv*D and Dense (and layers made like them, such as kcnn's TargetedDropout), and the
# depthwise and pointwise kernels of DepthwiseConv2D and SeparableConv2D. Biases and the
# parameters of normalization layers are not among them.
KERNEL_ATTRIBUTES = (
    ("kernel", "kernel_regularizer"),
    ("depthwise_kernel", "depthwise_regularizer"),
    ("pointwise_kernel", "pointwise_regularizer"),
)


def model_kernels(model) -> list:
    """The kernels of ``model``'s convolutions and dense layers, those inside nested models and
    custom blocks (kcnn's `ResidualBlock`) included.

    Returns:
        ``(layer, kernel variable, regularizer attribute name)`` triples, in layer order.
    """
    from kcnn.models.introspect import walk

    found = []
    for layer in walk(model):
        for kernel_name, regularizer_name in KERNEL_ATTRIBUTES:
            kernel = getattr(layer, kernel_name, None)
            if kernel is not None and hasattr(layer, regularizer_name):
                found.append((layer, kernel, regularizer_name))
    return found


def regularize_kernels(model, l1: float = 0.0, l2: float = 0.0) -> int:
    """Add the penalty ``l1 * sum(|kernel|) + l2 * sum(kernel ** 2)`` on every kernel of
    ``model``'s convolutions and dense layers (`model_kernels`: never biases nor normalization
    parameters) to its loss, as a ``keras.regularizers.L1L2`` on each kernel variable: it is in
    ``model.losses``, and in the saved config of every layer, so a reloaded model has it too
    (kcnn's composite layers, such as `ResidualBlock`, record it as their
    ``kernel_regularizer``, which they give every kernel inside).

    L1 drives weights to exactly zero (sparse kernels, Tibshirani 1996); L2 shrinks them all
    towards zero (the course's default is 1e-4). With both zero the model is left alone.

    Args:
        model: a built Keras model.
        l1: the L1 factor, >= 0.
        l2: the L2 factor, >= 0.

    Returns:
        the number of kernels regularised.

    Raises:
        ValueError: when ``l1`` or ``l2`` is negative or not a number.
    """
    from kcnn.models.introspect import composite_layers

    l1 = checks.non_negative_number("l1", l1)
    l2 = checks.non_negative_number("l2", l2)
    if not l1 and not l2:
        return 0
    regularizer = keras.regularizers.L1L2(l1=float(l1), l2=float(l2))
    kernels = model_kernels(model)
    for layer, kernel, regularizer_name in kernels:
        setattr(layer, regularizer_name, regularizer)
        kernel.regularizer = regularizer
    for layer in composite_layers(model):
        if hasattr(layer, "kernel_regularizer"):  # its config holds its parts' penalty
            layer.kernel_regularizer = regularizer
    return len(kernels)


def outputs_probabilities(model) -> bool:
    """Whether ``model`` ends in a softmax (True) or outputs logits (False).

    The layer that computes the output decides: a softmax activation (of a Dense or Activation
    layer), or a ``keras.layers.Softmax`` layer, inside a nested head model too
    (`kcnn.models.introspect.output_layer`).

    Raises:
        ValueError: when that layer has another activation.
    """
    from kcnn.models.introspect import output_layer

    try:
        layer = output_layer(model)
    except AttributeError:  # no symbolic outputs: a subclassed model, or an unbuilt Sequential
        layer = model.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "linear")
    if name == "softmax":
        return True
    if name == "linear":
        return False
    raise ValueError(
        f"model {model.name!r} ends in a {name!r} activation: kcnn's classification loss needs "
        "softmax probabilities or logits; pass loss= to compile_model"
    )


def classification_loss(model, label_smoothing: float = 0.0, one_hot: bool = False):
    """The cross-entropy loss that fits ``model``'s outputs (probabilities or logits).

    Args:
        model: the classifier.
        label_smoothing: spread this much of each label's probability uniformly over the classes
            (Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016).
        one_hot: labels are one-hot (or mixed) vectors rather than class indices. Label
            smoothing needs them (``kcnn.data.make_dataset(label_mode="categorical")``).
    """
    label_smoothing = checks.fraction("label_smoothing", label_smoothing)
    from_logits = not outputs_probabilities(model)
    if label_smoothing and not one_hot:
        raise ValueError(
            "label_smoothing needs one-hot labels: pass one_hot=True and a dataset made with "
            "label_mode='categorical'"
        )
    if one_hot:
        return keras.losses.CategoricalCrossentropy(
            from_logits=from_logits, label_smoothing=float(label_smoothing)
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def compile_model(
    model,
    optimizer="adam",
    learning_rate: float | None = None,
    schedule: str = "constant",
    total_steps: int | None = None,
    warmup_steps: int | None = None,
    weight_decay: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    label_smoothing: float = 0.0,
    one_hot: bool = False,
    loss=None,
    metrics=("accuracy",),
    jit_compile: bool = False,
    steps_per_execution: int = 1,
):
    """Compile ``model`` for classification with kcnn's defaults and return it.

    Args:
        model: the Keras model, built under the strategy's scope when training is distributed.
        optimizer: ``"adam"``, ``"sgd"`` (see `make_optimizer`) or a Keras optimizer object
            (then ``learning_rate``, ``schedule`` and ``weight_decay`` must be left alone).
        learning_rate, schedule, total_steps, warmup_steps, weight_decay: see `make_optimizer`.
        l1, l2: L1 and L2 penalties on the kernels (see `regularize_kernels`).
        label_smoothing, one_hot: see `classification_loss`.
        loss: a Keras loss to use instead of the cross-entropy.
        metrics: the metrics to report.
        jit_compile: compile the training step with XLA (resolve ``"auto"`` first with
            `kcnn.training.choose_jit_compile`).
        steps_per_execution: training steps per call into TensorFlow.

    Returns:
        ``model``, compiled.

    Example:
        >>> model = compile_model(kcnn.create_model("simple_cnn"), "sgd", schedule="cosine",
        ...                       total_steps=10 * 422, weight_decay=5e-4)
    """
    if isinstance(optimizer, str):
        optimizer = make_optimizer(
            optimizer, learning_rate, schedule, total_steps, warmup_steps, weight_decay
        )
    elif learning_rate is not None or schedule != "constant" or weight_decay:
        raise ValueError(
            "learning_rate, schedule and weight_decay apply to optimizer names ('adam', 'sgd'); "
            f"configure the {type(optimizer).__name__} object given yourself"
        )
    regularize_kernels(model, l1, l2)
    if loss is None:
        loss = classification_loss(model, label_smoothing, one_hot)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        jit_compile=bool(jit_compile),
        steps_per_execution=steps_per_execution,
    )
    return model
