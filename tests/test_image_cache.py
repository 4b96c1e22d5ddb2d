"""DATALOADER.IMAGE_CACHE_MB: training batches are pixel-identical with and without the cache; the limit holds."""
from __future__ import annotations

import pytest
import torch

from dassl.data import DataManager
from dassl.data.image_cache import ImageCache, split_deterministic_prefix
from dassl.data.transforms.pil_ops import Compose, RandomHorizontalFlip, Resize, ToTensor
from dassl.utils.tools import read_image, set_random_seed
from tests.helpers.engine_fixtures import make_image_folder, tiny_cfg

import tests.helpers.engine_fixtures  # noqa: F401  (registers EngineTinyFolder)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_image_folder(str(tmp_path_factory.mktemp("cache")), n_train=5, size=20)


def _epochs(cfg, n=3, workers=0):
    cfg.DATALOADER.NUM_WORKERS = workers
    set_random_seed(1)
    dm = DataManager(cfg)
    out = []
    for _ in range(n):
        for batch in dm.train_loader_x:
            out.append((batch["img"].clone(), batch["label"].clone(), list(batch["impath"])))
    return out, dm


@pytest.mark.parametrize("transforms", [("random_flip", "normalize"),  # squash resize first: cached resized
                                        ("random_resized_crop", "random_flip", "normalize"),  # decoded only
                                        ("random_crop", "colorjitter", "normalize")])
def test_batches_identical_with_and_without_cache(data, tmp_path, transforms):
    results = []
    for mb in (0, 64):
        cfg = tiny_cfg(data, str(tmp_path))
        cfg.INPUT.SIZE = (12, 12)
        cfg.INPUT.TRANSFORMS = transforms
        cfg.DATALOADER.IMAGE_CACHE_MB = mb
        results.append(_epochs(cfg))
    (plain, dm0), (cached, dm1) = results
    wrapper = dm1.train_loader_x.dataset
    assert dm0.train_loader_x.dataset._cache is None
    assert len(wrapper._cache) == len(wrapper.data_source)  # everything fitted
    assert len(plain) == len(cached) > 0
    for (a, la, pa), (b, lb, pb) in zip(plain, cached):
        assert torch.equal(a, b) and torch.equal(la, lb) and pa == pb
    assert torch.equal(torch.get_rng_state(), torch.get_rng_state())


def test_cached_images_are_used_and_are_copies(data, tmp_path, monkeypatch):
    cfg = tiny_cfg(data, str(tmp_path))
    cfg.INPUT.SIZE = (12, 12)
    cfg.DATALOADER.IMAGE_CACHE_MB = 64
    dm = DataManager(cfg)
    wrapper = dm.train_loader_x.dataset
    import dassl.data.data_manager as dmod

    def no_disk(path):
        raise AssertionError("read from disk although cached")

    monkeypatch.setattr(dmod, "read_image", no_disk)
    item = wrapper[0]
    assert item["img"].shape == (3, 12, 12)
    path = wrapper.data_source[0].impath
    assert wrapper._cache.get(path) is not wrapper._cache.get(path)  # every use gets its own copy


def test_limit_is_respected_and_the_rest_is_read_from_disk(data, tmp_path):
    cfg = tiny_cfg(data, str(tmp_path))
    cfg.INPUT.SIZE = (12, 12)
    one = 12 * 12 * 3  # a resized image (squash resize is the cached prefix)
    cfg.DATALOADER.IMAGE_CACHE_MB = 2.5 * one / 2**20
    plain_cfg = tiny_cfg(data, str(tmp_path))
    plain_cfg.INPUT.SIZE = (12, 12)
    cached, dm = _epochs(cfg, n=2)
    plain, _ = _epochs(plain_cfg, n=2)
    cache = dm.train_loader_x.dataset._cache
    assert len(cache) == 2 and cache.used == 2 * one <= cache.limit
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain, cached))


def test_prefix_split_and_unreadable_files(tmp_path):
    tfm = Compose([Resize((8, 8)), RandomHorizontalFlip(), ToTensor()])
    prefix, rest = split_deterministic_prefix(tfm)
    assert [type(t).__name__ for t in prefix] == ["Resize"]
    assert [type(t).__name__ for t in rest.transforms] == ["RandomHorizontalFlip", "ToTensor"]
    assert split_deterministic_prefix([tfm]) == ([], [tfm])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    cache = ImageCache(10**6, prefix)
    cache.fill([str(bad)], read_image)
    assert len(cache) == 0 and str(bad) not in cache


def test_identical_with_loader_workers(data, tmp_path):
    results = []
    for mb in (0, 64):
        cfg = tiny_cfg(data, str(tmp_path))
        cfg.INPUT.SIZE = (12, 12)
        cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
        cfg.DATALOADER.IMAGE_CACHE_MB = mb
        results.append(_epochs(cfg, n=2, workers=2)[0])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*results)) and len(results[0]) > 0
