"""Dataset readers. Importing this package registers every reader in ``DATASET_REGISTRY``.

Registered names (as in CoOp): OxfordPets, OxfordFlowers, FGVCAircraft, DescribableTextures, EuroSAT,
StanfordCars, Food101, SUN397, Caltech101, UCF101, ImageNet, ImageNetV2, ImageNetSketch, ImageNetA, ImageNetR;
plus the generated test/benchmark dataset SynthShapes.
Shared split / few-shot / base-new helpers live in :mod:`datasets.utils`; see ``DATASETS.md`` for the layouts.
"""
from dassl.data.datasets import DATASET_REGISTRY

from . import (  # noqa: F401  (imported for registration)
    caltech101,
    dtd,
    eurosat,
    fgvc_aircraft,
    food101,
    imagenet,
    imagenet_a,
    imagenet_r,
    imagenet_sketch,
    imagenetv2,
    oxford_flowers,
    oxford_pets,
    stanford_cars,
    sun397,
    synth_shapes,
    ucf101,
)
from .config import add_dataset_cfg
from .utils import SplitJsonDataset

extend_cfg = add_dataset_cfg  # config hook called by dassl.config.setup.setup_cfg

__all__ = ["DATASET_REGISTRY", "SplitJsonDataset", "add_dataset_cfg"]
