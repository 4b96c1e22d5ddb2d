"""Registries of the composable prompt-learning components.

A component registers its class, its options dataclass and its config node in ONE call::

    @PROMPT_LEARNER_REGISTRY.register(options=CoOpOptions)
    class CoOpPromptLearner(PromptLearner): ...

    @REGULARISER_REGISTRY.register(options=NemesisOptions, node="REGULARISER.NEMESIS")
    class Nemesis(Regulariser): ...

The node defaults to the registry's (``MODEL.PROMPT_LEARNER`` for every learner; ``MODEL.HEAD.<NAME>`` and
``REGULARISER.<NAME>`` upper-cased for heads and regularisers). :func:`add_component_cfg` adds every registered
option key to the config (default None = "the component's default"), so a new component needs no config edit.
"""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode as CN

from dassl.utils.registry import Registry

from .options import Options, options_from_cfg

__all__ = ["ComponentRegistry", "PROMPT_LEARNER_REGISTRY", "HEAD_REGISTRY", "REGULARISER_REGISTRY",
           "add_component_cfg", "component_options"]


class ComponentRegistry(Registry):
    """A :class:`Registry` that also keeps each component's options class and config node."""

    def __init__(self, name: str, node_of) -> None:
        super().__init__(name)
        self._node_of = node_of  # name -> default config node path
        self._options: dict[str, type[Options]] = {}
        self._nodes: dict[str, str] = {}

    def register(self, obj: Any = None, force: bool = False, name: str | None = None,  # type: ignore[override]
                 options: type[Options] | None = None, node: str | None = None) -> Any:
        def wrapper(cls):
            key = name or cls.__name__
            self._do_register(key, cls, force=force)
            self._options[key] = options or Options
            self._nodes[key] = node or self._node_of(key)
            return cls

        return wrapper if obj is None else wrapper(obj)

    def options_class(self, name: str) -> type[Options]:
        self.get(name)  # KeyError with the did-you-mean message
        return self._options[name]

    def node(self, name: str) -> str:
        self.get(name)
        return self._nodes[name]

    def options(self, name: str, cfg) -> Options:
        """Validated options of ``name`` from its node of ``cfg`` (ConfigError naming the full key)."""
        return options_from_cfg(self.options_class(name), cfg, self.node(name))

    def build(self, name: str, cfg, *args: Any) -> Any:
        """``cls(*args, **options.constructor_kwargs(cfg))``."""
        return self.get(name)(*args, **self.options(name, cfg).constructor_kwargs(cfg))


PROMPT_LEARNER_REGISTRY = ComponentRegistry("PROMPT_LEARNER", lambda name: "MODEL.PROMPT_LEARNER")
HEAD_REGISTRY = ComponentRegistry("HEAD", lambda name: f"MODEL.HEAD.{name.upper()}")
REGULARISER_REGISTRY = ComponentRegistry("REGULARISER", lambda name: f"REGULARISER.{name.upper()}")
REGISTRIES = (PROMPT_LEARNER_REGISTRY, HEAD_REGISTRY, REGULARISER_REGISTRY)


def component_options(registry: ComponentRegistry, name: str, cfg) -> Options:
    return registry.options(name, cfg)


def add_component_cfg(cfg) -> None:
    """Add every registered component's option keys under its node (value None: the component's default)."""
    for reg in REGISTRIES:
        for name in reg:
            if not reg.options_class(name).keys():
                continue  # no options, no node
            path = reg.node(name)
            node = cfg
            for part in path.split("."):
                if part not in node:
                    setattr(node, part, CN())
                node = node[part]
            for key in reg.options_class(name).keys().values():
                if key not in node:
                    setattr(node, key, None)
