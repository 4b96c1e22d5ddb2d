"""Dataset readers on miniature copies of the 15 CoOp layouts: registration, class names and label order, splits
read from / built into the reference JSON format, ImageNet and its variants, and user-facing errors."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest
import yaml

import datasets
from dassl.data.datasets import DATASET_REGISTRY, build_dataset
from dassl.utils.errors import ConfigError, DataNotFoundError
from datasets.utils import DataFormatError, read_and_split_data, read_split, save_split, split_trainval
from tests.helpers.fake_datasets import FAKE_DATASETS, IMAGENET_CLASSES, make_cfg, make_json_dataset, write_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NAMES = [
    "OxfordPets", "OxfordFlowers", "FGVCAircraft", "DescribableTextures", "EuroSAT", "StanfordCars", "Food101",
    "SUN397", "Caltech101", "UCF101", "ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR",
]
YAML_FILES = {
    "caltech101": "Caltech101", "dtd": "DescribableTextures", "eurosat": "EuroSAT", "fgvc_aircraft": "FGVCAircraft",
    "food101": "Food101", "imagenet": "ImageNet", "imagenet_a": "ImageNetA", "imagenet_r": "ImageNetR",
    "imagenet_sketch": "ImageNetSketch", "imagenetv2": "ImageNetV2", "oxford_flowers": "OxfordFlowers",
    "oxford_pets": "OxfordPets", "stanford_cars": "StanfordCars", "sun397": "SUN397", "ucf101": "UCF101",
}
FOLDERS = {
    "OxfordPets": "oxford_pets", "OxfordFlowers": "oxford_flowers", "FGVCAircraft": "fgvc_aircraft",
    "DescribableTextures": "dtd", "EuroSAT": "eurosat", "StanfordCars": "stanford_cars", "Food101": "food-101",
    "SUN397": "sun397", "Caltech101": "caltech-101", "UCF101": "ucf101", "ImageNet": "imagenet",
    "ImageNetV2": "imagenetv2", "ImageNetSketch": "imagenet-sketch", "ImageNetA": "imagenet-adversarial",
    "ImageNetR": "imagenet-rendition",
}
JSON_NAMES = [n for n in NAMES if n != "FGVCAircraft" and not n.startswith("ImageNet")]


def build(root, name, **kw):
    return build_dataset(make_cfg(str(root), name, **kw))


def github_anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


# ---------------------------------------------------------------------------------------------------------------------
# Registration, YAMLs, docs
# ---------------------------------------------------------------------------------------------------------------------


def test_all_names_registered():
    assert datasets.DATASET_REGISTRY is DATASET_REGISTRY
    assert set(NAMES) <= set(DATASET_REGISTRY.registered_names())
    for name in NAMES:
        assert DATASET_REGISTRY.get(name).__name__ == name


def test_dataset_yamls_set_the_name():
    folder = os.path.join(REPO, "configs", "datasets")
    for stem, name in YAML_FILES.items():
        with open(os.path.join(folder, f"{stem}.yaml"), encoding="utf-8") as f:
            # only DATASET.NAME under DATASET (other components may add their per-dataset values elsewhere)
            assert yaml.safe_load(f)["DATASET"] == {"NAME": name}, stem


def test_datasets_md_has_a_section_per_dataset():
    with open(os.path.join(REPO, "DATASETS.md"), encoding="utf-8") as f:
        text = f.read()
    anchors = {github_anchor(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for name in NAMES:
        cls = DATASET_REGISTRY.get(name)
        assert cls.anchor() in anchors, name
        assert FOLDERS[name] in text


# ---------------------------------------------------------------------------------------------------------------------
# Every layout: class names, label order, split sizes
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_layout_classnames_and_sizes(tmp_path, name):
    fake = FAKE_DATASETS[name](str(tmp_path))
    ds = build(tmp_path, name)
    assert ds.classnames == fake.classnames
    assert ds.num_classes == len(fake.classnames)
    assert (len(ds.train_x), len(ds.val or []), len(ds.test)) == fake.sizes
    assert ds.dataset_dir == os.path.join(str(tmp_path), FOLDERS[name])
    for split in (ds.train_x, ds.val or [], ds.test):
        for item in split:
            assert os.path.isabs(item.impath) and os.path.isfile(item.impath)
            assert item.impath.startswith(ds.image_dir + os.sep)
            assert ds.lab2cname[item.label] == item.classname
            assert item.domain == 0
    # every class appears in test, with the same names as train
    assert {i.label: i.classname for i in ds.test} == ds.lab2cname


@pytest.mark.parametrize("name", JSON_NAMES)
def test_split_built_from_raw_files_is_saved_and_reused(tmp_path, name, caplog):
    fake = FAKE_DATASETS[name](str(tmp_path))
    split_path = os.path.join(fake.dataset_dir, fake.split_file)
    assert not os.path.exists(split_path)
    caplog.set_level("INFO")
    first = build(tmp_path, name)
    assert os.path.isfile(split_path)
    with open(split_path, encoding="utf-8") as f:
        split = json.load(f)
    assert set(split) == {"train", "val", "test"}
    for key, items in zip(("train", "val", "test"), (first.train_x, first.val, first.test)):
        assert [[os.path.join(fake.split_prefix, p), y, c] for p, y, c in split[key]] == [
            [i.impath, i.label, i.classname] for i in items
        ]
        for relpath, label, cname in split[key]:
            assert not os.path.isabs(relpath) and isinstance(label, int) and isinstance(cname, str)
    caplog.clear()
    second = build(tmp_path, name)
    assert f"Reading split from {split_path}" in caplog.text
    assert [i.impath for i in second.train_x] == [i.impath for i in first.train_x]
    assert second.classnames == first.classnames


def test_reference_json_is_read_as_is(tmp_path):
    classes = ["abyssinian", "bengal", "yorkshire_terrier"]
    split = make_json_dataset(
        str(tmp_path), "oxford_pets", "images", "split_zhou_OxfordPets.json", classes,
        {"train": [3, 2, 4], "val": [1, 1, 2], "test": [2, 2, 2]},
    )
    ds = build(tmp_path, "OxfordPets")  # no annotations/ folder: only the JSON is used
    image_dir = os.path.join(str(tmp_path), "oxford_pets", "images")
    assert [[i.impath, i.label, i.classname] for i in ds.train_x] == [
        [os.path.join(image_dir, p), y, c] for p, y, c in split["train"]
    ]
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (9, 4, 6)
    assert ds.classnames == classes


def test_stanford_cars_split_paths_are_relative_to_dataset_dir(tmp_path):
    fake = FAKE_DATASETS["StanfordCars"](str(tmp_path))
    build(tmp_path, "StanfordCars")
    with open(os.path.join(fake.dataset_dir, fake.split_file), encoding="utf-8") as f:
        split = json.load(f)
    assert {p.split("/")[0] for p, _, _ in split["train"] + split["val"]} == {"cars_train"}
    assert {p.split("/")[0] for p, _, _ in split["test"]} == {"cars_test"}
    assert split["test"][0][2] == "2000 AM General Hummer SUV"


def test_fgvc_reads_lists_directly_and_writes_no_json(tmp_path):
    fake = FAKE_DATASETS["FGVCAircraft"](str(tmp_path))
    ds = build(tmp_path, "FGVCAircraft")
    assert ds.classnames == ["A300B4", "707-320", "Cessna 172"]  # variants.txt order, names with spaces kept
    assert not any(n.endswith(".json") for n in os.listdir(fake.dataset_dir))


def test_flowers_labels_come_from_mat_and_names_from_json(tmp_path):
    FAKE_DATASETS["OxfordFlowers"](str(tmp_path))
    ds = build(tmp_path, "OxfordFlowers")
    # image_00001 has class 4 ("sweet pea") -> label 3
    first = [i for i in ds.train_x + ds.val + ds.test if i.impath.endswith("image_00001.jpg")]
    assert [(i.label, i.classname) for i in first] == [(3, "sweet pea")]


def test_random_split_is_a_function_of_the_seed(tmp_path):
    FAKE_DATASETS["DescribableTextures"](str(tmp_path))
    image_dir = os.path.join(str(tmp_path), "dtd", "images")
    import random

    random.seed(3)
    a = read_and_split_data(image_dir)
    random.seed(3)
    b = read_and_split_data(image_dir)
    random.seed(4)
    c = read_and_split_data(image_dir)
    paths = lambda s: [[i.impath for i in part] for part in s]  # noqa: E731
    assert paths(a) == paths(b)
    assert paths(a) != paths(c)
    # per class: round(0.5n) / round(0.2n) / rest, disjoint
    for label in range(4):
        counts = [sum(i.label == label for i in part) for part in a]
        assert counts == [2, 1, 2]
    assert len({p for part in paths(a) for p in part}) == 20


def test_split_trainval_per_label_round(tmp_path):
    items = []
    for label, n in enumerate([5, 8, 3]):
        for i in range(n):
            items.append(write_image(os.path.join(str(tmp_path), f"{label}_{i}.jpg")))
    from datasets.utils import make_datum

    data = [make_datum(p, int(os.path.basename(p)[0]), f"c{os.path.basename(p)[0]}") for p in items]
    train, val = split_trainval(data, p_val=0.2)
    assert [sum(i.label == y for i in val) for y in range(3)] == [1, 2, 1]  # round(1.0), round(1.6), round(0.6)
    assert len(train) + len(val) == 16
    assert {i.impath for i in train}.isdisjoint({i.impath for i in val})


def test_save_then_read_split_roundtrip(tmp_path):
    FAKE_DATASETS["Food101"](str(tmp_path))
    image_dir = os.path.join(str(tmp_path), "food-101", "images")
    train, val, test = read_and_split_data(image_dir)
    path = os.path.join(str(tmp_path), "split.json")
    save_split(train, val, test, path, image_dir)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert str(tmp_path) not in text and '    "train": [' in text
    back = read_split(path, image_dir)
    for a, b in zip((train, val, test), back):
        assert [(i.impath, i.label, i.classname) for i in a] == [(i.impath, i.label, i.classname) for i in b]


# ---------------------------------------------------------------------------------------------------------------------
# ImageNet and its variants
# ---------------------------------------------------------------------------------------------------------------------


def test_imagenet_labels_cache_and_val_is_test(tmp_path):
    fake = FAKE_DATASETS["ImageNet"](str(tmp_path))
    ds = build(tmp_path, "ImageNet")
    assert ds.classnames == ["tench", "great white shark", "tiger shark"]  # sorted wnids present
    assert ds.val is ds.test
    assert os.path.isfile(os.path.join(fake.dataset_dir, "preprocessed.pkl"))
    # images listed in sorted order inside each class folder
    tench = [os.path.basename(i.impath) for i in ds.train_x if i.label == 0]
    assert tench == sorted(tench) and len(tench) == 6
    # the next build uses the cache, not the folders (a new image is not seen) ...
    write_image(os.path.join(fake.dataset_dir, "images", "train", "n01440764", "new.JPEG"))
    again = build(tmp_path, "ImageNet")
    assert [i.impath for i in again.train_x] == [i.impath for i in ds.train_x]
    # ... until a cached image disappears: then it is rebuilt from the folders
    for split in ("train", "val"):
        shutil.rmtree(os.path.join(fake.dataset_dir, "images", split, "n01491361"))
    rebuilt = build(tmp_path, "ImageNet")
    assert (len(rebuilt.train_x), len(rebuilt.test)) == (13, 4) and rebuilt.classnames == ["tench", "great white shark"]


def test_imagenet_a_r_map_wnid_subsets_to_imagenet_names(tmp_path):
    FAKE_DATASETS["ImageNetA"](str(tmp_path))
    FAKE_DATASETS["ImageNetR"](str(tmp_path))
    a = build(tmp_path, "ImageNetA")
    assert a.classnames == ["goldfish", "tiger shark", "electric ray"]
    assert sorted({i.label for i in a.test}) == [0, 1, 2]
    assert a.train_x is a.test and a.val is None
    r = build(tmp_path, "ImageNetR")
    assert r.classnames == ["tench", "hammerhead shark"]


def test_imagenetv2_folder_index_is_classnames_line(tmp_path):
    FAKE_DATASETS["ImageNetV2"](str(tmp_path))
    ds = build(tmp_path, "ImageNetV2")
    assert ds.classnames == list(IMAGENET_CLASSES.values())
    for item in ds.test:
        assert os.path.basename(os.path.dirname(item.impath)) == str(item.label)


def test_variants_ignore_num_shots_and_honour_subsample(tmp_path):
    FAKE_DATASETS["ImageNetA"](str(tmp_path))
    ds = build(tmp_path, "ImageNetA", num_shots=1, subsample="new")
    assert ds.classnames == ["electric ray"]  # 3 classes -> base 2 / new 1
    assert len(ds.test) == 3 and ds.train_x is ds.test
    assert not os.path.exists(os.path.join(str(tmp_path), "imagenet-adversarial", "split_fewshot"))


def test_variant_folder_without_classname_entry(tmp_path):
    fake = FAKE_DATASETS["ImageNetR"](str(tmp_path))
    write_image(os.path.join(fake.dataset_dir, "imagenet-r", "n09999999", "x.jpg"))
    with pytest.raises(DataFormatError, match="n09999999"):
        build(tmp_path, "ImageNetR")


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_missing_dataset_folder(tmp_path, name):
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, name)
    msg = str(err.value)
    assert os.path.join(str(tmp_path), FOLDERS[name]) in msg
    assert f"DATASETS.md#{name.lower()}" in msg


def test_missing_root_value(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"DATASET\.ROOT.*DATASETS\.md#oxfordpets"):
        build("", "OxfordPets")


def test_missing_image_folder(tmp_path):
    os.makedirs(os.path.join(str(tmp_path), "eurosat"))
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, "EuroSAT")
    assert os.path.join(str(tmp_path), "eurosat", "2750") in str(err.value)
    assert "DATASETS.md#eurosat" in str(err.value)


def test_missing_split_and_annotations(tmp_path):
    write_image(os.path.join(str(tmp_path), "oxford_pets", "images", "Bengal_1.jpg"))
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, "OxfordPets")
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "oxford_pets", "split_zhou_OxfordPets.json") in msg
    assert os.path.join(str(tmp_path), "oxford_pets", "annotations", "trainval.txt") in msg
    assert "DATASETS.md#oxfordpets" in msg


def test_missing_fgvc_list(tmp_path):
    fake = FAKE_DATASETS["FGVCAircraft"](str(tmp_path))
    os.remove(os.path.join(fake.dataset_dir, "images_variant_val.txt"))
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, "FGVCAircraft")
    assert os.path.join(fake.dataset_dir, "images_variant_val.txt") in str(err.value)
    assert "DATASETS.md#fgvcaircraft" in str(err.value)


def test_missing_image_listed_in_split(tmp_path):
    make_json_dataset(
        str(tmp_path), "dtd", "images", "split_zhou_DescribableTextures.json", ["banded", "bubbly"],
        {"train": [2, 2], "val": [1, 1], "test": [1, 1]},
    )
    missing = os.path.join(str(tmp_path), "dtd", "images", "bubbly", "val_0.jpg")
    os.remove(missing)
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, "DescribableTextures")
    assert missing in str(err.value) and "DATASETS.md#describabletextures" in str(err.value)


def test_imagenet_missing_classnames(tmp_path):
    fake = FAKE_DATASETS["ImageNet"](str(tmp_path))
    os.remove(os.path.join(fake.dataset_dir, "classnames.txt"))
    with pytest.raises(DataNotFoundError) as err:
        build(tmp_path, "ImageNet")
    assert os.path.join(fake.dataset_dir, "classnames.txt") in str(err.value)
    assert "DATASETS.md#imagenet" in str(err.value)


def test_malformed_split_json(tmp_path):
    FAKE_DATASETS["Food101"](str(tmp_path))
    with open(os.path.join(str(tmp_path), "food-101", "split_zhou_Food101.json"), "w") as f:
        f.write('{"train": [["a.jpg", 0]], "val": [], "test": []}')
    with pytest.raises(DataFormatError, match="split_zhou_Food101.json"):
        build(tmp_path, "Food101")


def test_invalid_subsample_value(tmp_path):
    FAKE_DATASETS["DescribableTextures"](str(tmp_path))
    with pytest.raises(ConfigError, match="DATASET.SUBSAMPLE_CLASSES"):
        build(tmp_path, "DescribableTextures", subsample="half")
