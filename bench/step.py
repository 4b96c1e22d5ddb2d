#!/usr/bin/env python
"""Training-step time per method and its ratio to a CoOp step (the trainers' own ``forward_backward``).

    python bench/step.py                                   # C=50, B=8, small ViT and RN CLIPs, CPU
    python bench/step.py --classes 100 --batch-size 32 --steps 5 --rounds 5
    python bench/step.py --device cuda --sizes ViT-B/16 RN50 --classes 100 --batch-size 32

Each method is the registered trainer (``bench/common.py``: learner, head, regularisers, optimiser, logging of the
context norms, ``.item()`` summaries) on a random CLIP with C synthetic classes, stepping on one fixed random batch.
After 2 untimed warm-up steps (for PAN: until its
once-per-shape exactness checks have seen every corrupted position, as in any run longer than a few dozen steps),
the methods take turns (rounds x steps, interleaved, so a drift of the machine's
speed hits every method alike); the median ms/step and the ratio to CoOp's median are printed, plus
``PAN extra = PAN / CoOp - 1`` (issue target: <= 0.30). PLOT is included once a ``PLOT`` trainer is registered.
``--methods CoOp PAN-NP1 CoCoOp CoCoOp+PAN PLOT PLOT+PAN`` also times PAN with NP 1 and PAN on CoCoOp and PLOT
(extra over their hosts printed).
``--rows-ab`` also runs every method with the last block on all rows (``clip.model.Transformer.rows_exact`` off:
the full block, then pooling), labelled ``<method>/full``, and prints the ratio with / without that shortcut.
``--shared-ab`` likewise runs every method with the shared-rows path off (``<method>/unshared``: the positions that
every prompt shares, e.g. CoOp's start token and context, computed per prompt again, also in PAN's corrupted copies).
``--json PATH`` writes the table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import torch  # noqa: E402


_PAN = ["REGULARISER.NEMESIS.A", "1.0", "REGULARISER.NEMESIS.BETA", "0.0", "REGULARISER.NEMESIS.NP", "2",
        "REGULARISER.NEMESIS.CW", "0.5"]
#: run only when named in --methods: PAN with NP 1, PAN on CoCoOp and on PLOT, with the extra over their hosts printed
ON_REQUEST = {"PAN-NP1": ("CoOpNemesis", ["TRAINER.CoOpNemesis.N_CTX", "16", *_PAN, "REGULARISER.NEMESIS.NP", "1"],
                          "CoOp"),
              "CoCoOp+PAN": ("CoCoOpNemesis", ["TRAINER.COCOOP.N_CTX", "4", *_PAN], "CoCoOp"),
              "PLOT+PAN": ("PLOTNemesis", _PAN, "PLOT")}


def methods(extra_plot: bool = True, requested: list[str] | None = None) -> list[tuple[str, str, list[str]]]:
    out = list(common.METHODS)
    if extra_plot and common.registered("PLOT"):
        out.append(("PLOT", "PLOT", []))
    out += [(label, trainer, opts) for label, (trainer, opts, _) in ON_REQUEST.items() if label in (requested or [])]
    return out


def warm_checks(trainer, batch: dict, max_steps: int = 200) -> int:
    """Step until PAN's once-per-shape exactness checks are done (copy 0 shared, the prefix of every corrupted
    position reused), so that the timed steps are those of a long run, not its first few; returns the steps."""
    regs = [r for r in getattr(trainer, "regularisers", []) if hasattr(r, "_suffix_exact")
            and r.uses_pan and not r.random_mode and r.target == "text"]
    steps = 0
    for reg in regs:
        n_ctx = reg.alpha.shape[0]
        while steps < max_steps and (not reg._share_copy0 or (all(reg._share_copy0.values()) and len(
                {key[-1] for key in reg._suffix_exact}) < n_ctx)):
            if steps >= 3 and not reg._suffix_exact:
                break  # the prefix path does not apply to this learner (deep prompts, ensembles)
            trainer.forward_backward(batch)
            steps += 1
    return steps


def _full_rows(trainer) -> None:
    """Switch the last-block rows shortcut off in every transformer of ``trainer``'s model (the full block runs)."""
    from clip.model import Transformer

    for m in trainer.model.modules():
        if isinstance(m, Transformer):
            m.rows_exact = lambda *a: False


def _unshared(trainer) -> None:
    """Switch the shared-rows path off in ``trainer``'s model (every prompt's rows computed for that prompt)."""
    from clip.model import CLIP, Transformer

    for m in trainer.model.modules():
        if isinstance(m, Transformer):
            m.shared_length = lambda *a, **k: None
        if isinstance(m, CLIP):
            m._suffix_shared = lambda *a, **k: None


#: --rows-ab / --shared-ab: the label suffix and the switch of each variant
VARIANTS = {"rows_ab": ("/full", _full_rows), "shared_ab": ("/unshared", _unshared)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--classes", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=3, help="steps per method per round (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--sizes", nargs="+", default=["small-vit", "small-rn"], choices=sorted(common.SIZES))
    p.add_argument("--methods", nargs="+", default=None, help="labels to run (default: all)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--rows-ab", action="store_true",
                   help="also time each method with the last block on every row (the shortcut off)")
    p.add_argument("--shared-ab", action="store_true",
                   help="also time each method with the rows every prompt shares computed per prompt (path off)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    table = []
    for size in args.sizes:
        runs = []
        for label, trainer, opts in methods(requested=args.methods):
            if args.methods and label not in args.methods:
                continue
            if label == "MaPLe" and common.SIZES[size].get("vision_patch_size", 8) is None:
                continue  # MaPLe prompts the ViT image tower
            variants = [("", None)] + [VARIANTS[name] for name in VARIANTS if getattr(args, name)]
            for suffix, switch in variants:
                t = common.make_trainer(trainer, args.classes, size, opts, device=args.device)
                if switch is not None:
                    switch(t)
                b = common.batch(size, args.classes, args.batch_size, args.device)
                for _ in range(2):
                    t.forward_backward(b)
                warm_checks(t, b)
                runs.append((label + suffix, t, b))
        times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
        for _ in range(args.rounds):
            for label, t, b in runs:
                for _ in range(args.steps):
                    common.sync(args.device)
                    t0 = time.perf_counter()
                    t.forward_backward(b)
                    common.sync(args.device)
                    times[label].append(time.perf_counter() - t0)
        med = {k: 1000 * statistics.median(v) for k, v in times.items()}
        base = med.get("CoOp")
        print(f"\n{size}: C={args.classes}, B={args.batch_size}, {args.device}, median of {args.rounds}x{args.steps}"
              " interleaved steps")
        print(f"{'method':<16} {'ms/step':>9} {'/ CoOp':>7}")
        for label in med:
            ratio = med[label] / base if base else float("nan")
            print(f"{label:<16} {med[label]:9.1f} {ratio:7.2f}")
            table.append({"size": size, "method": label, "ms_per_step": med[label], "ratio_to_coop": ratio,
                          "classes": args.classes, "batch_size": args.batch_size, "device": args.device})
        if base and "PAN" in med:
            print(f"PAN extra over a CoOp step: {med['PAN'] / base - 1:+.2f} (target <= +0.30)")
        for label, (_, _, host) in ON_REQUEST.items():
            if label in med and host in med:
                print(f"{label} extra over a {host} step: {med[label] / med[host] - 1:+.2f}")
        for label in [k for k in med if k + "/full" in med]:
            print(f"{label} with / without the last-block rows shortcut: {med[label] / med[label + '/full']:.3f}")
        for label in [k for k in med if k + "/unshared" in med]:
            print(f"{label} with / without the shared-rows path: {med[label] / med[label + '/unshared']:.3f}")
            if label == "PAN" and "CoOp/unshared" in med:
                print(f"PAN / CoOp without the shared-rows path: {med['PAN/unshared'] / med['CoOp/unshared']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
