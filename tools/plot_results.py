#!/usr/bin/env python
"""Paper-style figures of a results report (``tools/report.py`` calls :func:`report_figures`):

* few-shot curves: accuracy vs shots (log2 axis), one line per method with std error bars, the published points
  as open markers of the same colour, one panel per dataset plus the average;
* base-to-new bars: base / new / H per dataset and the average, one bar per method, published H as black ticks;
* corruption heat maps: mean accuracy per position x factor (sequential colormap, colour bar, values printed),
  one panel per corruption type, the uncorrupted accuracy in the title.

Each figure is written as PNG and PDF. ``python tools/plot_results.py REPORT.json [--out DIR]`` redraws from a
saved ``report.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run as a script
    sys.path.insert(0, ROOT)
from tools.paper_numbers import load_paper, variant_matches  # noqa: E402

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def _label(method: str, variant: str | None) -> str:
    return f"{method} ({variant})" if variant else method


def _save(fig, out_dir: str, stem: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = osp.join(out_dir, f"{stem}.{ext}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _paper_points(paper: dict | None, protocol: str, method: str, variant: str | None, dataset: str) -> dict:
    """``{shots: value}`` of the published few-shot numbers for one curve (first source wins)."""
    if not paper:
        return {}
    out: dict[int, float] = {}
    for e in paper["entries"]:
        if (e["protocol"] == protocol and e["method"] == method and e["dataset"] == dataset
                and variant_matches(e.get("variant"), variant or None) and e.get("accuracy") is not None):
            out.setdefault(e["shots"], e["accuracy"])
    return out


# --------------------------------------------------------------------------------------------- few-shot curves
def fewshot_figure(rep: dict, paper: dict | None = None, title: str = ""):
    """Few-shot curves of the report's ``fewshot`` rows (+ averages). Returns (figure, axes list) or None."""
    rows = [r for r in rep["single"] if r["protocol"] == "fewshot" and r["shots"] and r["n"]]
    avgs = [r for r in rep.get("averages", []) if r["protocol"] == "fewshot" and r["shots"]]
    if not rows:
        return None
    datasets = sorted({r["dataset"] for r in rows})
    panels = datasets + (["average"] if avgs and len(datasets) > 1 else [])
    curves = sorted({(r["method"], r["variant"]) for r in rows})
    colors = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(curves)}
    ncol = min(4, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.6 * nrow), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    all_shots = sorted({r["shots"] for r in rows})
    drew_paper = False
    for ax, ds in zip(flat, panels):
        src = avgs if ds == "average" else [r for r in rows if r["dataset"] == ds]
        for i, c in enumerate(curves):
            pts = sorted((r["shots"], r["mean"], r.get("std") or 0.0) for r in src
                         if (r["method"], r["variant"]) == c and r.get("mean") is not None)
            if not pts:
                continue
            ks, ms, ss = zip(*pts)
            ax.errorbar(ks, ms, yerr=ss, color=colors[c], marker=MARKERS[i % len(MARKERS)], ms=5, capsize=3,
                        label=_label(*c))
            pp = _paper_points(paper, "fewshot", c[0], c[1], ds)
            drew_paper = drew_paper or bool(pp)
            if pp:
                pk = sorted(pp)
                ax.plot(pk, [pp[k] for k in pk], linestyle=":", color=colors[c], marker=MARKERS[i % len(MARKERS)],
                        mfc="none", ms=7, label=f"{_label(*c)}, paper")
        ax.set_xscale("log", base=2)
        ax.set_xticks(all_shots)
        ax.set_xticklabels([str(k) for k in all_shots])
        ax.minorticks_off()
        if ds == "average":
            n = max((a["n_datasets"] for a in avgs), default=0)
            ax.set_title(f"Average over {n} datasets" + (" (paper: 11)" if n < 11 and paper else ""))
        else:
            ax.set_title(ds)
        ax.set_xlabel("shots per class")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(True, alpha=0.3)
    handles, labels = [], []
    for ax in flat[:len(panels)]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(title or "Few-shot accuracy\n(mean ± std over seeds" + ("; open markers, dotted: published)"
                                                                      if drew_paper else ")"))
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", ncol=min(3, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    return fig, flat[:len(panels)]


# --------------------------------------------------------------------------------------------- base-to-new bars
def base2new_figure(rep: dict, shots: int | None = None, title: str = ""):
    """Grouped bars (base / new / H panels) of the report's base-to-new rows. Returns (figure, axes) or None."""
    rows = [r for r in rep["base2new"] if r["n"] and (shots is None or r["shots"] == shots)]
    if not rows:
        return None
    avgs = [r for r in rep.get("averages", []) if r["protocol"] == "base2new" and (shots is None or r["shots"] == shots)]
    methods = sorted({(r["method"], r["cfg"]) for r in rows})
    datasets = sorted({r["dataset"] for r in rows}) + (["average"] if avgs else [])
    fig, axes = plt.subplots(3, 1, figsize=(max(6.0, 0.9 * len(datasets) * max(1, len(methods)) ** 0.5 + 2), 8.5),
                             sharex=True)
    width = 0.8 / len(methods)
    colors = plt.get_cmap("tab10")
    for ax, key in zip(axes, ("base", "new", "H")):
        for i, (m, cfg) in enumerate(methods):
            src = {r["dataset"]: r for r in rows if (r["method"], r["cfg"]) == (m, cfg)}
            src.update({"average": a for a in avgs if (a["method"], a["cfg"]) == (m, cfg)})
            xs = [j + (i - (len(methods) - 1) / 2) * width for j, d in enumerate(datasets) if d in src]
            ys = [src[d][key] for d in datasets if d in src]
            err = [src[d].get(f"{key}_std") or 0.0 for d in datasets if d in src]
            label = m if len({c for mm, c in methods if mm == m}) == 1 else f"{m} [{cfg}]"
            ax.bar(xs, ys, width, yerr=err, capsize=2, color=colors(i % 10), label=label)
            pv = [(x, src[d][f"paper_{key}"]) for x, d in zip(xs, [d for d in datasets if d in src])
                  if f"paper_{key}" in src[d]]
            if pv:
                ax.plot(*zip(*pv), linestyle="none", marker="_", ms=14, mew=2, color="black",
                        label="published" if i == 0 else None)
        ax.set_ylabel(f"{'H (harmonic mean)' if key == 'H' else key + ' accuracy'} (%)")
        lo = min((r[key] for r in rows + avgs if r.get(key) is not None), default=0)
        ax.set_ylim(max(0, math.floor(lo / 10) * 10 - 10), 100)
        ax.grid(True, axis="y", alpha=0.3)
    axes[-1].set_xticks(range(len(datasets)))
    axes[-1].set_xticklabels(datasets, rotation=30, ha="right")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(4, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    sh = f", {shots} shots" if shots else ""
    fig.suptitle(title or f"Base-to-new{sh}: mean ± std over seeds (H of the seed-averaged base and new); "
                 "black ticks: published", y=1.04)
    fig.tight_layout()
    return fig, list(axes)


# --------------------------------------------------------------------------------------------- corruption heat maps
def crt_figure(rows: list[dict], title: str = ""):
    """Heat maps (position x factor) of one corruption grid (rows of one dataset x setting). (figure, axes) or None."""
    kinds = [k for k in ("replace", "rescale") if any(r["type"] == k and r["n"] for r in rows)]
    if not kinds:
        return None
    original = next((r["mean"] for r in rows if r["type"] == "original" and r["n"]), None)
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.6 * len(kinds) + 0.6, 3.8), squeeze=False)
    vals_all = [r["mean"] for r in rows if r["n"] and r["type"] in kinds]
    vmin, vmax = min(vals_all + ([original] if original is not None else [])), max(vals_all + ([original] if original is not None else []))
    if vmax - vmin < 1e-6:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    im = None
    for ax, kind in zip(axes[0], kinds):
        sel = [r for r in rows if r["type"] == kind and r["n"]]
        positions = sorted({r["position"] for r in sel})
        factors = sorted({r["factor"] for r in sel}, key=lambda f: float(f) if _num(f) else math.inf)
        grid = [[math.nan] * len(factors) for _ in positions]
        for r in sel:
            grid[positions.index(r["position"])][factors.index(r["factor"])] = r["mean"]
        im = ax.imshow(grid, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", origin="upper")
        for i in range(len(positions)):
            for j in range(len(factors)):
                v = grid[i][j]
                if not math.isnan(v):
                    frac = (v - vmin) / (vmax - vmin)
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8,
                            color="black" if frac > 0.6 else "white")
        ax.set_xticks(range(len(factors)))
        ax.set_xticklabels(factors)
        ax.set_yticks(range(len(positions)))
        ax.set_yticklabels([str(p) for p in positions])
        ax.set_xlabel("noise std" if kind == "replace" else "scale factor")
        ax.set_ylabel("corrupted prompt position")
        ax.set_title("replaced by Gaussian noise" if kind == "replace" else "rescaled")
    cb = fig.colorbar(im, ax=list(axes[0]), shrink=0.9)
    cb.set_label("test accuracy (%)")
    if original is not None:
        cb.ax.axhline(original, color="red", lw=2)
    orig = f" (uncorrupted: {original:.1f}%, red line)" if original is not None else ""
    fig.suptitle((title or "Corrupted prompts") + orig, y=1.04)
    return fig, list(axes[0])


def _num(s) -> bool:
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------- all of them
def report_figures(rep: dict, paper: dict | None, out_dir: str) -> list[str]:
    """Draw every figure the report has data for into ``out_dir`` (PNG + PDF); returns the paths."""
    paths: list[str] = []
    made = fewshot_figure(rep, paper)
    if made:
        paths += _save(made[0], out_dir, "fewshot_curves")
    for shots in sorted({r["shots"] for r in rep["base2new"] if r["n"]}, key=lambda s: s or 0):
        made = base2new_figure(rep, shots)
        if made:
            paths += _save(made[0], out_dir, f"base2new_{shots}shots")
    grids: dict[tuple, list[dict]] = {}
    for r in rep["crt"]:
        grids.setdefault((r["method"], r["dataset"], r["setting"]), []).append(r)
    for (method, ds, setting), rows in sorted(grids.items()):
        made = crt_figure(rows, f"{ds}: {method.split(':')[-1]} {setting}")
        if made:
            stem = "crt_" + "_".join(x.replace("/", "-") for x in (ds, setting))
            paths += _save(made[0], out_dir, stem)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Redraw the figures of a saved report.json")
    p.add_argument("report", help="report.json written by tools/report.py")
    p.add_argument("--out", default="", help="output folder (default: next to report.json)")
    args = p.parse_args(argv)
    try:
        with open(args.report) as f:
            rep = json.load(f)
    except (OSError, ValueError) as e:
        print(f"error: cannot read {args.report}: {e}", file=sys.stderr)
        return 2
    paths = report_figures(rep, load_paper(), args.out or osp.dirname(osp.abspath(args.report)))
    print("wrote " + ", ".join(paths) if paths else "nothing to draw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
