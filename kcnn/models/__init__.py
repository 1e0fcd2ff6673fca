"""Model builders (Functional API, keras.applications signature) and the custom layers.

Importing this package registers every builder in `kcnn.registry`. It uses ``keras`` and
``keras.ops`` only, so the models run on the TensorFlow, JAX and PyTorch backends.
"""

from kcnn.models import layers
from kcnn.models.alexnet import alexnet
from kcnn.models.densenet import densenet121
from kcnn.models.efficientnet import (
    efficientnet,
    efficientnet_b0,
    efficientnet_b1,
    efficientnet_b2,
    efficientnet_b3,
)
from kcnn.models.features import feature_extractor, find_layer, gradcam_layer, stage_outputs
from kcnn.models.filters import CLASSIC_FILTERS, classic_kernel, fixed_conv2d
from kcnn.models.inception import inception_v3
from kcnn.models.keras_applications import from_keras_application
from kcnn.models.lenet import lenet5
from kcnn.models.mobilenet import mobilenet_v2
from kcnn.models.resnet import (
    resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnext50_32x4d,
    tiny_resnet,
    wide_resnet50_2,
)
from kcnn.models.saving import load_model
from kcnn.models.simple import configurable_cnn, mlp, simple_cnn, tiny_cnn
from kcnn.models.torchvision_weights import load_torchvision_weights
from kcnn.models.vgg import tiny_vgg, vgg11, vgg13, vgg16, vgg19

__all__ = [
    "CLASSIC_FILTERS",
    "alexnet",
    "classic_kernel",
    "configurable_cnn",
    "densenet121",
    "efficientnet",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "feature_extractor",
    "find_layer",
    "fixed_conv2d",
    "from_keras_application",
    "gradcam_layer",
    "inception_v3",
    "layers",
    "lenet5",
    "load_model",
    "load_torchvision_weights",
    "mlp",
    "mobilenet_v2",
    "resnet",
    "resnet101",
    "resnet152",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnext50_32x4d",
    "simple_cnn",
    "stage_outputs",
    "tiny_cnn",
    "tiny_resnet",
    "tiny_vgg",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "wide_resnet50_2",
]
