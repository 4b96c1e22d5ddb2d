"""The few image transforms every run uses, without importing torchvision at start-up.

Importing ``torchvision`` costs about 3 s on a CPU box (its ``ops`` package imports ``torch._dynamo``), more than
the rest of a short evaluation. The default pipelines (train: random resized crop, flip, to-tensor, normalize;
test: resize, centre crop, to-tensor, normalize) only need the classes below, which reproduce the behaviour of
the torchvision classes of the same name on PIL images exactly: same output sizes and rounding, the same PIL
calls, the same torch random-number draws in the same order, the same ``repr`` (the run header logs it).
``tests/test_pil_ops.py`` checks pixels, random-number state and ``repr`` against torchvision itself.

Anything that is not a PIL image (tensors, numpy arrays), and every other transform, is handed to torchvision,
imported on first use (:func:`tv`).
"""
from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from enum import Enum

import numpy as np
import torch
from PIL import Image

__all__ = ["InterpolationMode", "Compose", "Resize", "CenterCrop", "RandomResizedCrop", "RandomHorizontalFlip",
           "ToTensor", "Normalize", "tv", "to_torchvision_mode"]


def tv():
    """``torchvision.transforms`` (imported on first use)."""
    import torchvision.transforms

    return torchvision.transforms


class InterpolationMode(Enum):
    """Same names and values as ``torchvision.transforms.InterpolationMode``."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_MODES = {
    InterpolationMode.NEAREST: Image.NEAREST,
    InterpolationMode.BILINEAR: Image.BILINEAR,
    InterpolationMode.BICUBIC: Image.BICUBIC,
    InterpolationMode.BOX: Image.BOX,
    InterpolationMode.HAMMING: Image.HAMMING,
    InterpolationMode.LANCZOS: Image.LANCZOS,
}
_FROM_PIL_INT = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR, 3: InterpolationMode.BICUBIC,
                 4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}


def _mode(interpolation) -> InterpolationMode:
    """Our mode from ours, torchvision's (same value) or a Pillow integer constant."""
    if isinstance(interpolation, InterpolationMode):
        return interpolation
    if isinstance(interpolation, int):
        return _FROM_PIL_INT[interpolation]
    value = getattr(interpolation, "value", None)
    if isinstance(value, str):
        return InterpolationMode(value)
    raise TypeError("interpolation should be an InterpolationMode or a Pillow integer constant")


def to_torchvision_mode(interpolation):
    """torchvision's ``InterpolationMode`` with the same value (imports torchvision)."""
    return tv().InterpolationMode(_mode(interpolation).value)


def _is_pil(img) -> bool:
    return isinstance(img, Image.Image)


def _pair(size, error_msg: str):
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(error_msg)
    return size


def _resize_pil(img: Image.Image, size, interpolation: InterpolationMode, max_size=None) -> Image.Image:
    """torchvision ``F.resize`` on a PIL image: a short-edge target keeps the aspect ratio (int truncation)."""
    width, height = img.size
    if isinstance(size, int):
        size = [size]
    if len(size) == 1:
        short, long = (width, height) if width <= height else (height, width)
        new_short = size[0]
        new_long = int(new_short * long / short)
        if max_size is not None:
            if max_size <= new_short:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the "
                                 f"smaller edge size = {size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    else:
        new_h, new_w = size[0], size[1]
    if (height, width) == (new_h, new_w):
        return img
    if interpolation not in _PIL_MODES:
        raise ValueError(f"interpolation {interpolation.value!r} is not supported for PIL images")
    return img.resize((new_w, new_h), _PIL_MODES[interpolation])


class Compose:
    """Apply transforms in order (``repr`` as torchvision's)."""

    def __init__(self, transforms) -> None:
        self.transforms = transforms

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{self.__class__.__name__}({body}\n)"


class Resize:
    """Resize to ``(h, w)`` or the shorter edge to ``size`` (keeping the aspect ratio)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True) -> None:
        if not isinstance(size, (int, Sequence)):
            raise TypeError(f"Size should be int or sequence. Got {type(size)}")
        if isinstance(size, Sequence) and len(size) not in (1, 2):
            raise ValueError("If size is a sequence, it should have 1 or 2 values")
        self.size = size
        self.max_size = max_size
        self.interpolation = _mode(interpolation)
        self.antialias = antialias

    def __call__(self, img):
        if _is_pil(img):
            return _resize_pil(img, self.size, self.interpolation, self.max_size)
        return tv().functional.resize(img, self.size, to_torchvision_mode(self.interpolation), self.max_size,
                                      self.antialias)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(size={self.size}, interpolation={self.interpolation.value}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop:
    """Crop the centre ``(h, w)`` (offsets rounded like torchvision; smaller images are padded with 0)."""

    def __init__(self, size) -> None:
        self.size = _pair(size, "Please provide only two dimensions (h, w) for size.")

    def __call__(self, img):
        crop_h, crop_w = self.size
        if not _is_pil(img) or crop_w > img.size[0] or crop_h > img.size[1]:
            return tv().functional.center_crop(img, list(self.size))  # tensors, and the padding case
        width, height = img.size
        top = int(round((height - crop_h) / 2.0))
        left = int(round((width - crop_w) / 2.0))
        return img.crop((left, top, left + crop_w, top + crop_h))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(size={self.size})"


class RandomResizedCrop:
    """A random area/aspect crop resized to ``size`` (torch RNG draws as torchvision's, in the same order)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True) -> None:
        self.size = _pair(size, "Please provide only two dimensions (h, w) for size.")
        if not isinstance(scale, Sequence):
            raise TypeError("Scale should be a sequence")
        if not isinstance(ratio, Sequence):
            raise TypeError("Ratio should be a sequence")
        if (scale[0] > scale[1]) or (ratio[0] > ratio[1]):
            import warnings

            warnings.warn("Scale and ratio should be of kind (min, max)")
        self.interpolation = _mode(interpolation)
        self.antialias = antialias
        self.scale = scale
        self.ratio = ratio

    @staticmethod
    def get_params(width: int, height: int, scale, ratio) -> tuple[int, int, int, int]:
        """``(top, left, h, w)``: up to 10 tries of a random area and log-uniform aspect, else a central crop."""
        area = height * width
        log_ratio = torch.log(torch.tensor(ratio))
        for _ in range(10):
            target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
            aspect = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = torch.randint(0, height - h + 1, size=(1,)).item()
                left = torch.randint(0, width - w + 1, size=(1,)).item()
                return top, left, h, w
        in_ratio = float(width) / float(height)
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img):
        if not _is_pil(img):
            t = tv().RandomResizedCrop(self.size, self.scale, self.ratio, to_torchvision_mode(self.interpolation),
                                       self.antialias)
            return t(img)
        top, left, h, w = self.get_params(img.size[0], img.size[1], self.scale, self.ratio)
        img = img.crop((left, top, left + w, top + h))
        return _resize_pil(img, list(self.size), self.interpolation)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(size={self.size}, scale={tuple(round(s, 4) for s in self.scale)}, "
                f"ratio={tuple(round(r, 4) for r in self.ratio)}, interpolation={self.interpolation.value}, "
                f"antialias={self.antialias})")


class RandomHorizontalFlip:
    """Mirror with probability ``p`` (one ``torch.rand(1)`` draw per call)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            if _is_pil(img):
                return img.transpose(Image.FLIP_LEFT_RIGHT)
            return tv().functional.hflip(img)
        return img

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"


_NP_TYPES = {"I": np.int32, "I;16" if sys.byteorder == "little" else "I;16B": np.int16, "F": np.float32}


class ToTensor:
    """PIL image ``[H, W, C]`` -> float tensor ``[C, H, W]`` (8-bit images scaled to [0, 1])."""

    def __call__(self, pic):
        if not _is_pil(pic):
            return tv().functional.to_tensor(pic)
        img = torch.from_numpy(np.array(pic, _NP_TYPES.get(pic.mode, np.uint8), copy=True))
        if pic.mode == "1":
            img = 255 * img
        img = img.view(pic.size[1], pic.size[0], len(pic.getbands())).permute((2, 0, 1)).contiguous()
        if img.dtype == torch.uint8:
            return img.to(dtype=torch.get_default_dtype()).div(255)
        return img

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class Normalize:
    """``(x - mean) / std`` per channel of a float tensor (out of place unless ``inplace``)."""

    def __init__(self, mean, std, inplace: bool = False) -> None:
        self.mean, self.std, self.inplace = mean, std, inplace

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.ndim < 3:
            return tv().functional.normalize(tensor, self.mean, self.std, self.inplace)  # its own errors
        if not self.inplace:
            tensor = tensor.clone()
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device)
        if (std == 0).any():
            raise ValueError(f"std evaluated to zero after conversion to {tensor.dtype}, leading to division by zero.")
        if mean.ndim == 1:
            mean = mean.view(-1, 1, 1)
        if std.ndim == 1:
            std = std.view(-1, 1, 1)
        return tensor.sub_(mean).div_(std)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(mean={self.mean}, std={self.std})"
