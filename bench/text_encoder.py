"""Text-encoder speed: ``CLIP.encode_prompts`` (batch-first SDPA, sequence cut after the longest EOT) against the
naive reference path (full 77 tokens, sequence-first ``nn.MultiheadAttention`` with a materialised causal mask)
on the SAME weights.

CoOp-style prompts: SOS + 16 context vectors + a 2-4 token class name + "." + EOT, zero padded to 77.
ViT-B/16-sized text tower (width 512, 12 layers, 8 heads), random weights.

    python bench/text_encoder.py                         # CPU fp32, 10/100/1000 classes
    python bench/text_encoder.py --device cuda --fp16 --repeats 20
    python bench/text_encoder.py --classes 10 100 --repeats 3

Prints one line per class count: both times (median over repeats), the speed-up and the max abs difference;
exits 1 if the two paths disagree beyond the tolerance (1e-4 fp32, 2e-2 fp16, relative to the output scale).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clip.model import CLIP, build_clip_from_config  # noqa: E402

SOT, EOT, PERIOD, X = 49406, 49407, 269, 343


def make_prompts(model: CLIP, n_cls: int, n_ctx: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Embedded prompts [C, 77, D] (learned-context slots filled with N(0, 0.02)) and their token ids [C, 77]."""
    tokens = torch.zeros(n_cls, model.context_length, dtype=torch.long)
    for c in range(n_cls):
        n_name = int(torch.randint(2, 5, (1,), generator=generator))
        name = torch.randint(400, 40000, (n_name,), generator=generator).tolist()
        row = [SOT] + [X] * n_ctx + name + [PERIOD, EOT]
        tokens[c, : len(row)] = torch.tensor(row)
    with torch.no_grad():
        emb = model.token_embedding(tokens)
        emb[:, 1 : 1 + n_ctx] = 0.02 * torch.randn(n_ctx, emb.shape[-1], generator=generator)
    return emb, tokens


@torch.no_grad()
def naive_encode(model: CLIP, prompts: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Reference text tower: full length, sequence-first nn.MultiheadAttention, additive causal mask."""
    dtype = model.dtype
    x = prompts.to(dtype) + model.positional_embedding.to(dtype)
    x = x.permute(1, 0, 2)  # [L, N, D]
    length = x.shape[0]
    mask = torch.full((length, length), float("-inf"), device=x.device).triu_(1).to(dtype)
    for block in model.transformer.resblocks:
        h = block.ln_1(x)
        x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        x = x + block.mlp(block.ln_2(x))
    x = model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(-1)] @ model.text_projection


def _time(fn, warmup, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    warmup()  # a small batch: kernels and allocator warmed up without paying for a full run
    times, out = [], None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=None,
                        help="class counts (default 10 100 1000; on CPU 10 100, as 1000 takes minutes there)")
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per path (median), after a small warm-up")
    parser.add_argument("--chunk", type=int, default=0, help="classes per forward (0 = all at once)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fp16", action="store_true", help="fp16 weights (convert_weights), as PREC fp16")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.classes is None:
        args.classes = [10, 100] if device.type == "cpu" else [10, 100, 1000]
    torch.manual_seed(0)
    model = build_clip_from_config(
        embed_dim=512, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
        transformer_width=512, transformer_heads=8, transformer_layers=12,
    )
    if args.fp16:
        from clip.model import convert_weights

        convert_weights(model)
    model = model.to(device).eval().requires_grad_(False)
    tol = 2e-2 if args.fp16 else 1e-4
    print(f"# text tower 512x12x8, {args.n_ctx} ctx, device {device}, {'fp16' if args.fp16 else 'fp32'}, "
          f"threads {torch.get_num_threads()}, repeats {args.repeats}")
    g = torch.Generator().manual_seed(0)
    failed = False
    for n_cls in args.classes:
        prompts, tokens = make_prompts(model, n_cls, args.n_ctx, g)
        prompts, tokens = prompts.to(device), tokens.to(device)
        chunk = args.chunk or n_cls

        def run(fn, n=n_cls):
            return lambda: torch.cat([fn(prompts[i : i + chunk], tokens[i : i + chunk]) for i in range(0, n, chunk)])

        def naive(p, t):
            return naive_encode(model, p, t)

        with torch.no_grad():
            t_ours, out_ours = _time(run(model.encode_prompts), run(model.encode_prompts, 8), args.repeats, device)
            t_ref, out_ref = _time(run(naive), run(naive, 8), args.repeats, device)
        diff = (out_ours.float() - out_ref.float()).abs().max().item()
        status = "ok" if diff <= tol * max(1.0, out_ref.float().abs().max().item()) else "MISMATCH"
        failed |= status != "ok"
        print(f"classes {n_cls:5d}  encode_prompts {t_ours * 1e3:9.1f} ms  naive-77 {t_ref * 1e3:9.1f} ms  "
              f"speed-up {t_ref / t_ours:5.2f}x  max|diff| {diff:.2e} {status}", flush=True)
    if failed:
        print("MISMATCH: the two paths disagree numerically", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
