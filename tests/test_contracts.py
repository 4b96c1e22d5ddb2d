"""Contract tests over the component registries: every registered learner x head x (no | each) regulariser.

A newly registered component gets these tests without editing this file: it builds from its options'
``example()`` (= the defaults unless a field is required) on a tiny CLIP, gives logits ``[B, C]`` in train and
eval mode, puts gradients on exactly the trainable parameters, round-trips its trainable state strictly, and a
fresh model reloaded from that state gives identical eval logits. A regulariser that needs something a learner
lacks (Nemesis needs a context) must refuse at setup with a ConfigError.
"""
from __future__ import annotations

import itertools

import pytest
import torch
from yacs.config import CfgNode as CN

from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_clip
from trainers.modules import HEAD_REGISTRY, PROMPT_LEARNER_REGISTRY, REGULARISER_REGISTRY, PromptedCLIP

NAMES = ["forest", "river", "sea lake"]
CFG = CN({"DATASET": CN({"NAME": "EuroSAT"})})  # what constructor_kwargs may read (per-dataset templates)
COMBOS = list(itertools.product(PROMPT_LEARNER_REGISTRY, HEAD_REGISTRY, [None, *REGULARISER_REGISTRY]))


def build(registry, name, *args):
    opts = registry.options_class(name).example()
    return registry.get(name)(*args, **opts.constructor_kwargs(CFG))


def make(learner_name, head_name, reg_name, seed):
    torch.manual_seed(seed)
    clip_model = tiny_clip(0)
    learner = build(PROMPT_LEARNER_REGISTRY, learner_name, NAMES, clip_model)
    head = build(HEAD_REGISTRY, head_name, clip_model, NAMES)
    model = PromptedCLIP(clip_model, learner, head)
    model.requires_grad_(False)
    learner.requires_grad_(True)
    head.requires_grad_(True)
    regs = []
    if reg_name is not None:
        reg = build(REGULARISER_REGISTRY, reg_name)
        reg.setup(model, NAMES)
        regs.append(reg)
    return model, regs


def trainable_state(model):
    return {"learner": model.learner.state_dict(), "head": model.head.state_dict()}


@pytest.mark.parametrize("learner_name,head_name,reg_name", COMBOS, ids=[f"{a}-{b}-{c}" for a, b, c in COMBOS])
def test_component_contract(learner_name, head_name, reg_name):
    try:
        model, regs = make(learner_name, head_name, reg_name, seed=1)
    except ConfigError as e:  # an incompatible pair refuses clearly (and only at setup)
        assert reg_name is not None and "context" in str(e)
        return
    torch.manual_seed(2)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 1])

    model.train()
    out = model(images)
    assert out.logits.shape == (4, len(NAMES))
    terms = dict(model.head.loss(out, labels))
    for reg in regs:
        reg.on_epoch_start(0, 2)
        terms.update(reg(model, out, {"img": images, "label": labels}))
    loss = sum(terms.values())
    assert torch.isfinite(loss)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if trainable:
        loss.backward()
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert with_grad == trainable  # every trainable tensor learns, nothing frozen gets a gradient
        with torch.no_grad():  # a step, so the reload below is not of the initial values
            for p in model.parameters():
                if p.grad is not None:
                    p.add_(p.grad, alpha=-0.1)
        model.invalidate_cache()
    else:
        assert not loss.requires_grad

    # the state dict holds exactly the trainable tensors (+ plain extra state) and round-trips strictly
    state = trainable_state(model)
    tensor_keys = {f"learner.{k}" for k, v in state["learner"].items() if torch.is_tensor(v)}
    tensor_keys |= {f"head.{k}" for k, v in state["head"].items() if torch.is_tensor(v)}
    assert tensor_keys == trainable
    model.eval()
    with torch.no_grad():
        expected = model(images).logits
        assert expected.shape == (4, len(NAMES))
        fresh, _ = make(learner_name, head_name, reg_name, seed=3)
        fresh.learner.load_state_dict(state["learner"], strict=True)
        fresh.head.load_state_dict(state["head"], strict=True)
        fresh.eval()
        assert torch.equal(fresh(images).logits, expected)  # eval-only reload: identical logits


def test_every_registered_component_is_covered():
    assert {c[0] for c in COMBOS} == set(PROMPT_LEARNER_REGISTRY)
    assert {c[1] for c in COMBOS} == set(HEAD_REGISTRY)
    assert {c[2] for c in COMBOS} - {None} == set(REGULARISER_REGISTRY)
