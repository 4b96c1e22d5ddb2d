"""Miniature copies of the 15 CoOp dataset layouts, for the dataset-reader tests.

Every ``make_<dataset>(root)`` writes tiny JPEGs plus the raw annotation files the reader can build its split from
(never the ``split_zhou_*.json`` unless asked), and returns a :class:`FakeDataset` with the expected class names
(in label order) and split sizes of the split the reader builds. :func:`make_json_dataset` writes a hand-made split
JSON in the reference format for readers that take one.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

__all__ = ["FAKE_DATASETS", "FakeDataset", "make_cfg", "make_json_dataset", "write_image"]


@lru_cache(maxsize=1)
def _jpeg_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 90)).save(buf, format="JPEG")
    return buf.getvalue()


def write_image(path: str) -> str:
    """Write an 8x8 JPEG at ``path`` (creating folders) and return the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(_jpeg_bytes())
    return path


def _write_text(path: str, lines: Sequence[str]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))


def make_cfg(root: str, name: str, num_shots: int = -1, subsample: str = "all", seed: int = 1):
    """A config with the dataset keys the readers use (Dassl defaults + add_dataset_cfg when available)."""
    try:
        from dassl.config import get_cfg_default
    except ImportError:
        get_cfg_default = None
    if get_cfg_default is not None:
        from datasets import add_dataset_cfg

        cfg = get_cfg_default()
        add_dataset_cfg(cfg)
    else:
        from yacs.config import CfgNode

        cfg = CfgNode()
        cfg.DATASET = CfgNode()
        cfg.DATASET.ROOT = ""
        cfg.DATASET.NAME = ""
        cfg.DATASET.NUM_SHOTS = -1
        cfg.DATASET.SUBSAMPLE_CLASSES = "all"
        cfg.DATASET.SOURCE_DOMAINS = []
        cfg.DATASET.TARGET_DOMAINS = []
        cfg.SEED = -1
        cfg.VERBOSE = True
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


@dataclass
class FakeDataset:
    """What a generator wrote and what the reader should produce from it."""

    name: str  # registered name
    dataset_dir: str
    classnames: list[str]  # expected, in label order
    sizes: tuple[int, int, int]  # expected (train, val, test) of the built split
    split_file: str | None = None  # JSON the reader writes (None: no JSON)
    split_prefix: str = ""  # folder the JSON paths are relative to
    extra: dict = field(default_factory=dict)


def make_json_dataset(
    root: str,
    folder: str,
    image_folder: str,
    split_file: str,
    classnames: Sequence[str],
    counts: dict[str, Sequence[int]],
) -> dict[str, list[list]]:
    """Write images and a reference-format split JSON: ``counts[split][label]`` images per class and split.

    Image paths are ``<classname>/<split>_<i>.jpg`` relative to the image folder. Returns the JSON content.
    """
    image_dir = os.path.join(root, folder, image_folder)
    split = {}
    for key in ("train", "val", "test"):
        entries = []
        for label, (cname, n) in enumerate(zip(classnames, counts[key])):
            for i in range(n):
                rel = f"{cname.replace(' ', '_')}/{key}_{i}.jpg"
                write_image(os.path.join(image_dir, rel))
                entries.append([rel, label, cname])
        split[key] = entries
    with open(os.path.join(root, folder, split_file), "w", encoding="utf-8") as f:
        json.dump(split, f, indent=4)
    return split


# ---------------------------------------------------------------------------------------------------------------------
# One generator per layout
# ---------------------------------------------------------------------------------------------------------------------


def make_oxford_pets(root: str) -> FakeDataset:
    d = os.path.join(root, "oxford_pets")
    breeds = ["Abyssinian", "american_bulldog", "British_Shorthair", "great_pyrenees", "Siamese"]
    trainval, test = [], []
    for cid, breed in enumerate(breeds, 1):
        for i in range(1, 10):
            stem = f"{breed}_{i}"
            write_image(os.path.join(d, "images", f"{stem}.jpg"))
            (trainval if i <= 6 else test).append(f"{stem} {cid} {1 + cid % 2} {cid}")
    _write_text(os.path.join(d, "annotations", "trainval.txt"), trainval)
    _write_text(os.path.join(d, "annotations", "test.txt"), test)
    names = [b.lower() for b in breeds]
    return FakeDataset("OxfordPets", d, names, (25, 5, 15), "split_zhou_OxfordPets.json", os.path.join(d, "images"))


def make_oxford_flowers(root: str) -> FakeDataset:
    from scipy.io import savemat

    d = os.path.join(root, "oxford_flowers")
    names = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea"]
    labels = [(i % 4) + 1 for i in range(20)]  # interleaved classes 1..4, five images each
    labels[0], labels[3] = 4, 1  # first-seen label order differs from numeric order
    for i in range(20):
        write_image(os.path.join(d, "jpg", f"image_{i + 1:05d}.jpg"))
    savemat(os.path.join(d, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    with open(os.path.join(d, "cat_to_name.json"), "w", encoding="utf-8") as f:
        json.dump({str(i + 1): n for i, n in enumerate(names)}, f)
    return FakeDataset("OxfordFlowers", d, names, (8, 4, 8), "split_zhou_OxfordFlowers.json", os.path.join(d, "jpg"))


def make_fgvc_aircraft(root: str) -> FakeDataset:
    d = os.path.join(root, "fgvc_aircraft")
    variants = ["A300B4", "707-320", "Cessna 172"]  # file order, not sorted
    _write_text(os.path.join(d, "variants.txt"), variants)
    image_id = 1000000
    for split in ("train", "val", "test"):
        lines = []
        for v in variants:
            for _ in range(2):
                image_id += 1
                write_image(os.path.join(d, "images", f"{image_id}.jpg"))
                lines.append(f"{image_id} {v}")
        _write_text(os.path.join(d, f"images_variant_{split}.txt"), lines)
    return FakeDataset("FGVCAircraft", d, variants, (6, 6, 6), None)


def _folder_dataset(root: str, folder: str, image_folder: str, folders: Sequence[str], n: int) -> str:
    d = os.path.join(root, folder)
    for cls in folders:
        for i in range(n):
            write_image(os.path.join(d, image_folder, cls, f"{cls}_{i:04d}.jpg"))
    return d


def make_dtd(root: str) -> FakeDataset:
    classes = ["braided", "banded", "bubbly", "blotchy"]
    d = _folder_dataset(root, "dtd", "images", classes, 5)
    return FakeDataset(
        "DescribableTextures", d, sorted(classes), (8, 4, 8), "split_zhou_DescribableTextures.json",
        os.path.join(d, "images"),
    )


EUROSAT_NAMES = {
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


def make_eurosat(root: str) -> FakeDataset:
    d = _folder_dataset(root, "eurosat", "2750", list(EUROSAT_NAMES), 4)
    names = [EUROSAT_NAMES[k] for k in sorted(EUROSAT_NAMES)]
    return FakeDataset("EuroSAT", d, names, (20, 10, 10), "split_zhou_EuroSAT.json", os.path.join(d, "2750"))


def make_food101(root: str) -> FakeDataset:
    classes = ["waffles", "apple_pie", "baby_back_ribs"]
    d = _folder_dataset(root, "food-101", "images", classes, 4)
    return FakeDataset("Food101", d, sorted(classes), (6, 3, 3), "split_zhou_Food101.json", os.path.join(d, "images"))


def make_caltech101(root: str) -> FakeDataset:
    classes = ["accordion", "airplanes", "BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes"]
    classes.append("yin_yang")
    d = _folder_dataset(root, "caltech-101", "101_ObjectCategories", classes, 4)
    # sorted() puts upper case first: Faces, Leopards, Motorbikes, accordion, airplanes, yin_yang
    names = ["face", "leopard", "motorbike", "accordion", "airplane", "yin_yang"]
    return FakeDataset(
        "Caltech101", d, names, (12, 6, 6), "split_zhou_Caltech101.json", os.path.join(d, "101_ObjectCategories")
    )


def make_stanford_cars(root: str) -> FakeDataset:
    from scipy.io import savemat

    d = os.path.join(root, "stanford_cars")
    meta = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Tesla Model S Sedan 2012"]
    expected = ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Tesla Model S Sedan"]
    os.makedirs(os.path.join(d, "devkit"), exist_ok=True)

    def annos(folder: str, per_class: int) -> np.ndarray:
        dtype = [("bbox_x1", "O"), ("fname", "O"), ("class", "O")]
        rows, k = [], 0
        for _ in range(per_class):
            for cls in range(1, len(meta) + 1):
                k += 1
                fname = f"{k:05d}.jpg"
                write_image(os.path.join(d, folder, fname))
                rows.append((np.array([[10]], dtype=np.uint8), fname, np.array([[cls]], dtype=np.uint8)))
        arr = np.empty((1, len(rows)), dtype=dtype)
        for i, row in enumerate(rows):
            arr[0, i] = row
        return arr

    savemat(os.path.join(d, "devkit", "cars_train_annos.mat"), {"annotations": annos("cars_train", 5)})
    savemat(os.path.join(d, "cars_test_annos_withlabels.mat"), {"annotations": annos("cars_test", 2)})
    class_names = np.empty((1, len(meta)), dtype=object)
    for i, n in enumerate(meta):
        class_names[0, i] = n
    savemat(os.path.join(d, "devkit", "cars_meta.mat"), {"class_names": class_names})
    return FakeDataset("StanfordCars", d, expected, (12, 3, 6), "split_zhou_StanfordCars.json", d)


def make_sun397(root: str) -> FakeDataset:
    d = os.path.join(root, "sun397")
    classes = ["/b/bakery/shop", "/a/abbey", "/a/airport_terminal"]  # ClassName.txt order gives the labels
    _write_text(os.path.join(d, "ClassName.txt"), classes)
    train, test = [], []
    for cls in classes:
        for i in range(7):
            rel = f"{cls}/sun_{i:04d}.jpg"
            write_image(os.path.join(d, "SUN397", rel.lstrip("/")))
            (train if i < 5 else test).append(rel)
    _write_text(os.path.join(d, "Training_01.txt"), train)
    _write_text(os.path.join(d, "Testing_01.txt"), test)
    names = ["shop bakery", "abbey", "airport_terminal"]
    return FakeDataset("SUN397", d, names, (12, 3, 6), "split_zhou_SUN397.json", os.path.join(d, "SUN397"))


def make_ucf101(root: str) -> FakeDataset:
    d = os.path.join(root, "ucf101")
    actions = ["ApplyEyeMakeup", "BandMarching", "YoYo"]
    names = ["Apply_Eye_Makeup", "Band_Marching", "Yo_Yo"]
    _write_text(os.path.join(d, "ucfTrainTestlist", "classInd.txt"), [f"{i} {a}" for i, a in enumerate(actions, 1)])
    train, test = [], []
    for label, (action, name) in enumerate(zip(actions, names), 1):
        for g in range(7):
            clip = f"v_{action}_g{g + 8:02d}_c01"
            write_image(os.path.join(d, "UCF-101-midframes", name, f"{clip}.jpg"))
            if g < 5:
                train.append(f"{action}/{clip}.avi {label}")
            else:
                test.append(f"{action}/{clip}.avi")
    _write_text(os.path.join(d, "ucfTrainTestlist", "trainlist01.txt"), train)
    _write_text(os.path.join(d, "ucfTrainTestlist", "testlist01.txt"), test)
    return FakeDataset("UCF101", d, names, (12, 3, 6), "split_zhou_UCF101.json", os.path.join(d, "UCF-101-midframes"))


# wnid -> name, in sorted-wnid order (a 6-line stand-in for ImageNet's 1000-line classnames.txt)
IMAGENET_CLASSES = {
    "n01440764": "tench",
    "n01443537": "goldfish",
    "n01484850": "great white shark",
    "n01491361": "tiger shark",
    "n01494475": "hammerhead shark",
    "n01496331": "electric ray",
}


def _classnames_txt(path: str) -> None:
    _write_text(path, [f"{w} {n}" for w, n in IMAGENET_CLASSES.items()])


def make_imagenet(root: str) -> FakeDataset:
    d = os.path.join(root, "imagenet")
    _classnames_txt(os.path.join(d, "classnames.txt"))
    wnids = ["n01484850", "n01440764", "n01491361"]  # 3 of the 6 classes
    for w in wnids:
        for i in range(6):
            write_image(os.path.join(d, "images", "train", w, f"{w}_{i}.JPEG"))
        for i in range(2):
            write_image(os.path.join(d, "images", "val", w, f"ILSVRC2012_val_{w}_{i}.JPEG"))
    names = [IMAGENET_CLASSES[w] for w in sorted(wnids)]
    return FakeDataset("ImageNet", d, names, (18, 6, 6))


def _wnid_variant(root: str, name: str, folder: str, image_folder: str, wnids: Sequence[str]) -> FakeDataset:
    d = os.path.join(root, folder)
    _classnames_txt(os.path.join(d, "classnames.txt"))
    for w in wnids:
        for i in range(3):
            write_image(os.path.join(d, image_folder, w, f"{i}.jpg"))
    _write_text(os.path.join(d, image_folder, "README.txt"), ["not a class folder"])
    names = [IMAGENET_CLASSES[w] for w in sorted(wnids)]
    n = 3 * len(wnids)
    return FakeDataset(name, d, names, (n, 0, n))


def make_imagenet_a(root: str) -> FakeDataset:
    wnids = ["n01496331", "n01443537", "n01491361"]
    return _wnid_variant(root, "ImageNetA", "imagenet-adversarial", "imagenet-a", wnids)


def make_imagenet_r(root: str) -> FakeDataset:
    return _wnid_variant(root, "ImageNetR", "imagenet-rendition", "imagenet-r", ["n01440764", "n01494475"])


def make_imagenet_sketch(root: str) -> FakeDataset:
    return _wnid_variant(root, "ImageNetSketch", "imagenet-sketch", "images", list(IMAGENET_CLASSES))


def make_imagenetv2(root: str) -> FakeDataset:
    d = os.path.join(root, "imagenetv2")
    _classnames_txt(os.path.join(d, "classnames.txt"))
    for label in range(len(IMAGENET_CLASSES)):
        for i in range(2):
            write_image(os.path.join(d, "imagenetv2-matched-frequency-format-val", str(label), f"{i:03x}.jpeg"))
    n = 2 * len(IMAGENET_CLASSES)
    return FakeDataset("ImageNetV2", d, list(IMAGENET_CLASSES.values()), (n, 0, n))


FAKE_DATASETS: dict[str, Callable[[str], FakeDataset]] = {
    "OxfordPets": make_oxford_pets,
    "OxfordFlowers": make_oxford_flowers,
    "FGVCAircraft": make_fgvc_aircraft,
    "DescribableTextures": make_dtd,
    "EuroSAT": make_eurosat,
    "StanfordCars": make_stanford_cars,
    "Food101": make_food101,
    "SUN397": make_sun397,
    "Caltech101": make_caltech101,
    "UCF101": make_ucf101,
    "ImageNet": make_imagenet,
    "ImageNetV2": make_imagenetv2,
    "ImageNetSketch": make_imagenet_sketch,
    "ImageNetA": make_imagenet_a,
    "ImageNetR": make_imagenet_r,
}
