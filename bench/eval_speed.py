#!/usr/bin/env python
"""Evaluation speed: text features once per evaluation (PromptedCLIP cache) vs recomputed per batch (reference),
same weights; checks identical logits and prints the ratio. CPU, small random CLIP (~1 min)."""
from __future__ import annotations

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clip.model import build_clip_from_config  # noqa: E402
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity  # noqa: E402


def main(n_cls: int = 100, batches: int = 10, bs: int = 32) -> None:
    torch.manual_seed(0)
    clip_model = build_clip_from_config(embed_dim=256, transformer_width=256, transformer_heads=4,
                                        transformer_layers=4, vision_width=128, vision_layers=2)
    names = [f"class {i}" for i in range(n_cls)]
    model = PromptedCLIP(clip_model, CoOpPromptLearner(names, clip_model, n_ctx=16), Similarity(clip_model, names)).eval()
    images = [torch.randn(bs, 3, 32, 32) for _ in range(batches)]
    with torch.no_grad():
        t0 = time.perf_counter()
        naive = []
        for x in images:
            model.invalidate_cache()
            naive.append(model(x).logits)
        t_naive = time.perf_counter() - t0
        model.invalidate_cache()
        t0 = time.perf_counter()
        cached = [model(x).logits for x in images]
        t_cached = time.perf_counter() - t0
    assert all(torch.equal(a, b) for a, b in zip(naive, cached)), "logits differ"
    print(f"per-batch text features: {t_naive:.2f}s  once: {t_cached:.2f}s  speed-up x{t_naive / t_cached:.1f} "
          f"(identical logits, C={n_cls}, {batches} batches of {bs})")


if __name__ == "__main__":
    main()
