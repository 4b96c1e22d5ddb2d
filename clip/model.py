"""The CLIP model (OpenAI layout) with prompt-aware text and image towers.

State-dict keys are exactly those of the OpenAI checkpoints, so official weights load strictly through
:func:`build_model`. On top of the reference model this module adds, trainer-agnostically:

- :meth:`CLIP.encode_prompts`: the text tower run on prompt *embeddings* (CoOp-style soft prompts), with
  optional deep prompts that overwrite token positions ``1..n`` before each block (MaPLe / IVLP), and the
  sequence cut after the longest end-of-text position in the batch (exact under the causal mask); the last block
  computes only the end-of-text rows after its attention (where checked to be bit-identical:
  :meth:`Transformer.rows_exact`); the leading positions that the prompts of a call share (start token, a unified
  context) are computed once per group of prompts in the linear layers (where checked to be bit-identical:
  :meth:`Transformer.shared_exact`).
- ``encode_image(image, prompts=None, deep_prompts=None)``: visual prompts appended after the positional
  embedding, deep visual prompts replacing the last ``n`` tokens before each block (ViT only).
- :meth:`CLIP.encode_image_tokens`: projected local features ``[B, T, D]`` (PLOT), token 0 = ``encode_image``.
- :class:`TextEncoder`: the same text path as a stand-alone module for trainers.

Attention is computed with :func:`torch.nn.functional.scaled_dot_product_attention` on batch-first tensors;
``nn.MultiheadAttention`` modules are kept only as parameter containers (keys ``attn.in_proj_weight`` ...).
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.utils.checkpoint
import torch.nn.functional as F
from torch import nn

from clip.errors import CorruptWeightsError

logger = logging.getLogger(__name__)

__all__ = [
    "AttentionPool2d",
    "Bottleneck",
    "CLIP",
    "LayerNorm",
    "LayerScale",
    "ModifiedResNet",
    "QuickGELU",
    "ResidualAttentionBlock",
    "TextEncoder",
    "TextStates",
    "Transformer",
    "VisionTransformer",
    "build_clip_from_config",
    "build_model",
    "convert_weights",
    "text_global_pool",
]

DeepPrompts = Sequence["torch.Tensor | None"]


# --------------------------------------------------------------------------------------------------------------------
# Small building blocks
# --------------------------------------------------------------------------------------------------------------------


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 whatever the input dtype; the result is cast back to the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_dtype = x.dtype
        out = F.layer_norm(
            x.float(),
            self.normalized_shape,
            None if self.weight is None else self.weight.float(),
            None if self.bias is None else self.bias.float(),
            self.eps,
        )
        return out.to(in_dtype)


class QuickGELU(nn.Module):
    """The sigmoid approximation of GELU used by the OpenAI checkpoints: ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerScale(nn.Module):
    """Per-channel residual-branch scale ``x * gamma`` (open_clip's ``ls_init_value`` models; key ``ls_1.gamma``)."""

    def __init__(self, dim: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.to(x.dtype)


#: MLP activations by setting name: OpenAI's checkpoints use QuickGELU, most open_clip LAION models exact GELU.
ACTIVATIONS = {"quick_gelu": QuickGELU, "gelu": nn.GELU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, L, D] -> [B, H, L, D/H]."""
    b, length, d = t.shape
    return t.view(b, length, heads, d // heads).transpose(1, 2)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    """[B, H, L, Dh] -> [B, L, H*Dh]."""
    b, h, length, dh = t.shape
    return t.transpose(1, 2).reshape(b, length, h * dh)


#: ``(n, group)``: in every group of ``group`` consecutive sequences of a batch, the first ``n`` positions hold the
#: same rows (CoOp: one group, every class prompt; CoCoOp: one group of class prompts per image)
Shared = tuple[int, int]


class _SharedRowsLinear(torch.autograd.Function):
    """``F.linear`` of ``x`` [N, L, Din] whose first ``n`` positions hold the same rows in every sequence of each
    group of ``group`` consecutive sequences: those rows are multiplied once per group (its first sequence) and
    copied, the rest as one contiguous block. The input gradient is the one autograd gives ``F.linear``
    (``grad.mm(weight)`` on the flattened rows); the weight and bias get none, so this is for frozen weights."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, n: int,
                group: int) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.x_shape = x.shape
        groups = x.shape[0] // group
        firsts = x[:1, :n] if groups == 1 else x.view(groups, group, *x.shape[1:])[:, 0, :n].contiguous()
        head = F.linear(firsts, weight, bias)  # [groups, n, Dout]
        tail = F.linear(x[:, n:].contiguous(), weight, bias)  # [N, L - n, Dout]
        n_seq, length, d_out = x.shape[0], x.shape[1], tail.shape[-1]
        head = head.unsqueeze(1).expand(groups, group, n, d_out)  # a view: cat makes the one copy
        return torch.cat([head, tail.view(groups, group, length - n, d_out)], dim=2).view(n_seq, length, d_out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (weight,) = ctx.saved_tensors
        grad_x = grad.reshape(-1, grad.shape[-1]).mm(weight).view(ctx.x_shape)
        return grad_x, None, None, None, None


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
            shared: Shared | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; with ``shared`` (:data:`Shared`) the rows that the sequences of ``x``
    [N, L, D] share are computed once per group (:class:`_SharedRowsLinear`, frozen weights only)."""
    if not shared:
        return F.linear(x, weight, bias)
    return _SharedRowsLinear.apply(x, weight, bias, *shared)


def _leading_same(same: torch.Tensor) -> int:
    """How many leading entries of the boolean vector ``same`` are True."""
    return same.shape[0] if bool(same.all()) else int(same.to(torch.int8).argmin())


def _shared_rows(x: torch.Tensor) -> Shared:
    """``(n, group)`` of ``x`` [N, L, D] (:data:`Shared`): the leading positions at which every sequence holds the
    same values, or, where it saves more rows, those at which every sequence of each group of ``group`` consecutive
    sequences does (the group size read off the first position not shared by all); ``(0, N)`` when N < 2."""
    if x.dim() != 3 or x.shape[0] < 2:
        return 0, x.shape[0]
    n_seq, length = x.shape[:2]
    everywhere = _leading_same((x == x[:1]).all(dim=-1).all(dim=0))
    if everywhere == length:
        return everywhere, n_seq
    same_next = (x[1:, everywhere] == x[:-1, everywhere]).all(dim=-1)  # [N - 1]
    group = int(same_next.to(torch.int8).argmin()) + 1 if not bool(same_next.all()) else n_seq
    if 1 < group < n_seq and n_seq % group == 0:
        grouped = x.view(n_seq // group, group, *x.shape[1:])
        per_group = _leading_same((grouped == grouped[:, :1]).all(dim=-1).all(dim=1).all(dim=0))
        if (n_seq - n_seq // group) * per_group > (n_seq - 1) * everywhere:
            return per_group, group
    return everywhere, n_seq


def _qkv(x: torch.Tensor, attn: nn.MultiheadAttention,
         shared: Shared | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values [B, H, L, D/H] of batch-first ``x`` [B, L, D] (``attn``'s input projection;
    ``shared``: see :func:`_linear`)."""
    qkv = _linear(x, attn.in_proj_weight, attn.in_proj_bias, shared)
    q, k, v = (_split_heads(t, attn.num_heads) for t in qkv.chunk(3, dim=-1))
    return q, k, v


def _mha_sdpa(
    x: torch.Tensor, attn: nn.MultiheadAttention, is_causal: bool, record: list | None = None,
    rows: torch.Tensor | None = None, shared: Shared | None = None,
) -> torch.Tensor:
    """Self-attention of batch-first ``x`` [B, L, D] using the parameters of an ``nn.MultiheadAttention``;
    ``record``: a list that receives the detached ``(q, k, v)``; ``rows``: an index [B], the output projection then
    runs only on the rows ``out[i, rows[i]]`` and the result is [B, D]; ``shared`` (:data:`Shared`): the rows the
    sequences share, their projections are computed once per group (:func:`_linear`)."""
    q, k, v = _qkv(x, attn, shared)
    if record is not None:
        record.append((q.detach(), k.detach(), v.detach()))
    out = _merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=is_causal))
    if rows is not None:
        return attn.out_proj(_pool_at(out, rows))
    return _linear(out, attn.out_proj.weight, attn.out_proj.bias, shared)


# --------------------------------------------------------------------------------------------------------------------
# Transformer
# --------------------------------------------------------------------------------------------------------------------


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; batch-first input [B, L, D].

    ``act`` is the MLP activation (``quick_gelu``: OpenAI; ``gelu``: most open_clip models), ``mlp_width`` the hidden
    width (default ``4 * d_model``), ``layer_scale`` adds open_clip's ``ls_1``/``ls_2`` LayerScale on both branches.
    """

    def __init__(
        self,
        d_model: int,
        n_head: int,
        causal: bool = False,
        act: str = "quick_gelu",
        mlp_width: int | None = None,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        mlp_width = mlp_width or d_model * 4
        # Construction order (attn, ln_1, mlp.c_fc, mlp.c_proj, ln_2) fixes the RNG draws of the defaults inits.
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = LayerNorm(d_model)
        self.mlp = nn.Sequential(
            OrderedDict(
                [
                    ("c_fc", nn.Linear(d_model, mlp_width)),
                    ("gelu", _activation(act)),
                    ("c_proj", nn.Linear(mlp_width, d_model)),
                ]
            )
        )
        self.ln_2 = LayerNorm(d_model)
        if layer_scale:
            self.ls_1 = LayerScale(d_model)
            self.ls_2 = LayerScale(d_model)
        self.layer_scale = layer_scale
        self.causal = causal

    def attention(self, x: torch.Tensor, record: list | None = None, shared: Shared | None = None) -> torch.Tensor:
        return _mha_sdpa(x, self.attn, self.causal, record, shared=shared)

    def _mlp(self, x: torch.Tensor, shared: Shared | None = None) -> torch.Tensor:
        if not shared:
            return self.mlp(x)
        fc, proj = self.mlp.c_fc, self.mlp.c_proj
        return _linear(self.mlp.gelu(_linear(x, fc.weight, fc.bias, shared)), proj.weight, proj.bias, shared)

    def _residual(self, x: torch.Tensor, attended: torch.Tensor, shared: Shared | None = None) -> torch.Tensor:
        """``x`` plus the attention branch ``attended`` (before LayerScale), then the MLP branch."""
        if self.layer_scale:
            x = x + self.ls_1(attended)
            return x + self.ls_2(self._mlp(self.ln_2(x), shared))
        x = x + attended
        return x + self._mlp(self.ln_2(x), shared)

    def forward(self, x: torch.Tensor, record: list | None = None, shared: Shared | None = None) -> torch.Tensor:
        """``record``: a list that receives this block's detached attention inputs ``(q, k, v)``; ``shared``
        (:data:`Shared`): the rows of ``x`` that the sequences of each group share (in a causal block so are their
        outputs), which the linear layers compute once per group (:func:`_linear`; frozen weights)."""
        return self._residual(x, self.attention(self.ln_1(x), record, shared), shared)

    def forward_rows(self, x: torch.Tensor, rows: torch.Tensor, record: list | None = None,
                     shared: Shared | None = None) -> torch.Tensor:
        """Output rows ``x[i, rows[i]]`` [B, D] of :meth:`forward` ([B, L, D] -> [B, D]), e.g. the end-of-text or
        class-token rows of a last block: the attention runs on every row (the same call as :meth:`forward`: all
        keys and values are needed), the output projection, residuals and MLP only on the kept rows. Exact in
        real arithmetic; whether the kernels give :meth:`forward`'s bits on fewer rows is machine-dependent, so
        :class:`Transformer` compares the two once per shape before it uses this."""
        return self._residual(_pool_at(x, rows), _mha_sdpa(self.ln_1(x), self.attn, self.causal, record, rows,
                                                           shared))

    def forward_suffix(
        self,
        x: torch.Tensor,
        start: int,
        recorded: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        rows: torch.Tensor | None = None,
        shared: Shared | None = None,
    ) -> torch.Tensor:
        """Rows ``start..`` of this block's output for an input that equals a recorded one before ``start``
        (causal blocks only).

        ``x``: the input's rows from ``start`` [B, L - start, D]; ``recorded``: ``(q, k, v)`` [B, H, L, D/H] that
        :meth:`forward` recorded for the other input. Under the causal mask the rows before ``start`` and their
        queries, keys and values are those of the recorded input, so the attention runs on the recorded prefix
        joined to this suffix (the same call, on the same values, as a full :meth:`forward`), and every other
        operation only on the suffix rows. ``rows``: optional index [B] into the suffix: return only those rows
        [B, 1, D] (e.g. the end-of-text row in the last block); ``shared`` (:data:`Shared`): the suffix rows that
        the sequences share (with the recorded prefix), see :meth:`forward`. Whether the kernels give
        the full call's bits on fewer rows is for the caller to check."""
        q, k, v = _qkv(self.ln_1(x), self.attn, shared)
        q, k, v = (torch.cat([r[:, :, :start], t], dim=2) for r, t in zip(recorded, (q, k, v)))
        attended = _merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True)[:, :, start:])
        if rows is not None:
            attended = _pool_at(attended, rows).unsqueeze(1)
            x = _pool_at(x, rows).unsqueeze(1)
            return self._residual(x, self.attn.out_proj(attended))
        return self._residual(x, _linear(attended, self.attn.out_proj.weight, self.attn.out_proj.bias, shared),
                              shared)


def _rows_match(block: ResidualAttentionBlock, x: torch.Tensor, rows: torch.Tensor, with_grad: bool) -> bool | None:
    """``block.forward_rows`` against the full block on ``x`` (and, ``with_grad``, their input gradients for one
    output gradient); None when the full output is not finite (no verdict from this input)."""
    return _same_bits(x, with_grad, lambda x0, _: _pool_at(block(x0), rows),
                      lambda x0, _: block.forward_rows(x0, rows))


def _same_bits(x: torch.Tensor, with_grad: bool, full_path, fast_path, record: bool = False) -> bool | None:
    """Whether ``fast_path(x0, rec)`` gives ``full_path(x0, rec)``'s bits on ``x``: the output, with ``record`` the
    lists ``rec`` each path fills with detached ``(q, k, v)``, and with ``with_grad`` the input gradient for one
    output gradient (drawn from a private generator: the run's random numbers are untouched); None when the full
    output is not finite (no verdict from this input)."""
    with torch.enable_grad() if with_grad else torch.no_grad():
        x0 = x.detach().requires_grad_(with_grad)
        rec_full, rec_fast = ([], []) if record else (None, None)
        full = full_path(x0, rec_full)
        if not bool(torch.isfinite(full).all()):
            return None
        fast = fast_path(x0, rec_fast)
        if not torch.equal(full, fast):
            return False
        if record and not all(torch.equal(a, b) for ra, rb in zip(rec_full, rec_fast) for a, b in zip(ra, rb)):
            return False
        if not with_grad:
            return True
        gen = torch.Generator(device=x.device).manual_seed(0)
        g = torch.randn(full.shape, generator=gen, device=x.device, dtype=torch.float32).to(full.dtype)
        (g_full,) = torch.autograd.grad(full, x0, g)
        (g_fast,) = torch.autograd.grad(fast, x0, g)
        return torch.equal(g_full, g_fast)


def _overwrite_slots(x: torch.Tensor, prompt: torch.Tensor, start: int | None) -> torch.Tensor:
    """Replace ``x[:, start:start+n]`` by ``prompt`` ([n, D] or [B, n, D]); ``start=None`` means the last n tokens."""
    if prompt.dim() == 2:
        prompt = prompt.unsqueeze(0).expand(x.shape[0], -1, -1)
    elif prompt.dim() != 3 or prompt.shape[0] != x.shape[0]:
        raise ValueError(
            f"a deep prompt must have shape [n, D] or [B, n, D] with B={x.shape[0]}, got {tuple(prompt.shape)}"
        )
    n = prompt.shape[1]
    if prompt.shape[-1] != x.shape[-1]:
        raise ValueError(f"deep prompt width {prompt.shape[-1]} does not match the transformer width {x.shape[-1]}")
    if start is None:
        start = x.shape[1] - n
    if start < 0 or start + n > x.shape[1]:
        raise ValueError(f"{n} deep prompt tokens at position {start} do not fit a sequence of {x.shape[1]} tokens")
    prompt = prompt.to(x.dtype)
    return torch.cat([x[:, :start], prompt, x[:, start + n :]], dim=1)


class Transformer(nn.Module):
    """A stack of residual attention blocks, looped explicitly so that deep prompts can be injected.

    Input and output are batch-first ``[B, L, width]`` (the OpenAI reference is sequence-first).
    """

    def __init__(
        self,
        width: int,
        layers: int,
        heads: int,
        causal: bool = False,
        act: str = "quick_gelu",
        mlp_width: int | None = None,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.width = width
        self.layers = layers
        self.causal = causal
        self.resblocks = nn.ModuleList(
            [ResidualAttentionBlock(width, heads, causal, act, mlp_width, layer_scale) for _ in range(layers)]
        )
        # activation checkpointing (recompute each block in backward instead of keeping its activations; the same
        # operations run on the same inputs, so outputs and gradients are unchanged); PromptedCLIP sets it
        self.grad_checkpointing = False
        #: verdicts of :meth:`rows_exact` by shape key (True: the last block's kept rows alone give the full bits)
        self.rows_verdicts: dict[tuple, bool] = {}
        #: verdicts of :meth:`shared_exact` by shape key (True: computing the rows that every sequence shares once
        #: gives the bits of computing them per sequence)
        self.shared_verdicts: dict[tuple, bool] = {}

    def forward(
        self,
        x: torch.Tensor,
        deep_prompts: DeepPrompts | None = None,
        prompt_start: int | None = 1,
        record: list | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the blocks.

        Args:
            x: [B, L, width].
            deep_prompts: optional sequence; element ``i`` ([n, width] or [B, n, width], or None to skip) overwrites
                the prompt slots right before block ``i + 1``. Elements beyond ``layers - 1`` are never used.
            prompt_start: first slot index (1 = just after SOS for text); None means the last ``n`` tokens (vision).
            record: a list that receives each block's detached ``(q, k, v)`` (not with activation checkpointing).
            rows: optional index [B]: return only the rows ``out[i, rows[i]]`` [B, width] (the pooled token). The
                last block then computes only those rows after its attention where :meth:`rows_exact` found that
                this gives the full block's bits (outputs and input gradients) on this machine.

        Returns:
            [B, L, width], or [B, width] with ``rows``.

        In a causal tower, the leading positions at which every sequence holds the same input (CoOp's start-of-text
        token and shared context, for every class) keep the same states in every block; their linear layers then
        run once instead of once per sequence, where :meth:`shared_exact` found that this gives the same outputs,
        input gradients and recorded attention inputs on this machine.
        """
        shared = self.shared_length(x, deep_prompts, rows, record)
        return self._run(x, deep_prompts, prompt_start, record, rows, shared)

    def shared_length(self, x: torch.Tensor, deep_prompts: DeepPrompts | None = None,
                      rows: torch.Tensor | None = None, record: list | None = None) -> Shared | None:
        """The leading positions of ``x`` that the forward pass computes once per group of sequences, ``(n, group)``
        (:data:`Shared`; None: none): the positions that hold the same input in every sequence (of each group), in a
        causal tower with frozen weights, without deep prompts, activation checkpointing or autocast, where
        :meth:`shared_exact` holds for this shape."""
        if not self.causal or deep_prompts is not None or x.dim() != 3 or x.shape[0] < 2:
            return None
        if torch.is_autocast_enabled(x.device.type):
            return None
        grad = torch.is_grad_enabled()
        if grad and (self.grad_checkpointing or any(p.requires_grad for p in self.parameters())):
            return None
        n, group = _shared_rows(x)
        n = min(n, x.shape[1] - 1)
        if n < 1:
            return None
        return (n, group) if self.shared_exact(x, (n, group), rows, record is not None) else None

    def shared_exact(self, x: torch.Tensor, shared: Shared, rows: torch.Tensor | None, record: bool) -> bool:
        """Whether computing the ``shared`` positions once per group gives the per-sequence path's bits on this
        machine: the output, the recorded ``(q, k, v)`` and (with gradients enabled) the input gradient for one
        output gradient (from a private generator: the run's random numbers are untouched). Real arithmetic
        says yes; the matrix kernels may not (a product of fewer rows may take another kernel), so it is compared
        on this input, once per shape key, and remembered."""
        grad = torch.is_grad_enabled() and x.requires_grad
        key = (tuple(x.shape), shared, x.dtype, str(x.device), grad, rows is not None, record)
        verdict = self.shared_verdicts.get(key)
        if verdict is None:
            verdict = self._shared_match(x, shared, rows, record, grad)
            if verdict is not None:
                self.shared_verdicts[key] = verdict
        return bool(verdict)

    def _shared_match(self, x: torch.Tensor, shared: Shared, rows: torch.Tensor | None, record: bool,
                      with_grad: bool) -> bool | None:
        return _same_bits(x, with_grad, lambda x0, rec: self._run(x0, None, 1, rec, rows, None),
                          lambda x0, rec: self._run(x0, None, 1, rec, rows, shared), record)

    def _run(self, x: torch.Tensor, deep_prompts: DeepPrompts | None, prompt_start: int | None,
             record: list | None, rows: torch.Tensor | None, shared: Shared | None) -> torch.Tensor:
        last = len(self.resblocks) - 1
        for i, block in enumerate(self.resblocks):
            if deep_prompts is not None and i >= 1 and i - 1 < len(deep_prompts):
                prompt = deep_prompts[i - 1]
                if prompt is not None:
                    x = _overwrite_slots(x, prompt, prompt_start)
            if i == last and rows is not None:
                if not (self.grad_checkpointing and torch.is_grad_enabled()) and self.rows_exact(block, x, rows):
                    return block.forward_rows(x, rows, record, shared)
                rows_out = True
            else:
                rows_out = False
            if self.grad_checkpointing and torch.is_grad_enabled():
                if record is not None:
                    raise ValueError("attention inputs cannot be recorded with activation checkpointing")
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            elif record is not None or shared:
                x = block(x, record, shared)
            else:
                x = block(x)
            if rows_out:
                return _pool_at(x, rows)
        return x

    def rows_exact(self, block: ResidualAttentionBlock, x: torch.Tensor, rows: torch.Tensor) -> bool:
        """Whether ``block.forward_rows(x, rows)`` gives ``block(x)``'s rows bit for bit, and (with gradients
        enabled) the same input gradient, checked once per shape key on this input and remembered.

        The fewer rows change the matrix shapes, and whether a kernel's row results depend on the number of rows is
        the machine's business: so it is compared, not assumed (``torch.equal``; the check's output gradient comes
        from a private generator, so the run's random numbers are untouched). With gradients enabled and a
        trainable parameter in the block (its weight gradient would sum over the rows), the full block is used."""
        grad = torch.is_grad_enabled()
        if grad and any(p.requires_grad for p in block.parameters()):
            return False
        device = x.device.type
        autocast = torch.is_autocast_enabled(device)
        key = (tuple(x.shape), x.dtype, str(x.device), grad and x.requires_grad, autocast,
               torch.get_autocast_dtype(device) if autocast else None)
        verdict = self.rows_verdicts.get(key)
        if verdict is None:
            verdict = _rows_match(block, x, rows, with_grad=key[3])
            if verdict is not None:
                self.rows_verdicts[key] = verdict
        return bool(verdict)


# --------------------------------------------------------------------------------------------------------------------
# Image towers
# --------------------------------------------------------------------------------------------------------------------


class Bottleneck(nn.Module):
    """ResNet bottleneck (expansion 4) whose striding is an average pool after conv2 (anti-aliased)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu3 = nn.ReLU(inplace=True)
        self.stride = stride
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != out_planes:
            self.downsample = nn.Sequential(
                OrderedDict(
                    [
                        ("-1", nn.AvgPool2d(stride)),
                        ("0", nn.Conv2d(inplanes, out_planes, 1, stride=1, bias=False)),
                        ("1", nn.BatchNorm2d(out_planes)),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.relu2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(self.avgpool(y)))
        return self.relu3(y + shortcut)


class AttentionPool2d(nn.Module):
    """Attention pooling of a feature map: the spatial-mean token attends over [mean, all positions]."""

    def __init__(self, spacial_dim: int, embed_dim: int, num_heads: int, output_dim: int | None = None) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spacial_dim**2 + 1, embed_dim) / embed_dim**0.5)
        # The order k, q, v, c fixes the RNG draws of the default Linear inits.
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim or embed_dim)
        self.num_heads = num_heads

    def _tokens_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """[B, C, H, W] -> (tokens [B, HW+1, C] = [mean, positions] + positional embedding, keys, values
        [B, heads, HW+1, C/heads])."""
        tokens = x.flatten(2).transpose(1, 2)  # [B, HW, C]
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        if tokens.shape[1] != self.positional_embedding.shape[0]:
            raise ValueError(
                f"the attention pool expects a {math.isqrt(self.positional_embedding.shape[0] - 1)}^2 feature map "
                f"(input {32 * math.isqrt(self.positional_embedding.shape[0] - 1)} px), got {tuple(x.shape[-2:])}"
            )
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        k = _split_heads(self.k_proj(tokens), self.num_heads)
        v = _split_heads(self.v_proj(tokens), self.num_heads)
        return tokens, k, v

    def _pooled(self, tokens: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The pooled output [B, output_dim]: the mean token's query over every token."""
        q = _split_heads(self.q_proj(tokens[:, :1]), self.num_heads)
        out = _merge_heads(F.scaled_dot_product_attention(q, k, v))
        return self.c_proj(out[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, H, W] -> [B, output_dim]."""
        return self._pooled(*self._tokens_kv(x))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Every token of the pool, projected: [B, C, H, W] -> [B, HW+1, output_dim] (PLOT's local features).

        Queries come from all HW+1 tokens (as an attention layer whose output keeps every token); token 0 is
        computed by exactly the ops of :meth:`forward`, so it equals the pooled output bit for bit.
        """
        tokens, k, v = self._tokens_kv(x)
        pooled = self._pooled(tokens, k, v)  # [B, D]
        q = _split_heads(self.q_proj(tokens[:, 1:]), self.num_heads)  # the HW position tokens' queries
        out = self.c_proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))  # [B, HW, D]
        return torch.cat([pooled.unsqueeze(1), out], dim=1)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet: 3-conv stem + avgpool, four bottleneck stages, attention pooling instead of avgpool."""

    def __init__(
        self, layers: Sequence[int], output_dim: int, heads: int, input_resolution: int = 224, width: int = 64
    ) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)

        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)

        embed_dim = width * 32
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        stage = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        stage.extend(Bottleneck(self._inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*stage)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        return self.avgpool(x)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] -> the last stage's feature map [B, 32*width, R/32, R/32]."""
        x = self.stem(x.to(self.conv1.weight.dtype))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] -> [B, output_dim]."""
        return self.attnpool(self.trunk(x))

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, R, R] -> [B, (R/32)^2 + 1, output_dim]: the attention pool's full token set (token 0 = forward)."""
        return self.attnpool.forward_tokens(self.trunk(x))


class VisionTransformer(nn.Module):
    """ViT image tower with optional shallow/deep visual prompts (VPT / MaPLe style)."""

    def __init__(
        self,
        input_resolution: int,
        patch_size: int,
        width: int,
        layers: int,
        heads: int,
        output_dim: int,
        act: str = "quick_gelu",
        mlp_width: int | None = None,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        grid = input_resolution // patch_size
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid**2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act=act, mlp_width=mlp_width, layer_scale=layer_scale)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(
        self,
        x: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: DeepPrompts | None = None,
    ) -> torch.Tensor:
        """Encode images.

        Args:
            x: [B, 3, R, R].
            prompts: optional [n, width] or [B, n, width], appended after the positional embedding (before ln_pre).
            deep_prompts: optional sequence of [n, width] / [B, n, width] (or None) replacing the last n tokens
                before blocks 1, 2, ...; requires ``prompts``.

        Returns:
            [B, output_dim].
        """
        cls_rows = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        x = self.ln_post(self.trunk(x, prompts, deep_prompts, rows=cls_rows))  # the class token's final state
        return x @ self.proj

    def forward_tokens(
        self,
        x: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: DeepPrompts | None = None,
    ) -> torch.Tensor:
        """The class token and every patch token, through ``ln_post`` and ``proj``: [B, 1 + g*g, output_dim]
        (PLOT's local features; visual prompt tokens are left out). Token 0 equals :meth:`forward` bit for bit."""
        x = self.trunk(x, prompts, deep_prompts)
        pooled = self.ln_post(x[:, 0]) @ self.proj  # [B, D], the ops of forward
        patches = self.ln_post(x[:, 1 : self.positional_embedding.shape[0]]) @ self.proj  # [B, g*g, D]
        return torch.cat([pooled.unsqueeze(1), patches], dim=1)

    def trunk(
        self,
        x: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: DeepPrompts | None = None,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embedding, ``ln_pre`` and the transformer: [B, 3, R, R] -> [B, 1 + g*g (+ n prompts), width]
        (with ``rows``: only the tokens ``rows`` [B], [B, width], see :meth:`Transformer.forward`)."""
        x = self.conv1(x.to(self.conv1.weight.dtype))  # [B, w, g, g]
        x = x.flatten(2).transpose(1, 2)  # [B, g*g, w]
        if x.shape[1] + 1 != self.positional_embedding.shape[0]:
            raise ValueError(
                f"this ViT expects {self.input_resolution}x{self.input_resolution} images, got {tuple(x.shape)}"
            )
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        if prompts is not None:
            if prompts.dim() == 2:
                prompts = prompts.unsqueeze(0).expand(x.shape[0], -1, -1)
            if prompts.dim() != 3 or prompts.shape[0] != x.shape[0] or prompts.shape[-1] != x.shape[-1]:
                raise ValueError(
                    f"visual prompts must have shape [n, {x.shape[-1]}] or [{x.shape[0]}, n, {x.shape[-1]}], "
                    f"got {tuple(prompts.shape)}"
                )
            x = torch.cat([x, prompts.to(x.dtype)], dim=1)
        elif deep_prompts is not None and any(p is not None for p in deep_prompts):
            raise ValueError("deep visual prompts replace the last n prompt tokens, so `prompts` must be given too")
        if prompts is not None and deep_prompts is not None:
            n = prompts.shape[1]
            for p in deep_prompts:
                if p is not None and p.shape[-2] != n:
                    raise ValueError(f"deep visual prompts must have {n} tokens like `prompts`, got {tuple(p.shape)}")
        x = self.ln_pre(x)
        return self.transformer(x, deep_prompts=deep_prompts, prompt_start=None, rows=rows)


# --------------------------------------------------------------------------------------------------------------------
# Text path shared by CLIP and TextEncoder
# --------------------------------------------------------------------------------------------------------------------


def _pool_at(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[i, index[i]] for x [N, L, D] -> [N, D]."""
    return x[torch.arange(x.shape[0], device=x.device), index.to(x.device)]


def text_global_pool(x: torch.Tensor, tokenized: torch.Tensor) -> torch.Tensor:
    """Pool [N, L, D] hidden states at each sequence's end-of-text token (argmax of the token ids) -> [N, D]."""
    return _pool_at(x, tokenized.argmax(dim=-1))


@dataclass
class TextStates:
    """What :meth:`~_PromptTextMixin.encode_prompts` recorded of one call, for
    :meth:`~_PromptTextMixin.encode_prompts_from`: the prompt embeddings [N, keep, Dt] (detached, cut), the token
    ids [N, L], the end-of-text positions [N] and each block's attention inputs ``(q, k, v)`` [N, H, keep, Dh]."""

    prompts: torch.Tensor
    tokenized: torch.Tensor
    eot: torch.Tensor
    qkv: list


class _PromptTextMixin:
    """The text tower on prompt embeddings; needs ``transformer``, ``positional_embedding``, ``ln_final``,
    ``text_projection`` and ``dtype`` on the host module."""

    transformer: Transformer
    positional_embedding: nn.Parameter
    ln_final: LayerNorm
    text_projection: nn.Parameter
    dtype: torch.dtype

    def encode_prompts(
        self,
        prompt_embeddings: torch.Tensor,
        tokenized_prompts: torch.Tensor,
        deep_prompts: DeepPrompts | None = None,
        record: list | None = None,
    ) -> torch.Tensor:
        """Text features of embedded prompts.

        Args:
            prompt_embeddings: [N, L, Dt] token embeddings (L <= context_length), e.g. [SOS | ctx | class . EOT pad].
            tokenized_prompts: [N, L] token ids, used only to locate EOT (argmax).
            deep_prompts: optional sequence of J-1 tensors [n, Dt] or [N, n, Dt] (None entries skip a layer);
                element i overwrites positions 1..n right before block i+1. Extra elements are ignored.
            record: a list that receives this call's :class:`TextStates` (without deep prompts, causal text tower).

        Returns:
            [N, D] projected features (model dtype).

        The sequence is cut after the longest EOT position in the batch: under the causal mask the states up to
        EOT never see later tokens, so this is exact and saves most of the cost for short prompts.
        """
        dtype = self.dtype
        if prompt_embeddings.dim() != 3 or tokenized_prompts.shape != prompt_embeddings.shape[:2]:
            raise ValueError(
                "prompt_embeddings must be [N, L, D] with tokenized_prompts [N, L]; got "
                f"{tuple(prompt_embeddings.shape)} and {tuple(tokenized_prompts.shape)}"
            )
        length, context_length = prompt_embeddings.shape[1], self.positional_embedding.shape[0]
        if length > context_length:
            raise ValueError(f"prompts have {length} tokens, more than the context length {context_length}")
        eot = tokenized_prompts.argmax(dim=-1)
        keep = int(eot.max()) + 1
        if deep_prompts is not None:
            n_deep = max((p.shape[-2] for p in deep_prompts[: self.transformer.layers - 1] if p is not None), default=0)
            keep = max(keep, n_deep + 1)
        keep = min(keep, length)
        x = prompt_embeddings[:, :keep].to(dtype) + self.positional_embedding[:keep].to(dtype)
        qkv = None
        if record is not None:
            if deep_prompts is not None or not self.transformer.causal:
                raise ValueError("text states are recorded only without deep prompts, in a causal text tower")
            qkv = []
            record.append(TextStates(prompts=prompt_embeddings[:, :keep].detach(), tokenized=tokenized_prompts,
                                     eot=eot, qkv=qkv))
        x = self.transformer(x, deep_prompts=deep_prompts, prompt_start=1, record=qkv, rows=eot)
        return self._project_eot(x)

    def _project_eot(self, x: torch.Tensor) -> torch.Tensor:
        """End-of-text hidden states [N, width] -> projected features [N, D]."""
        return self.ln_final(x).to(self.dtype) @ self.text_projection.to(self.dtype)

    def encode_prompts_from(self, states: TextStates, prompt_embeddings: torch.Tensor,
                            tokenized_prompts: torch.Tensor, share: bool = True) -> torch.Tensor | None:
        """Text features of prompts that differ from the recorded ones only from some token on (e.g. one context
        vector scaled), computing only what changes: the rows from the first differing position ``t`` (the rows
        before it are the recorded ones, under the causal mask) and, in the last block, only the end-of-text rows.

        Args:
            states: recorded by :meth:`encode_prompts` for prompts of the same shape and token ids.
            prompt_embeddings / tokenized_prompts: as for :meth:`encode_prompts`.
            share: compute the rows from ``t`` that every sequence shares (a shared context after its changed
                token) once, not per sequence (:meth:`ResidualAttentionBlock.forward`'s ``shared``).

        Returns:
            [N, D], or None when this path does not apply (other shape or token ids, no difference, a difference
            at or after an end-of-text token): then call :meth:`encode_prompts`. Exact in real arithmetic; whether
            the kernels give :meth:`encode_prompts`'s bits on fewer rows depends on the machine, so a caller that
            needs the same bits compares the two once per shape (``suffix_start`` gives ``t``).
        """
        start = self.suffix_start(states, prompt_embeddings, tokenized_prompts)
        if start is None:
            return None
        keep = states.prompts.shape[1]
        dtype = self.dtype
        x = prompt_embeddings[:, start:keep].to(dtype) + self.positional_embedding[start:keep].to(dtype)
        shared = self._suffix_shared(prompt_embeddings[:, :keep], start) if share else None
        blocks = self.transformer.resblocks
        for i, (block, recorded) in enumerate(zip(blocks, states.qkv)):
            rows = states.eot - start if i == len(blocks) - 1 else None
            x = block.forward_suffix(x, start, recorded, rows, shared)
        return self._project_eot(x[:, 0])

    def _suffix_shared(self, prompts: torch.Tensor, start: int) -> Shared | None:
        """How many of the rows from ``start`` that :meth:`encode_prompts_from` computes are the same in every
        sequence, with the rows before them (e.g. a shared context after its corrupted token): computed once
        (frozen weights, no autocast; the caller compares the result with :meth:`encode_prompts` once per shape)."""
        if torch.is_autocast_enabled(prompts.device.type):
            return None
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.transformer.parameters()):
            return None
        n, group = _shared_rows(prompts)
        n = min(n, prompts.shape[1] - 1) - start
        return (n, group) if n >= 1 else None

    @staticmethod
    def suffix_start(states: TextStates, prompt_embeddings: torch.Tensor,
                     tokenized_prompts: torch.Tensor) -> int | None:
        """First token position where ``prompt_embeddings`` differ from the recorded prompts, or None when
        :meth:`encode_prompts_from` does not apply."""
        keep = states.prompts.shape[1]
        if (prompt_embeddings.dim() != 3 or prompt_embeddings.shape[0] != states.prompts.shape[0]
                or prompt_embeddings.shape[1] < keep or prompt_embeddings.shape[2:] != states.prompts.shape[2:]
                or tokenized_prompts.shape != states.tokenized.shape
                or not torch.equal(tokenized_prompts, states.tokenized)):
            return None
        differs = (prompt_embeddings[:, :keep] != states.prompts).any(dim=-1).any(dim=0)  # [keep]
        if not bool(differs.any()):
            return None
        start = int(differs.to(torch.int8).argmax())
        if start < 1 or start > int(states.eot.min()):
            return None
        return start


# --------------------------------------------------------------------------------------------------------------------
# CLIP
# --------------------------------------------------------------------------------------------------------------------


class CLIP(_PromptTextMixin, nn.Module):
    """Contrastive image/text model with OpenAI's attribute names and state-dict keys.

    The defaults of the keyword-only settings are OpenAI's architecture; open_clip's CLIP-family models set them
    (``clip/openclip.py``): ``act`` (``quick_gelu`` | ``gelu``), ``vision_heads`` (default ``vision_width // 64``,
    ResNet ``vision_width * 32 // 64``), ``vision_mlp_width`` / ``text_mlp_width`` (default ``4 * width``) and
    ``vision_layer_scale`` / ``text_layer_scale`` (LayerScale on the residual branches).
    """

    def __init__(
        self,
        embed_dim: int,
        image_resolution: int,
        vision_layers: int | Sequence[int],
        vision_width: int,
        vision_patch_size: int | None,
        context_length: int,
        vocab_size: int,
        transformer_width: int,
        transformer_heads: int,
        transformer_layers: int,
        *,
        act: str = "quick_gelu",
        vision_heads: int | None = None,
        vision_mlp_width: int | None = None,
        text_mlp_width: int | None = None,
        vision_layer_scale: bool = False,
        text_layer_scale: bool = False,
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.act = act
        #: image preprocessing the weights expect (size, mean, std, interpolation, resize_mode); None if unknown.
        self.preprocess_cfg: dict | None = None

        if isinstance(vision_layers, (tuple, list)):
            self.visual: ModifiedResNet | VisionTransformer = ModifiedResNet(
                layers=tuple(vision_layers),
                output_dim=embed_dim,
                heads=vision_heads or vision_width * 32 // 64,
                input_resolution=image_resolution,
                width=vision_width,
            )
        else:
            if vision_patch_size is None:
                raise ValueError("a ViT image tower needs vision_patch_size")
            self.visual = VisionTransformer(
                input_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                layers=vision_layers,
                heads=vision_heads or max(vision_width // 64, 1),
                output_dim=embed_dim,
                act=act,
                mlp_width=vision_mlp_width,
                layer_scale=vision_layer_scale,
            )

        self.transformer = Transformer(
            transformer_width,
            transformer_layers,
            transformer_heads,
            causal=True,
            act=act,
            mlp_width=text_mlp_width,
            layer_scale=text_layer_scale,
        )
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self) -> None:
        """Random init in the reference order (consumes the global torch RNG exactly like OpenAI's CLIP)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if isinstance(self.visual, ModifiedResNet):
            pool = self.visual.attnpool
            std = pool.c_proj.in_features**-0.5
            for lin in (pool.q_proj, pool.k_proj, pool.v_proj, pool.c_proj):
                nn.init.normal_(lin.weight, std=std)
            for stage in (self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4):
                for name, param in stage.named_parameters():
                    if name.endswith("bn3.weight"):
                        nn.init.zeros_(param)
        width, layers = self.transformer.width, self.transformer.layers
        proj_std = width**-0.5 * (2 * layers) ** -0.5
        attn_std = width**-0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def encode_image(
        self,
        image: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: DeepPrompts | None = None,
    ) -> torch.Tensor:
        """Image features [B, D] of images [B, 3, R, R]; visual prompts (ViT only) as in
        :meth:`VisionTransformer.forward`."""
        image = image.to(self.dtype)
        if isinstance(self.visual, ModifiedResNet):
            if prompts is not None or deep_prompts is not None:
                raise ValueError(
                    "visual prompts need a ViT image tower; this CLIP has a ResNet (ModifiedResNet) image encoder"
                )
            return self.visual(image)
        return self.visual(image, prompts=prompts, deep_prompts=deep_prompts)

    def encode_image_tokens(
        self,
        image: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: DeepPrompts | None = None,
    ) -> torch.Tensor:
        """Projected local image features [B, T, D] (PLOT): token 0 is :meth:`encode_image`'s output exactly.

        ModifiedResNet: the attention pool's full token set, T = HW + 1 (queries from all tokens). ViT: ``ln_post``
        and ``proj`` applied to the class token and every patch token, T = 1 + g*g (visual prompts as in
        :meth:`encode_image`, their tokens left out)."""
        image = image.to(self.dtype)
        if isinstance(self.visual, ModifiedResNet):
            if prompts is not None or deep_prompts is not None:
                raise ValueError(
                    "visual prompts need a ViT image tower; this CLIP has a ResNet (ModifiedResNet) image encoder"
                )
            return self.visual.forward_tokens(image)
        return self.visual.forward_tokens(image, prompts=prompts, deep_prompts=deep_prompts)

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Text features [N, D] of token ids [N, L]."""
        return self.encode_prompts(self.token_embedding(text).to(self.dtype), text)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits_per_image [B, N], logits_per_text [N, B])."""
        image_features = F.normalize(self.encode_image(image), dim=-1)
        text_features = F.normalize(self.encode_text(text), dim=-1)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


class TextEncoder(_PromptTextMixin, nn.Module):
    """The frozen CLIP text tower as a module: ``forward(prompts, tokenized_prompts, deep_prompts=None)``.

    Shares (does not copy) the CLIP parameters and runs exactly :meth:`CLIP.encode_prompts`.
    """

    def __init__(self, clip_model: CLIP) -> None:
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    @property
    def dtype(self) -> torch.dtype:
        return self.text_projection.dtype

    def forward(
        self,
        prompts: torch.Tensor,
        tokenized_prompts: torch.Tensor,
        deep_prompts: DeepPrompts | None = None,
    ) -> torch.Tensor:
        """[N, L, Dt] prompt embeddings + [N, L] ids -> [N, D]."""
        return self.encode_prompts(prompts, tokenized_prompts, deep_prompts)


# --------------------------------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------------------------------


def convert_weights(model: nn.Module) -> None:
    """Convert to fp16, in place, the parameters the OpenAI checkpoints store in half precision.

    Conv1d/Conv2d/Linear weights and biases, MultiheadAttention projection weights/biases and ``bias_k/v``,
    and any attribute named ``text_projection`` or ``proj``. Embeddings, LayerNorm/BatchNorm, class/positional
    embeddings and ``logit_scale`` stay fp32.
    """

    def _half(owner: nn.Module, name: str) -> None:
        value = getattr(owner, name, None)
        if isinstance(value, torch.Tensor):
            value.data = value.data.half()

    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            _half(module, "weight")
            _half(module, "bias")
        if isinstance(module, nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "bias_k", "bias_v"):
                _half(module, name)
        for name in ("text_projection", "proj"):
            _half(module, name)


_JIT_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


def _infer_sizes(state_dict: dict[str, torch.Tensor]) -> dict:
    """Every constructor argument of :class:`CLIP` from the shapes in an OpenAI-layout state dict."""
    sd = state_dict
    if "visual.proj" in sd:
        vision_width = sd["visual.conv1.weight"].shape[0]
        vision_layers: int | tuple[int, ...] = len(
            [k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")]
        )
        vision_patch_size = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        image_resolution = vision_patch_size * grid
    else:
        vision_layers = tuple(
            len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}.")}) for b in (1, 2, 3, 4)
        )
        vision_width = sd["visual.layer1.0.conv1.weight"].shape[0]
        positions = sd["visual.attnpool.positional_embedding"].shape[0]
        out = round((positions - 1) ** 0.5)
        if out**2 + 1 != positions:
            raise ValueError(f"visual.attnpool.positional_embedding has {positions} rows, not a square grid + 1")
        vision_patch_size = None
        image_resolution = out * 32
    transformer_width = sd["ln_final.weight"].shape[0]
    sizes = dict(
        embed_dim=sd["text_projection"].shape[1],
        image_resolution=image_resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=sd["positional_embedding"].shape[0],
        vocab_size=sd["token_embedding.weight"].shape[0],
        transformer_width=transformer_width,
        transformer_heads=transformer_width // 64,
        transformer_layers=len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")}),
    )
    # open_clip variants, only when present (OpenAI checkpoints never have them): MLP width, LayerScale
    text_hidden = sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    if text_hidden != 4 * transformer_width:
        sizes["text_mlp_width"] = text_hidden
    if "transformer.resblocks.0.ls_1.gamma" in sd:
        sizes["text_layer_scale"] = True
    if "visual.proj" in sd:
        vision_hidden = sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
        if vision_hidden != 4 * vision_width:
            sizes["vision_mlp_width"] = vision_hidden
        if "visual.transformer.resblocks.0.ls_1.gamma" in sd:
            sizes["vision_layer_scale"] = True
    return sizes


def build_model(state_dict: dict[str, torch.Tensor], *, fp16: bool = True, **settings) -> CLIP:
    """Build a CLIP from an OpenAI-layout state dict: sizes inferred, fp16 weights (``convert_weights``), strict load.

    The model is constructed with the reference random initialisation first (the global torch RNG is consumed as
    in the reference), then overwritten by the checkpoint. Returns the model in eval mode. Raises
    ``clip.CorruptWeightsError`` (a RuntimeError) when the dict is not a complete CLIP state dict.

    ``settings`` override inferred constructor arguments (what shapes cannot tell: ``act``, ``vision_heads``,
    ``transformer_heads``); ``fp16=False`` keeps fp32 parameters (checkpoint values loaded without rounding).
    """
    sd = {k: v for k, v in state_dict.items() if k not in _JIT_METADATA_KEYS}
    try:
        sizes = _infer_sizes(sd)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise CorruptWeightsError(f"not an OpenAI-layout CLIP state dict (cannot infer the sizes: {exc!r})") from exc
    sizes.update(settings)
    model = CLIP(**sizes)
    if fp16:
        convert_weights(model)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise CorruptWeightsError(f"the state dict does not match the CLIP architecture it describes: {exc}") from exc
    return model.eval()


def build_clip_from_config(
    embed_dim: int = 64,
    image_resolution: int = 32,
    vision_layers: int | Sequence[int] = 2,
    vision_width: int = 64,
    vision_patch_size: int | None = 8,
    context_length: int = 77,
    vocab_size: int = 49408,
    transformer_width: int = 64,
    transformer_heads: int = 1,
    transformer_layers: int = 2,
    **settings,
) -> CLIP:
    """A small random fp32 CLIP for tests (a tuple ``vision_layers`` gives a ResNet image tower), in eval mode.

    ``settings``: the keyword-only :class:`CLIP` options (``act="gelu"``, ``vision_heads``, ``vision_mlp_width``...).
    """
    return CLIP(
        embed_dim=embed_dim,
        image_resolution=image_resolution,
        vision_layers=tuple(vision_layers) if isinstance(vision_layers, (tuple, list)) else vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=context_length,
        vocab_size=vocab_size,
        transformer_width=transformer_width,
        transformer_heads=transformer_heads,
        transformer_layers=transformer_layers,
        **settings,
    ).eval()
