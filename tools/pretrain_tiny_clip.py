"""Pretrain TinySynth: a small CLIP trained from scratch on procedurally generated captioned images.

The model is OUR ``clip.model.CLIP`` (ViT image tower, causal text tower with CLIP's real BPE tokenizer, full
49,408-token vocabulary, context length 77), so every prompt learner works on it unchanged. Training is a
symmetric InfoNCE loss with a learnable logit scale on fresh batches from ``datasets.synthgen``; since the
caption space is small, a caption counts as a positive for every image in the batch it describes
(multi-positive targets), not only for its own image. The (colour, shape) pairs in
``synthgen.HELDOUT_PAIRS`` are never rendered, so zero-shot accuracy on the SynthShapes classes built from them
measures compositional generalisation.

The result is saved as a plain fp16 state dict in OpenAI's layout (keys exactly as ``CLIP.state_dict()``), which
``clip.build_model`` / ``clip.load_clip("TinySynth")`` load.

Only the ~60 token-embedding rows that captions use are trained (:class:`UsedTokenEmbedding`); this gives the
same weights as training the whole table, without updating 49,408 x width values every step.

Usage (see docs/EMBEDDED_DEFAULT.md for the recipe and the measured numbers)::

    OMP_NUM_THREADS=1 python tools/pretrain_tiny_clip.py --threads 1       # the committed clip/weights/TinySynth.pt
    python tools/pretrain_tiny_clip.py --quick --output /tmp/tiny.pt        # a few steps of a tinier model (tests)
    python tools/pretrain_tiny_clip.py --evaluate clip/weights/TinySynth.pt --seed 1   # zero-shot + prompt tuning
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from clip.model import CLIP, build_clip_from_config  # noqa: E402
from dassl.utils.tools import atomic_open  # noqa: E402
from datasets import synthgen  # noqa: E402

logger = logging.getLogger("pretrain_tiny_clip")

#: CLIP's image normalisation (the SynthShapes trainer configs use the same values).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
ZERO_SHOT_TEMPLATE = "a photo of a {}."


# ---------------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------------


def get_tokenize() -> Callable[..., torch.Tensor]:
    """``clip.tokenize`` (CLIP's BPE tokenizer, context length 77)."""
    from clip import clip as clip_module

    return clip_module.tokenize


class CaptionTokens:
    """Tokenize captions with a cache (the caption space is small, so most captions repeat)."""

    def __init__(self, tokenize: Callable[..., torch.Tensor]) -> None:
        self.tokenize = tokenize
        self.cache: dict[str, torch.Tensor] = {}

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            for caption, row in zip(missing, self.tokenize(missing).long()):
                self.cache[caption] = row
        return torch.stack([self.cache[c] for c in captions])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> normalised float [B, 3, H, W]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


_FIELDS = ("shape", "colour", "texture", "size", "position", "background")


def positive_mask(scenes: Sequence[synthgen.Scene], mentioned: Sequence[dict[str, str]]) -> torch.Tensor:
    """[B, B] bool: ``mask[i, j]`` = caption j (with attributes ``mentioned[j]``) fits scene i."""
    fits = np.ones((len(scenes), len(mentioned)), dtype=bool)
    for field in _FIELDS:
        values = np.array([getattr(s, field) for s in scenes])  # [B]
        for j, m in enumerate(mentioned):
            if field in m:
                fits[:, j] &= values == m[field]
    return torch.from_numpy(fits)


def make_batch(
    seed: int, step: int, batch_size: int, image_size: int, tokens: CaptionTokens
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One deterministic training batch (a function of ``(seed, step)`` only).

    Returns:
        images [B, 3, S, S], token ids [B, 77], and the positive mask [B, B] (``mask[i, j]``: caption j fits image i).
    """
    rng = np.random.default_rng([seed, step, 1])
    images, scenes = synthgen.render_batch(rng, batch_size, image_size, exclude_pairs=synthgen.HELDOUT_PAIRS)
    captions, mentioned = zip(*(synthgen.caption_with_attributes(s, rng) for s in scenes))
    mask = positive_mask(scenes, mentioned)
    return to_tensor(images), tokens(list(captions)), mask


def make_zero_shot_set(
    seed: int, per_class: int, image_size: int, lighting: str = "studio"
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed evaluation set: ``per_class`` images of every SynthShapes class (labels in class order).

    ``lighting="studio"`` is the pretraining domain; ``"dusk"`` is the SynthShapes benchmark domain.
    """
    rng = np.random.default_rng([seed, 10**6, synthgen.LIGHTINGS.index(lighting)])
    images, labels = [], []
    for label, (colour, shape) in enumerate(synthgen.SYNTH_SHAPES_CLASSES):
        for _ in range(per_class):
            scene = synthgen.sample_scene(rng, colour=colour, shape=shape)
            images.append(synthgen.render_scene(scene, rng, image_size, lighting))
            labels.append(label)
    return to_tensor(np.stack(images)), torch.tensor(labels)


# ---------------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------------


class UsedTokenEmbedding(torch.nn.Module):
    """Trainable copy of the token-embedding rows the captions can use.

    Only ~60 of CLIP's 49,408 tokens occur in synthgen captions; the other rows would get zero gradients, which
    with Adam (and no weight decay on embeddings) means zero updates. Training only the used rows gives the same
    model without touching the 49,408 x width table every step; :meth:`write_back` copies them into the CLIP.
    """

    def __init__(self, model: CLIP, tokenize: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        words = synthgen.vocabulary() + ["."]
        ids = {0}
        for row in tokenize(words):
            ids.update(int(t) for t in row)
        used = torch.tensor(sorted(ids))
        lookup = torch.full((model.token_embedding.weight.shape[0],), -1, dtype=torch.long)
        lookup[used] = torch.arange(len(used))
        self.register_buffer("used", used, persistent=False)
        self.register_buffer("lookup", lookup, persistent=False)
        self.weight = torch.nn.Parameter(model.token_embedding.weight.detach()[used].clone())  # [U, Dt]
        model.token_embedding.weight.requires_grad_(False)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """[N, L] token ids -> [N, L, Dt] embeddings."""
        index = self.lookup[text]
        if bool((index < 0).any()):
            raise ValueError("a caption uses a token outside synthgen.vocabulary()")
        return self.weight[index]

    @torch.no_grad()
    def write_back(self, model: CLIP) -> None:
        model.token_embedding.weight[self.used] = self.weight.to(model.token_embedding.weight.dtype)


def contrastive_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE with multi-positive targets.

    Args:
        image_features: [B, D] (unnormalised).
        text_features: [B, D] (unnormalised).
        logit_scale: scalar log temperature.
        mask: [B, B] bool, ``mask[i, j]`` = caption j describes image i (the diagonal is always True).

    Returns:
        (loss, in-batch image->text top-1 accuracy counting any fitting caption as correct).
    """
    img = F.normalize(image_features, dim=-1)
    txt = F.normalize(text_features, dim=-1)
    logits = logit_scale.exp() * img @ txt.t()  # [B, B]
    target = mask.float()
    loss_i = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target.t() / target.t().sum(1, keepdim=True) * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    acc = mask[torch.arange(len(mask)), logits.argmax(1)].float().mean()
    return (loss_i + loss_t) / 2, acc


@torch.no_grad()
def zero_shot_accuracy(
    model: CLIP, images: torch.Tensor, labels: torch.Tensor, tokenize: Callable[..., torch.Tensor]
) -> dict[str, float]:
    """Zero-shot accuracy (%) with ``"a photo of a {}."`` on the SynthShapes classes: all, seen and held-out."""
    was_training = model.training
    model.eval()
    names = [f"{c} {s}" for c, s in synthgen.SYNTH_SHAPES_CLASSES]
    text = F.normalize(model.encode_text(tokenize([ZERO_SHOT_TEMPLATE.format(n) for n in names])).float(), dim=-1)
    feats = torch.cat([model.encode_image(chunk).float() for chunk in images.split(256)])
    pred = (F.normalize(feats, dim=-1) @ text.t()).argmax(1)
    correct = (pred == labels).float()
    held = torch.tensor([pair in synthgen.HELDOUT_PAIRS for pair in synthgen.SYNTH_SHAPES_CLASSES])[labels]
    model.train(was_training)
    return {
        "all": 100 * correct.mean().item(),
        "seen": 100 * correct[~held].mean().item(),
        "heldout": 100 * correct[held].mean().item(),
    }


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices only (no decay on embeddings, norms, biases, logit scale)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and "embedding" not in name:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, steps: int, warmup: int, lr: float, min_ratio: float = 0.02) -> float:
    """Linear warm-up then cosine decay to ``min_ratio * lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def fp16_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict (OpenAI key layout) with every floating tensor in fp16, contiguous, on CPU."""
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()).contiguous().clone()
        for k, v in model.state_dict().items()
    }


def save_atomic(obj: object, path: str) -> None:
    """``torch.save`` to ``path`` atomically (temp file, fsync, ``os.replace``; see ``dassl.utils.atomic_open``)."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def build_model(args: argparse.Namespace) -> CLIP:
    """A random fp32 CLIP of the requested sizes (head counts as ``clip.build_model`` infers them)."""
    return build_clip_from_config(
        embed_dim=args.embed_dim,
        image_resolution=args.image_size,
        vision_layers=args.vision_layers,
        vision_width=args.vision_width,
        vision_patch_size=args.patch_size,
        context_length=77,
        vocab_size=49408,
        transformer_width=args.text_width,
        transformer_heads=max(args.text_width // 64, 1),
        transformer_layers=args.text_layers,
    )


def train(args: argparse.Namespace) -> dict[str, float]:
    """Run the pretraining; returns the final metrics."""
    torch.manual_seed(args.seed)
    tokenize = get_tokenize()
    tokens = CaptionTokens(tokenize)
    model = build_model(args).train()
    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        f"TinySynth: {n_params / 1e6:.2f}M parameters (vision ViT w{args.vision_width} x{args.vision_layers} "
        f"patch {args.patch_size} @ {args.image_size}px, text w{args.text_width} x{args.text_layers}, "
        f"embed {args.embed_dim}); {args.steps} steps x batch {args.batch_size}, lr {args.lr}, seed {args.seed}"
    )
    embed = UsedTokenEmbedding(model, tokenize)
    groups = param_groups(model, args.weight_decay)
    groups[1]["params"].append(embed.weight)
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    trainable = [p for g in groups for p in g["params"]]
    zs_sets = {lighting: make_zero_shot_set(args.seed, args.eval_per_class, args.image_size, lighting)
               for lighting in synthgen.LIGHTINGS}

    metrics: dict[str, float] = {}
    loss_avg = acc_avg = 0.0
    start = time.time()
    bar = tqdm(range(args.steps), desc="pretrain", file=sys.stderr, dynamic_ncols=True,
               disable=True if args.no_progress else None)  # None: a bar on terminals only
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args.steps, args.warmup, args.lr)
        images, text, mask = make_batch(args.seed, step, args.batch_size, args.image_size, tokens)
        text_features = model.encode_prompts(embed(text), text)
        loss, acc = contrastive_loss(model.encode_image(images), text_features, model.logit_scale, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        beta = 0.0 if step == 0 else 0.98
        loss_avg = beta * loss_avg + (1 - beta) * loss.item()
        acc_avg = beta * acc_avg + (1 - beta) * acc.item()
        bar.set_postfix(loss=f"{loss_avg:.3f}", acc=f"{100 * acc_avg:.1f}")
        last = step + 1 == args.steps
        if (step + 1) % args.log_every == 0 or last:
            logger.info(
                f"step {step + 1}/{args.steps}  loss {loss_avg:.4f}  batch-acc {100 * acc_avg:.1f}%  "
                f"logit-scale {model.logit_scale.exp().item():.1f}  lr {optimizer.param_groups[0]['lr']:.2e}  "
                f"elapsed {time.time() - start:.0f}s"
            )
        if (step + 1) % args.eval_every == 0 or last:
            embed.write_back(model)
            metrics = {"loss": loss_avg, "batch_acc": 100 * acc_avg}
            for lighting, (zs_images, zs_labels) in zs_sets.items():
                zs = zero_shot_accuracy(model, zs_images, zs_labels, tokenize)
                logger.info(
                    f"step {step + 1}: zero-shot SynthShapes classes, {lighting} lighting "
                    f"({args.eval_per_class}/class, '{ZERO_SHOT_TEMPLATE}'): all {zs['all']:.1f}%  "
                    f"seen {zs['seen']:.1f}%  held-out {zs['heldout']:.1f}%"
                )
                metrics.update({f"zs_{lighting}_{k}": v for k, v in zs.items()})
            save_atomic(fp16_state_dict(model), args.output)
    metrics["seconds"] = time.time() - start
    logger.info(f"saved {args.output} ({os.path.getsize(args.output) / 2**20:.2f} MiB) after {metrics['seconds']:.0f}s")
    return metrics


# ---------------------------------------------------------------------------------------------------------------------
# Checking a checkpoint on SynthShapes: zero-shot and a rough CoOp-style prompt tuning
# ---------------------------------------------------------------------------------------------------------------------


def load_split_tensors(data_root: str) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """SynthShapes (generated if needed) as tensors: ``{split: (images [N, 3, S, S] normalised, labels [N])}``."""
    from PIL import Image

    from datasets.synth_shapes import IMAGE_FOLDER, SPLIT_FILE, generate_synth_shapes, synth_shapes_classnames

    dataset_dir = generate_synth_shapes(data_root)
    with open(os.path.join(dataset_dir, SPLIT_FILE), encoding="utf-8") as f:
        split = json.load(f)
    out = {}
    for name, items in split.items():
        pixels = np.stack([np.asarray(Image.open(os.path.join(dataset_dir, IMAGE_FOLDER, rel)).convert("RGB"))
                           for rel, _, _ in items])
        out[name] = (to_tensor(pixels), torch.tensor([label for _, label, _ in items]))
    return out, synth_shapes_classnames()


def _accuracy_by_group(pred: torch.Tensor, labels: torch.Tensor, n_classes: int) -> dict[str, float]:
    correct = (pred == labels).float()
    held = torch.tensor([pair in synthgen.HELDOUT_PAIRS for pair in synthgen.SYNTH_SHAPES_CLASSES])[labels]
    base = labels < math.ceil(n_classes / 2)
    return {
        "all": 100 * correct.mean().item(),
        "seen": 100 * correct[~held].mean().item(),
        "heldout": 100 * correct[held].mean().item(),
        "base": 100 * correct[base].mean().item(),
        "new": 100 * correct[~base].mean().item(),
    }


class _PromptTuner(torch.nn.Module):
    """CoOp-style unified context: [SOS][ctx_1..ctx_n][class tokens][.][EOT] with learnable ctx [n, Dt].

    A rough stand-in for the real CoOp trainer (``trainers/``), used only to check a checkpoint.
    """

    def __init__(self, model: CLIP, classnames: Sequence[str], n_ctx: int, tokenize: Callable[..., torch.Tensor]):
        super().__init__()
        placeholder = " ".join(["X"] * n_ctx)
        tokenized = tokenize([f"{placeholder} {name}." for name in classnames]).long()  # [C, 77]
        with torch.no_grad():
            embedding = model.token_embedding(tokenized).float()  # [C, 77, Dt]
        self.ctx = torch.nn.Parameter(torch.randn(n_ctx, embedding.shape[-1]) * 0.02)  # [n, Dt], CoOp's generic init
        self.register_buffer("prefix", embedding[:, :1], persistent=False)
        self.register_buffer("suffix", embedding[:, 1 + n_ctx:], persistent=False)
        self.register_buffer("tokenized", tokenized, persistent=False)
        self.model = model

    def text_features(self) -> torch.Tensor:
        ctx = self.ctx.unsqueeze(0).expand(self.prefix.shape[0], -1, -1)
        prompts = torch.cat([self.prefix, ctx, self.suffix], dim=1)  # [C, 77, Dt]
        return F.normalize(self.model.encode_prompts(prompts, self.tokenized).float(), dim=-1)


def evaluate_checkpoint(
    path: str, data_root: str, shots: int = 16, seed: int = 1, epochs: int = 25, lr: float = 0.004, n_ctx: int = 16,
    batch_size: int = 32, log: bool = True,
) -> dict[str, dict[str, float]]:
    """Zero-shot and a rough CoOp prompt-tuning check of a TinySynth checkpoint on SynthShapes.

    Prompt tuning follows the tinysynth CoOp config: SGD (momentum 0.9), cosine LR, batch 32, random resized crop
    (scale 0.5-1) + flip, K shots per class of the train split, ``n_ctx`` context vectors drawn from N(0, 0.02^2)
    (CoOp's generic init, ``torch.manual_seed(seed)``); evaluated on the whole test split. Also a base-to-new run
    (train on the base half, test on base and new).

    Returns:
        ``{"zero_shot": {...}, "coop": {...}, "coop_base2new": {...}}`` accuracies (%) by group.
    """
    import torchvision.transforms as T

    from clip import clip as clip_module

    tokenize = clip_module.tokenize
    model = clip_module.build_model(torch.load(path, map_location="cpu", weights_only=True)).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    data, classnames = load_split_tensors(data_root)
    test_x, test_y = data["test"]
    with torch.no_grad():
        test_feats = F.normalize(model.encode_image(test_x).float(), dim=-1)
        prompts = tokenize([ZERO_SHOT_TEMPLATE.format(c) for c in classnames])
        zs_text = F.normalize(model.encode_text(prompts).float(), dim=-1)
    results = {"zero_shot": _accuracy_by_group((test_feats @ zs_text.t()).argmax(1), test_y, len(classnames))}

    train_x, train_y = data["train"]
    gen = torch.Generator().manual_seed(seed)
    pick = []  # K random train images per class
    for c in range(len(classnames)):
        members = torch.nonzero(train_y == c).flatten()
        pick.append(members[torch.randperm(len(members), generator=gen)[:shots]])
    pick = torch.cat(pick)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    size = train_x.shape[-1]
    augment = T.Compose([T.RandomResizedCrop(size, scale=(0.5, 1.0), interpolation=T.InterpolationMode.BICUBIC,
                                             antialias=True), T.RandomHorizontalFlip()])

    def tune(class_ids: list[int]) -> _PromptTuner:
        torch.manual_seed(seed)
        keep = torch.isin(train_y[pick], torch.tensor(class_ids))
        xs, ys = train_x[pick][keep], train_y[pick][keep]
        remap = {c: i for i, c in enumerate(class_ids)}
        ys = torch.tensor([remap[int(y)] for y in ys])
        tuner = _PromptTuner(model, [classnames[c] for c in class_ids], n_ctx, tokenize)
        opt = torch.optim.SGD([tuner.ctx], lr=lr, momentum=0.9)
        iters = epochs * math.ceil(len(xs) / batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
        scale = model.logit_scale.exp().item()
        for _ in range(epochs):
            order = torch.randperm(len(xs))
            for i in range(0, len(xs), batch_size):
                idx = order[i:i + batch_size]
                imgs = torch.stack([(augment(xs[j] * std + mean) - mean) / std for j in idx])
                with torch.no_grad():
                    feats = F.normalize(model.encode_image(imgs).float(), dim=-1)
                loss = F.cross_entropy(scale * feats @ tuner.text_features().t(), ys[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        return tuner

    n = len(classnames)
    tuner = tune(list(range(n)))
    with torch.no_grad():
        all_text = tuner.text_features()
    results["coop"] = _accuracy_by_group((test_feats @ all_text.t()).argmax(1), test_y, n)
    m = math.ceil(n / 2)
    base_ids, new_ids = list(range(m)), list(range(m, n))
    tuner = tune(base_ids)
    with torch.no_grad():
        base_text = tuner.text_features()
        new_tuner = _PromptTuner(model, [classnames[c] for c in new_ids], n_ctx, tokenize)
        new_tuner.ctx.copy_(tuner.ctx)
        new_text = new_tuner.text_features()
    is_base = test_y < m
    acc_base = ((test_feats[is_base] @ base_text.t()).argmax(1) == test_y[is_base]).float().mean().item() * 100
    acc_new = ((test_feats[~is_base] @ new_text.t()).argmax(1) == test_y[~is_base] - m).float().mean().item() * 100
    zs_base = ((test_feats[is_base] @ zs_text[:m].t()).argmax(1) == test_y[is_base]).float().mean().item() * 100
    zs_new = ((test_feats[~is_base] @ zs_text[m:].t()).argmax(1) == test_y[~is_base] - m).float().mean().item() * 100
    results["base2new"] = {"zs_base": zs_base, "zs_new": zs_new, "coop_base": acc_base, "coop_new": acc_new}
    if log:
        for key, values in results.items():
            logger.info(f"{key}: " + "  ".join(f"{k} {v:.1f}%" for k, v in values.items()))
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--output", default=os.path.join(ROOT, "clip", "weights", "TinySynth.pt"), help="checkpoint path")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=8)
    p.add_argument("--vision-width", type=int, default=128)
    p.add_argument("--vision-layers", type=int, default=4)
    p.add_argument("--text-width", type=int, default=96)
    p.add_argument("--text-layers", type=int, default=4)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=250, help="zero-shot eval + checkpoint every N steps")
    p.add_argument("--eval-per-class", type=int, default=25)
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--quick", action="store_true", help="a tiny model for a few steps (tests)")
    p.add_argument("--evaluate", metavar="CKPT", help="only check CKPT on SynthShapes (zero-shot + prompt tuning)")
    p.add_argument("--data-root", default=None, help="SynthShapes root for --evaluate (default: $PROMPTCLIP_DATA or "
                   "~/.cache/promptclip/data)")
    p.add_argument("--eval-shots", type=int, default=16)
    p.add_argument("--eval-epochs", type=int, default=25)
    p.add_argument("--eval-lr", type=float, default=0.004)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.batch_size, args.warmup = min(args.steps, 3), min(args.batch_size, 16), 1
        args.vision_width, args.vision_layers, args.text_width, args.text_layers, args.embed_dim = 64, 1, 64, 1, 32
        args.eval_every, args.eval_per_class, args.log_every = args.steps, 1, 1
    if args.vision_width % 64 or args.text_width % 32:
        p.error("--vision-width must be a multiple of 64 (heads = width // 64) and --text-width a multiple of 32")
    if args.image_size % args.patch_size:
        p.error("--image-size must be a multiple of --patch-size")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Command-line entry point; returns the final metrics (logging is configured by ``__main__`` only)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.evaluate:
        from datasets.synth_shapes import default_root

        results = evaluate_checkpoint(args.evaluate, args.data_root or default_root(), shots=args.eval_shots,
                                      seed=args.seed, epochs=args.eval_epochs, lr=args.eval_lr)
        return {f"{k}/{kk}": vv for k, v in results.items() for kk, vv in v.items()}
    metrics = train(args)
    logger.info("final: " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    main()
