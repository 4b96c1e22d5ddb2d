"""End-to-end matrix of the CoCoOp / KgCoOp / MaPLe learners x {Similarity, DePT} heads x {-, Nemesis} through
``train.cli`` on generated data (tiny CLIP), DePT's label-space rule on real readers, every shipped YAML, the
sweep scripts (stubbed python) and the base/new/H parser."""
from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest
import torch

import train
from tests.helpers.fake_datasets import _wnid_variant, make_imagenet, make_imagenet_r
from tests.helpers.script_stub import python_stub_env
from tests.helpers.trainer_fixtures import tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")
NEMESIS_PAN = ["REGULARISER.NEMESIS.A", "1.0", "REGULARISER.NEMESIS.BETA", "0.5", "REGULARISER.NEMESIS.NP", "1",
               "REGULARISER.NEMESIS.CW", "0.5"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = tiny_eurosat_env(tmp_path_factory.mktemp("matrix"), test_batch_size=5, print_freq=2)
    data = env["data"]
    make_imagenet(data)
    make_imagenet_r(data)
    # an ImageNet-A whose classes are training classes: n01491361 and n01440764 (rows 2 and 0 of the 3 trained)
    _wnid_variant(data, "ImageNetA", "imagenet-adversarial", "imagenet-a", ["n01491361", "n01440764"])
    return env


def argv(env, trainer, out, *extra, dataset="eurosat", opts=()):
    return ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file",
            os.path.join(DS, f"{dataset}.yaml"), "--config-file", env["cfg"], "--output-dir", str(out), *extra, *opts]


def run(env, trainer, out, *extra, dataset="eurosat", opts=()):
    return train.cli(argv(env, trainer, out, *extra, dataset=dataset, opts=opts))


def build(env, trainer, out, *extra, dataset="eurosat", opts=()):
    from dassl.engine import build_trainer

    return build_trainer(train.setup_cfg(train.parse_args(argv(env, trainer, out, *extra, dataset=dataset, opts=opts))))


def accuracy(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)["accuracy"]


def log_text(out):
    return "".join(open(p).read() for p in sorted(glob.glob(os.path.join(out, "log.txt*"))))


HEAD_OVERLAY = os.path.join(ROOT, "configs", "heads", "dept.yaml")
NEMESIS_OVERLAY = os.path.join(ROOT, "configs", "regularisers", "nemesis.yaml")

# (id, trainer, extra args, opts, learner folder, expected loss terms in the log)
MATRIX = [
    ("cocoop", "CoCoOp", (), ["TRAINER.COCOOP.N_CTX", "4"], "prompt_learner", ["acc"]),
    ("cocoop_dept", "ExtrasLinearProbeCoCoOp", (), ["TRAINER.COCOOP.N_CTX", "4"], "prompt_learner",
     ["itm_loss", "cat_loss"]),
    ("cocoop_nemesis", "CoCoOpNemesis", (), ["TRAINER.COCOOP.CTX_INIT", "a photo of a", *NEMESIS_PAN],
     "prompt_learner", ["norm_loss", "alpha_3"]),
    ("kgcoop", "KgCoOp", (), ["TRAINER.COOP.CTX_INIT", "True"], "prompt_learner", ["kg_loss"]),
    ("kgcoop_dept", "KgCoOp", ("--head", "DePT"), ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.W", "2.0"],
     "prompt_learner", ["kg_loss", "itm_loss", "cat_loss"]),
    ("kgcoop_nemesis", "KgCoOpNemesis", (), ["TRAINER.COOP.N_CTX", "4", *NEMESIS_PAN], "prompt_learner",
     ["kg_loss", "norm_loss"]),
    ("maple", "MaPLe", (), ["TRAINER.MAPLE.PROMPT_DEPTH", "2"], "MultiModalPromptLearner", ["ce_loss"]),
    ("maple_dept", "MaPLe", ("--config-file", HEAD_OVERLAY), ["TRAINER.MAPLE.PROMPT_DEPTH", "2"],
     "MultiModalPromptLearner", ["itm_loss", "cat_loss"]),
    ("maple_nemesis", "MaPLe", ("--config-file", NEMESIS_OVERLAY),
     ["TRAINER.MAPLE.PROMPT_DEPTH", "2", *NEMESIS_PAN], "MultiModalPromptLearner", ["norm_loss", "alpha_1"]),
]


@pytest.mark.parametrize("name,trainer,extra,opts,folder,terms", MATRIX, ids=[m[0] for m in MATRIX])
def test_train_eval_checkpoint(env, name, trainer, extra, opts, folder, terms):
    out = env["base"] / name
    assert run(env, trainer, out, *extra, opts=opts) == 0
    text = log_text(out)
    assert "Elapsed" in text
    for term in terms:
        assert f" {term} " in text, term
    # checkpoints hold exactly the trainable tensors (+ the DePT head's plain extra state)
    t = build(env, trainer, env["base"] / f"{name}_probe", *extra, opts=opts)
    learner_state = torch.load(os.path.join(out, folder, "model.pth.tar-2"), weights_only=True)["state_dict"]
    trainable = {n for n, p in t.model.learner.named_parameters() if p.requires_grad}
    assert set(learner_state) == trainable and trainable
    has_head = "dept" in name
    assert os.path.isdir(os.path.join(out, "head")) == has_head
    if has_head:
        head_state = torch.load(os.path.join(out, "head", "model.pth.tar-2"), weights_only=True)["state_dict"]
        assert set(head_state) == {"_extra_state", "film_lp_img.gamma", "film_lp_img.beta", "film_lp_text.gamma",
                                   "film_lp_text.beta", "linear_probe_proj.weight", "linear_probe_proj.bias"}
        assert head_state["linear_probe_proj.weight"].shape == (10, 64)
    # strict round trip of the trainable state, and eval-only reproduces the final accuracy
    t.load_model(str(out), epoch=2)
    for key, value in learner_state.items():
        torch.testing.assert_close(dict(t.model.learner.named_parameters())[key].detach(), value)
    ev = env["base"] / f"{name}_eval"
    assert run(env, trainer, ev, *extra, "--eval-only", "--model-dir", str(out), "--load-epoch", "2", opts=opts) == 0
    assert accuracy(ev) == pytest.approx(accuracy(out))


def test_dept_base_to_new_label_space(env):
    """Base run: the final test uses the fused CAT head; new classes: ITM only (from the checkpoint's classes)."""
    out = env["base"] / "dept_b2n"
    opts = ["DATASET.SUBSAMPLE_CLASSES", "base", "TRAINER.COOP.N_CTX", "4"]
    assert run(env, "ExtrasLinearProbeCoOp", out, opts=opts) == 0
    base_t = build(env, "ExtrasLinearProbeCoOp", env["base"] / "b2n_probe_base", opts=opts)
    base_t.load_model(str(out), epoch=2)
    head = base_t.model.head
    assert head.use_base_branch and head.row_index is None and len(head.train_classnames) == 5
    new_opts = ["DATASET.SUBSAMPLE_CLASSES", "new", "TRAINER.COOP.N_CTX", "4"]
    new_t = build(env, "ExtrasLinearProbeCoOp", env["base"] / "b2n_probe_new", opts=new_opts)
    new_t.load_model(str(out), epoch=2)
    assert not new_t.model.head.use_base_branch
    assert new_t.model.head.linear_probe_proj.weight.shape == (5, 64)  # resized to the checkpoint's classes
    images = torch.randn(3, 3, 32, 32)
    new_t.set_model_mode("eval")
    with torch.no_grad():
        out_new = new_t.model(images)
        itm = new_t.model.head.itm(out_new.image_features, out_new.text_features)
    torch.testing.assert_close(out_new.logits, itm)  # ITM only
    ev = env["base"] / "dept_b2n_new"
    assert run(env, "ExtrasLinearProbeCoOp", ev, "--eval-only", "--model-dir", str(out), "--load-epoch", "2",
               opts=new_opts) == 0
    evb = env["base"] / "dept_b2n_base"
    assert run(env, "ExtrasLinearProbeCoOp", evb, "--eval-only", "--model-dir", str(out), "--load-epoch", "2",
               opts=opts) == 0
    assert accuracy(evb) == pytest.approx(accuracy(out))


def test_dept_cross_dataset_label_space_and_row_masking(env):
    out = env["base"] / "dept_xd"
    assert run(env, "ExtrasLinearProbeCoOp", out, dataset="imagenet", opts=["TRAINER.COOP.N_CTX", "4"]) == 0
    probes = {}
    for ds in ("imagenet_a", "imagenet_r", "eurosat", "imagenet"):
        t = build(env, "ExtrasLinearProbeCoOp", env["base"] / f"xd_probe_{ds}", dataset=ds,
                  opts=["TRAINER.COOP.N_CTX", "4"])
        t.load_model(str(out), epoch=2)
        probes[ds] = t
    train_names = probes["imagenet"].model.head.train_classnames
    assert probes["imagenet"].model.head.use_base_branch and probes["imagenet"].model.head.row_index is None
    a = probes["imagenet_a"].model.head
    assert a.use_base_branch and a.train_label_space == "imagenet"
    target = [probes["imagenet_a"].lab2cname[i] for i in range(probes["imagenet_a"].num_classes)]
    assert a.row_index.tolist() == [train_names.index(n) for n in target] == [0, 2]
    # the masked head's CAT logits are the selected rows of the full classifier
    v = torch.randn(4, 64)
    full = a.cat_logits(v, a.film_lp_img)
    torch.testing.assert_close(a.cat_logits(v, a.film_lp_img, a.row_index), full[:, [0, 2]])
    assert not probes["imagenet_r"].model.head.use_base_branch  # a class the model never saw -> ITM only
    assert not probes["eurosat"].model.head.use_base_branch  # other label space -> ITM only
    ev = env["base"] / "dept_xd_a"
    assert run(env, "ExtrasLinearProbeCoOp", ev, "--eval-only", "--model-dir", str(out), "--load-epoch", "2",
               dataset="imagenet_a", opts=["TRAINER.COOP.N_CTX", "4"]) == 0


def test_staged_learning_rates_per_epoch(env):
    t = build(env, "ExtrasLinearProbeKgCoOp", env["base"] / "staged", "--config-file", HEAD_OVERLAY,
              opts=["OPTIM.LR", "0.05", "OPTIM.MAX_EPOCH", "4"])  # overlay: LR_EXP 6.5, the learner at LR
    groups = t.optim.param_groups
    head_ids = {id(p) for p in t.model.head.parameters()}
    assert [all(id(p) in head_ids for p in g["params"]) for g in groups] == [False, True]
    assert {id(p) for p in groups[0]["params"]} == {id(t.model.learner.ctx)}
    assert all(g["weight_decay"] == pytest.approx(5e-4) for g in groups)
    import math

    for epoch in range(4):
        lrs = [g["lr"] for g in groups]
        if epoch == 0:
            assert lrs == pytest.approx([1e-5, 1e-5])
        else:
            cos = 0.5 * (1 + math.cos(math.pi * (epoch - 1) / 4))
            assert lrs == pytest.approx([0.05 * cos, 0.05 * 6.5 * cos])
        t.optim.step()  # no gradients: a no-op, keeps the scheduler call order
        t.sched.step()
    # without STAGED_LR (e.g. `--head DePT` on a CoOp config) the learner keeps OPTIM.LR
    t2 = build(env, "CoOp", env["base"] / "staged2", "--head", "DePT", opts=["OPTIM.WARMUP_EPOCH", "0"])
    assert [g["lr"] for g in t2.optim.param_groups] == pytest.approx([0.05, 0.325])


def test_bad_head_and_probe_type_are_config_errors(env, capsys):
    assert run(env, "CoOp", env["base"] / "badhead", "--head", "Nope") == 2
    assert "MODEL.HEAD.NAME" in capsys.readouterr().err
    assert run(env, "CoOp", env["base"] / "badtype", "--head", "DePT", opts=["TRAINER.LINEAR_PROBE.TYPE", "sim"]) == 2
    assert "LINEAR_PROBE.TYPE" in capsys.readouterr().err


def test_maple_resnet_is_a_config_error(env, tmp_path, capsys):
    from tests.helpers.trainer_fixtures import tiny_clip

    path = tmp_path / "rn.pt"
    torch.save(tiny_clip(resnet=True).state_dict(), path)
    assert run(env, "MaPLe", tmp_path / "o", opts=["MODEL.BACKBONE.NAME", str(path)]) == 2
    assert "ViT" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ configs
NEW_YAMLS = {
    "CoCoOp": {"vit_b16_c4_ep10_batch1": (1, 0.002, 10), "vit_b16_c8_ep10_batch1": (1, 0.002, 10),
               "vit_b16_c16_ep10_batch1": (1, 0.002, 10), "vit_b16_c4_ep10_batch1_ctxv1": (1, 0.002, 10)},
    "KgCoOp": {"vit_b16_ep100_ctxv1": (128, 0.002, 100), "rn50_ep100": (128, 0.002, 100),
               "vit_b16_ep10_ctxv1_bs4_lr35": (4, 0.0035, 10)},
    "MaPLe": {"vit_b16_c2_ep5_batch4_2ctx": (4, 0.0035, 5), "vit_b16_c2_ep5_batch4_2ctx_cross_datasets": (4, 0.0026, 2),
              "vit_b16_c2_ep10_batch4_2ctx": (4, 0.0035, 10)},
    "CoOp": {"vit_b16_ep10_bs4_lr35": (4, 0.0035, 10)},
    "ExtrasLinearProbeCoOp": {"vit_b16_ep10_bs4_lr35": (4, 0.0035, 10)},
    "ExtrasLinearProbeCoCoOp": {"vit_b16_c4_ep10_batch1_ctxv1": (1, 0.002, 10)},
    "ExtrasLinearProbeKgCoOp": {"vit_b16_ep10_ctxv1_bs4_lr35": (4, 0.0035, 10)},
    "ExtrasLinearProbeMaPLe": {"vit_b16_c2_ep10_batch4_2ctx": (4, 0.0035, 10)},
}


def test_every_method_yaml_merges_with_its_hyperparameters():
    from trainers.config import resolve_prompt_node

    for trainer, files in NEW_YAMLS.items():
        for stem, (batch, lr, epochs) in files.items():
            for overlays in ([], ["heads/dept.yaml", "regularisers/nemesis.yaml", "regularisers/kgcoop.yaml"]):
                args = ["--trainer", trainer, "--dataset-config-file", os.path.join(DS, "imagenet.yaml"),
                        "--config-file", os.path.join(ROOT, "configs", "trainers", trainer, f"{stem}.yaml")]
                for o in overlays:
                    args += ["--config-file", os.path.join(ROOT, "configs", o)]
                cfg = train.setup_cfg(train.parse_args(args))
                assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH) == (batch, lr, epochs)
                assert cfg.TRAINER.LINEAR_PROBE.LABEL_SPACE == "imagenet" and cfg.DATALOADER.TEST.BATCH_SIZE == 100
            if trainer.startswith("Extras") or stem.endswith("lr35") or "ep10_batch4" in stem:
                assert cfg.TRAIN.CHECKPOINT_FREQ == -1
            if trainer.startswith("Extras"):
                # the learner at LR (the reference's STAGED_LR with BASE_LR_MULT 1.0), the head at LR * LR_EXP
                assert not cfg.OPTIM.STAGED_LR and cfg.OPTIM.LR_EXP == 6.5
                assert cfg.TRAINER.LINEAR_PROBE.WEIGHT == 0.7 and cfg.TRAINER.LINEAR_PROBE.TEST_TIME_FUSION
            if "KgCoOp" in trainer:
                s = resolve_prompt_node(cfg, "COOP")
                assert s["CTX_INIT"] == "a photo of a"
                assert cfg.TRAINER.COOP.W == (2.0 if "lr35" in stem else 1.0)
            if "CoCoOp" in trainer:
                n = int(stem.split("_c")[1].split("_")[0])
                assert cfg.TRAINER.COCOOP.N_CTX == n
                assert cfg.TRAINER.COCOOP.CTX_INIT == ("a photo of a" if "ctxv1" in stem else "")
            if "MaPLe" in trainer:
                assert cfg.TRAINER.MAPLE.PROMPT_DEPTH == (3 if "cross" in stem else 9)
                assert cfg.TRAINER.MAPLE.N_CTX == 2
    # CoOp's global defaults stay CoOp's (DePT's overrides live in its YAMLs)
    cfg = train.setup_cfg(train.parse_args(["--trainer", "CoOp"]))
    assert (cfg.OPTIM.STAGED_LR, cfg.TRAIN.CHECKPOINT_FREQ, cfg.TRAINER.COOP.N_CTX) == (False, 0, 16)
    assert cfg.TRAINER.COCOOP.N_CTX == 16 and cfg.MODEL.HEAD.NAME == "Similarity"  # resolved: the trainer's head
    for ds in ("imagenet", "imagenet_a", "imagenet_r", "imagenet_sketch", "imagenetv2"):
        cfg = train.setup_cfg(train.parse_args(["--dataset-config-file", os.path.join(DS, f"{ds}.yaml")]))
        assert cfg.TRAINER.LINEAR_PROBE.LABEL_SPACE == "imagenet"


# ------------------------------------------------------------------------------------------------ scripts
def test_scripts_protocols(tmp_path):
    env, calls = python_stub_env(tmp_path, train_acc=80.0, test_acc=60.0)

    def sh(script, *args):
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *args], env=env, cwd="/",
                           capture_output=True, text=True)
        return r

    def lines():
        return calls.read_text().splitlines() if calls.exists() else []

    assert sh("cocoop/base2new_train.sh", "dtd").returncode == 0 and len(lines()) == 2
    r = sh("cocoop/base2new_test.sh", "dtd", "2")
    assert r.returncode == 0 and len(lines()) == 3
    last = lines()[-1]
    assert "--load-epoch 10 --eval-only" in last and "SUBSAMPLE_CLASSES new" in last and "--seed 2" in last
    assert "base2new/train_base/dtd/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed2" in last
    r = sh("cocoop/base2new_train.sh", "dtd")
    assert len(lines()) == 3 and r.stdout.count("skip (finished)") == 2
    seed1 = tmp_path / "out/base2new/train_base/dtd/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed1"
    (seed1 / "log.txt").write_text("epoch [1/10]\n")
    r = sh("cocoop/base2new_train.sh", "dtd", "1")
    assert "continue (interrupted)" in r.stdout and len(lines()) == 4
    assert sh("maple/xd_test.sh", "caltech101", "1").returncode == 0
    last = lines()[-1]
    assert "MaPLe/vit_b16_c2_ep5_batch4_2ctx_cross_datasets.yaml" in last and "--load-epoch 2 " in last
    assert "imagenet/MaPLe/vit_b16_c2_ep5_batch4_2ctx_cross_datasets_16shots/seed1" in last
    assert sh("kgcoop/base2new_test.sh", "eurosat", "1").returncode == 0
    last = lines()[-1]
    assert "--load-epoch 100" in last and "TRAINER.COOP.W 8.0" in last and "shots_16_8.0/KgCoOp" in last
    assert sh("dept/xd_train.sh", "KgCoOp", "3").returncode == 0
    last = lines()[-1]
    assert "--trainer ExtrasLinearProbeKgCoOp" in last and "imagenet.yaml" in last and "SUBSAMPLE_CLASSES all" in last
    assert sh("dept/base2new_test.sh", "MaPLe", "dtd", "1").returncode == 0
    last = lines()[-1]
    assert "--load-epoch 10 " in last and "ExtrasLinearProbeMaPLe/vit_b16_c2_ep10_batch4_2ctx.yaml" in last
    env["BASELINE"] = "1"
    assert sh("dept/base2new_train.sh", "CoOp", "dtd", "1").returncode == 0
    assert "--trainer CoOp " in lines()[-1] and "CoOp/vit_b16_ep10_bs4_lr35.yaml" in lines()[-1]
    assert sh("dept/base2new_train.sh", "Foo", "dtd").returncode == 2
    assert sh("cocoop/base2new_train.sh").returncode == 2
    env.pop("DATA")
    assert sh("maple/xd_train.sh", "1").returncode == 2


def test_parse_base2new(tmp_path, capsys):
    from tools import parse_test_res

    def write(kind, ds, seed, acc):
        d = tmp_path / "base2new" / kind / ds / "shots_16" / "CoCoOp" / "cfg" / f"seed{seed}"
        d.mkdir(parents=True)
        if kind == "train_base":
            (d / "log.txt").write_text(f"* accuracy: 1.0%\nFinish training\n* accuracy: {acc}%\nElapsed: 0:00:01\n")
        else:
            (d / "log.txt").write_text(f"=> result\n* accuracy: {acc}%\n* macro_f1: 1.0%\n")

    for seed, (b, n) in {1: (80.0, 60.0), 2: (90.0, 70.0), 3: (70.0, 50.0), 4: (60.0, 40.0)}.items():
        write("train_base", "dtd", seed, b)
        write("test_new", "dtd", seed, n)
    write("train_base", "eurosat", 1, 50.0)
    write("test_new", "eurosat", 1, 100.0)
    tables = parse_test_res.base2new_tables(str(tmp_path / "base2new"))
    rows = tables[("shots_16", "CoCoOp", "cfg")]
    dtd, euro, avg = rows
    assert dtd["n_seeds"] == 4 and dtd["base"] == 75.0 and dtd["new"] == 55.0
    assert dtd["H"] == pytest.approx(round(2 / (1 / 75 + 1 / 55), 2))
    assert dtd["H_seed2"] == pytest.approx(round(2 / (1 / 90 + 1 / 70), 2))
    assert euro["H"] == pytest.approx(round(2 / (1 / 50 + 1 / 100), 2))
    assert avg["base"] == 62.5 and avg["new"] == 77.5 and avg["H"] == pytest.approx(round(2 / (1 / 62.5 + 1 / 77.5), 2))
    assert parse_test_res.main([str(tmp_path / "base2new"), "--base2new", "--csv", str(tmp_path / "b.csv")]) == 0
    assert "* average: base 62.50% new 77.50%" in capsys.readouterr().out
    assert (tmp_path / "b.csv").read_text().startswith("dataset,")
    assert parse_test_res.main([str(tmp_path / "nothing"), "--base2new"]) == 2
