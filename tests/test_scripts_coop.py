"""Sweep scripts: skip finished runs, redo interrupted ones, leave other folders alone (stubbed python)."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.script_stub import python_stub_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def stub(tmp_path):
    env, calls = python_stub_env(tmp_path, CRT_ROOT=str(tmp_path / "crt"), OUTPUT_DG_ROOT=str(tmp_path / "dg"))
    return env, calls, tmp_path


def sh(script, *args, env, cwd="/"):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True)


def ncalls(calls):
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_coop_main_skip_and_redo(stub):
    env, calls, tmp = stub
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)
    assert r.returncode == 0, r.stderr
    assert ncalls(calls) == 2
    seed1 = tmp / "out/eurosat/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed1"
    seed2 = seed1.parent / "seed2"
    assert (seed1 / "log.txt").exists()
    assert "TRAINER.COOP.N_CTX 16" in calls.read_text() and "--trainer CoOp" in calls.read_text()
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)
    assert ncalls(calls) == 2 and r.stdout.count("skip (finished)") == 2
    (seed1 / "log.txt").write_text("epoch [1/50] ...\n")  # interrupted
    (seed1 / "stale.txt").write_text("x")
    before = (seed2 / "log.txt").stat().st_mtime_ns
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)
    # continued in place (train.py resumes), never emptied
    assert ncalls(calls) == 3 and "continue (interrupted)" in r.stdout
    assert (seed1 / "stale.txt").exists() and "Elapsed" in (seed1 / "log.txt").read_text()
    assert (seed2 / "log.txt").stat().st_mtime_ns == before
    # FORCE=1 redoes finished runs through train.py --force (which moves the old files aside)
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=dict(env, FORCE="1"))
    assert ncalls(calls) == 5 and r.stdout.count("redo (FORCE=1)") == 2
    assert all("--force" in line for line in calls.read_text().splitlines()[3:])


def test_finished_run_with_another_command_goes_to_train_py(tmp_path):
    """A finished folder is skipped without starting Python only when its record's request (train.py arguments and
    config-file hashes) is the requested one; otherwise train.py is run and compares the configs key by key."""
    env, calls = python_stub_env(tmp_path, record=True)
    args = ("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False)
    assert sh(*args, env=env).returncode == 0 and ncalls(calls) == 2
    seed1 = tmp_path / "out/eurosat/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed1"
    assert (seed1 / "run.json").is_file()
    r = sh(*args, env=env)
    assert ncalls(calls) == 2 and r.stdout.count("skip (finished)") == 2, r.stdout
    r = sh(*args, env=dict(env, EXTRA_OPTS="OPTIM.LR 0.5"))  # another hyperparameter: train.py decides
    assert ncalls(calls) == 4 and r.stdout.count("check (finished") == 2, r.stdout
    assert calls.read_text().splitlines()[-1].endswith("OPTIM.LR 0.5")


def test_data_required_and_usage(stub):
    env, calls, tmp = stub
    env = dict(env)
    del env["DATA"]
    r = sh("coop/main.sh", "eurosat", "rn50_ep50", "end", 16, 1, False, env=env)
    assert r.returncode == 2 and "DATA" in r.stderr
    r = sh("coop/main.sh", "eurosat", env=stub[0])
    assert r.returncode == 2 and "usage" in r.stderr
    if not os.path.exists(os.path.join(ROOT, "scripts", "embedded_default.sh")):
        r = sh("coop_nemesis/main.sh", env=stub[0])
        assert r.returncode == 2 and "usage" in r.stderr


def test_nemesis_train_names_and_sweep(stub):
    env, calls, tmp = stub
    env = dict(env, SEEDS="1")
    assert sh("coop_nemesis/train.sh", "dtd", "rn50", "end", 16, 16, False, 1.0, "two", 2, 0.5, 1.0, env=env).returncode == 0
    assert sh("coop_nemesis/train.sh", "dtd", "rn50", "end", 16, 16, False, 1.0, "two", 2, 0.5, 0.0, env=env).returncode == 0
    base = tmp / "out/dtd/CoOpNemesis"
    assert (base / "Beta-1.0/rn50_16shots/alpha1.0_nctx16_cscFalse_ctpend_nttwo/seed1/log.txt").exists()
    assert (base / "Beta-0.0/rn50_16shots/alpha1.0_cw0.5_pn2_nctx16_cscFalse_ctpend_nttwo/seed1/log.txt").exists()
    assert "TRAINER.CoOpNemesis.BETA 0.0" in calls.read_text()
    # sweep driver: paper recipe configs
    calls.unlink()
    r = sh("coop_nemesis/main.sh", "eurosat", "imagenet", env=dict(env, SHOTS_LIST="1 4 16", METHODS="coop pun"))
    assert r.returncode == 0, r.stderr
    text = calls.read_text()
    for cfg in ("CoOp/rn50_ep50.yaml", "CoOp/rn50_ep100.yaml", "CoOp/rn50.yaml", "CoOpNemesis/rn50_ep100.yaml"):
        assert cfg in text
    assert "imagenet.yaml --config-file " + os.path.join(ROOT, "configs/trainers/CoOp/rn50_ep50.yaml") in text
    assert "imagenet.yaml --config-file " + os.path.join(ROOT, "configs/trainers/CoOp/rn50.yaml") not in text
    # DG eval loads from imagenet (not the target dataset's folder), by default from the folder `main.sh imagenet` trains (rn50_ep50, 16 shots)
    r = sh("coop_nemesis/eval.sh", "CoOpNemesis", "imagenet_a", 1.0, "two", 2, 0.5, 1.0, env=env)
    assert r.returncode == 0 and "/imagenet/CoOpNemesis/Beta-1.0/rn50_ep50_16shots/" in calls.read_text()


def test_crt_eval_script(stub):
    env, calls, tmp = stub
    env = dict(env, SEEDS="1", DATASETS="eurosat dtd")
    r = sh("coop_crt/eval.sh", "rn50_ep50", "end", 16, 1, False, "auto", "rescale", 2, 0.001, env=env)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 2 and all("--trainer CoOpCRT" in l and "--corrupt-type scale" in l for l in lines)
    assert "--load-epoch 50" in lines[0] and "/dtd/CoOp/" in lines[1]  # the loop's dataset, the epoch derived from the config
    assert (tmp / "crt/CoOpCRT/dtd/CoOp/rn50_ep50_1shots/rescale/pos-2_scale-0.001/seed1/log.txt").exists()
