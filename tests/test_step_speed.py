"""Step-time optimisations keep results exact: PAN's copy-0 sharing (alphas and losses with and without)."""
from __future__ import annotations

import random

import torch

from clip.model import build_clip_from_config
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity
from trainers.modules.regularisers.nemesis import Nemesis


def _model(classes=6, seed=0):
    torch.manual_seed(seed)
    clip_model = build_clip_from_config()
    names = [f"class {i}" for i in range(classes)]
    learner = CoOpPromptLearner(names, clip_model, n_ctx=4)
    return PromptedCLIP(clip_model, learner, Similarity(clip_model, names)).train(), names


def _steps(share: bool, n=6):
    model, names = _model()
    reg = Nemesis(a=1.0, beta=0.0, n_pos=2, cw=0.5)
    reg.setup(model, names)
    reg.on_epoch_start(0, 2)
    if not share:
        reg._share_copy0 = type("Never", (dict,), {"get": lambda self, k, d=None: False,
                                                   "__contains__": lambda self, k: True})()
    sizes: list[int] = []
    real = model.encode_text
    model.encode_text = lambda out: (sizes.append(out.prompts.shape[0]), real(out))[1]
    opt = torch.optim.SGD(model.learner.parameters(), lr=5.0)
    random.seed(0)
    g = torch.Generator().manual_seed(1)
    alphas, losses = [], []
    for _ in range(n):
        images = torch.randn(8, 3, 32, 32, generator=g)
        labels = torch.randint(0, len(names), (8,), generator=g)
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out.logits, labels) + reg(model, out, {"label": labels})["norm_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.invalidate_cache()
        alphas.append(reg.alpha.clone())
        losses.append(loss.item())
    return alphas, losses, sizes, model.learner.ctx.detach().clone(), reg


def test_pan_copy0_sharing_is_exact():
    a1, l1, s1, ctx1, reg = _steps(share=True)
    a0, l0, s0, ctx0, _ = _steps(share=False)
    assert l1 == l0 and all(torch.equal(x, y) for x, y in zip(a1, a0)) and torch.equal(ctx1, ctx0)
    assert any(float(a.sum()) > 0 for a in a0)  # PAN selected positions at some step (the comparison has teeth)
    # without sharing: every step encodes (NP+1)*C corrupted-stack prompts (plus the step's own C)
    assert s0.count(3 * 6) == 6
    if all(reg._share_copy0.values()):  # exact on this machine: after the first (checking) step only NP*C
        assert s1.count(3 * 6) == 1 and s1.count(2 * 6) == 1 + 5


def _cocoop(text_checkpoint: bool, text_chunk: int = 0):
    from trainers.modules import CoCoOpPromptLearner

    torch.manual_seed(0)
    clip_model = build_clip_from_config()
    names = [f"class {i}" for i in range(5)]
    learner = CoCoOpPromptLearner(names, clip_model, n_ctx=4)
    return PromptedCLIP(clip_model, learner, Similarity(clip_model, names), text_chunk=text_chunk,
                        text_checkpoint=text_checkpoint).train()


def test_text_checkpointing_gives_the_same_logits_and_gradients():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 3, 1])
    for chunk in (0, 1):  # one batched text call, or one per image (TEXT_CHUNK)
        results = []
        for ckpt in (False, True):
            model = _cocoop(ckpt, chunk)
            assert model.clip.transformer.grad_checkpointing is ckpt
            out = model(images)
            torch.nn.functional.cross_entropy(out.logits, labels).backward()
            grads = {n: p.grad.clone() for n, p in model.learner.named_parameters()}
            results.append((out.logits.detach(), grads))
        (ref_logits, ref_grads), (logits, grads) = results
        assert set(ref_grads) and all(g.abs().sum() > 0 for g in ref_grads.values())
        assert torch.equal(logits, ref_logits)
        assert all(torch.equal(grads[n], ref_grads[n]) for n in ref_grads)


def test_text_checkpoint_config_key_reaches_the_model(tmp_path):
    from tests.helpers.trainer_fixtures import tiny_eurosat_env
    import train
    from dassl.engine import build_trainer
    import os

    env = tiny_eurosat_env(tmp_path)
    ds = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "datasets",
                      "eurosat.yaml")
    base = ["--root", env["data"], "--trainer", "CoCoOp", "--dataset-config-file", ds, "--config-file", env["cfg"],
            "--output-dir", str(tmp_path / "out"), "TRAINER.COCOOP.N_CTX", "4"]
    for opts, expected in (([], False), (["MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT", "True"], True),
                           (["TRAINER.COCOOP.TEXT_CHECKPOINT", "True"], True)):
        trainer = build_trainer(train.setup_cfg(train.parse_args(base + opts)))
        assert trainer.model.clip.transformer.grad_checkpointing is expected
        assert trainer.model.clip.visual.transformer.grad_checkpointing is False
