"""ImageNetV2 (matched-frequency test set, 10 images per ImageNet class); test only."""
from __future__ import annotations

import os

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .imagenet import list_images, read_classnames
from .imagenet_a import WnidFolderTestSet
from .utils import make_datum


@DATASET_REGISTRY.register()
class ImageNetV2(WnidFolderTestSet):
    """``imagenetv2/imagenetv2-matched-frequency-format-val/<i>/*.jpeg`` + ``classnames.txt``.

    Folder ``i`` holds ImageNet class ``i``: its name is the i-th line of ``classnames.txt`` (sorted-wnid order).
    """

    folder = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"

    def load_data(self) -> tuple[list[Datum], None, list[Datum]]:
        names = list(read_classnames(self.require_file(self.path("classnames.txt"), "class-name file")).values())
        data = []
        for label, classname in enumerate(names):
            folder = self.require_dir(os.path.join(self.image_dir, str(label)), "class folder")
            data += [make_datum(impath, label, classname) for impath in list_images(folder)]
        return data, None, data
