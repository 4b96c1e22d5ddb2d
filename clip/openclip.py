"""open_clip backbones from local files: names, pretrained tags, ``hf-hub:`` ids, file formats, architecture settings.

A backbone is an open_clip request when ``MODEL.BACKBONE.PRETRAINED`` is a non-empty string (a pretrained tag such
as ``laion2b_s34b_b88k`` or a weights file), or the name is ``hf-hub:ORG/NAME`` / ``local-dir:FOLDER``, or the name
is an open_clip model name that is not one of OpenAI's (e.g. ``ViT-B-16-quickgelu``; it then needs a tag).

Facts come from the installed ``open_clip_torch`` package, read at run time and never from a weights file: its
model config JSONs (architecture, ``quick_gelu``, image size, context length, tokenizer) and its pretrained-tag
table (Hugging Face repo ids, file names, image mean/std). Nothing is downloaded: the weights are looked up in

1. ``MODEL.BACKBONE.PRETRAINED`` when it is a file path;
2. the CLIP cache folder (``$CLIP_CACHE_DIR``, else ``~/.cache/clip``): ``<ORG>/<NAME>/<file>`` (what
   ``huggingface-cli download ORG/NAME FILE --local-dir $CLIP_CACHE_DIR/ORG/NAME`` writes) and, for tags
   released as URLs, the URL's file name (where open_clip itself downloads them);
3. the Hugging Face cache (``$HF_HUB_CACHE`` / ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``): ``models--ORG--NAME/snapshots/<revision>/<file>`` (``refs/main`` first).

Formats: ``.safetensors`` (``safetensors.torch.load_file``) and open_clip state dicts ``.bin`` / ``.pt`` / ``.pth``
(``torch.load(weights_only=True)``; a ``state_dict`` wrapper and DDP's ``module.`` prefix are accepted; an OpenAI
TorchScript archive goes through ``clip.clip``'s reader). Key mapping: open_clip's CLIP keys are OpenAI's; custom-text
checkpoints (``text.transformer...``, ``text.token_embedding`` ...) lose their ``text.`` prefix.

Supported: the CLIP-family models with OpenAI-style towers and the OpenAI BPE tokenizer (ViT and ModifiedResNet
image towers; GELU or QuickGELU; any head width, MLP ratio, LayerScale; class-token pooling after ``ln_post``;
argmax (EOT) text pooling after ``ln_final``). Everything else (timm / Hugging Face towers, SigLIP, CLIPA, CoCa,
multilingual tokenizers, attentional pooling, ...) is refused with the reason.
"""
from __future__ import annotations

import difflib
import functools
import glob
import importlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from dataclasses import dataclass, field

import torch

from clip.errors import CorruptWeightsError, MissingWeightsError, UnknownModelError

logger = logging.getLogger(__name__)

__all__ = [
    "OpenClipSpec",
    "describe",
    "UnsupportedModelError",
    "hf_cache_dirs",
    "is_openclip_request",
    "known_backbones",
    "load_openclip",
    "model_config",
    "pretrained_tags",
    "read_weights",
    "resolve",
    "supported_reason",
    "to_openai_layout",
]

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
HF_CONFIG_NAME = "open_clip_config.json"
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
#: open_clip's preprocessing defaults (``PreprocessCfg``), overridden by the tag's or the hf-hub config's values.
DEFAULT_PREPROCESS = dict(mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic", resize_mode="shortest")

_TEXT_PREFIXED = ("text_projection", "positional_embedding", "token_embedding", "transformer", "ln_final")


class UnsupportedModelError(UnknownModelError):
    """A known open_clip model whose architecture or tokenizer this CLIP core does not implement."""


# --------------------------------------------------------------------------------------------------------------------
# Facts from the installed open_clip package
# --------------------------------------------------------------------------------------------------------------------


def _package_dir() -> str | None:
    spec = importlib.util.find_spec("open_clip")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


@functools.lru_cache(maxsize=1)
def _model_configs() -> dict[str, dict]:
    """open_clip's built-in model configs (``open_clip/model_configs/*.json``), by model name."""
    folder = _package_dir()
    configs: dict[str, dict] = {}
    if folder is None:
        return configs
    for path in sorted(glob.glob(os.path.join(folder, "model_configs", "*.json"))):
        try:
            with open(path, encoding="utf-8") as fh:
                cfg = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and "vision_cfg" in cfg and "text_cfg" in cfg:
            configs[os.path.splitext(os.path.basename(path))[0]] = cfg
    return configs


@functools.lru_cache(maxsize=1)
def _pretrained_table() -> dict[str, dict[str, dict]]:
    """open_clip's pretrained-tag table ``{model: {tag: {hf_hub, url, mean, std, quick_gelu, ...}}}``.

    ``open_clip/pretrained.py`` is a table module that imports only ``.constants`` and ``.version``; it is loaded
    under a private package name so that ``open_clip/__init__`` (the whole library, tens of seconds) is not imported.
    """
    folder = _package_dir()
    if folder is None:
        return {}
    name = "_promptclip_open_clip_facts"
    try:
        if name not in sys.modules:
            pkg = importlib.util.module_from_spec(importlib.machinery.ModuleSpec(name, None, is_package=True))
            pkg.__path__ = [folder]
            sys.modules[name] = pkg
        module = importlib.import_module(f"{name}.pretrained")
    except Exception as exc:  # noqa: BLE001 - layout changed: fall back to the real package
        logger.debug(f"reading open_clip's tag table without its package failed ({exc!r}); importing open_clip")
        try:
            module = importlib.import_module("open_clip.pretrained")
        except Exception:  # noqa: BLE001
            return {}
    table = getattr(module, "_PRETRAINED", {})
    return {str(m): {str(t): dict(c) for t, c in tags.items()} for m, tags in table.items()}


def _clean_name(name: str) -> str:
    return name.replace("/", "-")


def _clean_tag(tag: str) -> str:
    return tag.lower().replace("-", "_")


def model_config(name: str) -> dict | None:
    """A copy of open_clip's config of model ``name`` (``ViT-B/16`` is read as ``ViT-B-16``), or None."""
    cfg = _model_configs().get(_clean_name(name))
    return json.loads(json.dumps(cfg)) if cfg is not None else None


def pretrained_tags(name: str) -> dict[str, dict]:
    """The pretrained tags open_clip knows for model ``name`` (empty if none)."""
    return _pretrained_table().get(_clean_name(name), {})


def supported_reason(model_cfg: dict) -> str | None:
    """Why this CLIP core cannot run an open_clip model config (None: supported)."""
    v, t = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    if "multimodal_cfg" in model_cfg:
        return "CoCa models (a multimodal text decoder) are not CLIP-family"
    if model_cfg.get("init_logit_bias") is not None:
        return "SigLIP models (sigmoid loss, timm towers, their own tokenizer) are not supported"
    if v.get("timm_model_name"):
        return f"its image tower is the timm model {v['timm_model_name']!r}"
    if t.get("hf_model_name"):
        return f"its text tower is the Hugging Face model {t['hf_model_name']!r}"
    if t.get("hf_tokenizer_name"):
        return f"it uses the {t['hf_tokenizer_name']!r} tokenizer (only OpenAI's BPE tokenizer is available)"
    if t.get("vocab_size", 49408) != 49408:
        return f"its vocabulary has {t['vocab_size']} tokens (OpenAI's BPE has 49408)"
    if t.get("context_length", 77) != 77:
        return f"its text context is {t['context_length']} tokens (the tokenizer and prompt learners use 77)"
    checks = [
        (v.get("attentional_pool"), "attentional pooling in the image tower"),
        (v.get("no_ln_pre"), "an image tower without ln_pre"),
        (v.get("pool_type", "tok") != "tok", f"image pooling {v.get('pool_type')!r} (only the class token)"),
        (v.get("final_ln_after_pool"), "ln_post after pooling"),
        (v.get("pos_embed_type", "learnable") != "learnable", "fixed sin-cos positional embeddings"),
        (t.get("pool_type", "argmax") != "argmax", f"text pooling {t.get('pool_type')!r} (only argmax/EOT)"),
        (t.get("no_causal_mask"), "a bidirectional text tower"),
        (t.get("embed_cls"), "an appended text class token"),
        (t.get("proj_bias") or t.get("proj_type", "linear") != "linear", "a text projection other than a matrix"),
    ]
    for tower, cfg in (("image", v), ("text", t)):
        checks.append((bool(cfg.get("norm_kwargs")), f"{tower} LayerNorm options {cfg.get('norm_kwargs')}"))
        checks.append((bool(cfg.get("act_kwargs")), f"{tower} activation options {cfg.get('act_kwargs')}"))
        for key in ("qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc"):
            checks.append((bool(cfg.get(key)), f"{tower} attention option {key}"))
        if cfg.get("block_type") not in (None, "default"):
            checks.append((True, f"{tower} block type {cfg.get('block_type')!r}"))
    for failed, what in checks:
        if failed:
            return f"it uses {what}"
    return None


# --------------------------------------------------------------------------------------------------------------------
# Where files are looked for
# --------------------------------------------------------------------------------------------------------------------


def _clip_cache_dir() -> str:
    from clip.clip import cache_dir

    return cache_dir()


def hf_cache_dirs() -> list[str]:
    """The Hugging Face hub cache folders searched, in order (duplicates removed)."""
    dirs = [os.environ.get("HF_HUB_CACHE"), os.environ.get("HUGGINGFACE_HUB_CACHE")]
    if os.environ.get("HF_HOME"):
        dirs.append(os.path.join(os.environ["HF_HOME"], "hub"))
    dirs.append(os.path.join("~", ".cache", "huggingface", "hub"))
    out: list[str] = []
    for d in dirs:
        if d:
            d = os.path.expanduser(d)
            if d not in out:
                out.append(d)
    return out


def _repo_folders(repo_id: str) -> list[str]:
    """Folders that may hold the files of Hugging Face repo ``ORG/NAME`` (existing or not), in search order."""
    folders = [os.path.join(_clip_cache_dir(), *repo_id.split("/"))]
    for root in hf_cache_dirs():
        repo_dir = os.path.join(root, "models--" + repo_id.replace("/", "--"))
        snapshots = os.path.join(repo_dir, "snapshots")
        main = None
        try:
            with open(os.path.join(repo_dir, "refs", "main"), encoding="utf-8") as fh:
                main = fh.read().strip()
        except OSError:
            pass
        revisions = []
        if os.path.isdir(snapshots):
            revisions = sorted(os.listdir(snapshots), key=lambda r: -os.path.getmtime(os.path.join(snapshots, r)))
        if main and main in revisions:
            revisions.remove(main)
            revisions.insert(0, main)
        folders.extend(os.path.join(snapshots, r) for r in revisions)
        if not revisions:
            folders.append(os.path.join(snapshots, "<revision>"))
    return folders


def _search_text(repo_id: str) -> str:
    hf = [os.path.join(root, "models--" + repo_id.replace("/", "--"), "snapshots", "<revision>")
          for root in hf_cache_dirs()]
    return ", ".join([os.path.join(_clip_cache_dir(), *repo_id.split("/"))] + hf)


def _fetch_hint(repo_id: str, files: list[str]) -> str:
    return (
        f"Nothing is downloaded here; on a machine with internet access run `huggingface-cli download {repo_id} "
        f"{files[0]}` and copy its Hugging Face cache folder models--{repo_id.replace('/', '--')} into "
        f"{hf_cache_dirs()[0]} (or put the file into {os.path.join(_clip_cache_dir(), *repo_id.split('/'))})"
    )


def _find_in_repo(repo_id: str, files: list[str]) -> str | None:
    for folder in _repo_folders(repo_id):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


# --------------------------------------------------------------------------------------------------------------------
# Resolution: name (+ tag or file) -> config, preprocessing, weights file
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class OpenClipSpec:
    """A resolved open_clip backbone (everything known before the weights are read)."""

    name: str  # the model name / hf-hub id as given
    model_cfg: dict
    preprocess: dict  # size, mean, std, interpolation, resize_mode
    weights: str  # the weights file
    quick_gelu: bool
    tag: str = ""
    notes: list[str] = field(default_factory=list)


def _is_path_like(value: str) -> bool:
    return value.endswith(WEIGHT_SUFFIXES) or os.sep in value or value.startswith((".", "~"))


def is_openclip_request(name: str, pretrained=None) -> bool:
    """Whether ``(MODEL.BACKBONE.NAME, MODEL.BACKBONE.PRETRAINED)`` names an open_clip backbone (see module doc)."""
    from clip.clip import _LOCAL_MODELS, _MODELS

    name = os.fspath(name)
    if name.startswith((HF_HUB_PREFIX, LOCAL_DIR_PREFIX)):
        return True
    if isinstance(pretrained, str) and pretrained.strip():
        return True
    if name in _MODELS or name in _LOCAL_MODELS or os.path.isfile(name):
        return False
    return _clean_name(name) in _model_configs()


def _preprocess(model_cfg: dict, overrides: dict | None = None) -> dict:
    pp = dict(DEFAULT_PREPROCESS)
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if overrides and overrides.get(key) is not None:
            pp[key] = overrides[key]
    size = model_cfg["vision_cfg"].get("image_size", 224)
    pp["size"] = int(size[0] if isinstance(size, (list, tuple)) else size)
    pp["mean"] = tuple(float(x) for x in pp["mean"])
    pp["std"] = tuple(float(x) for x in pp["std"])
    pp["source"] = "open_clip"
    return pp


def _check_supported(display: str, model_cfg: dict) -> None:
    reason = supported_reason(model_cfg)
    if reason:
        raise UnsupportedModelError(
            f"open_clip model {display!r} is not supported by this CLIP core: {reason}. Supported are the CLIP-family "
            f"models with OpenAI-style towers and OpenAI's tokenizer (python train.py --list-backbones lists them)"
        )


def _folder_spec(display: str, folders: list[str], search: str, hint: str) -> OpenClipSpec:
    """hf-hub / local-dir: ``open_clip_config.json`` (model_cfg + preprocess_cfg) and the weights next to it."""
    weights_names = [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME, "open_clip_pytorch_model.safetensors",
                     "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin"]
    for folder in folders:
        cfg_path = os.path.join(folder, HF_CONFIG_NAME)
        if not os.path.isfile(cfg_path):
            continue
        try:
            with open(cfg_path, encoding="utf-8") as fh:
                config = json.load(fh)
        except (OSError, ValueError) as exc:
            raise CorruptWeightsError(f"cannot read {cfg_path}: {exc}") from exc
        model_cfg = config.get("model_cfg", config) if isinstance(config, dict) else None
        if not isinstance(model_cfg, dict) or "vision_cfg" not in model_cfg or "text_cfg" not in model_cfg:
            raise CorruptWeightsError(f"{cfg_path} is not an open_clip config (no model_cfg.vision_cfg/text_cfg)")
        _check_supported(display, model_cfg)
        weights = next((os.path.join(folder, n) for n in weights_names if os.path.isfile(os.path.join(folder, n))),
                       None)
        if weights is None:
            raise MissingWeightsError(
                f"open_clip weights for {display!r} not found: {cfg_path} exists but none of "
                f"{', '.join(weights_names[:2])} is next to it. {hint}"
            )
        pp = _preprocess(model_cfg, config.get("preprocess_cfg") if isinstance(config, dict) else None)
        return OpenClipSpec(display, model_cfg, pp, weights, bool(model_cfg.get("quick_gelu", False)))
    raise MissingWeightsError(
        f"open_clip backbone {display!r} not found: looked for {HF_CONFIG_NAME} with {HF_SAFE_WEIGHTS_NAME} or "
        f"{HF_WEIGHTS_NAME} in {search}. {hint}"
    )


def resolve(name: str, pretrained=None) -> OpenClipSpec | str:
    """Resolve an open_clip request; an OpenAI-weights request (tag ``openai``) returns the OpenAI model name.

    Raises:
        UnknownModelError / UnsupportedModelError: unknown or unsupported name, unknown tag.
        MissingWeightsError: the files are not on disk (the message lists files, folders and the fetch command).
    """
    from clip.clip import _MODELS

    name = os.fspath(name)
    tag = pretrained.strip() if isinstance(pretrained, str) else ""
    if name.startswith(HF_HUB_PREFIX):
        repo_id = name[len(HF_HUB_PREFIX):].strip("/")
        if repo_id.count("/") != 1:
            raise UnknownModelError(f"{name!r}: an hf-hub backbone is written hf-hub:ORG/NAME")
        if tag:
            raise UnknownModelError(
                f"{name!r} carries its own weights; leave MODEL.BACKBONE.PRETRAINED empty (got {tag!r})"
            )
        return _folder_spec(name, _repo_folders(repo_id), _search_text(repo_id),
                            _fetch_hint(repo_id, [HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME]))
    if name.startswith(LOCAL_DIR_PREFIX):
        folder = os.path.expanduser(name[len(LOCAL_DIR_PREFIX):])
        return _folder_spec(name, [folder], folder,
                            f"Put {HF_CONFIG_NAME} and the weights (as published with the model) into {folder}")

    cleaned = _clean_name(name)
    model_cfg = model_config(cleaned)
    if model_cfg is None:
        if _package_dir() is None:
            raise UnknownModelError(
                f"unknown CLIP model {name!r}: open_clip model names need the open_clip_torch package "
                f"(pip install -r requirements.txt)"
            )
        close = difflib.get_close_matches(cleaned, list(_model_configs()), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownModelError(
            f"unknown CLIP model {name!r} with MODEL.BACKBONE.PRETRAINED={tag!r}: neither an OpenAI name nor an "
            f"open_clip model name{hint}; python train.py --list-backbones lists the known ones"
        )
    tags = pretrained_tags(cleaned)
    if not tag:
        known = ", ".join(tags) or "none known; give a weights file"
        raise UnknownModelError(
            f"{name!r} is an open_clip model name: set MODEL.BACKBONE.PRETRAINED to one of its pretrained tags "
            f"({known}) or to a weights file"
        )
    _check_supported(cleaned, model_cfg)
    if os.path.isfile(os.path.expanduser(tag)) or _is_path_like(tag):
        path = os.path.expanduser(tag)
        if not os.path.isfile(path):
            raise MissingWeightsError(f"open_clip weights file {path} (MODEL.BACKBONE.PRETRAINED) does not exist")
        quick = bool(model_cfg.get("quick_gelu", False))
        return OpenClipSpec(cleaned, model_cfg, _preprocess(model_cfg), path, quick)

    tag_cfg = tags.get(_clean_tag(tag))
    if tag_cfg is None:
        raise UnknownModelError(
            f"unknown pretrained tag {tag!r} for open_clip model {cleaned!r}; its tags: "
            f"{', '.join(tags) or 'none'} (or give a weights file path)"
        )
    url = tag_cfg.get("url") or ""
    openai = next((n for n, u in _MODELS.items() if url and u == url), None) if _clean_tag(tag) == "openai" else None
    if openai is not None:
        # OpenAI's own file (SHA-256 checked by clip.clip) when it is there, else open_clip's copy on the hub
        from clip.clip import _url_parts

        if os.path.isfile(os.path.join(_clip_cache_dir(), _url_parts(_MODELS[openai])[0])):
            return openai
    quick = bool(tag_cfg.get("quick_gelu", False))
    notes = []
    if quick != bool(model_cfg.get("quick_gelu", False)):
        notes.append(
            f"the {tag!r} weights were trained with {'QuickGELU' if quick else 'GELU'} while the {cleaned} config says "
            f"{'QuickGELU' if model_cfg.get('quick_gelu') else 'GELU'}: using the weights' "
            f"{'QuickGELU' if quick else 'GELU'} (open_clip's name for this pair is "
            f"{cleaned + '-quickgelu' if quick else cleaned.removesuffix('-quickgelu')})"
        )
    candidates: list[str] = []
    hub = tag_cfg.get("hf_hub") or ""
    if hub:
        # open_clip's convention: "ORG/NAME/" (default file names) or "ORG/NAME/FILE"
        repo_id, file_name = (hub.rstrip("/"), "") if hub.endswith("/") else os.path.split(hub)
        files = [file_name] if file_name else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        if file_name.endswith((".bin", ".pth")) and file_name != HF_WEIGHTS_NAME:
            files.insert(0, file_name[:-4] + ".safetensors")
        found = _find_in_repo(repo_id, files)
        if found:
            return OpenClipSpec(cleaned, model_cfg, _preprocess(model_cfg, tag_cfg), found, quick, tag, notes)
        candidates.append(f"{' or '.join(files)} in {_search_text(repo_id)}")
        hint = _fetch_hint(repo_id, files)
    if url and openai is not None:
        return openai  # not on disk: clip.clip's error names OpenAI's file, folder and URL
    if url:
        file_name = os.path.basename(url)
        path = os.path.join(_clip_cache_dir(), file_name)
        if os.path.isfile(path):
            return OpenClipSpec(cleaned, model_cfg, _preprocess(model_cfg, tag_cfg), path, quick, tag, notes)
        candidates.append(f"{file_name} in {_clip_cache_dir()}")
        if not hub:
            hint = f"Nothing is downloaded here; on a machine with internet access fetch {url} into that folder"
    if not candidates:
        raise UnknownModelError(f"open_clip tag {tag!r} of {cleaned!r} names no file (hf_hub and url are empty)")
    raise MissingWeightsError(
        f"open_clip weights for {cleaned!r} (tag {tag!r}) not found: looked for {'; and for '.join(candidates)}. "
        f"{hint}"
    )


def describe(name: str, pretrained=None) -> dict | None:
    """What a backbone expects, without reading its weights: ``{"resolution", "text_width", "embed_dim",
    "preprocess", "weights"}`` for an open_clip request, None otherwise (OpenAI names and files: see ``clip.clip``).

    Raises the errors of :func:`resolve` (unknown / unsupported / missing files). For checks before a run starts.
    """
    if not is_openclip_request(name, pretrained):
        return None
    spec = resolve(name, pretrained)
    if isinstance(spec, str):
        return None
    return dict(resolution=spec.preprocess["size"], text_width=spec.model_cfg["text_cfg"].get("width", 512),
                embed_dim=spec.model_cfg["embed_dim"], preprocess=dict(spec.preprocess), weights=spec.weights)


# --------------------------------------------------------------------------------------------------------------------
# Reading and mapping weights
# --------------------------------------------------------------------------------------------------------------------


def read_weights(path: str) -> dict[str, torch.Tensor]:
    """State dict of an open_clip weights file (.safetensors, or a torch state dict), never running code from it."""
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError as exc:  # pragma: no cover - in requirements/base.txt
            raise CorruptWeightsError(f"reading {path} needs the safetensors package (pip install safetensors)") from exc
        try:
            return dict(load_file(path, device="cpu"))
        except Exception as exc:  # noqa: BLE001 - truncated/corrupt header
            raise CorruptWeightsError(f"cannot read the safetensors file {path} (truncated or corrupt): {exc}") from exc
    from clip import clip as clip_mod

    sd = clip_mod.load_state_dict(path)  # torch.load(weights_only=True), TorchScript via the archive reader
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def to_openai_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip keys -> this core's (OpenAI's): ``text.`` prefix of custom-text checkpoints removed; non-weights
    (``attn_mask``, ``text.transformer.embeddings.position_ids``) dropped."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("text.") and key[len("text."):].startswith(_TEXT_PREFIXED):
            key = key[len("text."):]
        if key.endswith("attn_mask") or key.endswith("position_ids"):
            continue
        out[key] = value
    if "logit_bias" in out:
        raise CorruptWeightsError("these weights have a logit_bias (a SigLIP model), which this CLIP core does not run")
    return out


def _expected_sizes(model_cfg: dict) -> dict:
    v, t = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    size = v.get("image_size", 224)
    size = size[0] if isinstance(size, (list, tuple)) else size
    layers = v.get("layers", 12)
    exp = dict(
        embed_dim=model_cfg["embed_dim"],
        vision_width=v.get("width", 768),
        image_resolution=size,
        context_length=t.get("context_length", 77),
        transformer_width=t.get("width", 512),
        transformer_layers=t.get("layers", 12),
    )
    if isinstance(layers, (list, tuple)):
        exp["vision_layers"] = tuple(layers)
    else:
        exp["vision_layers"] = layers
        exp["vision_patch_size"] = v.get("patch_size", 16)
    return exp


def _settings(model_cfg: dict, quick_gelu: bool) -> dict:
    v, t = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    head_width = v.get("head_width", 64)
    width = v.get("width", 768)
    vision_heads = width * 32 // head_width if isinstance(v.get("layers"), (list, tuple)) else width // head_width
    return dict(act="quick_gelu" if quick_gelu else "gelu", vision_heads=vision_heads,
                transformer_heads=t.get("heads", 8))


def load_openclip(spec: OpenClipSpec, fp16: bool = True):
    """Build our CLIP from a resolved spec: weights read, keys mapped, sizes checked against the config, strict load.

    ``fp16`` converts to OpenAI's half-precision layout after loading (``convert_weights``); else fp32 parameters
    hold the file's values exactly (fp16 files are upcast).
    """
    from clip.model import _infer_sizes, build_model, convert_weights

    sd = to_openai_layout(read_weights(spec.weights))
    try:
        inferred = _infer_sizes(sd)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise CorruptWeightsError(
            f"{spec.weights} is not an open_clip CLIP-family state dict (cannot infer the sizes: {exc!r})"
        ) from exc
    for key, want in _expected_sizes(spec.model_cfg).items():
        if inferred.get(key) != want:
            raise CorruptWeightsError(
                f"{spec.weights} does not hold the open_clip model {spec.name!r}: {key} is {inferred.get(key)} in the "
                f"file but {want} in the model config (a different model's weights, or resized positional embeddings)"
            )
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    model = build_model(sd, fp16=False, **_settings(spec.model_cfg, spec.quick_gelu))
    if fp16:
        convert_weights(model)
    model.preprocess_cfg = dict(spec.preprocess)
    return model


# --------------------------------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------------------------------


def known_backbones() -> list[dict]:
    """Every (model, tag) open_clip knows, with ``supported`` (None or the reason) and ``path`` (found file or None)."""
    rows = []
    configs = _model_configs()
    for model, tags in sorted(_pretrained_table().items()):
        cfg = configs.get(model)
        reason = "no model config" if cfg is None else supported_reason(cfg)
        for tag in tags:
            row = dict(model=model, tag=tag, supported=reason, path=None)
            if reason is None:
                try:
                    spec = resolve(model, tag)
                    row["path"] = spec if isinstance(spec, str) else spec.weights
                except (MissingWeightsError, CorruptWeightsError):
                    pass
            rows.append(row)
    return rows


def local_hub_models() -> list[tuple[str, str]]:
    """``(hf-hub:ORG/NAME, folder)`` of every open_clip repo found in the Hugging Face caches."""
    found = []
    for root in hf_cache_dirs():
        for cfg in sorted(glob.glob(os.path.join(root, "models--*--*", "snapshots", "*", HF_CONFIG_NAME))):
            repo = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(cfg))))[len("models--"):]
            name = HF_HUB_PREFIX + repo.replace("--", "/", 1)
            if all(name != n for n, _ in found):
                found.append((name, os.path.dirname(cfg)))
    return found
