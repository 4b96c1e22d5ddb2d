#!/usr/bin/env python
"""A stand-in run for the sweep-executor tests: ``--output-dir D [--sleep S] [--fail MSG]``.

Records its environment and start/end times in ``D/info.json``, then writes a completion record ``run.json`` in
the format of dassl/utils/run_record.py (or prints ``error: MSG`` and exits 2). Imports nothing heavy (no torch).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--output-dir", required=True)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fail", default="")
a = p.parse_args()
os.makedirs(a.output_dir, exist_ok=True)
t0 = time.time()
time.sleep(a.sleep)
info = {"start": t0, "end": time.time(), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "threads": os.environ.get("OMP_NUM_THREADS")}
with open(osp.join(a.output_dir, "info.json"), "w") as f:
    json.dump(info, f)
print("some output")
if a.fail:
    print(f"error: {a.fail}", file=sys.stderr)
    sys.exit(2)
with open(osp.join(a.output_dir, "run.json"), "w") as f:
    json.dump({"finished": True, "kind": "train", "config_hash": "x", "results": {"accuracy": 1.0}}, f)
