"""The bench scripts as CI runs them: the GPU benchmark's CPU fallback (JSON, markdown table), the step bench."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_bench_cpu_fallback_writes_json_and_markdown(tmp_path):
    out = tmp_path / "gpu"
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    run = subprocess.run(["bash", os.path.join(ROOT, "bench", "gpu.sh"), str(out), "--cpu-fallback"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    data = json.loads((out / "gpu_bench.json").read_text())
    assert data["mode"].startswith("CPU fallback")
    methods = {(r["method"], r["prec"]) for r in data["timings"]}
    assert {("CoOp", "fp16"), ("CoOp", "amp"), ("CoCoOp", "fp16"), ("MaPLe", "fp16"), ("PAN", "fp16")} <= methods
    assert all(r["ms_per_iter"] > 0 for r in data["timings"])
    checks = {c["prec"]: c for c in data["checks"]}
    assert set(checks) == {"fp16", "amp"}
    for c in checks.values():
        assert c["logits_ok"] and c["finite"] and c["nan_steps"] > 0
        assert 0 <= c["max_abs_logit_diff_vs_fp32"] <= c["tolerance"]
    assert checks["fp16"]["max_abs_logit_diff_vs_fp32"] > 0  # fp16 really ran in half precision
    md = (out / "gpu_bench.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert len(rows) == len(data["timings"]) + len(data["checks"])
    assert "| method | CLIP size | precision | batch | ms/iteration | peak memory (MiB) |" in md


def test_step_bench_runs_pan_with_its_warm_up(tmp_path):
    out = tmp_path / "step.json"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "step.py"), "--sizes", "tiny-vit", "--classes",
                          "20", "--methods", "CoOp", "PAN", "PAN-NP1", "--rounds", "1", "--steps", "1", "--rows-ab",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "PAN extra over a CoOp step" in run.stdout and "PAN-NP1 extra over a CoOp step" in run.stdout
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert "CoOp with / without the last-block rows shortcut" in run.stdout
    assert set(rows) == {"CoOp", "PAN", "PAN-NP1", "CoOp/full", "PAN/full", "PAN-NP1/full"}
    assert rows["CoOp"]["ratio_to_coop"] == 1.0
    assert all(r["ms_per_step"] > 0 for r in rows.values())


def test_step_bench_shared_ab_switches_the_shared_rows_off(tmp_path):
    out = tmp_path / "step.json"
    run = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "step.py"), "--sizes", "tiny-vit", "--classes",
                          "20", "--methods", "CoOp", "CoCoOp", "--rounds", "1", "--steps", "1", "--shared-ab",
                          "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "CoCoOp with / without the shared-rows path" in run.stdout
    assert {r["method"] for r in json.loads(out.read_text())} == {"CoOp", "CoOp/unshared", "CoCoOp", "CoCoOp/unshared"}
    # the switch really turns the path off (else the A/B would time the same thing twice)
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import common
        import step
        from clip.model import Transformer
    finally:
        sys.path.pop(0)
    verdicts = {}
    for off in (False, True):
        t = common.make_trainer("CoOp", 20, "tiny-vit", ["TRAINER.COOP.N_CTX", "16"])
        if off:
            step._unshared(t)
        t.forward_backward(common.batch("tiny-vit", 20, 4))
        verdicts[off] = [v for m in t.model.modules() if isinstance(m, Transformer) for v in m.shared_verdicts.values()]
    assert verdicts[False] and verdicts[True] == []


def test_data_cache_bench_compares_every_batch(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "data_cache.py"), "--images", "40", "--epochs",
                          "1", "--size", "32", "--folder", str(tmp_path)], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "batches identical: True" in run.stdout and "cache: 40 images" in run.stdout
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    try:
        import torch
        from data_cache import _digest
    finally:
        sys.path.pop(0)
    img = torch.arange(24, dtype=torch.float32).view(2, 3, 2, 2)
    label = torch.tensor([0, 1])
    same = _digest({"img": img.clone(), "label": label.clone()})
    assert same == _digest({"img": img, "label": label})
    nudged = img.clone()
    nudged[1, 2, 1, 1] = torch.nextafter(nudged[1, 2, 1, 1], torch.tensor(100.0))  # one value, the last bit
    assert _digest({"img": nudged, "label": label}) != same
    assert _digest({"img": img, "label": label.flip(0)}) != same
