"""The positions that every prompt shares (CoOp's start token and unified context, for every class) are computed once
in the causal text tower, not once per class, and only where that was checked to give the per-prompt path's bits:
outputs, input gradients, recorded attention inputs and the run's random numbers stay those of the per-prompt path."""
from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import clip.model as clip_model_module
from clip.model import Transformer, _SharedRowsLinear, _shared_rows, build_clip_from_config
from tests.helpers.towers import frozen_transformer
from trainers.modules import CoOpPromptLearner, PromptedCLIP, Similarity
from trainers.modules.regularisers.nemesis import Nemesis


def _transformer(width=128, layers=3, causal=True, **kw):
    return frozen_transformer(width, layers, causal, **kw)


def _input(n=20, length=12, width=128, shared=7, seed=1):
    """[n, length, width] whose first ``shared`` positions are the same in every sequence, and end rows [n]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length, width, generator=g)
    x[:, :shared] = x[:1, :shared]
    rows = torch.randint(shared, length, (n,), generator=g)
    return x, rows


def _unshared(t: Transformer) -> Transformer:
    t.shared_length = lambda *a, **k: None
    return t


def test_shared_rows_counts_the_leading_positions_every_sequence_holds():
    x, _ = _input(shared=7)
    assert _shared_rows(x) == (7, 20)
    assert _shared_rows(x[:1]) == (0, 1)  # one sequence shares nothing with others
    assert _shared_rows(x[:, :5]) == (5, 20)  # all positions shared
    y = x.clone()
    y[3, 2, 0] += 1e-7  # one value in one sequence
    assert _shared_rows(y) == (2, 20)
    y = x.clone()
    y[:, 0, 0] = float("nan")  # NaN equals nothing: never counted as shared
    assert _shared_rows(y) == (0, 20)


def test_shared_rows_finds_groups_of_consecutive_sequences():
    """CoCoOp's prompts: per image, a group of class prompts that share the start token and that image's context."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 5, 9, 16, generator=g)  # 4 images x 5 classes, 9 positions
    x[:, :, 0] = x[0, 0, 0]  # the start token: the same everywhere
    x[:, :, 1:6] = x[:, :1, 1:6]  # each image's context: the same for its classes
    assert _shared_rows(x.view(20, 9, 16)) == (6, 5)
    assert _shared_rows(x[:, :, :1].reshape(20, 1, 16)) == (1, 20)  # all alike: one group
    x[1, 3, 4] += 1.0  # one class of one image differs from position 4 on
    assert _shared_rows(x.view(20, 9, 16)) == (4, 5)
    assert _shared_rows(x[:3, :4].reshape(12, 9, 16)) == (4, 4)
    odd = torch.cat([x.view(20, 9, 16), x.view(20, 9, 16)[:3]])  # 23 sequences: no equal groups, the start only
    assert _shared_rows(odd) == (1, 23)


def test_shared_rows_linear_computes_the_shared_rows_once_with_autograds_input_gradient():
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(96, 64, generator=g), torch.randn(96, generator=g)
    for group in (10, 5):  # one group of 10 sequences, two groups of 5
        x = torch.randn(10, 9, 64, generator=g)
        x.view(10 // group, group, 9, 64)[:, 1:, :5] = x.view(10 // group, group, 9, 64)[:, :1, :5]
        x.requires_grad_(True)
        full = F.linear(x, w, b)
        with FlopCounterMode(display=False) as flops:
            part = _SharedRowsLinear.apply(x, w, b, 5, group)
        # each group's first sequence's shared rows, plus every sequence's other rows
        assert flops.get_total_flops() == 2 * (5 * 10 // group + 10 * 4) * 64 * 96
        assert part.shape == full.shape
        assert torch.allclose(part, full, rtol=1e-6, atol=1e-5)
        assert not torch.allclose(part[0], part[-1])  # rows differ between sequences after the shared ones
        out = torch.randn(full.shape, generator=g)
        (g_full,) = torch.autograd.grad(full, x, out)
        (g_part,) = torch.autograd.grad(part, x, out)
        assert torch.equal(g_part, g_full)  # the same kernel call as autograd's linear backward


@pytest.mark.parametrize("kw", [{}, {"act": "gelu", "layer_scale": True}])
@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize("with_rows", [True, False])
def test_the_transformer_gives_the_per_prompt_bits(kw, grad, with_rows):
    t, ref = _transformer(**kw), _unshared(_transformer(**kw))
    for seed in (1, 2):  # the second input of the same shape uses the remembered verdict
        x, rows = _input(seed=seed)
        rows = rows if with_rows else None
        x.requires_grad_(grad)
        rec, rec_ref = [], []
        with torch.set_grad_enabled(grad):
            out = t(x, record=rec, rows=rows)
            expected = ref(x, record=rec_ref, rows=rows)
        assert torch.equal(out, expected)
        assert all(torch.equal(a, b) for ra, rb in zip(rec, rec_ref) for a, b in zip(ra, rb)) and len(rec) == 3
        if grad:
            go = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 10))
            (gx,) = torch.autograd.grad(out, x, go)
            (gx_ref,) = torch.autograd.grad(expected, x, go)
            assert torch.equal(gx, gx_ref)
    assert len(t.shared_verdicts) == 1
    (key, _), = t.shared_verdicts.items()
    assert key[:2] == ((20, 12, 128), (7, 20)) and key[4] is grad


def test_the_shared_path_is_used_once_checked_and_saves_the_shared_rows_work():
    t = _transformer()
    x, rows = _input()
    with torch.no_grad():
        t(x, rows=rows)  # the check
        if not t.shared_verdicts[next(iter(t.shared_verdicts))]:
            pytest.skip("this machine's kernels give other bits on fewer rows: the path is refused (tested below)")
        with FlopCounterMode(display=False) as shared:
            t(x + 0.5, rows=rows)
        with FlopCounterMode(display=False) as unshared:
            _unshared(t)(x + 0.5, rows=rows)
    assert shared.get_total_flops() < 0.7 * unshared.get_total_flops()  # 7 of 12 positions computed once


def test_a_shared_path_off_in_the_last_bits_is_refused(monkeypatch):
    real = _SharedRowsLinear.forward
    monkeypatch.setattr(_SharedRowsLinear, "forward",
                        staticmethod(lambda ctx, *a: real(ctx, *a) * (1 + 1e-6)))
    t, ref = _transformer(), _unshared(_transformer())
    x, rows = _input()
    x.requires_grad_(True)
    state, py_state = torch.get_rng_state(), random.getstate()
    out = t(x, rows=rows)
    assert list(t.shared_verdicts.values()) == [False]
    # the check drew its output gradient from a private generator: the run's random numbers are untouched
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == py_state
    assert torch.equal(out, ref(x, rows=rows))


def test_an_off_gradient_is_refused(monkeypatch):
    real = _SharedRowsLinear.backward
    monkeypatch.setattr(_SharedRowsLinear, "backward",
                        staticmethod(lambda ctx, g: (real(ctx, g)[0] * (1 + 1e-6), None, None, None, None)))
    t = _transformer()
    x, rows = _input()
    x.requires_grad_(True)
    t(x, rows=rows)
    assert list(t.shared_verdicts.values()) == [False]
    with torch.no_grad():  # without gradients only values (and the record) are compared: another key, its verdict
        t(x, rows=rows)
    assert len(t.shared_verdicts) == 2


def test_where_the_shared_path_does_not_apply(monkeypatch):
    x, rows = _input()
    t = _transformer()
    t.resblocks[0].attn.in_proj_weight.requires_grad_(True)  # its weight gradient would miss the shared rows
    x.requires_grad_(True)
    assert t.shared_length(x) is None
    with torch.no_grad():
        assert t.shared_length(x) == (7, 20)  # without gradients a trainable weight does not matter
    t = _transformer()
    assert _transformer(causal=False).shared_length(x) is None  # every row sees later rows
    assert t.shared_length(x, deep_prompts=[torch.zeros(2, 128)]) is None
    assert t.shared_length(x[:1]) is None
    t.grad_checkpointing = True
    assert t.shared_length(x) is None
    t.grad_checkpointing = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert t.shared_length(x) is None
    y = x.detach().clone()
    y[0, 0, 0] = float("nan")
    with torch.no_grad():
        t(y, rows=rows)
    assert not t.shared_verdicts  # no verdict from a non-finite output (and NaN rows are not shared anyway)


def _coop(classes=20, seed=0, **sizes):
    torch.manual_seed(seed)
    clip_model = build_clip_from_config(transformer_width=128, transformer_heads=4, vision_width=128, **sizes)
    names = [f"class {i}" for i in range(classes)]
    model = PromptedCLIP(clip_model, CoOpPromptLearner(names, clip_model, n_ctx=8),
                         Similarity(clip_model, names)).train()
    return model, names


def _off(model):
    for m in model.modules():
        if isinstance(m, Transformer):
            _unshared(m)
    model.clip._suffix_shared = lambda *a, **k: None


def _train(allow: bool, pan: bool):
    model, names = _coop(seed=2)  # a model whose PAN pre-inference selects a position within 12 steps
    if not allow:
        _off(model)
    reg = None
    if pan:
        reg = Nemesis(a=1.0, beta=0.0, n_pos=2, cw=0.5)
        reg.setup(model, names)
        reg.on_epoch_start(0, 2)
    opt = torch.optim.SGD(model.learner.parameters(), lr=5.0)
    random.seed(0)
    g = torch.Generator().manual_seed(1)
    losses, alphas = [], []
    for _ in range(12 if pan else 4):
        images = torch.randn(8, 3, 32, 32, generator=g)
        labels = torch.randint(0, len(names), (8,), generator=g)
        out = model(images)
        loss = F.cross_entropy(out.logits, labels)
        if pan:
            loss = loss + reg(model, out, {"label": labels})["norm_loss"]
            alphas.append(reg.alpha.clone())
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.invalidate_cache()
        losses.append(loss.item())
    verdicts = [v for m in model.modules() if isinstance(m, Transformer) for v in m.shared_verdicts.values()]
    return losses, alphas, model.learner.ctx.detach().clone(), verdicts, reg


@pytest.mark.parametrize("pan", [False, True])
def test_coop_and_pan_training_are_the_same_with_and_without_the_shared_path(pan):
    on_losses, on_alphas, on_ctx, verdicts, reg = _train(True, pan)
    off_losses, off_alphas, off_ctx, none, _ = _train(False, pan)
    assert on_losses == off_losses and torch.equal(on_ctx, off_ctx)
    assert all(torch.equal(a, b) for a, b in zip(on_alphas, off_alphas))
    assert verdicts and not none  # the text tower was checked (the image tower is not causal)
    assert len(set(off_losses)) == len(off_losses)  # the steps moved the context
    if pan:
        assert any(float(a.sum()) > 0 for a in off_alphas)  # PAN selected positions (the comparison has teeth)
        # the corrupted copies: the rows every class shares after the corrupted token computed once where exact
        assert reg._suffix_exact and set(reg._suffix_exact.values()) <= {True, "plain", False}


def test_pan_suffix_falls_back_to_per_class_rows_when_sharing_is_not_exact(monkeypatch):
    """A shared suffix path off in the last bits is refused, and the per-class suffix path is still used."""
    real = clip_model_module.CLIP.encode_prompts_from

    def off_when_shared(self, states, prompts, tokenized, share=True):
        out = real(self, states, prompts, tokenized, share)
        return out * (1 + 1e-6) if share and out is not None else out

    monkeypatch.setattr(clip_model_module.CLIP, "encode_prompts_from", off_when_shared)
    on_losses, on_alphas, on_ctx, _, reg = _train(True, True)
    off_losses, off_alphas, off_ctx, _, _ = _train(False, True)
    assert on_losses == off_losses and torch.equal(on_ctx, off_ctx)
    assert all(torch.equal(a, b) for a, b in zip(on_alphas, off_alphas))
    assert reg._suffix_exact and True not in set(reg._suffix_exact.values())
    if reg._share_copy0 and all(reg._share_copy0.values()):  # the suffix path was tried: per class, it is exact
        assert "plain" in set(reg._suffix_exact.values())
