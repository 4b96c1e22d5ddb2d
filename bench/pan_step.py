#!/usr/bin/env python
"""One PAN training step: ours (main forward, then the pre-inference reusing its image features and encoding
all (NP+1)*C prompts in ONE text call) vs the reference (a second image pass and per-copy text calls). Same
weights (random CLIP: text 256x4, ViT 256x6 at 64 px; CoOp learner, 16 context tokens).

    python bench/pan_step.py                         # C=50, B=32, NP=4, 5 interleaved steps
    python bench/pan_step.py --classes 100 --n-pos 8 --repeats 7

Steps of the two paths alternate (same random positions per round); medians and their ratio are printed.
Exits 1 if the alphas are not identical or the losses differ by more than 1e-4 (relative).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
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
    norm_loss = reg(model, out, {"img": images, "label": labels})["norm_loss"]
    loss = torch.nn.functional.cross_entropy(out.logits, labels) + norm_loss
    optim.zero_grad()
    loss.backward()
    return loss.item(), reg.alpha.clone()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=50, help="number of classes C (default 50)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-pos", type=int, default=4, help="PAN positions sampled per step NP (default 4)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved steps per path (median; default 5)")
    args = p.parse_args(argv)
    n_cls, bs, n_pos = args.classes, args.batch_size, args.n_pos

    torch.manual_seed(0)
    clip_model = build_clip_from_config(embed_dim=256, transformer_width=256, transformer_heads=4, transformer_layers=4,
                                        vision_width=256, vision_layers=6, image_resolution=64, vision_patch_size=8)
    names = [f"class {i}" for i in range(n_cls)]
    model = PromptedCLIP(clip_model, CoOpPromptLearner(names, clip_model, n_ctx=16), Similarity(clip_model, names))
    model.train()
    images, labels = torch.randn(bs, 3, 64, 64), torch.randint(0, n_cls, (bs,))
    optim = torch.optim.SGD(model.learner.parameters(), lr=0.0)
    regs = {}
    for name, cls in (("reference", ReferencePAN), ("ours", Nemesis)):
        reg = cls(a=1.0, beta=0.0, n_pos=n_pos, cw=0.5)
        reg.images = images
        reg.setup(model, names)
        regs[name] = reg
    times: dict[str, list[float]] = {"reference": [], "ours": []}
    results = {}
    for r in range(args.repeats):
        for name, reg in regs.items():
            random.seed(r)
            t0 = time.perf_counter()
            results[(name, r)] = step(model, reg, images, labels, optim)
            times[name].append(time.perf_counter() - t0)
    ok, loss_diff = True, 0.0
    for r in range(args.repeats):
        (la, aa), (lb, ab) = results[("reference", r)], results[("ours", r)]
        loss_diff = max(loss_diff, abs(la - lb))
        ok &= torch.equal(aa, ab) and abs(la - lb) < 1e-4 * max(1.0, abs(la))
    tr, to = statistics.median(times["reference"]), statistics.median(times["ours"])
    print(f"PAN step (C={n_cls}, B={bs}, NP={n_pos}, median of {args.repeats}): reference {tr:.3f}s  ours {to:.3f}s  "
          f"speed-up x{tr / to:.2f}  max|loss diff| {loss_diff:.2e} "
          f"({'identical alphas, equal loss' if ok else 'MISMATCH'})")
    if not ok:
        print("MISMATCH: PAN alphas or loss differ between the two paths", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
