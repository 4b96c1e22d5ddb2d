#!/usr/bin/env python
"""Corruption grid (16 positions, replace): one ``train.py --eval-only`` process per setting (measured on a few,
extrapolated to the grid) vs ``tools/crt_sweep.py`` (one process, test images encoded once). Tiny CLIP, generated
data; checks equal accuracies on the measured settings and prints the ratio (~1-2 min on CPU)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main(n_measured: int = 3, n_pos: int = 16) -> None:
    from tests.helpers.fake_datasets import make_eurosat
    from tests.helpers.trainer_fixtures import reference_checkpoint, write_tiny_clip

    tmp = tempfile.mkdtemp(prefix="crt_grid_")
    data = os.path.join(tmp, "data")
    make_eurosat(data)
    backbone = write_tiny_clip(os.path.join(tmp, "tiny.pt"))
    cfg = os.path.join(tmp, "tiny.yaml")
    with open(cfg, "w") as f:
        f.write("DATALOADER:\n  TEST:\n    BATCH_SIZE: 4\n  NUM_WORKERS: 0\nINPUT:\n  SIZE: (32, 32)\n"
                f"OPTIM:\n  MAX_EPOCH: 1\nMODEL:\n  BACKBONE:\n    NAME: \"{backbone}\"\n")
    torch.manual_seed(0)
    model_dir = os.path.join(tmp, "model")
    reference_checkpoint(os.path.join(model_dir, "prompt_learner", "model.pth.tar-1"), torch.randn(n_pos, 64) * 0.02,
                         torch.zeros(10, 1, 64), torch.zeros(10, 77 - 1 - n_pos, 64))
    ds_yaml = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")
    common = ["--root", data, "--dataset-config-file", ds_yaml, "--config-file", cfg]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    t0 = time.perf_counter()
    for p in range(n_measured):
        out = os.path.join(tmp, "separate", f"pos-{p}_std-0.5", "seed1")
        subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *common, "--seed", "1", "--trainer", "CoOpCRT",
                        "--output-dir", out, "--model-dir", model_dir, "--load-epoch", "1", "--eval-only",
                        "--corrupt-type", "replace", "--corrupt-position", str(p), "--crt-factor", "0.5",
                        "TRAINER.CoOpCRT.N_CTX", str(n_pos)], check=True, capture_output=True, env=env)
    t_sep = (time.perf_counter() - t0) / n_measured * n_pos
    t0 = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "crt_sweep.py"), *common, "--model-dir", model_dir,
                    "--load-epoch", "1", "--output-base", os.path.join(tmp, "sweep"), "--seeds", "1", "--types",
                    "replace", "--positions", *map(str, range(n_pos)), "--replace-factors", "0.5",
                    "--opts", "TRAINER.CoOpCRT.N_CTX", str(n_pos)], check=True, capture_output=True, env=env)
    t_sweep = time.perf_counter() - t0
    for p in range(n_measured):
        a = torch.load(os.path.join(tmp, "separate", f"pos-{p}_std-0.5", "seed1", "data.pth"), weights_only=True)
        b = torch.load(os.path.join(tmp, "sweep", "replace", f"pos-{p}_std-0.5", "seed1", "data.pth"), weights_only=True)
        assert a["accuracy"] == b["accuracy"] and torch.equal(a["text_feature"], b["text_feature"])
    print(f"{n_pos}-position grid: one process per setting ~{t_sep:.1f}s (extrapolated from {n_measured}), "
          f"sweep {t_sweep:.1f}s, speed-up x{t_sep / t_sweep:.1f} (equal accuracies)")


if __name__ == "__main__":
    main()
