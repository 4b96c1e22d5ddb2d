#!/usr/bin/env python
"""GPU benchmark: ms/iteration and peak memory of training steps, plus fp16 / amp correctness checks.

    bash bench/gpu.sh                       # on a machine with a GPU: one call, under 5 minutes
    python bench/gpu.py --out DIR           # the same; writes DIR/gpu_bench.json and DIR/gpu_bench.md
    python bench/gpu.py --cpu-fallback --out DIR   # tiny sizes on CPU in a few seconds (CI; chosen automatically
                                                   # when no GPU is visible)

Steps (the registered trainers' own ``forward_backward``, ``bench/common.py``: random CLIP weights of the real
architectures' sizes, C = 100 synthetic classes, one fixed random batch):

* CoOp on RN50-sized and ViT-B/16-sized CLIPs, fp16 and amp (batch 32);
* CoCoOp (batch 1, as its configs), MaPLe (batch 4), CoOp + Nemesis PAN (NP 2, CW 0.5; batch 32), ViT-B/16, fp16.

Each: 3 warm-up steps, then the median of 20 timed steps (``torch.cuda.synchronize`` around each) and the peak
``torch.cuda.max_memory_allocated`` over those steps.

Correctness (ViT-B/16 CoOp, and RN50 CoOp): the fp16 and amp models are built from the same weights and the same
initial context as an fp32 model; their eval logits on the same batch must agree with fp32 within
``|logit - logit_fp32| <= TOL_ABS + TOL_REL * max|logit_fp32|`` (TOL_ABS = 0.05, TOL_REL = 0.01: fp16 has 11
significant bits, the text and image towers accumulate ~1e-3 relative error), and 50 training steps in each
precision must keep every loss and every trainable tensor finite (no NaN/inf). The exit status is 1 when a check
fails (the tables are written either way).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import torch  # noqa: E402

TOL_ABS, TOL_REL = 0.05, 0.01

PAN_OPTS = ["TRAINER.CoOpNemesis.N_CTX", "16", "TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "0.0",
            "TRAINER.CoOpNemesis.NP", "2", "TRAINER.CoOpNemesis.CW", "0.5"]


def plan(fallback: bool) -> dict:
    if fallback:  # tiny, CPU, seconds
        vit = rn = "tiny-vit"
        return dict(
            classes=10, warmup=1, steps=2, nan_steps=5,
            runs=[("CoOp", vit, "CoOp", ["TRAINER.COOP.N_CTX", "4"], "fp16", 4),
                  ("CoOp", vit, "CoOp", ["TRAINER.COOP.N_CTX", "4"], "amp", 4),
                  ("CoCoOp", vit, "CoCoOp", ["TRAINER.COCOOP.N_CTX", "4"], "fp16", 1),
                  ("MaPLe", vit, "MaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "2"], "fp16", 2),
                  ("PAN", vit, "CoOpNemesis", PAN_OPTS[:1] + ["4"] + PAN_OPTS[2:], "fp16", 4)],
            checks=[("CoOp", vit, "CoOp", ["TRAINER.COOP.N_CTX", "4"], 4)],
            device="cpu")
    vit, rn = "ViT-B/16", "RN50"
    coop = ["TRAINER.COOP.N_CTX", "16"]
    return dict(
        classes=100, warmup=3, steps=20, nan_steps=50,
        runs=[("CoOp", rn, "CoOp", coop, "fp16", 32), ("CoOp", rn, "CoOp", coop, "amp", 32),
              ("CoOp", vit, "CoOp", coop, "fp16", 32), ("CoOp", vit, "CoOp", coop, "amp", 32),
              ("CoCoOp", vit, "CoCoOp", ["TRAINER.COCOOP.N_CTX", "4"], "fp16", 1),
              ("MaPLe", vit, "MaPLe", ["TRAINER.MAPLE.N_CTX", "2", "TRAINER.MAPLE.PROMPT_DEPTH", "9"], "fp16", 4),
              ("PAN", vit, "CoOpNemesis", PAN_OPTS, "fp16", 32)],
        checks=[("CoOp", vit, "CoOp", coop, 32), ("CoOp", rn, "CoOp", coop, 32)],
        device="cuda")


def peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: str) -> float | None:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return None


def time_steps(label, size, trainer, opts, prec, bs, p) -> dict:
    dev = p["device"]
    t = common.make_trainer(trainer, p["classes"], size, opts, device=dev, prec=prec)
    b = common.batch(size, p["classes"], bs, dev)
    for _ in range(p["warmup"]):
        t.forward_backward(b)
    peak_reset(dev)
    times = []
    for _ in range(p["steps"]):
        common.sync(dev)
        t0 = time.perf_counter()
        t.forward_backward(b)
        common.sync(dev)
        times.append(time.perf_counter() - t0)
    out = {"method": label, "size": size, "prec": prec, "batch_size": bs, "classes": p["classes"],
           "ms_per_iter": 1000 * statistics.median(times), "peak_mib": peak_mib(dev)}
    del t
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def _finite_state(t) -> bool:
    return all(bool(torch.isfinite(x.detach().float()).all()) for x in t.model.parameters() if x.requires_grad)


def check_precision(label, size, trainer, opts, bs, p) -> list[dict]:
    """fp16 / amp logits vs fp32 on the same weights and context; 50 steps without NaN."""
    dev = p["device"]
    b = common.batch(size, p["classes"], bs, dev)
    ref = common.make_trainer(trainer, p["classes"], size, opts, device=dev, prec="fp32")
    ref.set_model_mode("eval")
    with torch.no_grad():
        ref_logits = ref.model_inference(b["img"]).float()
    state = {k: v.detach().clone() for k, v in ref.model.learner.state_dict().items()}
    del ref
    rows = []
    for prec in ("fp16", "amp"):
        t = common.make_trainer(trainer, p["classes"], size, opts, device=dev, prec=prec)
        own = t.model.learner.state_dict()
        t.model.learner.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})  # fp32 context, rounded
        t.set_model_mode("eval")
        with torch.no_grad():
            logits = t.model_inference(b["img"]).float()
        diff = float((logits - ref_logits).abs().max())
        bound = TOL_ABS + TOL_REL * float(ref_logits.abs().max())
        t.set_model_mode("train")
        losses = []
        for _ in range(p["nan_steps"]):
            s = t.forward_backward(b)
            losses.append(s.get("loss", s.get("ce_loss")))
        finite = all(math.isfinite(v) for v in losses) and _finite_state(t)
        rows.append({"method": label, "size": size, "prec": prec, "max_abs_logit_diff_vs_fp32": diff,
                     "tolerance": bound, "logits_ok": diff <= bound, "nan_steps": p["nan_steps"],
                     "finite": finite, "last_loss": losses[-1] if losses else None})
        del t
    return rows


def markdown(result: dict) -> str:
    lines = [f"# GPU benchmark ({result['device_name']})", "",
             f"torch {result['torch']}, {result['mode']}, C = {result['classes']} classes, median of "
             f"{result['steps']} steps after {result['warmup']} warm-up steps", "",
             "| method | CLIP size | precision | batch | ms/iteration | peak memory (MiB) |",
             "|---|---|---|---|---|---|"]
    for r in result["timings"]:
        peak = "n/a (CPU)" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        lines.append(f"| {r['method']} | {r['size']} | {r['prec']} | {r['batch_size']} | {r['ms_per_iter']:.1f} | "
                     f"{peak} |")
    lines += ["", f"Correctness: logits vs fp32 within {TOL_ABS} + {TOL_REL} x max|logit|; "
              "no NaN/inf over the training steps.", "",
              "| method | CLIP size | precision | max abs logit diff | tolerance | logits | steps | finite |",
              "|---|---|---|---|---|---|---|---|"]
    for c in result["checks"]:
        lines.append(f"| {c['method']} | {c['size']} | {c['prec']} | {c['max_abs_logit_diff_vs_fp32']:.4g} | "
                     f"{c['tolerance']:.4g} | {'ok' if c['logits_ok'] else 'FAIL'} | {c['nan_steps']} | "
                     f"{'ok' if c['finite'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/gpu_out", help="output folder (gpu_bench.json, gpu_bench.md)")
    ap.add_argument("--cpu-fallback", action="store_true", help="tiny sizes on CPU (automatic without a GPU)")
    args = ap.parse_args(argv)
    fallback = args.cpu_fallback or not torch.cuda.is_available()
    p = plan(fallback)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")) if fallback else torch.get_num_threads())
    t_start = time.perf_counter()
    timings = [time_steps(*run, p) for run in p["runs"]]
    checks = [row for chk in p["checks"] for row in check_precision(*chk, p)]
    result = {
        "mode": "CPU fallback (tiny sizes)" if fallback else "GPU",
        "device_name": torch.cuda.get_device_name(0) if not fallback else f"CPU ({platform.processor() or 'cpu'})",
        "torch": torch.__version__, "classes": p["classes"], "steps": p["steps"], "warmup": p["warmup"],
        "tolerance": {"abs": TOL_ABS, "rel": TOL_REL}, "timings": timings, "checks": checks,
        "seconds": time.perf_counter() - t_start,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "gpu_bench.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = markdown(result)
    with open(os.path.join(args.out, "gpu_bench.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"written: {os.path.join(args.out, 'gpu_bench.json')}, gpu_bench.md ({result['seconds']:.0f} s)")
    ok = all(c["logits_ok"] and c["finite"] for c in checks)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
