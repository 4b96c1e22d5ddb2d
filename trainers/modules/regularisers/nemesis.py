"""Nemesis: normalising soft-prompt vectors (Fu et al., "Nemesis: Normalizing the Soft-prompt Vectors of
Vision-Language Models", ICLR 2024).

Loss term (added to CE): ``omega(e) * (beta * N(A*1) + (1 - beta) * N(alpha_PAN))`` with

* ``n_j`` the per-position p-norm of the context (p = 1, 2, inf by ``norm_type``), ``[M]`` or ``[C, M]``;
* ``N(alpha) = sum_j alpha_j n_j / max(1, #{j: alpha_j != 0})``, summed over classes under CSC (kept
  from the reference: the penalty grows with C);
* PUN: ``alpha = A`` everywhere; PAN: ``alpha_j = pan_scale`` for sampled positions whose x``cw``
  down-scaling strictly increases the batch's top-1 hits (``"randomK"``: K random positions, no check);
* ``omega(e) = 1 - 1/(1 + exp(-0.2 (e - E/2)))`` (``omega="logistic"``) or 1 (``"constant"``).

Targets (``TARGET``): ``text`` (default) penalises ``learner.context_vectors()`` (the first-layer text context);
``vision`` penalises the input-level visual prompts ``learner.visual_prompts()[0]`` ``[n, Dv]`` (VPT's and IVLP's
own tokens, MaPLe's ``proj(ctx)``: the paper's generalisation to visual prompt tuning). PAN on the vision target
corrupts position j of the visual prompt and re-encodes the batch's images for the NP+1 copies in one image-encoder
call (the step's text features are reused: they do not depend on the visual prompts).
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import nn

from dassl.utils.errors import ConfigError

from ..norms import NORM_ORDERS, NORM_TYPES, NormType, matrix_norm, position_norms  # noqa: F401  (re-exported)
from ..options import Options, OptionError, check_choice, check_number, option
from ..prompt_learners.base import PromptOutput
from ..registry import REGULARISER_REGISTRY
from .base import Regulariser

OmegaMode = Literal["logistic", "constant"]
OMEGA_MODES = ("logistic", "constant")
Target = Literal["text", "vision"]
TARGETS = ("text", "vision")


def weighted_norm(norms: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``N(alpha) = sum_j alpha_j n_j / max(1, #nonzero alpha)``; ``norms`` ``[M]`` or ``[C, M]`` (summed over C)."""
    active = int((alpha != 0).sum().item())
    return (norms * alpha.to(norms)).sum() / max(1, active)


def logistic_omega(epoch: int, max_epoch: int, k: float = 0.2) -> float:
    """``1 - 1/(1 + exp(-k (epoch - max_epoch/2)))`` (0-based epoch)."""
    return 1.0 - 1.0 / (1.0 + math.exp(-k * (epoch - max_epoch / 2)))


def parse_np(value: Any, n_ctx: int, length_key: str = "N_CTX") -> tuple[int, bool]:
    """``NP`` -> (number of positions, random mode). Integer in [1, M] or ``"random<K>"`` (``length_key`` names M
    in the error)."""
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"NP must be an integer in [1, {n_ctx}] or 'random<K>', got {value!r}")
    if isinstance(value, str):
        m = re.fullmatch(r"random(\d+)", value.strip())
        if m:
            k, rand = int(m.group(1)), True
        elif re.fullmatch(r"\d+", value.strip()):
            k, rand = int(value), False
        else:
            raise ConfigError(f"NP must be an integer in [1, {n_ctx}] or 'random<K>', got {value!r}")
    elif isinstance(value, int):
        k, rand = value, False
    elif isinstance(value, float) and value.is_integer():
        k, rand = int(value), False
    else:
        raise ConfigError(f"NP must be an integer in [1, {n_ctx}] or 'random<K>', got {value!r}")
    if not 1 <= k <= n_ctx:
        raise ConfigError(f"NP must lie in [1, {length_key}={n_ctx}], got {value!r}")
    return k, rand


def check_beta(beta: Any) -> float:
    """BETA must be exactly 0, exactly 1 or in (0, 1)."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)):
        raise ConfigError(f"BETA must be a number in [0, 1], got {beta!r}")
    beta = float(beta)
    if not (beta == 0.0 or beta == 1.0 or 0.0 < beta < 1.0):
        raise ConfigError(f"BETA must be 0, 1 or in (0, 1), got {beta!r}")
    return beta


@dataclass
class NemesisOptions(Options):
    """Options of :class:`Nemesis` (node ``REGULARISER.NEMESIS``; ``TRAINER.CoOpNemesis.{A,NT,NP,CW,BETA}`` are the
    reference spellings for the CoOpNemesis trainer)."""

    a: Any = option(None, "A", "PUN weight (and default PAN scale); required")
    nt: str = option("two", "NT", "norm type: one | two | inf")
    np: Any = option(None, "NP", 'PAN positions: integer in [1, N_CTX] or "random<K>"')
    cw: Any = option(None, "CW", "PAN corruption (down-scaling) factor")
    beta: Any = option(None, "BETA", "1 PUN, 0 PAN, (0, 1) mix; required")
    pan_scale: Any = option(None, "PAN_SCALE", "PAN alpha value; None = A (reference: 50 for Food101/OxfordPets)")
    omega: str = option("logistic", "OMEGA", "logistic | constant (reference: constant for Food101/OxfordPets)")
    target: Any = option(None, "TARGET", "text | vision: the text context or the input-level visual prompts "
                         "(None = text, or the trainer's default: VPTNemesis vision)")

    def __post_init__(self) -> None:
        if self.a is None:
            raise OptionError("A", "(Nemesis loss weight) is required")
        if self.beta is None:
            raise OptionError("BETA", "is required: 1 (PUN), 0 (PAN) or in (0, 1)")
        for key, value in (("A", self.a), ("CW", self.cw), ("PAN_SCALE", self.pan_scale)):
            check_number(key, value, allow_none=True)
        try:
            check_beta(self.beta)
        except ConfigError as e:
            raise OptionError("BETA", str(e)) from None
        check_choice("NT", self.nt, NORM_TYPES)
        check_choice("OMEGA", self.omega, OMEGA_MODES)
        if self.target is not None:
            check_choice("TARGET", self.target, TARGETS)

    @classmethod
    def example(cls) -> "NemesisOptions":
        """A valid setting exercising PUN and PAN (A and BETA have no default)."""
        return cls(a=1.0, beta=0.5, np=1, cw=0.5)

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        return dict(a=self.a, beta=self.beta, norm_type=self.nt, n_pos=self.np, cw=self.cw,
                    pan_scale=self.pan_scale, omega=self.omega, target=self.target or "text")


@REGULARISER_REGISTRY.register(options=NemesisOptions)
class Nemesis(Regulariser):
    """PUN / PAN norm penalty on ``learner.context_vectors()`` (works for any learner exposing context), or on the
    input-level visual prompts (``target="vision"``).

    Args:
        a: PUN weight A (also the PAN scale unless ``pan_scale`` is given).
        beta: 1 = PUN only, 0 = PAN only, in between = mix.
        norm_type: "one" | "two" | "inf".
        n_pos: NP, integer in [1, M] or "random<K>" (needed when beta < 1).
        cw: PAN down-scaling factor of the corrupted pre-inference (needed for integer NP, beta < 1).
        pan_scale: PAN alpha value (default: A; the reference uses 50 for Food101/OxfordPets).
        omega: "logistic" schedule or "constant" 1.
        target: "text" (``learner.context_vectors()``) or "vision" (the input-level visual prompts).
    """

    def __init__(
        self,
        a: float,
        beta: float,
        norm_type: NormType = "two",
        n_pos: int | str | None = None,
        cw: float | None = None,
        pan_scale: float | None = None,
        omega: Literal["logistic", "constant"] = "logistic",
        target: Target = "text",
    ) -> None:
        super().__init__()
        if a is None or isinstance(a, bool) or not isinstance(a, (int, float)):
            raise ConfigError(f"Nemesis A (loss weight) must be a number, got {a!r}")
        self.beta = check_beta(beta)
        check_choice("NT", norm_type, NORM_TYPES)
        check_choice("OMEGA", omega, OMEGA_MODES)
        check_choice("TARGET", target, TARGETS)
        self.target = target
        self.a = float(a)
        self.norm_type = norm_type
        self.n_pos_value = n_pos
        self.cw = cw
        self.pan_scale = float(self.a if pan_scale is None else pan_scale)
        self.omega_mode = omega
        self.omega = 1.0
        self.n_pos = 0
        self.random_mode = False
        self._log: dict[str, float] = {}
        self.alpha = None
        self._share_copy0: dict[tuple, bool] = {}  # shape key -> copy 0 may be the step's own features
        # (shape key, first changed token) -> the suffix path is exact: True (with the rows every class shares
        # computed once), "plain" (only per class) or False
        self._suffix_exact: dict[tuple, bool | str] = {}

    @staticmethod
    def check_options(n_ctx: int | None, a=None, beta=None, n_pos=None, cw=None, target="text", **_: Any) -> None:
        """Pre-flight check of the constructor options without a model (``n_ctx``: the text context length, None
        when unknown; the vision target's prompt length is checked at :meth:`setup`)."""
        if target == "vision":
            n_ctx = None
        if a is None or isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a < 0:
            raise ConfigError(f"A (Nemesis loss weight) must be a non-negative number, got {a!r}")
        if check_beta(beta) < 1.0 and n_ctx is not None:
            _, random_mode = parse_np(n_pos, n_ctx)
            if not random_mode and (cw is None or isinstance(cw, bool) or not isinstance(cw, (int, float))
                                    or not 0.0 <= cw < 1.0):
                raise ConfigError(
                    f"CW (PAN down-scaling factor) must be a number in [0, 1) when BETA < 1, got {cw!r}"
                )

    @property
    def uses_pan(self) -> bool:
        return self.beta < 1.0

    def target_vectors(self, model: nn.Module) -> torch.Tensor | None:
        """The penalised vectors: ``[M, Dt]`` / ``[C, M, Dt]`` text context, or the visual prompts ``[n, Dv]``."""
        if self.target == "vision":
            if not getattr(model.learner, "prompts_image_tower", False):
                return None
            return model.learner.visual_prompts()[0]
        return model.learner.context_vectors()

    def setup(self, model: nn.Module, classnames: Sequence[str]) -> None:
        ctx = self.target_vectors(model)
        if ctx is None and self.target == "vision":
            raise ConfigError(
                f"Nemesis TARGET vision needs a learner with visual prompts (VPT, IVLP with PROMPT_DEPTH_VISION >= 1, "
                f"MaPLe); {type(model.learner).__name__} has none: use REGULARISER.NEMESIS.TARGET text"
            )
        if ctx is None:
            hint = " (its prompts are visual: set REGULARISER.NEMESIS.TARGET vision)" if getattr(
                model.learner, "prompts_image_tower", False) else ""
            raise ConfigError(f"Nemesis needs a learner with context vectors{hint}")
        n_ctx = ctx.shape[-2]
        if self.uses_pan:
            self.n_pos, self.random_mode = parse_np(self.n_pos_value, n_ctx,
                                                    "N_CTX_VISION" if self.target == "vision" else "N_CTX")
            if not self.random_mode and (self.cw is None or isinstance(self.cw, bool)
                                         or not isinstance(self.cw, (int, float))):
                raise ConfigError(f"Nemesis CW (PAN down-scaling factor) must be a number, got {self.cw!r}")
        self.alpha = torch.zeros(n_ctx)
        if self.uses_pan and not self.random_mode and self.target == "text" and hasattr(model, "record_text_states"):
            model.record_text_states = True  # the step's text states, for the corrupted copies' shared prefix

    def on_epoch_start(self, epoch: int, max_epoch: int) -> None:
        self.omega = logistic_omega(epoch, max_epoch) if self.omega_mode == "logistic" else 1.0

    # -- PAN ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def select_alpha(self, model: nn.Module, image_features: torch.Tensor, labels: torch.Tensor,
                     text_features: torch.Tensor | None = None) -> torch.Tensor:
        """PAN weights ``[M]``: sample NP distinct positions (Python ``random``); a position gets
        ``pan_scale`` iff scaling it by CW strictly increases the batch's correct count (random mode:
        every sampled position, without the pre-inference).

        The corrupted pre-inference reuses ``image_features`` ``[B, D]`` and encodes all (NP+1)*C
        prompts in one text call. ``text_features``: the step's own text features (``[C, D]`` or ``[B, C, D]``,
        from the same context). Once per shape, the full call is compared with the step's features (copy 0) and
        with a call of the NP corrupted copies alone; when both are bit-identical (the kernels' rows do not depend
        on the batch size), later steps skip copy 0 and encode only NP*C prompts -- the same alphas, exactly.
        Each corrupted copy then equals the step's prompts before its corrupted token, so the text tower computes
        only the rows from there (the states before it are the step's own, recorded by the model) and only the
        end-of-text rows in the last block (:meth:`~clip.model.CLIP.encode_prompts_from`); this too is used once
        it gave the full call's bits for that shape and corrupted token.
        """
        states = model.pop_text_states() if hasattr(model, "pop_text_states") else None
        ctx = model.learner.context_vectors().detach()
        n_ctx = ctx.shape[-2]
        alpha = torch.zeros(n_ctx)
        positions = random.sample(range(n_ctx), self.n_pos)
        if self.random_mode:
            alpha[positions] = self.pan_scale
            return alpha
        stack = ctx.unsqueeze(0).repeat(len(positions) + 1, *([1] * ctx.dim())).clone()  # [K+1, (C,) M, Dt]
        for k, j in enumerate(positions, start=1):
            stack[k].select(-2, j).mul_(self.cw)  # corrupt position j (position axis -2, CSC safe)
        key = (tuple(stack.shape), tuple(image_features.shape), stack.dtype, str(stack.device))
        own = None if text_features is None else text_features.detach()
        if own is not None and self._share_copy0.get(key):
            feats = torch.cat([own.unsqueeze(0), self._encode_corrupted(model, stack[1:], image_features, states,
                                                                       key)])
        else:
            feats = self._encode_copies(model, stack, image_features)  # [K+1, C, D] or [K+1, B, C, D]
            if own is not None and key not in self._share_copy0:  # once per shape: is sharing exact here?
                part = self._encode_copies(model, stack[1:], image_features)
                self._share_copy0[key] = (own.shape == feats[0].shape and torch.equal(own, feats[0])
                                          and torch.equal(part, feats[1:]))
        # one host sync for all copies
        hits = torch.stack([(model.head(image_features, feats[k]).argmax(dim=-1) == labels).sum()
                            for k in range(feats.shape[0])]).tolist()
        for k, j in enumerate(positions, start=1):
            if hits[k] > hits[0]:
                alpha[j] = self.pan_scale
        return alpha

    def _encode_corrupted(self, model: nn.Module, stack: torch.Tensor, image_features: torch.Tensor, states,
                          key: tuple) -> torch.Tensor:
        """Text features ``[K, C, D]`` of the corrupted copies ``stack`` ``[K, (C,) M, Dt]``: from the step's
        recorded ``states`` (only the rows from each copy's corrupted token) when that was checked to be exact for
        every copy's shape, else one full call (checking the shapes not seen yet against it)."""
        if states is None or not hasattr(model, "text_states_apply"):
            return self._encode_copies(model, stack, image_features)
        clip_model = model.clip
        out = model.learner.with_context(stack, image_features=image_features)
        copies = stack.shape[0]
        if out.prompts.dim() == 4:  # image-conditioned: [K*B, C, L, Dt], one call of B*C prompts per copy
            per_copy = (image_features.shape[0], out.prompts.shape[1])  # features [B, C, D]
            prompts = out.prompts.view(copies, -1, *out.prompts.shape[2:])  # [K, B*C, L, Dt]
            tokenized = out.tokenized_prompts.repeat(per_copy[0], 1).expand(copies, -1, -1)  # [K, B*C, L]
        else:  # [K*N, L, Dt]
            per_copy = (out.prompts.shape[0] // copies,)  # features [N, D]
            prompts = out.prompts.view(copies, -1, *out.prompts.shape[1:])
            tokenized = out.tokenized_prompts.view(copies, -1, out.tokenized_prompts.shape[-1])
        if not model.text_states_apply(out):  # template ensembles, deep prompts, prompt sets averaged by the model
            return self._encode_copies(model, stack, image_features, out)
        starts = [clip_model.suffix_start(states, prompts[k], tokenized[k]) for k in range(copies)]
        keys = [(key, tuple(states.prompts.shape), start) for start in starts]
        if all(start is not None and self._suffix_exact.get(k) for start, k in zip(starts, keys)):
            return torch.stack([clip_model.encode_prompts_from(states, prompts[k], tokenized[k],
                                                               share=self._suffix_exact[keys[k]] is True)
                                .view(*per_copy, -1) for k in range(copies)])
        full = self._encode_copies(model, stack, image_features, out)  # [K, C, D] or [K, B, C, D]
        for k, (start, skey) in enumerate(zip(starts, keys)):
            if start is not None and skey not in self._suffix_exact:  # once per shape and token: exact here?
                # True: exact with the rows every class shares computed once; "plain": exact only per class
                self._suffix_exact[skey] = False
                for verdict, share in ((True, True), ("plain", False)):
                    fast = clip_model.encode_prompts_from(states, prompts[k], tokenized[k], share=share)
                    if fast is not None and fast.numel() == full[k].numel() and torch.equal(
                            fast.view(full[k].shape), full[k]):
                        self._suffix_exact[skey] = verdict
                        break
        return full

    @staticmethod
    def _encode_copies(model: nn.Module, stack: torch.Tensor, image_features: torch.Tensor,
                       out: PromptOutput | None = None) -> torch.Tensor:
        """Text features of a context stack ``[K, (C,) M, Dt]``: ``[K, C, D]`` or ``[K, B, C, D]`` (``out``: the
        learner's prompts of ``stack`` when already built)."""
        # image-conditioned learners (CoCoOp) corrupt the shared ctx, then add each image's bias
        if out is None:
            out = model.learner.with_context(stack, image_features=image_features)  # [K*C | K*B, (C,) L, Dt]
        feats = model.encode_text(out)  # [K*C, D] or [K*B, C, D]
        if feats.dim() == 3:  # per-image text features
            return feats.view(stack.shape[0], image_features.shape[0], *feats.shape[1:])
        return feats.view(stack.shape[0], -1, feats.shape[-1])

    @torch.no_grad()
    def select_alpha_vision(self, model: nn.Module, images: torch.Tensor, text_features: torch.Tensor,
                            labels: torch.Tensor) -> torch.Tensor:
        """PAN weights ``[n]`` of the vision target: as :meth:`select_alpha`, the copies scaling position j of the
        input-level visual prompt ``[n, Dv]`` by CW (deep visual prompts unchanged). The (NP+1)*B images go through
        the image encoder in one call (per-image prompts ``[(NP+1)*B, n, Dv]``, copy-major); ``text_features`` (this
        step's, ``[C, D]``) are reused for every copy."""
        visual, deep = model.learner.visual_prompts()
        visual = visual.detach()
        deep = [p.detach() if p is not None else None for p in deep] if deep is not None else None
        n_ctx = visual.shape[-2]
        alpha = torch.zeros(n_ctx)
        positions = random.sample(range(n_ctx), self.n_pos)
        if self.random_mode:
            alpha[positions] = self.pan_scale
            return alpha
        copies = len(positions) + 1
        stack = visual.unsqueeze(0).repeat(copies, 1, 1).clone()  # [K+1, n, Dv]
        for k, j in enumerate(positions, start=1):
            stack[k, j].mul_(self.cw)  # corrupt visual prompt position j
        b = images.shape[0]
        prompts = PromptOutput(prompts=None, tokenized_prompts=None, deep_visual_prompts=deep,
                               visual_prompts=stack.repeat_interleave(b, dim=0))  # [(K+1)*B, n, Dv]
        feats = model.encode_image(images.repeat(copies, *([1] * (images.dim() - 1))), prompts)  # [(K+1)*B, D]
        feats = feats.view(copies, b, *feats.shape[1:])  # [K+1, B, D] ([K+1, B, T, D]: local features, PLOT head)
        hits = []
        for k in range(copies):
            logits = model.head(feats[k], text_features)  # [B, C]
            hits.append(int((logits.argmax(dim=-1) == labels).sum().item()))
        for k, j in enumerate(positions, start=1):
            if hits[k] > hits[0]:
                alpha[j] = self.pan_scale
        return alpha

    def forward(self, model: nn.Module, output: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        ctx = self.target_vectors(model)
        norms = position_norms(ctx, self.norm_type)  # [M] or [C, M]
        n_ctx = ctx.shape[-2]
        loss = norms.new_zeros(())
        if self.beta > 0:
            loss = loss + self.beta * weighted_norm(norms, torch.full((n_ctx,), self.a))
        if self.uses_pan and self.target == "vision":
            self.alpha = self.select_alpha_vision(model, batch["img"], output.text_features.detach(), batch["label"])
            loss = loss + (1.0 - self.beta) * weighted_norm(norms, self.alpha)
        elif self.uses_pan:
            self.alpha = self.select_alpha(model, output.image_features.detach(), batch["label"],
                                           getattr(output, "text_features", None))
            loss = loss + (1.0 - self.beta) * weighted_norm(norms, self.alpha)
        else:
            self.alpha = torch.full((n_ctx,), self.a)
        loss = self.omega * loss
        with torch.no_grad():  # this step's norms of type NT (before the update), under their own names
            log = {"nemesis_matrix_norm": float(matrix_norm(ctx, self.norm_type))}
            per_pos = norms.detach().reshape(-1, n_ctx).mean(dim=0)
            log.update({f"nemesis_v{i}_norm": float(v) for i, v in enumerate(per_pos)})
            log["omega"] = self.omega
            log.update({f"alpha_{i}": float(v) for i, v in enumerate(self.alpha)})
        self._log = log
        return {"norm_loss": loss}

    def log_values(self) -> dict[str, float]:
        """``nemesis_matrix_norm`` / ``nemesis_v{i}_norm`` (the NT norms of the step's targeted vectors, before the
        update; the trainer logs the L2 ``matrix_norm`` / ``v{i}_norm`` after it), ``omega``, ``alpha_{i}``."""
        return dict(self._log)

    def epoch_record(self) -> dict[str, Any]:
        """``{"alpha": [alpha_0, ...]}`` of the epoch's last step (the ``norms.jsonl`` field)."""
        return {"alpha": [float(v) for v in self.alpha]} if self.alpha is not None and self._log else {}
