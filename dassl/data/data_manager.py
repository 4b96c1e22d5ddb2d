"""``DataManager`` and ``DatasetWrapper`` (Dassl ``dassl.data``)."""
from __future__ import annotations

import logging

import torch
from tabulate import tabulate
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import RandomSampler, SequentialSampler

from dassl.utils.errors import BadImageError, ConfigError, DataNotFoundError
from dassl.utils.tools import read_image

from .image_check import bad_image_message, check_split_images

from .datasets import build_dataset
from .transforms import INTERPOLATION_MODES, build_transform
from .transforms.pil_ops import Compose, Normalize, Resize, ToTensor

logger = logging.getLogger(__name__)

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader", "build_sampler", "AVAI_SAMPLERS"]

AVAI_SAMPLERS = ["RandomSampler", "SequentialSampler"]


def build_sampler(sampler_type: str, cfg=None, data_source=None, batch_size: int = 32, n_domain: int = 0,
                  n_ins: int = 16):
    """``RandomSampler`` or ``SequentialSampler`` over ``data_source``.

    Raises:
        ConfigError: any other sampler name (the DA/DG samplers are not part of this engine).
    """
    if sampler_type == "RandomSampler":
        return RandomSampler(data_source)
    if sampler_type == "SequentialSampler":
        return SequentialSampler(data_source)
    raise ConfigError(f"unknown sampler {sampler_type!r} (DATALOADER.*.SAMPLER); supported: {', '.join(AVAI_SAMPLERS)}")


def build_data_loader(cfg, sampler_type: str = "SequentialSampler", data_source=None, batch_size: int = 64,
                      n_domain: int = 0, n_ins: int = 2, tfm=None, is_train: bool = True, dataset_wrapper=None,
                      name: str = "data"):
    """A torch ``DataLoader`` over ``dataset_wrapper(cfg, data_source, tfm, is_train)``.

    ``drop_last = is_train and len(data_source) >= batch_size`` (so a few-shot set smaller than a batch
    still trains on one partial batch).

    Raises:
        DataNotFoundError: the loader would be empty.
    """
    if not data_source:
        raise DataNotFoundError(f"the {name} split of dataset {cfg.DATASET.NAME!r} is empty (no images found)")
    sampler = build_sampler(sampler_type, cfg=cfg, data_source=data_source, batch_size=batch_size,
                            n_domain=n_domain, n_ins=n_ins)
    if dataset_wrapper is None:
        dataset_wrapper = DatasetWrapper
    wrapper = dataset_wrapper(cfg, data_source, transform=tfm, is_train=is_train)
    if getattr(wrapper, "split_name", None) is None:
        wrapper.split_name = name
    skip_bad = bool(cfg.DATASET.get("SKIP_BAD_IMAGES", False))
    data_loader = torch.utils.data.DataLoader(
        wrapper,
        batch_size=batch_size,
        **({"collate_fn": _collate_skipping_bad} if skip_bad else {}),
        sampler=sampler,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=is_train and len(data_source) >= batch_size,
        pin_memory=(torch.cuda.is_available() and cfg.USE_CUDA),
    )
    if len(data_loader) == 0:
        raise DataNotFoundError(f"the {name} data loader is empty ({len(data_source)} items, batch size {batch_size})")
    return data_loader


def check_dataset_images(dataset, skip: bool) -> None:
    """Header-check the images of every split (:mod:`dassl.data.image_check`); with ``skip`` drop the bad ones."""
    done: dict[int, list] = {}
    for attr, split in (("_train_x", "train"), ("_train_u", "train_u"), ("_val", "val"), ("_test", "test")):
        items = getattr(dataset, attr, None)
        if not items:
            continue
        if id(items) not in done:  # e.g. ImageNet's val is its test list
            done[id(items)] = check_split_images(items, split, skip)
        setattr(dataset, attr, done[id(items)])


def _collate_skipping_bad(batch):
    """``default_collate`` without the items of unreadable images (``DATASET.SKIP_BAD_IMAGES``)."""
    from torch.utils.data import default_collate

    from dassl.utils.errors import BadImageError

    kept = [item for item in batch if item is not None]
    if not kept:
        raise BadImageError("every image of a batch is unreadable (see the warnings above): fix the image files")
    return default_collate(kept)


class DataManager:
    """Builds the dataset and its loaders (``train_loader_x``, ``train_loader_u``, ``val_loader``, ``test_loader``).

    Args:
        cfg: the config.
        custom_tfm_train, custom_tfm_test: transforms replacing the ones built from ``cfg.INPUT``.
        dataset_wrapper: a ``DatasetWrapper``-like class.
    """

    def __init__(self, cfg, custom_tfm_train=None, custom_tfm_test=None, dataset_wrapper=None) -> None:
        dataset = build_dataset(cfg)
        if cfg.DATASET.get("CHECK_IMAGES", True):
            check_dataset_images(dataset, skip=bool(cfg.DATASET.get("SKIP_BAD_IMAGES", False)))

        if custom_tfm_train is None:
            tfm_train = build_transform(cfg, is_train=True)
        else:
            logger.info("* Using custom transform for training")
            tfm_train = custom_tfm_train
        if custom_tfm_test is None:
            tfm_test = build_transform(cfg, is_train=False)
        else:
            logger.info("* Using custom transform for testing")
            tfm_test = custom_tfm_test

        train_loader_x = build_data_loader(
            cfg, sampler_type=cfg.DATALOADER.TRAIN_X.SAMPLER, data_source=dataset.train_x,
            batch_size=cfg.DATALOADER.TRAIN_X.BATCH_SIZE, n_domain=cfg.DATALOADER.TRAIN_X.N_DOMAIN,
            n_ins=cfg.DATALOADER.TRAIN_X.N_INS, tfm=tfm_train, is_train=True, dataset_wrapper=dataset_wrapper,
            name="train_x",
        )

        train_loader_u = None
        if dataset.train_u:
            u = cfg.DATALOADER.TRAIN_X if cfg.DATALOADER.TRAIN_U.SAME_AS_X else cfg.DATALOADER.TRAIN_U
            train_loader_u = build_data_loader(
                cfg, sampler_type=u.SAMPLER, data_source=dataset.train_u, batch_size=u.BATCH_SIZE,
                n_domain=u.N_DOMAIN, n_ins=u.N_INS, tfm=tfm_train, is_train=True, dataset_wrapper=dataset_wrapper,
                name="train_u",
            )

        val_loader = None
        if dataset.val:
            val_loader = build_data_loader(
                cfg, sampler_type=cfg.DATALOADER.TEST.SAMPLER, data_source=dataset.val,
                batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, tfm=tfm_test, is_train=False,
                dataset_wrapper=dataset_wrapper, name="val",
            )

        test_loader = build_data_loader(
            cfg, sampler_type=cfg.DATALOADER.TEST.SAMPLER, data_source=dataset.test,
            batch_size=cfg.DATALOADER.TEST.BATCH_SIZE, tfm=tfm_test, is_train=False,
            dataset_wrapper=dataset_wrapper, name="test",
        )

        self._num_classes = dataset.num_classes
        self._num_source_domains = len(cfg.DATASET.SOURCE_DOMAINS)
        self._lab2cname = dataset.lab2cname
        self.dataset = dataset
        self.train_loader_x = train_loader_x
        self.train_loader_u = train_loader_u
        self.val_loader = val_loader
        self.test_loader = test_loader

        if cfg.VERBOSE:
            self.show_dataset_summary(cfg)

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def num_source_domains(self) -> int:
        return self._num_source_domains

    @property
    def lab2cname(self) -> dict[int, str]:
        return self._lab2cname

    def show_dataset_summary(self, cfg) -> None:
        """Log Dassl's summary table (tabulate "simple" format, no headers)."""
        dataset_name = cfg.DATASET.NAME
        source_domains = cfg.DATASET.SOURCE_DOMAINS
        target_domains = cfg.DATASET.TARGET_DOMAINS
        table = [["Dataset", dataset_name]]
        if source_domains:
            table.append(["Source", source_domains])
        if target_domains:
            table.append(["Target", target_domains])
        table.append(["# classes", f"{self.num_classes:,}"])
        table.append(["# train_x", f"{len(self.dataset.train_x):,}"])
        if self.dataset.train_u:
            table.append(["# train_u", f"{len(self.dataset.train_u):,}"])
        if self.dataset.val:
            table.append(["# val", f"{len(self.dataset.val):,}"])
        table.append(["# test", f"{len(self.dataset.test):,}"])
        logger.info(tabulate(table))


class DatasetWrapper(TorchDataset):
    """Reads images and applies the transform(s); items are dicts.

    Each item: ``img`` (tensor ``[3, H, W]``, or a list of ``k_tfm`` tensors), ``label``, ``domain``,
    ``impath``, ``index``; ``img2``, ``img3``... when ``transform`` is a list; ``img0`` (resize +
    ToTensor (+ normalize), no augmentation) with ``DATALOADER.RETURN_IMG0``.
    """

    split_name: str | None = None  # set by build_data_loader; named in unreadable-image errors

    def __init__(self, cfg, data_source, transform=None, is_train: bool = False) -> None:
        self.cfg = cfg
        self.data_source = data_source
        self.transform = transform
        self.is_train = is_train
        self.k_tfm = cfg.DATALOADER.K_TRANSFORMS if is_train else 1
        self.return_img0 = cfg.DATALOADER.RETURN_IMG0

        if self.k_tfm > 1 and transform is None:
            raise ConfigError("DATALOADER.K_TRANSFORMS > 1 needs a transform (INPUT.NO_TRANSFORM is set)")

        interp_mode = INTERPOLATION_MODES.get(cfg.INPUT.INTERPOLATION)
        if interp_mode is None:
            raise ConfigError(f"INPUT.INTERPOLATION={cfg.INPUT.INTERPOLATION!r} is not supported")
        to_tensor = [Resize(tuple(cfg.INPUT.SIZE), interpolation=interp_mode), ToTensor()]
        if "normalize" in cfg.INPUT.TRANSFORMS:
            to_tensor.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
        self.to_tensor = Compose(to_tensor)
        # DATALOADER.IMAGE_CACHE_MB: decoded training images kept in memory (dassl.data.image_cache; exact pixels)
        self._cache, self._cached_transform = None, transform
        if is_train:
            from .image_cache import build_image_cache

            self._cache, self._cached_transform = build_image_cache(cfg, data_source, transform, read_image)

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, idx: int) -> dict:
        item = self.data_source[idx]
        output = {"label": item.label, "domain": item.domain, "impath": item.impath, "index": idx}
        transform = self.transform
        img0 = self._cache.get(item.impath) if self._cache is not None else None
        if img0 is not None:
            transform = self._cached_transform  # the steps after the cached (deterministic) prefix
        else:
            try:
                img0 = read_image(item.impath)
            except (OSError, ValueError, SyntaxError) as e:  # truncated / corrupt pixel data, vanished file
                split = getattr(self, "split_name", None) or ("train" if self.is_train else "test")
                reason = f"{type(e).__name__}: {e}"
                if self.cfg.DATASET.get("SKIP_BAD_IMAGES", False):
                    logger.warning(f"WARNING: skipped unreadable image ({split}): {item.impath} ({reason})")
                    return None
                raise BadImageError(bad_image_message(item.impath, split, reason)) from None

        if transform is not None:
            if isinstance(transform, (list, tuple)):
                for i, tfm in enumerate(transform):
                    img = self._transform_image(tfm, img0)
                    keyname = "img" if i == 0 else f"img{i + 1}"
                    output[keyname] = img
            else:
                output["img"] = self._transform_image(transform, img0)
        else:
            output["img"] = img0

        if self.return_img0:
            output["img0"] = self.to_tensor(img0)
        return output

    def _transform_image(self, tfm, img0):
        img_list = [tfm(img0) for _ in range(self.k_tfm)]
        return img_list[0] if len(img_list) == 1 else img_list
