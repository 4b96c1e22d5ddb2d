"""Data: few-shot sampling, DataManager loaders, DatasetWrapper items, transforms."""
from __future__ import annotations

import logging
import random
from collections import Counter

import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from dassl.data import DataManager, DatasetWrapper
from dassl.data.data_manager import build_data_loader, build_sampler
from dassl.data.datasets import DatasetBase, Datum
from dassl.data.transforms import INTERPOLATION_MODES, build_transform
from dassl.utils.errors import ConfigError, DataNotFoundError
from tests.helpers.engine_fixtures import make_image_folder, tiny_cfg


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(str(tmp_path_factory.mktemp("data")), n_train=6, n_val=3, n_test=4)


def _items(tmp_path, per_class):
    img = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(img)
    return [Datum(str(img), label=c, classname=f"c{c}") for c, n in enumerate(per_class) for _ in range(n)]


def test_generate_fewshot_counts(tmp_path):
    items = _items(tmp_path, [5, 2, 4])
    ds = DatasetBase(train_x=items)
    random.seed(0)
    out = ds.generate_fewshot_dataset(items, num_shots=3)
    assert Counter(i.label for i in out) == {0: 3, 1: 2, 2: 3}  # a small class keeps all its items
    out = ds.generate_fewshot_dataset(items, num_shots=3, repeat=True)
    assert Counter(i.label for i in out) == {0: 3, 1: 3, 2: 3}
    a, b = ds.generate_fewshot_dataset(items, items, num_shots=1)
    assert len(a) == len(b) == 3
    assert ds.generate_fewshot_dataset(items, num_shots=-1) is items
    random.seed(5)
    s1 = [id(i) for i in ds.generate_fewshot_dataset(items, num_shots=2)]
    random.seed(5)
    s2 = [id(i) for i in ds.generate_fewshot_dataset(items, num_shots=2)]
    assert s1 == s2
    assert ds.num_classes == 3 and ds.lab2cname == {0: "c0", 1: "c1", 2: "c2"}


def test_data_manager_loaders_and_summary(data_root, tmp_path, caplog):
    cfg = tiny_cfg(data_root, str(tmp_path))
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    with caplog.at_level(logging.INFO):
        dm = DataManager(cfg)
    assert dm.num_classes == 3 and dm.lab2cname == {0: "red", 1: "green", 2: "blue"}
    assert len(dm.train_loader_x) == 18 // 4 and dm.train_loader_x.drop_last  # 18 >= 4 -> drop_last
    assert len(dm.val_loader) == 2 and len(dm.test_loader) == 3  # 9 and 12 at batch 5, never dropped
    batch = next(iter(dm.train_loader_x))
    assert batch["img"].shape == (4, 3, 8, 8) and batch["label"].dtype == torch.int64
    assert set(batch) == {"img", "label", "domain", "impath", "index"}
    assert "# train_x  18" in caplog.text and "# classes  3" in caplog.text and "# test     12" in caplog.text


def test_small_few_shot_set_still_trains_one_partial_batch(data_root, tmp_path):
    cfg = tiny_cfg(data_root, str(tmp_path))
    cfg.DATASET.NUM_SHOTS = 2  # 6 images < batch 32
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 32
    random.seed(0)
    dm = DataManager(cfg)
    assert len(dm.dataset.train_x) == 6 and len(dm.dataset.val) == 6
    assert not dm.train_loader_x.drop_last and len(dm.train_loader_x) == 1


def test_empty_split_and_unknown_sampler(data_root, tmp_path):
    cfg = tiny_cfg(data_root, str(tmp_path))
    with pytest.raises(DataNotFoundError):
        build_data_loader(cfg, data_source=[], batch_size=4, name="test")
    with pytest.raises(ConfigError, match="RandomDomainSampler"):
        build_sampler("RandomDomainSampler", data_source=[1, 2])


def test_dataset_wrapper_k_transforms_and_img0(data_root, tmp_path):
    cfg = tiny_cfg(data_root, str(tmp_path))
    cfg.DATALOADER.K_TRANSFORMS = 2
    cfg.DATALOADER.RETURN_IMG0 = True
    dm = DataManager(cfg)
    tfm = build_transform(cfg, is_train=True)
    w = DatasetWrapper(cfg, dm.dataset.train_x, transform=[tfm, tfm], is_train=True)
    item = w[3]
    assert isinstance(item["img"], list) and len(item["img"]) == 2 and "img2" in item
    assert item["img0"].shape == (3, 8, 8) and item["index"] == 3
    w_test = DatasetWrapper(cfg, dm.dataset.test, transform=tfm, is_train=False)
    assert isinstance(w_test[0]["img"], torch.Tensor)  # k_tfm is 1 at test time
    with pytest.raises(ConfigError):
        DatasetWrapper(cfg, dm.dataset.train_x, transform=None, is_train=True)


def test_test_transform_matches_dassl_pixels(tmp_path):
    cfg = tiny_cfg(str(tmp_path), str(tmp_path))
    cfg.INPUT.SIZE = (224, 224)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN = [0.48145466, 0.4578275, 0.40821073]
    cfg.INPUT.PIXEL_STD = [0.26862954, 0.26130258, 0.27577711]
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    g = torch.Generator().manual_seed(0)
    img = Image.fromarray((torch.rand(300, 400, 3, generator=g) * 255).byte().numpy())
    out = build_transform(cfg, is_train=False)(img)
    ref = TF.resize(img, 224, interpolation=TF.InterpolationMode.BICUBIC)  # torchvision itself as the reference
    ref = TF.center_crop(ref, [224, 224])
    ref = TF.normalize(TF.to_tensor(ref), cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD)
    assert out.shape == (3, 224, 224) and torch.equal(out, ref)


def test_train_transform_order_and_messages(tmp_path, caplog):
    cfg = tiny_cfg(str(tmp_path), str(tmp_path))
    cfg.INPUT.SIZE = (224, 224)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    with caplog.at_level(logging.INFO):
        tfm = build_transform(cfg, is_train=True)
    names = [type(t).__name__ for t in tfm.transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert tfm.transforms[0].interpolation == INTERPOLATION_MODES["bicubic"]
    assert "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))" in caplog.text
    assert "+ to torch tensor of range [0, 1]" in caplog.text
    cfg.INPUT.TRANSFORMS = ("random_flip", "bogus")
    with pytest.raises(ConfigError, match="bogus"):
        build_transform(cfg, is_train=True)
    cfg.INPUT.TRANSFORMS = ("random_flip",)
    tfm = build_transform(cfg, is_train=True)
    assert type(tfm.transforms[0]).__name__ == "Resize"  # squash resize without any crop
    cfg.INPUT.NO_TRANSFORM = True
    assert build_transform(cfg, is_train=True) is None
