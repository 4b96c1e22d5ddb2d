"""Nemesis on visual prompts (``REGULARISER.NEMESIS.TARGET vision``): PUN / PAN norms, loss, gradients and the logged
norms of VPT's, IVLP's and MaPLe's input-level visual prompts against hand computation; the corrupted PAN copies
are encoded in one image-encoder call and decide alpha exactly as per-copy encodings do."""
from __future__ import annotations

import json
import os
import random

import pytest
import torch

import train
from clip.model import CLIP, build_clip_from_config
from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_eurosat_env
from trainers.modules import MaPLePromptLearner, PromptedCLIP, Similarity
from trainers.modules.prompt_learners import CoOpPromptLearner, IVLPPromptLearner, VPTPromptLearner
from trainers.modules.regularisers import Nemesis, logistic_omega

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["forest", "river", "sea lake", "highway"]
ORD = {"two": 2.0, "one": 1.0, "inf": float("inf")}


class FeatureHead(torch.nn.Module):
    """Logits = the first C image-feature dimensions (a random tiny CLIP's class names are too alike for the cosine
    head to ever change its prediction; PAN only needs ``head(image_features, text_features)``)."""

    def forward(self, image_features, text_features):
        return image_features[:, : text_features.shape[-2]]


def vpt_model(n=3, depth=2, seed=0, head=None):
    torch.manual_seed(seed)
    cm = build_clip_from_config(vision_width=48, vision_layers=3, transformer_layers=2)
    learner = VPTPromptLearner(NAMES, cm, n_ctx_vision=n, prompt_depth_vision=depth)
    with torch.no_grad():  # distinct norms per position
        learner.visual.vpt.mul_(torch.arange(1, n + 1, dtype=torch.float32)[:, None] * 5)
    model = PromptedCLIP(cm, learner, head if head is not None else Similarity(cm, NAMES))
    model.requires_grad_(False)
    learner.requires_grad_(True)
    return model


@pytest.mark.parametrize("nt", ["two", "one", "inf"])
def test_pun_on_visual_prompts_against_hand_computation(nt):
    model = vpt_model()
    reg = Nemesis(a=2.0, beta=1.0, norm_type=nt, target="vision")
    reg.setup(model, NAMES)
    reg.on_epoch_start(3, 10)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    out = model.train()(images)
    loss = reg(model, out, {"img": images, "label": labels})["norm_loss"]
    v = model.learner.visual.vpt.detach()
    n_j = [float(torch.linalg.vector_norm(v[j], ord=ORD[nt])) for j in range(3)]
    omega = logistic_omega(3, 10)
    assert abs(omega - (1 - 1 / (1 + torch.exp(torch.tensor(-0.2 * (3 - 5.0)))).item())) < 1e-7
    torch.testing.assert_close(loss, torch.tensor(omega * 2.0 * sum(n_j) / 3), rtol=1e-6, atol=0)
    log = reg.log_values()
    assert [log[f"nemesis_v{j}_norm"] for j in range(3)] == pytest.approx(n_j, rel=1e-6)
    want_matrix = {"two": torch.linalg.matrix_norm(v), "one": v.abs().sum(0).max(), "inf": v.abs().sum(1).max()}[nt]
    assert log["nemesis_matrix_norm"] == pytest.approx(float(want_matrix), rel=1e-6)
    assert [log[f"alpha_{j}"] for j in range(3)] == [2.0, 2.0, 2.0]
    loss.backward()
    if nt == "two":  # d/dv_j (omega A / n) ||v_j|| = (omega A / n) v_j / ||v_j||; deep prompts get nothing
        torch.testing.assert_close(model.learner.visual.vpt.grad, omega * 2.0 / 3 * v / v.norm(dim=-1, keepdim=True))
        assert model.learner.visual.vpt_deep[0].grad is None


def hand_predictions(model, images, positions, cw):
    """Per-copy encodings (no batching): predictions ``[NP+1, B]`` of the original and of the copies scaling visual
    prompt position j by cw."""
    cm, learner = model.clip, model.learner
    vis, deep = learner.visual_prompts()
    preds = []
    with torch.no_grad():
        text = model.text_features()[0]
        for j in [None, *positions]:
            p = vis.detach().clone()
            if j is not None:
                p[j] *= cw
            feats = cm.encode_image(images, prompts=p, deep_prompts=deep)
            preds.append(model.head(feats, text).argmax(-1))
    return torch.stack(preds)


def hand_alpha(preds, labels, positions, n, scale):
    hits = [int((p == labels).sum()) for p in preds]
    alpha = torch.zeros(n)
    for k, j in enumerate(positions, start=1):
        if hits[k] > hits[0]:
            alpha[j] = scale
    return alpha, hits


def test_pan_on_visual_prompts_one_batched_image_call_and_hand_alpha(monkeypatch):
    model = vpt_model(n=4, depth=1, head=FeatureHead())  # depth 1: the input prompts reach every block
    with torch.no_grad():
        model.learner.visual.vpt.copy_(torch.randn(4, 48) * 3)
    model.train()
    images = torch.randn(8, 3, 32, 32)
    reg = Nemesis(a=1.0, beta=0.0, n_pos=3, cw=0.0, target="vision")
    reg.setup(model, NAMES)
    reg.on_epoch_start(0, 2)
    out = model(images)
    nonzero = 0
    for trial in range(6):
        random.seed(trial)
        positions = random.sample(range(4), 3)
        preds = hand_predictions(model, images, positions, 0.0)
        # labels: the predictions of the copy that changes most (odd trials: the original's, nobody wins)
        best = int(torch.stack([(p != preds[0]).sum() for p in preds]).argmax())
        labels = preds[best if trial % 2 == 0 else 0]
        want, hits = hand_alpha(preds, labels, positions, 4, 1.0)
        calls = []
        orig = CLIP.encode_image
        monkeypatch.setattr(CLIP, "encode_image", lambda self, *a, **k: calls.append(a[0].shape[0]) or orig(self, *a, **k))
        random.seed(trial)
        loss = reg(model, out, {"img": images, "label": labels})["norm_loss"]
        monkeypatch.setattr(CLIP, "encode_image", orig)
        assert calls == [4 * 8]  # (NP+1)*B images in ONE image-encoder call
        assert torch.equal(reg.alpha, want), (trial, hits)
        norms = model.learner.visual.vpt.detach().norm(dim=-1)
        active = int((want != 0).sum())
        expected = reg.omega * float((norms * want).sum()) / max(1, active)
        assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
        nonzero += active
    assert nonzero > 0  # some corrupted copy did beat the original: the comparison was exercised


def test_random_np_skips_the_pre_inference(monkeypatch):
    model = vpt_model(n=4)
    reg = Nemesis(a=1.0, beta=0.5, n_pos="random2", target="vision", pan_scale=7.0)
    reg.setup(model, NAMES)
    images = torch.randn(2, 3, 32, 32)
    out = model.train()(images)
    monkeypatch.setattr(CLIP, "encode_image", lambda *a, **k: pytest.fail("no pre-inference in random mode"))
    random.seed(5)
    positions = random.sample(range(4), 2)
    random.seed(5)
    reg(model, out, {"img": images, "label": torch.tensor([0, 1])})
    assert sorted(j for j in range(4) if reg.alpha[j] == 7.0) == sorted(positions)


def test_maple_and_ivlp_vision_targets():
    torch.manual_seed(0)
    cm = build_clip_from_config(vision_width=48, vision_layers=2, transformer_layers=2)
    maple = MaPLePromptLearner(NAMES, cm, prompt_depth=2)
    model = PromptedCLIP(cm, maple, Similarity(cm, NAMES))
    model.requires_grad_(False)
    maple.requires_grad_(True)
    reg = Nemesis(a=1.0, beta=1.0, target="vision")
    reg.setup(model, NAMES)
    assert torch.equal(reg.target_vectors(model), maple.proj(maple.ctx))  # MaPLe's visual prompt = proj(ctx)
    images = torch.randn(2, 3, 32, 32)
    loss = reg(model, model.train()(images), {"img": images, "label": torch.tensor([0, 1])})["norm_loss"]
    loss.backward()
    assert maple.proj.weight.grad.abs().sum() > 0 and maple.ctx.grad.abs().sum() > 0  # through the coupling
    ivlp = IVLPPromptLearner(NAMES, cm, n_ctx=4, prompt_depth_text=2, n_ctx_vision=2, prompt_depth_vision=2)
    model = PromptedCLIP(cm, ivlp, Similarity(cm, NAMES))
    reg = Nemesis(a=1.0, beta=0.0, n_pos=3, cw=0.5, target="vision")
    with pytest.raises(ConfigError, match=r"NP must lie in \[1, N_CTX_VISION=2\]"):
        reg.setup(model, NAMES)  # the text context has 4 vectors, the visual prompt 2
    reg = Nemesis(a=1.0, beta=1.0, target="vision")
    reg.setup(model, NAMES)
    assert reg.target_vectors(model) is ivlp.visual.vpt
    text_only = IVLPPromptLearner(NAMES, cm, prompt_depth_text=2, prompt_depth_vision=0)
    with pytest.raises(ConfigError, match="TARGET vision needs a learner with visual prompts"):
        Nemesis(a=1.0, beta=1.0, target="vision").setup(PromptedCLIP(cm, text_only, Similarity(cm, NAMES)), NAMES)
    with pytest.raises(ConfigError, match="TARGET vision needs"):
        Nemesis(a=1.0, beta=1.0, target="vision").setup(
            PromptedCLIP(cm, CoOpPromptLearner(NAMES, cm, n_ctx=4), Similarity(cm, NAMES)), NAMES)
    vpt = VPTPromptLearner(NAMES, cm)
    with pytest.raises(ConfigError, match="context vectors.*TARGET vision"):  # VPT has no text context
        Nemesis(a=1.0, beta=1.0).setup(PromptedCLIP(cm, vpt, Similarity(cm, NAMES)), NAMES)
    with pytest.raises(ConfigError, match="TARGET"):
        Nemesis(a=1.0, beta=1.0, target="image")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("vpt_nem"), test_batch_size=5)


def test_vpt_nemesis_run_logs_the_visual_norms(env, tmp_path):
    ds = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")
    base = ["--root", env["data"], "--seed", "1", "--dataset-config-file", ds, "--config-file", env["cfg"],
            "TRAINER.VPT.N_CTX_VISION", "3", "REGULARISER.NEMESIS.A", "1.0", "REGULARISER.NEMESIS.BETA", "0.0",
            "REGULARISER.NEMESIS.NP", "2", "REGULARISER.NEMESIS.CW", "0.5"]
    out = tmp_path / "run"
    assert train.cli(["--trainer", "VPTNemesis", "--output-dir", str(out), *base]) == 0
    with open(out / "norms.jsonl") as f:
        records = [json.loads(line) for line in f]
    ckpt = torch.load(out / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]
    assert records[-1]["visual_v_norms"] == [float(v) for v in ckpt["visual.vpt"].norm(dim=-1)]
    assert len(records[-1]["alpha"]) == 3 and "matrix_norm" not in records[-1]  # VPT has no text context
    log = (out / "log.txt").read_text()
    assert "nemesis_v2_norm" in log and "visual_v2_norm" in log and "alpha_2" in log
    # NP beyond the visual prompt length: one error line, exit 2, nothing written
    bad = tmp_path / "bad"
    assert train.cli(["--trainer", "VPTNemesis", "--output-dir", str(bad), *base, "REGULARISER.NEMESIS.NP", "5"]) == 2
    assert not bad.exists() or not any(bad.iterdir())
    # the text target on VPT is refused with the way out
    assert train.cli(["--trainer", "VPTNemesis", "--output-dir", str(bad), *base,
                      "REGULARISER.NEMESIS.TARGET", "text"]) == 2
