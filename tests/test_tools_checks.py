"""Issue 12, entry points and scripts: crt_sweep (load epoch from the config used, checkpoints checked before any
image is encoded, seeded, never writes a few-shot cache), the Nemesis scripts (one PAN default, main.sh options,
eval.sh connects to main.sh imagenet) and the embedded default's subset runs merging into results.md/json."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from tests.helpers.script_stub import python_stub_env
from tests.helpers.trainer_fixtures import tiny_eurosat_env
from tests.test_preflight_checks import fake_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("tools_checks")
    env = tiny_eurosat_env(base)
    env["run"] = fake_run(base / "coop" / "seed1", epochs=(2, 3))
    return env


def sweep_argv(env, out, *extra, opts=()):
    return ["--root", env["data"], "--dataset-config-file", os.path.join(DS, "eurosat.yaml"), "--config-file",
            env["cfg"], "--model-dir", str(env["base"] / "coop" / "seed{seed}"), "--output-base", str(out),
            "--seeds", "1", "--types", "original", *extra, "--opts", *opts]


def test_crt_sweep_load_epoch_follows_the_config_used_and_writes_no_cache(env, tmp_path):
    from tools import crt_sweep

    fewshot = os.path.join(env["data"], "eurosat", "split_fewshot")
    out = tmp_path / "sweep"
    accs = crt_sweep.run(sweep_argv(env, out, opts=["OPTIM.MAX_EPOCH", "3", "DATASET.NUM_SHOTS", "2"]))
    assert len(accs) == 1
    assert json.load(open(out / "original" / "seed1" / "results.json"))["epoch"] == 3  # not the YAML's 2
    assert not os.path.isdir(fewshot) or os.listdir(fewshot) == []  # an evaluation never writes a cache
    out2 = tmp_path / "sweep2"
    crt_sweep.run(sweep_argv(env, out2, "--load-epoch", "2"))
    assert json.load(open(out2 / "original" / "seed1" / "results.json"))["epoch"] == 2


def test_crt_sweep_checks_every_checkpoint_before_encoding(env, tmp_path, monkeypatch):
    import dassl.engine
    from dassl.utils.errors import CheckpointNotFoundError
    from tools import crt_sweep

    monkeypatch.setattr(dassl.engine, "build_trainer", lambda cfg: pytest.fail("trainer built before the check"))
    with pytest.raises(CheckpointNotFoundError, match=r"--load-epoch 9: .* epochs saved in .*: 2, 3"):
        crt_sweep.run(sweep_argv(env, tmp_path / "s", "--load-epoch", "9"))
    with pytest.raises(CheckpointNotFoundError, match="model directory not found"):
        crt_sweep.run(sweep_argv(env, tmp_path / "s", "--seeds", "2"))
    from dassl.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--positions 16 outside \[0, 16\)"):
        crt_sweep.run(sweep_argv(env, tmp_path / "s", "--types", "scale", "--positions", "16"))
    assert not (tmp_path / "s").exists()


def test_crt_sweep_refuses_another_request_locks_and_force_moves_aside(env, tmp_path):
    """A finished setting evaluated from another checkpoint epoch is refused (not silently kept); a folder locked by
    a live process is skipped; --force moves the old files into .replaced/ and rewrites the setting."""
    from dassl.utils import run_record
    from dassl.utils.errors import ConfigMismatchError
    from tests.helpers.files import tree_hashes
    from tools import crt_sweep

    out = tmp_path / "sweep"
    assert len(crt_sweep.run(sweep_argv(env, out, "--load-epoch", "2"))) == 1
    folder = out / "original" / "seed1"
    assert run_record.read_record(str(folder))["request"]["load_epoch"] == 2
    assert not (folder / ".lock").exists()
    before = tree_hashes(folder)
    assert crt_sweep.run(sweep_argv(env, out, "--load-epoch", "2")) == {}  # same request: skipped
    with pytest.raises(ConfigMismatchError, match=r"original/seed1 \(load_epoch\).*--force"):
        crt_sweep.run(sweep_argv(env, out, "--load-epoch", "3"))
    assert tree_hashes(folder) == before
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # another live process holds the folder: skipped, untouched
        (folder / ".lock").write_text(json.dumps({"pid": other.pid, "host": __import__("socket").gethostname(),
                                                  "started": "now"}))
        assert crt_sweep.run(sweep_argv(env, out, "--load-epoch", "3", "--force")) == {}
        assert {k: v for k, v in tree_hashes(folder).items() if k != ".lock"} == before
    finally:
        other.kill()
        other.wait()
        (folder / ".lock").unlink()
    accs = crt_sweep.run(sweep_argv(env, out, "--load-epoch", "3", "--force"))
    assert list(accs) == [str(folder)]
    assert run_record.read_record(str(folder))["request"]["load_epoch"] == 3
    moved = list((folder / ".replaced").iterdir())
    assert len(moved) == 1 and (moved[0] / "run.json").is_file() and (moved[0] / "data.pth").is_file()


def test_crt_sweep_cli_error_is_one_line(env, tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "crt_sweep.py"),
                        *sweep_argv(env, tmp_path / "s", "--load-epoch", "9")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --load-epoch 9"), r.stderr
    assert "Traceback" not in r.stderr


def test_crt_eval_loop_passes_no_yaml_epoch(tmp_path):
    """eval_loop.sh leaves the epoch to crt_sweep (the config it builds) unless LOAD_EPOCH is set."""
    env, calls = python_stub_env(tmp_path, CRT_ROOT=str(tmp_path / "crt"), DATASETS="eurosat imagenet")
    env["SEEDS"] = "1"
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "coop_crt", "eval_loop.sh")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = calls.read_text().splitlines()
    assert len(lines) == 10 and all("crt_sweep.py" in line for line in lines)
    assert not any("--load-epoch" in line for line in lines if "eurosat.yaml" in line)
    assert all("--load-epoch 50" in line for line in lines if "imagenet.yaml" in line)
    calls.unlink()
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "coop_crt", "eval_loop.sh")],
                   env=dict(env, LOAD_EPOCH="7", DATASETS="eurosat"), check=True, capture_output=True)
    assert all("--load-epoch 7" in line for line in calls.read_text().splitlines())


def test_crt_eval_auto_epoch_follows_extra_opts(tmp_path):
    env, calls = python_stub_env(tmp_path, CRT_ROOT=str(tmp_path / "crt"), DATASETS="eurosat",
                                 EXTRA_OPTS="OPTIM.MAX_EPOCH 30")
    env["SEEDS"] = "1"
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "coop_crt", "eval.sh"), "rn50_ep50", "end", "16", "1",
                        "False", "auto", "original", "0", "0"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "--load-epoch 30" in calls.read_text()


# ------------------------------------------------------------------------------------------ Nemesis scripts
def _pan_default_of(text: str) -> tuple[str, str]:
    np_ = re.search(r'NP="\$\{NP:-([^}]+)\}"', text).group(1)
    cw = re.search(r'CW="\$\{CW:-([^}]+)\}"', text).group(1)
    return np_, cw


def test_one_pan_default_everywhere():
    from tools import embedded_default

    main_sh = open(os.path.join(ROOT, "scripts", "coop_nemesis", "main.sh")).read()
    assert _pan_default_of(main_sh) == (embedded_default.PAN["NP"], embedded_default.PAN["CW"]) == ("2", "0.5")
    coop_md = open(os.path.join(ROOT, "COOP.md")).read()
    assert "PAN: ... 1.0 two 2 0.5 0.0" in coop_md and "default NP 2, CW 0.5" in coop_md


def test_main_sh_imagenet_connects_to_eval_sh(tmp_path):
    env, calls = python_stub_env(tmp_path, OUTPUT_DG_ROOT=str(tmp_path / "dg"))
    env["SEEDS"] = "1"
    sh = os.path.join(ROOT, "scripts", "coop_nemesis")
    r = subprocess.run(["bash", os.path.join(sh, "main.sh"), "imagenet"], env=dict(env, SHOTS_LIST="16",
                       METHODS="pan"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    trained = re.search(r"--output-dir (\S+)", calls.read_text()).group(1)
    calls.unlink()
    r = subprocess.run(["bash", os.path.join(sh, "eval.sh"), "CoOpNemesis", "imagenet_a", "1.0", "two", "2", "0.5",
                        "0.0"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"--model-dir {trained} " in calls.read_text()  # no CFG variable needed


def test_main_sh_options_go_to_the_main_job(tmp_path):
    env, calls = python_stub_env(tmp_path)
    sh = os.path.join(ROOT, "scripts", "coop_nemesis", "main.sh")
    r = subprocess.run(["bash", sh, "--quick", "--methods", "zs"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert calls.read_text().strip().endswith("tools/embedded_default.py --quick --methods zs")
    real = dict(env, PYTHON=sys.executable)
    r = subprocess.run(["bash", sh, "--bogus"], env=real, capture_output=True, text=True)
    assert r.returncode == 2 and "--bogus" in r.stderr
    r = subprocess.run(["bash", sh, "eurosat", "--quick"], env=real, capture_output=True, text=True)
    assert r.returncode == 2 and "error: --quick" in r.stderr
    r = subprocess.run(["bash", sh, "eurosta"], env=real, capture_output=True, text=True)
    assert r.returncode == 2 and "unknown dataset eurosta" in r.stderr


# ------------------------------------------------------------------------------------------ embedded default
def _finished(folder, acc, marker, config=""):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "log.txt"), "w") as f:
        f.write(f"* accuracy: {acc}%\n{marker}\n")
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"accuracy": acc}, f)
    if config:
        with open(os.path.join(folder, "config.yaml"), "w") as f:
            f.write(config)


def test_subset_run_merges_into_results(tmp_path, capsys):
    from tools import embedded_default as ed

    out = str(tmp_path / "job")
    coop = os.path.join(ed.method_base(out, "coop", 16), "seed1")
    _finished(coop, 80.0, "Elapsed: 0:00:01")
    prev = {"benchmark": "x", "seeds": [1], "shots": [16], "methods": {"coop": {"accuracy": {"16": [80.0]}}}}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(prev, f)
    _finished(ed.zs_dir(out), 30.0, "* macro_f1: 20.0%")  # the zs run is finished: nothing is executed
    assert ed.main(["--methods", "zs", "--shots", "16", "--no-crt", "--no-plots", "--output", out]) == 0
    res = json.load(open(os.path.join(out, "results.json")))
    assert set(res["methods"]) == {"zs", "coop"}
    assert res["methods"]["coop"]["accuracy_mean"] == {"16": 80.0}
    table = open(os.path.join(out, "results.md")).read()
    assert "| 80.0 |" in table and "30.0" in table
