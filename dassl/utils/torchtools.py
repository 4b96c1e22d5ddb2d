"""Checkpoint I/O and small torch helpers (Dassl ``dassl.utils.torchtools``).

Checkpoints are ``torch.save`` dicts with the Dassl keys ``state_dict``, ``epoch``, ``optimizer``,
``scheduler`` and ``val_result`` (plus ``rng_state``), holding only tensors and plain Python values,
so they load with ``torch.load(weights_only=True)``. Files are written atomically: a temporary file
in the destination folder is written, flushed, fsynced and then ``os.replace``-d onto the final
name; the ``checkpoint`` pointer file is updated (also atomically) only after that succeeded.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import os.path as osp
import pickle
import random
import shutil
import warnings
import zipfile
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .errors import CheckpointNotFoundError, CorruptCheckpointError, UnsafeFileError
from .safe_pickle import InertStub, safe_pickle_module
from .tools import atomic_open, atomic_write_text, mkdir_if_missing

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointNotFoundError",
    "save_checkpoint",
    "load_checkpoint",
    "resume_from_checkpoint",
    "load_pretrained_weights",
    "count_num_param",
    "get_rng_state",
    "set_rng_state",
    "read_pointer",
    "POINTER_FILE",
]

POINTER_FILE = "checkpoint"


def get_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) RNG states as plain values and tensors."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": (py_version, tuple(py_state), py_gauss),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        s = state["numpy"]
        keys = s["keys"].numpy() if isinstance(s["keys"], torch.Tensor) else np.asarray(s["keys"])
        np.random.set_state((s["name"], keys.astype(np.uint32), s["pos"], s["has_gauss"], s["cached_gaussian"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def _atomic_torch_save(obj: Any, fpath: str) -> None:
    with atomic_open(fpath, "wb") as f:
        torch.save(obj, f)


def _atomic_copy(src: str, dst: str) -> None:
    with atomic_open(dst, "wb") as fout, open(src, "rb") as fin:
        shutil.copyfileobj(fin, fout)


def save_checkpoint(
    state: dict[str, Any],
    save_dir: str,
    is_best: bool = False,
    remove_module_from_keys: bool = True,
    model_name: str = "",
    update_pointer: bool = True,
) -> str:
    """Save ``state`` to ``save_dir/<model_name or model.pth.tar-<epoch>>`` atomically.

    Args:
        state: dict with at least ``state_dict`` and ``epoch``.
        save_dir: destination folder (created).
        is_best: also copy the file to ``model-best.pth.tar``.
        remove_module_from_keys: strip a leading ``module.`` (DataParallel) from the state-dict keys.
        model_name: file name; defaults to ``model.pth.tar-<epoch>``.
        update_pointer: rewrite the ``checkpoint`` pointer file with the saved file's name.

    Returns:
        The path of the saved file.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys and "state_dict" in state:
        sd = state["state_dict"]
        new_sd = OrderedDict()
        for k, v in sd.items():
            new_sd[k[7:] if k.startswith("module.") else k] = v
        state = dict(state)
        state["state_dict"] = new_sd

    if not model_name:
        model_name = f"model.pth.tar-{state['epoch']}"
    fpath = osp.join(save_dir, model_name)
    _atomic_torch_save(state, fpath)
    logger.info(f"Checkpoint saved to {fpath}")

    if update_pointer:
        atomic_write_text(f"{osp.basename(fpath)}\n", osp.join(save_dir, POINTER_FILE))

    if is_best:
        best_fpath = osp.join(osp.dirname(fpath), "model-best.pth.tar")
        _atomic_copy(fpath, best_fpath)
        logger.info(f'Best checkpoint saved to "{best_fpath}"')
    return fpath


def _map_location():
    return None if torch.cuda.is_available() else "cpu"


_TORCHSCRIPT_HINT = (
    "refused because loading it would run its code. Checkpoints of prompt learners, heads and runs are plain "
    "torch.save files of tensors; a TorchScript file here was not written by a training run (do not use a file of "
    "unknown origin; CLIP weights belong in MODEL.BACKBONE.NAME, where archives are read as data)"
)


def _zip_entries(data: bytes) -> list[str] | None:
    """Entry names of a zip file's bytes (Python's reader), or None when it is not a readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return None


def _torch_sees_torchscript(data: bytes) -> bool:
    """torch.load's own test (``constants.pkl`` in the records) on the same bytes torch.load will get."""
    buf = io.BytesIO(data)
    try:
        if not torch.serialization._is_zipfile(buf):
            return False
        buf.seek(0)
        reader = torch._C.PyTorchFileReader(buf)
        return "constants.pkl" in reader.get_all_records()
    except Exception:  # noqa: BLE001 - torch cannot open it as a zip: torch.load will fail without dispatching
        return False


def _is_torchscript_bytes(data: bytes) -> bool:
    names = _zip_entries(data)
    if names is not None:
        for entry in names:
            parts = entry.split("/")
            if (len(parts) >= 2 and parts[1] == "code") or parts[-1] == "constants.pkl":
                return True
    return _torch_sees_torchscript(data)


class _JitRefused(RuntimeError):
    pass


@contextlib.contextmanager
def _jit_load_refused():
    """Defence in depth around ``torch.load(weights_only=False)``: its TorchScript dispatch raises instead."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _JitRefused("torch.load tried to dispatch to torch.jit.load")

    original = torch.jit.load
    torch.jit.load = refuse
    try:
        yield
    finally:
        torch.jit.load = original


def _first_stub(obj: Any, depth: int = 0) -> InertStub | None:
    if isinstance(obj, InertStub):
        return obj
    if depth < 50 and isinstance(obj, dict):
        obj = list(obj.values())
    if depth < 50 and isinstance(obj, (list, tuple)):
        for v in obj:
            found = _first_stub(v, depth + 1)
            if found is not None:
                return found
    return None


def _check_legacy(ckpt: Any, fpath: str) -> None:
    """A legacy file read with inert stubs is a checkpoint only if its weights are tensors (stubs elsewhere,
    e.g. a pickled scheduler, are what upstream Dassl writes)."""
    stub = _first_stub(ckpt) if not isinstance(ckpt, dict) else _first_stub(ckpt.get("state_dict"))
    if stub is None:
        return
    where = "instead of a checkpoint dict" if not isinstance(ckpt, dict) else "among its weights (state_dict)"
    raise CorruptCheckpointError(
        f"{fpath} is not a checkpoint: it holds a pickled object {stub.stub_module}.{stub.stub_name} {where}; "
        "it was not executed (pickled objects are never run). Checkpoints of this codebase and of the reference "
        "forks hold tensors there; do not use a file of unknown origin"
    )


def load_checkpoint(fpath: str | None) -> Any:
    """Load a checkpoint as data; nothing in the file is ever executed.

    The file is read once into memory and everything below works on those bytes:

    1. A TorchScript archive (zip entries ``code/`` or ``constants.pkl``, by Python's zip reader and by torch's
       own test) is refused with :class:`UnsafeFileError` before anything in it is unpickled: ``torch.load``
       would hand it to ``torch.jit.load``, which runs its code.
    2. ``torch.load(weights_only=True)``.
    3. If that refuses the file (upstream Dassl checkpoints pickle scheduler objects), it is read again through
       :mod:`dassl.utils.safe_pickle`: tensors, containers and plain values load normally and every other pickled
       object becomes an inert stub that executed nothing (step 1 guarantees torch cannot dispatch to TorchScript).

    Raises:
        ValueError: ``fpath`` is None.
        CheckpointNotFoundError (a FileNotFoundError): the file does not exist.
        UnsafeFileError: a TorchScript archive (code).
        CorruptCheckpointError (a RuntimeError): empty, truncated or not a PyTorch checkpoint.
    """
    if fpath is None:
        raise ValueError("File path is None")
    fpath = osp.abspath(osp.expanduser(fpath))
    if not osp.exists(fpath):
        raise CheckpointNotFoundError(f'checkpoint not found at "{fpath}"')
    if not osp.isfile(fpath):
        raise CorruptCheckpointError(f"{fpath} is not a file (a checkpoint is a file written by torch.save)")
    with open(fpath, "rb") as f:
        data = f.read()
    if not data:
        raise CorruptCheckpointError(
            f"{fpath} is empty (0 bytes), not a checkpoint: the run that wrote it was probably interrupted or the "
            "disk was full; use another epoch's checkpoint or train again into a new OUTPUT_DIR"
        )
    if _is_torchscript_bytes(data):
        raise UnsafeFileError(f"{fpath} is a TorchScript archive (code), not a checkpoint; {_TORCHSCRIPT_HINT}")
    bad = (
        f"cannot read checkpoint {fpath} ({len(data)} bytes): it is truncated or not a PyTorch checkpoint; "
        "use another epoch's checkpoint or train again into a new OUTPUT_DIR"
    )
    map_location = _map_location()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, UnicodeDecodeError) as e:
        first_error = e
    except Exception as e:  # noqa: BLE001 - EOFError, ValueError, ... on damaged files
        raise CorruptCheckpointError(f"{bad} ({type(e).__name__}: {e})") from e
    for extra in ({}, {"encoding": "latin1"}):
        try:
            with warnings.catch_warnings(), _jit_load_refused():
                warnings.simplefilter("ignore")
                ckpt = torch.load(
                    io.BytesIO(data),
                    map_location=map_location,
                    weights_only=False,
                    pickle_module=safe_pickle_module(),
                    **extra,
                )
        except UnicodeDecodeError:
            continue
        except _JitRefused as e:
            raise UnsafeFileError(f"{fpath} is a TorchScript archive (code), not a checkpoint; {_TORCHSCRIPT_HINT}") from e
        except Exception as e:  # noqa: BLE001 - anything here means an unreadable file
            msg = " ".join(str(e).split())[:300]
            raise CorruptCheckpointError(f"{bad} ({type(e).__name__}: {msg})") from e
        _check_legacy(ckpt, fpath)
        logger.info(
            f"Note: {fpath} is a legacy checkpoint with pickled objects; read it with the restricted unpickler "
            "(pickled objects were replaced by inert stubs)"
        )
        return ckpt
    raise CorruptCheckpointError(f"{bad} ({type(first_error).__name__}: {first_error})")


def read_pointer(fdir: str) -> str | None:
    """The file name stored in ``fdir/checkpoint``, or None when the pointer or its target is missing."""
    pointer = osp.join(fdir, POINTER_FILE)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.readline().strip()
    if not name or not osp.isfile(osp.join(fdir, name)):
        return None
    return name


def _has_stub(obj: Any) -> bool:
    if isinstance(obj, InertStub):
        return True
    if isinstance(obj, dict):
        return any(_has_stub(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_has_stub(v) for v in obj)
    return False


def resume_from_checkpoint(
    fdir: str, model: nn.Module, optimizer=None, scheduler=None, restore_rng: bool = False
) -> int:
    """Resume from the file named in ``fdir/checkpoint``: model (strict), optimizer, scheduler, RNG.

    Returns:
        The stored ``epoch`` (the number of finished epochs), i.e. the epoch to start from.
    """
    name = read_pointer(fdir)
    if name is None:
        raise CheckpointNotFoundError(f'no valid "{POINTER_FILE}" pointer file in "{fdir}"')
    fpath = osp.join(fdir, name)
    logger.info(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    logger.info("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        logger.info("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        sched_state = checkpoint["scheduler"]
        if _has_stub(sched_state) and not hasattr(scheduler, "successor"):
            logger.info("Skipped the legacy pickled scheduler state (it holds objects)")
        else:
            scheduler.load_state_dict(sched_state)
            logger.info("Loaded scheduler")
    if restore_rng and checkpoint.get("rng_state") is not None:
        set_rng_state(checkpoint["rng_state"])
        logger.info("Restored RNG states")
    start_epoch = checkpoint["epoch"]
    logger.info(f"Previous epoch: {start_epoch}")
    return start_epoch


def load_pretrained_weights(model: nn.Module, weight_path: str) -> None:
    """Load the matching (same name and shape) entries of a checkpoint into ``model``."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint["state_dict"] if isinstance(checkpoint, dict) and "state_dict" in checkpoint else checkpoint
    model_dict = model.state_dict()
    new_state_dict = OrderedDict()
    matched, discarded = [], []
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[7:]
        if k in model_dict and isinstance(v, torch.Tensor) and model_dict[k].size() == v.size():
            new_state_dict[k] = v
            matched.append(k)
        else:
            discarded.append(k)
    model_dict.update(new_state_dict)
    model.load_state_dict(model_dict)
    if not matched:
        warnings.warn(
            f'Cannot load {weight_path} (check the key names manually)', stacklevel=2
        )
    else:
        logger.info(f'Successfully loaded pretrained weights from "{weight_path}"')
        if discarded:
            logger.info(f"Layers discarded due to unmatched keys or size: {discarded}")


def count_num_param(model: nn.Module | None = None, params=None) -> int:
    """Number of elements over ``model.parameters()`` (or the given ``params``)."""
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        total = 0
        for p in params:
            if isinstance(p, dict):
                total += sum(q.numel() for q in p["params"])
            else:
                total += p.numel()
        return total
    raise ValueError("model and params must be provided")
