"""The trainers' config: canonical component nodes, the reference forks' spellings, and their resolution.

Canonical nodes (what the components read, each key declared next to its component's code by its options
dataclass and added by :func:`trainers.modules.registry.add_component_cfg`; None = the component's default):

* ``MODEL.PROMPT_LEARNER.{NAME, N_CTX, CTX_INIT, CSC, CLASS_TOKEN_POSITION, PROMPT_DEPTH, TEMPLATE, ENSEMBLE,
  TEXT_CHUNK}`` (``NAME`` "" = the trainer's learner), ``TRAINER.PREC`` (fp16 | fp32 | amp),
* ``MODEL.HEAD.NAME`` ("" = the trainer's head; ``--head``) and ``MODEL.HEAD.<HEAD>.*`` (e.g. ``MODEL.HEAD.DEPT``),
* ``REGULARISERS.NAMES`` (added to the trainer's own) and ``REGULARISER.<NAME>.*``.

Reference spellings (the forks' YAMLs and command lines run unchanged): the trainer nodes ``TRAINER.COOP``,
``TRAINER.CoOp``, ``TRAINER.CoOpNemesis``, ``TRAINER.CoOpCRT``, ``TRAINER.COCOOP``, ``TRAINER.MAPLE``,
``TRAINER.IVLP``, ``TRAINER.VPT``, ``TRAINER.ZSCLIP``, ``TRAINER.PLOT``, ``TRAINER.PLOTNemesis`` (``N`` =
``MODEL.PROMPT_LEARNER.N_SETS``) (read by the trainers that list them in ``REFERENCE_NODES``), and for every trainer DePT's
``TRAINER.LINEAR_PROBE.*`` / ``TRAINER.FILM.LINEAR_PROBE`` / ``OPTIM.LR_EXP`` and KgCoOp's ``TRAINER.COOP.W``.

:func:`resolve_cfg` runs once right after merging and fills each canonical key: a value the user wrote (in any
YAML or on the command line, under any of its spellings) beats a default; of two written spellings the one of the
later source in the merge order wins; one source writing two spellings with different values is an error naming
both. The decision uses where a value was written (``dassl.config.sources``), never its value.
"""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode as CN

from clip.clip import PRECISIONS
from clip.config import finalize_backbone_cfg
from dassl.config import get_cfg_default
from dassl.config.sources import ConfigSources, has_key
from dassl.engine import TRAINER_REGISTRY
from dassl.utils.errors import ConfigError

from .modules.options import cfg_node
from .modules.prompt_learners.coop import DEFAULT_CTX_INIT_PHRASE, normalise_ctx_init
from .modules.registry import HEAD_REGISTRY, PROMPT_LEARNER_REGISTRY, REGULARISER_REGISTRY, add_component_cfg

__all__ = ["add_trainer_cfg", "resolve_cfg", "spellings", "PRECISIONS", "DEFAULT_CTX_INIT_PHRASE",
           "normalise_ctx_init", "resolve_prompt_node", "nemesis_options", "kgcoop_options", "dept_options",
           "label_space", "PROMPT_DEFAULTS"]

#: defaults of the five prompt keys in the reference trainer nodes
PROMPT_DEFAULTS = {
    "N_CTX": 16,  # number of context tokens M
    "CSC": False,  # class-specific context
    "CTX_INIT": "",  # initialisation words, e.g. "a photo of a" (sets M)
    "PREC": "fp16",  # fp16 | fp32 | amp
    "CLASS_TOKEN_POSITION": "end",  # end | middle | front
}

#: leaf key of a reference trainer node -> canonical key
REFERENCE_KEYS = {
    "N_CTX": "MODEL.PROMPT_LEARNER.N_CTX",
    "CSC": "MODEL.PROMPT_LEARNER.CSC",
    "CTX_INIT": "MODEL.PROMPT_LEARNER.CTX_INIT",
    "CLASS_TOKEN_POSITION": "MODEL.PROMPT_LEARNER.CLASS_TOKEN_POSITION",
    "PROMPT_DEPTH": "MODEL.PROMPT_LEARNER.PROMPT_DEPTH",
    "N_CTX_TEXT": "MODEL.PROMPT_LEARNER.N_CTX",  # IVLP: the text context is the CoOp-style N_CTX
    "PROMPT_DEPTH_TEXT": "MODEL.PROMPT_LEARNER.PROMPT_DEPTH_TEXT",
    "N_CTX_VISION": "MODEL.PROMPT_LEARNER.N_CTX_VISION",
    "PROMPT_DEPTH_VISION": "MODEL.PROMPT_LEARNER.PROMPT_DEPTH_VISION",
    "TEXT_CHUNK": "MODEL.PROMPT_LEARNER.TEXT_CHUNK",
    "TEXT_CHECKPOINT": "MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT",
    "TEMPLATE": "MODEL.PROMPT_LEARNER.TEMPLATE",
    "PREC": "TRAINER.PREC",
    "N": "MODEL.PROMPT_LEARNER.N_SETS",  # PLOT's number of prompt sets
    "A": "REGULARISER.NEMESIS.A",
    "NT": "REGULARISER.NEMESIS.NT",
    "NP": "REGULARISER.NEMESIS.NP",
    "CW": "REGULARISER.NEMESIS.CW",
    "BETA": "REGULARISER.NEMESIS.BETA",
}

#: canonical key -> reference spellings read by every trainer
GLOBAL_SPELLINGS = {
    "MODEL.HEAD.DEPT.TYPE": ("TRAINER.LINEAR_PROBE.TYPE",),
    "MODEL.HEAD.DEPT.WEIGHT": ("TRAINER.LINEAR_PROBE.WEIGHT",),
    "MODEL.HEAD.DEPT.TEST_TIME_FUSION": ("TRAINER.LINEAR_PROBE.TEST_TIME_FUSION",),
    "MODEL.HEAD.DEPT.LABEL_SPACE": ("TRAINER.LINEAR_PROBE.LABEL_SPACE",),
    "MODEL.HEAD.DEPT.FILM": ("TRAINER.FILM.LINEAR_PROBE",),
    "MODEL.HEAD.DEPT.LR_MULT": ("OPTIM.LR_EXP",),
    "REGULARISER.KGCOOP.W": ("TRAINER.COOP.W",),
}


def _prompt_node(**extra: Any) -> CN:
    node = CN()
    for k, v in PROMPT_DEFAULTS.items():
        setattr(node, k, v)
    for k, v in extra.items():
        setattr(node, k, v)
    return node


def add_trainer_cfg(cfg) -> None:
    """Add the canonical component nodes and the reference spellings to a (not frozen) Dassl config."""
    # -- canonical -----------------------------------------------------------------------------------
    cfg.MODEL.PROMPT_LEARNER = CN()
    cfg.MODEL.PROMPT_LEARNER.NAME = ""  # "" = the trainer's learner (e.g. CoOpPromptLearner)
    # images per text-encoder call for image-conditioned learners (0 = one batched call of B*C sequences;
    # 1 = the CoCoOp reference's per-image loop; same features either way)
    cfg.MODEL.PROMPT_LEARNER.TEXT_CHUNK = 0
    # activation checkpointing of the text tower (exact; less memory for image-conditioned learners, more compute)
    cfg.MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT = False
    cfg.TRAINER.PREC = "fp16"  # fp16 | fp32 | amp (CLIP's precision; on CPU fp16 runs as fp32)
    cfg.REGULARISERS = CN()
    cfg.REGULARISERS.NAMES = []  # e.g. ["Nemesis"]: added to the trainer's own regularisers
    cfg.REGULARISER = CN()
    add_component_cfg(cfg)  # MODEL.PROMPT_LEARNER.*, MODEL.HEAD.<HEAD>.*, REGULARISER.<NAME>.* from the options

    # -- reference spellings (mapped onto the canonical keys by resolve_cfg) -----------------------------
    cfg.TRAINER.COOP = _prompt_node()
    cfg.TRAINER.COOP.CTX_INIT = None  # None/False/"" random, True = "a photo of a" (KgCoOp YAMLs), else the words
    cfg.TRAINER.COOP.W = 1.0  # KgCoOp: weight of the knowledge-guided term (= REGULARISER.KGCOOP.W)
    cfg.TRAINER.COOP.ALPHA = 1.0  # KgCoOp reference key, unused
    cfg.TRAINER.CoOp = _prompt_node()  # Nemesis-fork spelling of TRAINER.COOP
    # A, NT, NP, CW, BETA: REGULARISER.NEMESIS.*; None defaults accept any type (e.g. NP random4)
    cfg.TRAINER.CoOpNemesis = _prompt_node(A=None, NT="two", NP=None, CW=None, BETA=None)
    cfg.TRAINER.CoOpCRT = _prompt_node()
    # PLOT (N prompt sets, optimal transport) and PLOT + Nemesis: the Nemesis fork's nodes
    cfg.TRAINER.PLOT = _prompt_node(N=4)
    cfg.TRAINER.PLOTNemesis = _prompt_node(N=4, A=None, NT="two", NP=None, CW=None, BETA=None)
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"
    cfg.TRAINER.COCOOP.TEXT_CHUNK = 0
    cfg.TRAINER.COCOOP.TEXT_CHECKPOINT = False
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
    cfg.TRAINER.MAPLE.PREC = "fp16"
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9
    # the MaPLe repository's IVLP and VPT (its code defaults)
    cfg.TRAINER.IVLP = CN()
    cfg.TRAINER.IVLP.N_CTX_VISION = 2
    cfg.TRAINER.IVLP.N_CTX_TEXT = 2
    cfg.TRAINER.IVLP.CTX_INIT = "a photo of a"
    cfg.TRAINER.IVLP.PREC = "fp16"
    cfg.TRAINER.IVLP.PROMPT_DEPTH_VISION = 9
    cfg.TRAINER.IVLP.PROMPT_DEPTH_TEXT = 9
    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX_VISION = 2
    cfg.TRAINER.VPT.CTX_INIT = "a photo of a"
    cfg.TRAINER.VPT.PREC = "fp32"  # the reference casts VPT's CLIP to fp32 (the VPT trainer's default)
    cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 1
    # DePT (Zhang et al., CVPR 2024 "DePT: Decoupled Prompt Tuning"): the head's reference keys
    cfg.TRAINER.LINEAR_PROBE = CN()
    cfg.TRAINER.LINEAR_PROBE.TYPE = "linear"
    cfg.TRAINER.LINEAR_PROBE.WEIGHT = 0.7
    cfg.TRAINER.LINEAR_PROBE.TEST_TIME_FUSION = True
    cfg.TRAINER.LINEAR_PROBE.LABEL_SPACE = ""  # the ImageNet-family dataset YAMLs set "imagenet"
    cfg.TRAINER.FILM = CN()
    cfg.TRAINER.FILM.LINEAR_PROBE = True
    cfg.OPTIM.LR_EXP = 6.5
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.TEMPLATE = ""
    cfg.TRAINER.ZSCLIP.PREC = "fp16"


extend_cfg = add_trainer_cfg


def _set(cfg, key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value


def spellings(trainer_cls: type | None) -> dict[str, list[str]]:
    """Canonical key -> its spellings for ``trainer_cls`` (the canonical key itself first)."""
    out: dict[str, list[str]] = {k: [k, *refs] for k, refs in GLOBAL_SPELLINGS.items()}
    for node in getattr(trainer_cls, "REFERENCE_NODES", ()) if trainer_cls is not None else ():
        for leaf, canonical in REFERENCE_KEYS.items():
            out.setdefault(canonical, [canonical]).append(f"{node}.{leaf}")
    return out


def _resolve_key(cfg, sources: ConfigSources, canonical: str, names: list[str]) -> tuple[Any, str] | None:
    """(value, spelling) the user wrote last for ``canonical`` (None if no spelling was written)."""
    written = [(sources.rank(n), n) for n in names if has_key(cfg, n) and sources.rank(n) is not None]
    if not written:
        return None
    top = max(r for r, _ in written)
    winners = [n for r, n in written if r == top]
    values = {n: cfg_node(cfg, n) for n in winners}
    first = winners[0]
    for other in winners[1:]:
        if values[other] != values[first]:
            raise ConfigError(
                f"{sources.label(top)} sets {first} = {values[first]!r} and {other} = {values[other]!r}: two spellings "
                f"of {canonical} with different values; keep one"
            )
    return values[first], first


def resolve_cfg(cfg, sources: ConfigSources | None = None) -> None:
    """Fill the canonical nodes once, right after merging (rules in the module docstring).

    Also writes the trainer's defaults (learner, head, regularisers, ``DEFAULTS``) into the canonical keys the user
    left unset, so ``config.yaml`` shows what runs. Records ``cfg.__dict__["origins"]``: canonical key -> the
    spelling its value was written as (error messages name what the user wrote). An unknown trainer is left to
    the preflight check.
    """
    finalize_backbone_cfg(cfg, get_cfg_default().INPUT)  # PRETRAINED a string; open_clip INPUT.* defaults
    sources = sources if sources is not None else ConfigSources()
    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME) if cfg.TRAINER.NAME in TRAINER_REGISTRY else None
    origins: dict[str, str] = {}
    table = spellings(trainer_cls)
    for canonical, names in table.items():
        if has_key(cfg, canonical):
            got = _resolve_key(cfg, sources, canonical, names)
            if got is not None:
                _set(cfg, canonical, got[0])
                origins[canonical] = got[1]
    for key, value in (getattr(trainer_cls, "DEFAULTS", None) or {}).items():  # the trainer's table of defaults
        if key not in origins and sources.rank(key) is None and has_key(cfg, key):
            _set(cfg, key, value)
    cfg.__dict__["origins"] = origins
    cfg.__dict__["spellings"] = {k: [n for n in v[1:] if has_key(cfg, n)] for k, v in table.items()}
    if trainer_cls is None or not hasattr(trainer_cls, "LEARNER"):
        return  # not a prompt trainer (or unknown: preflight reports it)
    if not cfg.MODEL.PROMPT_LEARNER.NAME:
        cfg.MODEL.PROMPT_LEARNER.NAME = trainer_cls.LEARNER
    if not cfg.MODEL.HEAD.NAME:
        cfg.MODEL.HEAD.NAME = trainer_cls.HEAD
    cfg.REGULARISERS.NAMES = list(dict.fromkeys(list(trainer_cls.REGULARISERS) + list(cfg.REGULARISERS.NAMES)))
    _fill_component_defaults(cfg)


def _fill_component_defaults(cfg) -> None:
    """Write the chosen components' effective option values into their unset (None) keys, so ``config.yaml``
    shows what runs. Skipped for a component whose options do not validate (the preflight check reports it)."""
    chosen = [(PROMPT_LEARNER_REGISTRY, cfg.MODEL.PROMPT_LEARNER.NAME), (HEAD_REGISTRY, cfg.MODEL.HEAD.NAME)]
    chosen += [(REGULARISER_REGISTRY, name) for name in cfg.REGULARISERS.NAMES]
    for registry, name in chosen:
        if name not in registry:
            continue
        try:
            opts = registry.options(name, cfg)
        except ConfigError:
            continue
        node = cfg_node(cfg, registry.node(name))
        if node is None:
            continue
        for field, key in type(opts).keys().items():
            if key in node and node[key] is None:
                node[key] = getattr(opts, field)


def config_origins(cfg) -> dict[str, str]:
    return getattr(cfg, "__dict__", {}).get("origins") or {}


# ---------------------------------------------------------------------------------------------------------
# Compatibility helpers (the previous API of this module), on the canonical keys.
def resolve_prompt_node(cfg, node_name: str | None = None) -> dict[str, Any]:
    """The five prompt keys as the run uses them (canonical ``MODEL.PROMPT_LEARNER.*`` + ``TRAINER.PREC``), with
    the learner's defaults for unset keys; ``node_name`` is accepted for compatibility and ignored."""
    name = cfg.MODEL.PROMPT_LEARNER.NAME or "CoOpPromptLearner"
    opts = PROMPT_LEARNER_REGISTRY.options(name, cfg)
    node = cfg.MODEL.PROMPT_LEARNER
    out = {
        "N_CTX": getattr(opts, "n_ctx", node.get("N_CTX")),
        "CSC": getattr(opts, "csc", False),
        "CTX_INIT": getattr(opts, "ctx_init", ""),
        "PREC": cfg.TRAINER.PREC,
        "CLASS_TOKEN_POSITION": getattr(opts, "class_token_position", "end"),
    }
    return out


def nemesis_options(cfg, trainer_node: str | None = None) -> dict[str, Any]:
    """Nemesis constructor kwargs from ``REGULARISER.NEMESIS`` (validated)."""
    return REGULARISER_REGISTRY.options("Nemesis", cfg).constructor_kwargs(cfg)


def kgcoop_options(cfg) -> dict[str, Any]:
    """KgCoOp regulariser kwargs (validated): ``{"w", "template"}``."""
    return REGULARISER_REGISTRY.options("KgCoOp", cfg).constructor_kwargs(cfg)


def dept_options(cfg) -> dict[str, Any]:
    """DePT head kwargs (validated) from ``MODEL.HEAD.DEPT``."""
    return HEAD_REGISTRY.options("DePT", cfg).constructor_kwargs(cfg)


def label_space(cfg) -> str:
    """The evaluation/training label-space id: ``MODEL.HEAD.DEPT.LABEL_SPACE`` or, when empty, ``DATASET.NAME``."""
    return cfg.MODEL.HEAD.DEPT.LABEL_SPACE or cfg.DATASET.NAME
