"""PLOT components: the batched Sinkhorn against hand-computed plans and a plain per-image loop, the OT logits on
ResNet and ViT towers against an independent computation, gradients, the prompt sets' layouts (every class
position, CSC, CTX_INIT), the reference's random-number consumption, the PLOT + Nemesis loss by hand, NaN plans."""
from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch

from tests.helpers.tiny_clip import tiny_clip
from trainers.modules import PromptedCLIP, Similarity
from trainers.modules.factory import freeze_except
from trainers.modules.heads.plot import PLOT, TransportPlanError, sinkhorn, transport_logits
from trainers.modules.prompt_learners.coop import CoOpPromptLearner
from trainers.modules.prompt_learners.plot import PLOTPromptLearner
from trainers.modules.regularisers.nemesis import Nemesis, logistic_omega
from trainers.prompt_trainer import PromptTrainer

NAMES = ["forest", "river bank", "sea lake", "annual crop land"]


def make(resnet=False, n_sets=3, n_ctx=4, csc=False, position="end", ctx_init="", seed=0, head=PLOT):
    clip_model = tiny_clip(0, resnet=resnet)
    torch.manual_seed(seed)
    learner = PLOTPromptLearner(NAMES, clip_model, n_sets=n_sets, n_ctx=n_ctx, ctx_init=ctx_init, csc=csc,
                                class_token_position=position)
    model = PromptedCLIP(clip_model, learner, head(clip_model, NAMES))
    freeze_except(model, [model.learner, model.head])
    return model


def images_for(model, n=3, seed=1):
    r = model.clip.visual.input_resolution
    return torch.randn(n, 3, r, r, generator=torch.Generator().manual_seed(seed))


# -- Sinkhorn ---------------------------------------------------------------------------------------------------------
def test_sinkhorn_symmetric_two_by_two_by_hand():
    s1, s2 = 0.7, 0.2
    sim = torch.tensor([[[[s1, s2], [s2, s1]]]], dtype=torch.float64)  # [B=1, C=1, T=2, N=2]
    k1, k2 = math.exp(-(1 - s1) / 0.1), math.exp(-(1 - s2) / 0.1)
    logits, plan, iters = transport_logits(sim, 100.0)
    # u = (1/2)/(k1+k2) for both tokens, v = 1 after the first iteration; the second changes nothing -> stop
    expected_plan = torch.tensor([[k1, k2], [k2, k1]], dtype=torch.float64) / (2 * (k1 + k2))
    assert iters == 2
    assert torch.allclose(plan[0, 0], expected_plan, rtol=1e-12, atol=0)
    assert logits.item() == pytest.approx(100.0 * (k1 * s1 + k2 * s2) / (k1 + k2), rel=1e-12)


def test_sinkhorn_one_set_is_the_mean_similarity():
    sim = torch.rand(2, 3, 5, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    logits, plan, _ = transport_logits(sim, 50.0)
    assert torch.allclose(plan, torch.full_like(plan, 1 / 5), atol=1e-12)
    assert torch.allclose(logits, 50.0 * sim[..., 0].mean(dim=-1), atol=1e-10)


def test_sinkhorn_converged_plan_has_the_uniform_marginals():
    g = torch.Generator().manual_seed(3)
    sim = torch.rand(4, 7, 3, dtype=torch.float64, generator=g) * 2 - 1
    plan, iters = sinkhorn(torch.exp(-(1 - sim) / 0.1), max_iter=1000, thresh=1e-13)
    assert iters < 1000
    assert torch.allclose(plan.sum(-1), torch.full((4, 7), 1 / 7, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(plan.sum(-2), torch.full((4, 3), 1 / 3, dtype=torch.float64), atol=1e-10)


def plain_sinkhorn(kernels: list[torch.Tensor], max_iter: int, thresh: float) -> tuple[list[torch.Tensor], int]:
    """The reference's Sinkhorn written per problem (one Python iteration per image x class), with its stopping
    rule: the mean |u - u_prev| over ALL problems of the batch."""
    us = [torch.ones(k.shape[0], dtype=k.dtype) for k in kernels]
    vs = [torch.ones(k.shape[1], dtype=k.dtype) for k in kernels]
    it = 0
    for it in range(1, max_iter + 1):
        diffs = []
        for i, k in enumerate(kernels):
            t, n = k.shape
            u = (1.0 / t) / (k @ vs[i])
            vs[i] = (1.0 / n) / (k.t() @ u)
            diffs.append((u - us[i]).abs())
            us[i] = u
        if torch.cat(diffs).mean().item() < thresh:
            break
    return [us[i][:, None] * k * vs[i][None, :] for i, k in enumerate(kernels)], it


@pytest.mark.parametrize("thresh,max_iter", [(0.01, 100), (0.0, 7)])
def test_batched_sinkhorn_equals_a_plain_per_image_loop(thresh, max_iter):
    g = torch.Generator().manual_seed(4)
    sim = torch.rand(3, 4, 6, 3, dtype=torch.float64, generator=g) * 1.6 - 0.8  # [B, C, T, N]
    logits, plan, iters = transport_logits(sim, 10.0, max_iter=max_iter, thresh=thresh)
    kernels = [torch.exp(-(1 - sim[b, c]) / 0.1) for b in range(3) for c in range(4)]
    plans, loop_iters = plain_sinkhorn(kernels, max_iter, thresh)
    assert iters == loop_iters and (thresh == 0.0) == (iters == max_iter)
    for i, p in enumerate(plans):
        b, c = divmod(i, 4)
        assert torch.allclose(plan[b, c], p, rtol=1e-10, atol=1e-14)
        assert logits[b, c].item() == pytest.approx(10.0 * float((p * sim[b, c]).sum()), rel=1e-10)


def test_plan_carries_no_gradient():
    sim = (torch.rand(2, 3, 4, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    logits, plan, _ = transport_logits(sim, 7.0)
    assert not plan.requires_grad
    (grad,) = torch.autograd.grad(logits.sum(), sim)
    assert torch.allclose(grad, 7.0 * plan)  # d(tau * sum P*S)/dS with P constant


def test_nan_plan_is_a_clear_error():
    sim = torch.rand(1, 2, 3, 2)
    sim[0, 1, 0, 0] = float("nan")
    with pytest.raises(TransportPlanError, match="NaN/Inf.*PREC fp32"):
        transport_logits(sim, 1.0)
    with pytest.raises(TransportPlanError):  # underflowing kernel: 0/0
        transport_logits(torch.full((1, 1, 2, 2), -1.0), 1.0, eps=1e-4)


# -- logits of the model ----------------------------------------------------------------------------------------------
def independent_logits(model: PromptedCLIP, images: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
    """PLOT logits without the learner's set layout or the batched head: per set a CoOp learner holding that set's
    context, per image and class a plain Sinkhorn."""
    learner = model.learner
    ctx = learner.ctx if ctx is None else ctx
    with torch.no_grad():
        local = model.clip.encode_image_tokens(images)  # [B, T, D]
        per_set = []
        for n in range(learner.n_sets):
            coop = CoOpPromptLearner(NAMES, model.clip, n_ctx=learner.n_ctx, csc=learner.csc,
                                     class_token_position=learner.class_token_position)
            coop.ctx.data.copy_(ctx[:, n] if learner.csc else ctx[n])
            out = coop()
            per_set.append(model.clip.encode_prompts(out.prompts, out.tokenized_prompts))  # [C, D]
        text = torch.stack(per_set)  # [N, C, D]
    f = local / local.norm(dim=-1, keepdim=True)
    t = text / text.norm(dim=-1, keepdim=True)
    tau = model.head.logit_scale
    kernels, sims = [], []
    for b in range(images.shape[0]):
        for c in range(len(NAMES)):
            s = f[b] @ t[:, c].t()  # [T, N]
            sims.append(s)
            kernels.append(torch.exp(-(1 - s) / 0.1))
    plans, _ = plain_sinkhorn(kernels, 100, 0.01)
    return torch.stack([tau * (p * s).sum() for p, s in zip(plans, sims)]).view(images.shape[0], len(NAMES))


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
@pytest.mark.parametrize("csc", [False, True], ids=["generic", "csc"])
def test_plot_logits_match_an_independent_computation(resnet, csc):
    model = make(resnet=resnet, csc=csc)
    images = images_for(model)
    model.eval()
    with torch.no_grad():
        out = model(images)
    expected = independent_logits(model, images)
    assert out.logits.shape == (3, len(NAMES))
    assert out.image_features.shape[:2] == (3, 17 if not resnet else 5)  # ViT 4x4+1, ResNet 2x2+1 tokens
    assert out.text_features.shape == (3 * len(NAMES), model.clip.text_projection.shape[1])  # [N*C, D]
    assert torch.allclose(out.logits, expected, rtol=1e-5, atol=1e-4)


def test_gradients_reach_every_prompt_set_and_nothing_else():
    model = make(resnet=True)
    model.train()
    out = model(images_for(model))
    model.head.loss(out, torch.tensor([0, 1, 3]))["ce_loss"].backward()
    grad = model.learner.ctx.grad
    assert grad is not None and all(grad[n].abs().sum() > 0 for n in range(3))
    assert {n for n, p in model.named_parameters() if p.grad is not None} == {"learner.ctx"}


def test_other_heads_get_the_mean_over_the_sets():
    model = make(head=Similarity)
    model.eval()
    with torch.no_grad():
        out = model(images_for(model))
        raw = model.clip.encode_prompts(*(lambda o: (o.prompts, o.tokenized_prompts))(model.learner()))
        raw = raw / raw.norm(dim=-1, keepdim=True)
        mean = raw.view(3, len(NAMES), -1).mean(0)
        mean = mean / mean.norm(dim=-1, keepdim=True)
    assert out.image_features.dim() == 2 and torch.allclose(out.text_features, mean, atol=1e-6)


# -- prompt sets ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("position", ["end", "middle", "front"])
@pytest.mark.parametrize("csc", [False, True], ids=["generic", "csc"])
def test_every_set_builds_coop_prompts_at_every_class_position(position, csc):
    model = make(n_ctx=5, csc=csc, position=position)
    learner = model.learner
    out = learner()
    c = len(NAMES)
    assert out.prompts.shape[0] == 3 * c and out.n_sets == 3
    assert torch.equal(out.tokenized_prompts, learner.tokenized_prompts.repeat(3, 1))
    for n in range(3):
        coop = CoOpPromptLearner(NAMES, model.clip, n_ctx=5, csc=csc, class_token_position=position)
        coop.ctx.data.copy_(learner.ctx[:, n] if csc else learner.ctx[n])
        assert torch.equal(out.prompts[n * c : (n + 1) * c], coop().prompts)
    # a stack of K contexts: context-major, then set-major
    stack = torch.stack([learner.ctx.detach(), 2 * learner.ctx.detach()])
    both = learner.with_context(stack)
    assert both.prompts.shape[0] == 2 * 3 * c and both.tokenized_prompts.shape[0] == 2 * 3 * c
    assert torch.equal(both.prompts[: 3 * c], out.prompts)
    assert torch.equal(both.prompts[3 * c :], learner.with_context(2 * learner.ctx.detach()).prompts)
    with pytest.raises(ValueError, match="with_context"):
        learner.with_context(learner.ctx[0])


def test_ctx_init_gives_n_copies_and_draws_nothing():
    clip_model = tiny_clip(0)
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    learner = PLOTPromptLearner(NAMES, clip_model, n_sets=4, ctx_init="a photo of a")
    assert torch.equal(torch.random.get_rng_state(), before)
    coop = CoOpPromptLearner(NAMES, clip_model, ctx_init="a photo of a")
    assert learner.ctx.shape == (4, 4, 64) and all(torch.equal(learner.ctx[n], coop.ctx) for n in range(4))
    assert torch.equal(learner().prompts[: len(NAMES)], coop().prompts)
    csc = PLOTPromptLearner(NAMES, clip_model, n_sets=2, ctx_init="a photo of a", csc=True)
    assert csc.ctx.shape == (len(NAMES), 2, 4, 64)


@pytest.mark.parametrize("csc", [False, True], ids=["generic", "csc"])
def test_random_init_consumes_the_reference_draws(csc):
    clip_model = tiny_clip(0)
    torch.manual_seed(11)
    learner = PLOTPromptLearner(NAMES, clip_model, n_sets=4, n_ctx=6, csc=csc)
    after = torch.random.get_rng_state()
    torch.manual_seed(11)
    shape = (len(NAMES), 4, 6, 64) if csc else (4, 6, 64)
    expected = torch.empty(*shape).normal_(std=0.02)  # one normal_ over (C,) N, M, Dt
    assert torch.equal(learner.ctx.detach(), expected)
    assert torch.equal(torch.random.get_rng_state(), after)


def test_norm_logging_averages_over_the_sets():
    model = make(n_sets=3, n_ctx=4)
    ctx = model.learner.ctx.detach()
    trainer = SimpleNamespace(model=model, regularisers=[])
    trainer.visual_norm_vectors = lambda: PromptTrainer.visual_norm_vectors(trainer)
    logged = PromptTrainer.log_context_norms(trainer)
    frob = torch.stack([ctx[n].norm() for n in range(3)]).mean()
    assert logged["matrix_norm"] == pytest.approx(float(frob), rel=1e-6)
    for j in range(4):
        assert logged[f"v{j}_norm"] == pytest.approx(float(ctx[:, j].norm(dim=-1).mean()), rel=1e-6)


# -- PLOT + Nemesis ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1.0, 0.5, 0.0])
def test_plot_nemesis_loss_by_hand(beta):
    model = make(n_sets=2, n_ctx=3, seed=5)
    images = images_for(model, n=4, seed=2)
    a, cw, epoch, max_epoch = 2.0, 0.0, 1, 4
    ctx = model.learner.ctx.detach().clone()
    corrupted = []
    for j in range(3):
        c = ctx.clone()
        c[:, j] *= cw  # position j of EVERY set
        corrupted.append(c)
    base_pred = independent_logits(model, images).argmax(-1)
    labels = independent_logits(model, images, corrupted[1]).argmax(-1)  # corrupting position 1 helps
    assert not torch.equal(base_pred, labels)
    reg = Nemesis(a=a, beta=beta, n_pos=3, cw=cw)
    reg.setup(model, NAMES)
    reg.on_epoch_start(epoch, max_epoch)
    model.train()
    out = model(images)
    random.seed(9)
    loss = reg(model, out, {"img": images, "label": labels})["norm_loss"]
    # by hand
    random.seed(9)
    positions = random.sample(range(3), 3)
    norms = ctx.norm(dim=-1)  # [N, M]
    hits0 = int((base_pred == labels).sum())
    alpha = torch.zeros(3)
    for j in positions:
        if int((independent_logits(model, images, corrupted[j]).argmax(-1) == labels).sum()) > hits0:
            alpha[j] = a
    assert alpha[1] == a
    pun = (a * norms).sum() / 3  # summed over the sets, divided by the active positions
    pan = (alpha * norms).sum() / max(1, int((alpha != 0).sum()))
    expected = logistic_omega(epoch, max_epoch) * (beta * pun + (1 - beta) * (pan if beta < 1 else 0))
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)
    if beta < 1:
        assert torch.equal(reg.alpha, alpha)
    loss.backward()
    assert model.learner.ctx.grad is not None
