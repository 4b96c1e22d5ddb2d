"""ImageNet-R (renditions of 200 ImageNet classes); test only."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_a import WnidFolderTestSet


@DATASET_REGISTRY.register()
class ImageNetR(WnidFolderTestSet):
    """``imagenet-rendition/imagenet-r/<wnid>/*.jpg`` (``README.txt`` skipped) + ``classnames.txt``."""

    folder = "imagenet-rendition"
    image_folder = "imagenet-r"
