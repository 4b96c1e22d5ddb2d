#!/usr/bin/env python
"""Few-shot accuracy curves (accuracy vs shots, as in the CoOp/Nemesis papers) from run output folders.

Each curve is ``LABEL=PATTERN`` where PATTERN is a folder path containing ``{shots}`` (glob characters allowed,
e.g. ``*_{shots}shots`` when the config name changes with the shot count); the seed folders under it
(``seed*/results.json``, the final test result every run writes) are averaged, with the std over seeds drawn as
error bars. ``--zeroshot DIR`` (a folder with ``results.json``) adds the zero-shot accuracy as a horizontal line::

    python tools/plot_fewshot.py --shots 1 2 4 8 16 --zeroshot output/ZeroshotCLIP/tinysynth/synth_shapes \
        --curve 'CoOp=output/synth_shapes/CoOp/tinysynth_{shots}shots/nctx16_cscFalse_ctpend' \
        --curve 'Nemesis (PUN)=output/synth_shapes/CoOpNemesis/Beta-1.0/tinysynth_{shots}shots/*' \
        --title SynthShapes -o fewshot.png          # .png or .pdf by extension
"""
from __future__ import annotations

import argparse
import glob
import json
import os.path as osp
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_accuracy(folder: str) -> float | None:
    """``accuracy`` (percent) of ``folder/results.json``, or None when the file is missing/unreadable."""
    path = osp.join(folder, "results.json")
    try:
        with open(path) as f:
            return float(json.load(f)["accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def seed_accuracies(pattern: str) -> list[float]:
    """Accuracies of every ``seed*`` folder under the folders matching ``pattern`` (or of ``pattern`` itself
    when it directly holds a ``results.json``)."""
    out: list[float] = []
    for folder in sorted(glob.glob(pattern)):
        direct = read_accuracy(folder)
        if direct is not None:
            out.append(direct)
            continue
        for sd in sorted(glob.glob(osp.join(folder, "seed*"))):
            acc = read_accuracy(sd)
            if acc is not None:
                out.append(acc)
    return out


def collect_curve(pattern: str, shots: list[int]) -> dict[int, list[float]]:
    """``{shots: [accuracy per seed]}`` for the shot counts that have at least one finished run."""
    if "{shots}" not in pattern:
        raise ValueError(f"curve pattern needs a '{{shots}}' placeholder: {pattern}")
    res = {k: seed_accuracies(pattern.replace("{shots}", str(k))) for k in shots}
    return {k: v for k, v in res.items() if v}


def make_figure(curves: dict[str, dict[int, list[float]]], zeroshot: float | None = None,
                title: str = "", zeroshot_label: str = "Zero-shot CLIP"):
    """Draw the curves (mean over seeds, std error bars when several seeds) and the zero-shot line.

    Args:
        curves: ``{label: {shots: [accuracy per seed]}}``, accuracies in percent.
        zeroshot: zero-shot accuracy (percent) drawn as a dashed horizontal line, or None.
    Returns:
        (figure, axes); ``axes.get_lines()`` holds one line per curve plus the zero-shot line.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    markers = ["o", "s", "^", "D", "v", "P"]
    all_shots: set[int] = set()
    for i, (label, data) in enumerate(curves.items()):
        ks = sorted(data)
        if not ks:
            continue
        all_shots.update(ks)
        means = [sum(data[k]) / len(data[k]) for k in ks]
        stds = [(sum((x - m) ** 2 for x in data[k]) / len(data[k])) ** 0.5 for k, m in zip(ks, means)]
        ax.plot(ks, means, marker=markers[i % len(markers)], label=label)
        if any(len(data[k]) > 1 for k in ks):
            ax.errorbar(ks, means, yerr=stds, fmt="none", ecolor=ax.lines[-1].get_color(), capsize=3)
    if zeroshot is not None:
        ax.axhline(zeroshot, color="gray", linestyle="--", label=f"{zeroshot_label} ({zeroshot:.1f}%)")
    if all_shots:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(all_shots))
        ax.set_xticklabels([str(k) for k in sorted(all_shots)])
    ax.set_xlabel("number of labelled training examples per class (shots)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "few-shot accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig, ax


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Plot few-shot accuracy curves (accuracy vs shots) from run folders")
    p.add_argument("--curve", action="append", required=True, metavar="LABEL=PATTERN",
                   help="one curve: a label and a folder pattern with {shots} (seed*/results.json under it)")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--zeroshot", default="", help="zero-shot run folder (results.json) drawn as a line")
    p.add_argument("--title", default="")
    p.add_argument("-o", "--output", default="fewshot.png", help=".png or .pdf")
    args = p.parse_args(argv)
    curves: dict[str, dict[int, list[float]]] = {}
    for spec in args.curve:
        if "=" not in spec:
            p.error(f"--curve needs LABEL=PATTERN, got {spec!r}")
        label, pattern = spec.split("=", 1)
        try:
            curves[label] = collect_curve(pattern, args.shots)
        except ValueError as e:
            p.error(str(e))
        if not curves[label]:
            print(f"warning: no finished run for {label!r} ({pattern})", file=sys.stderr)
    zs = read_accuracy(args.zeroshot) if args.zeroshot else None
    if args.zeroshot and zs is None:
        print(f"warning: no results.json in {args.zeroshot}", file=sys.stderr)
    if not any(curves.values()) and zs is None:
        print("error: nothing to plot", file=sys.stderr)
        return 2
    fig, _ = make_figure(curves, zs, args.title)
    fig.savefig(args.output, dpi=150)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
