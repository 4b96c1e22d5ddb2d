"""IVLP and VPT (the MaPLe repository's other variants): learners against hand-built encodings, the
reference's key spellings and depth-0 semantics, VPT's text encoded once (counted calls), random-number order, and
train.py runs of both trainers on generated data (eval-only reproduces the final accuracy; checkpoint round trip)."""
from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F

import train
from clip import clip
from clip.model import CLIP, build_clip_from_config
from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_clip, tiny_eurosat_env
from trainers.modules import PromptedCLIP, Similarity
from trainers.modules.prompt_learners import IVLPPromptLearner, VPTPromptLearner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")
NAMES = ["red_cat", "dog", "sea lake"]


def three_layer_clip():
    torch.manual_seed(0)
    return build_clip_from_config(vision_width=48, vision_layers=3, transformer_layers=3)


def cosine_logits(cm, img, txt):
    return cm.logit_scale.exp() * F.normalize(img, dim=-1) @ F.normalize(txt, dim=-1).t()


# ------------------------------------------------------------------------------------------------ IVLP
def test_ivlp_learner_matches_a_hand_built_encoding():
    cm = three_layer_clip()
    torch.manual_seed(1)
    learner = IVLPPromptLearner(NAMES, cm, n_ctx=2, ctx_init="a photo of a", prompt_depth_text=3, n_ctx_vision=4,
                                prompt_depth_vision=2)
    emb = cm.token_embedding(clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES]))
    assert torch.equal(learner.ctx.detach(), emb[0, 1:3])  # "a photo" learnable, "of a" fixed in the prompt
    assert torch.equal(learner().prompts, emb)
    assert [tuple(p.shape) for p in learner.compound_prompts_text] == [(2, 64), (2, 64)]
    assert learner.visual.vpt.shape == (4, 48) and len(learner.visual.vpt_deep) == 1  # Dv from the model
    assert all(p.dtype == torch.float32 for p in learner.parameters())
    assert learner.checkpoint_name == "VLPromptLearner" and learner.prompts_image_tower
    model = PromptedCLIP(cm, learner, Similarity(cm, NAMES)).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        img = cm.encode_image(images, prompts=learner.visual.vpt, deep_prompts=[learner.visual.vpt_deep[0]])
        txt = cm.encode_prompts(emb, clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES]),
                                deep_prompts=list(learner.compound_prompts_text))
        assert torch.equal(model(images).logits, cosine_logits(cm, img, txt))
        # no coupling: the visual prompts move only the image features, the text prompts only the text features
        before = model(images)
        learner.visual.vpt.add_(1.0)
        model.invalidate_cache()
        after = model(images)
        assert torch.equal(after.text_features, before.text_features)
        assert not torch.equal(after.image_features, before.image_features)
        learner.compound_prompts_text[1].add_(1.0)
        model.invalidate_cache()
        again = model(images)
        assert torch.equal(again.image_features, after.image_features)
        assert not torch.equal(again.text_features, after.text_features)


def test_ivlp_language_only_has_no_visual_prompts_and_runs_on_a_resnet():
    cm = tiny_clip(0, resnet=True)
    learner = IVLPPromptLearner(NAMES, cm, n_ctx=4, prompt_depth_text=2, n_ctx_vision=0, prompt_depth_vision=0)
    assert not learner.prompts_image_tower and learner.visual_prompts() == (None, None)
    assert {n for n, _ in learner.named_parameters()} == {"ctx", "compound_prompts_text.0"}
    model = PromptedCLIP(cm, learner, Similarity(cm, NAMES)).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = learner()
        txt = cm.encode_prompts(out.prompts, out.tokenized_prompts, deep_prompts=out.deep_text_prompts)
        assert torch.equal(model(images).logits, cosine_logits(cm, cm.encode_image(images), txt))
    with pytest.raises(ConfigError, match="ViT"):
        IVLPPromptLearner(NAMES, cm, prompt_depth_vision=1)
    with pytest.raises(ConfigError, match="PROMPT_DEPTH_TEXT.*VPT"):
        IVLPPromptLearner(NAMES, tiny_clip(0), prompt_depth_text=0)
    with pytest.raises(ConfigError, match="N_CTX_VISION"):
        IVLPPromptLearner(NAMES, tiny_clip(0), n_ctx_vision=0, prompt_depth_vision=1)


def test_ivlp_random_context_beyond_four_tokens():
    cm = tiny_clip(0)
    learner = IVLPPromptLearner(NAMES, cm, n_ctx=6, prompt_depth_text=1, prompt_depth_vision=1)
    ref = cm.token_embedding(clip.tokenize(["X X X X X X dog."]))
    prompts = learner().prompts[1]
    assert torch.equal(prompts[1:7], learner.ctx.detach()) and torch.equal(prompts[7:], ref[0, 7:])
    assert learner.deep_text_prompts() is None and learner.visual_prompts()[1] is None  # depth 1: input only


# ------------------------------------------------------------------------------------------------- VPT
def counting(monkeypatch):
    calls = []
    orig = CLIP.encode_prompts

    def counted(self, *args, **kwargs):
        calls.append(1)
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(CLIP, "encode_prompts", counted)
    return calls


def test_vpt_text_features_are_computed_once(monkeypatch):
    cm = three_layer_clip()
    learner = VPTPromptLearner(NAMES, cm, n_ctx_vision=3, prompt_depth_vision=3)
    assert learner.context_vectors() is None and not learner.text_depends_on_params
    assert {n for n, _ in learner.named_parameters()} == {"visual.vpt", "visual.vpt_deep.0", "visual.vpt_deep.1"}
    model = PromptedCLIP(cm, learner, Similarity(cm, NAMES))
    model.requires_grad_(False)
    learner.requires_grad_(True)
    optim = torch.optim.SGD(learner.parameters(), lr=0.5)
    calls = counting(monkeypatch)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 1])
    model.train()
    first = None
    for _ in range(3):  # three training steps, as PromptTrainer runs them
        out = model(images)
        first = out.text_features if first is None else first
        loss = F.cross_entropy(out.logits, labels)
        optim.zero_grad()
        loss.backward()
        assert learner.visual.vpt.grad.abs().sum() > 0  # the visual prompts learn
        optim.step()
        model.invalidate_cache()  # the trainer's call after each step keeps the fixed text
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(calls) == 1  # one text-encoder call for 3 steps + a mode switch + evaluation
    assert torch.equal(out.text_features, first)
    texts = [f"a photo of a {n.replace('_', ' ')}." for n in NAMES]
    with torch.no_grad():
        assert torch.equal(first, cm.encode_text(clip.tokenize(texts)))  # the hand-crafted prompt
        img = cm.encode_image(images, prompts=learner.visual.vpt, deep_prompts=list(learner.visual.vpt_deep))
        assert torch.equal(out.logits, cosine_logits(cm, img, first))
    n = len(calls)
    model.invalidate_cache(force=True)
    with torch.no_grad():
        model(images)
    assert len(calls) == n + 1


def test_vpt_needs_a_vit_and_a_phrase():
    with pytest.raises(ConfigError, match="ViT"):
        VPTPromptLearner(NAMES, tiny_clip(0, resnet=True))
    with pytest.raises(ConfigError, match="CTX_INIT"):
        VPTPromptLearner(NAMES, tiny_clip(0), ctx_init="")


# ------------------------------------------------------------------------------------ config + RNG order
def cfg_of(*argv):
    return train.setup_cfg(train.parse_args(["--trainer", *argv]))


def test_reference_keys_and_shipped_configs():
    cfg = cfg_of("IVLP", "--config-file", os.path.join(ROOT, "configs/trainers/IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml"))
    pl = cfg.MODEL.PROMPT_LEARNER
    assert (pl.NAME, pl.N_CTX, pl.N_CTX_VISION, pl.PROMPT_DEPTH_TEXT, pl.PROMPT_DEPTH_VISION) == (
        "IVLPPromptLearner", 2, 2, 12, 12)
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.TRAINER.PREC) == (
        0.0035, 5, 4, "fp16")
    cfg = cfg_of("IVLP", "--config-file",
                 os.path.join(ROOT, "configs/trainers/IVLP/vit_b16_c2_ep5_batch4_4ctx_language_only.yaml"))
    assert (cfg.MODEL.PROMPT_LEARNER.N_CTX, cfg.MODEL.PROMPT_LEARNER.PROMPT_DEPTH_VISION, cfg.OPTIM.LR) == (4, 0, 0.0025)
    cfg = cfg_of("VPT", "--config-file", os.path.join(ROOT, "configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml"))
    pl = cfg.MODEL.PROMPT_LEARNER
    assert (pl.NAME, pl.N_CTX_VISION, pl.PROMPT_DEPTH_VISION, cfg.OPTIM.LR, cfg.TRAINER.PREC) == (
        "VPTPromptLearner", 8, 12, 0.0025, "fp32")
    # code defaults (the MaPLe repository's) and the trainers' precision defaults
    cfg = cfg_of("IVLP")
    pl = cfg.MODEL.PROMPT_LEARNER
    assert (pl.N_CTX, pl.N_CTX_VISION, pl.PROMPT_DEPTH_TEXT, pl.PROMPT_DEPTH_VISION, pl.CTX_INIT, cfg.TRAINER.PREC) == (
        2, 2, 9, 9, "a photo of a", "fp16")
    cfg = cfg_of("VPT")
    assert (cfg.MODEL.PROMPT_LEARNER.N_CTX_VISION, cfg.MODEL.PROMPT_LEARNER.PROMPT_DEPTH_VISION, cfg.TRAINER.PREC) == (
        2, 1, "fp32")
    assert cfg_of("VPT", "TRAINER.VPT.PREC", "fp16").TRAINER.PREC == "fp16"  # written values win
    assert cfg_of("VPTNemesis", "REGULARISER.NEMESIS.A", "1").REGULARISER.NEMESIS.TARGET == "vision"
    from trainers import TRAINER_REGISTRY

    with pytest.raises(ConfigError, match=r"TRAINER\.IVLP\.PROMPT_DEPTH_TEXT \(= MODEL\.PROMPT_LEARNER"):
        TRAINER_REGISTRY.get("IVLP").validate_cfg(cfg_of("IVLP", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "0"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("ivlp_vpt"), test_batch_size=5)


def test_random_draws_in_the_documented_order(env, tmp_path):
    from tests.test_reference_rng import DT, DV, expected_state, normal, rng_after_build

    def ivlp(n_t, n_v, dt, dv, init):
        normal(n_v, DV)  # visual.vpt
        for _ in range(dv - 1):
            normal(n_v, DV)  # visual.vpt_deep.*
        for _ in range(dt - 1):
            normal(n_t, DT)  # compound_prompts_text.*
        if not init:
            normal(n_t, DT)  # ctx (fp32 here)

    opts = ["TRAINER.IVLP.PREC", "fp32", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "3", "TRAINER.IVLP.PROMPT_DEPTH_VISION",
            "2", "TRAINER.IVLP.N_CTX_VISION", "3"]
    assert torch.equal(rng_after_build(env, tmp_path, "IVLP", opts), expected_state(lambda: ivlp(2, 3, 3, 2, True)))
    opts += ["TRAINER.IVLP.CTX_INIT", ""]
    assert torch.equal(rng_after_build(env, tmp_path, "IVLP", opts), expected_state(lambda: ivlp(2, 3, 3, 2, False)))

    def vpt():
        for _ in range(3):
            normal(4, DV)

    opts = ["TRAINER.VPT.PROMPT_DEPTH_VISION", "3", "TRAINER.VPT.N_CTX_VISION", "4"]
    assert torch.equal(rng_after_build(env, tmp_path, "VPT", opts), expected_state(vpt))


# ------------------------------------------------------------------------------------------- train.py
def run(env, out, trainer, *extra):
    args = ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file", DS,
            "--config-file", env["cfg"], "--output-dir", str(out), *extra]
    assert train.cli(args) == 0
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


RUNS = {
    "IVLP": ("VLPromptLearner", ["TRAINER.IVLP.PREC", "fp32", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2",
                                 "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2"],
             {"ctx", "compound_prompts_text.0", "visual.vpt", "visual.vpt_deep.0"}),
    "VPT": ("prompt_learner", ["TRAINER.VPT.PROMPT_DEPTH_VISION", "2", "TRAINER.VPT.N_CTX_VISION", "3"],
            {"visual.vpt", "visual.vpt_deep.0"}),
}


@pytest.mark.parametrize("trainer", sorted(RUNS))
def test_train_then_eval_only_reproduces_the_accuracy(env, tmp_path, trainer, monkeypatch):
    folder, opts, keys = RUNS[trainer]
    calls = counting(monkeypatch)
    res = run(env, tmp_path / "train", trainer, *opts)
    n_text_calls = len(calls)
    if trainer == "VPT":  # 2 epochs x 5 steps + the final test: the fixed text is encoded once
        assert n_text_calls == 1
    ckpt = torch.load(tmp_path / "train" / folder / "model.pth.tar-2", weights_only=True)
    assert set(ckpt["state_dict"]) == keys and ckpt["epoch"] == 2
    # the last norms.jsonl record holds the L2 norms of the saved visual prompts
    with open(tmp_path / "train" / "norms.jsonl") as f:
        last = [json.loads(line) for line in f][-1]
    vpt = ckpt["state_dict"]["visual.vpt"]
    assert last["visual_v_norms"] == [float(v) for v in vpt.norm(dim=-1)]
    assert last["visual_matrix_norm"] == float(torch.linalg.matrix_norm(vpt))
    if trainer == "IVLP":
        assert last["v_norms"] == [float(v) for v in ckpt["state_dict"]["ctx"].float().norm(dim=-1)]
    ev = run(env, tmp_path / "eval", trainer, *opts, "--eval-only", "--model-dir", str(tmp_path / "train"),
             "--load-epoch", "2")
    assert (ev["accuracy"], ev["correct"], ev["total"]) == (res["accuracy"], res["correct"], res["total"])
    assert ev["macro_f1"] == res["macro_f1"]
    # checkpoint round trip: a trainer built from the config loads exactly the saved tensors
    from dassl.engine import build_trainer

    t = build_trainer(train.setup_cfg(train.parse_args(
        ["--root", env["data"], "--seed", "2", "--trainer", trainer, "--dataset-config-file", DS, "--config-file",
         env["cfg"], "--output-dir", str(tmp_path / "rt"), *opts])))
    t.load_model(str(tmp_path / "train"), epoch=2)
    state = t.model.learner.state_dict()
    assert set(state) == keys and all(torch.equal(state[k], ckpt["state_dict"][k]) for k in keys)
