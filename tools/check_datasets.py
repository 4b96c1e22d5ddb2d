#!/usr/bin/env python
"""Check the 15 CoOp datasets under a root folder before spending GPU hours on them.

    python tools/check_datasets.py --root $DATA                      # all 15
    python tools/check_datasets.py --root $DATA oxford_pets StanfordCars --decode 50

Per dataset (the readers' own folder names, split files and helpers from ``datasets/``): folder layout, split file
present and parseable (or rebuildable from the raw annotation files), class count and split sizes against the CoOp
split files, every listed image present and a sample decodable, and every few-shot cache
(``split_fewshot/shot_K-seed_S.pkl``) consistent with the split. Known pitfalls (StanfordCars from the Kaggle
mirrors, ImageNet's flat val folder and ``classnames.txt``, SUN397's split / partition files, the ImageNet
variants' folder names) get the concrete fix in the message.

One line per dataset: ``OK``, ``WARN`` (usable, but not the official CoOp split: numbers not comparable with the
papers; ``--strict`` makes it fatal) or ``FAIL`` (a run would crash or train on the wrong data), each problem
followed by its fix. Exit status 1 when any dataset fails, 2 for a bad command line. Nothing is ever written.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# (registered name, config stem) -> classes, (train, val, test) of the CoOp split files (the
# ImageNet train size is its folder count), raw files a missing split can be rebuilt from (None: split required)
KNOWN: dict[str, dict] = {
    "ImageNet": dict(stem="imagenet", classes=1000, sizes=(1281167, None, 50000)),
    "Caltech101": dict(stem="caltech101", classes=100, sizes=(4128, 1649, 2465), raw=()),
    "OxfordPets": dict(stem="oxford_pets", classes=37, sizes=(2944, 736, 3669),
                       raw=("annotations/trainval.txt", "annotations/test.txt")),
    "StanfordCars": dict(stem="stanford_cars", classes=196, sizes=(6509, 1635, 8041),
                         raw=("devkit/cars_meta.mat", "devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat")),
    "OxfordFlowers": dict(stem="oxford_flowers", classes=102, sizes=(4093, 1633, 2463),
                          raw=("imagelabels.mat", "cat_to_name.json")),
    "Food101": dict(stem="food101", classes=101, sizes=(50500, 20200, 30300), raw=()),
    "FGVCAircraft": dict(stem="fgvc_aircraft", classes=100, sizes=(3334, 3333, 3333),
                         raw=("variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                              "images_variant_test.txt")),
    "SUN397": dict(stem="sun397", classes=397, sizes=(15880, 3970, 19850),
                   raw=("ClassName.txt", "Training_01.txt", "Testing_01.txt")),
    "DescribableTextures": dict(stem="dtd", classes=47, sizes=(2820, 1128, 1692), raw=()),
    "EuroSAT": dict(stem="eurosat", classes=10, sizes=(13500, 5400, 8100), raw=()),
    "UCF101": dict(stem="ucf101", classes=101, sizes=(7639, 1898, 3783),
                   raw=("ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt",
                        "ucfTrainTestlist/testlist01.txt")),
    "ImageNetV2": dict(stem="imagenetv2", classes=1000, sizes=(None, None, 10000)),
    "ImageNetSketch": dict(stem="imagenet_sketch", classes=1000, sizes=(None, None, 50889)),
    "ImageNetA": dict(stem="imagenet_a", classes=200, sizes=(None, None, 7500)),
    "ImageNetR": dict(stem="imagenet_r", classes=200, sizes=(None, None, 30000)),
}
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class Result:
    name: str
    fails: list[str] = field(default_factory=list)
    warns: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)

    def fail(self, what: str, fix: str) -> None:
        self.fails.append(f"{what}; fix: {fix}")

    def warn(self, what: str, fix: str) -> None:
        self.warns.append(f"{what}; fix: {fix}")

    @property
    def status(self) -> str:
        return "FAIL" if self.fails else "WARN" if self.warns else "OK"

    def line(self) -> str:
        msgs = self.fails + self.warns
        detail = " | ".join(msgs) if msgs else ", ".join(self.info)
        return f"{self.name:<20} {self.status:<4} {detail}"


def reader_class(name: str):
    from dassl.data.datasets import DATASET_REGISTRY

    import datasets  # noqa: F401  (registers the readers)

    return DATASET_REGISTRY.get(name)


def resolve_names(names: list[str]) -> list[str]:
    """Registered names from registered names or config stems (case-insensitive)."""
    by_key = {}
    for reg, spec in KNOWN.items():
        by_key[reg.lower()] = reg
        by_key[spec["stem"]] = reg
    out, bad = [], []
    for n in names:
        reg = by_key.get(n.lower()) or by_key.get(n.lower().replace("-", "_"))
        (out if reg else bad).append(reg or n)
    if bad:
        raise ValueError(f"unknown dataset(s) {', '.join(bad)}; choose from: {', '.join(KNOWN)} (or the config stems "
                         f"{', '.join(s['stem'] for s in KNOWN.values())})")
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _similar_entries(parent: str, wanted: str) -> list[str]:
    if not osp.isdir(parent):
        return []
    key = _norm(wanted)
    return [n for n in sorted(os.listdir(parent)) if n != wanted and (_norm(n) == key or key in _norm(n))
            and osp.isdir(osp.join(parent, n))]


def _docs(cls) -> str:
    return f"see DATASETS.md#{cls.anchor()}"


def _images_in(folder: str, limit: int | None = None) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if f.lower().endswith(IMAGE_EXT):
                out.append(osp.join(dirpath, f))
                if limit and len(out) >= limit:
                    return out
    return out


def _decode(paths: list[str], n: int, res: Result) -> None:
    """Open an evenly spaced sample of ``n`` images fully (PIL ``load`` + RGB)."""
    if n <= 0 or not paths:
        return
    from PIL import Image

    step = max(1, len(paths) // n)
    sample = paths[::step][:n]
    bad = []
    for p in sample:
        try:
            with Image.open(p) as im:
                im.convert("RGB").load()
        except Exception as e:  # PIL raises many types for damaged files
            bad.append(f"{p} ({type(e).__name__})")
    if bad:
        res.fail(f"{len(bad)} of {len(sample)} sampled images do not decode, e.g. {bad[0]}",
                 "re-download or re-extract the damaged files (a truncated archive is the usual cause)")
    else:
        res.info.append(f"{len(sample)} images decoded")


# --------------------------------------------------------------------------------------------- split-file datasets
def check_split_json(cls, dataset_dir: str, image_dir: str, res: Result, spec: dict, decode: int) -> dict | None:
    """Parse the split JSON; class count, sizes, every image present, a decoded sample. Returns the split."""
    path = osp.join(dataset_dir, cls.split_file)
    try:
        with open(path, encoding="utf-8") as f:
            split = json.load(f)
    except ValueError as e:
        res.fail(f"{path} is not valid JSON ({e})",
                 f"re-download {cls.split_file} (CoOp DATASETS.md), or delete it to rebuild a random split")
        return None
    if not isinstance(split, dict) or any(not isinstance(split.get(k), list) for k in ("train", "val", "test")):
        res.fail(f"{path} must be an object with the lists train, val and test", f"re-download {cls.split_file}")
        return None
    labels: dict[int, set[str]] = defaultdict(set)
    missing, total = [], 0
    paths = []
    for key in ("train", "val", "test"):
        for e in split[key]:
            if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], int)):
                res.fail(f"{path}: {key} entry {str(e)[:80]} is not [relative_path, label, classname]",
                         f"re-download {cls.split_file}")
                return None
            labels[e[1]].add(str(e[2]))
            p = osp.join(image_dir, e[0])
            total += 1
            if not osp.isfile(p):
                missing.append(p)
            else:
                paths.append(p)
    n_cls = len(labels)
    sizes = tuple(len(split[k]) for k in ("train", "val", "test"))
    res.info.append(f"{n_cls} classes, {sizes[0]}/{sizes[1]}/{sizes[2]} train/val/test")
    if sorted(labels) != list(range(n_cls)):
        res.fail(f"{path}: labels are not 0..{n_cls - 1}", f"re-download {cls.split_file}")
    multi = [lab for lab, names in labels.items() if len(names) > 1]
    if multi:
        res.fail(f"{path}: label {multi[0]} has several class names {sorted(labels[multi[0]])[:3]}",
                 f"re-download {cls.split_file}")
    if n_cls != spec["classes"] or sizes != spec["sizes"]:
        res.warn(f"split has {n_cls} classes and {sizes[0]}/{sizes[1]}/{sizes[2]} images, the CoOp split file has "
                 f"{spec['classes']} and {'/'.join(map(str, spec['sizes']))} (not the official split: numbers are "
                 "not comparable with the papers)",
                 f"download the official {cls.split_file} (CoOp DATASETS.md) into {dataset_dir}")
    if missing:
        hint = _missing_hint(cls, dataset_dir, image_dir, missing)
        res.fail(f"{len(missing)} of {total} images listed in {cls.split_file} are missing, e.g. {missing[0]}", hint)
    _decode(paths, decode, res)
    return split


def _missing_hint(cls, dataset_dir: str, image_dir: str, missing: list[str]) -> str:
    rel = osp.relpath(missing[0], image_dir)
    for cand in (osp.join(dataset_dir, rel), osp.join(image_dir, osp.basename(rel))):
        if osp.isfile(cand):
            return (f"the images are at {cand}: the split paths are relative to {image_dir}; move the files to match "
                    f"({_docs(cls)})")
    nested = osp.join(image_dir, osp.basename(image_dir.rstrip("/")), rel)
    if osp.isfile(nested):
        return f"the archive was extracted one level too deep ({nested}): move its content up one folder"
    return f"re-extract the image archive into {image_dir} ({_docs(cls)})"


def check_rebuildable(cls, dataset_dir: str, res: Result, spec: dict) -> None:
    """Split file absent: say whether the reader can rebuild it from raw annotations (a random, non-official split)."""
    raw = spec.get("raw")
    path = osp.join(dataset_dir, cls.split_file)
    absent = [r for r in raw if not osp.isfile(osp.join(dataset_dir, r))] if raw is not None else ["?"]
    if cls.__name__ == "SUN397" and absent:
        res.fail(f"{cls.split_file} not found and the partition files {', '.join(absent)} are missing, so the split "
                 "cannot be rebuilt",
                 f"download split_zhou_SUN397.json (CoOp DATASETS.md) into {dataset_dir}; to rebuild instead, put "
                 "ClassName.txt, Training_01.txt and Testing_01.txt (the SUN397 'Partitions' archive) there")
        return
    if absent:
        res.fail(f"{path} not found and the raw files to rebuild it are missing ({', '.join(absent)})",
                 f"download {cls.split_file} (CoOp DATASETS.md) into {dataset_dir} ({_docs(cls)})")
        return
    res.warn(f"{cls.split_file} not found: the first run builds a random split from the raw files (not the "
             "official split: numbers are not comparable with the papers)",
             f"download the official {cls.split_file} (CoOp DATASETS.md) into {dataset_dir}")


# --------------------------------------------------------------------------------------------- pitfalls
def stanford_cars_pitfalls(dataset_dir: str, res: Result) -> bool:
    """Kaggle layouts of StanfordCars. Returns True when one was found (the rest of the check is pointless)."""
    for sub in ("cars_train", "cars_test"):
        nested = osp.join(dataset_dir, sub, sub)
        if osp.isdir(nested):
            res.fail(f"{nested} is nested (the Kaggle 'stanford-cars-dataset' archive)",
                     f"move its images up one level: mv {nested}/* {osp.join(dataset_dir, sub)}/ && rmdir {nested}")
            return True
    for cand in ("car_data", "train", "test", "cars_train/train"):
        p = osp.join(dataset_dir, cand)
        if osp.isdir(p) and any(osp.isdir(osp.join(p, n)) for n in os.listdir(p)) and not osp.isdir(
                osp.join(dataset_dir, "cars_train")):
            res.fail(f"{p} holds class folders (the Kaggle 'stanford-car-dataset-by-classes-folder' mirror): the CoOp "
                     "split lists the original file names cars_train/00001.jpg ...",
                     "get the original layout (cars_train/, cars_test/ with 00001.jpg..., devkit/, "
                     "cars_test_annos_withlabels.mat) from a mirror of the original files, and "
                     "split_zhou_StanfordCars.json (see DATASETS.md#stanfordcars)")
            return True
    return False


def check_folder(cls, root: str, res: Result) -> str | None:
    d = osp.join(root, cls.folder)
    if osp.isdir(d):
        return d
    alt = _similar_entries(root, cls.folder)
    if alt:
        res.fail(f"{d} not found, but {osp.join(root, alt[0])} exists",
                 f"rename it: mv {osp.join(root, alt[0])} {d} ({_docs(cls)})")
    else:
        res.fail(f"{d} not found", f"download the dataset into that folder ({_docs(cls)})")
    return None


def check_image_dir(cls, dataset_dir: str, res: Result) -> str | None:
    image_dir = osp.join(dataset_dir, cls.image_folder) if cls.image_folder else dataset_dir
    for sub in ([cls.image_folder] if cls.image_folder else []) + list(getattr(cls, "required_dirs", ())):
        p = osp.join(dataset_dir, sub)
        if osp.isdir(p):
            continue
        alt = _similar_entries(dataset_dir, sub)
        if alt:
            res.fail(f"image folder {p} not found, but {osp.join(dataset_dir, alt[0])} exists",
                     f"rename it: mv {osp.join(dataset_dir, alt[0])} {p}")
        elif cls.__name__ == "SUN397" and osp.isdir(osp.join(dataset_dir, "a")):
            res.fail(f"{p} not found: the letter folders (a/, b/, ...) are directly in {dataset_dir}",
                     f"move them into {p} (the split paths are a/abbey/...)")
        else:
            res.fail(f"image folder {p} not found", f"extract the image archive there ({_docs(cls)})")
        return None
    return image_dir


# --------------------------------------------------------------------------------------------- few-shot caches
def _rel_to(path: str, folder_name: str) -> str | None:
    parts = re.split(r"[\\/]+", path)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == folder_name:
            return "/".join(parts[i + 1:])
    return None


def check_fewshot(cls, dataset_dir: str, image_dir: str, split_items: dict[str, list[tuple[str, int]]],
                  res: Result) -> None:
    """Every ``split_fewshot/shot_K-seed_S.pkl``: readable, items from the split's train / val, K (min(K, 4)) per class."""
    from datasets.utils import DataFormatError, _CorruptCache, _load_datum_lists

    fdir = osp.join(dataset_dir, "split_fewshot")
    if not osp.isdir(fdir):
        return
    folder = osp.basename(osp.normpath(dataset_dir))
    image_rel = osp.relpath(image_dir, dataset_dir) if image_dir != dataset_dir else ""
    n_ok = 0
    for name in sorted(os.listdir(fdir)):
        m = re.match(r"^shot_(\d+)-seed_(-?\d+)\.pkl$", name)
        if not m:
            continue
        k = int(m.group(1))
        path = osp.join(fdir, name)
        keys = [key for key in ("train", "val") if split_items.get(key) is not None]
        try:
            data = _load_datum_lists(path, keys)
        except (DataFormatError, _CorruptCache, OSError) as e:
            res.fail(f"few-shot cache {path} is unreadable ({e})", f"delete it to have it rebuilt: rm {path}")
            continue
        bad = None
        for key in keys:
            allowed = {(osp.normpath(osp.join(image_rel, p)), lab) for p, lab in split_items[key]}
            per_class_avail = Counter(lab for _, lab in split_items[key])
            want = k if key == "train" else min(k, 4)
            got = Counter()
            for item in data[key]:
                rel = _rel_to(item.impath, folder)
                if rel is None or (osp.normpath(rel), item.label) not in allowed:
                    bad = f"{key} image {item.impath} (label {item.label}) is not in the current split"
                    break
                got[item.label] += 1
            if bad:
                break
            wrong = [lab for lab in per_class_avail if got.get(lab, 0) != min(want, per_class_avail[lab])]
            if wrong:
                bad = (f"{key} holds {got.get(wrong[0], 0)} images of class {wrong[0]}, expected "
                       f"{min(want, per_class_avail[wrong[0]])} for {k} shots")
                break
        if bad:
            res.fail(f"few-shot cache {name} does not match the split: {bad} (made from another split file or "
                     "dataset copy)", f"delete it to have it redrawn from the current split: rm {path}")
        else:
            n_ok += 1
    if n_ok:
        res.info.append(f"{n_ok} few-shot cache{'s' if n_ok > 1 else ''} consistent")


# --------------------------------------------------------------------------------------------- per family
def check_json_dataset(cls, root: str, res: Result, decode: int, spec: dict) -> None:
    dataset_dir = check_folder(cls, root, res)
    if dataset_dir is None:
        return
    if cls.__name__ == "StanfordCars" and stanford_cars_pitfalls(dataset_dir, res):
        return
    image_dir = check_image_dir(cls, dataset_dir, res)
    if image_dir is None:
        return
    if cls.split_file is None:  # FGVCAircraft: the official lists, read directly
        split_items = check_fgvc(cls, dataset_dir, image_dir, res, spec, decode)
    elif osp.isfile(osp.join(dataset_dir, cls.split_file)):
        split = check_split_json(cls, dataset_dir, image_dir, res, spec, decode)
        split_items = {k: [(e[0], e[1]) for e in split[k]] for k in ("train", "val")} if split else None
    else:
        check_rebuildable(cls, dataset_dir, res, spec)
        split_items = None
    if split_items:
        check_fewshot(cls, dataset_dir, image_dir, split_items, res)


def check_fgvc(cls, dataset_dir: str, image_dir: str, res: Result, spec: dict, decode: int):
    absent = [r for r in spec["raw"] if not osp.isfile(osp.join(dataset_dir, r))]
    if absent:
        nested = osp.join(dataset_dir, "data")
        fix = (f"the files are in {nested}: use that folder's content as {dataset_dir} (the FGVC archive's data/ "
               "folder)") if osp.isfile(osp.join(nested, "variants.txt")) else \
            f"extract the FGVC-Aircraft archive's data/ folder as {dataset_dir} (see DATASETS.md#fgvcaircraft)"
        res.fail(f"missing {', '.join(absent)} in {dataset_dir}", fix)
        return None
    with open(osp.join(dataset_dir, "variants.txt"), encoding="utf-8") as f:
        variants = [ln.strip() for ln in f if ln.strip()]
    lab = {v: i for i, v in enumerate(variants)}
    items: dict[str, list[tuple[str, int]]] = {}
    missing, paths = [], []
    for key in ("train", "val", "test"):
        out = []
        with open(osp.join(dataset_dir, f"images_variant_{key}.txt"), encoding="utf-8") as f:
            for ln in f:
                fields = ln.strip().split(" ")
                if not fields[0]:
                    continue
                v = " ".join(fields[1:])
                if v not in lab:
                    res.fail(f"images_variant_{key}.txt: variant {v!r} is not in variants.txt",
                             "re-extract the FGVC-Aircraft annotation files")
                    return None
                rel = f"{fields[0]}.jpg"
                (paths if osp.isfile(osp.join(image_dir, rel)) else missing).append(osp.join(image_dir, rel))
                out.append((rel, lab[v]))
        items[key] = out
    sizes = tuple(len(items[k]) for k in ("train", "val", "test"))
    res.info.append(f"{len(variants)} classes, {sizes[0]}/{sizes[1]}/{sizes[2]} train/val/test")
    if len(variants) != spec["classes"] or sizes != spec["sizes"]:
        res.warn(f"{len(variants)} classes and {'/'.join(map(str, sizes))} images, the official lists have "
                 f"{spec['classes']} and {'/'.join(map(str, spec['sizes']))}", "re-extract the FGVC-Aircraft archive")
    if missing:
        res.fail(f"{len(missing)} of {sum(sizes)} listed images are missing, e.g. {missing[0]}",
                 f"re-extract the images into {image_dir}")
    _decode(paths, decode, res)
    return {"train": items["train"], "val": items["val"]}


def _classnames_fix(dataset_dir: str, root: str) -> str:
    src = osp.join(root, "imagenet", "classnames.txt")
    if osp.isfile(src) and not dataset_dir.endswith(osp.sep + "imagenet"):
        return f"copy ImageNet's: cp {src} {dataset_dir}/"
    return ("download classnames.txt from the CoOp DATASETS.md link (1000 lines '<wnid> <name>' in sorted-wnid "
            f"order) into {dataset_dir}")


def _read_classnames(path: str, res: Result, n_names: int = 1000) -> dict[str, str] | None:
    from datasets.imagenet import read_classnames

    try:
        names = read_classnames(path)
    except (OSError, UnicodeDecodeError) as e:
        res.fail(f"{path} is unreadable ({e})", "re-download classnames.txt (CoOp DATASETS.md)")
        return None
    if len(names) != n_names or not all(re.fullmatch(r"n\d{8}", w) for w in names):
        res.fail(f"{path} has {len(names)} '<wnid> <name>' lines, expected {n_names} wnids",
                 "re-download classnames.txt (CoOp DATASETS.md)")
        return None
    if list(names) != sorted(names):
        res.fail(f"{path} is not in sorted-wnid order (ImageNetV2's numbered folders would get the wrong names)",
                 "sort it by wnid or re-download it")
        return None
    return names


def _class_folders(d: str) -> list[str]:
    return sorted(n for n in os.listdir(d) if not n.startswith(".") and osp.isdir(osp.join(d, n)))


def _count_files(folder: str) -> int:
    with os.scandir(folder) as it:
        return sum(1 for e in it if e.is_file() and not e.name.startswith("."))


def check_imagenet(cls, root: str, res: Result, decode: int, spec: dict) -> None:
    dataset_dir = check_folder(cls, root, res)
    if dataset_dir is None:
        return
    names_file = osp.join(dataset_dir, "classnames.txt")
    names = _read_classnames(names_file, res, spec.get("n_names", 1000)) if osp.isfile(names_file) else None
    if not osp.isfile(names_file):
        res.fail(f"{names_file} not found", _classnames_fix(dataset_dir, root))
    train_dir, val_dir = osp.join(dataset_dir, "images", "train"), osp.join(dataset_dir, "images", "val")
    for d in (train_dir, val_dir):
        if not osp.isdir(d):
            flat = osp.join(dataset_dir, osp.basename(d))
            fix = (f"move it under images/: mv {flat} {d}" if osp.isdir(flat)
                   else "put the ILSVRC-2012 train and val images there (see DATASETS.md#imagenet)")
            res.fail(f"{d} not found", fix)
    if res.fails and not (osp.isdir(train_dir) and osp.isdir(val_dir)):
        return
    train_cls, val_cls = _class_folders(train_dir), _class_folders(val_dir)
    flat_val = [n for n in os.listdir(val_dir) if n.lower().endswith(IMAGE_EXT)]
    if flat_val and not val_cls:
        res.fail(f"{val_dir} holds {len(flat_val)} images directly, not one folder per class",
                 "sort the validation images into wnid folders (e.g. the 'valprep.sh' script of the PyTorch ImageNet "
                 "example, or the devkit's ground truth), like images/train")
        return
    if sorted(train_cls) != sorted(val_cls):
        only = sorted(set(train_cls) ^ set(val_cls))
        res.fail(f"train and val have different class folders ({len(train_cls)} vs {len(val_cls)}, e.g. {only[0]})",
                 "re-extract the missing class folders")
    if names is not None:
        unnamed = [w for w in train_cls if w not in names]
        if unnamed:
            res.fail(f"class folder {unnamed[0]} has no entry in {names_file}", "re-download classnames.txt")
    n_train = sum(_count_files(osp.join(train_dir, c)) for c in train_cls)
    n_val = sum(_count_files(osp.join(val_dir, c)) for c in val_cls)
    res.info.append(f"{len(train_cls)} classes, {n_train}/{n_val} train/test")
    if len(train_cls) != spec["classes"] or (n_train, n_val) != (spec["sizes"][0], spec["sizes"][2]):
        res.warn(f"{len(train_cls)} classes and {n_train}/{n_val} train/val images, ILSVRC-2012 has {spec['classes']} "
                 f"and {spec['sizes'][0]}/{spec['sizes'][2]}",
                 "complete the download (a partial copy gives numbers not comparable with papers)")
    sample = []
    for c in train_cls[:: max(1, len(train_cls) // 10)] + val_cls[:: max(1, len(val_cls) // 10)]:
        sample += _images_in(osp.join(train_dir if c in train_cls else val_dir, c), 3)
    _decode(sample, decode, res)
    if osp.isdir(osp.join(dataset_dir, "split_fewshot")):  # list the 1.28M training images only when needed
        items = {"train": [(f"{c}/{n}", i) for i, c in enumerate(train_cls)
                           for n in sorted(os.listdir(osp.join(train_dir, c)))], "val": None}
        check_fewshot(cls, dataset_dir, train_dir, items, res)


def check_variant(cls, root: str, res: Result, decode: int, spec: dict) -> None:
    name = cls.__name__
    d = osp.join(root, cls.folder)
    if not osp.isdir(d):
        # e.g. imagenet-a/ or imagenetv2-matched-frequency-format-val/ put directly under the root
        direct = osp.join(root, cls.image_folder)
        if osp.isdir(direct):
            res.fail(f"{d} not found, but {direct} exists (the image folder without its dataset folder)",
                     f"mkdir {d} && mv {direct} {d}/ && cp <imagenet>/classnames.txt {d}/")
            return
        check_folder(cls, root, res)
        return
    image_dir = osp.join(d, cls.image_folder)
    if not osp.isdir(image_dir):
        subs = _class_folders(d)
        if name == "ImageNetV2" and "0" in subs:
            res.fail(f"{image_dir} not found: the numbered class folders are directly in {d}",
                     f"mkdir {image_dir} && mv {d}/[0-9]* {image_dir}/")
        elif subs and all(re.fullmatch(r"n\d{8}", s) for s in subs):
            res.fail(f"{image_dir} not found: the wnid folders are directly in {d}",
                     f"mkdir {image_dir} && mv {d}/n* {image_dir}/")
        elif subs:
            res.fail(f"{image_dir} not found (found {', '.join(subs[:3])})",
                     f"rename the image folder: mv {osp.join(d, subs[0])} {image_dir}")
        else:
            res.fail(f"{image_dir} not found", f"extract the {name} archive into {d} ({_docs(cls)})")
        return
    names_file = osp.join(d, "classnames.txt")
    names = _read_classnames(names_file, res, spec.get("n_names", 1000)) if osp.isfile(names_file) else None
    if not osp.isfile(names_file):
        res.fail(f"{names_file} not found", _classnames_fix(d, root))
    folders = _class_folders(image_dir)
    if name == "ImageNetV2":
        expected = [str(i) for i in range(spec["classes"])]
        missing = [f for f in expected if f not in folders]
        if missing:
            res.fail(f"{image_dir} lacks the class folders {', '.join(missing[:3])}... (expected 0..{spec['classes'] - 1})",
                     "re-extract imagenetv2-matched-frequency.tar.gz")
    else:
        not_wnid = [f for f in folders if not re.fullmatch(r"n\d{8}", f)]
        if not_wnid:
            res.fail(f"{image_dir} has non-wnid folders ({', '.join(not_wnid[:3])})",
                     "keep only the wnid class folders (n01440764, ...)")
        if names is not None:
            unnamed = [f for f in folders if re.fullmatch(r"n\d{8}", f) and f not in names]
            if unnamed:
                res.fail(f"class folder {unnamed[0]} has no entry in {names_file}", "re-download classnames.txt")
    n = sum(_count_files(osp.join(image_dir, f)) for f in folders)
    res.info.append(f"{len(folders)} classes, {n} test images")
    if len(folders) != spec["classes"] or n != spec["sizes"][2]:
        res.warn(f"{len(folders)} classes and {n} images, the release has {spec['classes']} and {spec['sizes'][2]}",
                 "complete or re-extract the download")
    sample = []
    for f in folders[:: max(1, len(folders) // 10)]:
        sample += _images_in(osp.join(image_dir, f), 3)
    _decode(sample, decode, res)


def check_dataset(name: str, root: str, decode: int = 20, spec: dict | None = None) -> Result:
    """Run every check of one dataset (registered name). ``spec`` overrides the expected values of :data:`KNOWN`
    (``classes``, ``sizes``, ``raw``, ``n_names``: lines of classnames.txt)."""
    cls = reader_class(name)
    spec = {**KNOWN[name], **(spec or {})}
    res = Result(name)
    try:
        if name == "ImageNet":
            check_imagenet(cls, root, res, decode, spec)
        elif getattr(cls, "test_only", False):
            check_variant(cls, root, res, decode, spec)
        else:
            check_json_dataset(cls, root, res, decode, spec)
    except OSError as e:  # permissions, a broken mount: still one line
        res.fail(f"cannot read the dataset ({e})", "check the folder's permissions / mount")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Check the CoOp datasets under a root folder (layout, split files, "
                                "class counts, images, few-shot caches)")
    p.add_argument("datasets", nargs="*", help="registered names or config stems (default: all 15)")
    p.add_argument("--root", default=os.environ.get("DATA", ""), help="datasets root (default: $DATA)")
    p.add_argument("--decode", type=int, default=20, help="images to decode per dataset (0: none)")
    p.add_argument("--strict", action="store_true", help="WARN (not the official split / sizes) fails too")
    args = p.parse_args(argv)
    if not args.root:
        print("error: pass --root <folder holding the datasets> (or set DATA); see DATASETS.md", file=sys.stderr)
        return 2
    if not osp.isdir(args.root):
        print(f"error: --root {args.root} is not a folder", file=sys.stderr)
        return 2
    try:
        names = resolve_names(args.datasets) if args.datasets else list(KNOWN)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = osp.abspath(osp.expanduser(args.root))
    results = []
    for n in names:
        results.append(check_dataset(n, root, args.decode))
        print(results[-1].line(), flush=True)
    failed = [r for r in results if r.fails or (args.strict and r.warns)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
