#!/usr/bin/env python
"""One PLOT training step (forward, CE, backward): ours (the Sinkhorn of every image x class in one batched tensor
program) vs a per-image Python loop over the same head (each image's C transport problems solved on their own).
Same weights: a random CLIP with a ResNet tower at 224 px (7x7+1 = 50 local features, as RN50), text 256x4,
N = 4 prompt sets of 16 context vectors.

    python bench/plot_step.py                          # C=50, B=32, 5 interleaved steps
    python bench/plot_step.py --classes 100 --batch-size 16 --repeats 7 --vit

Steps of the two paths alternate; medians and their ratio are printed, with the largest logit difference (the
loop stops each image's iterations on that image's own change, the batch on the batch's mean change, as the
reference does). Exits 1 if the loop's predictions differ from ours.
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
from trainers.modules import PromptedCLIP  # noqa: E402
from trainers.modules.heads.plot import PLOT, similarities, transport_logits  # noqa: E402
from trainers.modules.prompt_learners.plot import PLOTPromptLearner  # noqa: E402


class PerImagePLOT(PLOT):
    """The same head with a Python loop over the images (one Sinkhorn batch of C problems per image)."""

    def forward(self, image_features, text_features, labels=None):
        rows = []
        for b in range(image_features.shape[0]):
            sim = similarities(image_features[b : b + 1], text_features, self.n_cls)  # [1, C, T, N]
            logits, _, _ = transport_logits(sim, self.logit_scale.to(sim.dtype), self.eps, self.max_iter, self.thresh)
            rows.append(logits)
        return torch.cat(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=50, help="number of classes C (default 50)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--sets", type=int, default=4, help="prompt sets N (default 4)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved steps per path (median; default 5)")
    p.add_argument("--vit", action="store_true", help="a ViT tower (patch 32 at 224 px: 7x7+1 tokens) instead")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    tower = (dict(vision_layers=4, vision_width=256, vision_patch_size=32) if args.vit else
             dict(vision_layers=(1, 1, 1, 1), vision_width=32, vision_patch_size=None))
    clip_model = build_clip_from_config(embed_dim=256, transformer_width=256, transformer_heads=4,
                                        transformer_layers=4, image_resolution=224, **tower)
    names = [f"class {i}" for i in range(args.classes)]
    learner = PLOTPromptLearner(names, clip_model, n_sets=args.sets, n_ctx=16)
    models = {}
    for name, head in (("ours", PLOT), ("per-image loop", PerImagePLOT)):
        models[name] = PromptedCLIP(clip_model, learner, head(clip_model, names))  # the same learner and weights
        models[name].train()
    images = torch.randn(args.batch_size, 3, 224, 224)
    labels = torch.randint(0, args.classes, (args.batch_size,))

    times = {name: [] for name in models}
    logits = {}
    for _ in range(args.repeats):
        for name, model in models.items():
            learner.zero_grad()
            start = time.perf_counter()
            out = model(images)
            torch.nn.functional.cross_entropy(out.logits, labels).backward()
            times[name].append(time.perf_counter() - start)
            logits[name] = out.logits.detach()
    # the head alone (what differs between the paths): the step's features, OT logits, CE, backward to the texts
    with torch.no_grad():
        feats = models["ours"].encode_image(images)  # [B, T, D]
        text = models["ours"].encode_text(learner())  # [N*C, D]
    head_times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            t = text.clone().requires_grad_(True)
            start = time.perf_counter()
            torch.nn.functional.cross_entropy(model.head(feats, t), labels).backward()
            head_times[name].append(time.perf_counter() - start)
    setting = f"C={args.classes}, B={args.batch_size}, N={args.sets}, T={feats.shape[1]} local features"
    for label, tab in (("full step", times), ("head only", head_times)):
        med = {name: statistics.median(t) for name, t in tab.items()}
        for name, t in med.items():
            print(f"{label}, {name:>14}: {t * 1000:9.1f} ms (median of {args.repeats})")
        print(f"{label}: speed-up of the batched Sinkhorn {med['per-image loop'] / med['ours']:.2f}x ({setting})")
    diff = (logits["ours"] - logits["per-image loop"]).abs().max().item()
    same = torch.equal(logits["ours"].argmax(-1), logits["per-image loop"].argmax(-1))
    print(f"largest logit difference {diff:.2e}; same predictions: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
