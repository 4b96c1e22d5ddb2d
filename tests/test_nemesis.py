"""Nemesis math against hand computation, PAN selection, omega, NP/BETA validation."""
from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from dassl.utils.errors import ConfigError
from trainers.modules.heads import Similarity
from trainers.modules.prompt_learners.base import PromptOutput
from trainers.modules.regularisers.nemesis import (
    Nemesis,
    check_beta,
    logistic_omega,
    matrix_norm,
    parse_np,
    position_norms,
    weighted_norm,
)

CTX = [[3.0, -4.0], [1.0, 2.0], [-2.0, 0.5]]  # M=3, D=2
HAND_NORMS = {
    "two": [5.0, math.sqrt(5.0), math.sqrt(4.25)],
    "one": [7.0, 3.0, 2.5],
    "inf": [4.0, 2.0, 2.0],
}


def hand_grad(norm_type, row, weight):
    x = torch.tensor(row)
    if norm_type == "two":
        return weight * x / x.norm()
    if norm_type == "one":
        return weight * torch.sign(x)
    g = torch.zeros_like(x)
    j = int(x.abs().argmax())
    g[j] = weight * torch.sign(x[j])
    return g


@pytest.mark.parametrize("norm_type", ["one", "two", "inf"])
@pytest.mark.parametrize("alpha", [[2.0, 2.0, 2.0], [0.0, 5.0, 0.0], [3.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
def test_weighted_norm_value_and_grad(norm_type, alpha):
    ctx = torch.tensor(CTX, requires_grad=True)
    loss = weighted_norm(position_norms(ctx, norm_type), torch.tensor(alpha))
    active = max(1, sum(a != 0 for a in alpha))
    expected = sum(a * n for a, n in zip(alpha, HAND_NORMS[norm_type])) / active
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    for j, row in enumerate(CTX):
        torch.testing.assert_close(ctx.grad[j], hand_grad(norm_type, row, alpha[j] / active))


def test_csc_norms_summed_over_classes():
    ctx = torch.tensor([CTX, [[1.0, 0.0], [0.0, 0.0], [0.0, 3.0]]])  # [C=2, M=3, D=2]
    norms = position_norms(ctx, "two")
    assert norms.shape == (2, 3)
    loss = weighted_norm(norms, torch.tensor([1.0, 0.0, 1.0]))
    expected = (5.0 + math.sqrt(4.25) + 1.0 + 3.0) / 2  # summed over classes, divided by active positions only
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_matrix_norms():
    ctx = torch.tensor(CTX)
    assert matrix_norm(ctx, "two").item() == pytest.approx(math.sqrt(9 + 16 + 1 + 4 + 4 + 0.25), rel=1e-6)
    assert matrix_norm(ctx, "one").item() == pytest.approx(max(3 + 1 + 2, 4 + 2 + 0.5))  # max column abs sum
    assert matrix_norm(ctx, "inf").item() == pytest.approx(7.0)  # max row abs sum
    two = torch.stack([ctx, 2 * ctx])
    assert matrix_norm(two, "two").item() == pytest.approx(1.5 * matrix_norm(ctx, "two").item(), rel=1e-6)


def test_omega_values():
    assert logistic_omega(100, 200) == pytest.approx(0.5)
    assert logistic_omega(199, 200) == pytest.approx(2.5e-9, rel=0.05)
    assert logistic_omega(0, 50) == pytest.approx(0.993, abs=1e-3)
    assert logistic_omega(99, 100) == pytest.approx(5.5e-5, rel=0.05)


def test_np_and_beta_validation():
    assert parse_np(3, 16) == (3, False)
    assert parse_np("random4", 16) == (4, True)
    assert parse_np("2", 16) == (2, False)
    for bad in (0, 17, "random0", "rand2", 1.5, None, True):
        with pytest.raises(ConfigError):
            parse_np(bad, 16)
    for ok in (0, 1, 0.5, 1.0, 0.0):
        assert check_beta(ok) == float(ok)
    for bad in (-0.1, 1.5, "x", None, True):
        with pytest.raises(ConfigError):
            check_beta(bad)
    with pytest.raises(ConfigError):
        Nemesis(a=1.0, beta=1.0, norm_type="three")
    with pytest.raises(ConfigError):
        Nemesis(a=None, beta=1.0)


# -- PAN on a constructed model ----------------------------------------------------------------------
class ToyLearner(nn.Module):
    """C = M = 2, features = prompts: t_0 = ctx[0], t_1 = b + ctx[1] (b = [0, 1]).

    Scaling position 0 keeps t_0's direction (cannot change a prediction); scaling position 1 turns t_1."""

    def __init__(self, ctx):
        super().__init__()
        self.ctx = nn.Parameter(torch.tensor(ctx))
        self.calls = 0

    def context_vectors(self):
        return self.ctx

    def with_context(self, ctx, image_features=None):
        self.calls += 1
        stack = ctx if ctx.dim() == 3 else ctx.unsqueeze(0)
        b = torch.tensor([0.0, 1.0])
        feats = torch.stack([stack[:, 0], b + stack[:, 1]], dim=1)  # [K, C, D]
        return PromptOutput(prompts=feats.reshape(-1, 2), tokenized_prompts=torch.zeros(0))


class ToyModel(nn.Module):
    def __init__(self, ctx):
        super().__init__()
        self.learner = ToyLearner(ctx)
        self.head = Similarity(SimpleNamespace(logit_scale=torch.tensor(0.0)), ["a", "b"])

    def encode_text(self, out):
        return out.prompts


def run_pan(ctx, image_features, labels, n_pos=2, beta=0.0, a=3.0, pan_scale=None):
    model = ToyModel(ctx)
    reg = Nemesis(a=a, beta=beta, n_pos=n_pos, cw=0.1, pan_scale=pan_scale)
    reg.setup(model, ["a", "b"])
    reg.on_epoch_start(0, 1)
    random.seed(0)
    out = SimpleNamespace(image_features=image_features)
    terms = reg(model, out, {"label": labels})
    return reg, model, terms


def test_pan_downscaling_that_fixes_a_prediction_gets_alpha():
    # image [1, 0], label 0: t_0 = [1, .6] (cos .857) < t_1 = [2, 1] (cos .894) -> wrong; x0.1 on position 1
    # gives t_1 = [.2, 1] -> correct. Batch of size 1 (explicit axes).
    reg, model, terms = run_pan([[1.0, 0.6], [2.0, 0.0]], torch.tensor([[1.0, 0.0]]), torch.tensor([0]), pan_scale=50.0)
    assert reg.alpha.tolist() == [0.0, 50.0]
    assert model.learner.calls == 1  # all (NP+1)*C prompts in one call
    omega = logistic_omega(0, 1)
    assert terms["norm_loss"].item() == pytest.approx(omega * 50.0 * 2.0, rel=1e-5)  # |ctx[1]| = 2
    assert reg.log_values()["alpha_1"] == 50.0 and reg.log_values()["alpha_0"] == 0.0


def test_pan_no_improvement_gives_zero_alpha_and_zero_loss():
    # already correct: t_0 = [1, 0] (cos 1) beats t_1; down-scaling cannot strictly increase hits
    reg, model, terms = run_pan([[1.0, 0.0], [2.0, 0.0]], torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert reg.alpha.tolist() == [0.0, 0.0]
    assert terms["norm_loss"].item() == 0.0


def test_pan_random_mode_skips_preinference_and_mix():
    reg, model, terms = run_pan([[1.0, 0.0], [2.0, 0.0]], torch.tensor([[1.0, 0.0]]), torch.tensor([0]),
                                n_pos="random1", beta=0.25)
    assert model.learner.calls == 0
    random.seed(0)
    j = random.sample(range(2), 1)[0]
    assert reg.alpha.tolist() == [3.0 if i == j else 0.0 for i in range(2)]
    norms = [1.0, 2.0]
    omega = logistic_omega(0, 1)
    expected = omega * (0.25 * 3.0 * (1.0 + 2.0) / 2 + 0.75 * 3.0 * norms[j])
    assert terms["norm_loss"].item() == pytest.approx(expected, rel=1e-5)


def test_pun_only_and_constant_omega():
    model = ToyModel([[3.0, -4.0], [1.0, 2.0]])
    reg = Nemesis(a=2.0, beta=1.0, norm_type="one", omega="constant")
    reg.setup(model, ["a", "b"])
    reg.on_epoch_start(5, 10)
    terms = reg(model, SimpleNamespace(image_features=None), {"label": None})
    assert terms["norm_loss"].item() == pytest.approx(2.0 * (7.0 + 3.0) / 2)
    assert model.learner.calls == 0
    assert reg.log_values()["nemesis_v0_norm"] == pytest.approx(7.0)
