"""PREC fp16 means fp16 on CPU too (``clip.load_clip``): the CoOp, MaPLe and DePT paths run in half precision with
the references' casts (fp16 weights, prompts, features and ITM logits; MaPLe's deep prompts and their projections
fp32, cast to fp16 where inserted; our DePT head fp32, deviation D16), and their logits agree with the fp32 path
(the same learned values) within the stated tolerance: max |logit_fp16 - logit_fp32| <= 4e-3 * max |logit_fp32|
(measured on the tiny CLIP: 1.4e-3 CoOp, 1.9e-3 MaPLe, 1.2e-3 DePT)."""
from __future__ import annotations

import pytest
import torch

from clip import clip
from tests.helpers.tiny_clip import write_tiny_weights
from trainers.modules import DePT, PromptedCLIP, Similarity
from trainers.modules.prompt_learners.coop import CoOpPromptLearner
from trainers.modules.prompt_learners.maple import MaPLePromptLearner

NAMES = ["dog", "cat", "car", "airplane", "tree"]
IMAGES = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([0, 1, 2, 3, 4, 0])
REL_TOL = 4e-3
CASES = [("coop", CoOpPromptLearner, dict(n_ctx=4), Similarity), ("maple", MaPLePromptLearner, dict(prompt_depth=3),
         Similarity), ("dept", CoOpPromptLearner, dict(n_ctx=4), DePT)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_tiny_weights(tmp_path_factory.mktemp("fp16") / "w.pt")


def build(weights, prec, learner_cls, kwargs, head_cls, like=None):
    model = clip.load_clip(weights, precision=prec)
    torch.manual_seed(0)
    learner = learner_cls(NAMES, model, **kwargs)
    head = head_cls(model, NAMES)
    if like is not None:  # the same learned values as the fp16 model
        learner.load_state_dict({k: v.to(learner.state_dict()[k].dtype) for k, v in like.learner.state_dict().items()})
        head.load_state_dict(like.head.state_dict())
    return PromptedCLIP(model, learner, head)


@pytest.mark.parametrize("name,learner_cls,kwargs,head_cls", CASES, ids=[c[0] for c in CASES])
def test_fp16_logits_match_fp32(weights, name, learner_cls, kwargs, head_cls):
    half = build(weights, "fp16", learner_cls, kwargs, head_cls).eval()
    full = build(weights, "fp32", learner_cls, kwargs, head_cls, like=half).eval()
    assert half.clip.dtype == torch.float16 and half.learner.ctx.dtype == torch.float16
    with torch.no_grad():
        a, b = half(IMAGES), full(IMAGES)
    assert a.image_features.dtype == a.text_features.dtype == torch.float16
    assert a.logits.dtype == (torch.float32 if name == "dept" else torch.float16)  # DePT: fp32 head (the reference casts it to fp16)
    if name == "maple":
        learner = half.learner
        assert learner.proj.weight.dtype == torch.float16  # first-layer projection in CLIP's dtype (reference)
        assert all(p.dtype == torch.float32 for p in learner.compound_prompts_text)
        assert all(m.weight.dtype == torch.float32 for m in learner.compound_prompt_projections)
    diff = (a.logits.float() - b.logits).abs().max().item()
    assert 0 < diff <= REL_TOL * b.logits.abs().max().item()  # really fp16 (not identical), and close
    assert torch.equal(a.logits.argmax(-1), b.logits.argmax(-1))


@pytest.mark.parametrize("name,learner_cls,kwargs,head_cls", CASES, ids=[c[0] for c in CASES])
def test_fp16_training_step_on_cpu(weights, name, learner_cls, kwargs, head_cls):
    model = build(weights, "fp16", learner_cls, kwargs, head_cls)
    params = [p for p in list(model.learner.parameters()) + list(model.head.parameters())]
    before = model.learner.ctx.detach().clone()
    optim = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    model.train()
    loss = sum(model.head.loss(model(IMAGES), LABELS).values())
    assert torch.isfinite(loss)
    loss.backward()
    optim.step()  # plain SGD on fp16 prompts, no master copy, no loss scaling (the references' fp16 mode)
    assert model.learner.ctx.dtype == torch.float16 and not torch.equal(model.learner.ctx.detach(), before)


@pytest.mark.parametrize("trainer,opts,folder", [
    ("CoOp", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.PREC", "fp16"], "prompt_learner"),
    ("ExtrasLinearProbeMaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "TRAINER.MAPLE.PREC", "fp16",
                                "DATASET.SUBSAMPLE_CLASSES", "base"], "MultiModalPromptLearner"),
], ids=["coop", "dept_maple"])
def test_fp16_end_to_end_on_cpu(tmp_path, trainer, opts, folder):
    """train.py with PREC fp16 on CPU: trains in half precision (fp16 checkpointed prompts), and eval-only
    reproduces the final accuracy."""
    import json
    import os

    import train
    from tests.helpers.trainer_fixtures import tiny_eurosat_env

    env = tiny_eurosat_env(tmp_path, test_batch_size=5)
    ds = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "datasets", "eurosat.yaml")

    def run(out, *extra):
        return train.cli(["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file", ds,
                          "--config-file", env["cfg"], "--output-dir", str(out), *extra, *opts])

    assert run(tmp_path / "run") == 0
    state = torch.load(tmp_path / "run" / folder / "model.pth.tar-2", weights_only=True)["state_dict"]
    assert state["ctx"].dtype == torch.float16
    assert run(tmp_path / "eval", "--eval-only", "--model-dir", str(tmp_path / "run"), "--load-epoch", "2") == 0
    accs = [json.load(open(tmp_path / d / "results.json"))["accuracy"] for d in ("run", "eval")]
    assert accs[0] == accs[1]
