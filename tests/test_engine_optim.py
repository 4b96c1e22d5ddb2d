"""Optimisers and per-epoch LR schedules (Dassl's build_optimizer / build_lr_scheduler semantics)."""
from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
import torch.nn as nn

from dassl.config import get_cfg_default
from dassl.optim import RAdam, build_lr_scheduler, build_optimizer
from dassl.optim.radam import RAdam as RAdam2
from dassl.utils.errors import ConfigError

B = 0.002
E = 10


def _optim_cfg(**kw):
    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = B
    cfg.OPTIM.MAX_EPOCH = E
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    for k, v in kw.items():
        setattr(cfg.OPTIM, k, v)
    return cfg.OPTIM


def _epoch_lrs(optim_cfg, n=E):
    """LR used by each epoch when the scheduler is stepped once after every epoch."""
    p = nn.Parameter(torch.zeros(2))
    opt = build_optimizer([p], optim_cfg)
    sched = build_lr_scheduler(opt, optim_cfg)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return lrs, opt, sched


def _cos(k):
    return B * 0.5 * (1 + math.cos(math.pi * k / E))


def test_constant_warmup_cosine_matches_verified_numbers():
    lrs, _, _ = _epoch_lrs(_optim_cfg(WARMUP_EPOCH=1, WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5))
    verified = [1.0e-5, 2.000e-3, 1.951e-3, 1.809e-3, 1.588e-3, 1.309e-3, 1.000e-3, 6.91e-4, 4.12e-4, 1.91e-4]
    for got, want in zip(lrs, verified):
        assert got == pytest.approx(want, rel=2e-3)
    # closed form: epoch 0 at 1e-5, epoch k>=1 at cos(k-1)
    assert lrs[0] == 1e-5
    for k in range(1, E):
        assert lrs[k] == pytest.approx(_cos(k - 1), rel=1e-9)


def test_linear_warmup_three_epochs():
    lrs, _, _ = _epoch_lrs(_optim_cfg(WARMUP_EPOCH=3, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-5))
    assert lrs[:4] == pytest.approx([1e-5, B / 3, 2 * B / 3, B], rel=1e-12)
    for k in range(4, E):
        assert lrs[k] == pytest.approx(_cos(k - 3), rel=1e-9)


def test_no_warmup_cosine():
    lrs, _, _ = _epoch_lrs(_optim_cfg())
    for k in range(E):
        assert lrs[k] == pytest.approx(_cos(k), rel=1e-9)


def test_warmup_without_recount_uses_recursive_cosine():
    lrs, _, _ = _epoch_lrs(_optim_cfg(WARMUP_EPOCH=2, WARMUP_TYPE="constant", WARMUP_RECOUNT=False))
    assert lrs[:3] == pytest.approx([1e-5, 1e-5, B], rel=1e-12)
    # torch's recursive formula from last_epoch=2 with the current LR B (not the closed form)
    expected = B
    for k in range(3, E):
        expected = (1 + math.cos(math.pi * k / E)) / (1 + math.cos(math.pi * (k - 1) / E)) * expected
        assert lrs[k] == pytest.approx(expected, rel=1e-9)
    assert lrs[3] != pytest.approx(_cos(3), rel=1e-3)


def test_single_and_multi_step():
    lrs, _, _ = _epoch_lrs(_optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(-1,)))
    assert lrs == pytest.approx([B] * E)  # default: constant during training
    lrs, _, _ = _epoch_lrs(_optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=(3,), GAMMA=0.5))
    assert lrs[:7] == pytest.approx([B, B, B, B / 2, B / 2, B / 2, B / 4])
    lrs, _, _ = _epoch_lrs(_optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=(2, 5), GAMMA=0.1))
    assert lrs[:6] == pytest.approx([B, B, B * 0.1, B * 0.1, B * 0.1, B * 0.01])
    with pytest.raises(ConfigError):
        _epoch_lrs(_optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=3))
    with pytest.raises(ConfigError):
        _epoch_lrs(_optim_cfg(LR_SCHEDULER="poly"))
    with pytest.raises(ConfigError):
        _epoch_lrs(_optim_cfg(WARMUP_EPOCH=1, WARMUP_TYPE="exp"))


@pytest.mark.parametrize("sched", ["cosine", "multi_step"])
def test_scheduler_state_is_plain_and_resumes_exactly(sched):
    kw = dict(WARMUP_EPOCH=2, WARMUP_TYPE="linear", LR_SCHEDULER=sched, STEPSIZE=(4, 6))
    full, _, _ = _epoch_lrs(_optim_cfg(**kw))
    _, opt, s = _epoch_lrs(_optim_cfg(**kw), n=5)
    buf = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": s.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # no scheduler objects inside
    assert not any(isinstance(v, torch.optim.lr_scheduler.LRScheduler) for v in state["scheduler"].values())

    p = nn.Parameter(torch.zeros(2))
    opt2 = build_optimizer([p], _optim_cfg(**kw))
    s2 = build_lr_scheduler(opt2, _optim_cfg(**kw))
    opt2.load_state_dict(state["optimizer"])
    s2.load_state_dict(state["scheduler"])
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(5, E):
            lrs.append(opt2.param_groups[0]["lr"])
            opt2.step()
            s2.step()
    assert lrs == pytest.approx(full[5:], rel=1e-12)


def test_warmup_step_rejects_epoch_argument():
    _, _, sched = _epoch_lrs(_optim_cfg(WARMUP_EPOCH=1), n=1)
    with pytest.raises(TypeError):
        sched.step(3)


@pytest.mark.parametrize(
    "name,cls,check",
    [
        ("sgd", torch.optim.SGD, dict(momentum=0.9, weight_decay=5e-4, dampening=0, nesterov=False)),
        ("adam", torch.optim.Adam, dict(betas=(0.9, 0.999), weight_decay=5e-4, amsgrad=False)),
        ("amsgrad", torch.optim.Adam, dict(amsgrad=True)),
        ("adamw", torch.optim.AdamW, dict(betas=(0.9, 0.999), weight_decay=5e-4)),
        ("rmsprop", torch.optim.RMSprop, dict(alpha=0.99, momentum=0.9, weight_decay=5e-4)),
        ("radam", RAdam, dict(betas=(0.9, 0.999), weight_decay=5e-4)),
    ],
)
def test_build_optimizer_arguments(name, cls, check):
    opt = build_optimizer(nn.Linear(2, 2), _optim_cfg(NAME=name))
    # the class itself, or its eager subclass without the torch._dynamo import (dassl.optim.optimizer)
    assert isinstance(opt, cls) and type(opt).__name__ == cls.__name__
    group = opt.param_groups[0]
    assert group["lr"] == B
    for k, v in check.items():
        assert group[k] == v


def test_unknown_optimizer():
    with pytest.raises(ConfigError, match="OPTIM.NAME"):
        build_optimizer(nn.Linear(2, 2), _optim_cfg(NAME="adagrad"))


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(3, 3)
        self.head = nn.Linear(3, 2)


def test_staged_lr():
    net = _Net()
    opt = build_optimizer(net, _optim_cfg(STAGED_LR=True, NEW_LAYERS=("head",), BASE_LR_MULT=0.1))
    base, new = opt.param_groups
    assert base["lr"] == pytest.approx(B * 0.1) and new["lr"] == B
    assert {id(p) for p in new["params"]} == {id(p) for p in net.head.parameters()}
    assert {id(p) for p in base["params"]} == {id(p) for p in net.backbone.parameters()}
    with pytest.raises(ConfigError):
        build_optimizer(net, _optim_cfg(STAGED_LR=True, NEW_LAYERS=()))


def test_param_group_dicts():
    net = _Net()
    groups = [{"params": net.backbone.parameters(), "lr": 0.5}, {"params": net.head.parameters()}]
    opt = build_optimizer(groups, _optim_cfg())
    assert [g["lr"] for g in opt.param_groups] == [0.5, B]
    opt = build_optimizer(net, _optim_cfg(), param_groups=[{"params": list(net.head.parameters())}])
    assert len(opt.param_groups) == 1


def test_radam_matches_published_algorithm():
    assert RAdam is RAdam2
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    grads = [torch.randn(5, 3) for _ in range(12)]  # covers the SGD phase (rho_t < 5) and the rectified phase
    p1 = nn.Parameter(w0.clone())
    p2 = nn.Parameter(w0.clone())
    ours = RAdam([p1], lr=0.01, betas=(0.9, 0.999), weight_decay=0.0)
    ref = torch.optim.RAdam([p2], lr=0.01, betas=(0.9, 0.999), weight_decay=0.0)
    for g in grads:
        p1.grad = g.clone()
        p2.grad = g.clone()
        ours.step()
        ref.step()
    assert torch.allclose(p1, p2, atol=1e-6)
    # decoupled weight decay shrinks the weights
    p3 = nn.Parameter(torch.ones(3))
    opt = RAdam([p3], lr=0.1, weight_decay=0.5)
    p3.grad = torch.zeros(3)
    opt.step()
    assert torch.allclose(p3, torch.full((3,), 0.95))
