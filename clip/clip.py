"""Loading CLIP weights offline, tokenising text, and the single ``load_clip`` used by every trainer.

Nothing is ever downloaded. A model name resolves, in this order, to:

1. a local model registered with :func:`register_local_model` (built in: ``TinySynth``, ``clip/weights/TinySynth.pt``);
2. an official OpenAI name (:data:`_MODELS`), read from the cache folder (``download_root``, else
   ``$CLIP_CACHE_DIR``, else ``~/.cache/clip``) under OpenAI's file name and SHA-256 verified (a successful
   verification is remembered in ``<file>.sha256.json`` keyed by size and mtime);
3. an existing file path.

Both OpenAI TorchScript archives and plain state dicts (optionally under a ``state_dict`` key) are accepted. Archives
are read as data (:mod:`clip.archive`: restricted unpickler, tensors straight from the zip); their TorchScript is
never compiled or run, and ``torch.jit.load`` is not used. Plain files load with ``torch.load(weights_only=True)``.

open_clip backbones (a model name plus a pretrained tag or file, ``hf-hub:ORG/NAME``, ``local-dir:FOLDER``) are
resolved and read by :mod:`clip.openclip`; ``load`` and ``load_clip`` take them through their ``pretrained`` argument.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable

import torch

from clip.archive import is_torchscript_archive, read_torchscript_state_dict
from clip.errors import BackboneConfigError, CorruptWeightsError, MissingWeightsError, UnknownModelError
from clip.model import CLIP, build_model, convert_weights
from clip.simple_tokenizer import SimpleTokenizer

logger = logging.getLogger(__name__)

__all__ = [
    "BackboneConfigError",
    "CorruptWeightsError",
    "MissingWeightsError",
    "UnknownModelError",
    "available_models",
    "build_model",
    "convert_weights",
    "load",
    "load_clip",
    "load_state_dict",
    "register_local_model",
    "tokenize",
]

CACHE_ENV = "CLIP_CACHE_DIR"
DEFAULT_CACHE_DIR = os.path.expanduser("~/.cache/clip")

_URL_BASE = "https://openaipublic.azureedge.net/clip/models"
_MODELS: dict[str, str] = {
    name: f"{_URL_BASE}/{sha}/{file}"
    for name, sha, file in [
        ("RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762", "RN50.pt"),
        ("RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599", "RN101.pt"),
        ("RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd", "RN50x4.pt"),
        ("RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa", "RN50x16.pt"),
        ("RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c", "RN50x64.pt"),
        ("ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", "ViT-B-32.pt"),
        ("ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", "ViT-B-16.pt"),
        ("ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", "ViT-L-14.pt"),
        ("ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", "ViT-L-14-336px.pt"),
    ]
}

_WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
_LOCAL_MODELS: dict[str, str] = {"TinySynth": os.path.join(_WEIGHTS_DIR, "TinySynth.pt")}

_JIT_METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")
_HASH_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------------------------------
# Names and files
# --------------------------------------------------------------------------------------------------------------------


def available_models() -> list[str]:
    """Official OpenAI model names, then registered local names."""
    return list(_MODELS) + [name for name in _LOCAL_MODELS if name not in _MODELS]


def register_local_model(name: str, path: str | os.PathLike) -> None:
    """Make ``name`` resolve to the weights file ``path`` (looked up before the official names)."""
    _LOCAL_MODELS[name] = os.fspath(path)


def cache_dir(download_root: str | os.PathLike | None = None) -> str:
    """The folder holding the official weights: ``download_root``, else ``$CLIP_CACHE_DIR``, else ``~/.cache/clip``."""
    if download_root is not None:
        return os.path.expanduser(os.fspath(download_root))
    return os.path.expanduser(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def _url_parts(url: str) -> tuple[str, str]:
    """(file name, expected SHA-256) of an OpenAI weights URL."""
    parts = url.rstrip("/").split("/")
    return parts[-1], parts[-2]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: str) -> str:
    return path + ".sha256.json"


def _read_verified(path: str, stat: os.stat_result) -> str | None:
    try:
        with open(_sidecar(path), encoding="utf-8") as fh:
            record = json.load(fh)
        if record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
            return str(record.get("sha256"))
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _write_verified(path: str, stat: os.stat_result, sha: str) -> None:
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
    tmp = f"{_sidecar(path)}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        os.replace(tmp, _sidecar(path))
    except OSError:  # read-only cache folder: just re-hash next time
        try:
            os.remove(tmp)
        except OSError:
            pass


def verify_sha256(path: str, expected: str, url: str | None = None) -> None:
    """Raise :class:`CorruptWeightsError` unless the file's SHA-256 is ``expected`` (cached per size+mtime)."""
    stat = os.stat(path)
    if _read_verified(path, stat) == expected:
        return
    actual = _sha256(path)
    if actual != expected:
        where = f" Fetch it again from {url} (on a machine with internet access) and replace the file." if url else ""
        raise CorruptWeightsError(
            f"SHA-256 mismatch for {path} ({stat.st_size} bytes): expected {expected}, got {actual}. "
            f"The file is truncated or corrupt.{where}"
        )
    _write_verified(path, stat, actual)


def _missing_official(name: str, url: str, root: str) -> MissingWeightsError:
    file_name, _ = _url_parts(url)
    return MissingWeightsError(
        f"CLIP weights for {name!r} not found: expected the file {os.path.join(root, file_name)}. "
        f"Put {file_name} in the folder {root} (set ${CACHE_ENV} to use another folder). "
        f"Nothing is downloaded here; fetch it on a machine with internet access from {url}"
    )


def _download(url: str, root: str | os.PathLike | None = None) -> str:
    """Offline stand-in for OpenAI's ``_download``: the verified path of ``url``'s file in the cache folder."""
    root = cache_dir(root)
    file_name, expected = _url_parts(url)
    path = os.path.join(root, file_name)
    if os.path.exists(path) and not os.path.isfile(path):
        raise RuntimeError(f"{path} exists and is not a regular file")
    if not os.path.isfile(path):
        name = next((n for n, u in _MODELS.items() if u == url), file_name)
        raise _missing_official(name, url, root)
    verify_sha256(path, expected, url)
    return path


def resolve_model_path(name_or_path: str | os.PathLike, download_root: str | os.PathLike | None = None) -> str:
    """The verified weights file of a model name or path (see the module docstring for the lookup order)."""
    name = os.fspath(name_or_path)
    if name in _LOCAL_MODELS:
        path = _LOCAL_MODELS[name]
        if not os.path.isfile(path):
            raise MissingWeightsError(
                f"local CLIP model {name!r} not found: expected the file {path}. Put the weights file there "
                f"(or call clip.register_local_model({name!r}, <path>) to point elsewhere)"
            )
        return path
    if name in _MODELS:
        return _download(_MODELS[name], download_root)
    if os.path.isfile(name):
        return name
    if name.endswith((".pt", ".pth", ".bin", ".tar")) or os.path.isabs(name) or name.startswith((".", "~")):
        raise MissingWeightsError(f"CLIP weights file {name} does not exist")
    raise UnknownModelError(
        f"unknown CLIP model {name!r} (neither a model name nor an existing file); "
        f"available models: {', '.join(available_models())}"
    )


# --------------------------------------------------------------------------------------------------------------------
# Reading weights
# --------------------------------------------------------------------------------------------------------------------


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    if is_torchscript_archive(path):
        # read as data (restricted unpickler, no TorchScript is compiled or run): see clip/archive.py
        state_dict = read_torchscript_state_dict(path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - truncated zip, bad pickle, EOF...
            raise CorruptWeightsError(
                f"cannot read CLIP weights from {path} (truncated or not a PyTorch file): {exc}"
            ) from exc
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CorruptWeightsError(f"{path} does not hold a state dict of tensors")
        state_dict = dict(obj)
    for key in _JIT_METADATA_KEYS:
        state_dict.pop(key, None)
    return state_dict


def load_state_dict(
    name_or_path: str | os.PathLike, download_root: str | os.PathLike | None = None
) -> dict[str, torch.Tensor]:
    """Plain OpenAI-layout state dict of a model name or weights file (TorchScript archive or saved state dict)."""
    return _read_state_dict(resolve_model_path(name_or_path, download_root))


def _build_from(name_or_path: str | os.PathLike, download_root: str | os.PathLike | None = None) -> CLIP:
    """``build_model(load_state_dict(...))``; an error about the weights names their file."""
    path = resolve_model_path(name_or_path, download_root)
    state_dict = _read_state_dict(path)
    try:
        return build_model(state_dict)
    except CorruptWeightsError as exc:
        if path in str(exc):
            raise
        raise CorruptWeightsError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------------------------------


def _convert_image_to_rgb(image):
    return image.convert("RGB")


OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def openai_preprocess_cfg(n_px: int) -> dict:
    """The preprocessing OpenAI's checkpoints expect (``CLIP.preprocess_cfg`` of an OpenAI-name model)."""
    return dict(size=n_px, mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic", resize_mode="shortest",
                source="openai")


def _transform(n_px: int, preprocess_cfg: dict | None = None) -> Callable:
    """CLIP's test-time preprocessing: bicubic resize of the short side, centre crop, RGB, tensor, normalise.

    ``preprocess_cfg`` (an open_clip model's ``size/mean/std/interpolation/resize_mode``) replaces OpenAI's values;
    ``resize_mode="squash"`` resizes both sides to ``n_px`` without cropping.
    """
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    pp = dict(openai_preprocess_cfg(n_px), **(preprocess_cfg or {}))
    interp = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
              "nearest": InterpolationMode.NEAREST}.get(pp["interpolation"], InterpolationMode.BICUBIC)
    n_px = int(pp["size"])
    resize = [Resize((n_px, n_px), interpolation=interp)] if pp["resize_mode"] == "squash" else [
        Resize(n_px, interpolation=interp), CenterCrop(n_px)]
    return Compose([*resize, _convert_image_to_rgb, ToTensor(), Normalize(pp["mean"], pp["std"])])


def _build_backbone(name: str | os.PathLike, pretrained, download_root, fp16: bool) -> CLIP:
    """The CLIP of a backbone name (+ open_clip tag/file); ``fp16`` = OpenAI's half-precision weight layout."""
    from clip import openclip

    spec = None
    if openclip.is_openclip_request(os.fspath(name), pretrained):
        spec = openclip.resolve(os.fspath(name), pretrained)
        if isinstance(spec, str):  # tag "openai": OpenAI's own file
            name, spec = spec, None
        else:
            for note in spec.notes:
                logger.warning(note)
            logger.info(f"open_clip backbone {spec.name}{f' ({spec.tag})' if spec.tag else ''}: {spec.weights}")
            return openclip.load_openclip(spec, fp16=fp16)
    model = _build_from(name, download_root)
    if not fp16:
        model.float()
    if os.fspath(name) in _MODELS and os.fspath(name) not in _LOCAL_MODELS:
        model.preprocess_cfg = openai_preprocess_cfg(model.visual.input_resolution)
    return model


def load(
    name: str | os.PathLike,
    device: str | torch.device = "cpu",
    jit: bool = False,
    download_root: str | os.PathLike | None = None,
    pretrained: str | bool | None = None,
) -> tuple[CLIP, Callable]:
    """OpenAI-compatible ``load``: ``(model, preprocess)``; fp16 weights, made fp32 on a CPU device; eval mode.

    ``jit=True`` is not supported (the non-JIT model is returned with a warning): running an archive's TorchScript
    would mean trusting the file, so it is never done; the weights are read as data. ``pretrained``: an open_clip tag or
    weights file for an open_clip model name (see :mod:`clip.openclip`); the preprocessing is then the model's.
    """
    if jit:
        warnings.warn("clip.load(jit=True) is not supported; returning the non-JIT model", stacklevel=2)
    cpu = torch.device(device).type == "cpu"
    model = _build_backbone(name, pretrained, download_root, fp16=not cpu).to(device).eval()
    return model, _transform(model.visual.input_resolution, model.preprocess_cfg)


PRECISIONS = ("fp16", "fp32", "amp")  # load_clip precisions (TRAINER.PREC)
_PRECISIONS = PRECISIONS
_warned_cpu_fp16 = False


def load_clip(
    backbone: str | os.PathLike,
    precision: str = "fp16",
    device: str | torch.device = "cpu",
    pretrained: str | bool | None = None,
) -> CLIP:
    """The loader every trainer uses: a frozen, eval-mode CLIP on ``device``.

    Args:
        backbone: model name (``ViT-B/16``, ``RN50``, ``TinySynth``, an open_clip name such as ``ViT-B-16``,
            ``hf-hub:ORG/NAME``, ...) or weights file.
        precision: ``fp16`` keeps the checkpoint's half-precision weights (``convert_weights``) on every device,
            as the references do (a CPU runs fp16 correctly but slowly: warned once per process); ``fp32`` and
            ``amp`` call ``.float()``.
        device: target device.
        pretrained: ``MODEL.BACKBONE.PRETRAINED``: an open_clip pretrained tag or weights file (a bool or empty
            string means none: OpenAI names and files load exactly as without it).
    """
    global _warned_cpu_fp16
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    half = precision == "fp16"  # fp16 means fp16 on every device (issue 13)
    if half and device.type == "cpu" and not _warned_cpu_fp16:
        logger.warning("PREC fp16 on CPU: half-precision CLIP as on a GPU (same numerics as the references), but "
                       "CPU fp16 kernels are slow; set PREC fp32 for faster CPU runs")
        _warned_cpu_fp16 = True
    model = _build_backbone(backbone, pretrained, None, fp16=half)
    model.to(device).eval()
    model.requires_grad_(False)
    return model


_tokenizer: SimpleTokenizer | None = None


def _get_tokenizer() -> SimpleTokenizer:
    global _tokenizer
    if _tokenizer is None:
        _tokenizer = SimpleTokenizer()
    return _tokenizer


def tokenize(texts: str | list[str], context_length: int = 77, truncate: bool = False) -> torch.LongTensor:
    """Token ids [N, context_length] (int64): ``SOT + encode(text) + EOT``, zero-padded.

    Raises RuntimeError when a text is too long unless ``truncate``, which cuts the row and forces EOT last.
    """
    tok = _get_tokenizer()
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [tok.sot_token, *tok.encode(text), tok.eot_token]
        if len(ids) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            ids = ids[:context_length]
            ids[-1] = tok.eot_token
        result[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return result
