"""scripts/plot/train.sh and scripts/plot_nemesis/train.sh (the Nemesis fork's names, arguments and folders) with a
stub python: every option line, the folder names, skip / continue / FORCE, usage errors."""
from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.script_stub import python_stub_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def stub(tmp_path):
    env, calls = python_stub_env(tmp_path)
    return env, calls, tmp_path


def sh(script, *args, env):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *map(str, args)], env=env, cwd="/",
                          capture_output=True, text=True)


def lines(calls):
    return calls.read_text().splitlines() if calls.exists() else []


def argv_pairs(line: str) -> dict[str, str]:
    words = line.split()
    return {words[i]: words[i + 1] for i in range(len(words) - 1)}


def test_plot_train_folders_options_and_skip(stub):
    env, calls, tmp = stub
    r = sh("plot/train.sh", "eurosat", "rn50_ep50", "middle", 8, 1, True, env=env)
    assert r.returncode == 0, r.stderr
    base = tmp / "out/eurosat/PLOT/rn50_ep50_1shots/N4_nctx8_cscTrue_ctpmiddle"
    assert (base / "seed1/log.txt").exists() and (base / "seed2/log.txt").exists()
    got = lines(calls)
    assert len(got) == 2
    for seed, line in zip((1, 2), got):
        a = argv_pairs(line)
        assert a["--trainer"] == "PLOT" and a["--seed"] == str(seed) and a["--root"] == str(tmp)
        assert a["--config-file"] == os.path.join(ROOT, "configs/trainers/PLOT/rn50_ep50.yaml")
        assert a["--dataset-config-file"] == os.path.join(ROOT, "configs/datasets/eurosat.yaml")
        assert a["--output-dir"] == str(base / f"seed{seed}")
        assert (a["TRAINER.PLOT.N"], a["TRAINER.PLOT.N_CTX"], a["TRAINER.PLOT.CSC"]) == ("4", "8", "True")
        assert a["TRAINER.PLOT.CLASS_TOKEN_POSITION"] == "middle" and a["DATASET.NUM_SHOTS"] == "1"
        assert "--do-test" not in line and "--force" not in line
    assert os.path.isfile(os.path.join(ROOT, "configs/trainers/PLOT/rn50_ep50.yaml"))
    # finished: skipped; interrupted: continued in place (never emptied); FORCE=1: --force
    r = sh("plot/train.sh", "eurosat", "rn50_ep50", "middle", 8, 1, True, env=env)
    assert len(lines(calls)) == 2 and r.stdout.count("skip (finished)") == 2
    (base / "seed1/log.txt").write_text("epoch [1/50] ...\n")
    (base / "seed1/keep.txt").write_text("x")
    r = sh("plot/train.sh", "eurosat", "rn50_ep50", "middle", 8, 1, True, env=dict(env, DO_TEST="1"))
    assert len(lines(calls)) == 3 and "continue (interrupted)" in r.stdout and (base / "seed1/keep.txt").exists()
    assert "--do-test" in lines(calls)[-1]
    r = sh("plot/train.sh", "eurosat", "rn50_ep50", "middle", 8, 1, True, env=dict(env, FORCE="1", SEEDS="1"))
    assert "redo (FORCE=1)" in r.stdout and "--force" in lines(calls)[-1]
    # PLOT_N and EXTRA_OPTS
    r = sh("plot/train.sh", "dtd", "rn50", "end", 16, 16, False, env=dict(env, PLOT_N="2", SEEDS="3",
                                                                           EXTRA_OPTS="OPTIM.LR 0.01"))
    assert r.returncode == 0
    assert (tmp / "out/dtd/PLOT/rn50_16shots/N2_nctx16_cscFalse_ctpend/seed3/log.txt").exists()
    last = lines(calls)[-1]
    assert "TRAINER.PLOT.N 2 " in last and last.endswith("DATASET.NUM_SHOTS 16 OPTIM.LR 0.01")


@pytest.mark.parametrize("beta,name", [
    ("1.0", "N4_alpha10.0_nctx16_cscFalse_ctpend_nttwo"),
    ("1", "N4_alpha10.0_nctx16_cscFalse_ctpend_nttwo"),
    ("0.0", "N4_alpha10.0_cw0.5_pn2_nctx16_cscFalse_ctpend_nttwo"),
    ("0.5", "N4_alpha10.0_cw0.5_pn2_nctx16_cscFalse_ctpend_nttwo"),
])
def test_plot_nemesis_train_names_and_options(stub, beta, name):
    env, calls, tmp = stub
    r = sh("plot_nemesis/train.sh", "oxford_pets", "rn50", "end", 16, 16, False, "10.0", "two", 2, 0.5, beta,
           env=dict(env, SEEDS="1"))
    assert r.returncode == 0, r.stderr
    out = tmp / f"out/oxford_pets/PLOTNemesis/Beta-{beta}/rn50_16shots/{name}/seed1"
    assert (out / "log.txt").exists()
    (line,) = lines(calls)
    a = argv_pairs(line)
    assert a["--trainer"] == "PLOTNemesis" and a["--output-dir"] == str(out)
    assert a["--config-file"] == os.path.join(ROOT, "configs/trainers/PLOTNemesis/rn50.yaml")
    assert a["--dataset-config-file"] == os.path.join(ROOT, "configs/datasets/oxford_pets.yaml")
    expected = {"N": "4", "N_CTX": "16", "CSC": "False", "CLASS_TOKEN_POSITION": "end", "A": "10.0", "NT": "two",
                "NP": "2", "CW": "0.5", "BETA": beta}
    assert {k: a[f"TRAINER.PLOTNemesis.{k}"] for k in expected} == expected
    assert a["DATASET.NUM_SHOTS"] == "16"
    r = sh("plot_nemesis/train.sh", "oxford_pets", "rn50", "end", 16, 16, False, "10.0", "two", 2, 0.5, beta,
           env=dict(env, SEEDS="1"))
    assert "skip (finished)" in r.stdout and len(lines(calls)) == 1


def test_plot_scripts_usage_and_data(stub):
    env, calls, tmp = stub
    r = sh("plot/train.sh", "eurosat", "rn50", env=env)
    assert r.returncode == 2 and "usage" in r.stderr
    r = sh("plot_nemesis/train.sh", "eurosat", "rn50", "end", 16, 16, False, env=env)
    assert r.returncode == 2 and "usage" in r.stderr
    no_data = dict(env)
    del no_data["DATA"]
    r = sh("plot/train.sh", "eurosat", "rn50", "end", 16, 16, False, env=no_data)
    assert r.returncode == 2 and "DATA" in r.stderr
    assert not calls.exists()


@pytest.mark.parametrize("script,args,extra", [
    ("plot/train.sh", ["eurosat", "rn50_ep50", "front", "8", "1", "True"], {"DO_TEST": "1"}),
    ("plot/train.sh", ["dtd", "rn50", "end", "16", "16", "False"], {"PLOT_N": "2", "EXTRA_OPTS": "OPTIM.MAX_EPOCH 3"}),
    ("plot_nemesis/train.sh", ["dtd", "rn50", "end", "16", "2", "False", "1.0", "two", "2", "0.5", "0.0"], {}),
    ("plot_nemesis/train.sh", ["dtd", "rn50", "end", "16", "2", "False", "1.0", "two", "2", "0.5", "1.0"],
     {"DO_TEST": "1"}),
])
def test_launcher_form_equals_the_script(tmp_path, script, args, extra):
    """``tools/sweep.py scripts/plot/train.sh ...`` issues exactly the script's train.py calls and folders."""
    from sweeps import protocols
    from tests.test_sweep_expand import _STUB, script_calls

    py = tmp_path / "python"
    py.write_text(_STUB)
    py.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("SEEDS", "OUTPUT_ROOT", "EXTRA_OPTS", "DATA", "PLOT_N")}
    env.update(PYTHON=str(py), CALLS=str(tmp_path / "calls"), OUTPUT_ROOT=str(tmp_path / "out"),
               DATA=str(tmp_path / "data"), SEEDS="1 2", **extra)
    want = script_calls(script, args, env)
    runs = protocols.expand_script("scripts/" + script, args, env)
    assert want and [r.command(env["PYTHON"])[1:] for r in runs] == want
    assert [r.folders for r in runs] == [[argv[argv.index("--output-dir") + 1]] for argv in want]
