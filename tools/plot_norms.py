#!/usr/bin/env python
"""Plot per-position prompt norms and the matrix norm over epochs (from ``norms.jsonl``), with the per-epoch test
accuracy (``--do-test`` runs) on a second axis; several runs in one figure (e.g. CoOp vs CoOp+Nemesis).

    python tools/plot_norms.py output/.../CoOp/.../seed1 output/.../CoOpNemesis/.../seed1 \
        --labels CoOp Nemesis -o norms.png          # .png or .pdf by extension
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_records(folder: str) -> list[dict]:
    path = osp.join(folder, "norms.jsonl")
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path} not found (written by the CoOp-family trainers once per epoch)")
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    by_epoch = {r["epoch"]: r for r in recs}  # a resumed run may repeat epochs: keep the last record
    return [by_epoch[e] for e in sorted(by_epoch)]


def make_figure(folders: list[str], labels: list[str] | None = None, positions: list[int] | None = None):
    """The figure: left panel per-position norms, right panel matrix norm (+ test accuracy on twin axes).

    Returns (figure, (ax_positions, ax_matrix, ax_accuracy))."""
    labels = labels or [osp.basename(osp.normpath(f)) if not osp.basename(osp.normpath(f)).startswith("seed")
                        else "/".join(osp.normpath(f).split(osp.sep)[-3:]) for f in folders]
    fig, (ax_pos, ax_mat) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax_acc = ax_mat.twinx()
    cmap = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]
    for r, (folder, label) in enumerate(zip(folders, labels)):
        recs = read_records(folder)
        epochs = [x["epoch"] for x in recs]
        n_pos = len(recs[0].get("v_norms", [])) if recs else 0
        for i in positions if positions is not None else range(n_pos):
            ax_pos.plot(epochs, [x["v_norms"][i] for x in recs], styles[r % 4], color=cmap(i % 10),
                        label=f"{label} v{i}")
        ax_mat.plot(epochs, [x["matrix_norm"] for x in recs], styles[r % 4], color=cmap(r % 10),
                    label=f"{label} matrix norm")
        acc = [(x["epoch"], x["test_acc"]) for x in recs if "test_acc" in x]
        if acc:
            ax_acc.plot(*zip(*acc), styles[r % 4], color=cmap(r % 10), marker="o", ms=3, alpha=0.6,
                        label=f"{label} test acc")
    ax_pos.set(xlabel="epoch", ylabel="per-position norm", title="prompt position norms")
    ax_mat.set(xlabel="epoch", ylabel="matrix norm", title="matrix norm and test accuracy")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_pos.legend(fontsize=6, ncol=2)
    h1, l1 = ax_mat.get_legend_handles_labels()
    h2, l2 = ax_acc.get_legend_handles_labels()
    ax_mat.legend(h1 + h2, l1 + l2, fontsize=7)
    fig.tight_layout()
    return fig, (ax_pos, ax_mat, ax_acc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Plot prompt norms over epochs")
    p.add_argument("folders", nargs="+", help="run output folders (with norms.jsonl)")
    p.add_argument("--labels", nargs="+", default=None)
    p.add_argument("--positions", type=int, nargs="+", default=None, help="positions to draw (default all)")
    p.add_argument("-o", "--output", default="norms.png", help=".png or .pdf")
    args = p.parse_args(argv)
    if args.labels and len(args.labels) != len(args.folders):
        p.error("--labels needs one label per folder")
    try:
        fig, _ = make_figure(args.folders, args.labels, args.positions)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fig.savefig(args.output, dpi=150)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
