#!/usr/bin/env python
"""Epoch time of the training loader with and without the in-memory image cache (``DATALOADER.IMAGE_CACHE_MB``).

    python bench/data_cache.py                       # 1,000 generated JPEGs (500x375), 2 epochs each way
    python bench/data_cache.py --images 16000        # the 16 shots x 1,000 classes case of the issue
    python bench/data_cache.py --workers 4 --size 224

A generated split of JPEG files (ImageNet-like 500x375, smooth colour fields + noise, quality 90) is read through
the engine's own loader (``dassl.data.data_manager.build_data_loader`` / ``DatasetWrapper``) with CoOp's training
transform (random resized crop to ``--size``, flip, normalize), batch 32. Without the cache every epoch decodes
every file; with it, the split is decoded once when the loader is built (reported separately) and each epoch starts
from the cached images. Both runs use the same seed; the script checks that every batch is identical (exit 1
otherwise; compared by SHA-256 digests of each batch) and prints the median epoch times and their ratio.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def make_split(folder: str, n: int, classes: int = 100) -> list:
    from dassl.data.datasets import Datum

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float32)
    items = []
    for i in range(n):
        path = os.path.join(folder, f"{i:05d}.jpg")
        if not os.path.exists(path):
            a, b, c = rng.uniform(0.005, 0.03, 3)
            base = np.stack([np.sin(xx * a + i), np.cos(yy * b), np.sin((xx + yy) * c)], -1) * 100 + 128
            pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
        items.append(Datum(impath=path, label=i % classes, classname=f"c{i % classes}"))
    return items


def _digest(batch: dict) -> tuple:
    """SHA-256 of a batch's image tensor and labels (dtype, shape and bytes): equal digests = identical batches."""
    img, label = batch["img"].contiguous(), batch["label"].contiguous()
    h = hashlib.sha256(f"{img.dtype}{tuple(img.shape)}{label.tolist()}".encode())
    h.update(img.numpy().tobytes())
    return h.hexdigest(), len(label)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (median)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--workers", type=int, default=0, help="DATALOADER.NUM_WORKERS (default 0: one process)")
    p.add_argument("--folder", default=None, help="keep the generated JPEGs here (default: a temporary folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from dassl.config import get_cfg_default
    from dassl.data.data_manager import build_data_loader
    from dassl.data.transforms import build_transform
    from dassl.utils.tools import set_random_seed

    tmp = None if args.folder else tempfile.TemporaryDirectory(prefix="data-cache-")
    folder = args.folder or tmp.name
    os.makedirs(folder, exist_ok=True)
    t0 = time.perf_counter()
    items = make_split(folder, args.images)
    print(f"{len(items)} JPEGs (500x375) in {folder} ({time.perf_counter() - t0:.0f} s to generate)")

    def run(cache_mb: float):
        cfg = get_cfg_default()
        cfg.INPUT.SIZE = (args.size, args.size)
        cfg.INPUT.INTERPOLATION = "bicubic"
        cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
        cfg.DATALOADER.NUM_WORKERS = args.workers
        cfg.DATALOADER.IMAGE_CACHE_MB = cache_mb
        cfg.USE_CUDA = False
        set_random_seed(1)
        t_build = time.perf_counter()
        loader = build_data_loader(cfg, "RandomSampler", items, 32, tfm=build_transform(cfg, is_train=True),
                                   is_train=True, name="train")
        t_build = time.perf_counter() - t_build
        epochs, first = [], []
        for e in range(args.epochs):
            t = time.perf_counter()
            for batch in loader:
                if e == 0:  # a digest per batch: 16k images of batches would not fit in memory twice
                    first.append(_digest(batch))
            epochs.append(time.perf_counter() - t)
        return t_build, epochs, first, loader.dataset

    b0, e0, first0, _ = run(0)
    b1, e1, first1, ds = run(1e6)
    same = len(first0) == len(first1) and first0 == first1
    m0, m1 = statistics.median(e0), statistics.median(e1)
    print(f"cache: {len(ds._cache)} images, {ds._cache.used / 2**20:.0f} MiB (decoded 500x375 RGB)")
    print(f"{'':<14} {'build s':>8} {'epoch s (median of ' + str(args.epochs) + ')':>24}")
    print(f"{'no cache':<14} {b0:8.2f} {m0:24.2f}")
    print(f"{'cache':<14} {b1:8.2f} {m1:24.2f}")
    print(f"epoch time with / without cache: {m1 / m0:.2f} (workers={args.workers}, size={args.size})")
    print(f"batches identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
