"""ImageNet-A (200 ImageNet classes, natural adversarial examples); test only."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .imagenet import list_class_folders, read_classnames, read_folder_data
from .utils import SplitJsonDataset


class WnidFolderTestSet(SplitJsonDataset):
    """A test-only ImageNet variant laid out as sorted ``<wnid>/`` folders, named through the variant folder's own
    ``classnames.txt`` (ImageNet's 1000-line file). Labels are 0..n-1 over the folders present; ``train_x`` and
    ``test`` are the same list and there is no val. ``NUM_SHOTS`` is ignored; ``SUBSAMPLE_CLASSES`` applies.
    """

    supports_fewshot = False
    test_only = True

    def load_data(self) -> tuple[list[Datum], None, list[Datum]]:
        names_file = self.require_file(self.path("classnames.txt"), "class-name file")
        classnames = read_classnames(names_file)
        #: the full label space in classnames.txt order (rows of an ImageNet-trained DePT reference head)
        self.label_space_classnames = list(classnames.values())
        folders = list_class_folders(self.image_dir)
        labels = {wnid: label for label, wnid in enumerate(folders)}
        data = read_folder_data(self.image_dir, folders, labels, classnames, names_file)
        return data, None, data


@DATASET_REGISTRY.register()
class ImageNetA(WnidFolderTestSet):
    """``imagenet-adversarial/imagenet-a/<wnid>/*.jpg`` (``README.txt`` skipped) + ``classnames.txt``."""

    folder = "imagenet-adversarial"
    image_folder = "imagenet-a"
