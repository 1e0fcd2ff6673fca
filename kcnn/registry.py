"""One table of model builders: `register_model`, `create_model`, `list_models`, `model_info`,
`model_facts`.

The registry itself imports nothing heavy; the built-in builders in `kcnn.models` (which import
Keras) are loaded the first time the table is read, so `import kcnn` stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from collections.abc import Callable

_REGISTRY: dict[str, ModelInfo] = {}
_BUILTINS_LOADED = False


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a builder without building it.

    Attributes:
        name: the registry name, e.g. ``"resnet18"``.
        family: the architecture family, e.g. ``"resnet"``.
        paper: the publication the architecture comes from.
        input_shape: the default ``(height, width, channels)``.
        min_input_size: the smallest height/width the default configuration accepts.
        gradcam_layer: name of the layer whose feature maps Grad-CAM uses (``None`` for models
            without convolutional feature maps, such as the MLP).

    These three are the facts of the default options, checked against the built model by the
    tests; `model_facts` reads them from the model built with any options.
        builder: the function that builds the model.
    """

    name: str
    family: str
    paper: str
    input_shape: tuple
    min_input_size: int
    gradcam_layer: str | None
    builder: Callable = dataclasses.field(repr=False, compare=False)

    @property
    def summary(self) -> str:
        """The first line of the builder's docstring."""
        doc = (self.builder.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


def register_model(
    name: str | None = None,
    *,
    family: str,
    paper: str,
    input_shape: tuple,
    min_input_size: int,
    gradcam_layer: str | None,
):
    """Decorator that adds a builder to the registry under ``name`` (default: its function name).

    Example:
        >>> @register_model(family="custom", paper="-", input_shape=(32, 32, 3),
        ...                 min_input_size=8, gradcam_layer="stage2_relu")
        ... def my_cnn(include_top=True, weights=None, input_tensor=None, input_shape=None,
        ...            pooling=None, classes=10, classifier_activation="softmax", name="my_cnn"):
        ...     ...
    """

    def decorator(builder: Callable) -> Callable:
        key = name or builder.__name__
        if key in _REGISTRY and _REGISTRY[key].builder is not builder:
            raise ValueError(f"a model named {key!r} is already registered")
        _REGISTRY[key] = ModelInfo(
            name=key,
            family=family,
            paper=paper,
            input_shape=tuple(input_shape),
            min_input_size=int(min_input_size),
            gradcam_layer=gradcam_layer,
            builder=builder,
        )
        return builder

    return decorator


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        importlib.import_module("kcnn.models")
        _BUILTINS_LOADED = True


def list_models(family: str | None = None) -> list[str]:
    """Names of every registered model, sorted; only those of ``family`` when given."""
    _load_builtins()
    return sorted(n for n, info in _REGISTRY.items() if family is None or info.family == family)


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``.

    Raises:
        ValueError: if no model of that name is registered; the message lists the closest names.
    """
    _load_builtins()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown model name {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def model_facts(name: str, **options) -> ModelInfo:
    """The registry entry for ``name`` with the facts of the model built with ``options``.

    The registered ``input_shape``, ``min_input_size`` and ``gradcam_layer`` are those of the
    default options; options change them (``vgg16(batch_norm=True)``'s Grad-CAM layer is
    ``stage5_relu3``, ``resnet18(stem="cifar")`` takes 8 px inputs). Here they are read from
    what the builder does: the input shape and the Grad-CAM target
    (`kcnn.models.introspect.gradcam_layer`) of the model built with ``options``, and the
    smallest height and width the builder accepts with them. `kcnn models` prints these.

    Raises:
        ValueError: for an unknown ``name`` or an option the builder refuses.

    Example:
        >>> model_facts("resnet18", stem="cifar").min_input_size
        8
    """
    from kcnn.models.common import InputTooSmall
    from kcnn.models.introspect import gradcam_layer

    info = model_info(name)
    model = create_model(name, **options)
    shape = tuple(model.input_shape[1:])
    try:
        create_model(name, **{**options, "input_tensor": None, "input_shape": (1, 1, shape[2])})
        smallest = 1
    except InputTooSmall as error:
        smallest = error.smallest
    return dataclasses.replace(
        info, input_shape=shape, min_input_size=smallest, gradcam_layer=gradcam_layer(model)
    )


def create_model(name: str, **kwargs):
    """Build the registered model ``name`` with the builder's keyword arguments.

    Every way of passing builder arguments (``--model-option``, ``train(model_kwargs=...)``,
    ``kcnn tune``, ``--backbone-option``) ends here, so a mistyped option is caught here once.
    ``weights="imagenet"`` or a torchvision ``.safetensors`` state dict are loaded as
    `kcnn.models.pretrained` says (from Keras Applications or torchvision).

    Raises:
        ValueError: for an unknown ``name`` (see `model_info`), or a keyword argument the builder
            does not take: the message names it, suggests the closest options and lists all.

    Example:
        >>> model = create_model("resnet18", input_shape=(32, 32, 3), stem="cifar", classes=10)
    """
    info = model_info(name)
    check_options(info.builder, kwargs, f"model {info.name!r}")
    from kcnn.models import pretrained  # loaded with the builders by model_info

    return pretrained.build(info.name, info.builder, kwargs)


def check_options(builder: Callable, kwargs: dict, owner: str) -> None:
    """Refuse the keywords of ``kwargs`` that ``builder`` does not take (a builder with
    ``**kwargs`` takes any), before it is called: a Python ``TypeError`` from deep inside a
    command would not say which options there are.

    Raises:
        ValueError: ``"<owner> has no option 'x' (did you mean y?); its options are: ..."``.
    """
    parameters = inspect.signature(builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    options = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [key for key in kwargs if key not in options]
    if not unknown:
        return
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, options, n=3, cutoff=0.6)
        named.append(f"{key!r} (did you mean {', '.join(close)}?)" if close else repr(key))
    raise ValueError(
        f"{owner} has no option {', '.join(named)}; its options are: {', '.join(options)}"
    )
