"""The parts of a transfer model: its nested backbone, the backbone's blocks, its stage outputs
and its BatchNormalization layers.

`kcnn.transfer.freezing` freezes and unfreezes by these blocks; `feature_layers` names the
layers that feature extraction and Grad-CAM use.
"""

from __future__ import annotations

import keras

from kcnn.errors import UserError
from kcnn.models import introspect


def backbone_of(model) -> keras.Model:
    """The backbone nested in a transfer model made by `build`.

    Raises:
        ValueError: if ``model`` does not hold exactly one nested model.
    """
    nested = introspect.nested_models(model)
    if len(nested) != 1:
        raise UserError(
            f"model {model.name!r} is not a kcnn.transfer model: it holds {len(nested)} nested "
            "models, not one backbone"
        )
    return nested[0]


def blocks(backbone) -> list[tuple[str, list]]:
    """The backbone's layers grouped into blocks, bottom to top: ``[(block name, layers)]``,
    the ``"stem"`` first (`kcnn.models.introspect.blocks`, which knows the block names of kcnn's
    and Keras Applications' families).

    Args:
        backbone: the backbone model (`backbone_of` finds it in a transfer model).
    """
    return introspect.blocks(backbone)


def batchnorm_layers(backbone) -> list:
    """Every BatchNormalization layer of ``backbone``, those inside kcnn's blocks included."""
    return introspect.batchnorm_layers(backbone)


def feature_layers(model) -> list[str]:
    """The backbone's stage outputs: for each spatial resolution its feature maps go through,
    the name of the last layer at that resolution, bottom to top (paddings and poolings left
    out; `kcnn.models.introspect.resolution_outputs`). The last one is the Grad-CAM target
    (`kcnn.models.gradcam_layer`).

    The layers are inside the nested backbone; `kcnn.models.find_layer` and `kcnn.viz` find
    them by name in the transfer model.

    Example:
        >>> feature_layers(build("ResNet50", 10, weights=None, input_shape=(224, 224, 3)))
        ['conv1_relu', 'conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out',
         'conv5_block3_out']
    """
    return introspect.resolution_outputs(backbone_of(model))
