"""Reading the weights of a TorchScript archive (OpenAI's ``RN50.pt``, ``ViT-B-16.pt``, ...) as data, never as code.

A TorchScript archive is a zip file ``<name>/{data.pkl, data/<key>, code/..., constants.pkl, ...}``. ``torch.jit.load``
compiles and runs the archive's TorchScript (a crafted ``__setstate__`` can write files, for example), so it is
never used on a user-given file. Instead :func:`read_torchscript_state_dict`

1. reads ``data.pkl`` (the pickled module tree) with a restricted unpickler in which every TorchScript class
   (``__torch__.*``) is an inert holder that only records the attributes it is given, the only callable globals are
   our own tensor-rebuilding functions, and tensor storages come from the archive's ``data/<key>`` records
   (read straight from the file into the storage, no intermediate copies);
2. reads, as text, the ``__parameters__``/``__buffers__`` declarations of each class in ``code/`` (nothing is
   compiled or run) to know which tensor attributes are parameters and buffers;
3. returns the plain state dict, with the same keys, order, tensors and dtypes as ``torch.jit.load(path).state_dict()``.
"""
from __future__ import annotations

import io
import os
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from typing import Any

import torch

from clip.errors import CorruptWeightsError

__all__ = ["is_torchscript_archive", "read_torchscript_state_dict", "torchscript_prefix"]

_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64,
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header (30 bytes)
_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_CLASS_RE = re.compile(r"^class (\w+)\(Module\):\n((?:  .*\n|\n)*)", re.M)
_DECL_RE = re.compile(r"^  (__parameters__|__buffers__) = \[(.*)\]\s*$", re.M)


def torchscript_prefix(names: list[str]) -> str | None:
    """The archive folder of a TorchScript zip (its entry list), or None when it is not a TorchScript archive.

    TorchScript archives (what ``torch.jit.save`` writes) have ``<folder>/constants.pkl`` and ``<folder>/code/``;
    a ``torch.save`` file has neither.
    """
    for entry in names:
        parts = entry.split("/")
        if len(parts) >= 2 and (parts[1] == "code" or parts[-1] == "constants.pkl"):
            return parts[0]
    return None


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a zip whose entries are those of a TorchScript archive (nothing inside is read)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return torchscript_prefix(zf.namelist()) is not None
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


class _Holder:
    """An inert stand-in for a TorchScript object: records its pickled attributes, runs nothing."""

    qualname = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Holder":
        obj = object.__new__(cls)
        obj.__dict__["_state"] = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __repr__(self) -> str:
        return f"<inert TorchScript object {self.qualname}>"


_HOLDERS: dict[str, type] = {}


def _holder(module: str, name: str) -> type:
    qualname = f"{module}.{name}"
    if qualname not in _HOLDERS:
        _HOLDERS[qualname] = type(f"Holder_{name}", (_Holder,), {"qualname": qualname})
    return _HOLDERS[qualname]


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage:
    """One ``data/<key>`` record: its bytes (an untyped storage), element dtype and element count."""

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype, numel: int) -> None:
        self.untyped, self.dtype, self.numel = untyped, dtype, numel


def _as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"bad tensor {what}: {value!r}")
    return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    """Our ``torch._utils._rebuild_tensor(_v2)``: a view of an archive storage (no hooks, no requires_grad)."""
    if not isinstance(storage, _Storage) or type(storage_offset) is not int:
        raise pickle.UnpicklingError("bad tensor record")
    size, stride = _as_int_tuple(size, "size"), _as_int_tuple(stride, "stride")
    if len(size) != len(stride) or storage_offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError("bad tensor geometry")
    end = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else storage_offset
    if end > storage.numel:
        raise pickle.UnpicklingError("tensor exceeds its storage")
    t = torch.empty((0,), dtype=storage.dtype)
    return t.set_(storage.untyped, storage_offset, size, stride)


def _identity(value: Any, *_ignored: Any) -> Any:
    return value


def _as_list(value: Any, *_ignored: Any) -> Any:
    return list(value)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch.jit._pickle", "restore_type_tag"): _identity,
    ("torch.jit._pickle", "build_intlist"): _as_list,
    ("torch.jit._pickle", "build_doublelist"): _as_list,
    ("torch.jit._pickle", "build_boollist"): _as_list,
    ("torch.jit._pickle", "build_tensorlist"): _as_list,
    ("torch.jit._pickle", "build_stringlist"): _as_list,
}


class _ArchiveUnpickler(pickle.Unpickler):
    def __init__(self, file, reader: "_StorageReader") -> None:
        super().__init__(file)
        self._reader = reader

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            return _holder(module, name)
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in CLIP weights")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int:
            raise pickle.UnpicklingError(f"unexpected storage record {pid!r}")
        return self._reader.storage(key, storage_type.dtype, numel)


class _StorageReader:
    """Reads ``<prefix>/data/<key>`` records of an open archive into tensor storages (each key once)."""

    def __init__(self, zf: zipfile.ZipFile, fh, prefix: str) -> None:
        self._zf, self._fh, self._prefix = zf, fh, prefix
        self._cache: dict[str, _Storage] = {}

    def storage(self, key: str, dtype: torch.dtype, numel: int) -> _Storage:
        if key in self._cache:
            return self._cache[key]
        if not _KEY_RE.match(key) or numel < 0:
            raise pickle.UnpicklingError(f"bad storage key {key!r}")
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        try:
            info = self._zf.getinfo(f"{self._prefix}/data/{key}")
        except KeyError:
            raise pickle.UnpicklingError(f"storage record data/{key} is missing") from None
        if info.file_size < nbytes:
            raise pickle.UnpicklingError(f"storage record data/{key} is too short ({info.file_size} < {nbytes} bytes)")
        buf = torch.empty(nbytes, dtype=torch.uint8)
        if nbytes:
            view = memoryview(buf.numpy())
            if info.compress_type == zipfile.ZIP_STORED:
                self._fh.seek(info.header_offset)
                header = self._fh.read(_LOCAL_HEADER.size)
                if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                    raise pickle.UnpicklingError(f"bad zip header of data/{key}")
                fields = _LOCAL_HEADER.unpack(header)
                self._fh.seek(info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11])
                if self._fh.readinto(view) != nbytes:
                    raise pickle.UnpicklingError(f"storage record data/{key} is truncated")
            else:  # not written by torch, but a valid zip: go through zipfile
                with self._zf.open(info) as src:
                    if src.readinto(view) != nbytes:
                        raise pickle.UnpicklingError(f"storage record data/{key} is truncated")
        storage = _Storage(buf.untyped_storage(), dtype, numel)
        self._cache[key] = storage
        return storage


def _declarations(zf: zipfile.ZipFile, prefix: str) -> dict[str, tuple[list[str], list[str]]]:
    """``{qualified class name: (parameter names, buffer names)}`` from the archive's code files, read as text."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    code_dir = f"{prefix}/code/"
    for entry in zf.namelist():
        if not (entry.startswith(code_dir) and entry.endswith(".py")):
            continue
        module = entry[len(code_dir) : -3].replace("/", ".")
        text = zf.read(entry).decode("utf-8", errors="replace")
        for match in _CLASS_RE.finditer(text):
            decl = {k: re.findall(r'"([^"]*)"', v) for k, v in _DECL_RE.findall(match.group(2))}
            if "__parameters__" in decl or "__buffers__" in decl:
                out[f"{module}.{match.group(1)}"] = (decl.get("__parameters__", []), decl.get("__buffers__", []))
    return out


def _collect(obj: _Holder, prefix: str, decls: dict, out: "OrderedDict[str, torch.Tensor]", depth: int = 0) -> None:
    """``nn.Module.state_dict`` order: this module's parameters, then its buffers, then the children."""
    if depth > 200:
        raise CorruptWeightsError("module tree too deep")
    state = obj._state
    if not isinstance(state, dict):
        return
    declared = decls.get(obj.qualname)
    if declared is not None:
        names = [n for n in declared[0] + declared[1] if n in state]
    else:  # no declaration found: every tensor attribute
        names = [n for n, v in state.items() if isinstance(v, torch.Tensor)]
    for name in names:
        value = state[name]
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise CorruptWeightsError(f"parameter {prefix}{name} is not a tensor")
        out[prefix + name] = value
    for name, value in state.items():
        if isinstance(value, _Holder):
            _collect(value, f"{prefix}{name}.", decls, out, depth + 1)


def read_torchscript_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The parameters and buffers of the TorchScript archive ``path``, read as data (no TorchScript is run).

    Raises:
        CorruptWeightsError: the file is not a readable TorchScript archive of a module.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
            prefix = torchscript_prefix(zf.namelist())
            if prefix is None:
                raise CorruptWeightsError(f"{path} is not a TorchScript archive")
            try:
                byteorder = zf.read(f"{prefix}/byteorder").strip()
            except KeyError:
                byteorder = b"little"
            if byteorder != b"little":
                raise CorruptWeightsError(f"{path}: big-endian archives are not supported (byteorder {byteorder!r})")
            try:
                payload = zf.read(f"{prefix}/data.pkl")
            except KeyError:
                raise CorruptWeightsError(f"{path} has no {prefix}/data.pkl (not a TorchScript module archive)") from None
            root = _ArchiveUnpickler(io.BytesIO(payload), _StorageReader(zf, fh, prefix)).load()
            if not isinstance(root, _Holder):
                raise CorruptWeightsError(f"{path}: the archive does not hold a module")
            state: OrderedDict[str, torch.Tensor] = OrderedDict()
            _collect(root, "", _declarations(zf, prefix), state)
    except CorruptWeightsError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, pickle.UnpicklingError, EOFError, OSError, ValueError,
            TypeError, AttributeError, IndexError, KeyError, RuntimeError, struct.error, RecursionError) as exc:
        raise CorruptWeightsError(f"cannot read the TorchScript archive {path} (truncated or corrupt?): {exc}") from exc
    return dict(state)
