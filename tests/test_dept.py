"""DePT head: fusion arithmetic, the 2B CAT training set and loss weights, gradients, label-space rule, row masks,
extra-state round trip."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tests.helpers.trainer_fixtures import tiny_clip
from trainers.modules import CoCoOpPromptLearner, CoOpPromptLearner, DePT, PromptedCLIP
from trainers.modules.heads import match_rows
from trainers.modules.prompted_clip import ModelOutput

NAMES = ["a", "b", "c"]


@pytest.fixture(scope="module")
def clip_model():
    return tiny_clip()


def head_with_known_weights(clip_model, weight=0.7, fusion=True):
    torch.manual_seed(0)
    head = DePT(clip_model, NAMES, weight=weight, fusion=fusion, label_space="x")
    with torch.no_grad():
        head.film_lp_img.gamma.uniform_(0.5, 1.5)
        head.film_lp_img.beta.normal_()
        head.film_lp_text.gamma.uniform_(0.5, 1.5)
        head.film_lp_text.beta.normal_()
    return head


def test_fusion_arithmetic(clip_model):
    head = head_with_known_weights(clip_model).eval()
    v, t = torch.randn(4, 64), torch.randn(3, 64)
    tau = clip_model.logit_scale.exp()
    s = tau * F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).t()
    g, b = head.film_lp_img.gamma, head.film_lp_img.beta
    z = (v * g + b) @ head.linear_probe_proj.weight.t() + head.linear_probe_proj.bias
    torch.testing.assert_close(head(v, t), 0.3 * s + 0.7 * z)  # raw logits, no softmax
    head.fusion = False
    torch.testing.assert_close(head(v, t), z)
    head.train()
    torch.testing.assert_close(head(v, t), s)  # training forward = ITM logits
    head.eval()
    head.eval_classnames = ["d", "e", "f"]
    head.update_branch()
    torch.testing.assert_close(head(v, t), s)  # new classes -> ITM only


@pytest.mark.parametrize("conditioned", [False, True])
def test_cat_training_set_and_loss_weights(clip_model, conditioned):
    head = head_with_known_weights(clip_model, weight=0.6)
    v = torch.randn(2, 64)
    t = torch.randn(2, 3, 64) if conditioned else torch.randn(3, 64)
    y = torch.tensor([2, 0])
    out = ModelOutput(logits=torch.zeros(2, 3), image_features=v, text_features=t)
    feats, y2 = head.cat_training_set(out, y)
    t_y = torch.stack([t[0, 2], t[1, 0]]) if conditioned else t[y]
    expected = torch.cat([t_y * head.film_lp_text.gamma + head.film_lp_text.beta,
                          v * head.film_lp_img.gamma + head.film_lp_img.beta])  # texts first, then images
    torch.testing.assert_close(feats, expected)
    assert y2.tolist() == [2, 0, 2, 0]
    terms = head.loss(out, y)
    s = head.itm(v, t)
    z = head.linear_probe_proj(expected)
    torch.testing.assert_close(terms["itm_loss"], 0.4 * F.cross_entropy(s, y))
    torch.testing.assert_close(terms["cat_loss"], 0.6 * F.cross_entropy(z, y2))


def test_gradients_reach_prompts_head_not_clip(clip_model):
    for learner_cls in (CoOpPromptLearner, CoCoOpPromptLearner):
        cm = tiny_clip()
        learner = learner_cls(NAMES, cm, n_ctx=2)
        model = PromptedCLIP(cm, learner, DePT(cm, NAMES))
        model.requires_grad_(False)
        learner.requires_grad_(True)
        model.head.requires_grad_(True)
        out = model(torch.randn(2, 3, 32, 32))
        sum(model.head.loss(out, torch.tensor([0, 1])).values()).backward()
        grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert {"learner.ctx", "head.linear_probe_proj.weight", "head.film_lp_img.gamma",
                "head.film_lp_text.beta"} <= grads
        assert not any(n.startswith("clip.") for n in grads)
        assert all(p.dtype == torch.float32 for p in model.head.parameters())


def test_match_rows():
    train = ["tench", "crane", "goldfish", "crane", "shark"]
    assert match_rows(train, train) == [0, 1, 2, 3, 4]
    assert match_rows(train, ["goldfish", "crane", "shark"]) == [2, 3, 4]  # duplicate name: in-order walk
    assert match_rows(train, ["crane", "shark"]) == [1, 4]
    assert match_rows(train, ["shark", "tench"]) == [4, 0]  # not in order, unique names
    assert match_rows(train, ["shark", "crane"]) is None  # ambiguous out-of-order duplicate
    assert match_rows(train, ["tench", "whale"]) is None


def test_label_space_rule_and_extra_state(clip_model):
    trained = DePT(clip_model, ["w0", "w1", "w2", "w3"], label_space="imagenet")
    state = trained.state_dict()
    assert state["_extra_state"] == {"classnames": ["w0", "w1", "w2", "w3"], "label_space": "imagenet"}
    # an ImageNet-R-like target: 2 of the 4 training classes, same label space -> rows [1, 3]
    target = DePT(clip_model, ["w1", "w3"], label_space="imagenet")
    target.adapt_to_state_dict(state)
    target.load_state_dict(state, strict=True)
    assert target.use_base_branch and target.row_index.tolist() == [1, 3]
    target.eval()
    v = torch.randn(5, 64)
    z_full = trained.cat_logits(v, trained.film_lp_img)
    s = target.itm(v, torch.randn(2, 64))
    torch.testing.assert_close(target.cat_logits(v, target.film_lp_img, target.row_index), z_full[:, [1, 3]])
    # same classes but another label space (a non-ImageNet dataset sharing names) -> ITM only
    other = DePT(clip_model, ["w1", "w3"], label_space="Caltech101")
    other.adapt_to_state_dict(state)
    other.load_state_dict(state, strict=True)
    assert not other.use_base_branch
    assert s.shape == (5, 2)
