"""Shape helpers the kcnn layers share."""

from __future__ import annotations


def input_channels(input_shape, layer_name: str) -> int:
    """The channel count of a 4D channels-last ``input_shape``.

    Raises:
        ValueError: naming ``layer_name``, when the shape is not 4D or its channels are unknown.
    """
    if len(input_shape) != 4 or input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} expects 4D channels-last inputs with a known channel count, "
            f"got input shape {tuple(input_shape)}"
        )
    return int(input_shape[-1])


def downsample(shape, stride):
    """The shape after a padded convolution of stride 1 or 2: height and width halved, rounded
    up."""
    if stride == 1:
        return tuple(shape)
    return (shape[0], *(None if d is None else (d + 1) // 2 for d in shape[1:3]), shape[3])
