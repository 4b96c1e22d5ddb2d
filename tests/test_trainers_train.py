"""End-to-end runs of every trainer through ``train.cli`` on generated data with a tiny CLIP file."""
from __future__ import annotations

import glob
import json
import os

import pytest
import torch

import train
from tests.helpers.trainer_fixtures import reference_checkpoint, tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_YAML = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("trainers"), test_batch_size=4, print_freq=1)


def run(env, trainer, out, *extra, opts=()):
    argv = ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", env["cfg"], "--output-dir", str(out), *extra, *opts]
    return train.cli(argv)


def results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def log_text(out):
    return "".join(open(p).read() for p in sorted(glob.glob(os.path.join(out, "log.txt*"))))


@pytest.fixture(scope="module")
def coop_run(env):
    out = env["base"] / "coop"
    assert run(env, "CoOp", out, "--do-test", opts=["TRAINER.COOP.N_CTX", "4"]) == 0
    return out


def test_coop_train_checkpoint_norms_and_eval(env, coop_run):
    out = coop_run
    text = log_text(out)
    assert "Elapsed" in text and "matrix_norm" in text and "v3_norm" in text
    assert "epoch [2/2] test accu (" in text
    ckpt = torch.load(os.path.join(out, "prompt_learner", "model.pth.tar-2"), weights_only=False)
    assert set(ckpt["state_dict"]) == {"ctx"} and ckpt["state_dict"]["ctx"].shape == (4, 64)
    records = [json.loads(l) for l in open(os.path.join(out, "norms.jsonl"))]
    assert [r["epoch"] for r in records] == [1, 2] and len(records[0]["v_norms"]) == 4
    assert all("test_acc" in r for r in records)
    acc = results(out)["accuracy"]
    ev = env["base"] / "coop_eval"
    assert run(env, "CoOp", ev, "--eval-only", "--model-dir", str(out), "--load-epoch", "2",
               opts=["TRAINER.COOP.N_CTX", "4"]) == 0
    assert results(ev)["accuracy"] == pytest.approx(acc)
    assert records[-1]["test_acc"] == pytest.approx(acc)


def test_reference_style_checkpoint_loads_and_reproduces(env, coop_run):
    ctx = torch.load(os.path.join(coop_run, "prompt_learner", "model.pth.tar-2"), weights_only=False)["state_dict"]["ctx"]
    ref = env["base"] / "reference"
    reference_checkpoint(str(ref / "prompt_learner" / "model.pth.tar-2"), ctx, torch.randn(10, 1, 64),
                         torch.randn(10, 72, 64))
    ev = env["base"] / "ref_eval"
    assert run(env, "CoOp", ev, "--eval-only", "--model-dir", str(ref), "--load-epoch", "2",
               opts=["TRAINER.CoOp.N_CTX", "4"]) == 0  # Nemesis-fork key spelling
    assert results(ev)["accuracy"] == pytest.approx(results(coop_run)["accuracy"])
    # CSC checkpoint into a generic model: clear error, exit code 2
    bad = env["base"] / "ref_csc"
    reference_checkpoint(str(bad / "prompt_learner" / "model.pth.tar-2"), torch.randn(10, 4, 64),
                         torch.randn(10, 1, 64), torch.randn(10, 72, 64))
    assert run(env, "CoOp", env["base"] / "bad_eval", "--eval-only", "--model-dir", str(bad), "--load-epoch", "2",
               opts=["TRAINER.COOP.N_CTX", "4"]) == 2


@pytest.mark.parametrize(
    "name,opts",
    [
        ("pun", ["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "1.0", "TRAINER.CoOpNemesis.NT", "one"]),
        ("pan", ["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "0.0", "TRAINER.CoOpNemesis.NP", "2",
                 "TRAINER.CoOpNemesis.CW", "0.1", "TRAINER.CoOpNemesis.CLASS_TOKEN_POSITION", "middle",
                 "TRAINER.CoOpNemesis.CSC", "True"]),
    ],
)
def test_coop_nemesis(env, name, opts):
    out = env["base"] / f"nemesis_{name}"
    assert run(env, "CoOpNemesis", out, opts=["TRAINER.CoOpNemesis.N_CTX", "4", *opts]) == 0
    text = log_text(out)
    assert "Elapsed" in text and "norm_loss" in text and "ce_loss" in text and "alpha_3" in text
    assert "v0_norm" in text and "matrix_norm" in text


def test_nemesis_invalid_beta_is_a_config_error(env, capsys):
    out = env["base"] / "nemesis_bad"
    assert run(env, "CoOpNemesis", out, opts=["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "1.5"]) == 2
    assert "BETA" in capsys.readouterr().err


def test_coop_crt_corruption(env, coop_run):
    opts = ["TRAINER.CoOpCRT.N_CTX", "4"]
    outs = {}
    for kind, pos, factor in [("original", 0, 0.0), ("replace", 1, 0.0), ("scale", 2, 0.001)]:
        out = env["base"] / f"crt_{kind}"
        assert run(env, "CoOpCRT", out, "--eval-only", "--model-dir", str(coop_run), "--load-epoch", "2",
                   "--corrupt-type", kind, "--corrupt-position", str(pos), "--crt-factor", str(factor), opts=opts) == 0
        data = torch.load(os.path.join(out, "data.pth"), weights_only=True)
        assert data["image_feature"].dtype == torch.float16 and data["image_feature"].shape == (10, 64)
        assert data["label"].dtype == torch.int64 and data["text_feature"].shape == (10, 64)
        assert data["prompt_norm"].dim() == 0
        assert data["accuracy"] == pytest.approx(results(out)["accuracy"] / 100)
        assert "macro_f1" in log_text(out)
        outs[kind] = data
    assert outs["original"]["accuracy"] == pytest.approx(results(coop_run)["accuracy"] / 100)
    assert outs["replace"]["prompt_norm"] < outs["original"]["prompt_norm"]
    assert run(env, "CoOpCRT", env["base"] / "crt_bad", "--eval-only", "--model-dir", str(coop_run), "--load-epoch",
               "2", "--corrupt-type", "scale", "--corrupt-position", "4", "--crt-factor", "0.5", opts=opts) == 2


@pytest.mark.parametrize("trainer", ["ZeroshotCLIP", "ZeroshotCLIP2"])
def test_zeroshot(env, trainer):
    out = env["base"] / trainer
    assert run(env, trainer, out, "--eval-only") == 0
    text = log_text(out)
    assert "load_model() is skipped" in text and "* accuracy:" in text
    # the same zero-shot classifier built by the factory and counted by hand over the test split
    from dassl.config.setup import parse_args, setup_cfg
    from dassl.data import DataManager
    from trainers.modules.factory import build_prompted_clip

    cfg = setup_cfg(parse_args(["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file",
                                DATASET_YAML, "--config-file", env["cfg"], "--output-dir", str(out), "--eval-only"]))
    dm = DataManager(cfg)
    model, _ = build_prompted_clip(cfg, [dm.lab2cname[i] for i in range(dm.num_classes)], torch.device("cpu"))
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in dm.test_loader:
            pred = model(batch["img"]).logits.argmax(dim=1)
            correct += int((pred == batch["label"]).sum())
            total += len(batch["label"])
    assert (results(out)["correct"], results(out)["total"]) == (correct, total)
    assert results(out)["accuracy"] == pytest.approx(100.0 * correct / total)


def test_crt_sweep_matches_separate_runs(env, coop_run):
    from tools import crt_sweep

    base = env["base"] / "sweep"
    argv = ["--root", env["data"], "--dataset-config-file", DATASET_YAML, "--config-file", env["cfg"],
            "--model-dir", str(coop_run),
            "--load-epoch", "2", "--output-base", str(base), "--seeds", "1", "--types", "original", "replace", "scale",
            "--positions", "1", "2", "--replace-factors", "0", "--scale-factors", "0.001", "--opts", "TRAINER.CoOpCRT.N_CTX", "4"]
    accs = crt_sweep.run(argv)
    assert len(accs) == 5
    # same folders, files and accuracies as separate train.py runs (test_coop_crt_corruption made these)
    sep = {"original": "crt_original", "replace/pos-1_std-0/seed1": "crt_replace",
           "rescale/pos-2_scale-0.001/seed1": "crt_scale"}
    for sub, name in sep.items():
        folder = base / (sub if sub != "original" else "original/seed1")
        ours = torch.load(folder / "data.pth", weights_only=True)
        theirs = torch.load(env["base"] / name / "data.pth", weights_only=True)
        assert ours["accuracy"] == theirs["accuracy"]
        assert torch.equal(ours["image_feature"], theirs["image_feature"])
        assert torch.equal(ours["text_feature"], theirs["text_feature"])
        assert torch.equal(ours["prompt_norm"], theirs["prompt_norm"])
        assert "macro_f1" in (folder / "log.txt").read_text().splitlines()[-1]
    assert crt_sweep.run(argv) == {}  # second call: everything finished, skipped
    # an interrupted setting: no completion record (run.json is written last), log without its result block
    (base / "original" / "seed1" / "run.json").unlink()
    (base / "original" / "seed1" / "log.txt").write_text("interrupted\n")
    assert list(crt_sweep.run(argv)) == [str(base / "original" / "seed1")]  # only the interrupted one redone


def test_do_test_does_not_change_training(env, coop_run):
    """Per-epoch testing must not consume the training RNG (DataLoader iterators draw a torch seed):
    the same seed with and without --do-test gives bit-identical context vectors."""
    out = env["base"] / "coop_no_do_test"
    assert run(env, "CoOp", out, opts=["TRAINER.COOP.N_CTX", "4"]) == 0
    with_test = torch.load(os.path.join(coop_run, "prompt_learner", "model.pth.tar-2"), weights_only=True)
    without = torch.load(os.path.join(out, "prompt_learner", "model.pth.tar-2"), weights_only=True)
    assert torch.equal(with_test["state_dict"]["ctx"], without["state_dict"]["ctx"])
    assert results(out)["accuracy"] == pytest.approx(results(coop_run)["accuracy"])
