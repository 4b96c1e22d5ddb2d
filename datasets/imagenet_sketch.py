"""ImageNet-Sketch (sketches of the 1000 ImageNet classes); test only."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY

from .imagenet_a import WnidFolderTestSet


@DATASET_REGISTRY.register()
class ImageNetSketch(WnidFolderTestSet):
    """``imagenet-sketch/images/<wnid>/*.JPEG`` + ``classnames.txt``."""

    folder = "imagenet-sketch"
    image_folder = "images"
