#!/usr/bin/env python
"""Cost of the start-up header check of every split image (``dassl.data.image_check``), on a generated split.

Writes ``--images`` files (default 10,000: JPEG 500x375 like ImageNet's, and PNG 32x32 like SynthShapes') into a
temporary folder, then times ``check_split_images`` over them (median of ``--repeats`` passes) against a full
decode (``read_image``: PIL open + convert to RGB) of a sample, and prints CPU seconds (and wall seconds, which on a shared machine include waiting for a core) per 10,000 images. The budget of
issue 12 is "a few seconds per 10,000 images"; the script exits 1 when the header check exceeds ``--budget``.
It also checks that the header check catches a zero-byte and a random-bytes file among them (exit 1 if not).
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class _Item:
    def __init__(self, impath: str) -> None:
        self.impath = impath


def _payload(fmt: str) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    size = (500, 375) if fmt == "JPEG" else (32, 32)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, quality=90) if fmt == "JPEG" else Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--decode-sample", type=int, default=500, help="images fully decoded for the comparison")
    p.add_argument("--budget", type=float, default=3.0, help="seconds per 10,000 images")
    args = p.parse_args(argv)

    from dassl.data.image_check import check_split_images
    from dassl.utils.errors import BadImageError
    from dassl.utils.tools import read_image

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("JPEG", "PNG"):
            data = _payload(fmt)
            items = []
            for i in range(args.images):
                folder = os.path.join(tmp, fmt, f"class{i % 100:03d}")
                os.makedirs(folder, exist_ok=True)
                path = os.path.join(folder, f"{i}.{fmt.lower()}")
                with open(path, "wb") as f:
                    f.write(data)
                items.append(_Item(path))
            times, cpu = [], []
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                check_split_images(items, "bench", skip=False)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            wall = statistics.median(times) * 10000 / args.images
            header = statistics.median(cpu) * 10000 / args.images  # CPU time: robust on a shared machine
            sample = items[: args.decode_sample]
            c0 = time.process_time()
            for it in sample:
                read_image(it.impath)
            decode = (time.process_time() - c0) * 10000 / len(sample)
            verdict = "ok" if header <= args.budget else "OVER BUDGET"
            print(f"{fmt:4s} {len(data) / 1024:6.1f} KiB/file: header check {header:5.2f} s CPU ({wall:5.2f} s wall) "
                  f"per 10,000 images (median of {args.repeats}; budget {args.budget:.1f} s CPU: {verdict}); "
                  f"full decode {decode:6.2f} s CPU per 10,000 -> header check {decode / header:.0f}x cheaper")
            ok &= header <= args.budget
        bad = [os.path.join(tmp, "zero.jpg"), os.path.join(tmp, "random.jpg")]
        open(bad[0], "wb").close()
        with open(bad[1], "wb") as f:
            f.write(os.urandom(2048))
        for path in bad:
            try:
                check_split_images([_Item(path)], "bench", skip=False)
                print(f"NOT caught: {path}")
                ok = False
            except BadImageError:
                pass
        print("zero-byte and random-bytes files caught" if ok else "check failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
