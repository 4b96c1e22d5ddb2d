"""Checks that run before anything is written into the output folder (and before the dataset or CLIP is read).

``train.py`` calls :func:`preflight` right after the config is built and frozen; a failing check raises a
:class:`~dassl.utils.errors.UsageError` (one ``error:`` line, exit 2) and leaves an existing run folder untouched.
Add a check here when it needs neither the dataset nor the CLIP weights (reading a weights file's tensor
*shapes* through ``mmap`` is allowed: it costs milliseconds); checks that need them stay where the data is
read, but must still run before the first write into ``OUTPUT_DIR``.

What is checked (each a one-line error naming the key or flag and the way out):

* the trainer name and the trainer's own ``check_cfg`` (method keys such as ``TRAINER.CoOpNemesis.A``);
* command-line combinations: ``--eval-only`` needs ``--model-dir`` (zero-shot trainers excepted),
  ``--corrupt-position`` / ``--crt-factor`` need ``--corrupt-type``, the corrupted position lies in
  ``[0, N_CTX)``, training needs ``OPTIM.MAX_EPOCH >= 1``;
* the prompt fits CLIP's 77-token context (``N_CTX``);
* the dataset folder exists (``DATASET.ROOT`` / the reader's folder);
* the backbone's weights exist and ``INPUT.SIZE`` equals its input resolution;
* the checkpoints that will be read (``--model-dir``/``--load-epoch`` for evaluation, the resume pointer of
  ``--resume``/``OUTPUT_DIR`` for training): the epoch exists (else the existing ones are listed), the file is
  readable, holds a ``state_dict``, finite values, and a context of the configured shape.
"""
from __future__ import annotations

import argparse
import math
import os
import os.path as osp
import re

from dassl.utils.errors import CheckpointNotFoundError, ConfigError

#: Input resolution of the official CLIP models (OpenAI's model table); other backbones are read from the file.
KNOWN_RESOLUTIONS = {
    "RN50": 224, "RN101": 224, "RN50x4": 288, "RN50x16": 384, "RN50x64": 448,
    "ViT-B/32": 224, "ViT-B/16": 224, "ViT-L/14": 224, "ViT-L/14@336px": 336,
}
#: Text context of every CLIP model (tokens, including start and end tokens).
CONTEXT_LENGTH = 77
_EPOCH_FILE_RE = re.compile(r"^model\.pth\.tar-(\d+)$")
_BEST = "model-best.pth.tar"


def _arg(args, name, default=None):
    return getattr(args, name, default) if args is not None else default


def _trainer_class(cfg):
    from .build import TRAINER_REGISTRY

    return TRAINER_REGISTRY.get(cfg.TRAINER.NAME)


def _unbuilt(cls):
    return object.__new__(cls)


def is_zero_shot(cls) -> bool:
    """A trainer that learns nothing (``ZERO_SHOT = True``): evaluation needs no ``--model-dir``."""
    return bool(getattr(cls, "ZERO_SHOT", False))


def check_trainer(cfg) -> None:
    """The trainer name exists and its ``check_cfg`` accepts the config (trainer and component options)."""
    from .build import trainer_class

    cls = trainer_class(cfg)
    validate = getattr(cls, "validate_cfg", None)  # class-level check (prompt trainers)
    if callable(validate):
        validate(cfg)
    else:  # check_cfg only reads class attributes and the config: run it on an unbuilt instance
        cls.check_cfg(_unbuilt(cls), cfg)


def _learner_class(cfg):
    cls = _trainer_class(cfg)
    node = cfg.MODEL.get("PROMPT_LEARNER") if cfg.get("MODEL") is not None else None
    name = (node.get("NAME") if node is not None else "") or getattr(cls, "LEARNER", None)
    try:
        from trainers.modules import PROMPT_LEARNER_REGISTRY
    except ImportError:
        return None
    return PROMPT_LEARNER_REGISTRY.get(name) if isinstance(name, str) and name in PROMPT_LEARNER_REGISTRY else None


def learner_folder(cfg) -> str | None:
    """The learner's checkpoint folder name (its ``checkpoint_name``), if the trainer has a learner."""
    lcls = _learner_class(cfg)
    name = getattr(lcls, "checkpoint_name", None) if lcls is not None else None
    if isinstance(name, str):
        return name
    name = getattr(_trainer_class(cfg), "LEARNER_NAME", None)
    return name if isinstance(name, str) else None


def prompt_settings(cfg) -> dict:
    """The trainer's resolved prompt keys (``N_CTX``, ``CTX_INIT``, ``CSC``, ...; empty for zero-shot trainers)."""
    node = cfg.MODEL.get("PROMPT_LEARNER") if cfg.get("MODEL") is not None else None
    lcls = _learner_class(cfg)
    if node is not None and "N_CTX" in node:
        if lcls is None or not hasattr(lcls, "context_length"):
            return {}
        out = {k: node.get(k) for k in ("N_CTX", "CTX_INIT", "CSC") if k in node}
        if "CTX_INIT" in out and not isinstance(out["CTX_INIT"], str):  # KgCoOp YAMLs: True = "a photo of a"
            from trainers.modules.prompt_learners.coop import normalise_ctx_init

            out["CTX_INIT"] = normalise_ctx_init(out["CTX_INIT"], "MODEL.PROMPT_LEARNER.CTX_INIT")
        return out
    cls = _trainer_class(cfg)
    fn = getattr(cls, "prompt_settings", None)
    if fn is None:
        return {}
    try:
        return dict(fn(_unbuilt(cls), cfg) or {})
    except AttributeError:  # a trainer whose prompt_settings needs a built instance
        return {}


def context_length_of(settings: dict, cfg=None) -> int | None:
    """Number of context vectors: the trainer's learner says (``context_length(n_ctx, ctx_init)`` hook); without
    the hook ``N_CTX`` when no ``CTX_INIT`` is set, else unknown (None: the shape checks are skipped)."""
    if not settings or "N_CTX" not in settings:
        return None
    hook = None
    if cfg is not None:
        try:
            from trainers.modules import PROMPT_LEARNER_REGISTRY

            lcls = _learner_class(cfg)
            if lcls is not None:
                hook = getattr(lcls, "context_length", None)
        except ImportError:
            hook = None
    if callable(hook):
        return int(hook(settings["N_CTX"], settings.get("CTX_INIT") or ""))
    return None if (settings.get("CTX_INIT") or "").strip() else int(settings["N_CTX"])


def _node_name(cfg) -> str:
    node = cfg.MODEL.get("PROMPT_LEARNER") if cfg.get("MODEL") is not None else None
    if node is not None and "N_CTX" in node:
        return "MODEL.PROMPT_LEARNER.N_CTX"
    cls = _trainer_class(cfg)
    node = getattr(cls, "PROMPT_NODE", None)
    return f"TRAINER.{node}.N_CTX" if node else "N_CTX"


def check_command_line(cfg, args) -> None:
    """Flag combinations that would silently do something else than asked."""
    cls = _trainer_class(cfg)
    eval_only = bool(_arg(args, "eval_only"))
    if eval_only and not _arg(args, "model_dir") and not is_zero_shot(cls):
        raise ConfigError(
            f"--eval-only needs --model-dir (the output folder of a training run) for trainer {cfg.TRAINER.NAME}; "
            "without it a random prompt would be evaluated. Pass --model-dir DIR [--load-epoch N]"
        )
    if not _arg(args, "corrupt_type"):
        given = [f for f, a in (("--corrupt-position", "corrupt_position"), ("--crt-factor", "crt_factor"))
                 if _arg(args, a) is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} given without --corrupt-type: add --corrupt-type replace|scale|original "
                "(otherwise no corruption is applied)"
            )
    if not eval_only and not _arg(args, "no_train") and cfg.OPTIM.MAX_EPOCH < 1:
        raise ConfigError(
            f"OPTIM.MAX_EPOCH={cfg.OPTIM.MAX_EPOCH} trains nothing: set OPTIM.MAX_EPOCH >= 1 "
            "(or evaluate with --eval-only --model-dir DIR)"
        )


def check_corruption(cfg) -> None:
    """``CORRUPT.POSITION`` lies in ``[0, N_CTX)`` when a position is corrupted."""
    kind = cfg.get("CORRUPT", {}).get("TYPE", "") if cfg.get("CORRUPT") is not None else ""
    if kind not in ("replace", "scale", "rescale"):
        return
    n_ctx = context_length_of(prompt_settings(cfg), cfg)
    pos = cfg.CORRUPT.POSITION
    if isinstance(pos, bool) or not isinstance(pos, int):
        raise ConfigError(f"CORRUPT.POSITION (--corrupt-position) must be an integer, got {pos!r}")
    if n_ctx is not None and not 0 <= pos < n_ctx:
        raise ConfigError(
            f"--corrupt-position {pos} is outside [0, {n_ctx}) ({_node_name(cfg)} = {n_ctx}): "
            f"pass a position from 0 to {n_ctx - 1}"
        )
    factor = cfg.CORRUPT.FACTOR
    if not math.isfinite(float(factor)):
        raise ConfigError(f"--crt-factor must be a finite number, got {factor!r}")


def check_regularisers(cfg) -> None:
    """Each regulariser's ``check_options(n_ctx, **kwargs)`` hook (e.g. Nemesis: A >= 0, NP in [1, N_CTX], CW).

    The options come from the canonical ``REGULARISER.<NAME>`` node (filled from the reference spellings such as
    ``TRAINER.CoOpNemesis.*`` when the config was built), exactly as the factory will read them.
    """
    names = list(dict.fromkeys(cfg.get("REGULARISERS", {}).get("NAMES", []) or []))
    if not names:
        return
    try:
        from trainers.modules import REGULARISER_REGISTRY
    except ImportError:  # the engine without the trainers package
        return

    n_ctx = context_length_of(prompt_settings(cfg), cfg)
    for name in names:
        if name not in REGULARISER_REGISTRY:
            continue  # validate_components names it
        check = getattr(REGULARISER_REGISTRY.get(name), "check_options", None)
        if not callable(check):
            continue
        kwargs = REGULARISER_REGISTRY.options(name, cfg).constructor_kwargs(cfg)
        try:
            check(n_ctx, **kwargs)
        except ConfigError as e:
            node = getattr(_trainer_class(cfg), "PROMPT_NODE", None)
            where = f"TRAINER.{node}.* or REGULARISER.{name.upper()}.*" if node else f"REGULARISER.{name.upper()}.*"
            raise ConfigError(f"{cfg.TRAINER.NAME} {name} option ({where}): {e}") from None


def check_prompt_length(cfg) -> None:
    """``SOT + N_CTX context tokens + >= 1 class-name token + '.' + EOT`` fits the 77-token context."""
    n_ctx = context_length_of(prompt_settings(cfg), cfg)
    if n_ctx is None:
        return
    limit = CONTEXT_LENGTH - 4
    if n_ctx > limit:
        raise ConfigError(
            f"{_node_name(cfg)} = {n_ctx} does not fit CLIP's {CONTEXT_LENGTH}-token context (start token, "
            f"context, class name, '.', end token): use at most {limit} context tokens, fewer for long class names"
        )


def check_dataset_path(cfg) -> None:
    """The dataset reader's folders exist (``check_paths`` class hook, e.g. ``SplitJsonDataset.check_paths``)."""
    from dassl.data.datasets import DATASET_REGISTRY

    name = cfg.DATASET.NAME
    if not name:
        return
    if name not in DATASET_REGISTRY:
        raise ConfigError(f"DATASET.NAME: {DATASET_REGISTRY.unknown_message(name)}")
    check = getattr(DATASET_REGISTRY.get(name), "check_paths", None)
    if callable(check):
        check(cfg)


# ------------------------------------------------------------------------------------------ backbone
def _shapes_of_weights(path: str) -> dict[str, tuple] | None:
    """Tensor shapes of a saved state dict, read through mmap (no tensor data is read); None if not possible."""
    import zipfile

    import torch

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return None  # legacy (non-zip) file: leave it to the loader
    if any(n.split("/")[1:2] == ["code"] or n.endswith("/constants.pkl") for n in names):
        return None  # TorchScript archive (OpenAI's files): its name is in KNOWN_RESOLUTIONS
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - the loader reports unreadable weights with its own clear error
        return None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        return None
    return {k: tuple(v.shape) for k, v in obj.items() if hasattr(v, "shape")}


def backbone_geometry(name: str, pretrained=None, files: bool = True) -> dict:
    """``{"resolution": int | None, "text_width": int | None}`` of a backbone name or weights file, cheaply.

    Official names come from the model table; other files are read through ``mmap`` (shapes only).

    Raises:
        clip.MissingWeightsError: the weights file does not exist.
    """
    from clip import clip as clip_lib

    out = {"resolution": KNOWN_RESOLUTIONS.get(name), "text_width": None}
    try:
        from clip import openclip
    except ImportError:  # a clip package without open_clip support
        openclip = None
    if openclip is not None and openclip.is_openclip_request(name, pretrained):
        try:
            spec = openclip.resolve(name, pretrained)  # missing files: MissingWeightsError with the fetch command
        except FileNotFoundError:
            if files:
                raise
            return out
        if isinstance(spec, str):  # OpenAI weights through the "openai" tag
            return backbone_geometry(spec, files=files)
        out["resolution"] = int(spec.preprocess["size"])
        return out
    if not files:  # config-only mode: the model table, or a weights file that happens to exist
        if name in KNOWN_RESOLUTIONS or not os.path.isfile(name):
            return out
    path = clip_lib.resolve_model_path(name)  # missing weights first (official files: SHA-256 cached per file)
    if name in KNOWN_RESOLUTIONS:
        return out
    shapes = _shapes_of_weights(path)
    if not shapes:  # e.g. a TorchScript archive given by path: recognise OpenAI's file names
        official = {url.rsplit("/", 1)[-1]: KNOWN_RESOLUTIONS.get(n) for n, url in getattr(clip_lib, "_MODELS", {}).items()}
        out["resolution"] = official.get(os.path.basename(path))
        return out
    if "ln_final.weight" in shapes:
        out["text_width"] = shapes["ln_final.weight"][0]
    if "visual.proj" in shapes and "visual.conv1.weight" in shapes and "visual.positional_embedding" in shapes:
        grid = math.isqrt(shapes["visual.positional_embedding"][0] - 1)
        out["resolution"] = shapes["visual.conv1.weight"][-1] * grid
    elif "visual.attnpool.positional_embedding" in shapes:
        out["resolution"] = math.isqrt(shapes["visual.attnpool.positional_embedding"][0] - 1) * 32
    return out


def check_backbone(cfg, files: bool = True) -> dict:
    """The weights exist and ``INPUT.SIZE`` equals the backbone's input resolution. Returns the geometry."""
    name = cfg.MODEL.BACKBONE.NAME
    if not name:
        return {}
    geo = backbone_geometry(name, cfg.MODEL.BACKBONE.get("PRETRAINED"), files=files)
    res = geo.get("resolution")
    size = tuple(cfg.INPUT.SIZE)
    if res and size != (res, res):
        raise ConfigError(
            f"INPUT.SIZE {size} does not match the input resolution of backbone {name} ({res}x{res}): "
            f"set INPUT.SIZE \"({res}, {res})\" (the CLIP image tower only accepts its pretraining resolution)"
        )
    return geo


def check_finite_backbone(model, name: str) -> None:
    """Every floating-point parameter/buffer of the loaded CLIP is finite (called once CLIP is loaded)."""
    import torch

    for key, value in list(model.state_dict().items()):
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ConfigError(
                f"the CLIP weights of backbone {name} hold NaN/Inf values in {key}: the weights file is damaged; "
                "restore it (re-download or copy it again) and rerun"
            )


# ------------------------------------------------------------------------------------------ checkpoints
def epochs_in(folder: str) -> list[int]:
    """The N of every ``model.pth.tar-N`` in ``folder`` (sorted)."""
    if not osp.isdir(folder):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(folder) if (m := _EPOCH_FILE_RE.match(f)))


def _model_folders(cls, directory: str, learner_folder_of_cls: str | None = None) -> list[str]:
    name = learner_folder_of_cls
    if name:
        return [name]
    return sorted(d for d in os.listdir(directory) if osp.isdir(osp.join(directory, d))
                  and (epochs_in(osp.join(directory, d)) or osp.isfile(osp.join(directory, d, "checkpoint"))))


def _resolve_eval_file(fdir: str, epoch: int | None) -> str:
    from dassl.utils.torchtools import read_pointer

    epochs = epochs_in(fdir)
    listing = ", ".join(str(e) for e in epochs) if epochs else "none"
    if epoch is None:
        if osp.isfile(osp.join(fdir, _BEST)):
            return osp.join(fdir, _BEST)
        latest = read_pointer(fdir) if osp.isdir(fdir) else None
        if latest is None:
            raise CheckpointNotFoundError(
                f'no checkpoint in "{fdir}" (no {_BEST}, no "checkpoint" pointer; epochs found: {listing}): '
                "point --model-dir at the output folder of a finished training run"
            )
        return osp.join(fdir, latest)
    if epoch < 0:
        if not epochs:
            raise CheckpointNotFoundError(f'no "model.pth.tar-N" file in "{fdir}": point --model-dir at a training run')
        return osp.join(fdir, f"model.pth.tar-{epochs[-1]}")
    path = osp.join(fdir, f"model.pth.tar-{epoch}")
    if not osp.isfile(path):
        hint = f"use --load-epoch {epochs[-1]}" if epochs else "point --model-dir at a finished training run"
        raise CheckpointNotFoundError(
            f'--load-epoch {epoch}: "{path}" does not exist; epochs saved in "{fdir}": {listing} ({hint})'
        )
    return path


def check_checkpoint_file(path: str, expect_ctx: tuple | None = None, what: str = "checkpoint",
                          way_out: str = "retrain, or point --model-dir at another run") -> dict:
    """Read ``path`` safely and check it: a dict with a ``state_dict`` of finite tensors and, when
    ``expect_ctx`` is given (``(ndim, n_ctx, width[, lead axes])`` with None for unknown parts; lead axes are
    ``(name, size or None)`` pairs from a learner's ``context_lead_axes`` hook), a matching ``ctx``.

    Returns:
        The loaded checkpoint.
    """
    import torch

    from dassl.utils import load_checkpoint
    from dassl.utils.errors import UsageError

    try:
        size = osp.getsize(path)
    except OSError as e:
        raise CheckpointNotFoundError(f'cannot read {what} "{path}": {e.strerror}') from None
    if size == 0:
        raise ConfigError(f'{what} "{path}" is empty (0 bytes; an interrupted copy?): {way_out}')
    try:
        ckpt = load_checkpoint(path)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated zip, random bytes, bad pickle...
        detail = " ".join(str(e).split())[:200]
        raise ConfigError(
            f'{what} "{path}" is unreadable (truncated or not a PyTorch checkpoint: {type(e).__name__}: {detail}): '
            f"{way_out}"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        keys = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ConfigError(
            f'{what} "{path}" has no "state_dict" (found: {keys}); it is not a checkpoint written by train.py '
            f"or Dassl: {way_out}"
        )
    for key, value in ckpt["state_dict"].items():
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ConfigError(
                f'{what} "{path}": {key} holds {bad} NaN/Inf value(s) (a diverged run?): evaluate an earlier '
                f"epoch with --load-epoch, or {way_out}"
            )
    ctx = ckpt["state_dict"].get("ctx")
    if expect_ctx is not None and torch.is_tensor(ctx):
        ndims, n_ctx, width = expect_ctx[:3]
        # leading axes (name, size or None): CoOp CSC [("C", None)]; a learner's context_lead_axes hook (PLOT)
        lead = expect_ctx[3] if len(expect_ctx) > 3 else ([("C", None)] if ndims == 3 else [])
        shape = tuple(ctx.shape)
        bad = (ndims is not None and len(shape) != ndims) or (n_ctx is not None and shape[-2] != n_ctx) or (
            width is not None and shape[-1] != width)
        bad = bad or any(size is not None and shape[i] != size for i, (_, size) in enumerate(lead))
        if bad:
            want = [f"{name}={size}" if size is not None else name for name, size in lead]
            want += [str(n_ctx) if n_ctx is not None else "N_CTX", str(width) if width is not None else "width"]
            raise ConfigError(
                f'{what} "{path}": ctx has shape {shape} but this config expects ({", ".join(want)}) '
                "(different N_CTX, CSC or backbone?): use the settings the checkpoint was trained with, "
                f"or {way_out}"
            )
    return ckpt


def _expected_ctx(cfg, geo: dict) -> tuple | None:
    settings = prompt_settings(cfg)
    n_ctx = context_length_of(settings, cfg)
    if n_ctx is None:
        return None
    hook = getattr(_learner_class(cfg), "context_lead_axes", None)  # e.g. PLOT: [("C", None)?, ("N", 4)]
    if callable(hook):
        lead = list(hook(cfg.MODEL.PROMPT_LEARNER, settings))
        return (len(lead) + 2, n_ctx, geo.get("text_width"), lead)
    return (3 if settings.get("CSC") else 2, n_ctx, geo.get("text_width"))


def check_eval_checkpoints(cfg, args, geo: dict) -> None:
    """``--model-dir`` / ``--load-epoch``: every model folder holds the requested, valid checkpoint."""
    cls = _trainer_class(cfg)
    directory = _arg(args, "model_dir")
    if not _arg(args, "eval_only") or not directory or is_zero_shot(cls):
        return
    if not osp.isdir(directory):
        raise CheckpointNotFoundError(f'model directory not found: "{directory}" (--model-dir)')
    epoch = _arg(args, "load_epoch")
    folders = _model_folders(cls, directory, learner_folder(cfg))
    if not folders:
        raise CheckpointNotFoundError(
            f'no checkpoint folder in "{directory}": point --model-dir at the output folder of a training run'
        )
    expect = _expected_ctx(cfg, geo)
    for name in folders:
        path = _resolve_eval_file(osp.join(directory, name), None if epoch is None else int(epoch))
        check_checkpoint_file(path, expect if name == learner_folder(cfg) else None)


def check_resume_checkpoint(cfg, args, geo: dict) -> None:
    """Training that will resume (``--resume`` or a pointer in ``OUTPUT_DIR``) reads a valid, matching file."""
    from dassl.utils.torchtools import read_pointer

    if _arg(args, "eval_only") or _arg(args, "no_train"):
        return
    cls = _trainer_class(cfg)
    directory = cfg.RESUME or cfg.OUTPUT_DIR
    if not directory or not osp.isdir(directory):
        return
    name = learner_folder(cfg)
    if not name:
        return
    fdir = osp.join(directory, name)
    latest = read_pointer(fdir) if osp.isdir(fdir) else None
    if latest is None:
        return
    check_checkpoint_file(
        osp.join(fdir, latest), _expected_ctx(cfg, geo), what="resume checkpoint",
        way_out="train into a new --output-dir (the existing run folder is kept)",
    )


#: Dassl keys kept so that Dassl YAMLs merge, but read by nothing here: a non-default value would silently do nothing
UNUSED_KEYS = {
    "MODEL.HEAD.HIDDEN_LAYERS": ((), "Dassl's MLP embedding head, which no trainer here builds"),
    "MODEL.HEAD.ACTIVATION": ("relu", "Dassl's MLP embedding head, which no trainer here builds"),
    "MODEL.HEAD.BN": (True, "Dassl's MLP embedding head, which no trainer here builds"),
    "MODEL.HEAD.DROPOUT": (0.0, "Dassl's MLP embedding head, which no trainer here builds"),
}


def check_unused_keys(cfg) -> None:
    """A key that exists only for Dassl compatibility and is set to another value than its default is an error (it
    would change nothing)."""
    for key, (default, what) in UNUSED_KEYS.items():
        node = cfg
        for part in key.split("."):
            node = node.get(part) if hasattr(node, "get") else None
        value = tuple(node) if isinstance(node, list) else node
        if node is not None and value != default:
            raise ConfigError(f"{key} = {node!r} configures {what}: it would change nothing. Remove it (the prompt "
                              "head is chosen by MODEL.HEAD.NAME / --head)")


def preflight(cfg, args: argparse.Namespace | None = None, files: bool = True) -> None:
    """Every check that needs neither the dataset nor CLIP. Must not write anything anywhere.

    ``files=False`` (e.g. a sweep checked on the submitting machine) skips what depends on files on this machine:
    weights, dataset folders and checkpoints. Also sets the process's few-shot cache mode
    (``dassl.data.cache_policy``): read-only for ``--eval-only``.
    """
    check_trainer(cfg)
    check_unused_keys(cfg)
    check_command_line(cfg, args)
    check_regularisers(cfg)
    check_corruption(cfg)
    check_prompt_length(cfg)
    geo = check_backbone(cfg, files=files)
    if files:
        check_dataset_path(cfg)
        check_eval_checkpoints(cfg, args, geo)
        check_resume_checkpoint(cfg, args, geo)
    # the one setting (not a check): an evaluation never writes a few-shot cache into the data root
    from dassl.data.cache_policy import set_fewshot_cache_writable

    set_fewshot_cache_writable(not _arg(args, "eval_only"))
