"""The last block computes only the pooled rows (end-of-text for text, the class token for a ViT) after its attention,
and only where that was checked to give the full block's bits: outputs, input gradients and the run's random numbers
are those of the full block whatever the machine's kernels do on fewer rows."""
from __future__ import annotations

import random

import pytest
import torch

from clip.model import ResidualAttentionBlock, Transformer, _pool_at, build_clip_from_config
from tests.helpers.towers import frozen_transformer
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity


def _transformer(width=128, layers=2, causal=True, **kw):
    return frozen_transformer(width, layers, causal, **kw)


def _input(n=20, length=11, width=128, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, width, generator=g)
    rows = torch.randint(0, length, (n,), generator=g)
    return x, rows


@pytest.mark.parametrize("kw", [{}, {"act": "gelu", "layer_scale": True}])
@pytest.mark.parametrize("causal", [True, False])
def test_forward_rows_is_the_full_blocks_rows(kw, causal):
    t = _transformer(causal=causal, **kw)
    block = t.resblocks[-1]
    x, rows = _input()
    x.requires_grad_(True)
    full = _pool_at(block(x), rows)
    part = block.forward_rows(x, rows)
    assert part.shape == full.shape == (20, 128)
    assert (part - full).abs().max() <= 1e-5 * full.abs().max()
    g = torch.randn(full.shape, generator=torch.Generator().manual_seed(2))
    (gf,) = torch.autograd.grad(full, x, g)
    (gp,) = torch.autograd.grad(part, x, g)
    assert (gp - gf).abs().max() <= 1e-5 * gf.abs().max()
    other = _pool_at(block(x), (rows + 1) % x.shape[1])  # the rows matter (the test has teeth)
    assert (other - full).abs().max() > 1e-2


@pytest.mark.parametrize("grad", [True, False])
def test_transformer_rows_are_bit_identical_to_pooling_the_full_output(grad):
    t = _transformer(layers=3)
    x, rows = _input()
    x.requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        full = _pool_at(t(x), rows)
        part = t(x, rows=rows)
    assert torch.equal(full, part)  # either the checked shortcut or the full block: never other bits
    assert len(t.rows_verdicts) == 1
    (key, verdict), = t.rows_verdicts.items()
    assert key[0] == (20, 11, 128) and key[3] is grad
    if grad:
        g = torch.randn(full.shape, generator=torch.Generator().manual_seed(3))
        (gf,) = torch.autograd.grad(full, x, g)
        (gp,) = torch.autograd.grad(part, x, g)
        assert torch.equal(gf, gp)


def test_the_shortcut_is_used_once_checked_and_only_then(monkeypatch):
    t = _transformer()
    x, rows = _input()
    calls = []
    real = ResidualAttentionBlock.forward_rows
    monkeypatch.setattr(ResidualAttentionBlock, "forward_rows",
                        lambda self, *a, **k: (calls.append(1), real(self, *a, **k))[1])
    with torch.no_grad():
        t(x, rows=rows)
        verdict = t.rows_verdicts[next(iter(t.rows_verdicts))]
        assert len(calls) == 1 + verdict  # the check, then the shortcut itself if it matched
        t(x + 1.0, rows=rows)
        assert len(calls) == 1 + 2 * verdict  # no second check for the same shape
        t.rows_verdicts[next(iter(t.rows_verdicts))] = False
        t(x, rows=rows)
        assert len(calls) == 1 + 2 * verdict  # a refused shape runs the full block


def test_a_shortcut_that_is_off_in_the_last_bits_is_refused(monkeypatch):
    t = _transformer()
    x, rows = _input()
    real = ResidualAttentionBlock.forward_rows
    monkeypatch.setattr(ResidualAttentionBlock, "forward_rows", lambda self, *a, **k: real(self, *a, **k) * (1 + 1e-6))
    x.requires_grad_(True)
    part = t(x, rows=rows)
    assert list(t.rows_verdicts.values()) == [False]
    assert torch.equal(part, _pool_at(t(x), rows))


def test_an_off_gradient_is_refused(monkeypatch):
    t = _transformer()
    x, rows = _input()

    class Scaled(torch.autograd.Function):  # the right values, a gradient off in the last bits
        @staticmethod
        def forward(ctx, y):
            return y.clone()

        @staticmethod
        def backward(ctx, g):
            return g * (1 + 1e-6)

    real = ResidualAttentionBlock.forward_rows
    monkeypatch.setattr(ResidualAttentionBlock, "forward_rows", lambda self, *a, **k: Scaled.apply(real(self, *a, **k)))
    x.requires_grad_(True)
    t(x, rows=rows)
    assert list(t.rows_verdicts.values()) == [False]
    with torch.no_grad():  # without gradients only the values are compared: another key, its own verdict
        t(x, rows=rows)
    assert len(t.rows_verdicts) == 2


def test_the_check_leaves_the_random_numbers_alone():
    t = _transformer()
    x, rows = _input()
    x.requires_grad_(True)
    state, py_state = torch.get_rng_state(), random.getstate()
    t(x, rows=rows)
    assert t.rows_verdicts  # the check ran
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == py_state


def test_trainable_last_block_or_non_finite_input_keeps_the_full_block():
    t = _transformer()
    x, rows = _input()
    t.resblocks[-1].mlp.c_fc.weight.requires_grad_(True)  # its weight gradient would sum over fewer rows
    x.requires_grad_(True)
    assert torch.equal(t(x, rows=rows), _pool_at(t(x), rows))
    assert not t.rows_verdicts
    t.requires_grad_(False)
    bad = x.detach().clone()
    bad[0, 0, 0] = float("nan")
    with torch.no_grad():
        t(bad, rows=rows)
    assert not t.rows_verdicts  # no verdict from a non-finite output
    with torch.no_grad():
        t(x.detach(), rows=rows)
    assert len(t.rows_verdicts) == 1


def test_a_coop_step_is_the_same_with_and_without_the_shortcut():
    def run(allow: bool):
        torch.manual_seed(0)
        clip_model = build_clip_from_config(transformer_width=128, transformer_heads=4, vision_width=128)
        names = [f"class {i}" for i in range(20)]
        model = PromptedCLIP(clip_model, CoOpPromptLearner(names, clip_model, n_ctx=4),
                             Similarity(clip_model, names)).train()
        for m in model.modules():
            if isinstance(m, Transformer) and not allow:
                m.rows_exact = lambda *a: False
        opt = torch.optim.SGD(model.learner.parameters(), lr=5.0)
        g = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(4):
            images = torch.randn(8, 3, 32, 32, generator=g)
            labels = torch.randint(0, 20, (8,), generator=g)
            loss = torch.nn.functional.cross_entropy(model(images).logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        verdicts = [v for m in model.modules() if isinstance(m, Transformer) for v in m.rows_verdicts.values()]
        return losses, model.learner.ctx.detach().clone(), verdicts

    on_losses, on_ctx, verdicts = run(True)
    off_losses, off_ctx, none = run(False)
    assert on_losses == off_losses and torch.equal(on_ctx, off_ctx)
    assert len(verdicts) == 2 and not none  # text (with gradients) and image (without) were checked
    assert len(set(off_losses)) == 4  # the steps moved the context
