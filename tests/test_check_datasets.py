"""tools/check_datasets.py on generated miniatures: OK layouts, and every known pitfall with its fix."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.helpers.fake_datasets import FAKE_DATASETS, make_cfg, write_image
from tools import check_datasets as cd

VARIANTS = ("ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR")


def _spec(fd) -> dict:
    """The checker's expected values for a miniature (instead of the CoOp split sizes)."""
    if fd.name == "ImageNet":
        return {"classes": len(fd.classnames), "sizes": (fd.sizes[0], None, fd.sizes[2]), "n_names": 6}
    if fd.name in VARIANTS:
        return {"classes": len(fd.classnames), "sizes": (None, None, fd.sizes[2]), "n_names": 6}
    return {"classes": len(fd.classnames), "sizes": tuple(fd.sizes)}


def _make(root: str, name: str, build: bool = True, shots: int = 1):
    """A miniature; ``build`` runs the reader once (writes the split JSON and a few-shot cache, as a first run)."""
    from dassl.data.datasets import DATASET_REGISTRY

    import datasets  # noqa: F401

    fd = FAKE_DATASETS[name](root)
    if build:
        DATASET_REGISTRY.get(name)(make_cfg(root, name, num_shots=-1 if name in VARIANTS else shots))
    return fd


@pytest.fixture(scope="module")
def minis(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("data"))
    return root, {name: _make(root, name) for name in FAKE_DATASETS}


def test_all_15_ok_on_consistent_miniatures(minis):
    root, fds = minis
    for name, fd in fds.items():
        res = cd.check_dataset(name, root, decode=5, spec=_spec(fd))
        assert res.status == "OK", res.line()
        assert "images decoded" in res.line()
    assert "1 few-shot cache consistent" in cd.check_dataset("OxfordPets", root, spec=_spec(fds["OxfordPets"])).line()


def test_paper_sizes_flag_a_non_official_split(minis, capsys):
    root, _ = minis
    res = cd.check_dataset("Caltech101", root)
    assert res.status == "WARN" and "the CoOp split file has 100 and 4128/1649/2465" in res.line()
    assert "download the official split_zhou_Caltech101.json" in res.line()
    assert cd.main(["--root", root, "caltech101", "--decode", "0"]) == 0  # WARN is not fatal ...
    assert cd.main(["--root", root, "caltech101", "--strict"]) == 1  # ... unless --strict
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("Caltech101") and " WARN " in out[0]
    assert cd.main(["--root", root, "nosuchset"]) == 2 and cd.main(["--root", ""]) == 2
    assert cd.main(["--root", os.path.join(root, "missing")]) == 2


def _fails(root, name, fd, decode=5):
    res = cd.check_dataset(name, root, decode=decode, spec=_spec(fd))
    assert res.status == "FAIL", res.line()
    return res.line()


def test_stanford_cars_kaggle_layouts(tmp_path):
    root = str(tmp_path / "a")
    fd = _make(root, "StanfordCars")
    d = os.path.join(root, "stanford_cars")
    nested = os.path.join(d, "cars_train", "cars_train")
    os.makedirs(nested)
    for f in os.listdir(os.path.join(d, "cars_train")):
        if f.endswith(".jpg"):
            shutil.move(os.path.join(d, "cars_train", f), nested)
    line = _fails(root, "StanfordCars", fd)
    assert "nested (the Kaggle" in line and f"mv {nested}/*" in line
    root2 = str(tmp_path / "b")  # the class-folder mirror
    for split in ("train", "test"):
        write_image(os.path.join(root2, "stanford_cars", "car_data", "car_data", split, "Acura RL Sedan 2012", "1.jpg"))
    line = _fails(root2, "StanfordCars", fd)
    assert "class folders (the Kaggle 'stanford-car-dataset-by-classes-folder' mirror)" in line
    assert "cars_train/00001.jpg" in line


def test_imagenet_flat_val_and_classnames(tmp_path):
    root = str(tmp_path)
    fd = _make(root, "ImageNet", build=False)
    val = os.path.join(root, "imagenet", "images", "val")
    for w in os.listdir(val):
        for f in os.listdir(os.path.join(val, w)):
            shutil.move(os.path.join(val, w, f), val)
        os.rmdir(os.path.join(val, w))
    line = _fails(root, "ImageNet", fd)
    assert "holds 6 images directly, not one folder per class" in line and "valprep.sh" in line
    os.remove(os.path.join(root, "imagenet", "classnames.txt"))
    line = _fails(root, "ImageNet", fd)
    assert "classnames.txt not found; fix: download classnames.txt from the CoOp DATASETS.md link" in line
    # a variant without classnames.txt: copy ImageNet's
    fdv = _make(root, "ImageNetR", build=False)
    shutil.copy(os.path.join(root, "imagenet-rendition", "classnames.txt"), os.path.join(root, "imagenet"))
    os.remove(os.path.join(root, "imagenet-rendition", "classnames.txt"))
    line = _fails(root, "ImageNetR", fdv)
    assert f"cp {os.path.join(root, 'imagenet', 'classnames.txt')} {os.path.join(root, 'imagenet-rendition')}/" in line


def test_sun397_split_file(tmp_path):
    root = str(tmp_path)
    fd = _make(root, "SUN397", build=False)
    res = cd.check_dataset("SUN397", root, spec=_spec(fd))  # no JSON, partitions present: rebuildable, not official
    assert res.status == "WARN" and "builds a random split" in res.line()
    os.remove(os.path.join(root, "sun397", "Training_01.txt"))
    line = _fails(root, "SUN397", fd)
    assert "partition files Training_01.txt are missing" in line and "download split_zhou_SUN397.json" in line
    (tmp_path / "sun397" / "split_zhou_SUN397.json").write_text("{not json")
    assert "is not valid JSON" in _fails(root, "SUN397", fd)


def test_imagenet_variant_folders(tmp_path):
    root = str(tmp_path)
    fda = _make(root, "ImageNetA", build=False)  # imagenet-a/ put directly under the root
    shutil.move(os.path.join(root, "imagenet-adversarial", "imagenet-a"), os.path.join(root, "imagenet-a"))
    shutil.rmtree(os.path.join(root, "imagenet-adversarial"))
    assert "the image folder without its dataset folder" in _fails(root, "ImageNetA", fda)
    fdv = _make(root, "ImageNetV2", build=False)  # numbered folders directly in imagenetv2/
    d = os.path.join(root, "imagenetv2")
    inner = os.path.join(d, "imagenetv2-matched-frequency-format-val")
    for f in os.listdir(inner):
        shutil.move(os.path.join(inner, f), d)
    os.rmdir(inner)
    line = _fails(root, "ImageNetV2", fdv)
    assert "numbered class folders are directly in" in line and f"mkdir {inner}" in line
    fds = _make(root, "ImageNetSketch", build=False)  # the image folder under another name
    d = os.path.join(root, "imagenet-sketch")
    shutil.move(os.path.join(d, "images"), os.path.join(d, "sketch"))
    assert f"mv {os.path.join(d, 'sketch')} {os.path.join(d, 'images')}" in _fails(root, "ImageNetSketch", fds)


def test_missing_and_damaged_images_misnamed_folder(tmp_path):
    root = str(tmp_path)
    fd = _make(root, "Food101")
    split = json.load(open(os.path.join(root, "food-101", "split_zhou_Food101.json")))
    first = os.path.join(root, "food-101", "images", split["test"][0][0])
    with open(first, "wb") as f:
        f.write(b"not a jpeg")
    line = _fails(root, "Food101", fd, decode=100)
    assert "1 of 12 sampled images do not decode" in line and first in line
    os.remove(first)
    line = _fails(root, "Food101", fd)
    assert f"1 of 12 images listed in split_zhou_Food101.json are missing, e.g. {first}" in line
    shutil.move(os.path.join(root, "food-101"), os.path.join(root, "food101"))
    line = _fails(root, "Food101", fd)
    assert f"mv {os.path.join(root, 'food101')} {os.path.join(root, 'food-101')}" in line


def test_fewshot_cache_from_another_split(tmp_path):
    root = str(tmp_path)
    fd = _make(root, "DescribableTextures", shots=2)
    path = os.path.join(root, "dtd", "split_zhou_DescribableTextures.json")
    split = json.load(open(path))
    split["train"], split["test"] = split["test"], split["train"]  # a different split file than the cache's
    json.dump(split, open(path, "w"))
    line = _fails(root, "DescribableTextures", fd)
    assert "few-shot cache shot_2-seed_1.pkl does not match the split" in line
    assert f"rm {os.path.join(root, 'dtd', 'split_fewshot', 'shot_2-seed_1.pkl')}" in line
    with open(os.path.join(root, "dtd", "split_fewshot", "shot_4-seed_1.pkl"), "wb") as f:
        f.write(b"\x80\x04garbage")
    assert "shot_4-seed_1.pkl is unreadable" in _fails(root, "DescribableTextures", fd)

