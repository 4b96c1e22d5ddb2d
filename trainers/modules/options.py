"""Component options: a dataclass per learner / head / regulariser, declared next to its code (peft style).

A field names its config key in ``metadata["key"]`` (use :func:`option`); ``__post_init__`` validates and raises
:class:`OptionError` naming the key. :func:`options_from_cfg` reads a component's options from its config node and
re-raises a validation error ONCE as a ``ConfigError`` naming the full key (the spelling the user wrote when the
value came from a reference key, see ``trainers.config.resolve_cfg``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from dassl.utils.errors import ConfigError

__all__ = ["Options", "OptionError", "option", "options_from_cfg", "cfg_node", "check_number", "check_int",
           "check_choice", "check_bool"]


class OptionError(ConfigError):
    """An impossible option value; ``key`` is the option's config key (leaf name, e.g. ``"N_CTX"``).

    Its message reads ``"<KEY> <what is wrong>"`` when raised directly (a component built in Python);
    :func:`options_from_cfg` re-raises it with the full key instead."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key} {message}")
        self.key = key
        self.detail = message


def option(default: Any, key: str, help: str = "") -> Any:  # noqa: A002 (the peft/dataclass idiom)
    """A dataclass field read from config key ``key`` (a leaf of the component's node)."""
    return dataclasses.field(default=default, metadata={"key": key, "help": help})


def check_number(key: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad and low is not None:
        bad = value <= low if low_open else value < low
    if not bad and high is not None:
        bad = value > high
    if bad:
        rng = ""
        if low is not None and high is not None:
            rng = f" in [{low}, {high}]"
        elif low is not None:
            rng = " > 0" if low_open and low == 0 else f" >= {low}"
        raise OptionError(key, f"must be a number{rng}, got {value!r}")


def check_int(key: str, value: Any, *, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise OptionError(key, f"must be {kind}, got {value!r}")


def check_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OptionError(key, f"must be True or False, got {value!r}")


def check_choice(key: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise OptionError(key, f"must be one of {', '.join(choices)}, got {value!r}")


@dataclasses.dataclass
class Options:
    """Base class of component options (no fields). Subclasses validate in ``__post_init__``."""

    def __post_init__(self) -> None:  # noqa: B027 (optional hook)
        pass

    def constructor_kwargs(self, cfg) -> dict[str, Any]:
        """Keyword arguments of the component's constructor (default: the fields). Override to add values that
        come from the run rather than from the node (e.g. a template chosen by ``DATASET.NAME``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def example(cls) -> "Options":
        """A valid instance for the contract tests (default: all defaults; override when a field is required)."""
        return cls()

    @classmethod
    def keys(cls) -> dict[str, str]:
        """Field name -> config key."""
        return {f.name: f.metadata.get("key", f.name.upper()) for f in dataclasses.fields(cls)}


def cfg_node(cfg, path: str):
    """``cfg`` at the dotted ``path`` (None when missing)."""
    node = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def options_from_cfg(options_cls: type[Options], cfg, node_path: str) -> Options:
    """The options of a component from ``cfg.<node_path>``: each field from its key when present and not None,
    else the field's default.

    Raises:
        ConfigError: naming the full key (or the reference spelling the value was written as).
    """
    node = cfg_node(cfg, node_path)
    kwargs = {}
    for name, key in options_cls.keys().items():
        if node is not None and key in node and node[key] is not None:
            kwargs[name] = node[key]
    try:
        return options_cls(**kwargs)
    except OptionError as e:
        raise ConfigError(f"{key_name(cfg, f'{node_path}.{e.key}')} {e.detail}") from None


def key_name(cfg, full: str) -> str:
    """How an error names canonical key ``full``: the spelling the user wrote (``TRAINER.COOP.N_CTX (=
    MODEL.PROMPT_LEARNER.N_CTX)``), or, when unset, the key with its reference spellings."""
    extra = getattr(cfg, "__dict__", {})
    where = (extra.get("origins") or {}).get(full)
    if where and where != full:
        return f"{where} (= {full})"
    if where:
        return full
    others = (extra.get("spellings") or {}).get(full) or []
    return f"{full} (or {', '.join(others)})" if others else full
