"""Normalization: the constants kcnn's batch normalization uses."""

from __future__ import annotations

BN_EPSILON = 1e-5  # PyTorch's default, which the published ResNet weights were trained with
BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1 in Keras's convention
