"""EuroSAT RGB (10 land-cover classes): sorted class folders renamed to descriptive names, random 50/20/30."""
from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .utils import SplitJsonDataset, read_and_split_data

NEW_CLASSNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitJsonDataset):
    """``eurosat/2750/<Class>/*.jpg``."""

    folder = "eurosat"
    image_folder = "2750"
    split_file = "split_zhou_EuroSAT.json"

    def build_split(self) -> tuple[list[Datum], list[Datum], list[Datum]]:
        return read_and_split_data(self.image_dir, new_cnames=NEW_CLASSNAMES)
