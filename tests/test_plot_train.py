"""PLOT and PLOTNemesis end to end through ``train.cli`` on generated EuroSAT with a tiny CLIP file: training,
checkpoints (weights only, reference layout), eval-only reproducing the final accuracy, corruption experiments
(CoOpCRT + configs/heads/plot.yaml, tools/crt_sweep.py), norm curves (tools/plot_norms.py), the shipped YAMLs."""
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
PLOT_YAML = os.path.join(ROOT, "configs", "heads", "plot.yaml")
PLOT_OPTS = ["TRAINER.PLOT.N_CTX", "4", "TRAINER.PLOT.N", "3", "TRAINER.PLOT.PREC", "fp32"]
NEMESIS_OPTS = ["TRAINER.PLOTNemesis.N_CTX", "4", "TRAINER.PLOTNemesis.N", "3", "TRAINER.PLOTNemesis.PREC", "fp32",
                "TRAINER.PLOTNemesis.A", "1.0", "TRAINER.PLOTNemesis.BETA", "0.5", "TRAINER.PLOTNemesis.NP", "2",
                "TRAINER.PLOTNemesis.CW", "0.5"]
CRT_OPTS = ["TRAINER.CoOpCRT.N_CTX", "4", "MODEL.PROMPT_LEARNER.N_SETS", "3"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("plot"), test_batch_size=4, print_freq=1)


def run(env, trainer, out, *extra, opts=()):
    argv = ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", env["cfg"], "--output-dir", str(out), *extra, *opts]
    return train.cli(argv)


def trained_ctx(run_dir):
    path = os.path.join(run_dir, "prompt_learner", "model.pth.tar-2")
    return torch.load(path, weights_only=True)["state_dict"]["ctx"]


def results(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def log_text(out):
    return "".join(open(p).read() for p in sorted(glob.glob(os.path.join(out, "log.txt*"))))


@pytest.fixture(scope="module")
def plot_run(env):
    out = env["base"] / "plot"
    assert run(env, "PLOT", out, "--do-test", opts=PLOT_OPTS) == 0
    return out


@pytest.fixture(scope="module")
def nemesis_run(env):
    out = env["base"] / "plot_nemesis"
    assert run(env, "PLOTNemesis", out, opts=NEMESIS_OPTS) == 0
    return out


def test_plot_trains_checkpoints_and_eval_reproduces(env, plot_run):
    text = log_text(plot_run)
    assert "Elapsed" in text and "matrix_norm" in text and "v3_norm" in text and "epoch [2/2] test accu (" in text
    assert "Initializing a generic context" in text and "PLOT: 3 prompt sets of this context" in text
    ckpt = torch.load(os.path.join(plot_run, "prompt_learner", "model.pth.tar-2"), weights_only=True)
    assert set(ckpt["state_dict"]) == {"ctx"} and ckpt["state_dict"]["ctx"].shape == (3, 4, 64)
    records = [json.loads(line) for line in open(os.path.join(plot_run, "norms.jsonl"))]
    assert [r["epoch"] for r in records] == [1, 2] and len(records[-1]["v_norms"]) == 4
    ctx = ckpt["state_dict"]["ctx"]
    assert records[-1]["matrix_norm"] == pytest.approx(float(ctx.norm(dim=(-2, -1)).mean()), rel=1e-5)
    assert records[-1]["v_norms"] == pytest.approx(ctx.norm(dim=-1).mean(0).tolist(), rel=1e-5)
    cfg = open(os.path.join(plot_run, "config.yaml")).read()
    assert "NAME: PLOTPromptLearner" in cfg and "N_SETS: 3" in cfg
    acc = results(plot_run)["accuracy"]
    assert records[-1]["test_acc"] == pytest.approx(acc)
    ev = env["base"] / "plot_eval"
    assert run(env, "PLOT", ev, "--eval-only", "--model-dir", str(plot_run), "--load-epoch", "2", opts=PLOT_OPTS) == 0
    assert results(ev)["accuracy"] == pytest.approx(acc)
    # a different number of sets is a clear error (exit 2), not a silent reshape
    assert run(env, "PLOT", env["base"] / "plot_bad", "--eval-only", "--model-dir", str(plot_run), "--load-epoch",
               "2", opts=PLOT_OPTS[:2] + ["TRAINER.PLOT.N", "2"] + PLOT_OPTS[4:]) == 2


def test_reference_plot_checkpoint_loads(env, plot_run, caplog):
    ctx = trained_ctx(plot_run)
    ref = env["base"] / "plot_reference"
    # the reference's buffers have N*C rows (set-major): [30, 1, Dt] and [30, L-1-M, Dt]
    reference_checkpoint(str(ref / "prompt_learner" / "model.pth.tar-2"), ctx, torch.randn(30, 1, 64),
                         torch.randn(30, 72, 64))
    ev = env["base"] / "plot_reference_eval"
    assert run(env, "PLOT", ev, "--eval-only", "--model-dir", str(ref), "--load-epoch", "2", opts=PLOT_OPTS) == 0
    assert results(ev)["accuracy"] == pytest.approx(results(plot_run)["accuracy"])
    assert "PLOT layout" in log_text(ev) and "token_prefix" in log_text(ev)


def test_reference_plot_csc_checkpoint_maps_explicitly():
    from trainers.reference_checkpoints import map_learner_state

    state = {"ctx": torch.randn(10, 4, 16, 512), "token_prefix": torch.randn(40, 1, 512),
             "token_suffix": torch.randn(40, 60, 512)}
    mapped, ignored, layout = map_learner_state(state, {"ctx"})
    assert layout == "PLOT" and set(mapped) == {"ctx"} and sorted(ignored) == ["token_prefix", "token_suffix"]
    coop_csc = {"ctx": torch.randn(10, 16, 512), "token_prefix": torch.randn(10, 1, 512)}
    assert map_learner_state(coop_csc, {"ctx"})[2] == "ours"


def test_plot_nemesis_trains_and_eval_reproduces(env, nemesis_run):
    text = log_text(nemesis_run)
    assert "Elapsed" in text and "norm_loss" in text and "alpha_3" in text and "nemesis_v0_norm" in text
    records = [json.loads(line) for line in open(os.path.join(nemesis_run, "norms.jsonl"))]
    assert len(records[-1]["alpha"]) == 4
    ev = env["base"] / "plot_nemesis_eval"
    assert run(env, "PLOTNemesis", ev, "--eval-only", "--model-dir", str(nemesis_run), "--load-epoch", "2",
               opts=NEMESIS_OPTS) == 0
    assert results(ev)["accuracy"] == pytest.approx(results(nemesis_run)["accuracy"])


def test_nan_plan_stops_with_the_run_and_step(env, capsys):
    out = env["base"] / "plot_nan"
    assert run(env, "PLOT", out, opts=PLOT_OPTS + ["MODEL.HEAD.PLOT.EPS", "1e-4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "transport plan" in err and "epoch 1/2, iteration 1/5" in err
    assert str(out) in err and "Traceback" not in err


def test_corruption_of_a_plot_checkpoint_by_config(env, plot_run):
    outs = {}
    for kind, pos, factor in [("original", 0, 0.0), ("scale", 1, 1.0), ("scale", 2, 0.001), ("replace", 0, 0.0)]:
        out = env["base"] / f"plot_crt_{kind}_{pos}"
        assert run(env, "CoOpCRT", out, "--config-file", PLOT_YAML, "--eval-only", "--model-dir", str(plot_run),
                   "--load-epoch", "2", "--corrupt-type", kind, "--corrupt-position", str(pos), "--crt-factor",
                   str(factor), opts=CRT_OPTS) == 0
        data = torch.load(os.path.join(out, "data.pth"), weights_only=True)
        assert data["image_feature"].shape == (10, 17, 64)  # local features (ViT: 16 patches + class token)
        assert data["text_feature"].shape == (30, 64)  # N*C set features
        assert data["accuracy"] == pytest.approx(results(out)["accuracy"] / 100)
        outs[(kind, pos)] = data
    acc = results(plot_run)["accuracy"] / 100
    assert outs[("original", 0)]["accuracy"] == pytest.approx(acc)
    assert outs[("scale", 1)]["accuracy"] == pytest.approx(acc)  # x1.0 changes nothing
    ctx = trained_ctx(plot_run)
    scaled = ctx.clone()
    scaled[:, 2] *= 0.001  # position 2 of every set
    assert outs[("scale", 2)]["prompt_norm"].item() == pytest.approx(float(scaled.norm()), rel=1e-5)
    zeroed = ctx.clone()
    zeroed[:, 0] = 0
    assert outs[("replace", 0)]["prompt_norm"].item() == pytest.approx(float(zeroed.norm()), rel=1e-5)

    # the fast sweep writes the same accuracies and features
    from tools import crt_sweep

    base = env["base"] / "plot_sweep"
    argv = ["--root", env["data"], "--dataset-config-file", DATASET_YAML, "--config-file", env["cfg"],
            "--config-file", PLOT_YAML, "--model-dir", str(plot_run), "--load-epoch", "2", "--output-base", str(base),
            "--seeds", "1", "--types", "original", "scale", "--positions", "2", "--scale-factors", "0.001",
            "--opts", *CRT_OPTS]
    assert len(crt_sweep.run(argv)) == 2
    for sub, key in (("original/seed1", ("original", 0)), ("rescale/pos-2_scale-0.001/seed1", ("scale", 2))):
        ours = torch.load(base / sub / "data.pth", weights_only=True)
        assert ours["accuracy"] == outs[key]["accuracy"]
        assert torch.equal(ours["text_feature"], outs[key]["text_feature"])
        assert torch.equal(ours["image_feature"], outs[key]["image_feature"])


def test_norm_curves_of_plot_runs(tmp_path, plot_run, nemesis_run):
    from tools import plot_norms

    fig, axes = plot_norms.make_figure([str(plot_run), str(nemesis_run)])
    assert len(axes.positions) == 2 and all(len(ax.lines) == 4 for ax in axes.positions)  # M = 4 positions
    assert len(axes.matrix.lines) == 2 and axes.accuracy is not None
    out = tmp_path / "norms.png"
    assert plot_norms.main([str(plot_run), str(nemesis_run), "-o", str(out)]) == 0 and out.stat().st_size > 1000


EPOCHS = {"rn50": 200, "rn50_ep50": 50, "rn50_ep100": 100, "rn101": 200, "rn101_ep50": 50, "rn50_val": 200,
          "vit_b16": 200, "vit_b16_ep50": 50, "vit_b16_ep100": 100}


@pytest.mark.parametrize("trainer", ["PLOT", "PLOTNemesis"])
def test_shipped_yamls(trainer):
    pattern = os.path.join(ROOT, "configs", "trainers", trainer, "*.yaml")
    files = {os.path.basename(f)[:-5]: f for f in glob.glob(pattern)}
    assert set(EPOCHS) <= set(files)
    for name, epochs in EPOCHS.items():
        args = train.parse_args(["--trainer", trainer, "--config-file", files[name], "--dataset-config-file",
                                 os.path.join(ROOT, "configs", "datasets", "food101.yaml")])
        cfg = train.setup_cfg(args)
        assert cfg.OPTIM.LR == 0.002 and cfg.OPTIM.MAX_EPOCH == epochs and cfg.OPTIM.NAME == "sgd"
        assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == 32 and cfg.DATALOADER.TEST.BATCH_SIZE == 100
        assert cfg.MODEL.BACKBONE.NAME == {"rn5": "RN50", "rn1": "RN101", "vit": "ViT-B/16"}[name[:3]]
        assert cfg.MODEL.PROMPT_LEARNER.NAME == "PLOTPromptLearner" and cfg.MODEL.HEAD.NAME == "PLOT"
        assert cfg.MODEL.PROMPT_LEARNER.N_SETS == 4 and cfg.MODEL.PROMPT_LEARNER.N_CTX == 16
        assert cfg.MODEL.PROMPT_LEARNER.CSC is False and cfg.MODEL.PROMPT_LEARNER.CLASS_TOKEN_POSITION == "end"
        assert cfg.TRAINER.PREC == "fp16"
        if trainer == "PLOTNemesis":  # the reference's Food101 special case, through the dataset YAML
            assert cfg.REGULARISERS.NAMES == ["Nemesis"]
            assert cfg.REGULARISER.NEMESIS.PAN_SCALE == 50.0 and cfg.REGULARISER.NEMESIS.OMEGA == "constant"


def test_reference_keys_map_onto_the_components():
    args = train.parse_args(["--trainer", "PLOTNemesis", "TRAINER.PLOTNemesis.N", "2", "TRAINER.PLOTNemesis.N_CTX", "8",
                             "TRAINER.PLOTNemesis.CSC", "True", "TRAINER.PLOTNemesis.CLASS_TOKEN_POSITION", "front",
                             "TRAINER.PLOTNemesis.CTX_INIT", "a photo of a", "TRAINER.PLOTNemesis.PREC", "amp",
                             "TRAINER.PLOTNemesis.A", "10", "TRAINER.PLOTNemesis.NT", "inf",
                             "TRAINER.PLOTNemesis.NP", "random2", "TRAINER.PLOTNemesis.CW", "0.5",
                             "TRAINER.PLOTNemesis.BETA", "0.0"])
    cfg = train.setup_cfg(args)
    pl, reg = cfg.MODEL.PROMPT_LEARNER, cfg.REGULARISER.NEMESIS
    assert (pl.N_SETS, pl.N_CTX, pl.CSC, pl.CLASS_TOKEN_POSITION, pl.CTX_INIT) == (2, 8, True, "front", "a photo of a")
    assert cfg.TRAINER.PREC == "amp"
    assert (reg.A, reg.NT, reg.NP, reg.CW, reg.BETA) == (10, "inf", "random2", 0.5, 0.0)
    cfg = train.setup_cfg(train.parse_args(["--trainer", "PLOT", "TRAINER.PLOT.N", "6"]))
    assert cfg.MODEL.PROMPT_LEARNER.N_SETS == 6 and cfg.REGULARISERS.NAMES == []
    assert cfg.TRAINER.PLOTNemesis.A is None and cfg.TRAINER.PLOTNemesis.NT == "two"  # the reference's defaults
