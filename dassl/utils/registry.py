"""A small name -> object registry with decorator registration (Dassl/fvcore style)."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator


class Registry:
    """Maps names to classes or functions.

    Registration uses the object's ``__name__`` unless a name is given::

        TRAINER_REGISTRY = Registry("TRAINER")

        @TRAINER_REGISTRY.register()
        class CoOp(TrainerX): ...

    Duplicate names raise ``KeyError`` unless ``force=True``; unknown names raise ``KeyError`` listing
    the registered names and the closest match.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._obj_map: dict[str, Any] = {}

    def _do_register(self, name: str, obj: Any, force: bool = False) -> None:
        if name in self._obj_map and not force:
            raise KeyError(f'An object named "{name}" was already registered in "{self._name}" registry')
        self._obj_map[name] = obj

    def register(self, obj: Any = None, force: bool = False, name: str | None = None) -> Any:
        """Register ``obj``; used without an object it returns a decorator."""
        if obj is None:

            def wrapper(fn_or_class: Callable) -> Callable:
                self._do_register(name or fn_or_class.__name__, fn_or_class, force=force)
                return fn_or_class

            return wrapper
        self._do_register(name or obj.__name__, obj, force=force)
        return obj

    def closest(self, name: str) -> str | None:
        """The registered name most similar to ``name`` (SequenceMatcher ratio), or None if empty."""
        if not self._obj_map:
            return None
        return max(self._obj_map, key=lambda n: difflib.SequenceMatcher(None, name, n).ratio())

    def unknown_message(self, name: str) -> str:
        hint = self.closest(name)
        avail = ", ".join(sorted(self._obj_map))
        msg = f'"{name}" is not registered in the {self._name} registry'
        if hint:
            msg += f' (did you mean "{hint}"?)'
        return msg + f". Available: {avail}"

    def get(self, name: str) -> Any:
        if name not in self._obj_map:
            raise KeyError(self.unknown_message(name))
        return self._obj_map[name]

    def registered_names(self) -> list[str]:
        return list(self._obj_map.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._obj_map

    def __iter__(self) -> Iterator[str]:
        return iter(self._obj_map)

    def __len__(self) -> int:
        return len(self._obj_map)

    def __repr__(self) -> str:
        return f"Registry({self._name}: {sorted(self._obj_map)})"
