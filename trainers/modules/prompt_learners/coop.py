"""CoOp's learnable context (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import nn

from clip import clip
from clip.simple_tokenizer import SimpleTokenizer
from dassl.utils.errors import ConfigError

from ..options import OptionError, Options, check_bool, check_choice, option
from ..registry import PROMPT_LEARNER_REGISTRY
from .base import PromptLearner, PromptOutput

logger = logging.getLogger(__name__)

ClassTokenPosition = Literal["end", "middle", "front"]
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")


#: what a boolean ``CTX_INIT: True`` means (KgCoOp configs; the reference always used this phrase)
DEFAULT_CTX_INIT_PHRASE = "a photo of a"


def normalise_ctx_init(value: Any, key: str = "CTX_INIT") -> str:
    """``True`` -> "a photo of a"; ``None``/``False``/"" -> "" (random init); a string is used as given."""
    if value is None or value is False:
        return ""
    if value is True:
        return DEFAULT_CTX_INIT_PHRASE
    if not isinstance(value, str):
        raise OptionError(key, f"must be a string or a boolean, got {value!r}")
    return value


def check_n_ctx(n_ctx: Any, ctx_init: str) -> None:
    """M: a positive integer (any integer when ``ctx_init`` sets M)."""
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or (n_ctx < 1 and not ctx_init):
        raise OptionError("N_CTX", f"must be a positive integer, got {n_ctx!r}")


@dataclass
class CoOpOptions(Options):
    """Options of :class:`CoOpPromptLearner` (node ``MODEL.PROMPT_LEARNER``)."""

    n_ctx: int = option(16, "N_CTX", "number of context tokens M (ignored when CTX_INIT is given)")
    ctx_init: Any = option("", "CTX_INIT", 'initialisation words, e.g. "a photo of a" (True: that phrase)')
    csc: bool = option(False, "CSC", "class-specific context")
    class_token_position: str = option("end", "CLASS_TOKEN_POSITION", "end | middle | front")

    def __post_init__(self) -> None:
        self.ctx_init = normalise_ctx_init(self.ctx_init)
        check_n_ctx(self.n_ctx, self.ctx_init)
        check_bool("CSC", self.csc)
        check_choice("CLASS_TOKEN_POSITION", self.class_token_position, CLASS_TOKEN_POSITIONS)


def _tokenizer() -> SimpleTokenizer:
    return clip._get_tokenizer()  # the process-wide instance clip.tokenize uses (building one reads the BPE file)


def _tokenize(texts: list[str]) -> torch.Tensor:
    return clip.tokenize(texts)


@PROMPT_LEARNER_REGISTRY.register(options=CoOpOptions)
class CoOpPromptLearner(PromptLearner):
    """Learnable context vectors shared by all classes (or class-specific, CSC).

    Prompt layout (L = 77 tokens, M = ``n_ctx``), per class c with its name tokens ``[name_c]``:

    * ``end``:    ``[SOS | ctx_1..M | name_c . EOS pad]``
    * ``middle``: ``[SOS | ctx_1..M/2 | name_c | ctx_M/2+1..M | . EOS pad]``
    * ``front``:  ``[SOS | name_c | ctx_1..M | . EOS pad]``

    Args:
        classnames: the C class names.
        clip_model: frozen CLIP; its ``token_embedding`` embeds the fixed tokens and ``dtype`` sets the
            context dtype (fp16 CLIP -> fp16 context, as in the reference).
        n_ctx: M, ignored when ``ctx_init`` is given (M = number of its words).
        ctx_init: initialisation phrase such as "a photo of a"; context = its token embeddings at
            positions ``1..M``. With ``csc`` every class-specific context starts from these words (the
            reference silently ignores CSC here).
        csc: class-specific context ``[C, M, Dt]`` instead of ``[M, Dt]``.
        class_token_position: "end" | "middle" | "front".
        init_std: std of the random N(0, std^2) initialisation.

    ``forward()`` returns prompts ``[C, L, Dt]``; ``with_context(ctx)`` accepts ``[M, Dt]``/``[C, M, Dt]``
    or a stack ``[K, M, Dt]``/``[K, C, M, Dt]`` and returns ``[K*C, L, Dt]`` (context-major).
    """

    @staticmethod
    def context_length(n_ctx: int, ctx_init: str = "") -> int:
        """Context vectors this learner builds from ``N_CTX``/``CTX_INIT`` (used by the pre-flight checks)."""
        ctx_init = (ctx_init or "").replace("_", " ").strip()
        return len(ctx_init.split(" ")) if ctx_init else int(n_ctx)

    def __init__(
        self,
        classnames: Sequence[str],
        clip_model: nn.Module,
        n_ctx: int = 16,
        ctx_init: str = "",
        csc: bool = False,
        class_token_position: ClassTokenPosition = "end",
        init_std: float = 0.02,
    ) -> None:
        super().__init__(classnames, clip_model)
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ConfigError(
                f"CLASS_TOKEN_POSITION must be one of {CLASS_TOKEN_POSITIONS}, got {class_token_position!r}"
            )
        ctx_vectors, n_ctx, prompt_prefix = self._initial_context(clip_model, n_ctx, ctx_init, csc, (), init_std)
        self.n_ctx = n_ctx
        self.ctx_dim = ctx_vectors.shape[-1]
        self.csc = bool(csc)
        self.class_token_position = class_token_position
        self.ctx = nn.Parameter(ctx_vectors.to(clip_model.token_embedding.weight.device))  # reference key "ctx"
        self._register_class_buffers(clip_model, prompt_prefix, n_ctx, class_token_position)

    def _initial_context(self, clip_model: nn.Module, n_ctx: int, ctx_init: str, csc: bool, sets: tuple[int, ...],
                         init_std: float) -> tuple[torch.Tensor, int, str]:
        """``(ctx [(C,) *sets, M, Dt], M, prompt prefix)``: the token embeddings of ``ctx_init`` (copied to every
        class under CSC and every prompt set), else one ``normal_(std=init_std)`` draw on the whole shape (the
        reference's random-number consumption) with the prefix ``"X X ... X"``."""
        dtype = clip_model.dtype
        ctx_dim = clip_model.ln_final.weight.shape[0]
        n_cls = len(self.classnames)
        ctx_init = (ctx_init or "").replace("_", " ").strip()
        embed = clip_model.token_embedding
        if ctx_init:
            n_ctx = len(ctx_init.split(" "))
            with torch.no_grad():
                init_emb = embed(_tokenize([ctx_init]).to(embed.weight.device)).type(dtype)  # [1, L, Dt]
            ctx_vectors = init_emb[0, 1 : 1 + n_ctx, :].clone()  # [M, Dt]
            lead = ((n_cls,) if csc else ()) + tuple(sets)
            if lead:
                ctx_vectors = ctx_vectors.expand(*lead, -1, -1).clone()  # [(C,) *sets, M, Dt]
            prompt_prefix = ctx_init
            logger.info(f'Initial context: "{ctx_init}"')
        else:
            if int(n_ctx) < 1:
                raise ConfigError(f"N_CTX must be >= 1, got {n_ctx}")
            n_ctx = int(n_ctx)
            shape = ((n_cls,) if csc else ()) + tuple(sets) + (n_ctx, ctx_dim)
            ctx_vectors = torch.empty(*shape, dtype=dtype)
            nn.init.normal_(ctx_vectors, std=init_std)
            prompt_prefix = " ".join(["X"] * n_ctx)
            logger.info("Initializing class-specific contexts" if csc else "Initializing a generic context")
            logger.info(f'Initial context: "{prompt_prefix}"')
        logger.info(f"Number of context words (tokens): {n_ctx}")
        return ctx_vectors, n_ctx, prompt_prefix

    def _register_class_buffers(self, clip_model: nn.Module, prompt_prefix: str, n_ctx: int,
                                class_token_position: str) -> None:
        """(Also used by learners built on other bases: ``CoOpPromptLearner._register_class_buffers(self, ...)``.)
        The class-dependent buffers (not checkpointed): ``token_prefix`` (SOS) ``[C, 1, Dt]``, ``token_suffix``
        ``[C, L-1-M, Dt]``, ``tokenized_prompts`` ``[C, L]`` of ``"<prefix> <name>."``, ``name_lens`` and the
        ``position_index`` permutation of the class-token position (None for ``end``)."""
        embed = clip_model.token_embedding
        tok = _tokenizer()
        name_lens = [len(tok.encode(name)) for name in self.classnames]
        _check_prompt_fits(n_ctx, name_lens, self.classnames, int(getattr(clip_model, "context_length", 77)))
        prompts = [f"{prompt_prefix} {name}." for name in self.classnames]
        tokenized = _tokenize(prompts).to(embed.weight.device)  # [C, L]
        with torch.no_grad():
            embedding = embed(tokenized).type(clip_model.dtype)  # [C, L, Dt]
        self.register_buffer("token_prefix", embedding[:, :1, :].clone(), persistent=False)  # SOS [C, 1, Dt]
        self.register_buffer("token_suffix", embedding[:, 1 + n_ctx :, :].clone(), persistent=False)  # [C, L-1-M, Dt]
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)  # [C, L]
        self.name_lens = name_lens
        index = CoOpPromptLearner._position_index(tokenized.shape[1], n_ctx, name_lens, class_token_position)
        self.register_buffer("position_index", index, persistent=False)  # [C, L] or None

    @staticmethod
    def _position_index(length: int, m: int, name_lens: list[int], position: str) -> torch.Tensor | None:
        """Per-class permutation of the end layout ``[SOS | ctx | name . EOS pad]`` into ``position``."""
        if position == "end":
            return None
        rows = []
        half = m // 2
        for n in name_lens:
            ctx = list(range(1, 1 + m))
            name = list(range(1 + m, 1 + m + n))
            rest = list(range(1 + m + n, length))
            if position == "middle":
                order = [0] + ctx[:half] + name + ctx[half:] + rest
            else:  # front
                order = [0] + name + ctx + rest
            rows.append(order[:length])
        return torch.tensor(rows, dtype=torch.long)

    def context_vectors(self) -> torch.Tensor:
        return self.ctx

    def assemble(self, ctx: torch.Tensor) -> torch.Tensor:
        """Embedded prompts for a context with arbitrary leading dims.

        Args:
            ctx: ``[*lead, M, Dt]`` (generic) or ``[*lead, C, M, Dt]`` (CSC).
        Returns:
            ``[*lead, C, L, Dt]``.
        """
        n_cls = self.n_cls
        if not self.csc:
            ctx = ctx.unsqueeze(-3).expand(*ctx.shape[:-2], n_cls, *ctx.shape[-2:])  # [*lead, C, M, Dt]
        lead = ctx.shape[:-3]
        prefix = self.token_prefix.expand(*lead, *self.token_prefix.shape)  # [*lead, C, 1, Dt]
        suffix = self.token_suffix.expand(*lead, *self.token_suffix.shape)  # [*lead, C, L-1-M, Dt]
        prompts = torch.cat([prefix, ctx.to(prefix.dtype), suffix], dim=-2)  # [*lead, C, L, Dt] (end layout)
        if self.position_index is not None:
            index = self.position_index.view(*([1] * len(lead)), n_cls, -1, 1)
            index = index.expand(*lead, n_cls, prompts.shape[-2], prompts.shape[-1])
            prompts = torch.gather(prompts, -2, index)  # reorder tokens per class
        return prompts

    def forward(self, image_features: torch.Tensor | None = None) -> PromptOutput:
        return PromptOutput(prompts=self.assemble(self.ctx), tokenized_prompts=self.tokenized_prompts)

    def with_context(self, ctx: torch.Tensor, image_features: torch.Tensor | None = None) -> PromptOutput:
        base_dim = self.ctx.dim()
        if ctx.dim() == base_dim:
            return PromptOutput(prompts=self.assemble(ctx), tokenized_prompts=self.tokenized_prompts)
        if ctx.dim() != base_dim + 1 or ctx.shape[1:] != self.ctx.shape:
            raise ValueError(f"with_context expects {tuple(self.ctx.shape)} or [K, ...] of it, got {tuple(ctx.shape)}")
        k = ctx.shape[0]
        prompts = self.assemble(ctx)  # [K, C, L, Dt]
        return PromptOutput(
            prompts=prompts.reshape(k * self.n_cls, *prompts.shape[-2:]),  # [K*C, L, Dt]
            tokenized_prompts=self.tokenized_prompts.repeat(k, 1),  # [K*C, L]
        )


def _check_prompt_fits(n_ctx: int, name_lens: Sequence[int], classnames: Sequence[str], context_length: int) -> None:
    """``SOT + n_ctx + class-name tokens + '.' + EOT`` must fit the text context (a ConfigError naming N_CTX)."""
    if not name_lens:
        return
    longest = max(range(len(name_lens)), key=lambda i: name_lens[i])
    need = n_ctx + name_lens[longest] + 3
    if need > context_length:
        raise ConfigError(
            f"N_CTX = {n_ctx} is too large: the prompt for class {classnames[longest]!r} needs {need} tokens, "
            f"CLIP's text context holds {context_length}; use N_CTX <= {context_length - 3 - name_lens[longest]}"
        )

