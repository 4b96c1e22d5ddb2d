#!/usr/bin/env python
"""Prompt norms over epochs (from each run's ``norms.jsonl``), as a paper figure: one panel per run with the
per-position norms on a sequential colormap (position 0 dark -> last position light, colour bar), the matrix norm
of every run in one panel, and the per-epoch test accuracy (``--do-test`` runs) in its own panel only when some
run has it.

    python tools/plot_norms.py output/.../CoOp/.../seed1 output/.../CoOpNemesis/.../seed1 \
        --labels CoOp Nemesis --positions 0 1 2 -o norms.png          # .png or .pdf by extension

``--positions P ...`` highlights those positions (thick, labelled); the others stay as thin context lines.
Epoch ticks are integers; the title names the runs (``--title`` overrides it).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import BoundaryNorm  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

POSITION_CMAP = "viridis"


class NormAxes(NamedTuple):
    positions: list  # one Axes per run (per-position norms)
    matrix: object  # Axes: matrix norm of every run
    accuracy: object | None  # Axes: per-epoch test accuracy, None when no run has it
    colorbar: object | None  # the position colour bar (None when no run has per-position norms)


def read_records(folder: str) -> list[dict]:
    path = osp.join(folder, "norms.jsonl")
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path} not found (written by the CoOp-family trainers once per epoch)")
    recs = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                recs.append(json.loads(line))
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON line ({e})") from None
    by_epoch = {r["epoch"]: r for r in recs if "epoch" in r}  # a resumed run may repeat epochs: keep the last
    return [by_epoch[e] for e in sorted(by_epoch)]


def _short(parts: list[str]) -> str:
    """``<dataset>/<Method>[/Beta-B]/seed<S>`` out of a run path's parts (the names a reader recognises)."""
    k = next((i for i, q in enumerate(parts) if q[:1].isupper()), None)
    if k is None:
        return "/".join(parts[-3:])
    keep = parts[max(0, k - 1):k + 1] + [q for q in parts[k + 1:] if q.startswith("Beta-")]
    if parts[-1].startswith("seed"):
        keep.append(parts[-1])
    return "/".join(keep)


def default_labels(folders: list[str]) -> list[str]:
    """Short labels: the path parts that differ between the runs (or dataset/method/seed of a single run)."""
    paths = [osp.normpath(osp.abspath(f)).split(osp.sep) for f in folders]
    if len(paths) > 1:
        common = set.intersection(*(set(p) for p in paths))
        diff = ["/".join(q for q in p[-6:] if q not in common) for p in paths]
        if all(diff) and len(set(diff)) == len(diff) and max(map(len, diff)) <= 40:
            return diff
    return [_short(p) for p in paths]


def visual_records(recs: list[dict]) -> list[dict]:
    """The records with the visual prompts' norms (``visual_v_norms`` / ``visual_matrix_norm``: VPT, IVLP, Nemesis
    ``TARGET vision``) in the places of the text context's, so the same figure shows them."""
    out = []
    for r in recs:
        r = dict(r)
        r["v_norms"], r["matrix_norm"] = r.get("visual_v_norms", []), r.get("visual_matrix_norm")
        out.append(r)
    return out


def make_figure(folders: list[str], labels: list[str] | None = None, positions: list[int] | None = None,
                title: str | None = None, visual: bool | None = None):
    """Draw the figure. Returns ``(figure, NormAxes(positions=[ax per run], matrix, accuracy, colorbar))``.

    ``visual``: plot the visual prompts' norms; None = only when no run has text-context norms (VPT)."""
    labels = labels or default_labels(folders)
    runs = [(label, read_records(folder)) for folder, label in zip(folders, labels)]
    if visual is None:
        visual = not any("v_norms" in x for _, recs in runs for x in recs) and any(
            "visual_v_norms" in x for _, recs in runs for x in recs)
    if visual:
        runs = [(label, visual_records(recs)) for label, recs in runs]
        title = title or "Visual prompt norms over training: " + " vs ".join(labels)
    n_pos = max((len(r[0].get("v_norms", [])) for _, r in runs if r), default=0)
    has_acc = any("test_acc" in x for _, recs in runs for x in recs)
    n_bottom = 2 if has_acc else 1
    fig = plt.figure(figsize=(max(4.2 * len(runs) + 1.2, 4.6 * n_bottom), 7.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 0.9])
    pos_axes = list(top.subplots(1, len(runs), sharey=True, squeeze=False)[0])
    bottom_axes = list(bottom.subplots(1, n_bottom, squeeze=False)[0])
    ax_mat, ax_acc = bottom_axes[0], (bottom_axes[1] if has_acc else None)
    cmap = plt.get_cmap(POSITION_CMAP)
    norm = BoundaryNorm([p - 0.5 for p in range(n_pos + 1)], cmap.N) if n_pos else None
    highlight = set(positions or [])
    run_colors = plt.get_cmap("tab10")
    for r, ((label, recs), ax) in enumerate(zip(runs, pos_axes)):
        epochs = [x["epoch"] for x in recs]
        k = len(recs[0].get("v_norms", [])) if recs else 0
        for i in range(k):
            ys = [x["v_norms"][i] for x in recs]
            color = cmap(norm(i)) if norm is not None else "C0"
            if highlight and i not in highlight:
                ax.plot(epochs, ys, color=color, lw=0.8, alpha=0.35)
            else:
                ax.plot(epochs, ys, color=color, lw=2.0 if highlight else 1.2,
                        label=f"position {i}" if highlight else None)
        if not k:
            ax.text(0.5, 0.5, "no per-position norms in norms.jsonl", ha="center", va="center",
                    transform=ax.transAxes)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if highlight and k:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)
        ax_mat.plot(epochs, [x.get("matrix_norm") for x in recs], color=run_colors(r % 10), marker="o", ms=3,
                    label=label)
        acc = [(x["epoch"], x["test_acc"]) for x in recs if "test_acc" in x]
        if acc and ax_acc is not None:
            ax_acc.plot(*zip(*acc), color=run_colors(r % 10), marker="o", ms=3, label=label)
    pos_axes[0].set_ylabel("L2 norm of the context vector")
    cb = None
    if norm is not None:
        cb = top.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=pos_axes, pad=0.01,
                          ticks=list(range(n_pos)) if n_pos <= 16 else list(range(0, n_pos, max(1, n_pos // 8))))
        cb.set_label("prompt position")
    top.suptitle("per-position norms" + (f" (highlighted: {', '.join(map(str, sorted(highlight)))})"
                                         if highlight else ""), fontsize=10)
    ax_mat.set(xlabel="epoch", ylabel="Frobenius norm of the context", title="matrix norm")
    ax_mat.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_mat.grid(True, alpha=0.3)
    ax_mat.legend(fontsize=8, loc="best")
    if ax_acc is not None:
        ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy per epoch (--do-test)")
        ax_acc.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_acc.grid(True, alpha=0.3)
        ax_acc.legend(fontsize=8, loc="best")
    fig.suptitle(title or "Prompt norms over training: " + " vs ".join(labels), fontsize=11)
    return fig, NormAxes(pos_axes, ax_mat, ax_acc, cb)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Plot prompt norms over epochs")
    p.add_argument("folders", nargs="+", help="run output folders (with norms.jsonl)")
    p.add_argument("--labels", nargs="+", default=None, help="one label per folder (default: from the paths)")
    p.add_argument("--positions", type=int, nargs="+", default=None, help="positions to highlight")
    p.add_argument("--title", default=None, help="figure title (default: the runs' labels)")
    p.add_argument("-o", "--output", default="norms.png", help=".png or .pdf")
    p.add_argument("--visual", action="store_true", help="the visual prompts' norms (VPT, IVLP, Nemesis TARGET "
                   "vision); the default when no run has text-context norms")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.folders):
        p.error("--labels needs one label per folder")
    try:
        fig, axes = make_figure(args.folders, args.labels, args.positions, args.title, True if args.visual else None)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = [q for q in (args.positions or []) if not any(len(ax.get_lines()) > q for ax in axes.positions)]
    if bad:
        print(f"warning: positions {bad} are beyond the runs' context length", file=sys.stderr)
    fig.savefig(args.output, dpi=150)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
