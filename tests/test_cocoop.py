"""CoCoOp learner: meta-net, image-conditioned prompts, batched vs per-image text passes, gradients, Nemesis PAN."""
from __future__ import annotations

import pytest
import torch

from clip import clip
from tests.helpers.trainer_fixtures import tiny_clip
from trainers.modules import CoCoOpPromptLearner, Nemesis, PromptedCLIP, Similarity

NAMES = ["red_cat", "dog", "tree"]


@pytest.fixture(scope="module")
def clip_model():
    return tiny_clip()


def make(clip_model, chunk=0, **kw):
    torch.manual_seed(0)
    learner = CoCoOpPromptLearner(NAMES, clip_model, **kw)
    return PromptedCLIP(clip_model, learner, Similarity(clip_model, NAMES), text_chunk=chunk)


def test_shapes_and_conditioning(clip_model):
    model = make(clip_model, ctx_init="a photo of a")
    learner = model.learner
    assert learner.ctx.shape == (4, 64) and learner.image_conditioned
    mn = learner.meta_net
    assert (mn.linear1.in_features, mn.linear1.out_features, mn.linear2.out_features) == (64, 4, 64)
    feats = torch.randn(2, 64)
    out = learner(feats)
    assert out.prompts.shape == (2, 3, 77, 64) and out.tokenized_prompts.shape == (3, 77)
    # image i's prompts = CoOp prompts of ctx + pi(v_i / |v_i|), the same bias on every context token
    v = feats / feats.norm(dim=-1, keepdim=True)
    bias = mn.linear2(torch.relu(mn.linear1(v)))
    for i in range(2):
        expected = learner.assemble(learner.ctx + bias[i])
        torch.testing.assert_close(out.prompts[i], expected)
    # with no bias the prompts are the hand-written sentences
    ref = clip_model.token_embedding(clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES]))
    torch.testing.assert_close(learner.assemble(learner.ctx), ref, rtol=0, atol=0)
    assert set(learner.state_dict()) == {"ctx", "meta_net.linear1.weight", "meta_net.linear1.bias",
                                         "meta_net.linear2.weight", "meta_net.linear2.bias"}


def test_batched_equals_per_image_text_passes(clip_model):
    batched, per_image = make(clip_model, chunk=0, n_ctx=4), make(clip_model, chunk=1, n_ctx=4)
    per_image.learner.load_state_dict(batched.learner.state_dict())
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        a, b = batched(images), per_image(images)
    assert a.text_features.shape == (3, 3, 64)
    torch.testing.assert_close(a.text_features, b.text_features)
    torch.testing.assert_close(a.logits, b.logits)
    # per image i, the logits equal tau * cos(v_i, t_{i,c}) from a separate text pass of C prompts
    for i in range(3):
        prompts = batched.learner(a.image_features[i : i + 1]).prompts[0]
        t = clip_model.encode_prompts(prompts, batched.learner.tokenized_prompts)
        ref = Similarity(clip_model, NAMES)(a.image_features[i : i + 1], t)
        torch.testing.assert_close(a.logits[i : i + 1], ref)


def test_no_text_cache_across_images_at_eval(clip_model):
    model = make(clip_model, n_ctx=4).eval()
    with torch.no_grad():
        t1 = model(torch.randn(2, 3, 32, 32)).text_features
        t2 = model(torch.randn(2, 3, 32, 32)).text_features
    assert not torch.allclose(t1, t2)


def test_gradients_only_on_ctx_and_meta_net(clip_model):
    model = make(clip_model, n_ctx=4)
    model.requires_grad_(False)
    model.learner.requires_grad_(True)
    before = {k: v.clone() for k, v in model.clip.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(torch.randn(2, 3, 32, 32))
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 2])).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads == {"learner.ctx", "learner.meta_net.linear1.weight", "learner.meta_net.linear1.bias",
                     "learner.meta_net.linear2.weight", "learner.meta_net.linear2.bias"}
    opt.step()
    for k, v in model.clip.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_nemesis_pan_uses_image_conditioned_prompts(clip_model):
    model = make(clip_model, n_ctx=4)
    feats = torch.randn(2, 64)
    stack = torch.stack([model.learner.ctx.detach(), model.learner.ctx.detach() * 0.5])
    out = model.learner.with_context(stack, image_features=feats)
    assert out.prompts.shape == (2 * 2, 3, 77, 64)
    torch.testing.assert_close(out.prompts[:2], model.learner(feats).prompts)  # k=0: the uncorrupted prompts
    bias = model.learner.bias(feats)
    torch.testing.assert_close(out.prompts[3], model.learner.assemble(stack[1] + bias[1]))  # corrupt, then bias
    nem = Nemesis(a=1.0, beta=0.0, n_pos=4, cw=0.0)
    nem.setup(model, NAMES)
    labels = torch.tensor([0, 1])
    alpha = nem.select_alpha(model, feats, labels)
    # hand check: a position gets alpha iff zeroing it increases the per-image-prompt hits
    with torch.no_grad():
        def hits(ctx):
            t = model.encode_text(model.learner.with_context(ctx, image_features=feats))  # [B, C, D]
            return int((model.head(feats, t).argmax(-1) == labels).sum())

        base = hits(model.learner.ctx)
        for j in range(4):
            c = model.learner.ctx.detach().clone()
            c[j] = 0
            assert (alpha[j] > 0) == (hits(c) > base)
