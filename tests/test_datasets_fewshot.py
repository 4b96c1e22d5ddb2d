"""Few-shot sampling and its pickle cache (reference format, moved datasets, unsafe pickles) and the base/new split."""
from __future__ import annotations

import os
import pickle
import random
import shutil

import pytest

import datasets  # noqa: F401  (registers the readers)
from dassl.data.datasets import DatasetBase, Datum, build_dataset
from datasets.utils import DataFormatError, fewshot_cache_path, subsample_classes
from tests.helpers.fake_datasets import FAKE_DATASETS, make_cfg, make_json_dataset, write_image

CLASSES = ["abyssinian", "bengal", "birman", "bombay", "boxer"]
COUNTS = {"train": [6, 2, 5, 8, 3], "val": [5, 3, 1, 4, 6], "test": [2, 2, 2, 2, 2]}


def make_pets(root) -> str:
    make_json_dataset(str(root), "oxford_pets", "images", "split_zhou_OxfordPets.json", CLASSES, COUNTS)
    return os.path.join(str(root), "oxford_pets")


def build(root, name="OxfordPets", seed=1, **kw):
    random.seed(seed)  # what set_random_seed(cfg.SEED) does before the trainer builds the dataset
    return build_dataset(make_cfg(str(root), name, seed=seed, **kw))


def per_class(items, n_classes=5):
    return [sum(i.label == y for i in items) for y in range(n_classes)]


def as_tuples(items):
    return [(i.impath, i.label, i.domain, i.classname) for i in items]


def relative(items, dataset_dir):
    return [(os.path.relpath(i.impath, dataset_dir), i.label, i.classname) for i in items]


def write_reference_cache(path: str, data: dict, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


def unchecked_datum(impath: str, label: int, classname: str) -> Datum:
    """A Datum as unpickling restores it: no file check (the path may not exist)."""
    item = Datum.__new__(Datum)
    item.__dict__.update(_impath=impath, _label=label, _domain=0, _classname=classname)
    return item


# ---------------------------------------------------------------------------------------------------------------------
# Few-shot counts and the cache file
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shots, train_counts, val_counts",
    [(1, [1] * 5, [1] * 5), (4, [4, 2, 4, 4, 3], [4, 3, 1, 4, 4]), (8, [6, 2, 5, 8, 3], [4, 3, 1, 4, 4])],
)
def test_fewshot_counts_and_cache_file(tmp_path, shots, train_counts, val_counts, caplog):
    d = make_pets(tmp_path)
    caplog.set_level("INFO")
    ds = build(tmp_path, num_shots=shots, seed=7)
    assert per_class(ds.train_x) == train_counts
    assert per_class(ds.val) == val_counts  # min(K, 4) shots; small classes keep all their items
    assert per_class(ds.test) == COUNTS["test"]  # test is never subsampled
    path = os.path.join(d, "split_fewshot", f"shot_{shots}-seed_7.pkl")
    assert fewshot_cache_path(d, shots, 7) == path
    assert f"Saving preprocessed few-shot data to {path}" in caplog.text
    with open(path, "rb") as f:
        payload = f.read()
    assert payload[:2] == bytes([0x80, pickle.HIGHEST_PROTOCOL])
    assert b"dassl.data.datasets.base_dataset" in payload and b"Datum" in payload
    cached = pickle.loads(payload)
    assert set(cached) == {"train", "val"}
    assert as_tuples(cached["train"]) == as_tuples(ds.train_x)
    assert as_tuples(cached["val"]) == as_tuples(ds.val)
    assert all(os.path.isabs(i.impath) for i in cached["train"])


def test_fewshot_depends_on_seed_and_is_cached_per_seed(tmp_path):
    d = make_pets(tmp_path)
    a = build(tmp_path, num_shots=2, seed=1)
    b = build(tmp_path, num_shots=2, seed=2)
    assert sorted(os.listdir(os.path.join(d, "split_fewshot"))) == ["shot_2-seed_1.pkl", "shot_2-seed_2.pkl"]
    assert as_tuples(a.train_x) != as_tuples(b.train_x)


def test_no_cache_without_shots(tmp_path):
    d = make_pets(tmp_path)
    ds = build(tmp_path, num_shots=-1)
    assert per_class(ds.train_x) == COUNTS["train"]
    assert not os.path.exists(os.path.join(d, "split_fewshot"))


def test_cache_is_reused(tmp_path, caplog, monkeypatch):
    d = make_pets(tmp_path)
    first = build(tmp_path, num_shots=2, seed=1)
    caplog.set_level("INFO")

    def fail(*args, **kwargs):
        raise AssertionError("sampled again")

    monkeypatch.setattr(DatasetBase, "generate_fewshot_dataset", fail)
    second = build(tmp_path, num_shots=2, seed=1)
    path = os.path.join(d, "split_fewshot", "shot_2-seed_1.pkl")
    assert f"Loading preprocessed few-shot data from {path}" in caplog.text
    assert as_tuples(second.train_x) == as_tuples(first.train_x)
    assert as_tuples(second.val) == as_tuples(first.val)


def test_base_new_after_cache(tmp_path, monkeypatch):
    make_pets(tmp_path)
    full = build(tmp_path, num_shots=4, seed=1)
    monkeypatch.setattr(DatasetBase, "generate_fewshot_dataset", lambda *a, **k: pytest.fail("sampled again"))
    base = build(tmp_path, num_shots=4, seed=1, subsample="base")
    new = build(tmp_path, num_shots=4, seed=1, subsample="new")
    assert [i.impath for i in base.train_x] == [i.impath for i in full.train_x if i.label < 3]
    assert [i.impath for i in new.train_x] == [i.impath for i in full.train_x if i.label >= 3]


def test_imagenet_fewshot_on_train_only(tmp_path):
    fake = FAKE_DATASETS["ImageNet"](str(tmp_path))
    ds = build(tmp_path, "ImageNet", num_shots=2, seed=1)
    assert per_class(ds.train_x, 3) == [2, 2, 2]
    assert ds.val is ds.test and len(ds.test) == 6
    with open(os.path.join(fake.dataset_dir, "split_fewshot", "shot_2-seed_1.pkl"), "rb") as f:
        assert set(pickle.load(f)) == {"train"}
    with open(os.path.join(fake.dataset_dir, "preprocessed.pkl"), "rb") as f:
        pre = pickle.load(f)
    assert set(pre) == {"train", "test"} and len(pre["train"]) == 18


# ---------------------------------------------------------------------------------------------------------------------
# Caches written elsewhere: moved datasets, unrecoverable paths, unsafe pickles
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_reference_cache_of_moved_dataset_is_remapped(tmp_path, caplog, monkeypatch, protocol):
    old_root = tmp_path / "old" / "oxford_pets"  # the old root itself contains the folder name
    old_dir = make_pets(old_root)
    split = build(old_root)  # full split at the old place
    random.seed(0)
    ref = {
        "train": DatasetBase().generate_fewshot_dataset(split.train_x, num_shots=2),
        "val": DatasetBase().generate_fewshot_dataset(split.val, num_shots=2),
    }
    cache = fewshot_cache_path(old_dir, 2, 1)
    write_reference_cache(cache, ref, protocol)
    new_root = tmp_path / "new"
    new_root.mkdir()
    shutil.move(old_dir, str(new_root / "oxford_pets"))
    new_dir = str(new_root / "oxford_pets")
    assert not os.path.exists(ref["train"][0].impath)

    caplog.set_level("INFO")
    monkeypatch.setattr(DatasetBase, "generate_fewshot_dataset", lambda *a, **k: pytest.fail("sampled again"))
    ds = build(new_root, num_shots=2, seed=1)
    assert "Remapped" in caplog.text
    assert relative(ds.train_x, new_dir) == relative(ref["train"], old_dir)
    assert relative(ds.val, new_dir) == relative(ref["val"], old_dir)
    assert all(i.impath.startswith(new_dir + os.sep) and os.path.isfile(i.impath) for i in ds.train_x + ds.val)
    # the reference file itself is left as it was
    with open(fewshot_cache_path(new_dir, 2, 1), "rb") as f:
        assert as_tuples(pickle.load(f)["train"]) == as_tuples(ref["train"])


def test_unrecoverable_cache_is_rebuilt(tmp_path, caplog):
    d = make_pets(tmp_path)
    ghost = {
        "train": [unchecked_datum("/gone/data/oxford_pets/images/abyssinian/ghost.jpg", 0, "abyssinian")],
        "val": [unchecked_datum("/gone/data/elsewhere/x.jpg", 0, "abyssinian")],
    }
    cache = fewshot_cache_path(d, 2, 1)
    write_reference_cache(cache, ghost)
    caplog.set_level("INFO")
    ds = build(tmp_path, num_shots=2, seed=1)
    assert "will be rebuilt" in caplog.text
    assert per_class(ds.train_x) == [2] * 5
    assert all(os.path.isfile(i.impath) for i in ds.train_x + ds.val)
    with open(cache, "rb") as f:
        assert as_tuples(pickle.load(f)["train"]) == as_tuples(ds.train_x)


def test_truncated_cache_is_rebuilt(tmp_path, caplog):
    d = make_pets(tmp_path)
    build(tmp_path, num_shots=2, seed=1)
    cache = fewshot_cache_path(d, 2, 1)
    with open(cache, "rb") as f:
        payload = f.read()
    with open(cache, "wb") as f:
        f.write(payload[: len(payload) // 2])
    caplog.set_level("INFO")
    ds = build(tmp_path, num_shots=2, seed=1)
    assert "will be rebuilt" in caplog.text and per_class(ds.train_x) == [2] * 5


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


class _EvilSystem:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("payload", ["open", "system"])
def test_malicious_cache_is_refused(tmp_path, payload):
    d = make_pets(tmp_path)
    marker = str(tmp_path / "pwned")
    evil = _Evil(marker) if payload == "open" else _EvilSystem()
    cache = fewshot_cache_path(d, 2, 1)
    write_reference_cache(cache, {"train": [evil], "val": []})
    with pytest.raises(DataFormatError) as err:
        build(tmp_path, num_shots=2, seed=1)
    assert cache in str(err.value) and "not allowed" in str(err.value)
    assert not os.path.exists(marker)
    assert os.path.isfile(cache)  # left for the user to inspect


def test_cache_with_foreign_attributes_is_rebuilt(tmp_path, caplog):
    d = make_pets(tmp_path)
    item = Datum.__new__(Datum)
    item.__dict__.update(_impath=123, _label="x", _domain=0, _classname="c")
    cache = fewshot_cache_path(d, 2, 1)
    write_reference_cache(cache, {"train": [item], "val": []})
    caplog.set_level("INFO")
    ds = build(tmp_path, num_shots=2, seed=1)
    assert "will be rebuilt" in caplog.text and per_class(ds.train_x) == [2] * 5


# ---------------------------------------------------------------------------------------------------------------------
# Base-to-new split
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subsample, names", [("base", CLASSES[:3]), ("new", CLASSES[3:])])
def test_base_new_relabelling(tmp_path, subsample, names, caplog):
    make_pets(tmp_path)
    caplog.set_level("INFO")
    ds = build(tmp_path, subsample=subsample)
    assert f"SUBSAMPLE {subsample.upper()} CLASSES!" in caplog.text
    assert ds.classnames == names  # 5 classes -> base 3 / new 2, names kept
    assert ds.num_classes == len(names)
    offset = 0 if subsample == "base" else 3
    for split, key in ((ds.train_x, "train"), (ds.val, "val"), (ds.test, "test")):
        assert sorted({i.label for i in split}) == list(range(len(names)))
        assert per_class(split, len(names)) == COUNTS[key][offset:offset + len(names)]
        for item in split:
            assert item.classname == CLASSES[item.label + offset]


def test_subsample_uses_the_first_split_and_fresh_datums(tmp_path):
    def items(labels, domain=1):
        out = []
        for y in labels:
            p = write_image(str(tmp_path / f"{y}_{len(out)}.jpg"))
            out.append(Datum(p, y, domain, f"class{y}"))
        return out

    train = items([8, 0, 2, 6, 4, 0])
    test = items([0, 1, 2, 3, 4, 5, 6, 7, 8])
    base_train, base_test = subsample_classes(train, test, subsample="base")
    assert [i.label for i in base_train] == [0, 1, 2, 0]  # old 0, 2, 4 (ceil(5/2) = 3), train order kept
    assert [(i.label, i.classname) for i in base_test] == [(0, "class0"), (1, "class2"), (2, "class4")]
    assert all(i.domain == 0 for i in base_train + base_test)
    assert all(a is not b for a, b in zip(base_train, train))
    new_train, new_test = subsample_classes(train, test, subsample="new")
    assert [(i.label, i.classname) for i in new_train] == [(1, "class8"), (0, "class6")]
    assert [i.classname for i in new_test] == ["class6", "class8"]
    same = subsample_classes(train, test, subsample="all")
    assert same[0] is train and same[1] is test


def test_imagenet_base_new_keeps_val_equal_to_test(tmp_path):
    FAKE_DATASETS["ImageNet"](str(tmp_path))
    ds = build(tmp_path, "ImageNet", num_shots=2, subsample="new")
    assert ds.classnames == ["tiger shark"]  # 3 classes -> base 2 / new 1
    assert ds.val is ds.test and {i.label for i in ds.test} == {0}
