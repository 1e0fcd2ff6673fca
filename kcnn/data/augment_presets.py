"""The augmentation presets as plain data, importable without Keras (the ``kcnn`` command
lists and checks ``--augment`` with them before any heavy import); `kcnn.data.augment` makes
their layers."""

__all__ = ["PRESETS"]

# What each preset does. crop_scale: RandomResizedCrop's area range (torchvision's default
# (0.08, 1) is for 224-px ImageNet crops; "standard" keeps at least 35% of a small image);
# rotation: degrees; translation: fraction of the size; color: brightness, contrast and
# saturation strength; erasing: probability of RandomErasing.
PRESETS = {
    "none": {},
    "flip": {"flip": True},
    "light": {"flip": True, "translation": 0.1},
    "standard": {"crop_scale": (0.35, 1.0), "flip": True, "rotation": 15.0, "color": 0.2},
    "strong": {
        "crop_scale": (0.08, 1.0),
        "flip": True,
        "rotation": 15.0,
        "translation": 0.1,
        "color": 0.4,
        "erasing": 0.25,
    },
}
