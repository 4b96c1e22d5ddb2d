"""Hand-written prompt templates (data: ``trainers/data/templates.json``, keyed by ``DATASET.NAME``)."""
from __future__ import annotations

import functools
import json
import os.path as osp

_TEMPLATE_FILE = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "data", "templates.json")

__all__ = ["load_templates", "dataset_template", "ensemble_templates", "kgcoop_template"]


@functools.lru_cache(maxsize=1)
def _table() -> str:
    with open(_TEMPLATE_FILE) as f:
        return f.read()


def load_templates() -> dict:
    """The template table: ``{"dataset": {...}, "default": str, "ensemble": [...],
    "ensemble_without_dataset_template": [...], "kgcoop_overrides": {...}}`` (a fresh copy)."""
    return json.loads(_table())


def dataset_template(dataset_name: str, override: str = "") -> str:
    """``override`` if set, else the table's entry for ``dataset_name`` (else the default "a photo of a {}.")."""
    if override:
        return override
    table = load_templates()
    return table["dataset"].get(dataset_name, table["default"])


def ensemble_templates(dataset_name: str, override: str = "") -> list[str]:
    """The 7 select ImageNet templates, plus the dataset's template unless the table lists the dataset under
    ``ensemble_without_dataset_template`` (zero-shot CLIP's prompt ensemble)."""
    table = load_templates()
    temps = list(table["ensemble"])
    if dataset_name not in table["ensemble_without_dataset_template"]:
        temps.append(dataset_template(dataset_name, override))
    return temps


def kgcoop_template(dataset_name: str) -> str:
    """KgCoOp's hand-crafted template for ``dataset_name``: the table's ``kgcoop_overrides`` entry (KgCoOp differs
    from zero-shot CLIP only for DTD), else the zero-shot entry, else the default."""
    table = load_templates()
    return table.get("kgcoop_overrides", {}).get(dataset_name) or table["dataset"].get(dataset_name, table["default"])
