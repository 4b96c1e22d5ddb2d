#!/usr/bin/env python
"""Peak memory of one training step: CoCoOp (per-image text pass) with and without text-tower activation
checkpointing (``MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT``), against CoOp, at 100 and 1,000 classes.

    python bench/memory.py                                    # tiny ViT CLIP, B=2, C = 100 and 1000, CPU
    python bench/memory.py --size small-vit --batch-size 4 --classes 100
    python bench/memory.py --device cuda --size ViT-B/16 --batch-size 1 --classes 100 1000

Every configuration runs in a fresh process (``--child``): build the registered trainer (``bench/common.py``),
one warm-up step, then one measured step. CPU: the step's peak RSS growth (RSS sampled every millisecond during the
step, minus the RSS before it; the warm-up has already paid for weights and optimiser state). CUDA: ``max_memory_allocated``
during the step minus the allocation before it. Also prints the time of the measured step (checkpointing
recomputes the text tower in the backward pass) and checks that the step's loss is identical with and without
checkpointing (exit 1 otherwise).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _RssPeak:
    """Peak resident set size while in the block, sampled every millisecond by a thread (torch ops release the
    GIL; activations live for the whole forward/backward, far longer than a sample interval)."""

    def __enter__(self):
        import threading

        self.peak = _rss_mib()
        self._stop = threading.Event()

        def poll():
            while not self._stop.is_set():
                self.peak = max(self.peak, _rss_mib())
                self._stop.wait(0.001)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def child(method: str, classes: int, ckpt: bool, size: str, batch_size: int, device: str) -> dict:
    import torch

    import common

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    opts = {"CoOp": ["TRAINER.COOP.N_CTX", "4"],
            "CoCoOp": ["TRAINER.COCOOP.N_CTX", "4", "MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT", str(ckpt)]}[method]
    t = common.make_trainer(method, classes, size, opts, device=device)
    b = common.batch(size, classes, batch_size, device)
    t.forward_backward(b)  # warm-up: optimiser state, allocator pools
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = _rss_mib()
    with _RssPeak() as rss:
        t0 = time.perf_counter()
        summary = t.forward_backward(b)
        common.sync(device)
        dt = time.perf_counter() - t0
    if device.startswith("cuda"):
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = rss.peak - base
    return {"method": method, "classes": classes, "checkpoint": ckpt, "step_peak_mib": peak, "step_s": dt,
            "loss": summary.get("loss", summary.get("ce_loss")), "size": size, "batch_size": batch_size,
            "device": device}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--size", default="tiny-vit")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None)
    p.add_argument("--child", nargs=3, metavar=("METHOD", "C", "CKPT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        m, c, k = args.child
        print("MEMORY_JSON " + json.dumps(child(m, int(c), k == "1", args.size, args.batch_size, args.device)))
        return 0

    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    rows = []
    for c in args.classes:
        for method, ckpt in (("CoOp", False), ("CoCoOp", False), ("CoCoOp", True)):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", method, str(c), "1" if ckpt else "0",
                   "--size", args.size, "--batch-size", str(args.batch_size), "--device", args.device]
            run = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if run.returncode != 0:
                print(run.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(run.stdout.split("MEMORY_JSON ", 1)[1].splitlines()[0]))
    unit = "cuda max_memory_allocated" if args.device.startswith("cuda") else "CPU peak RSS growth"
    print(f"one training step, {args.size} CLIP, B={args.batch_size}, {args.device} ({unit}, MiB)")
    print(f"{'C':>5} {'method':<18} {'step peak MiB':>14} {'step s':>8} {'vs CoOp':>8} {'ckpt ratio':>10}")
    ok = True
    for c in args.classes:
        sel = {(r["method"], r["checkpoint"]): r for r in rows if r["classes"] == c}
        coop, plain, ck = sel[("CoOp", False)], sel[("CoCoOp", False)], sel[("CoCoOp", True)]
        for label, r in (("CoOp", coop), ("CoCoOp", plain), ("CoCoOp + checkpoint", ck)):
            vs = r["step_peak_mib"] / max(coop["step_peak_mib"], 1e-9)
            ratio = r["step_peak_mib"] / max(plain["step_peak_mib"], 1e-9) if r["method"] == "CoCoOp" else float("nan")
            print(f"{c:>5} {label:<18} {r['step_peak_mib']:14.1f} {r['step_s']:8.2f} {vs:8.1f} {ratio:10.2f}")
        if plain["loss"] != ck["loss"]:
            ok = False
            print(f"  LOSS DIFFERS with checkpointing: {plain['loss']!r} vs {ck['loss']!r}")
        else:
            print(f"  loss identical with and without checkpointing ({plain['loss']!r})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
