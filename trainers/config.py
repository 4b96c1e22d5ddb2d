"""Config keys owned by the trainers and their components.

Namespaces are the reference forks' so that their YAML files and command lines run unchanged:

* ``TRAINER.COOP`` (KaiyangZhou/CoOp) and ``TRAINER.CoOp`` (ShyFoo/Nemesis spelling of the same keys).
  Both are accepted for the CoOp trainer: for each key a non-default value under ``TRAINER.CoOp`` wins,
  else ``TRAINER.COOP`` applies (see :func:`resolve_prompt_node`).
* ``TRAINER.CoOpNemesis`` (the five CoOp keys + A, NT, NP, CW, BETA), ``TRAINER.CoOpCRT`` (the five),
  ``TRAINER.COCOOP`` (for CoCoOp).
* ``TRAINER.ZSCLIP.TEMPLATE`` (zero-shot template override; default: table ``trainers/data/templates.json``
  keyed by ``DATASET.NAME``).
* ``REGULARISERS.NAMES`` and ``REGULARISER.NEMESIS.*``: the canonical regulariser keys.
* KgCoOp: ``TRAINER.COOP.{W, ALPHA}`` (reference keys; ``REGULARISER.KGCOOP.*`` is the canonical override).
  ``TRAINER.COOP.CTX_INIT`` defaults to None so that the KgCoOp YAMLs' boolean ``True`` merges; it is
  normalised by :func:`normalise_ctx_init` (True -> "a photo of a", None/False -> "" (random), a string as given).
* CoCoOp ``TRAINER.COCOOP.{N_CTX, CTX_INIT, PREC, TEXT_CHUNK}``; MaPLe ``TRAINER.MAPLE.{N_CTX, CTX_INIT, PREC,
  PROMPT_DEPTH}``.
* DePT head: ``TRAINER.LINEAR_PROBE.{TYPE, WEIGHT, TEST_TIME_FUSION}``, ``TRAINER.FILM.LINEAR_PROBE``,
  ``OPTIM.LR_EXP``; enabled by ``MODEL.HEAD.NAME DePT`` (``--head DePT``) or an ``ExtrasLinearProbe*`` trainer.
* ``TRAINER.LINEAR_PROBE.LABEL_SPACE``: explicit label-space id ("" = the dataset's own, ``DATASET.NAME``); the five
  ImageNet-family YAMLs set "imagenet". The DePT head uses its classifier iff the evaluation label space is the
  training one and every evaluation class is a training class (rows selected by name, in order).
"""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode as CN

from dassl.utils.errors import ConfigError

PROMPT_DEFAULTS = {
    "N_CTX": 16,  # number of context tokens M
    "CSC": False,  # class-specific context
    "CTX_INIT": "",  # initialisation words, e.g. "a photo of a" (sets M)
    "PREC": "fp16",  # fp16 | fp32 | amp
    "CLASS_TOKEN_POSITION": "end",  # end | middle | front
}
PRECISIONS = ("fp16", "fp32", "amp")
NEMESIS_TRAINER_KEYS = ("A", "NT", "NP", "CW", "BETA")
#: what a boolean ``CTX_INIT: True`` means (KgCoOp configs; the reference always used this phrase)
DEFAULT_CTX_INIT_PHRASE = "a photo of a"


def normalise_ctx_init(value: Any, key: str = "CTX_INIT") -> str:
    """``True`` -> "a photo of a"; ``None``/``False``/"" -> "" (random init); a string is used as given."""
    if value is None or value is False:
        return ""
    if value is True:
        return DEFAULT_CTX_INIT_PHRASE
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string or a boolean, got {value!r}")
    return value


def _prompt_node(**extra: Any) -> CN:
    node = CN()
    for k, v in PROMPT_DEFAULTS.items():
        setattr(node, k, v)
    for k, v in extra.items():
        setattr(node, k, v)
    return node


def add_trainer_cfg(cfg) -> None:
    """Add trainer/component keys to a (not frozen) Dassl config."""
    cfg.TRAINER.COOP = _prompt_node()
    cfg.TRAINER.COOP.CTX_INIT = None  # None/False/"" random, True = "a photo of a" (KgCoOp YAMLs), else the words
    cfg.TRAINER.COOP.W = 1.0  # KgCoOp: weight of the knowledge-guided term (scripts: 8.0; DePT configs: 2.0)
    cfg.TRAINER.COOP.ALPHA = 1.0  # KgCoOp reference key, unused
    cfg.TRAINER.CoOp = _prompt_node()  # Nemesis-fork alias of TRAINER.COOP
    # A (weight), NT (one|two|inf), NP (int or "random<K>"), CW (PAN down-scaling), BETA (PUN/PAN mix);
    # None defaults accept any type (e.g. NP random4)
    cfg.TRAINER.CoOpNemesis = _prompt_node(A=None, NT="two", NP=None, CW=None, BETA=None)
    cfg.TRAINER.CoOpCRT = _prompt_node()
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"
    # images per text-encoder call (0 = one batched call of B*C sequences; 1 = the reference's per-image loop)
    cfg.TRAINER.COCOOP.TEXT_CHUNK = 0
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2  # n: first n words of CTX_INIT become learnable (the phrase stays in the prompt)
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
    cfg.TRAINER.MAPLE.PREC = "fp16"
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9  # J: prompts at the input + before blocks 1..J-1 (both towers)
    # DePT (Zhang et al., ICCV'23 "DePT: Decoupled Prompt Tuning"): the DePT head's keys (reference names)
    cfg.TRAINER.LINEAR_PROBE = CN()
    cfg.TRAINER.LINEAR_PROBE.TYPE = "linear"  # only "linear" is supported
    cfg.TRAINER.LINEAR_PROBE.WEIGHT = 0.7  # lambda: loss (1-l)*CE_ITM + l*CE_CAT; test logits (1-l)*s + l*z
    cfg.TRAINER.LINEAR_PROBE.TEST_TIME_FUSION = True  # False: the CAT logits z alone on base-class tests
    # label-space id of the dataset ("" = its own, DATASET.NAME); the ImageNet-family dataset YAMLs set "imagenet"
    cfg.TRAINER.LINEAR_PROBE.LABEL_SPACE = ""
    cfg.TRAINER.FILM = CN()
    cfg.TRAINER.FILM.LINEAR_PROBE = True  # channel-wise affine (cwT) before the linear classifier
    cfg.OPTIM.LR_EXP = 6.5  # DePT head learning rate = OPTIM.LR * LR_EXP
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.TEMPLATE = ""  # "" = per-dataset template from trainers/data/templates.json
    cfg.TRAINER.ZSCLIP.PREC = "fp16"

    cfg.REGULARISERS = CN()
    cfg.REGULARISERS.NAMES = []  # e.g. ["Nemesis"]: added to any PromptTrainer
    cfg.REGULARISER = CN()
    cfg.REGULARISER.NEMESIS = CN()
    cfg.REGULARISER.NEMESIS.A = None  # PUN weight (and default PAN scale)
    cfg.REGULARISER.NEMESIS.NT = "two"  # one | two | inf
    cfg.REGULARISER.NEMESIS.NP = None  # int in [1, N_CTX] or "random<K>"
    cfg.REGULARISER.NEMESIS.CW = None  # PAN corruption (down-scaling) factor
    cfg.REGULARISER.NEMESIS.BETA = None  # 1 PUN, 0 PAN, (0, 1) mix
    cfg.REGULARISER.NEMESIS.PAN_SCALE = None  # PAN alpha value; None = A (reference: 50 for Food101/OxfordPets)
    cfg.REGULARISER.NEMESIS.OMEGA = "logistic"  # logistic | constant (reference: constant for Food101/OxfordPets)
    cfg.REGULARISER.KGCOOP = CN()
    cfg.REGULARISER.KGCOOP.W = None  # None = TRAINER.COOP.W
    cfg.REGULARISER.KGCOOP.TEMPLATE = ""  # "" = per-dataset KgCoOp template (zero-shot table + KgCoOp overrides)
    cfg.REGULARISER.KGCOOP.FP16_ANCHORS = False  # True: the reference's fp16-rounded anchors (exact comparison)

    if not hasattr(cfg, "CORRUPT"):  # normally added by train.py
        cfg.CORRUPT = CN()
        cfg.CORRUPT.TYPE = ""
        cfg.CORRUPT.POSITION = 0
        cfg.CORRUPT.FACTOR = 0.0


def resolve_prompt_node(cfg, node_name: str) -> dict[str, Any]:
    """The five prompt keys of ``cfg.TRAINER.<node_name>`` as a validated dict.

    For ``COOP``/``CoOp`` the two spellings are merged: a value under ``TRAINER.CoOp`` that differs from
    the default wins, otherwise ``TRAINER.COOP``'s value applies.
    """
    if node_name in ("COOP", "CoOp"):
        out = {}
        for key, default in PROMPT_DEFAULTS.items():
            alias = cfg.TRAINER.CoOp.get(key)
            out[key] = alias if alias != default else cfg.TRAINER.COOP.get(key)
        prefix = "TRAINER.COOP"
        out["CTX_INIT"] = normalise_ctx_init(out["CTX_INIT"], f"{prefix}.CTX_INIT")
    else:
        node = cfg.TRAINER.get(node_name)
        # nodes without CSC / CLASS_TOKEN_POSITION (COCOOP, MAPLE) get CoOp's defaults for them
        out = {key: node.get(key, default) for key, default in PROMPT_DEFAULTS.items()}
        prefix = f"TRAINER.{node_name}"
    validate_prompt_values(out, prefix)
    return out


def validate_prompt_values(values: dict[str, Any], prefix: str) -> None:
    """Raise :class:`ConfigError` naming the key for impossible prompt settings."""
    n_ctx = values["N_CTX"]
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or (n_ctx < 1 and not values["CTX_INIT"]):
        raise ConfigError(f"{prefix}.N_CTX must be a positive integer, got {n_ctx!r}")
    if not isinstance(values["CSC"], bool):
        raise ConfigError(f"{prefix}.CSC must be True or False, got {values['CSC']!r}")
    if values["PREC"] not in PRECISIONS:
        raise ConfigError(f"{prefix}.PREC must be one of {PRECISIONS}, got {values['PREC']!r}")
    if values["CLASS_TOKEN_POSITION"] not in ("end", "middle", "front"):
        raise ConfigError(
            f"{prefix}.CLASS_TOKEN_POSITION must be end, middle or front, got {values['CLASS_TOKEN_POSITION']!r}"
        )
    if not isinstance(values["CTX_INIT"], str):
        raise ConfigError(f"{prefix}.CTX_INIT must be a string, got {values['CTX_INIT']!r}")


def nemesis_options(cfg, trainer_node: str | None = "CoOpNemesis") -> dict[str, Any]:
    """Nemesis constructor kwargs: ``TRAINER.<trainer_node>.{A,NT,NP,CW,BETA}`` first (what the reference
    scripts pass), falling back to ``REGULARISER.NEMESIS``; plus ``PAN_SCALE`` and ``OMEGA``."""
    reg = cfg.REGULARISER.NEMESIS
    node = cfg.TRAINER.get(trainer_node) if trainer_node else None
    vals = {}
    for key in NEMESIS_TRAINER_KEYS:
        v = node.get(key) if node is not None else None
        if v is None or (key == "NT" and v == "two"):  # unset (or default NT) -> canonical key
            v = reg.get(key)
        vals[key] = v
    where = f"TRAINER.{trainer_node}" if trainer_node else "REGULARISER.NEMESIS"
    if vals["A"] is None:
        raise ConfigError(f"{where}.A (Nemesis loss weight) is required (or REGULARISER.NEMESIS.A)")
    if vals["BETA"] is None:
        raise ConfigError(f"{where}.BETA is required: 1 (PUN), 0 (PAN) or in (0, 1) (or REGULARISER.NEMESIS.BETA)")
    for key in ("A", "CW", "PAN_SCALE"):
        v = vals.get(key, reg.get(key))
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{where if key != 'PAN_SCALE' else 'REGULARISER.NEMESIS'}.{key} must be a number, got {v!r}")
    try:
        from .modules.regularisers.nemesis import check_beta

        check_beta(vals["BETA"])
    except ConfigError as e:
        raise ConfigError(f"{where}.BETA: {e}") from None
    if vals["NT"] not in ("one", "two", "inf"):
        raise ConfigError(f"{where}.NT must be one, two or inf, got {vals['NT']!r}")
    if reg.OMEGA not in ("logistic", "constant"):
        raise ConfigError(f"REGULARISER.NEMESIS.OMEGA must be logistic or constant, got {reg.OMEGA!r}")
    return dict(
        a=vals["A"], beta=vals["BETA"], norm_type=vals["NT"], n_pos=vals["NP"], cw=vals["CW"],
        pan_scale=reg.PAN_SCALE, omega=reg.OMEGA,
    )


def _nemesis_canonical(cfg) -> dict[str, Any]:
    return nemesis_options(cfg, None)


def kgcoop_options(cfg) -> dict[str, Any]:
    """KgCoOp regulariser kwargs: W (``REGULARISER.KGCOOP.W``, else ``TRAINER.COOP.W``) and the template."""
    node = cfg.REGULARISER.get("KGCOOP")
    w = node.W if node is not None and node.W is not None else cfg.TRAINER.COOP.W
    where = "REGULARISER.KGCOOP.W" if node is not None and node.W is not None else "TRAINER.COOP.W"
    if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
        raise ConfigError(f"{where} must be a non-negative number, got {w!r}")
    from .modules.regularisers.kgcoop import kgcoop_template

    template = node.TEMPLATE if node is not None and node.TEMPLATE else kgcoop_template(cfg.DATASET.NAME)
    if "{}" not in template:
        raise ConfigError(f'REGULARISER.KGCOOP.TEMPLATE must contain "{{}}", got {template!r}')
    fp16_anchors = node.get("FP16_ANCHORS", False) if node is not None else False
    if not isinstance(fp16_anchors, bool):
        raise ConfigError(f"REGULARISER.KGCOOP.FP16_ANCHORS must be True or False, got {fp16_anchors!r}")
    return dict(w=float(w), template=template, fp16_anchors=fp16_anchors)


def label_space(cfg) -> str:
    """The evaluation/training label-space id: ``TRAINER.LINEAR_PROBE.LABEL_SPACE`` or, when empty, ``DATASET.NAME``
    (set in the dataset YAML: only ``DATASET.NAME`` lives under ``DATASET``)."""
    return cfg.TRAINER.LINEAR_PROBE.LABEL_SPACE or cfg.DATASET.NAME


def dept_options(cfg) -> dict[str, Any]:
    """DePT head kwargs from ``TRAINER.LINEAR_PROBE.*``, ``TRAINER.FILM.LINEAR_PROBE`` and ``OPTIM.LR_EXP``."""
    lp = cfg.TRAINER.LINEAR_PROBE
    if lp.TYPE != "linear":
        raise ConfigError(f'TRAINER.LINEAR_PROBE.TYPE must be "linear" (the DePT default), got {lp.TYPE!r}')
    w = lp.WEIGHT
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
        raise ConfigError(f"TRAINER.LINEAR_PROBE.WEIGHT must be a number in [0, 1], got {w!r}")
    lr_exp = cfg.OPTIM.LR_EXP
    if isinstance(lr_exp, bool) or not isinstance(lr_exp, (int, float)) or lr_exp <= 0:
        raise ConfigError(f"OPTIM.LR_EXP must be a positive number, got {lr_exp!r}")
    return dict(weight=float(w), fusion=bool(lp.TEST_TIME_FUSION), film=bool(cfg.TRAINER.FILM.LINEAR_PROBE),
                label_space=label_space(cfg), lr_mult=float(lr_exp))


#: regulariser name -> function(cfg) -> constructor kwargs (validated), for ``REGULARISERS.NAMES``
REGULARISER_OPTIONS = {"Nemesis": _nemesis_canonical, "KgCoOp": kgcoop_options}
#: head name -> function(cfg) -> constructor kwargs (validated), for ``MODEL.HEAD.NAME`` / trainer defaults
HEAD_OPTIONS = {"DePT": dept_options}
