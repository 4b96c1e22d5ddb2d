"""Learner layouts vs hand-built prompts, CSC, with_context batching, PromptedCLIP caching, corruption."""
from __future__ import annotations

import pytest
import torch

from clip import clip
from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_clip
from trainers.corruption import corrupt_context
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity

NAMES = ["red_cat", "dog"]


@pytest.fixture(scope="module")
def clip_model():
    return tiny_clip()


@pytest.mark.parametrize(
    "position,sentences",
    [
        ("end", ["a photo of a red cat.", "a photo of a dog."]),
        ("middle", ["a photo red cat of a.", "a photo dog of a."]),
        ("front", ["red cat a photo of a.", "dog a photo of a."]),
    ],
)
@pytest.mark.parametrize("csc", [False, True])
def test_prompt_layout_matches_tokenized_sentence(clip_model, position, sentences, csc):
    learner = CoOpPromptLearner(NAMES, clip_model, ctx_init="a photo of a", csc=csc, class_token_position=position)
    assert learner.ctx.shape == ((2, 4, 64) if csc else (4, 64))
    out = learner()
    ref = clip_model.token_embedding(clip.tokenize(sentences))
    torch.testing.assert_close(out.prompts, ref, rtol=0, atol=0)
    # EOT position (argmax of ids) is where the hand-built sentence has it
    assert torch.equal(out.tokenized_prompts.argmax(-1), clip.tokenize(sentences).argmax(-1))
    assert set(learner.state_dict()) == {"ctx"}


def test_random_init_and_validation(clip_model):
    torch.manual_seed(0)
    learner = CoOpPromptLearner(NAMES, clip_model, n_ctx=3, csc=True)
    assert learner.ctx.shape == (2, 3, 64)
    assert 0.005 < learner.ctx.std().item() < 0.05
    with pytest.raises(ConfigError):
        CoOpPromptLearner(NAMES, clip_model, class_token_position="side")


@pytest.mark.parametrize("csc", [False, True])
@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_with_context_stack_equals_single_calls(clip_model, csc, position):
    learner = CoOpPromptLearner(NAMES, clip_model, n_ctx=4, csc=csc, class_token_position=position)
    ctxs = torch.stack([learner.ctx.detach() * s for s in (1.0, 0.5, 2.0)])
    stacked = learner.with_context(ctxs)
    assert stacked.prompts.shape == (3 * 2, 77, 64)
    for k in range(3):
        single = learner.with_context(ctxs[k]).prompts
        torch.testing.assert_close(stacked.prompts[2 * k : 2 * k + 2], single, rtol=0, atol=0)
    torch.testing.assert_close(learner.with_context(learner.ctx).prompts, learner().prompts)


def test_text_feature_cache_identical_and_invalidated(clip_model):
    torch.manual_seed(0)
    learner = CoOpPromptLearner(NAMES, clip_model, n_ctx=4)
    model = PromptedCLIP(clip_model, learner, Similarity(clip_model, NAMES)).eval()
    images = torch.randn(3, 3, 32, 32)
    calls = []
    orig = clip_model.encode_prompts
    clip_model.encode_prompts = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        with torch.no_grad():
            first = model(images).logits
            second = model(images).logits
            assert len(calls) == 1  # cached
            recomputed = model.head(model.encode_image(images), model.encode_text(learner()))
            assert torch.equal(first, second) and torch.equal(first, recomputed)
            original = learner.ctx.detach().clone()
            learner.ctx.add_(1.0)  # an optimiser step: the trainer invalidates explicitly after it
            bumped = learner.ctx.detach().clone()
            model.invalidate_cache()
            third = model(images).logits
            assert len(calls) == 3 and not torch.equal(first, third)
            learner.load_state_dict({"ctx": original})  # loading invalidates (post hook)
            assert torch.equal(model(images).logits, first) and len(calls) == 4
            with model.context_override(bumped):  # e.g. a corrupted context
                assert torch.equal(model(images).logits, third) and len(calls) == 5
            assert torch.equal(model(images).logits, first) and len(calls) == 6
        model.train()
        model(images)  # training: never cached, gradients flow to ctx
        assert len(calls) == 7
        assert not clip_model.training  # frozen CLIP stays in eval mode
    finally:
        clip_model.encode_prompts = orig


def test_corruption_types_and_errors():
    ctx = torch.arange(12, dtype=torch.float32).view(3, 4)  # M=3, D=4
    torch.testing.assert_close(corrupt_context(ctx, "original", 0, 0.0), ctx)
    s = corrupt_context(ctx, "scale", 1, 0.001)
    torch.testing.assert_close(s[1], ctx[1] * 0.001)
    torch.testing.assert_close(s[[0, 2]], ctx[[0, 2]])
    r = corrupt_context(ctx, "replace", 2, 0.0)
    assert r[2].abs().sum() == 0 and r.shape == ctx.shape
    r1, r2 = corrupt_context(ctx, "replace", 0, 2.0, seed=3), corrupt_context(ctx, "replace", 0, 2.0, seed=3)
    assert torch.equal(r1, r2) and r1[0].shape == (4,) and r1[0].std() > 0.5  # real width, N(0, F^2)
    csc = torch.ones(2, 3, 5)  # [C, M, D]: position axis -2
    c = corrupt_context(csc, "scale", 2, 0.0)
    assert c[:, 2].abs().sum() == 0 and c[:, :2].eq(1).all()
    for bad in (3, -1):
        with pytest.raises(ConfigError, match="CORRUPT.POSITION"):
            corrupt_context(ctx, "scale", bad, 0.1)
    with pytest.raises(ConfigError):
        corrupt_context(ctx, "blur", 0, 0.1)


def test_evaluate_context_is_the_corrupted_single_path_and_leaves_the_context(clip_model):
    from dassl.evaluation import build_evaluator
    from trainers.coop_crt import evaluate_context

    torch.manual_seed(0)
    learner = CoOpPromptLearner(NAMES, clip_model, n_ctx=4)
    model = PromptedCLIP(clip_model, learner, Similarity(clip_model, NAMES)).eval()
    images, labels = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 0, 1, 1, 0])
    with torch.no_grad():
        feats = [model.encode_image(images[:3]), model.encode_image(images[3:])]
    original = learner.ctx.detach().clone()
    corrupted = corrupt_context(original, "scale", 1, 0.001)
    from dassl.config import get_cfg_default

    evaluator = build_evaluator(get_cfg_default(), lab2cname={0: NAMES[0], 1: NAMES[1]})
    results, text = evaluate_context(model, evaluator, corrupted, feats, [labels[:3], labels[3:]])
    assert torch.equal(learner.ctx, original)  # the corruption never reaches the learner's own context
    with torch.no_grad():
        learner.ctx.copy_(corrupted)
        expected = model.encode_text(learner())
        learner.ctx.copy_(original)
    assert torch.equal(text, expected)
    logits = torch.cat([model.head(f, expected) for f in feats])
    assert results["accuracy"] == pytest.approx(100.0 * float((logits.argmax(-1) == labels).float().mean()))
