#!/usr/bin/env python
"""Evaluation speed: text features once per evaluation (the PromptedCLIP cache) vs recomputed for every test
batch (the reference's path), on the same weights: a small random CLIP (text tower 256x4, ViT 128x2, 32 px)
with a CoOp prompt learner (16 context tokens).

    python bench/eval_speed.py                       # C=100, 10 batches of 32, 3 interleaved repeats
    python bench/eval_speed.py --classes 1000 --batches 20

Both paths are timed in interleaved rounds (naive, cached, naive, cached, ...) and the medians are reported
with their ratio. Exits 1 if the logits of the two paths are not identical.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clip.model import build_clip_from_config  # noqa: E402
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=100, help="number of classes C (default 100)")
    p.add_argument("--batches", type=int, default=10, help="test batches per evaluation (default 10)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds (median; default 3)")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    clip_model = build_clip_from_config(embed_dim=256, transformer_width=256, transformer_heads=4,
                                        transformer_layers=4, vision_width=128, vision_layers=2)
    names = [f"class {i}" for i in range(args.classes)]
    learner = CoOpPromptLearner(names, clip_model, n_ctx=16)
    model = PromptedCLIP(clip_model, learner, Similarity(clip_model, names)).eval()
    images = [torch.randn(args.batch_size, 3, 32, 32) for _ in range(args.batches)]

    def naive_eval() -> list[torch.Tensor]:
        out = []
        for x in images:
            model.invalidate_cache()  # the reference recomputes the text features for every batch
            out.append(model(x).logits)
        return out

    def cached_eval() -> list[torch.Tensor]:
        model.invalidate_cache()  # computed once at the start of the evaluation
        return [model(x).logits for x in images]

    t_naive, t_cached = [], []
    with torch.no_grad():
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            naive = naive_eval()
            t_naive.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cached = cached_eval()
            t_cached.append(time.perf_counter() - t0)
    diff = max((a - b).abs().max().item() for a, b in zip(naive, cached))
    same = all(torch.equal(a, b) for a, b in zip(naive, cached))
    tn, tc = statistics.median(t_naive), statistics.median(t_cached)
    print(f"evaluation, C={args.classes}, {args.batches} batches of {args.batch_size} (median of {args.repeats}): "
          f"per-batch text features {tn:.3f}s  once {tc:.3f}s  speed-up x{tn / tc:.1f}  "
          f"max|diff| {diff:.2e} ({'identical logits' if same else 'MISMATCH'})")
    if not same:
        print("MISMATCH: logits differ between the two paths", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
