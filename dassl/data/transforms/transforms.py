"""Image transforms (Dassl ``dassl.data.transforms``).

Training pipeline order (each step only when its name is in ``INPUT.TRANSFORMS``): squash resize to
``SIZE`` (only without random_crop / random_resized_crop), random_translation, random_crop,
random_resized_crop, random_flip, AutoAugment policies, RandAugment variants, colorjitter,
randomgrayscale, gaussian_blur, ToTensor, cutout, normalize, gaussian_noise, instance_norm.

Test pipeline (fixed): resize the shorter edge to ``max(SIZE)`` with the configured interpolation
(torchvision ``Resize`` on PIL images), centre crop ``SIZE``, ToTensor, normalize, instance_norm.
"""
from __future__ import annotations

import logging
import random

import torch
from .pil_ops import (  # torchvision-identical, without importing torchvision (the rest: tv(), on use)
    CenterCrop,
    Compose,
    InterpolationMode,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    tv,
)

from dassl.utils.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["AVAI_CHOICES", "INTERPOLATION_MODES", "build_transform", "Cutout", "GaussianNoise",
           "InstanceNormalization", "Random2DTranslation"]

AVAI_CHOICES = [
    "random_flip",
    "random_resized_crop",
    "normalize",
    "instance_norm",
    "random_crop",
    "random_translation",
    "center_crop",  # this has become a default op at test time
    "cutout",
    "imagenet_policy",
    "cifar10_policy",
    "svhn_policy",
    "randaugment",
    "randaugment_fixmatch",
    "randaugment2",
    "gaussian_noise",
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
]

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}


class Random2DTranslation:
    """With probability ``p`` enlarge by 1/8 and randomly crop back to ``(height, width)``; else resize."""

    def __init__(self, height: int, width: int, p: float = 0.5, interpolation=InterpolationMode.BILINEAR) -> None:
        self.height, self.width, self.p, self.interpolation = height, width, p, interpolation

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return Resize((self.height, self.width), interpolation=self.interpolation)(img)
        new_h, new_w = int(round(self.height * 1.125)), int(round(self.width * 1.125))
        resized = Resize((new_h, new_w), interpolation=self.interpolation)(img)
        x1 = int(round(random.uniform(0, new_w - self.width)))
        y1 = int(round(random.uniform(0, new_h - self.height)))
        return resized.crop((x1, y1, x1 + self.width, y1 + self.height))


class InstanceNormalization:
    """Normalise each channel of a ``[C, H, W]`` tensor by its own mean and std."""

    def __init__(self, eps: float = 1e-8) -> None:
        self.eps = eps

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        c, h, w = img.shape
        flat = img.reshape(c, h * w)
        mean = flat.mean(1).view(c, 1, 1)
        std = flat.std(1).view(c, 1, 1)
        return (img - mean) / (std + self.eps)


class Cutout:
    """Zero ``n_holes`` random square patches of side ``length`` in a ``[C, H, W]`` tensor."""

    def __init__(self, n_holes: int = 1, length: int = 16) -> None:
        self.n_holes, self.length = n_holes, length

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:3]
        mask = torch.ones(h, w, dtype=img.dtype)
        for _ in range(self.n_holes):
            y, x = random.randint(0, h - 1), random.randint(0, w - 1)
            y1, y2 = max(0, y - self.length // 2), min(h, y + self.length // 2)
            x1, x2 = max(0, x - self.length // 2), min(w, x + self.length // 2)
            mask[y1:y2, x1:x2] = 0
        return img * mask.expand_as(img)


class GaussianNoise:
    """With probability ``p`` add N(mean, std^2) noise to a tensor."""

    def __init__(self, mean: float = 0.0, std: float = 0.15, p: float = 0.5) -> None:
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if random.uniform(0, 1) > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean


def build_transform(cfg, is_train: bool = True, choices=None):
    """Build the train or test transform from ``cfg.INPUT``.

    Args:
        cfg: the config.
        is_train: training (augmentations) or test (fixed resize + centre crop) pipeline.
        choices: transform names (default ``cfg.INPUT.TRANSFORMS``).

    Returns:
        A ``Compose`` (``dassl.data.transforms.pil_ops``; torchvision's behaviour and ``repr``) (or None with ``INPUT.NO_TRANSFORM``).

    Raises:
        ConfigError: an unknown transform or interpolation name.
    """
    if cfg.INPUT.NO_TRANSFORM:
        logger.info("Note: no transform is applied!")
        return None
    if choices is None:
        choices = cfg.INPUT.TRANSFORMS
    for choice in choices:
        if choice not in AVAI_CHOICES:
            raise ConfigError(f"INPUT.TRANSFORMS: unknown transform {choice!r}; available: {', '.join(AVAI_CHOICES)}")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ConfigError(
            f"INPUT.INTERPOLATION={cfg.INPUT.INTERPOLATION!r} is not supported; choose one of: "
            f"{', '.join(INTERPOLATION_MODES)}"
        )
    target_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_transform_train(cfg, choices, target_size, normalize)
    return _build_transform_test(cfg, choices, target_size, normalize)


def _build_transform_train(cfg, choices, target_size: str, normalize: Normalize) -> Compose:
    logger.info("Building transform_train")
    tfm = []
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = tuple(cfg.INPUT.SIZE)

    conditions = ["random_crop" not in choices, "random_resized_crop" not in choices]
    if all(conditions):
        logger.info(f"+ resize to {target_size}")
        tfm.append(Resize(input_size, interpolation=interp_mode))
    if "random_translation" in choices:
        logger.info("+ random translation")
        tfm.append(Random2DTranslation(input_size[0], input_size[1], interpolation=interp_mode))
    if "random_crop" in choices:
        crop_padding = cfg.INPUT.CROP_PADDING
        logger.info(f"+ random crop (padding = {crop_padding})")
        tfm.append(tv().RandomCrop(input_size, padding=crop_padding))
    if "random_resized_crop" in choices:
        s_ = tuple(cfg.INPUT.RRCROP_SCALE)
        logger.info(f"+ random resized crop (size={input_size}, scale={s_})")
        tfm.append(RandomResizedCrop(input_size, scale=s_, interpolation=interp_mode))
    if "random_flip" in choices:
        logger.info("+ random flip")
        tfm.append(RandomHorizontalFlip())
    if "imagenet_policy" in choices:
        logger.info("+ imagenet policy")
        tfm.append(tv().AutoAugment(tv().AutoAugmentPolicy.IMAGENET))
    if "cifar10_policy" in choices:
        logger.info("+ cifar10 policy")
        tfm.append(tv().AutoAugment(tv().AutoAugmentPolicy.CIFAR10))
    if "svhn_policy" in choices:
        logger.info("+ svhn policy")
        tfm.append(tv().AutoAugment(tv().AutoAugmentPolicy.SVHN))
    if "randaugment" in choices:
        n_, m_ = cfg.INPUT.RANDAUGMENT_N, cfg.INPUT.RANDAUGMENT_M
        logger.info(f"+ randaugment (n={n_}, m={m_})")
        tfm.append(tv().RandAugment(num_ops=n_, magnitude=m_))
    if "randaugment_fixmatch" in choices:
        n_ = cfg.INPUT.RANDAUGMENT_N
        logger.info(f"+ randaugment_fixmatch (n={n_})")
        tfm.append(tv().RandAugment(num_ops=n_))
    if "randaugment2" in choices:
        n_ = cfg.INPUT.RANDAUGMENT_N
        logger.info(f"+ randaugment2 (n={n_})")
        tfm.append(tv().RandAugment(num_ops=n_))
    if "colorjitter" in choices:
        b_, c_ = cfg.INPUT.COLORJITTER_B, cfg.INPUT.COLORJITTER_C
        s_, h_ = cfg.INPUT.COLORJITTER_S, cfg.INPUT.COLORJITTER_H
        logger.info(f"+ color jitter (brightness={b_}, contrast={c_}, saturation={s_}, hue={h_})")
        tfm.append(tv().ColorJitter(brightness=b_, contrast=c_, saturation=s_, hue=h_))
    if "randomgrayscale" in choices:
        logger.info(f"+ random gray scale (p={cfg.INPUT.RGS_P})")
        tfm.append(tv().RandomGrayscale(p=cfg.INPUT.RGS_P))
    if "gaussian_blur" in choices:
        gb_k, gb_p = cfg.INPUT.GB_K, cfg.INPUT.GB_P
        logger.info(f"+ gaussian blur (kernel={gb_k}, p={gb_p})")
        tfm.append(tv().RandomApply([tv().GaussianBlur(gb_k)], p=gb_p))
    logger.info("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "cutout" in choices:
        cutout_n, cutout_len = cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN
        logger.info(f"+ cutout (n_holes={cutout_n}, length={cutout_len})")
        tfm.append(Cutout(cutout_n, cutout_len))
    if "normalize" in choices:
        logger.info(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "gaussian_noise" in choices:
        logger.info(f"+ gaussian noise (mean={cfg.INPUT.GN_MEAN}, std={cfg.INPUT.GN_STD})")
        tfm.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    if "instance_norm" in choices:
        logger.info("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)


def _build_transform_test(cfg, choices, target_size: str, normalize: Normalize) -> Compose:
    logger.info("Building transform_test")
    tfm = []
    interp_mode = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    input_size = tuple(cfg.INPUT.SIZE)

    logger.info(f"+ resize the smaller edge to {max(input_size)}")
    tfm.append(Resize(max(input_size), interpolation=interp_mode))
    logger.info(f"+ {target_size} center crop")
    tfm.append(CenterCrop(input_size))
    logger.info("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "normalize" in choices:
        logger.info(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "instance_norm" in choices:
        logger.info("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)
