"""SynthShapes: deterministic generation, on-disk layout and split format, and the standard reader pipeline."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from datasets import synth_shapes
from datasets.synth_shapes import generate_synth_shapes

SMALL = {"train": 3, "val": 2, "test": 2}


def _tree_hash(folder: str) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            digest.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = generate_synth_shapes(str(tmp_path / "a"), seed=5, sizes=SMALL)
    b = generate_synth_shapes(str(tmp_path / "b"), seed=5, sizes=SMALL)
    c = generate_synth_shapes(str(tmp_path / "c"), seed=6, sizes=SMALL)
    assert _tree_hash(a) == _tree_hash(b)
    assert _tree_hash(a) != _tree_hash(c)
    # no temporary folders left behind
    assert sorted(os.listdir(tmp_path / "a")) == ["synth_shapes"]


def test_generation_is_skipped_when_complete_and_redone_when_params_change(tmp_path):
    folder = generate_synth_shapes(str(tmp_path), seed=5, sizes=SMALL)
    split = os.path.join(folder, synth_shapes.SPLIT_FILE)
    mtime = os.stat(split).st_mtime_ns
    assert generate_synth_shapes(str(tmp_path), seed=5, sizes=SMALL) == folder
    assert os.stat(split).st_mtime_ns == mtime
    generate_synth_shapes(str(tmp_path), seed=7, sizes=SMALL)
    with open(os.path.join(folder, synth_shapes.MARKER_FILE)) as f:
        assert json.load(f)["seed"] == 7
    assert sorted(os.listdir(tmp_path)) == ["synth_shapes"]


def test_layout_and_split_file_format(tmp_path):
    folder = generate_synth_shapes(str(tmp_path), seed=5, sizes=SMALL)
    with open(os.path.join(folder, "split_zhou_SynthShapes.json")) as f:
        split = json.load(f)
    assert set(split) == {"train", "val", "test"}
    names = synth_shapes.synth_shapes_classnames()
    for key, n in SMALL.items():
        assert len(split[key]) == n * len(names)
        for relpath, label, classname in split[key]:
            assert isinstance(relpath, str) and isinstance(label, int) and classname == names[label]
            assert relpath == f"{classname.replace(' ', '_')}/{relpath.split('/')[1]}"
            assert relpath.endswith(".png")
            assert os.path.isfile(os.path.join(folder, "images", relpath))


# ---------------------------------------------------------------------------------------------------------------------
# Through build_dataset with a Dassl cfg (the default, full-size dataset)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth_data"))
    generate_synth_shapes(root)
    return root


def _cfg(root, shots=-1, subsample="all", seed=1):
    import datasets
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    datasets.add_dataset_cfg(cfg)
    cfg.DATASET.NAME = "SynthShapes"
    cfg.DATASET.ROOT = root
    cfg.DATASET.NUM_SHOTS = shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    return cfg


def _build(cfg):
    from dassl.data.datasets import build_dataset

    import datasets  # noqa: F401  (registers the readers)

    return build_dataset(cfg)


def test_build_dataset_full(data_root):
    ds = _build(_cfg(data_root))
    assert ds.classnames == synth_shapes.synth_shapes_classnames()
    assert ds.num_classes == 20
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (1200, 400, 800)
    assert sorted({d.label for d in ds.test}) == list(range(20))
    assert all(os.path.isabs(d.impath) and os.path.isfile(d.impath) for d in ds.test[:50])


def test_fewshot_and_base_new(data_root):
    ds = _build(_cfg(data_root, shots=4, subsample="all", seed=3))
    assert len(ds.train_x) == 4 * 20 and len(ds.val) == 4 * 20
    assert os.path.isfile(os.path.join(data_root, "synth_shapes", "split_fewshot", "shot_4-seed_3.pkl"))
    again = _build(_cfg(data_root, shots=4, subsample="all", seed=3))
    assert [d.impath for d in again.train_x] == [d.impath for d in ds.train_x]

    names = synth_shapes.synth_shapes_classnames()
    base = _build(_cfg(data_root, shots=4, subsample="base", seed=3))
    new = _build(_cfg(data_root, shots=4, subsample="new", seed=3))
    assert base.classnames == names[:10] and new.classnames == names[10:]
    assert len(base.train_x) == len(new.train_x) == 40
    assert len(base.test) == len(new.test) == 400
    assert sorted({d.label for d in new.test}) == list(range(10))


def test_empty_root_uses_env(data_root, monkeypatch):
    monkeypatch.setenv("PROMPTCLIP_DATA", data_root)
    ds = _build(_cfg(""))
    assert ds.test[0].impath.startswith(os.path.join(data_root, "synth_shapes"))
