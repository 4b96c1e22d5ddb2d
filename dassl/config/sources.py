"""Where each config value came from: merging a YAML file or command-line options records the keys it wrote.

The canonical-node resolution (``trainers.config.resolve_cfg``) uses this to let a value the user wrote beat a
default, and the later of two written spellings win, by *where* it was written, never by comparing values.
"""
from __future__ import annotations

import difflib
import os.path as osp
import re
from dataclasses import dataclass, field

import yaml
from yacs.config import CfgNode

from dassl.utils.errors import ConfigError

__all__ = ["ConfigSources", "YAML_CONFIG_EXTS", "merge_file", "merge_opts", "has_key", "key_hint", "leaf_keys"]


@dataclass
class ConfigSources:
    """Merge-order record: ``labels[i]`` names source i (a file path, "command-line flags", "command-line opts");
    ``written[key]`` is the index of the LAST source that wrote the dotted leaf key ``key``."""

    labels: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    #: per source: the keys it wrote (to find one source writing two spellings)
    keys_of: list[set[str]] = field(default_factory=list)

    def add(self, label: str, keys) -> int:
        """Record a new source (later = higher rank) that wrote ``keys``; returns its index."""
        idx = len(self.labels)
        self.labels.append(label)
        self.keys_of.append(set(keys))
        for k in keys:
            self.written[k] = idx
        return idx

    def rank(self, key: str) -> int | None:
        """Index of the last source that wrote ``key`` (None: never written, i.e. a default)."""
        return self.written.get(key)

    def label(self, idx: int) -> str:
        return self.labels[idx]


def leaf_keys(node, prefix: str = "") -> list[str]:
    """Dotted leaf keys of a (possibly nested) mapping."""
    out = []
    for k, v in node.items():
        full = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(leaf_keys(v, full + "."))
        else:
            out.append(full)
    return out


def key_hint(cfg, key: str) -> str:
    """`` (did you mean "X"?)`` for the closest existing key, or ""."""
    close = difflib.get_close_matches(key, leaf_keys(cfg), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def has_key(cfg, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


YAML_CONFIG_EXTS = (".yaml", ".yml")


def merge_file(cfg, path: str, flag: str, sources: ConfigSources | None = None) -> None:
    """Merge a YAML file into ``cfg`` (yacs ``merge_from_file`` semantics for YAML) and record the keys it wrote.

    Raises:
        ConfigError: missing file, not a YAML file (never executed), invalid YAML, unknown key (with a hint) or a
            value of the wrong type.
    """
    if not osp.isfile(path):
        raise ConfigError(f"config file not found: {path} ({flag})")
    if osp.splitext(path)[1].lower() not in YAML_CONFIG_EXTS:
        # yacs would execute a .py config: config files are data, never code
        raise ConfigError(
            f"{path} ({flag}) is not a YAML file: config files must end in .yaml or .yml (other files, e.g. Python, "
            "are refused because loading them could run code); convert it to YAML"
        )
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # = cfg.merge_from_file for YAML, without yacs' extension dispatch (which runs .py files)
        loaded = type(cfg).load_cfg(text)
        cfg.merge_from_other_cfg(loaded)
    except KeyError as e:
        msg = str(e.args[0]) if e.args else str(e)
        m = re.search(r"Non-existent config key: (\S+)", msg)
        if m:
            key = m.group(1)
            raise ConfigError(f"unknown config key {key} in {path}{key_hint(cfg, key)}") from None
        raise ConfigError(f"{path}: {msg}") from None
    except (ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if sources is not None:
        sources.add(path, leaf_keys(loaded))


def merge_opts(cfg, opts: list[str], sources: ConfigSources | None = None) -> None:
    """Merge trailing ``KEY VALUE`` pairs (yacs ``merge_from_list``) and record them as one source."""
    if not opts:
        return
    if len(opts) % 2 != 0:
        raise ConfigError(f"config options must be KEY VALUE pairs, got an odd number of items: {' '.join(opts)}")
    for key in opts[0::2]:
        if not has_key(cfg, key):
            raise ConfigError(f"unknown config key {key} (command-line opts){key_hint(cfg, key)}")
    try:
        cfg.merge_from_list(opts)
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise ConfigError(f"bad command-line option: {e}") from None
    if sources is not None:
        sources.add("command-line opts", list(opts[0::2]))
