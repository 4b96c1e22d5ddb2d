#!/usr/bin/env python
"""Corruption grid: ``tools/crt_sweep.py`` (one process, test images encoded once, the text features of all
corrupted contexts of a seed in one batched call) vs one ``train.py --trainer CoOpCRT --eval-only`` process
per setting (what ``scripts/coop_crt/eval.sh`` runs), on the embedded default:

* backbone ``TinySynth`` (``clip/weights/TinySynth.pt``), dataset ``SynthShapes`` (generated, 20 classes,
  800 test images), ``configs/trainers/CoOpCRT/tinysynth.yaml``;
* a short CoOp checkpoint trained first into a temporary folder (``--epochs`` at ``--shots``);
* the grid: ``original`` + ``replace`` std 0 and ``scale`` 0.001 at positions 0..N_CTX-1 (16 positions:
  33 settings).

Separate processes are timed on a SAMPLE of the grid (``--n-separate`` settings spread over it, default 3)
and extrapolated to the whole grid (per-process median x grid size); the output says so. Sweep and sample
are interleaved ``--repeats`` times (default 3); medians are reported. For the sampled settings the two
paths must agree exactly: ``data.pth`` (every tensor bit for bit, ``accuracy``), ``results.json`` and the
``=> result`` block of ``log.txt``; otherwise the script exits 1.

    python bench/crt_grid.py                  # ~2-3 min on a 2-core CPU
    python bench/crt_grid.py --repeats 3 --n-separate 5 --keep
    python bench/crt_grid.py --n-ctx 4 --n-separate 9 --separate-checkout ../before   # 9 settings, all measured,
                                              # separate processes of another checkout (e.g. a pre-change commit)

With ``--n-separate`` equal to the grid size every setting is run separately (nothing extrapolated).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_YAML = os.path.join(ROOT, "configs", "datasets", "synth_shapes.yaml")
COOP_YAML = os.path.join(ROOT, "configs", "trainers", "CoOp", "tinysynth.yaml")
CRT_YAML = os.path.join(ROOT, "configs", "trainers", "CoOpCRT", "tinysynth.yaml")


def setting_sub(kind: str, pos: int, factor: str) -> str:
    """Folder of a setting under the output base (the layout of scripts/coop_crt/eval.sh)."""
    if kind == "original":
        return "original"
    if kind == "replace":
        return os.path.join("replace", f"pos-{pos}_std-{factor}")
    return os.path.join("rescale", f"pos-{pos}_scale-{factor}")


def result_block(log_path: str) -> list[str]:
    """The last ``=> result`` block of a log (5 lines after the marker)."""
    with open(log_path) as f:
        lines = [line.rstrip("\n") for line in f]
    idx = max(i for i, line in enumerate(lines) if line.strip() == "=> result")
    return lines[idx : idx + 6]


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"error: command failed ({proc.returncode}): {' '.join(cmd)}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=2, help="CoOp training epochs of the checkpoint (default 2)")
    p.add_argument("--shots", type=int, default=16, help="shots per class of the checkpoint (default 16)")
    p.add_argument("--n-ctx", type=int, default=16, help="context length = number of grid positions (default 16)")
    p.add_argument("--n-separate", type=int, default=3, help="settings run as separate processes (>= 3, default 3)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved sweep / separate-sample rounds (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default="", help="working folder (default: a new temp folder)")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument("--separate-checkout", default=ROOT,
                   help="checkout whose train.py runs the separate processes (default: this one)")
    args = p.parse_args(argv)
    if args.n_separate < 3:
        p.error("--n-separate must be >= 3")
    separate_train = os.path.join(os.path.abspath(args.separate_checkout), "train.py")
    if not os.path.isfile(separate_train):
        p.error(f"--separate-checkout: no train.py in {args.separate_checkout}")

    tmp = args.workdir or tempfile.mkdtemp(prefix="crt_grid_")
    os.makedirs(tmp, exist_ok=True)
    data, model_dir = os.path.join(tmp, "data"), os.path.join(tmp, "model")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    py, seed = sys.executable, str(args.seed)
    try:
        t_train = run([py, os.path.join(ROOT, "train.py"), "--root", data, "--seed", seed, "--trainer", "CoOp",
                       "--dataset-config-file", DATASET_YAML, "--config-file", COOP_YAML, "--output-dir", model_dir,
                       "DATASET.NUM_SHOTS", str(args.shots), "OPTIM.MAX_EPOCH", str(args.epochs),
                       "TRAINER.COOP.N_CTX", str(args.n_ctx)], env)
        print(f"trained CoOp checkpoint (TinySynth, SynthShapes {args.shots} shots, {args.epochs} epochs) "
              f"in {t_train:.1f}s")

        positions = list(range(args.n_ctx))
        grid = [("original", 0, "0")] + [("replace", q, "0") for q in positions] + \
               [("scale", q, "0.001") for q in positions]
        n_separate = min(args.n_separate, len(grid))
        step = (len(grid) - 1) / (n_separate - 1)
        sample = [grid[round(i * step)] for i in range(n_separate)]  # spread over the grid, both ends
        whole = n_separate == len(grid)
        common = ["--root", data, "--dataset-config-file", DATASET_YAML, "--config-file", CRT_YAML]
        opts = ["DATASET.NUM_SHOTS", str(args.shots), "TRAINER.CoOpCRT.N_CTX", str(args.n_ctx)]

        t_sweeps, t_seps, ratios = [], [], []
        for r in range(args.repeats):
            sweep_base, sep_base = os.path.join(tmp, f"sweep{r}"), os.path.join(tmp, f"separate{r}")
            t_sweep = run([py, os.path.join(ROOT, "tools", "crt_sweep.py"), *common, "--model-dir", model_dir,
                           "--load-epoch", str(args.epochs), "--output-base", sweep_base, "--seeds", seed,
                           "--types", "original", "replace", "scale", "--positions", *map(str, positions),
                           "--replace-factors", "0", "--scale-factors", "0.001", "--opts", *opts], env)
            per = []
            for kind, pos, factor in sample:
                out = os.path.join(sep_base, setting_sub(kind, pos, factor), f"seed{seed}")
                per.append(run([py, separate_train, *common, "--seed", seed, "--trainer", "CoOpCRT",
                                "--output-dir", out, "--model-dir", model_dir, "--load-epoch", str(args.epochs),
                                "--eval-only", "--corrupt-type", kind, "--corrupt-position", str(pos),
                                "--crt-factor", factor, *opts], env))
            t_sep = sum(per) if whole else statistics.median(per) * len(grid)
            t_sweeps.append(t_sweep)
            t_seps.append(t_sep)
            ratios.append(t_sep / t_sweep)
            how = "measured, every setting" if whole else \
                f"{len(grid)} x {statistics.median(per):.1f}s, extrapolated"
            print(f"round {r + 1}: sweep {t_sweep:.1f}s; separate processes {', '.join(f'{x:.1f}' for x in per)}s "
                  f"-> {t_sep:.0f}s ({how}); x{t_sep / t_sweep:.1f} (sweep / separate {t_sweep / t_sep:.3f})")

        # numerics: the sampled settings must be identical in both paths (last round)
        import torch

        bad = []
        for kind, pos, factor in sample:
            sub = os.path.join(setting_sub(kind, pos, factor), f"seed{seed}")
            a_dir, b_dir = os.path.join(sep_base, sub), os.path.join(sweep_base, sub)
            a = torch.load(os.path.join(a_dir, "data.pth"), weights_only=True)
            b = torch.load(os.path.join(b_dir, "data.pth"), weights_only=True)
            same = a.keys() == b.keys() and all(
                torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)
            with open(os.path.join(a_dir, "results.json")) as fa, open(os.path.join(b_dir, "results.json")) as fb:
                same_json = json.load(fa) == json.load(fb)
            same_log = result_block(os.path.join(a_dir, "log.txt")) == result_block(os.path.join(b_dir, "log.txt"))
            diff = max(((a[k].float() - b[k].float()).abs().max().item() for k in a
                        if torch.is_tensor(a[k]) and a[k].is_floating_point() and a[k].shape == b[k].shape),
                       default=0.0)
            print(f"  {sub}: accuracy {100 * a['accuracy']:.2f}% (separate) vs {100 * b['accuracy']:.2f}% (sweep); "
                  f"data.pth {'identical' if same else 'DIFFERENT'} (max abs diff {diff:.3g}), results.json "
                  f"{'identical' if same_json else 'DIFFERENT'}, "
                  f"result block {'identical' if same_log else 'DIFFERENT'}")
            if not (same and same_json and same_log):
                bad.append(sub)
        n_done = sum("data.pth" in files for _, _, files in os.walk(sweep_base))
        if n_done != len(grid):
            bad.append(f"sweep wrote {n_done} data.pth files, expected {len(grid)}")

        how = "measured, every setting" if whole else f"EXTRAPOLATED from {n_separate} measured settings per round"
        where = "" if os.path.samefile(args.separate_checkout, ROOT) else f" of {args.separate_checkout}"
        print(f"{args.n_ctx}-position grid ({len(grid)} settings), median of {args.repeats} interleaved rounds: "
              f"one process per setting{where} ~{statistics.median(t_seps):.0f}s ({how}), "
              f"sweep {statistics.median(t_sweeps):.1f}s (measured, whole grid), "
              f"speed-up x{statistics.median(ratios):.1f}, sweep / separate {1 / statistics.median(ratios):.3f}")
        if bad:
            print(f"MISMATCH between the two paths: {bad}", file=sys.stderr)
            return 1
        print("numerics: sampled settings identical in both paths (data.pth bit for bit, results.json, log block)")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        elif not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
