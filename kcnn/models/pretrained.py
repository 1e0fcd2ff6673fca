"""ImageNet weights for registered kcnn models: what ``create_model(name, weights=...)`` does
with ``"imagenet"`` or a ``.safetensors`` file.

Each model with ImageNet weights has one source:

- **Keras Applications** (`mobilenet_v2`, `efficientnet_b0`..``b3``, `densenet121`,
  `inception_v3`, `vgg16`, `vgg19`): the Keras model is built with ``weights="imagenet"``
  (Keras downloads its file once into ``~/.keras/models/``, or finds it there offline) and
  converted by `kcnn.models.from_keras_application`; the kcnn model then has Keras's
  conventions (asymmetric stride-2 padding, its epsilons, EfficientNet's preprocessing).
- **torchvision** (the ResNets, ResNeXt, Wide ResNet, `vgg11`, `vgg13`, `alexnet`): a state
  dict saved as ``{name}.safetensors``, looked up in ``$KCNN_WEIGHTS_DIR`` then
  ``~/.keras/kcnn/``; for the ResNets, downloaded there when online (through
  ``keras.utils.get_file``) from the Hugging Face Hub, where timm publishes torchvision's
  original weights (``timm/<name>.tv_in1k``) under torchvision's names. The others have no
  published ``.safetensors`` file: save torchvision's state dict with
  ``safetensors.torch.save_file`` once, where torch is installed.

The weights expect their source's input, not kcnn's raw [0, 255] pixels: torchvision's the
ImageNet mean and standard deviation of pixels in [0, 1], Keras Applications' their model's
``preprocess_input``. `input_preprocessing` gives the layer that turns raw pixels into that input;
`kcnn.transfer.build` puts it first in its models.

Provenance and licences: torchvision's weights are released under its BSD-3-Clause licence;
Keras Applications' weights are those their authors published, under the terms stated there.
"""

from __future__ import annotations

import dataclasses
import os

import keras

from kcnn.layers.preprocessing import ApplicationPreprocessing
from kcnn.models.keras_applications import from_keras_application
from kcnn.models.torchvision_weights import load_torchvision_weights

WEIGHTS_DIR_VARIABLE = "KCNN_WEIGHTS_DIR"
CACHE_SUBDIR = "kcnn"  # under Keras's cache folder, ~/.keras
HUB = "https://huggingface.co/timm/{}.tv_in1k/resolve/main/model.safetensors"
# torchvision's input normalization, of RGB pixels in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
APPLICATION_ARGUMENTS = (
    "include_top",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a registered model's ImageNet weights come from.

    Attributes:
        application: the ``keras.applications`` function, for Keras Applications weights.
        url: where ``{name}.safetensors`` is downloaded from, for torchvision weights (None:
            nowhere, the file must be put in place).
        options: builder options the weights need (AlexNet's torchvision variant).
    """

    application: str | None = None
    url: str | None = None
    options: dict = dataclasses.field(default_factory=dict)


SOURCES = {
    **{
        name: Source(url=HUB.format(name))
        for name in (
            "resnet18",
            "resnet34",
            "resnet50",
            "resnet101",
            "resnet152",
            "resnext50_32x4d",
            "wide_resnet50_2",
        )
    },
    "vgg11": Source(),
    "vgg13": Source(),
    "alexnet": Source(options={"variant": "torchvision", "input_shape": (224, 224, 3)}),
    "mobilenet_v2": Source(application="MobileNetV2"),
    "efficientnet_b0": Source(application="EfficientNetB0"),
    "efficientnet_b1": Source(application="EfficientNetB1"),
    "efficientnet_b2": Source(application="EfficientNetB2"),
    "efficientnet_b3": Source(application="EfficientNetB3"),
    "densenet121": Source(application="DenseNet121"),
    "inception_v3": Source(application="InceptionV3"),
    "vgg16": Source(application="VGG16"),
    "vgg19": Source(application="VGG19"),
}


def build(name: str, builder, kwargs: dict):
    """``builder(**kwargs)``, with ``weights="imagenet"`` or a ``.safetensors`` state dict
    loaded as `SOURCES` says (any other ``weights`` is the builder's: None or .weights.h5).

    Raises:
        ValueError: for a model without ImageNet weights, options the weights do not fit, or
            weights neither at hand nor downloadable (one line: which file to put where).
    """
    weights = kwargs.get("weights")
    if _is_state_dict(weights):
        model = builder(**{**kwargs, "weights": None})
        load_torchvision_weights(model, weights)
        return model
    if weights != "imagenet":
        return builder(**kwargs)
    source = _source(name)
    if source.application is not None:
        return _from_keras_applications(name, source.application, kwargs)
    model = builder(**{**source.options, **kwargs, "weights": None})
    load_torchvision_weights(model, _torchvision_file(name, source))
    return model


def input_preprocessing(name: str, weights, layer_name: str = "preprocess"):
    """The layer that turns RGB pixels in [0, 255] into the input that
    ``create_model(name, weights=weights)`` expects.

    A torchvision state dict (``"imagenet"`` from torchvision, or a ``.safetensors`` file):
    ``(x / 255 - mean) / std`` with ImageNet's mean and std, as one ``Normalization`` layer.
    ImageNet weights from Keras Applications: that model's ``preprocess_input``
    (`kcnn.layers.ApplicationPreprocessing`; the identity for EfficientNet, which preprocesses
    inside the model). Anything else (``None``, a ``.weights.h5`` file): ``x / 255``, the
    rescaling kcnn's transfer models have always used.

    Raises:
        ValueError: ``weights="imagenet"`` for a model that has no ImageNet weights.
    """
    if _is_state_dict(weights) or (weights == "imagenet" and _source(name).application is None):
        return keras.layers.Normalization(
            mean=[255 * m for m in IMAGENET_MEAN],
            variance=[(255 * s) ** 2 for s in IMAGENET_STD],
            name=layer_name,
            dtype="float32",
        )
    if weights == "imagenet":
        return ApplicationPreprocessing(_source(name).application, name=layer_name)
    return keras.layers.Rescaling(1 / 255, name=layer_name, dtype="float32")


def _is_state_dict(weights) -> bool:
    return isinstance(weights, (str, os.PathLike)) and os.fspath(weights).endswith(".safetensors")


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(
            f"weights='imagenet': {name!r} has no ImageNet weights; models that have: "
            f"{', '.join(sorted(SOURCES))}"
        )
    return SOURCES[name]


def weights_dirs() -> list[str]:
    """The folders searched for ``{name}.safetensors``: ``$KCNN_WEIGHTS_DIR`` when set, then
    ``~/.keras/kcnn/`` (where downloads go)."""
    dirs = [os.environ[WEIGHTS_DIR_VARIABLE]] if os.environ.get(WEIGHTS_DIR_VARIABLE) else []
    return dirs + [os.path.join(os.path.expanduser("~"), ".keras", CACHE_SUBDIR)]


def _torchvision_file(name: str, source: Source) -> str:
    filename = f"{name}.safetensors"
    for folder in weights_dirs():
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            return path
    where = f"${WEIGHTS_DIR_VARIABLE} or ~/.keras/{CACHE_SUBDIR}/"
    if source.url is None:
        raise ValueError(
            f"weights='imagenet' for {name!r}: put {filename} (torchvision's {name} state dict, "
            f"saved with safetensors.torch.save_file) in {where}"
        )
    try:
        return keras.utils.get_file(filename, source.url, cache_subdir=CACHE_SUBDIR)
    except Exception as error:  # get_file raises a bare Exception when the download fails
        raise ValueError(
            f"weights='imagenet' for {name!r}: {filename} is not in {where} and could not be "
            f"downloaded from {source.url} ({str(error).splitlines()[0]}); put it there"
        ) from error


def _from_keras_applications(name: str, application: str, kwargs: dict):
    others = sorted(set(kwargs) - set(APPLICATION_ARGUMENTS) - {"weights", "name"})
    if others:
        raise ValueError(
            f"weights='imagenet' for {name!r} are Keras Applications' {application}, which has "
            f"no option {', '.join(others)}; it takes {', '.join(APPLICATION_ARGUMENTS)}"
        )
    arguments = {key: value for key, value in kwargs.items() if key in APPLICATION_ARGUMENTS}
    try:
        keras_model = getattr(keras.applications, application)(weights="imagenet", **arguments)
    except ValueError:  # an argument Keras refuses, with its own message
        raise
    except Exception as error:  # get_file raises a bare Exception when the download fails
        raise ValueError(
            f"weights='imagenet' for {name!r} are Keras Applications' {application}: its file "
            f"is not in ~/.keras/models/ and could not be downloaded "
            f"({str(error).splitlines()[0]}); put it there"
        ) from error
    model = from_keras_application(keras_model)
    if "name" in kwargs:
        model.name = kwargs["name"]
    return model
