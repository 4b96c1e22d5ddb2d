"""The text tower from recorded states (``encode_prompts_from``): prompts that change from one token on are encoded
from that token only, with the same features as a full ``encode_prompts`` call; where it does not apply it says so
(None) instead of guessing, and the model records states only where a corrupted re-encoding can use them."""
from __future__ import annotations

import pytest
import torch

from clip.model import build_clip_from_config
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity

NAMES = [f"class {i}" for i in range(20)]


def _clip(**settings):
    torch.manual_seed(0)
    model = build_clip_from_config(transformer_width=128, transformer_heads=4, transformer_layers=3, **settings)
    with torch.no_grad():
        for name, p in model.transformer.named_parameters():
            if name.endswith("gamma"):  # LayerScale's 1e-5 init would hide what the branches do
                p.uniform_(0.5, 1.5)
    return model


def _learner(clip_model, n_ctx=6):
    torch.manual_seed(1)
    return CoOpPromptLearner(NAMES, clip_model, n_ctx=n_ctx)


def _record(clip_model, learner):
    out = learner(None)
    record: list = []
    with torch.no_grad():
        feats = clip_model.encode_prompts(out.prompts, out.tokenized_prompts, record=record)
    assert len(record) == 1
    return out, feats, record[0]


@pytest.mark.parametrize("settings", [{}, {"act": "gelu", "text_layer_scale": True}])
def test_each_corrupted_position_matches_a_full_call(settings):
    clip_model = _clip(**settings)
    learner = _learner(clip_model)
    out, feats, states = _record(clip_model, learner)
    assert len(states.qkv) == 3 and states.qkv[0][0].shape[:2] == (20, 4)
    ctx = learner.ctx.detach()
    for j in range(ctx.shape[0]):
        corrupted = ctx.clone()
        corrupted[j] *= 0.5
        o = learner.with_context(corrupted)
        assert clip_model.suffix_start(states, o.prompts, o.tokenized_prompts) == 1 + j  # after SOS
        with torch.no_grad():
            full = clip_model.encode_prompts(o.prompts, o.tokenized_prompts)
            fast = clip_model.encode_prompts_from(states, o.prompts, o.tokenized_prompts)
        assert fast.shape == full.shape == feats.shape
        assert (fast - full).abs().max() <= 1e-5 * full.abs().max()
        assert (full - feats).abs().max() > 1e-3  # the corruption changed the features (the test has teeth)


def test_prompts_it_cannot_shortcut_give_none():
    clip_model = _clip()
    learner = _learner(clip_model)
    out, _, states = _record(clip_model, learner)
    prompts, tokens = out.prompts, out.tokenized_prompts
    assert clip_model.encode_prompts_from(states, prompts, tokens) is None  # nothing differs
    sos = prompts.clone()
    sos[:, 0] += 1.0
    assert clip_model.encode_prompts_from(states, sos, tokens) is None  # nothing before the change to reuse
    changed = prompts.clone()
    changed[:, 2] += 1.0
    assert clip_model.encode_prompts_from(states, changed, tokens) is not None  # the case it is for
    other_tokens = tokens.clone()
    other_tokens[0, -1] += 1
    assert clip_model.encode_prompts_from(states, changed, other_tokens) is None  # other token ids
    assert clip_model.encode_prompts_from(states, prompts[:5], tokens[:5]) is None  # other number of prompts
    late = prompts.clone()
    late[:, int(states.eot.min()) + 1] += 1.0  # a change after some prompt's end of text
    assert clip_model.encode_prompts_from(states, late, tokens) is None


def test_recording_refuses_deep_prompts():
    clip_model = _clip()
    out = _learner(clip_model)(None)
    with pytest.raises(ValueError, match="deep prompts"):
        clip_model.encode_prompts(out.prompts, out.tokenized_prompts, deep_prompts=[torch.zeros(2, 128)], record=[])


def test_the_model_records_only_a_training_forward_with_gradients():
    clip_model = _clip()
    learner = _learner(clip_model)
    model = PromptedCLIP(clip_model, learner, Similarity(clip_model, NAMES)).train()
    images = torch.randn(2, 3, 32, 32)
    model(images)
    assert model.pop_text_states() is None  # nobody asked for the states
    model.record_text_states = True
    out = model(images)
    states = model.pop_text_states()
    assert states is not None and model.pop_text_states() is None  # taken once
    # views of what the text tower computed for this step's prompts (no copies)
    assert torch.equal(states.prompts, learner(None).prompts[:, : states.prompts.shape[1]].detach())
    assert out.text_features.requires_grad
    with torch.no_grad():
        model(images)
    assert model.pop_text_states() is None
    model.eval()
    model(images)
    assert model.pop_text_states() is None
    model.train()
    model.clip.transformer.grad_checkpointing = True
    model(images)
    assert model.pop_text_states() is None
