"""CLIP weights from a TorchScript archive: state-dict extraction as data (``clip.archive``) vs ``torch.jit.load``.

Writes a ViT-B/16-sized archive in OpenAI's layout (random weights; fp16 weights, fp32 norms; the
``input_resolution``/``context_length``/``vocab_size`` entries; ~300 MB) into a temporary folder (or ``--path``),
then times, interleaved, ``read_torchscript_state_dict(path)`` (restricted unpickler, storages read straight
from the file, no TorchScript run) against ``torch.jit.load(path).state_dict()`` (what the code did before).

    python bench/clip_archive_load.py                  # 5 repeats each
    python bench/clip_archive_load.py --repeats 9 --path /tmp/vitb16.pt --keep

Prints both medians and the ratio (jit / ours: > 1 means ours is faster); exits 1 if the two state dicts differ
in keys, order, dtype, shape or any value.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clip.archive import read_torchscript_state_dict  # noqa: E402

VIT_B_16 = dict(
    embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
    context_length=77, vocab_size=49408, transformer_width=512, transformer_heads=8, transformer_layers=12,
)


def write_archive(path: str) -> None:
    from tests.helpers.tiny_clip import write_tiny_weights

    write_tiny_weights(path, seed=0, torchscript=True, **VIT_B_16)


def jit_state_dict(path: str) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(torch.jit.load(path, map_location="cpu").state_dict())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--path", default="", help="archive file (written if missing; default: a temporary file)")
    p.add_argument("--keep", action="store_true", help="keep the generated archive")
    args = p.parse_args(argv)

    tmp = None
    path = args.path
    if not path:
        tmp = tempfile.mkdtemp(prefix="clip_archive_bench")
        path = os.path.join(tmp, "ViT-B-16.pt")
    if not os.path.isfile(path):
        start = time.perf_counter()
        write_archive(path)
        print(f"wrote {path} ({os.path.getsize(path) / 2**20:.0f} MiB) in {time.perf_counter() - start:.1f} s")

    ours_t, jit_t = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = read_torchscript_state_dict(path)
        ours_t.append(time.perf_counter() - start)
        del ours
        start = time.perf_counter()
        ref = jit_state_dict(path)
        jit_t.append(time.perf_counter() - start)
        del ref

    ours, ref = read_torchscript_state_dict(path), jit_state_dict(path)
    same = list(ours) == list(ref) and all(
        ours[k].dtype == v.dtype and ours[k].shape == v.shape and torch.equal(ours[k], v) for k, v in ref.items()
    )
    n = sum(v.numel() for v in ref.values())
    a, b = statistics.median(ours_t), statistics.median(jit_t)
    print(f"{len(ref)} tensors, {n / 1e6:.1f} M values, median of {args.repeats}")
    print(f"torch.jit.load(...).state_dict(): {b * 1000:.0f} ms")
    print(f"clip.archive (data only):         {a * 1000:.0f} ms")
    print(f"ratio jit / ours: {b / a:.2f}x   identical state dicts: {same}")
    if tmp is not None and not args.keep:
        shutil.rmtree(tmp)
    elif tmp is not None:
        print(f"kept {path}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
