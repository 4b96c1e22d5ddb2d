"""Issue 12, "mistakes caught before any work" and "bad values": each bad input gives ONE ``error:`` line, exit 2,
before the dataset is read or CLIP is loaded (both are patched to fail loudly here), and leaves every file of an
existing run folder byte-identical (hashes compared)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import train
from tests.helpers.trainer_fixtures import tiny_eurosat_env
from tests.helpers.files import tree_hashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")
N_CTX, WIDTH = 16, 64  # the CoOp default context and the tiny CLIP's text width


def fake_run(folder, ctx: torch.Tensor | None = None, epochs=(2,), extra: dict | None = None):
    """A finished-looking CoOp run folder: config/log/results plus prompt_learner/model.pth.tar-E and pointer."""
    os.makedirs(os.path.join(folder, "prompt_learner"), exist_ok=True)
    for name, text in {"config.yaml": "OPTIM:\n  LR: 0.002\n", "log.txt": "Elapsed: 0:00:01\n",
                       "results.json": '{"accuracy": 50.0}\n'}.items():
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)
    g = torch.Generator().manual_seed(0)
    for e in epochs:
        state = {"state_dict": {"ctx": ctx if ctx is not None else torch.randn(N_CTX, WIDTH, generator=g)},
                 "epoch": e, "optimizer": None, "scheduler": None, "val_result": None}
        state.update(extra or {})
        torch.save(state, os.path.join(folder, "prompt_learner", f"model.pth.tar-{e}"))
    with open(os.path.join(folder, "prompt_learner", "checkpoint"), "w") as f:
        f.write(f"model.pth.tar-{max(epochs)}\n")
    return str(folder)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("preflight")
    env = tiny_eurosat_env(base)
    env["trained"] = fake_run(base / "trained")
    nan_ctx = torch.zeros(N_CTX, WIDTH)
    nan_ctx[3, 5] = float("nan")
    env["nan_run"] = fake_run(base / "nan_run", ctx=nan_ctx)
    env["short_run"] = fake_run(base / "short_run", ctx=torch.zeros(8, WIDTH))
    bad = {"zero": b"", "random": os.urandom(4096)}
    for kind, payload in bad.items():
        folder = fake_run(base / f"{kind}_run")
        with open(os.path.join(folder, "prompt_learner", "model.pth.tar-2"), "wb") as f:
            f.write(payload)
        env[f"{kind}_run"] = folder
    folder = fake_run(base / "truncated_run")
    path = os.path.join(folder, "prompt_learner", "model.pth.tar-2")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    env["truncated_run"] = folder
    folder = fake_run(base / "nostate_run")
    torch.save({"model": {"ctx": torch.zeros(N_CTX, WIDTH)}, "epoch": 2},
               os.path.join(folder, "prompt_learner", "model.pth.tar-2"))
    env["nostate_run"] = folder
    return env


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Reading the dataset or loading CLIP during a pre-flight failure is a test failure."""
    import clip.clip
    import dassl.data.data_manager as dm

    def boom(*a, **k):
        raise AssertionError("the dataset or CLIP was loaded before the check")

    monkeypatch.setattr(dm, "build_dataset", boom)
    monkeypatch.setattr(clip.clip, "load_clip", boom)


NEM = ["--trainer", "CoOpNemesis"]
PAN = NEM + ["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "0.0"]
EVAL = ["--eval-only", "--model-dir", "{trained}"]

# (id, argv after the common part, substrings of the one error line)
CASES = [
    ("unknown_trainer", ["--trainer", "CoOpp"], ['"CoOpp" is not registered', 'did you mean "CoOp"']),
    ("nemesis_no_A", NEM, ["TRAINER.CoOpNemesis.A", "required"]),
    ("nemesis_no_BETA", NEM + ["TRAINER.CoOpNemesis.A", "1.0"], ["TRAINER.CoOpNemesis.BETA", "is required"]),
    ("nemesis_BETA_range", NEM + ["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "1.5"],
     ["BETA must be 0, 1 or in (0, 1), got 1.5"]),
    ("nemesis_A_negative", NEM + ["TRAINER.CoOpNemesis.A", "-1", "TRAINER.CoOpNemesis.BETA", "1"],
     ["A (Nemesis loss weight) must be a non-negative number, got -1"]),
    ("nemesis_NP_range", PAN + ["TRAINER.CoOpNemesis.NP", "99", "TRAINER.CoOpNemesis.CW", "0.5"],
     ["NP must lie in [1, N_CTX=16], got 99"]),
    ("nemesis_CW_missing", PAN + ["TRAINER.CoOpNemesis.NP", "1"], ["CW (PAN down-scaling factor)", "got None"]),
    ("corrupt_position_range", ["--trainer", "CoOpCRT", *EVAL, "--corrupt-type", "scale", "--corrupt-position",
                                "16", "--crt-factor", "0.1"], ["--corrupt-position 16 is outside [0, 16)"]),
    ("eval_without_model_dir", ["--trainer", "CoOp", "--eval-only"], ["--eval-only needs --model-dir"]),
    ("position_without_type", ["--trainer", "CoOpCRT", *EVAL, "--corrupt-position", "3"],
     ["--corrupt-position given without --corrupt-type"]),
    ("factor_without_type", ["--trainer", "CoOpCRT", *EVAL, "--crt-factor", "0.5"],
     ["--crt-factor given without --corrupt-type"]),
    ("load_epoch_missing", ["--trainer", "CoOp", *EVAL, "--load-epoch", "7"],
     ["--load-epoch 7", "model.pth.tar-7", "epochs saved in", ": 2 (use --load-epoch 2)"]),
    ("input_size_vs_backbone", ["--trainer", "CoOp", "INPUT.SIZE", "(64, 64)"],
     ["INPUT.SIZE (64, 64) does not match", "(32x32)", 'set INPUT.SIZE "(32, 32)"']),
    ("missing_dataset", ["--trainer", "CoOp", "--root", "{base}/nowhere"],
     ["dataset folder not found: {base}/nowhere/eurosat", "DATASETS.md#eurosat"]),
    ("lr_negative", ["--trainer", "CoOp", "OPTIM.LR", "-1.0"], ["OPTIM.LR=-1.0 must be a positive"]),
    ("max_epoch_0", ["--trainer", "CoOp", "OPTIM.MAX_EPOCH", "0"], ["OPTIM.MAX_EPOCH=0 trains nothing"]),
    ("max_epoch_1e20", ["--trainer", "CoOp", "OPTIM.MAX_EPOCH", "1e20"], ["OPTIM.MAX_EPOCH", "Type mismatch"]),
    ("max_epoch_huge", ["--trainer", "CoOp", "OPTIM.MAX_EPOCH", str(10**20)], ["OPTIM.MAX_EPOCH", "implausibly large"]),
    ("warmup_negative", ["--trainer", "CoOp", "OPTIM.WARMUP_EPOCH", "-5"], ["OPTIM.WARMUP_EPOCH=-5"]),
    ("input_size_zero", ["--trainer", "CoOp", "INPUT.SIZE", "(0, 0)"], ["INPUT.SIZE=(0, 0) must hold two positive"]),
    ("corrupt_type_opt", ["--trainer", "CoOp", "CORRUPT.TYPE", "rescale"],
     ["CORRUPT.TYPE must be original, replace, scale, got 'rescale'"]),
    ("dassl_mlp_head_key", ["--trainer", "CoOp", "MODEL.HEAD.HIDDEN_LAYERS", "[512]"],
     ["MODEL.HEAD.HIDDEN_LAYERS = (512,) configures Dassl's MLP embedding head", "MODEL.HEAD.NAME"]),
    ("n_ctx_too_long", ["--trainer", "CoOp", "TRAINER.COOP.N_CTX", "80"],
     ["N_CTX = 80 does not fit CLIP's 77-token context", "at most 73"]),
    ("ckpt_zero_byte", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{zero_run}"], ["is empty (0 bytes"]),
    ("ckpt_random_bytes", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{random_run}"],
     ["model.pth.tar-2", "truncated or not a PyTorch checkpoint"]),
    ("ckpt_truncated", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{truncated_run}"],
     ["model.pth.tar-2", "truncated or not a PyTorch checkpoint"]),
    ("ckpt_without_state_dict", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{nostate_run}"],
     ['has no "state_dict"']),
    ("ckpt_nan_context", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{nan_run}"],
     ["ctx holds 1 NaN/Inf value(s)"]),
    ("ckpt_wrong_ctx_eval", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{short_run}"],
     ["ctx has shape (8, 64) but this config expects (16, 64)"]),
    ("resume_wrong_ctx", ["--trainer", "CoOp", "--resume", "{short_run}"],
     ["resume checkpoint", "ctx has shape (8, 64) but this config expects (16, 64)", "new --output-dir"]),
]


def _fill(items, env):
    keys = {k: env[k] for k in env if k != "cfg"}
    return [s.format(**keys) for s in items]


@pytest.mark.parametrize("extra,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mistake_caught_before_any_work(env, tmp_path, capsys, no_heavy_work, extra, expected):
    out = fake_run(tmp_path / "finished_run")
    before = tree_hashes(out), tree_hashes(env["trained"])
    argv = ["--root", env["data"], "--seed", "1", "--dataset-config-file", os.path.join(DS, "eurosat.yaml"),
            "--config-file", env["cfg"], "--output-dir", out, *_fill(extra, env)]
    rc = train.cli(argv)
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if "Warning" not in line and not line.startswith("  ")]
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in _fill(expected, env):
        assert text in err[0], err[0]
    assert (tree_hashes(out), tree_hashes(env["trained"])) == before  # nothing written, not even log.txt


def test_zero_shot_eval_needs_no_model_dir(env, tmp_path):
    """The --eval-only/--model-dir rule exempts trainers that learn nothing (ZERO_SHOT)."""
    from dassl.engine.preflight import preflight

    args = train.parse_args(["--root", env["data"], "--trainer", "ZeroshotCLIP", "--dataset-config-file",
                             os.path.join(DS, "eurosat.yaml"), "--config-file", env["cfg"], "--eval-only",
                             "--output-dir", str(tmp_path / "zs")])
    preflight(train.setup_cfg(args), args)  # no error
    assert not (tmp_path / "zs").exists()


def test_subprocess_exit_code_and_untouched_folder(env, tmp_path):
    """The real command line: exit status 2, one error line, no traceback, folder unchanged."""
    out = fake_run(tmp_path / "finished_run")
    before = tree_hashes(out)
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--root", env["data"], "--seed", "1",
           "--dataset-config-file", os.path.join(DS, "eurosat.yaml"), "--config-file", env["cfg"],
           "--output-dir", out, "--trainer", "CoOp", "--eval-only"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "Warning" not in line and not line.startswith("  ")]
    assert lines == [lines[0]] and lines[0].startswith("error: --eval-only needs --model-dir"), r.stderr
    assert "Traceback" not in r.stderr
    assert tree_hashes(out) == before
