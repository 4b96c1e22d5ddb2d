"""MaPLe learner: initialisation (the reference keeps "of a" fixed with n=2; deeper projections are copies of one
layer), dims from the model, deep-prompt depth semantics, dtypes, ResNet error."""
from __future__ import annotations

import pytest
import torch

from clip import clip
from clip.model import build_clip_from_config
from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_clip
from trainers.modules import MaPLePromptLearner, PromptedCLIP, Similarity

NAMES = ["red_cat", "dog"]


def three_layer_clip(vision_width=48):
    torch.manual_seed(0)
    return build_clip_from_config(vision_width=vision_width, vision_layers=3, transformer_layers=3)


def test_init_keeps_the_phrase_and_copies_projections():
    cm = three_layer_clip()
    torch.manual_seed(1)
    learner = MaPLePromptLearner(NAMES, cm, n_ctx=2, ctx_init="a photo of a", prompt_depth=3)
    emb = cm.token_embedding(clip.tokenize(["a photo of a red cat.", "a photo of a dog."]))
    torch.testing.assert_close(learner.ctx, emb[0, 1:3], rtol=0, atol=0)  # "a photo" learnable
    torch.testing.assert_close(learner().prompts, emb, rtol=0, atol=0)  # "of a" stays as fixed tokens
    assert learner.proj.in_features == 64 and learner.proj.out_features == 48  # Dt -> Dv from the model
    assert len(learner.compound_prompts_text) == 2 and learner.compound_prompts_text[0].shape == (2, 64)
    p0, p1 = learner.compound_prompt_projections
    assert torch.equal(p0.weight, p1.weight) and p0.weight is not p1.weight  # deep copies of ONE layer
    assert not torch.equal(learner.proj.weight[:, :48], p0.weight[:, :48])
    random = MaPLePromptLearner(NAMES, cm, n_ctx=6, ctx_init="a photo of a", prompt_depth=1)  # n > 4: random
    assert random.ctx.shape == (6, 64) and len(random.compound_prompts_text) == 0
    ref = cm.token_embedding(clip.tokenize(["X X X X X X dog."]))
    prompts = random().prompts[1]
    torch.testing.assert_close(prompts[1:7], random.ctx)  # the 6 random context tokens
    torch.testing.assert_close(prompts[7:], ref[0, 7:], rtol=0, atol=0)  # "dog . EOS" (no init words)


def encode(model, out):
    img = model.clip.encode_image(torch.ones(1, 3, 32, 32) * 0.1, prompts=out.visual_prompts,
                                  deep_prompts=out.deep_visual_prompts)
    txt = model.clip.encode_prompts(out.prompts, out.tokenized_prompts, deep_prompts=out.deep_text_prompts)
    return img, txt


def test_depth_semantics():
    cm = three_layer_clip()
    torch.manual_seed(0)
    learner = MaPLePromptLearner(NAMES, cm, prompt_depth=5)  # 4 deep prompts, but only blocks 1, 2 exist
    model = PromptedCLIP(cm, learner, Similarity(cm, NAMES))
    with torch.no_grad():
        img0, txt0 = encode(model, learner())
        for j, used in [(0, True), (1, True), (2, False), (3, False)]:
            saved = learner.compound_prompts_text[j].clone()
            learner.compound_prompts_text[j].add_(1.0)  # moves both the text prompt and V_j = proj_j(P_j)
            img, txt = encode(model, learner())
            assert (not torch.equal(img, img0)) == used and (not torch.equal(txt, txt0)) == used, j
            learner.compound_prompts_text[j].copy_(saved)
        # a depth-2 learner only prompts block 1: its block-2 input carries the block-1 output through
        shallow = MaPLePromptLearner(NAMES, cm, prompt_depth=2)
        out = shallow()
        assert len(out.deep_text_prompts) == 1 and len(out.deep_visual_prompts) == 1
        img_a, txt_a = encode(model, out)
        img_b = cm.encode_image(torch.ones(1, 3, 32, 32) * 0.1, prompts=out.visual_prompts,
                                deep_prompts=[out.deep_visual_prompts[0], None])
        torch.testing.assert_close(img_a, img_b)
        shallow.ctx.add_(1.0)  # the first-layer ctx changes both towers (proj_0 coupling)
        img_c, txt_c = encode(model, shallow())
        assert not torch.allclose(img_c, img_a) and not torch.allclose(txt_c, txt_a)


def test_gradients_and_frozen_clip():
    cm = three_layer_clip()
    learner = MaPLePromptLearner(NAMES, cm, prompt_depth=3)
    model = PromptedCLIP(cm, learner, Similarity(cm, NAMES))
    model.requires_grad_(False)
    learner.requires_grad_(True)
    before = {k: v.clone() for k, v in cm.state_dict().items()}
    out = model(torch.randn(2, 3, 32, 32))
    assert out.logits.shape == (2, 2)
    torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 1])).backward()
    got = {n for n, p in learner.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert got == {n for n, _ in learner.named_parameters()}  # ctx, proj, P_j, proj_j all receive gradient
    torch.optim.SGD(learner.parameters(), lr=0.1).step()
    assert all(torch.equal(v, before[k]) for k, v in cm.state_dict().items())
    assert not model.clip.training


def test_dtypes_follow_the_model():
    cm = tiny_clip()
    learner = MaPLePromptLearner(NAMES, cm, prompt_depth=2)
    assert learner.ctx.dtype == learner.proj.weight.dtype == torch.float32
    half = tiny_clip().half()
    hl = MaPLePromptLearner(NAMES, half, prompt_depth=2)
    assert hl.ctx.dtype == hl.proj.weight.dtype == torch.float16  # CLIP dtype (reference)
    assert hl.compound_prompts_text[0].dtype == hl.compound_prompt_projections[0].weight.dtype == torch.float32
    out = hl()
    assert out.visual_prompts.dtype == torch.float16 and out.deep_visual_prompts[0].dtype == torch.float32


def test_resnet_is_a_config_error():
    with pytest.raises(ConfigError, match="ViT"):
        MaPLePromptLearner(NAMES, tiny_clip(resnet=True))
    with pytest.raises(ConfigError, match="PROMPT_DEPTH"):
        MaPLePromptLearner(NAMES, tiny_clip(), prompt_depth=0)


def test_with_context_keeps_deep_prompts():
    cm = tiny_clip()
    learner = MaPLePromptLearner(NAMES, cm, prompt_depth=2)
    stack = torch.stack([learner.ctx.detach(), torch.zeros_like(learner.ctx)])
    out = learner.with_context(stack)
    assert out.prompts.shape == (4, 77, 64) and out.visual_prompts is None
    assert out.deep_text_prompts[0] is learner.compound_prompts_text[0]
    torch.testing.assert_close(out.prompts[:2], learner().prompts)
