"""Optional in-memory cache of decoded training images (``DATALOADER.IMAGE_CACHE_MB``, 0 = off).

Few-shot training sets are small (16 shots x 1,000 classes = 16k images) and every epoch decodes each JPEG
again. With the cache, the training split is decoded once when its loader is built (a thread pool: Pillow decodes
without the GIL) and each later epoch starts from the cached image. What is cached is the image after the leading
*deterministic* steps of the training transform (a squash ``Resize`` when the pipeline has no random crop; nothing
before a random crop, so then the full decoded image), so the random augmentations that follow see exactly the same
input and draw the same random numbers: the pixels of every batch are identical with and without the cache
(``tests/test_image_cache.py``). Images are added until the size limit is reached; the rest are read from disk as
usual. Each use gets a copy, so a transform can never alter the cached image. With loader workers the cache is
built in the main process before they start and is shared with them (fork).
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from .transforms import pil_ops

logger = logging.getLogger(__name__)

__all__ = ["ImageCache", "split_deterministic_prefix"]

#: transforms whose output depends only on the image (no random numbers): may run before caching
_DETERMINISTIC = (pil_ops.Resize, pil_ops.CenterCrop)


def split_deterministic_prefix(transform) -> tuple[list, object]:
    """``(prefix, rest)`` of a :class:`pil_ops.Compose` (the leading deterministic PIL steps, the remaining
    transform); ``([], transform)`` for anything else (a list of transforms, a custom callable)."""
    if not isinstance(transform, pil_ops.Compose):
        return [], transform
    steps = list(transform.transforms)
    n = 0
    while n < len(steps) and type(steps[n]) in _DETERMINISTIC:
        n += 1
    return steps[:n], pil_ops.Compose(steps[n:])


def _nbytes(img: Image.Image) -> int:
    return img.width * img.height * len(img.getbands())


class ImageCache:
    """``impath -> PIL image`` (after ``prefix``), at most ``limit_bytes`` of pixels."""

    def __init__(self, limit_bytes: int, prefix: list | None = None) -> None:
        self.limit = int(limit_bytes)
        self.prefix = list(prefix or [])
        self.used = 0
        self._images: dict[str, Image.Image] = {}

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, path: str) -> bool:
        return path in self._images

    def get(self, path: str) -> Image.Image | None:
        """A copy of the cached image, or None."""
        img = self._images.get(path)
        return None if img is None else img.copy()

    def _load(self, path: str, read) -> Image.Image | None:
        try:
            img = read(path)
            for step in self.prefix:
                img = step(img)
            img.load()
            return img
        except Exception:  # unreadable: not cached; the loader reports it as it always does
            return None

    def fill(self, paths: list[str], read, threads: int = 1) -> None:
        """Decode ``paths`` (in order, ``threads`` at a time) and keep them while they fit in the limit."""
        todo = [p for p in dict.fromkeys(paths) if p not in self._images]
        threads = max(1, int(threads))
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for start in range(0, len(todo), 64 * threads):
                if self.used >= self.limit:
                    break
                chunk = todo[start:start + 64 * threads]
                for path, img in zip(chunk, pool.map(lambda p: self._load(p, read), chunk)):
                    if img is None:
                        continue
                    size = _nbytes(img)
                    if self.used + size > self.limit:
                        continue
                    self._images[path] = img
                    self.used += size


def build_image_cache(cfg, data_source, transform, read) -> tuple[ImageCache | None, object]:
    """The cache of a training split (None when ``DATALOADER.IMAGE_CACHE_MB`` is 0) and the transform to apply to
    cached images (the steps after the cached prefix)."""
    limit_mb = float(cfg.DATALOADER.get("IMAGE_CACHE_MB", 0) or 0)
    if limit_mb <= 0 or not data_source:
        return None, transform
    prefix, rest = split_deterministic_prefix(transform)
    if cfg.DATALOADER.RETURN_IMG0:  # img0 needs the decoded image itself
        prefix, rest = [], transform
    cache = ImageCache(int(limit_mb * 2**20), prefix)
    threads = min(max(1, int(cfg.DATALOADER.NUM_WORKERS)), os.cpu_count() or 1)
    cache.fill([item.impath for item in data_source], read, threads)
    after = ", after " + " + ".join(type(p).__name__ for p in prefix) if prefix else ""
    logger.info(f"Image cache: {len(cache)}/{len(data_source)} training images in memory "
                f"({cache.used / 2**20:.1f} of {limit_mb:g} MiB{after})")
    return cache, rest
