#!/usr/bin/env python
"""One PAN training step: ours (main forward, then the pre-inference reusing its image features and encoding
all (NP+1)*C prompts in ONE text call) vs the reference (a second image pass and per-copy text calls). Same
weights; checks identical alphas and loss; prints the ratio."""
from __future__ import annotations

import os
import random
import sys
import time
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from clip.model import build_clip_from_config  # noqa: E402
from trainers.modules import CoOpPromptLearner, Nemesis, PromptedCLIP, Similarity  # noqa: E402


class ReferencePAN(Nemesis):
    """The reference pre-inference: its own image pass, one text call per corrupted copy."""

    images = None

    @torch.no_grad()
    def select_alpha(self, model, image_features, labels):
        ctx = model.learner.context_vectors().detach()
        alpha = torch.zeros(ctx.shape[-2])
        positions = random.sample(range(ctx.shape[-2]), self.n_pos)
        feats_img = model.encode_image(self.images)  # second image pass
        hits = []
        for j in [None] + positions:
            c = ctx.clone()
            if j is not None:
                c[..., j, :] *= self.cw
            tf = model.encode_text(model.learner.with_context(c))
            hits.append(int((model.head(feats_img, tf).argmax(-1) == labels).sum()))
        for k, j in enumerate(positions, start=1):
            if hits[k] > hits[0]:
                alpha[j] = self.pan_scale
        return alpha


def step(model, reg, images, labels, optim):
    out = model(images)
    loss = torch.nn.functional.cross_entropy(out.logits, labels) + reg(model, out, {"img": images, "label": labels})["norm_loss"]
    optim.zero_grad()
    loss.backward()
    return loss.item(), reg.alpha.clone()


def main(n_cls: int = 50, bs: int = 32, n_pos: int = 4, reps: int = 3) -> None:
    torch.manual_seed(0)
    clip_model = build_clip_from_config(embed_dim=256, transformer_width=256, transformer_heads=4, transformer_layers=4,
                                        vision_width=256, vision_layers=6, image_resolution=64, vision_patch_size=8)
    names = [f"class {i}" for i in range(n_cls)]
    model = PromptedCLIP(clip_model, CoOpPromptLearner(names, clip_model, n_ctx=16), Similarity(clip_model, names))
    model.train()
    images, labels = torch.randn(bs, 3, 64, 64), torch.randint(0, n_cls, (bs,))
    optim = torch.optim.SGD(model.learner.parameters(), lr=0.0)
    times, results = {}, {}
    for name, cls in (("reference", ReferencePAN), ("ours", Nemesis)):
        reg = cls(a=1.0, beta=0.0, n_pos=n_pos, cw=0.5)
        reg.images = images
        reg.setup(model, names)
        t = []
        for r in range(reps):
            random.seed(r)
            t0 = time.perf_counter()
            results[(name, r)] = step(model, reg, images, labels, optim)
            t.append(time.perf_counter() - t0)
        times[name] = min(t)
    for r in range(reps):
        (la, aa), (lb, ab) = results[("reference", r)], results[("ours", r)]
        assert torch.equal(aa, ab) and abs(la - lb) < 1e-4 * max(1.0, abs(la)), "PAN results differ"
    print(f"PAN step (C={n_cls}, B={bs}, NP={n_pos}): reference {times['reference']:.3f}s  ours {times['ours']:.3f}s  "
          f"speed-up x{times['reference'] / times['ours']:.2f} (identical alphas and loss)")


if __name__ == "__main__":
    main()
