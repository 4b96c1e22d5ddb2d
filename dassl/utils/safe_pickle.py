"""A restricted unpickler for legacy (upstream Dassl) checkpoints.

Upstream Dassl pickled whole objects into checkpoints (the warm-up scheduler's successor, which in
turn references the optimizer and its parameters), so ``torch.load(weights_only=True)`` refuses
them. This module provides a ``pickle``-compatible module object whose ``Unpickler`` resolves only
an allow-list of globals (tensor rebuild functions, storages, dtypes, containers, plain builtins).
Every other global becomes an :class:`InertStub` subclass: calling it, ``__new__`` and
``__setstate__`` only *record* their arguments; nothing from the file is ever executed.

Use it as ``torch.load(f, weights_only=False, pickle_module=safe_pickle_module())``.
"""
from __future__ import annotations

import collections
import pickle
import types
from typing import Any

import torch

__all__ = ["InertStub", "RestrictedUnpickler", "safe_pickle_module", "stub_state"]

_ALLOWED_BUILTINS = {
    "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
    "bytearray", "slice", "range",
}
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("collections", "Counter"): collections.Counter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch.storage", "UntypedStorage"): torch.storage.UntypedStorage,
    ("torch.storage", "TypedStorage"): torch.storage.TypedStorage,
}
_TORCH_UTILS_REBUILD = {
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state", "_rebuild_device_tensor_from_cpu_tensor",
}
_NUMPY_ALLOWED = {
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class InertStub:
    """Stand-in for a class or function that the restricted unpickler refused to import.

    Attributes:
        stub_module, stub_name: the refused global.
        args, kwargs: arguments of the call (``REDUCE``) or ``__new__`` (``NEWOBJ``).
        state: what ``BUILD`` passed to ``__setstate__`` (usually the object's ``__dict__``).
    """

    stub_module = ""
    stub_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertStub":
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        object.__setattr__(obj, "kwargs", kwargs)
        object.__setattr__(obj, "state", None)
        object.__setattr__(obj, "items", [])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # never runs anything
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "state", state)

    # list/dict-like pickled objects append or set items after construction
    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def __repr__(self) -> str:
        return f"<inert {self.stub_module}.{self.stub_name}>"


_STUB_CACHE: dict[tuple[str, str], type] = {}


def _make_stub(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STUB_CACHE:
        _STUB_CACHE[key] = type(f"Inert_{name}", (InertStub,), {"stub_module": module, "stub_name": name})
    return _STUB_CACHE[key]


def _resolve(module: str, name: str) -> Any | None:
    """The allowed object for ``module.name``, or None if it is not allowed."""
    if module == "builtins" and name in _ALLOWED_BUILTINS:
        return getattr(__import__("builtins"), name)
    if (module, name) in _ALLOWED_GLOBALS:
        return _ALLOWED_GLOBALS[(module, name)]
    if module == "_codecs" and name == "encode":
        import _codecs

        return _codecs.encode
    if module == "torch._utils" and name in _TORCH_UTILS_REBUILD:
        return getattr(torch._utils, name, None)
    if module in ("torch", "torch.cuda") and name.endswith(("Storage", "Tensor")):
        obj = getattr(torch.cuda if module == "torch.cuda" else torch, name, None)
        return obj if isinstance(obj, type) else None
    if module == "torch":
        obj = getattr(torch, name, None)
        if isinstance(obj, (torch.dtype, torch.layout, torch.memory_format)):
            return obj
        return None
    if module == "torch.serialization" and name == "_get_layout":
        return torch.serialization._get_layout
    if (module, name) in _NUMPY_ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
        try:
            import importlib

            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return None
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that maps every non-allowed global to an :class:`InertStub` subclass."""

    def find_class(self, module: str, name: str) -> Any:
        obj = _resolve(module, name)
        if obj is not None:
            return obj
        return _make_stub(module, name)


def safe_pickle_module() -> types.ModuleType:
    """A module object usable as ``torch.load(..., pickle_module=...)``."""
    mod = types.ModuleType("dassl_safe_pickle")
    mod.Unpickler = RestrictedUnpickler  # type: ignore[attr-defined]

    def load(file, **kwargs):  # used by torch for legacy (non-zip) files
        return RestrictedUnpickler(file, **kwargs).load()

    def loads(data, **kwargs):
        import io

        return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()

    mod.load = load  # type: ignore[attr-defined]
    mod.loads = loads  # type: ignore[attr-defined]
    mod.__name__ = "pickle"  # torch inspects the name for protocol-related checks only
    for attr in ("UnpicklingError", "HIGHEST_PROTOCOL", "DEFAULT_PROTOCOL", "Pickler", "dump", "dumps"):
        setattr(mod, attr, getattr(pickle, attr))
    return mod


def stub_state(obj: Any) -> Any:
    """The recorded ``__dict__`` of an inert stub (without an ``optimizer`` entry), else ``obj``."""
    if isinstance(obj, InertStub):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        if isinstance(state, dict):
            return {k: v for k, v in state.items() if k != "optimizer"}
        return {}
    return obj
