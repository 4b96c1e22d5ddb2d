#!/usr/bin/env python
"""Results report of an output tree: seed statistics, base/new/H, across-dataset averages, the papers' numbers.

    python tools/report.py output                      # any protocol; prints Markdown, writes output/report/
    python tools/report.py output --seeds 1 2 3 4 5    # the seeds every setting should have (default: those seen)
    python tools/report.py output --out results/ --no-figures

It walks ``OUTPUT_ROOT`` for run folders (``seed<S>``; zero-shot folders without a seed level count as one run)
and recognises the layouts of every protocol in ``scripts/`` (the bash scripts and the sweep launcher):

* few-shot:      ``<ds>/<Trainer>/[Beta-<B>/]<cfg>_<K>shots/[<name>/]seed<S>`` (CoOp, CoOpNemesis, PLOT, xd source)
* base-to-new:   ``base2new/{train_base,test_new}/<ds>/shots_<K>[_<W>]/<Trainer>/<cfg>/seed<S>`` (Nemesis hosts:
                 ``<Trainer>/Beta-<B>/<cfg>/alpha<A>..._nt<NT>/seed<S>``)
                 (and DePT's runner: ``{train_base,test_new}/<Trainer>/<ds>/shots<K>/<cfg>/seed<S>``)
* cross-dataset / domain generalisation: ``evaluation/<Trainer>/<cfg>_<K>shots/[<name>/]<ds>/seed<S>``
  (targets ``imagenet*`` variants are the DG protocol, the others cross-dataset); Nemesis ``output_dg`` trees
  are read as the few-shot layout of their target datasets
* corruption:    ``CoOpCRT/<ds>/<Trainer>/<cfg>_<K>shots/{original | replace/pos-P_std-F | rescale/pos-P_scale-F}/seed<S>``
* zero-shot:     ``<Trainer>/<cfg>/<ds>`` (one run, no seed)

A run counts when it is finished (:func:`dassl.utils.run_record.run_status`: our completion record ``run.json``,
or for reference-fork folders a log ending with ``Elapsed`` / ``macro_f1``). Its accuracy is read from the record's
results, else ``results.json``, else the last ``* accuracy: X%`` after ``=> result`` in ``log.txt``.

Statistics over the finished seeds: mean, population std (numpy ``std``, ddof 0, as CoOp's ``parse_test_res``)
and the 95% confidence half-width ``1.96 * std / sqrt(n)`` (the formula of ``parse_test_res --ci95``; a normal
approximation, not a t interval). Base-to-new: base and new are averaged over the seeds present on both sides,
H = 2 / (1/base + 1/new) of those seed means (not the mean of per-seed H), and the across-dataset average row is
H of the dataset-averaged base and new: the convention of the published tables (DePT ``result_parser``).

Published numbers come from ``tools/data/paper_numbers.json``; a result is compared with the first entry of the
same protocol, method, variant, dataset, shots and backbone whose ``configs`` contain the run's config (entries not
tied to a config come after those that are). ``check`` marks a difference larger than the seed spread (the std;
for numbers read off a plot, std + 0.2).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import os.path as osp
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dassl.utils.run_record import read_record, run_status  # noqa: E402
from tools.paper_numbers import PAPER_FILE, load_paper, variant_matches  # noqa: E402,F401

CI_FORMULA = "95% CI half-width = 1.96 * std / sqrt(n), std = population std over seeds (ddof 0)"
SEED_RE = re.compile(r"^seed(-?\d+)$")
SHOTS_RE = re.compile(r"^(?P<cfg>.+)_(?P<k>\d+)shots$")
B2N_SHOTS_RE = re.compile(r"^shots_?(?P<k>\d+)(?:_(?P<w>.+))?$")
CRT_SETTING_RE = re.compile(r"^pos-(?P<pos>\d+)_(?:std|scale)-(?P<f>.+)$")
ACC_RE = re.compile(r"\* accuracy: ([\.\deE+-]+)%")
RUN_FILES = ("log.txt", "run.json", "results.json")
PLOT_TOLERANCE = 0.2  # read-off accuracy of values taken from a plotted figure of a paper
FALLBACK_DATASETS = (
    "caltech101", "dtd", "eurosat", "fgvc_aircraft", "food101", "imagenet", "imagenet_a", "imagenet_r",
    "imagenet_sketch", "imagenetv2", "oxford_flowers", "oxford_pets", "stanford_cars", "sun397", "ucf101",
    "synth_shapes",
)
DG_DATASETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
N_BENCHMARKS = {"base2new": 11, "fewshot": 11, "xd": 10, "dg": 4}


def known_datasets() -> set[str]:
    """The dataset config stems (``configs/datasets/*.yaml``): the names scripts put in folder paths."""
    cfg_dir = osp.join(ROOT, "configs", "datasets")
    names = set(FALLBACK_DATASETS)
    if osp.isdir(cfg_dir):
        names |= {n[:-5] for n in os.listdir(cfg_dir) if n.endswith(".yaml")}
    return names


# --------------------------------------------------------------------------------------------- one run folder
@dataclass
class SeedRun:
    seed: int | None
    folder: str
    status: str  # finished | running | interrupted | missing | no-result
    value: float | None = None
    how: str = ""  # record | results.json | log


def _accuracy_in(results: Any) -> float | None:
    if not isinstance(results, dict):
        return None
    for key in ("accuracy", "test_accuracy", "acc"):
        v = results.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    for key in ("test", "final", "result"):  # one nested level ({"test": {"accuracy": ...}})
        v = _accuracy_in(results.get(key))
        if v is not None:
            return v
    return None


def log_accuracy(path: str) -> float | None:
    """The last ``* accuracy: X%`` after a ``=> result`` line of ``path`` (None when absent)."""
    seen, value = False, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.strip()
                if line == "=> result":
                    seen = True
                elif seen:
                    m = ACC_RE.search(line)
                    if m:
                        value = float(m.group(1))
    except OSError:
        return None
    return value


def read_run(folder: str, seed: int | None) -> SeedRun:
    """Status and accuracy of one run folder (see the module docstring for the order of the sources)."""
    status = run_status(folder)
    if status != "finished":
        return SeedRun(seed, folder, status)
    rec = read_record(folder)
    if rec is not None:
        v = _accuracy_in(rec.get("results"))
        if v is not None:
            return SeedRun(seed, folder, "finished", v, "record")
    try:
        with open(osp.join(folder, "results.json")) as f:
            v = _accuracy_in(json.load(f))
        if v is not None:
            return SeedRun(seed, folder, "finished", v, "results.json")
    except (OSError, ValueError):
        pass
    v = log_accuracy(osp.join(folder, "log.txt"))
    if v is not None:
        return SeedRun(seed, folder, "finished", v, "log")
    return SeedRun(seed, folder, "no-result")


# --------------------------------------------------------------------------------------------- the walk
def find_runs(root: str, skip: Iterable[str] = ()) -> dict[str, dict[int | None, str]]:
    """``{experiment folder: {seed: run folder}}``; seed None for a run folder without a seed level."""
    skip = {osp.abspath(s) for s in skip}
    out: dict[str, dict[int | None, str]] = {}
    for dirpath, dirs, files in os.walk(root):
        if osp.abspath(dirpath) in skip:
            dirs[:] = []
            continue
        seeds = {}
        for d in sorted(dirs):
            m = SEED_RE.match(d)
            if m:
                seeds[int(m.group(1))] = osp.join(dirpath, d)
        if seeds:
            out[dirpath] = seeds
            dirs[:] = [d for d in dirs if not SEED_RE.match(d)]
        elif any(f in files for f in RUN_FILES) and dirpath != root and not SEED_RE.match(osp.basename(dirpath)):
            out[dirpath] = {None: dirpath}
            dirs[:] = []
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tensorboard", "prompt_learner")]
    return out


def cfg_backbone(cfg: str) -> str | None:
    c = cfg.lower()
    for prefix, name in (("vit_b16", "ViT-B/16"), ("vit_b32", "ViT-B/32"), ("vit_l14", "ViT-L/14"),
                         ("rn50x", None), ("rn101", "RN101"), ("rn50", "RN50")):
        if c.startswith(prefix):
            return name if name else cfg.split("_")[0].upper()
    return None


def cfg_family(cfg: str) -> str:
    """The config without its epoch part (``rn50_ep50`` -> ``rn50``): the few-shot recipe changes epochs per shot."""
    return re.sub(r"_ep\d+", "", cfg)


def nemesis_variant(parts: list[str]) -> str | None:
    beta = next((p[5:] for p in parts if p.startswith("Beta-")), None)
    if beta is None:
        return None
    alpha = next((m.group(1) for p in parts for m in [re.match(r"^alpha([^_]+)_", p)] if m), None)
    try:
        b = float(beta)
        kind = "PUN" if b == 1.0 else "PAN" if b == 0.0 else f"BETA={beta}"
    except ValueError:
        kind = f"BETA={beta}"
    return kind + (f" A={float(alpha)}" if alpha and _is_float(alpha) else "")


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@dataclass
class Experiment:
    protocol: str  # fewshot | base2new | xd | dg | crt | zeroshot
    method: str
    dataset: str
    setting: str  # the remaining path parts (config, shots, method options)
    shots: int | None = None
    cfg: str = ""
    variant: str | None = None
    split: str = ""  # base2new: base | new
    pair: tuple = ()  # base2new: the key joining train_base and test_new
    crt: dict = field(default_factory=dict)  # type, position, factor
    folder: str = ""


def classify(rel: str, datasets: set[str]) -> Experiment | None:
    """The protocol, method, dataset and setting of an experiment folder from its path below the root."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p and p != "."]
    if not parts:
        return None
    # base-to-new
    for side, split in (("train_base", "base"), ("test_new", "new")):
        if side in parts:
            i = parts.index(side)
            rest = parts[i + 1:]
            if len(rest) < 4:
                return None
            if rest[0] in datasets:  # ours: <ds>/<shots_tag>/<T>/<cfg>
                ds, tag, method, cfg = rest[0], rest[1], rest[2], "/".join(rest[3:])
            elif rest[1] in datasets:  # DePT runner: <T>/<ds>/shots<K>/<cfg>
                method, ds, tag, cfg = rest[0], rest[1], rest[2], "/".join(rest[3:])
            else:
                return None
            m = B2N_SHOTS_RE.match(tag)
            shots = int(m.group("k")) if m else None
            prefix = "/".join(parts[:i])
            # Nemesis hosts: <T>/Beta-<B>/<cfg>/alpha<A>..._nt<NT>/seed<S> (scripts/*_nemesis/)
            cfg_parts = cfg.split("/")
            name = next((p for p in cfg_parts if not p.startswith("Beta-")), cfg_parts[0])
            return Experiment("base2new", method, ds, f"{tag}/{cfg}", shots, name, split=split,
                              pair=(prefix, method, ds, tag, cfg), variant=nemesis_variant(cfg_parts))
    # corruption grid
    for i, p in enumerate(parts):
        if p == "original" or (p in ("replace", "rescale") and i + 1 < len(parts)):
            ds = next((q for q in parts[:i] if q in datasets), None)
            if ds is None:
                continue
            j = parts.index(ds)
            method = parts[j + 1] if j + 1 < i else "CoOp"
            crt_root = parts[j - 1] if j >= 1 else "CoOpCRT"
            base = [q for q in parts[j + 2:i]]
            m = SHOTS_RE.match(base[-1]) if base else None
            cfg, shots = (m.group("cfg"), int(m.group("k"))) if m else ("/".join(base), None)
            crt = {"type": p, "position": None, "factor": None}
            if p != "original":
                sm = CRT_SETTING_RE.match(parts[i + 1])
                if not sm:
                    return None
                crt.update(position=int(sm.group("pos")), factor=sm.group("f"))
            return Experiment("crt", f"{crt_root}:{method}", ds, "/".join(base), shots, cfg, crt=crt)
    # cross-dataset / DG evaluation
    if "evaluation" in parts:
        i = parts.index("evaluation")
        rest = parts[i + 1:]
        if len(rest) >= 3 and rest[-1] in datasets:
            method, ds, mid = rest[0], rest[-1], rest[1:-1]
            m = SHOTS_RE.match(mid[0]) if mid else None
            cfg, shots = (m.group("cfg"), int(m.group("k"))) if m else (mid[0] if mid else "", None)
            return Experiment("dg" if ds in DG_DATASETS else "xd", method, ds, "/".join(mid), shots, cfg,
                              variant=nemesis_variant(mid))
    # few-shot (and the xd source runs, Nemesis DG trees, zero-shot)
    idx = [k for k, p in enumerate(parts) if p in datasets]
    if not idx:
        return None
    j = idx[0]
    ds = parts[j]
    after, before = parts[j + 1:], parts[:j]
    if before and after and B2N_SHOTS_RE.match(after[0]):  # DePT runner xd: <T>/<ds>/shots<K>/<cfg>/seed<S>
        method, rest = before[-1], after
        m = B2N_SHOTS_RE.match(after[0])
        cfg = "/".join(after[1:])
        protocol = "dg" if ds in DG_DATASETS else "fewshot" if ds == "imagenet" else "xd"
        return Experiment(protocol, method, ds, "/".join(rest), int(m.group("k")), cfg)
    if after:
        method, rest = after[0], after[1:]
        m = next((SHOTS_RE.match(p) for p in rest if SHOTS_RE.match(p)), None)
        cfg, shots = (m.group("cfg"), int(m.group("k"))) if m else ("/".join(rest), None)
        protocol = "dg" if ds in DG_DATASETS else "fewshot"
        return Experiment(protocol, method, ds, "/".join(rest), shots, cfg, variant=nemesis_variant(rest))
    if before:  # zero-shot <Trainer>/<cfg>/<ds>, DePT xd <T>/<ds>/... handled above
        method = before[0] if len(before) >= 1 else "?"
        cfg = "/".join(before[1:])
        return Experiment("zeroshot", method, ds, cfg, None, cfg)
    return None


# --------------------------------------------------------------------------------------------- statistics
def stats(values: list[float]) -> dict[str, float | None]:
    """mean, population std and 1.96 * std / sqrt(n) of ``values`` (None when empty)."""
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "ci95": None}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    return {"mean": mean, "std": std, "ci95": 1.96 * std / math.sqrt(n)}


def harmonic_mean(base: float | None, new: float | None) -> float | None:
    """H = 2 / (1/base + 1/new) (0 when either is 0; None when either is missing)."""
    if base is None or new is None:
        return None
    return 0.0 if base <= 0 or new <= 0 else 2.0 / (1.0 / base + 1.0 / new)


def _seed_name(s: int | None) -> str:
    return "-" if s is None else f"seed{s}"


def _side(runs: dict[int | None, SeedRun], expected: set[int]) -> tuple[dict, list[str], list[str]]:
    ok = {s: r.value for s, r in runs.items() if r.status == "finished" and r.value is not None}
    unfinished = [f"{_seed_name(s)} ({r.status})" for s, r in sorted(runs.items(), key=lambda x: (x[0] is None, x[0] or 0))
                  if s not in ok]
    missing = [_seed_name(s) for s in sorted(expected - set(runs))] if None not in runs else []
    return ok, missing, unfinished


# --------------------------------------------------------------------------------------------- paper numbers


def match_paper(paper: dict, protocol: str, method: str, variant: str | None, dataset: str, shots: int | None,
                cfg: str) -> dict | None:
    """The preferred published entry for this result (see the module docstring), or None."""
    proto = {"base2new": "base2new", "fewshot": "fewshot", "xd": "xd", "dg": "dg"}.get(protocol)
    if proto is None:
        return None
    backbone = cfg_backbone(cfg) if cfg else None
    tied, free = None, None
    for e in paper["entries"]:
        if e["protocol"] != proto or e["method"] != method or e["dataset"] != dataset:
            continue
        if e.get("shots") is not None and shots is not None and e["shots"] != shots:
            continue
        if not variant_matches(e.get("variant"), variant):
            continue
        if e.get("backbone") and backbone and e["backbone"] != backbone:
            continue
        if backbone is None and e.get("backbone"):
            continue  # a config whose backbone we cannot tell (e.g. a generated benchmark) is not a paper setting
        if e.get("configs"):
            if cfg in e["configs"] and tied is None:
                tied = e
        elif free is None:
            free = e
    return tied or free


def _compare(row: dict, entry: dict | None, paper: dict, keys: list[tuple[str, str, str]]) -> None:
    """Add ``paper_<k>``, ``diff_<k>`` and ``check`` to ``row`` for (our key, paper key, spread key) triples."""
    if entry is None:
        return
    src = paper["sources"].get(entry["source"], {})
    row["paper_source"] = entry["source"]
    row["paper_approx"] = bool(src.get("approximate"))
    tol = PLOT_TOLERANCE if src.get("approximate") else 0.0
    flags = []
    for ours, pk, spread in keys:
        pv, ov = entry.get(pk), row.get(ours)
        if pv is None or ov is None:
            continue
        row[f"paper_{ours}"] = pv
        row[f"diff_{ours}"] = ov - pv
        sp = row.get(spread) or 0.0
        if abs(ov - pv) > sp + tol + 1e-9:
            flags.append(ours)
    row["check"] = ("LOOK: diff > seed std (" + ", ".join(flags) + ")") if flags else "ok"


# --------------------------------------------------------------------------------------------- the report
def build_report(root: str, expected_seeds: list[int] | None = None, paper: dict | None = None,
                 skip: Iterable[str] = ()) -> dict:
    """All rows of the report (``single``, ``base2new``, ``crt``, ``averages``) plus notes; see the module docstring."""
    root = osp.abspath(root)
    paper = paper if paper is not None else load_paper()
    datasets = known_datasets()
    exps: list[tuple[Experiment, dict[int | None, SeedRun]]] = []
    unknown = []
    for folder, seeds in sorted(find_runs(root, skip).items()):
        exp = classify(osp.relpath(folder, root), datasets)
        if exp is None:  # ROOT may be deep inside a tree (e.g. one experiment folder): use the whole path
            exp = classify(folder, datasets)
        if exp is None:
            unknown.append(osp.relpath(folder, root))
            continue
        exp.folder = folder
        exps.append((exp, {s: read_run(f, s) for s, f in seeds.items()}))
    seen: dict[str, set[int]] = {}
    for exp, runs in exps:
        seen.setdefault(exp.protocol, set()).update(s for s in runs if s is not None)
    def expected(protocol: str) -> set[int]:
        return set(expected_seeds) if expected_seeds else seen.get(protocol, set())

    single, crt_rows = [], []
    pairs: dict[tuple, dict[str, tuple[Experiment, dict]]] = {}
    for exp, runs in exps:
        if exp.protocol == "base2new":
            pairs.setdefault(exp.pair, {})[exp.split] = (exp, runs)
            continue
        ok, missing, unfinished = _side(runs, expected(exp.protocol))
        vals = [ok[s] for s in sorted(ok, key=lambda s: s or 0)]
        st = stats(vals)
        row = {"protocol": exp.protocol, "method": exp.method, "variant": exp.variant or "", "dataset": exp.dataset,
               "shots": exp.shots, "cfg": exp.cfg, "setting": exp.setting, "n": len(vals), **st,
               "seeds": [_seed_name(s) for s in sorted(ok, key=lambda s: s or 0)], "missing": missing,
               "unfinished": unfinished, "values": vals, "folder": osp.relpath(exp.folder, root)}
        if exp.protocol == "crt":
            row.update(type=exp.crt["type"], position=exp.crt["position"], factor=exp.crt["factor"])
            crt_rows.append(row)
            continue
        entry = match_paper(paper, exp.protocol, exp.method, exp.variant, exp.dataset, exp.shots, exp.cfg)
        if entry is None and exp.protocol == "fewshot" and exp.dataset == "imagenet":  # the xd / DG source run
            entry = (match_paper(paper, "xd", exp.method, exp.variant, "imagenet", exp.shots, exp.cfg)
                     or match_paper(paper, "dg", exp.method, exp.variant, "imagenet", exp.shots, exp.cfg))
        _compare(row, entry, paper, [("mean", "accuracy", "std")])
        single.append(row)

    b2n = []
    for key, sides in sorted(pairs.items()):
        exp = (sides.get("base") or sides.get("new"))[0]
        exp_seeds = expected("base2new")
        base_ok, base_missing, base_unf = _side(sides["base"][1] if "base" in sides else {}, exp_seeds)
        new_ok, new_missing, new_unf = _side(sides["new"][1] if "new" in sides else {}, exp_seeds)
        common = sorted(set(base_ok) & set(new_ok), key=lambda s: s or 0)
        bs, ns = stats([base_ok[s] for s in common]), stats([new_ok[s] for s in common])
        per_seed_h = [harmonic_mean(base_ok[s], new_ok[s]) for s in common]
        hs = stats([h for h in per_seed_h if h is not None])
        row = {"protocol": "base2new", "method": exp.method, "variant": exp.variant or "", "dataset": exp.dataset,
               "shots": exp.shots, "cfg": exp.cfg, "setting": exp.setting, "n": len(common),
               "base": bs["mean"], "base_std": bs["std"], "base_ci95": bs["ci95"],
               "new": ns["mean"], "new_std": ns["std"], "new_ci95": ns["ci95"],
               "H": harmonic_mean(bs["mean"], ns["mean"]), "H_std": hs["std"],
               "seeds": [_seed_name(s) for s in common],
               "missing": [f"base {s}" for s in base_missing] + [f"new {s}" for s in new_missing]
               + [f"new {_seed_name(s)} (no new result)" for s in sorted(set(base_ok) - set(new_ok), key=lambda s: s or 0)
                  if _seed_name(s) not in new_missing and not any(u.startswith(_seed_name(s) + " ") for u in new_unf)]
               + [f"base {_seed_name(s)} (no base result)" for s in sorted(set(new_ok) - set(base_ok), key=lambda s: s or 0)
                  if _seed_name(s) not in base_missing and not any(u.startswith(_seed_name(s) + " ") for u in base_unf)],
               "unfinished": [f"base {u}" for u in base_unf] + [f"new {u}" for u in new_unf],
               "base_values": [base_ok[s] for s in common], "new_values": [new_ok[s] for s in common],
               "folder": "/".join(p for p in key[:1] if p)}
        _compare(row, match_paper(paper, "base2new", exp.method, exp.variant, exp.dataset, exp.shots, exp.cfg), paper,
                 [("base", "base", "base_std"), ("new", "new", "new_std"), ("H", "H", "H_std")])
        b2n.append(row)

    averages = _averages(single, b2n, paper)
    return {"root": root, "ci_formula": CI_FORMULA, "expected_seeds": sorted(expected_seeds or []),
            "single": single, "base2new": b2n, "crt": crt_rows, "averages": averages, "unrecognised": unknown}


def _averages(single: list[dict], b2n: list[dict], paper: dict) -> list[dict]:
    """Across-dataset averages per (protocol, method, variant, config family, shots)."""
    groups: dict[tuple, list[dict]] = {}
    for r in single + b2n:
        if r["protocol"] in ("zeroshot",) or r["n"] == 0:
            continue
        fam = cfg_family(r["cfg"]) if r["protocol"] == "fewshot" else r["cfg"]
        extra = r["setting"].split("/", 1)[1] if r["protocol"] == "base2new" and "/" in r["setting"] else ""
        key = (r["protocol"], r["method"], r["variant"], fam, r["shots"], extra if r["protocol"] != "base2new" else "")
        groups.setdefault(key, []).append(r)
    out = []
    for (protocol, method, variant, fam, shots, _), rows in sorted(groups.items(), key=lambda x: str(x[0])):
        by_ds: dict[str, dict] = {}
        notes = []
        for r in rows:  # several configs of one dataset in a family: keep the one with more seeds
            cur = by_ds.get(r["dataset"])
            if cur is not None:
                notes.append(f"{r['dataset']}: several configs ({cur['cfg']}, {r['cfg']}), kept the one with more seeds")
                if r["n"] <= cur["n"]:
                    continue
            by_ds[r["dataset"]] = r
        sel = [by_ds[d] for d in sorted(by_ds)]
        if protocol == "fewshot":
            sel = [r for r in sel if r["dataset"] not in DG_DATASETS]
        if not sel:
            continue
        row = {"protocol": protocol, "method": method, "variant": variant, "dataset": "average", "shots": shots,
               "cfg": fam, "n_datasets": len(sel), "datasets": [r["dataset"] for r in sel], "notes": notes}
        if protocol == "base2new":
            row["base"] = sum(r["base"] for r in sel) / len(sel)
            row["new"] = sum(r["new"] for r in sel) / len(sel)
            row["H"] = harmonic_mean(row["base"], row["new"])
            # spread of the average over seeds is not defined across datasets with different seeds: use the mean std
            for k in ("base", "new", "H"):
                stds = [r.get(f"{k}_std") for r in sel if r.get(f"{k}_std") is not None]
                row[f"{k}_std"] = sum(stds) / len(stds) if stds else None
            keys = [("base", "base", "base_std"), ("new", "new", "new_std"), ("H", "H", "H_std")]
        else:
            row["mean"] = sum(r["mean"] for r in sel) / len(sel)
            stds = [r["std"] for r in sel if r["std"] is not None]
            row["std"] = sum(stds) / len(stds) if stds else None
            keys = [("mean", "accuracy", "std")]
        entry = match_paper(paper, protocol, method, variant or None, "average", shots,
                            next((r["cfg"] for r in sel), fam))
        _compare(row, entry, paper, keys)
        bench = N_BENCHMARKS.get(protocol)
        if bench and len(sel) < bench:
            row["notes"].append(f"average over {len(sel)} of the {bench} benchmark datasets")
            if "check" in row:  # a partial average is not comparable with the published one
                row["check"] = f"partial ({len(sel)}/{bench} datasets)"
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------- output
def _f(v: Any, nd: int = 2) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    if isinstance(v, list):
        return " ".join(str(x) for x in v)
    return str(v)


def _pm(mean: Any, spread: Any) -> str:
    return "" if mean is None else f"{mean:.2f} ± {spread:.2f}" if spread is not None else f"{mean:.2f}"


def _paper_cell(r: dict, k: str) -> str:
    if f"paper_{k}" not in r:
        return ""
    approx = "≈" if r.get("paper_approx") else ""
    return f"{approx}{r[f'paper_{k}']:.2f} ({r[f'diff_{k}']:+.2f})"


def markdown(rep: dict) -> str:
    lines: list[str] = [f"# Results report: {rep['root']}", "", f"Spread: {CI_FORMULA}. Paper columns: published "
                        "value (our mean - paper). `check`: the difference exceeds the seed std.", ""]
    single = [r for r in rep["single"]]
    if single:
        lines += ["## Accuracy per method x dataset x setting", "",
                  "| protocol | method | variant | dataset | shots | cfg | setting | n | mean ± std | 95% CI | paper | check | missing | unfinished |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(single, key=lambda r: (r["protocol"], r["method"], r["variant"], r["shots"] or 0, r["dataset"])):
            lines.append("| " + " | ".join([r["protocol"], r["method"], r["variant"], r["dataset"], _f(r["shots"]),
                                              r["cfg"], r["setting"], str(r["n"]), _pm(r["mean"], r["std"]),
                                              _f(r["ci95"]), _paper_cell(r, "mean"), r.get("check", ""),
                                              _f(r["missing"]), _f(r["unfinished"])]) + " |")
        lines.append("")
    if rep["base2new"]:
        lines += ["## Base-to-new (H of the seed-averaged base and new)", "",
                  "| method | dataset | shots | cfg | n | base | new | H | base (paper) | new (paper) | H (paper) | check | missing | unfinished |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rep["base2new"], key=lambda r: (r["method"], r["setting"], r["dataset"])):
            method = f'{r["method"]} ({r["variant"]})' if r.get("variant") else r["method"]
            lines.append("| " + " | ".join([method, r["dataset"], _f(r["shots"]), r["cfg"], str(r["n"]),
                                              _pm(r["base"], r["base_std"]), _pm(r["new"], r["new_std"]), _f(r["H"]),
                                              _paper_cell(r, "base"), _paper_cell(r, "new"), _paper_cell(r, "H"),
                                              r.get("check", ""), _f(r["missing"]), _f(r["unfinished"])]) + " |")
        lines.append("")
    if rep["averages"]:
        lines += ["## Across-dataset averages", "",
                  "| protocol | method | variant | shots | cfg | datasets | mean / base | new | H | paper | check | notes |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rep["averages"]:
            if r["protocol"] == "base2new":
                cells = [_f(r["base"]), _f(r["new"]), _f(r["H"]),
                         " / ".join(c for c in (_paper_cell(r, "base"), _paper_cell(r, "new"), _paper_cell(r, "H")) if c)]
            else:
                cells = [_f(r["mean"]), "", "", _paper_cell(r, "mean")]
            lines.append("| " + " | ".join([r["protocol"], r["method"], r["variant"], _f(r["shots"]), r["cfg"],
                                              str(r["n_datasets"])] + cells + [r.get("check", ""),
                                                                                "; ".join(r["notes"])]) + " |")
        lines.append("")
    if rep["crt"]:
        lines += ["## Corruption grids (mean over seeds)", "",
                  "| method | dataset | setting | type | position | factor | n | mean ± std | missing | unfinished |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in sorted(rep["crt"], key=lambda r: (r["dataset"], r["setting"], r["type"], str(r["factor"]),
                                                    r["position"] if r["position"] is not None else -1)):
            lines.append("| " + " | ".join([r["method"], r["dataset"], r["setting"], r["type"], _f(r["position"]),
                                              _f(r["factor"]), str(r["n"]), _pm(r["mean"], r["std"]),
                                              _f(r["missing"]), _f(r["unfinished"])]) + " |")
        lines.append("")
    if rep["unrecognised"]:
        lines += ["Folders not recognised as any protocol: " + ", ".join(rep["unrecognised"]), ""]
    return "\n".join(lines)


CSV_KEYS = ["protocol", "method", "variant", "dataset", "shots", "cfg", "setting", "type", "position", "factor", "n",
            "n_datasets", "mean", "std", "ci95", "base", "base_std", "base_ci95", "new", "new_std", "new_ci95", "H",
            "H_std", "paper_source", "paper_mean", "diff_mean", "paper_base", "diff_base", "paper_new", "diff_new",
            "paper_H", "diff_H", "check", "seeds", "missing", "unfinished", "datasets", "notes", "folder"]


def write_outputs(rep: dict, out_dir: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    rows = rep["single"] + rep["base2new"] + rep["crt"] + rep["averages"]
    paths = [osp.join(out_dir, n) for n in ("report.csv", "report.json", "report.md")]
    with open(paths[0], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_KEYS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (_f(r.get(k), 4) if isinstance(r.get(k), (float, list)) else r.get(k, "")) for k in CSV_KEYS})
    with open(paths[1], "w") as f:
        json.dump(rep, f, indent=1)
    with open(paths[2], "w") as f:
        f.write(markdown(rep) + "\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:4]))
    p.add_argument("root", help="output root (e.g. output, output/base2new, output_crt)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds every setting should have (default: every seed seen in the protocol)")
    p.add_argument("--out", default="", help="folder for report.{csv,json,md} and figures (default ROOT/report)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/PDF figures")
    p.add_argument("--paper", default=PAPER_FILE, help="published numbers (JSON)")
    args = p.parse_args(argv)
    if not osp.isdir(args.root):
        print(f"error: {args.root} is not a folder (pass the output root the scripts wrote, e.g. output)",
              file=sys.stderr)
        return 2
    try:
        paper = load_paper(args.paper)
    except (OSError, ValueError) as e:
        print(f"error: cannot read the paper numbers {args.paper}: {e}", file=sys.stderr)
        return 2
    out = args.out or osp.join(args.root, "report")
    rep = build_report(args.root, args.seeds, paper, skip=[out])
    if not (rep["single"] or rep["base2new"] or rep["crt"]):
        if rep["unrecognised"]:
            print(f"error: run folders under {args.root} do not follow any protocol layout of scripts/ (e.g. "
                  f"{rep['unrecognised'][0]}); see the layouts in tools/report.py --help", file=sys.stderr)
        else:
            print(f"error: no run folders found under {args.root} (expected seed<S> folders with log.txt / "
                  "run.json)", file=sys.stderr)
        return 2
    print(markdown(rep))
    paths = write_outputs(rep, out)
    if not args.no_figures:
        from tools import plot_results  # noqa: PLC0415  (matplotlib only when drawing)

        paths += plot_results.report_figures(rep, paper, out)
    print("wrote " + ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
