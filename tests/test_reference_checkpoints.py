"""Reference checkpoints of every method load as written (``trainers/reference_checkpoints.py``): a state saved by
our trainer is rewritten in each reference layout (``tests/helpers/reference_layouts.py``), loaded by a fresh
trainer, and must give bit-identical logits; unplaceable keys, another backbone and a DePT wrapper without a DePT
head are errors; the ignored keys are named in one info line; the CLI evaluates a reference folder to our accuracy."""
from __future__ import annotations

import json
import logging
import os

import pytest
import torch

import train
from dassl.utils.errors import ConfigError
from tests.helpers.reference_layouts import write_reference_run
from tests.helpers.trainer_fixtures import tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")
BASE = ["DATASET.SUBSAMPLE_CLASSES", "base"]
NEW = ["DATASET.SUBSAMPLE_CLASSES", "new"]
NEMESIS = ["TRAINER.CoOpNemesis.A", "1.0", "TRAINER.CoOpNemesis.BETA", "1.0", "TRAINER.CoOpNemesis.PREC", "fp32"]

# (reference layout, our trainer, opts)
CASES = [
    ("coop", "CoOp", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.PREC", "fp32"]),
    ("coop", "CoOpNemesis", ["TRAINER.CoOpNemesis.N_CTX", "4", *NEMESIS]),
    ("cocoop", "CoCoOp", ["TRAINER.COCOOP.N_CTX", "4", "TRAINER.COCOOP.PREC", "fp32"]),
    ("kgcoop", "KgCoOp", ["TRAINER.COOP.CTX_INIT", "True", "TRAINER.COOP.PREC", "fp32"]),
    ("maple", "MaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp32"]),
    ("dept-coop", "ExtrasLinearProbeCoOp", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.PREC", "fp32", *BASE]),
    ("dept-cocoop", "ExtrasLinearProbeCoCoOp", ["TRAINER.COCOOP.N_CTX", "4", "TRAINER.COCOOP.PREC", "fp32", *BASE]),
    ("dept-kgcoop", "ExtrasLinearProbeKgCoOp", ["TRAINER.COOP.CTX_INIT", "True", "TRAINER.COOP.PREC", "fp32", *BASE]),
    ("dept-maple", "ExtrasLinearProbeMaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp32", *BASE]),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("refckpt"), test_batch_size=5)


def argv(env, trainer, out, *extra, opts=(), dataset="eurosat"):
    return ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file",
            os.path.join(DS, f"{dataset}.yaml"), "--config-file", env["cfg"], "--output-dir", str(out), *extra, *opts]


def build(env, trainer, out, opts, dataset="eurosat"):
    from dassl.engine import build_trainer

    return build_trainer(train.setup_cfg(train.parse_args(argv(env, trainer, out, opts=opts, dataset=dataset))))


IMAGES = torch.Generator().manual_seed(3)
IMAGES = torch.randn(4, 3, 32, 32, generator=IMAGES)


def logits(t) -> torch.Tensor:
    t.set_model_mode("eval")
    with torch.no_grad():
        return t.model_inference(IMAGES)


def perturbed(env, trainer, out, opts):
    """A built trainer whose trainable tensors are moved away from their initial values (seeded)."""
    return perturbed_on(env, trainer, out, opts, "eurosat")


def perturbed_on(env, trainer, out, opts, dataset):
    t = build(env, trainer, out, opts, dataset=dataset)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in t.model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn(p.shape, generator=gen).to(p.dtype))
    return t


def reference_run(t, method, run_dir, epoch=2):
    learner = t.model.learner
    head = t.model.head.state_dict() if method.startswith("dept-") else None
    return write_reference_run(run_dir, method, learner.state_dict(), t.model.clip.state_dict(), learner.n_cls,
                               learner.n_ctx, head=head, epoch=epoch)


@pytest.mark.parametrize("method,trainer,opts", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_reference_layout_gives_the_same_logits(env, tmp_path, caplog, method, trainer, opts):
    t0 = perturbed(env, trainer, tmp_path / "t0", opts)
    expected = logits(t0)
    path = reference_run(t0, method, tmp_path / "ref")
    fresh = build(env, trainer, tmp_path / "t1", opts)
    assert not torch.equal(logits(fresh), expected)  # loading must matter
    with caplog.at_level(logging.INFO):
        fresh.load_model(str(tmp_path / "ref"), epoch=2)
    assert torch.equal(logits(fresh), expected)  # (our own layout's round trip: test_method_matrix)
    # the one info line naming what was ignored
    lines = [r.getMessage() for r in caplog.records if "ignored keys" in r.getMessage()]
    assert len(lines) == 1 and path in lines[0]
    assert "token_prefix" in lines[0] and "token_suffix" in lines[0]
    if "kgcoop" in method:
        assert "bias_vectors" in lines[0] and "meta_net.linear1.weight" in lines[0]
    if method == "dept-kgcoop":
        assert "adapter.fc.0.weight" in lines[0] and "adapter.fc.2.weight" in lines[0]
    if method.startswith("dept-") or method == "maple":
        assert "image_encoder.* (" in lines[0] and "equal to the backbone" in lines[0]


@pytest.mark.parametrize("method,trainer,opts", [CASES[5], CASES[8]], ids=["dept-coop", "dept-maple"])
def test_dept_reference_on_new_classes_uses_itm_only(env, tmp_path, method, trainer, opts):
    t0 = perturbed(env, trainer, tmp_path / "t0", opts)
    reference_run(t0, method, tmp_path / "ref")
    t0.save_model(1, str(tmp_path / "ours"))
    new_opts = [o if o != "base" else "new" for o in opts]
    a = build(env, trainer, tmp_path / "a", new_opts)
    a.load_model(str(tmp_path / "ref"), epoch=2)
    b = build(env, trainer, tmp_path / "b", new_opts)
    b.load_model(str(tmp_path / "ours"), epoch=2)
    assert not a.model.head.use_base_branch and not b.model.head.use_base_branch
    assert torch.equal(logits(a), logits(b))


def test_unplaceable_keys_wrong_backbone_and_missing_head_are_errors(env, tmp_path):
    method, trainer, opts = CASES[7]  # dept-kgcoop
    t0 = perturbed(env, trainer, tmp_path / "t0", opts)
    path = reference_run(t0, method, tmp_path / "ref")
    ckpt = torch.load(path, weights_only=False)
    # an unknown key
    bad = dict(ckpt, state_dict=dict(ckpt["state_dict"], **{"prompt_learner_extra.w": torch.zeros(2)}))
    os.makedirs(tmp_path / "bad" / "PromptLearner")
    torch.save(bad, tmp_path / "bad" / "PromptLearner" / "model.pth.tar-2")
    with pytest.raises(ConfigError, match=r"cannot place the keys \['prompt_learner_extra.w'\]"):
        build(env, trainer, tmp_path / "t1", opts).load_model(str(tmp_path / "bad"), epoch=2)
    # frozen CLIP weights of another backbone
    sd = dict(ckpt["state_dict"])
    sd["image_encoder.proj"] = sd["image_encoder.proj"] + 1e-3
    os.makedirs(tmp_path / "other" / "PromptLearner")
    torch.save(dict(ckpt, state_dict=sd), tmp_path / "other" / "PromptLearner" / "model.pth.tar-2")
    with pytest.raises(ConfigError, match=r"differ from the backbone .*image_encoder|visual.proj"):
        build(env, trainer, tmp_path / "t2", opts).load_model(str(tmp_path / "other"), epoch=2)
    # a DePT wrapper into a trainer without the DePT head
    plain = ["TRAINER.COOP.CTX_INIT", "True", "TRAINER.COOP.PREC", "fp32", *BASE]
    with pytest.raises(ConfigError, match="ExtrasLinearProbe"):
        build(env, "KgCoOp", tmp_path / "t3", plain).load_model(str(tmp_path / "ref"), epoch=2)
    # a KgCoOp checkpoint cannot go into CoCoOp (its meta-net is not CoCoOp's): missing keys
    reference_run(perturbed(env, "KgCoOp", tmp_path / "t4", plain), "kgcoop", tmp_path / "kg")
    coc = ["TRAINER.COCOOP.CTX_INIT", "a photo of a", "TRAINER.COCOOP.PREC", "fp32", *BASE]
    with pytest.raises(ConfigError, match="meta_net.linear1.weight has shape"):
        build(env, "CoCoOp", tmp_path / "t5", coc).load_model(str(tmp_path / "kg"), epoch=2)


def test_cli_eval_only_on_a_reference_run(env, tmp_path):
    """``--eval-only --model-dir <reference run> --load-epoch N`` on an unmodified DePT-MaPLe folder."""
    method, trainer, opts = CASES[8]
    t0 = perturbed(env, trainer, tmp_path / "t0", opts)
    t0.save_model(1, str(tmp_path / "ours"))
    reference_run(t0, method, tmp_path / "ref")
    accs = []
    for src in ("ours", "ref"):
        out = tmp_path / f"eval_{src}"
        assert train.cli(argv(env, trainer, out, "--eval-only", "--model-dir", str(tmp_path / src), "--load-epoch",
                              "2", opts=opts)) == 0
        with open(out / "results.json") as f:
            accs.append(json.load(f))
    assert accs[0]["accuracy"] == accs[1]["accuracy"]
    assert accs[0].get("macro_f1") == accs[1].get("macro_f1")


def test_dept_imagenet_reference_on_imagenet_a_masks_rows(env, tmp_path):
    """An ImageNet-trained reference DePT head (all of ImageNet's classes, rows in classnames.txt order) on an
    ImageNet-A-like target: the CAT head runs on the target's rows, as our own checkpoint does."""
    from tests.helpers.fake_datasets import IMAGENET_CLASSES, _wnid_variant, make_imagenet, write_image

    make_imagenet(env["data"])
    for wnid in IMAGENET_CLASSES:  # every classnames.txt class gets train/val folders, as in the real ImageNet
        for i in range(2):
            write_image(os.path.join(env["data"], "imagenet", "images", "train", wnid, f"{wnid}_x{i}.JPEG"))
            write_image(os.path.join(env["data"], "imagenet", "images", "val", wnid, f"v_{wnid}_x{i}.JPEG"))
    _wnid_variant(env["data"], "ImageNetA", "imagenet-adversarial", "imagenet-a", ["n01491361", "n01440764"])
    opts = ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.PREC", "fp32"]
    t0 = perturbed_on(env, "ExtrasLinearProbeCoOp", tmp_path / "t0", opts, "imagenet")
    assert t0.model.head.linear_probe_proj.weight.shape[0] == len(IMAGENET_CLASSES)
    t0.save_model(1, str(tmp_path / "ours"))
    reference_run(t0, "dept-coop", tmp_path / "ref")
    got = []
    for src in ("ours", "ref"):
        t = build(env, "ExtrasLinearProbeCoOp", tmp_path / f"a_{src}", opts, dataset="imagenet_a")
        t.load_model(str(tmp_path / src), epoch=2)
        assert t.model.head.use_base_branch and t.model.head.row_index.tolist() == [0, 3]
        got.append(logits(t))
    assert torch.equal(got[0], got[1])


def test_dept_resnet_reference_with_drifted_batchnorm_statistics_loads(tmp_path, caplog):
    """The DePT reference trains a ResNet with the whole wrapper in train mode, so its saved BatchNorm running
    statistics drift: they are ignored with one warning (our frozen encoder keeps its own), every other frozen
    tensor is still checked exactly."""
    from tests.helpers.fake_datasets import make_eurosat
    from tests.helpers.trainer_fixtures import tiny_clip, write_tiny_train_yaml

    data = str(tmp_path / "data")
    make_eurosat(data)
    rn = str(tmp_path / "rn.pt")
    torch.save(tiny_clip(resnet=True).state_dict(), rn)
    env = {"base": tmp_path, "data": data, "cfg": write_tiny_train_yaml(str(tmp_path / "rn.yaml"), rn, 5)}
    method, trainer, opts = CASES[5]  # dept-coop
    t0 = perturbed(env, trainer, tmp_path / "t0", opts)
    expected = logits(t0)
    clip_state = {k: v.clone() for k, v in t0.model.clip.state_dict().items()}
    stats = [k for k in clip_state if k.startswith("visual.") and k.endswith(("running_mean", "running_var"))]
    assert stats
    for k in stats:
        clip_state[k] += 0.25
    learner = t0.model.learner
    write_reference_run(tmp_path / "ref", method, learner.state_dict(), clip_state, learner.n_cls, learner.n_ctx,
                        head=t0.model.head.state_dict(), epoch=2)
    fresh = build(env, trainer, tmp_path / "t1", opts)
    with caplog.at_level(logging.WARNING):
        fresh.load_model(str(tmp_path / "ref"), epoch=2)
    warned = [r.getMessage() for r in caplog.records if "BatchNorm running statistics" in r.getMessage()]
    assert len(warned) == 1 and f"{len(stats)} BatchNorm" in warned[0]
    assert torch.equal(logits(fresh), expected)
    clip_state["visual.conv1.weight"] += 0.25  # a drifted weight is another backbone: still an error
    write_reference_run(tmp_path / "ref2", method, learner.state_dict(), clip_state, learner.n_cls, learner.n_ctx,
                        head=t0.model.head.state_dict(), epoch=2)
    with pytest.raises(ConfigError, match="visual.conv1.weight"):
        build(env, trainer, tmp_path / "t2", opts).load_model(str(tmp_path / "ref2"), epoch=2)
