"""The slurm executor on a REAL Slurm (tools/slurm/local_cluster.sh; .ci/run starts it): a 4-run sweep on the
embedded default (TinySynth CLIP + SynthShapes) finishes with the same accuracies and weights as the local executor,
although one of its tasks is requeued mid-training (``scontrol requeue``) and resumes from its run folder.

No silent skip in CI: with CI set, a missing or stopped cluster FAILS with the reason. Outside CI the module is
skipped only when ``sbatch`` is not installed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from sweeps.runs import REPO

HERE = os.path.dirname(os.path.abspath(__file__))


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch not found (install and start the cluster: bash tools/slurm/local_cluster.sh)"
    r = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    states = r.stdout.split()
    if r.returncode != 0 or not any(s.startswith(("idle", "mixed", "alloc", "completing")) for s in states):
        return (f"the Slurm cluster is not up (sinfo: {(r.stdout + r.stderr).strip() or 'no nodes'}); "
                "start it with: bash tools/slurm/local_cluster.sh")
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = _cluster_problem()
    if problem:
        if not os.environ.get("CI") and shutil.which("sbatch") is None:
            pytest.skip(problem)
        pytest.fail(problem)


SPEC = """
protocol: fewshot
data: {data}
output_root: {out}
datasets: [synth_shapes]
methods: [coop, pun]
cfg: tinysynth
shots: [16]
seeds: [1, 2]
overrides: {{OPTIM.MAX_EPOCH: 4, DATALOADER.TEST.BATCH_SIZE: 400}}  # the shipped CHECKPOINT_FREQ 0: resume.pth.tar
slurm: {{cpus_per_task: 1, time: 20}}
"""


def _sweep(spec: str, *extra: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "sweep.py"), spec, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _squeue(job: str) -> str:
    r = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%r"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith(job + "|"):
            return line
    return ""


def _results(summary_path: str, root: str) -> dict[str, dict]:
    import torch

    with open(summary_path) as f:
        summary = json.load(f)
    out = {}
    for r in summary["runs"]:
        folder = r["folders"][0]
        with open(os.path.join(folder, "results.json")) as f:
            res = json.load(f)
        ckpts = sorted(os.path.join(dp, n) for dp, _, names in os.walk(folder) for n in names
                       if n.startswith("model.pth.tar-4"))
        assert ckpts, folder
        weights = {c[len(folder):]: torch.load(c, map_location="cpu", weights_only=True)["state_dict"] for c in ckpts}
        out[os.path.relpath(folder, root)] = {
            "acc": res.get("accuracy"), "weights": weights, "status": r["status"], "restarts": r.get("restarts", 0)}
    return out


def test_slurm_sweep_matches_local_with_a_requeued_task(cluster, tmp_path):
    data = tmp_path / "data"
    specs = {}
    for name in ("local", "slurm"):
        p = tmp_path / f"{name}.yaml"
        p.write_text(textwrap.dedent(SPEC.format(data=data, out=tmp_path / name)))
        specs[name] = str(p)

    t0 = time.time()
    local = _sweep(specs["local"], "--executor", "local", "--slots", "2")
    out_local = local.communicate(timeout=900)[0]
    assert local.returncode == 0, out_local
    t_local = time.time() - t0

    t0 = time.time()
    proc = _sweep(specs["slurm"], "--executor", "slurm")
    sweep_dir = tmp_path / "slurm" / "sweeps" / "slurm"
    log0 = tmp_path / "slurm/synth_shapes/CoOp/tinysynth_16shots/nctx16_cscFalse_ctpend/seed1/log.txt"
    job = None
    requeued = False
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if job is None and (sweep_dir / "jobs.json").exists():
            job = json.loads((sweep_dir / "jobs.json").read_text())["jobs"]["0"]
        # mid-training: epoch 1 is done (and checkpointed), epoch 2 runs
        if job and not requeued and log0.exists() and "epoch [2/4]" in log0.read_text(errors="replace"):
            r = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            requeued = True
        if requeued and "BeginTime" in _squeue(job):  # Slurm delays a requeued job ~2 minutes: start it now
            subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
        time.sleep(0.2)
    out_slurm = proc.communicate(timeout=max(10, deadline - time.time()))[0]
    t_slurm = time.time() - t0
    assert requeued, "the requeue did not happen mid-training: " + out_slurm
    assert proc.returncode == 0, out_slurm
    print(f"local sweep {t_local:.0f}s, slurm sweep with a requeue {t_slurm:.0f}s")

    a = _results(str(tmp_path / "local" / "sweeps" / "local" / "summary.json"), str(tmp_path / "local"))
    b = _results(str(sweep_dir / "summary.json"), str(tmp_path / "slurm"))
    assert sorted(a) == sorted(b) and len(a) == 4
    key0 = os.path.relpath(os.path.dirname(log0), tmp_path / "slurm")
    assert b[key0]["restarts"] >= 1 and all(v["restarts"] == 0 for k, v in b.items() if k != key0), b
    for k in a:
        assert b[k]["status"] == "finished" and a[k]["acc"] == b[k]["acc"], (k, a[k]["acc"], b[k]["acc"])
        assert a[k]["weights"].keys() == b[k]["weights"].keys()
        for c in a[k]["weights"]:
            sa, sb = a[k]["weights"][c], b[k]["weights"][c]
            assert sa.keys() == sb.keys() and all(sa[t].equal(sb[t]) for t in sa), (k, c)
    # the requeued task ran twice: the second attempt continued the folder (epoch 1 not trained again; epoch 2 is
    # continued from the resume checkpoint the SIGTERM wrote, so its lines may or may not repeat)
    text = log0.read_text(errors="replace")
    assert text.count("epoch [1/4]") == 2 and text.count("epoch [2/4]") >= 2 and text.count("epoch [4/4]") == 2, text
    assert "Resuming from" in text or "resume" in text.lower(), text


def test_local_cluster_start_is_idempotent(cluster):
    """Starting the running cluster again changes nothing: same config file, same daemons."""
    script = os.path.join(REPO, "tools", "slurm", "local_cluster.sh")
    conf = "/etc/slurm/slurm.conf"
    if os.geteuid() != 0 or not os.path.isfile(conf) or "local_cluster.sh" not in open(conf).read():
        pytest.skip("the cluster was not started by tools/slurm/local_cluster.sh here")
    before = (os.stat(conf).st_mtime_ns, subprocess.run(["bash", script, "status"], capture_output=True,
                                                         text=True).stdout)
    r = subprocess.run(["bash", script, "start"], capture_output=True, text=True)
    assert r.returncode == 0 and "idle" in r.stdout, r.stdout + r.stderr
    after = (os.stat(conf).st_mtime_ns, subprocess.run(["bash", script, "status"], capture_output=True,
                                                        text=True).stdout)
    assert before[0] == after[0]
    pids = [ln for ln in before[1].splitlines() if "pid" in ln]
    assert len(pids) == 3 and pids == [ln for ln in after[1].splitlines() if "pid" in ln]
