"""Reading the output folders of the reference implementations (and ours) into our registered models.

``--eval-only --model-dir <run> --load-epoch N`` works on the unmodified output folders of every reference this
toolbox reimplements. :func:`read_checkpoints` detects the layout of ``<run>``, maps every key explicitly, and
returns one state dict per registered model of the trainer (``prompt_learner`` / ``MultiModalPromptLearner`` and,
with a DePT head, ``head``); :meth:`PromptTrainer.load_model` then loads them strictly. Files are read with
:func:`dassl.utils.load_checkpoint` (weights-only unpickling: no code from a checkpoint is ever run).

Layouts:

``ours`` / Dassl per-model folders (our runs; CoOp, CoCoOp, Nemesis, CoOpCRT references)
    ``<run>/<name>/model.pth.tar-N`` for every registered name. The reference's class-dependent buffers
    ``token_prefix`` / ``token_suffix`` are ignored (rebuilt for the current class names).

``KgCoOp`` (htyao89/KgCoOp, and KgCoOp in Koorye/DePT)
    ``<run>/prompt_learner/model.pth.tar-N`` = the ours layout plus the reference's dead tensors, which are
    ignored: ``bias_vectors`` [1, 512] and the meta-net ``meta_net.linear1.{weight,bias}`` [512, 512] / [512]
    (never used in its forward pass; we do not build them). Recognised by ``bias_vectors``.

``PLOT`` (the ShyFoo/Nemesis fork's PLOT and PLOTNemesis)
    ``<run>/prompt_learner/model.pth.tar-N`` with ``ctx`` ``(N, M, Dt)`` (generic) or ``(C, N, M, Dt)`` (CSC),
    which is our PLOT learner's ``ctx`` as it is (same axis order), and the buffers ``token_prefix`` /
    ``token_suffix`` of ``N*C`` rows (set-major), ignored. Recognised by a 4-D ``ctx`` or a 3-D one whose buffers
    have more rows than ``ctx`` has sets; the shapes are then checked by the strict load (N, M, CSC).

``wrapper`` (MaPLe, and DePT on every base method: ``ExtrasLinearProbe{CoOp,CoCoOp,KgCoOp,MaPLe}``)
    The reference registers its whole model in ONE folder, ``<run>/MultiModalPromptLearner/`` (MaPLe bases)
    or ``<run>/PromptLearner/`` (CoOp, CoCoOp, KgCoOp bases), with prefixed keys:

    ===========================================================  =============================================
    reference key                                                ours
    ===========================================================  =============================================
    ``prompt_learner.<k>`` (ctx, proj.*, compound_prompts_text.i, learner ``<k>``
    compound_prompt_projections.i.*, meta_net.linear{1,2}.*)
    ``film_lp_img.scale`` / ``.bias``                            head ``film_lp_img.gamma`` / ``.beta``
    ``film_lp_text.scale`` / ``.bias``                           head ``film_lp_text.gamma`` / ``.beta``
    ``linear_probe_proj.weight`` / ``.bias`` [C_base, D]         head ``linear_probe_proj.weight`` / ``.bias``
    ``image_encoder.<k>``                                        backbone ``visual.<k>`` (frozen: checked)
    ``text_encoder.<k>`` (transformer.*, positional_embedding,   backbone ``<k>`` (frozen: checked)
    ln_final.*, text_projection)
    ``logit_scale``                                              backbone ``logit_scale`` (frozen: checked)
    ``prompt_learner.token_prefix`` / ``token_suffix``           ignored (class-dependent buffers)
    DePT-KgCoOp: ``prompt_learner.bias_vectors``,                ignored (dead modules of the reference)
    ``prompt_learner.meta_net.linear1.*``, ``meta_net.linear1.*``,
    ``adapter.fc.0.weight``, ``adapter.fc.2.weight``
    ===========================================================  =============================================

    Frozen CLIP tensors are compared with the backbone we loaded (exact equality in fp32: the reference holds
    the same fp16-representable values in fp16 or fp32); a difference is an error (wrong
    ``MODEL.BACKBONE.NAME``), except for BatchNorm running statistics of a ResNet image encoder: the reference
    trains DePT/MaPLe with the whole wrapper in train mode, so they drift; they are ignored with one
    warning and the frozen backbone's statistics are used (our encoders never leave eval mode). A reference wrapper carries no record of its training classes, so the DePT head's
    base/new decision is the reference's own rule: the CAT head is used iff ``DATASET.SUBSAMPLE_CLASSES``
    is ``base``, or ``all`` with an explicit shared label space (``TRAINER.LINEAR_PROBE.LABEL_SPACE``, set by the
    ImageNet-family dataset YAMLs), and the classifier rows are the current classes (the dataset's
    ``label_space_classnames``, when it names a larger label space such as ImageNet-A/R's 1000 classes, select
    the rows by name).

Every key is either placed, or ignored by name (one info line lists the ignored keys per file), or an error
(:class:`ConfigError`, exit 2) naming the keys that cannot be placed.
"""
from __future__ import annotations

import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import Any

import torch

from dassl.utils import load_checkpoint
from dassl.utils.errors import CheckpointNotFoundError, ConfigError

logger = logging.getLogger(__name__)

#: folders under which the references register their whole model wrapper
WRAPPER_FOLDERS = ("MultiModalPromptLearner", "PromptLearner")
#: class-dependent buffers every reference saves (rebuilt for the current classes)
CLASS_BUFFERS = ("token_prefix", "token_suffix")
#: KgCoOp's dead tensors in its prompt learner (relative to the learner)
KGCOOP_DEAD_LEARNER_KEYS = ("bias_vectors", "meta_net.linear1.weight", "meta_net.linear1.bias")
#: DePT-KgCoOp's dead tensors at the wrapper level (the meta-net alias and the Adapter(512, 4))
KGCOOP_DEAD_WRAPPER_KEYS = ("meta_net.linear1.weight", "meta_net.linear1.bias", "adapter.fc.0.weight",
                            "adapter.fc.2.weight")
#: DePT head keys: reference name -> ours (inside the ``head`` model)
DEPT_HEAD_KEYS = {
    "film_lp_img.scale": "film_lp_img.gamma",
    "film_lp_img.bias": "film_lp_img.beta",
    "film_lp_text.scale": "film_lp_text.gamma",
    "film_lp_text.bias": "film_lp_text.beta",
    "linear_probe_proj.weight": "linear_probe_proj.weight",
    "linear_probe_proj.bias": "linear_probe_proj.bias",
}
#: frozen-CLIP prefixes of a wrapper: reference prefix -> backbone (``clip.model.CLIP``) prefix
FROZEN_PREFIXES = {"image_encoder.": "visual.", "text_encoder.": ""}
#: PLOT reference learner keys -> ours (explicit; the class buffers are ignored as for every layout)
PLOT_LEARNER_KEYS = {"ctx": "ctx"}
#: folder of our learner and head models (the trainer's registered names)
HEAD_NAME = "head"


@dataclass
class LoadedState:
    """One registered model's mapped state: the file it came from, its epoch and the state dict to load."""

    path: str
    epoch: Any
    state: dict[str, Any]
    layout: str
    ignored: list[str] = field(default_factory=list)


def _is_wrapper_state(state: dict[str, Any]) -> bool:
    return any(k.startswith("prompt_learner.") for k in state) and any(
        k.startswith(("image_encoder.", "text_encoder.")) or k == "logit_scale" for k in state
    )


def _summarise(keys: list[str]) -> str:
    """``image_encoder.*`` (N tensors) style summary of long key lists (frozen CLIP)."""
    out, groups = [], {}
    for k in keys:
        prefix = next((p for p in FROZEN_PREFIXES if k.startswith(p)), None)
        if prefix is None:
            out.append(k)
        else:
            groups[prefix] = groups.get(prefix, 0) + 1
    out += [f"{p}* ({n} tensors, equal to the backbone)" for p, n in groups.items()]
    return ", ".join(out)


#: buffers a ResNet's BatchNorm updates in train mode; in a reference wrapper they may have drifted (see _check_frozen)
BATCHNORM_STATISTICS = ("running_mean", "running_var", "num_batches_tracked")


def _check_frozen(path: str, frozen: dict[str, torch.Tensor], backbone: dict[str, torch.Tensor]) -> None:
    """Every frozen CLIP tensor of a reference wrapper must equal the backbone's (else: wrong backbone)."""
    unknown = sorted(k for k in frozen if k not in backbone)
    if unknown:
        raise ConfigError(f'checkpoint "{path}": frozen CLIP keys {unknown[:5]}{"..." if len(unknown) > 5 else ""} '
                          "have no counterpart in the backbone (another architecture?); check MODEL.BACKBONE.NAME")
    drifted = []
    for key, value in frozen.items():
        ours = backbone[key]
        if not torch.is_tensor(value) or tuple(value.shape) != tuple(ours.shape) or not torch.equal(
            value.detach().float().cpu(), ours.detach().float().cpu()
        ):
            if key.rsplit(".", 1)[-1] in BATCHNORM_STATISTICS and torch.is_tensor(value) \
                    and tuple(value.shape) == tuple(ours.shape):
                drifted.append(key)
                continue
            raise ConfigError(
                f'checkpoint "{path}": the frozen CLIP weights it contains differ from the backbone loaded here '
                f"(first: {key}); it was trained on another backbone. Set MODEL.BACKBONE.NAME (--backbone) to the "
                "CLIP the reference run used"
            )
    if drifted:
        logger.warning(
            f'checkpoint "{path}": {len(drifted)} BatchNorm running statistics of the frozen image encoder differ from '
            "the backbone's (the reference trained a ResNet with its encoder in train mode, so they drifted). "
            "They are not used: this evaluation keeps the frozen backbone's statistics, so its "
            "accuracy can differ slightly from the reference's own log"
        )


def map_learner_state(state: dict[str, Any], own_keys: set[str]) -> tuple[dict[str, Any], list[str], str]:
    """A per-model-folder learner state: drop class buffers, and KgCoOp's dead tensors when present."""
    ignored = [k for k in CLASS_BUFFERS if k in state]
    layout = "ours"
    if "bias_vectors" in state and "bias_vectors" not in own_keys:
        layout = "KgCoOp"
        ignored += [k for k in KGCOOP_DEAD_LEARNER_KEYS if k in state and k not in own_keys]
    elif _is_plot_state(state):
        layout = "PLOT"
        mapped = {PLOT_LEARNER_KEYS.get(k, k): v for k, v in state.items() if k not in ignored}
        return mapped, ignored, layout
    return {k: v for k, v in state.items() if k not in ignored}, ignored, layout


def _is_plot_state(state: dict[str, Any]) -> bool:
    """A PLOT reference learner: ``ctx`` (N, M, Dt) with ``N*C``-row buffers, or (C, N, M, Dt)."""
    ctx, prefix = state.get("ctx"), state.get("token_prefix")
    if not torch.is_tensor(ctx) or not torch.is_tensor(prefix):
        return False
    return ctx.dim() == 4 or (ctx.dim() == 3 and prefix.shape[0] != ctx.shape[0])


def _reference_head_extra_state(trainer, n_rows: int) -> dict[str, Any]:
    """The DePT head's training-class record for a reference wrapper (which has none): the reference's rule."""
    cfg = trainer.cfg
    from .config import label_space

    subsample = str(cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"))
    current = [trainer.lab2cname[i] for i in range(trainer.num_classes)]
    shared = bool(cfg.TRAINER.LINEAR_PROBE.get("LABEL_SPACE", ""))
    base_branch = subsample == "base" or (subsample == "all" and shared)
    names = None
    if base_branch:
        if n_rows == len(current):
            names = current
        else:
            full = getattr(getattr(getattr(trainer, "dm", None), "dataset", None), "label_space_classnames", None)
            if full is not None and len(full) == n_rows:
                names = [str(n) for n in full]
            else:
                logger.warning(
                    f"DePT reference checkpoint: its classifier has {n_rows} rows but {len(current)} classes are "
                    "evaluated and the dataset does not name its full label space; using the ITM head only"
                )
    if names is None:  # training classes unknown / not these: the CAT head is not used (reference: new classes)
        names = [f"<reference training class {i}>" for i in range(n_rows)]
    return {"classnames": names, "label_space": label_space(cfg)}


def _map_wrapper(trainer, path: str, ckpt: dict[str, Any], folder: str) -> dict[str, LoadedState]:
    state = dict(ckpt["state_dict"])
    names = list(trainer.get_model_names())
    learner_name = trainer.LEARNER_NAME
    learner_keys = set(trainer._models[learner_name].state_dict()) if learner_name in names else set()
    kgcoop = "prompt_learner.bias_vectors" in state
    learner: dict[str, Any] = {}
    head: dict[str, Any] = {}
    frozen: dict[str, Any] = {}
    ignored: list[str] = []
    unplaced: list[str] = []
    for key, value in state.items():
        if key.startswith("prompt_learner."):
            sub = key[len("prompt_learner."):]
            if sub in CLASS_BUFFERS or (kgcoop and sub in KGCOOP_DEAD_LEARNER_KEYS and sub not in learner_keys):
                ignored.append(key)
            else:
                learner[sub] = value
        elif key in DEPT_HEAD_KEYS:
            head[DEPT_HEAD_KEYS[key]] = value
        elif key == "logit_scale":
            frozen["logit_scale"] = value
        elif key.startswith(tuple(FROZEN_PREFIXES)):
            prefix = next(p for p in FROZEN_PREFIXES if key.startswith(p))
            frozen[FROZEN_PREFIXES[prefix] + key[len(prefix):]] = value
        elif kgcoop and key in KGCOOP_DEAD_WRAPPER_KEYS:
            ignored.append(key)
        else:
            unplaced.append(key)
    if unplaced:
        raise ConfigError(f'checkpoint "{path}" (reference {folder}/ layout): cannot place the keys {sorted(unplaced)}')
    if head and HEAD_NAME not in names:
        raise ConfigError(
            f'checkpoint "{path}" holds a DePT head ({sorted(k for k in state if k in DEPT_HEAD_KEYS)}) but this '
            "trainer has none: use the ExtrasLinearProbe* trainer (or --head DePT)"
        )
    if learner_name not in names:
        raise ConfigError(f'checkpoint "{path}": this trainer has no "{learner_name}" model to load the prompts into')
    _check_frozen(path, frozen, trainer.model.clip.state_dict())
    ignored_all = ignored + [k for k in state if k.startswith(tuple(FROZEN_PREFIXES)) or k == "logit_scale"]
    layout = f"reference {folder}/" + (" (KgCoOp base)" if kgcoop else "")
    epoch = ckpt.get("epoch")
    out = {learner_name: LoadedState(path, epoch, learner, layout, ignored_all)}
    if HEAD_NAME in names:
        if head and "_extra_state" in trainer._models[HEAD_NAME].state_dict():
            rows = head.get("linear_probe_proj.weight")
            head["_extra_state"] = _reference_head_extra_state(trainer, int(rows.shape[0]) if rows is not None else 0)
        out[HEAD_NAME] = LoadedState(path, epoch, head, layout, [])
    return out


def read_checkpoints(trainer, directory: str, epoch: int | None) -> dict[str, LoadedState]:
    """Read ``directory`` (ours or any reference layout) into one mapped state per registered model.

    Args:
        trainer: a :class:`PromptTrainer` with its model built (``get_model_names``, ``_models``, ``model.clip``).
        directory: the run folder (``--model-dir``).
        epoch: N, negative (newest ``model.pth.tar-N``) or None (``model-best.pth.tar``, else the pointer file).

    Returns:
        registered name -> :class:`LoadedState`.

    Raises:
        ConfigError: keys that cannot be placed, frozen weights of another backbone.
        CheckpointNotFoundError: neither our folders nor a reference wrapper folder.
    """
    names = list(trainer.get_model_names())
    ours_present = all(osp.isdir(osp.join(directory, n)) for n in names)
    for folder in WRAPPER_FOLDERS:
        fdir = osp.join(directory, folder)
        if not osp.isdir(fdir):
            continue
        try:
            path = osp.join(fdir, trainer._resolve_model_file(fdir, epoch))
        except CheckpointNotFoundError:
            if ours_present:
                continue
            raise
        ckpt = load_checkpoint(path)
        if _is_wrapper_state(ckpt["state_dict"]):
            return _map_wrapper(trainer, path, ckpt, folder)
        # else: our own MaPLe learner folder (same name, unprefixed keys): read below
    out = {}
    for name in names:
        fdir = osp.join(directory, name)
        path = osp.join(fdir, trainer._resolve_model_file(fdir, epoch))
        ckpt = load_checkpoint(path)
        state, ignored, layout = map_learner_state(dict(ckpt["state_dict"]), set(trainer._models[name].state_dict()))
        out[name] = LoadedState(path, ckpt.get("epoch"), state, layout, ignored)
    return out


def log_ignored(name: str, loaded: LoadedState) -> None:
    """The one info line per file naming the keys that were ignored (nothing when none)."""
    if loaded.ignored:
        logger.info(f'{name}: {loaded.layout} layout of "{loaded.path}"; ignored keys: {_summarise(loaded.ignored)}')
