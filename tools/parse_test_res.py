#!/usr/bin/env python
"""Aggregate ``* <keyword>: X%`` results over seed folders (CoOp's tool, extended).

    python tools/parse_test_res.py output/eurosat/CoOp/rn50_16shots/nctx16_cscFalse_ctpend
    python tools/parse_test_res.py output/evaluation/... --test-log --multi-exp --ci95
    python tools/parse_test_res.py output_crt/CoOpCRT/eurosat/CoOp/rn50_ep50_1shots --crt --markdown
    python tools/parse_test_res.py output/base2new --base2new [--csv b2n.csv] [--markdown]

Rules (those of the CoOp repository's parse_test_res.py): in each sub-folder's ``log.txt`` a value counts only after the end signal
(``Finish training``; ``=> result`` with ``--test-log``); the regex ``\\* <keyword>: <number>%`` accepts one or
two decimals, the last match wins. A finished run's completion record (``run.json``, see
``dassl/utils/run_record.py``) is read first when it holds the keyword. Instead of CoOp's assertion, sub-folders
without a finished result are listed on stderr with the reason (unfinished / interrupted run, an evaluation log read
without ``--test-log``, no result block); stray files are ignored; when no folder has a result the exit status is 2.
``--csv FILE`` / ``--markdown`` write a table; ``--crt`` builds the corruption table (accuracy per setting, mean over
seeds).

``--base2new`` reads ``<dir>/train_base/<dataset>/<shots>/<trainer>/<cfg>/seed<S>`` (base accuracy: the final
test of the training log) and the matching ``test_new/...`` folder (new accuracy: the evaluation log), for the
layout of ``scripts/{cocoop,kgcoop,maple,dept}``. One table per (shots, trainer, cfg): per dataset the per-seed
base / new / H (H = 2 / (1/base + 1/new)), then the means over the seeds present in both (any number) and H of
those means, plus an ``average`` row (means over datasets, H of the averaged base and new: the convention of the
published tables).
"""
from __future__ import annotations

import argparse
import csv
import os
import os.path as osp
import re
import sys
import warnings

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from dassl.utils.run_record import read_record, run_status  # noqa: E402


def parse_log(path: str, keyword: str = "accuracy", test_log: bool = False) -> float | None:
    end_signal = "=> result" if test_log else "Finish training"
    pattern = re.compile(rf"\* {re.escape(keyword)}: ([\.\deE+-]+)%")
    seen, value = False, None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line == end_signal:
                seen = True
            if seen:
                m = pattern.search(line)
                if m:
                    value = float(m.group(1))
    return value


def _record_value(folder: str, keyword: str) -> float | None:
    """``keyword`` from the completion record's results of a finished run (None without a usable record)."""
    rec = read_record(folder)
    if rec is None or not rec.get("finished"):
        return None
    results = rec.get("results")
    v = results.get(keyword) if isinstance(results, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def why_missing(folder: str, keyword: str, test_log: bool) -> str:
    """Why ``folder`` has no value: unfinished run, evaluation log read without ``--test-log``, no result lines."""
    log = osp.join(folder, "log.txt")
    if not osp.isdir(folder):
        return "not a run folder"
    status = run_status(folder)
    if not osp.isfile(log):
        return f"no log.txt ({status})" if status != "missing" else "no log.txt (empty folder: never started?)"
    with open(log, errors="replace") as f:
        lines = [ln.strip() for ln in f]
    has_result = "=> result" in lines
    if not test_log and "Finish training" not in lines and has_result:
        return "an evaluation log (no 'Finish training'): parse it with --test-log"
    if status in ("running", "interrupted"):
        return f"unfinished run ({status}: no completion record, log does not end as finished)"
    if not has_result:
        return "the log has no '=> result' block (the run never evaluated)"
    return f"no '* {keyword}: X%' line after the end signal"


def collect(directory: str, keyword: str, test_log: bool, problems: list[str] | None = None) -> list[tuple[str, float]]:
    """``[(log path, value)]`` of the finished runs in the sub-folders of ``directory``.

    A run's value comes from its completion record (``run.json``) when it holds ``keyword``, else from its log.
    Folders without a value are appended to ``problems`` with the reason (a warning when ``problems`` is None).
    """
    out = []
    for name in sorted(n for n in os.listdir(directory) if not n.startswith(".")):
        folder = osp.join(directory, name)
        log = osp.join(folder, "log.txt")
        if not osp.isdir(folder):
            continue  # a stray file next to the seed folders (notes, a CSV): not a run
        v = _record_value(folder, keyword)
        if v is None and osp.isfile(log):
            v = parse_log(log, keyword, test_log)
        if v is None:
            reason = why_missing(folder, keyword, test_log)
            if problems is not None:
                problems.append(f"{folder}: {reason}")
            else:
                warnings.warn(f"skipping {folder}: {reason}")
            continue
        out.append((log, v))
    return out


def report_problems(directory: str, problems: list[str], found: int) -> None:
    """One stderr block naming the seed folders without a finished result (and the --test-log hint)."""
    if not problems:
        return
    print(f"note: {len(problems)} of {len(problems) + found} run folders under {directory} have no finished "
          "result:", file=sys.stderr)
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    if any("--test-log" in p for p in problems):
        print("  (evaluation folders, e.g. output/evaluation/... or test_new/..., are parsed with --test-log)",
              file=sys.stderr)


def summarize(values: list[float], ci95: bool) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    std = float(arr.std())
    return float(arr.mean()), (1.96 * std / np.sqrt(len(arr)) if ci95 else std)


def crt_table(directory: str, keyword: str) -> list[dict]:
    """Rows (type, position, factor, n, mean) of a sweep folder ``<base>/{original|replace|rescale}/...``."""
    rows = []
    for kind in ("original", "replace", "rescale"):
        kdir = osp.join(directory, kind)
        if not osp.isdir(kdir):
            continue
        settings = [("", kdir)] if kind == "original" else [(s, osp.join(kdir, s)) for s in sorted(os.listdir(kdir))]
        for setting, sdir in settings:
            vals = [v for _, v in collect(sdir, keyword, True)]
            if not vals:
                continue
            m = re.match(r"pos-(\d+)_(?:std|scale)-(.+)", setting)
            rows.append({"type": kind, "position": int(m.group(1)) if m else "", "factor": m.group(2) if m else "",
                         "n": len(vals), keyword: round(float(np.mean(vals)), 2)})
    rows.sort(key=lambda r: (r["type"], str(r["factor"]), r["position"] if r["position"] != "" else -1))
    return rows


def harmonic_mean(base: float, new: float) -> float:
    """H = 2 / (1/base + 1/new) (0 when either is 0)."""
    return 0.0 if base <= 0 or new <= 0 else 2.0 / (1.0 / base + 1.0 / new)


def _seed_values(directory: str, test_log: bool) -> dict[str, float]:
    if not osp.isdir(directory):
        return {}
    return {osp.basename(osp.dirname(log)): v for log, v in collect(directory, "accuracy", test_log)}


def base2new_tables(directory: str) -> dict[tuple[str, str, str], list[dict]]:
    """``{(shots, trainer, cfg): rows}``; rows per dataset (sorted) then ``average`` (see module docstring)."""
    train_root, test_root = osp.join(directory, "train_base"), osp.join(directory, "test_new")
    groups: dict[tuple[str, str, str], list[dict]] = {}
    if not osp.isdir(train_root):
        raise FileNotFoundError(f"no train_base folder under {directory}")
    for dataset in sorted(os.listdir(train_root)):
        for rel_dir, dirs, _ in os.walk(osp.join(train_root, dataset)):
            rel = osp.relpath(rel_dir, osp.join(train_root, dataset)).split(os.sep)
            if len(rel) != 3:
                continue
            dirs[:] = []
            shots, trainer, cfg = rel
            base = _seed_values(rel_dir, test_log=False)
            new = _seed_values(osp.join(test_root, dataset, shots, trainer, cfg), test_log=True)
            seeds = sorted(set(base) & set(new), key=lambda s: (len(s), s))
            if not seeds:
                warnings.warn(f"skipping {dataset}/{shots}/{trainer}/{cfg}: no seed with both base and new results")
                continue
            row: dict = {"dataset": dataset}
            for sd in seeds:
                row[f"base_{sd}"], row[f"new_{sd}"] = base[sd], new[sd]
                row[f"H_{sd}"] = round(harmonic_mean(base[sd], new[sd]), 2)
            row["n_seeds"] = len(seeds)
            row["base"] = float(np.mean([base[sd] for sd in seeds]))
            row["new"] = float(np.mean([new[sd] for sd in seeds]))
            row["H"] = harmonic_mean(row["base"], row["new"])
            groups.setdefault((shots, trainer, cfg), []).append(row)
    for rows in groups.values():
        avg_base = float(np.mean([r["base"] for r in rows]))
        avg_new = float(np.mean([r["new"] for r in rows]))
        rows.append({"dataset": "average", "n_seeds": "", "base": avg_base, "new": avg_new,
                     "H": harmonic_mean(avg_base, avg_new)})
        for r in rows:
            for k in ("base", "new", "H"):
                r[k] = round(r[k], 2)
    return groups


def _flat(rows: list[dict]) -> list[dict]:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    front = ["dataset"] + [k for k in keys if k not in ("dataset", "n_seeds", "base", "new", "H")]
    order = front + ["n_seeds", "base", "new", "H"]
    return [{k: r.get(k, "") for k in order} for r in rows]


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Aggregate results over seeds")
    p.add_argument("directory")
    p.add_argument("--keyword", default="accuracy")
    p.add_argument("--ci95", action="store_true")
    p.add_argument("--test-log", action="store_true")
    p.add_argument("--multi-exp", action="store_true")
    p.add_argument("--crt", action="store_true", help="corruption-sweep table mode")
    p.add_argument("--base2new", action="store_true", help="base / new / harmonic-mean tables of a base2new root")
    p.add_argument("--csv", default="", help="write the table to this CSV file")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = p.parse_args(argv)
    kw = args.keyword
    if not osp.isdir(args.directory):
        print(f"error: {args.directory} is not a folder (pass the folder holding the seed<S>/ run folders)",
              file=sys.stderr)
        return 2
    if args.base2new:
        rows = []
        try:
            tables = base2new_tables(args.directory)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for (shots, trainer, cfg), group in tables.items():
            print(f"=== {trainer} / {cfg} / {shots}")
            for r in group:
                if r["dataset"] != "average":
                    per_seed = ", ".join(f"{k[2:]}: {r[k]:.2f}" for k in r if k.startswith("H_"))
                    print(f"{r['dataset']}: base {r['base']:.2f}% new {r['new']:.2f}% H {r['H']:.2f}% "
                          f"(seeds {r['n_seeds']}; per-seed H {per_seed})")
                else:
                    print(f"* average: base {r['base']:.2f}% new {r['new']:.2f}% H {r['H']:.2f}%")
            rows += [dict(trainer=trainer, cfg=cfg, shots=shots, **r) for r in _flat(group)]
        rows = _flat(rows)
    elif args.crt:
        rows = crt_table(args.directory, kw)
    else:
        exps = [osp.join(args.directory, n) for n in sorted(os.listdir(args.directory)) if not n.startswith(".")
                and osp.isdir(osp.join(args.directory, n))] if args.multi_exp else [args.directory]
        rows = []
        all_problems: list[str] = []
        for exp in exps:
            problems: list[str] = []
            found = collect(exp, kw, args.test_log, problems)
            for log, v in found:
                print(f"file: {log}. {kw}: {v:.2f}%. ")
            report_problems(exp, problems, len(found))
            all_problems += problems
            if not found:
                continue
            mean, spread = summarize([v for _, v in found], args.ci95)
            print("===")
            print(f"Summary of directory: {exp}")
            print(f"* {kw}: {mean:.2f}% +- {spread:.2f}%")
            print("===")
            rows.append({"experiment": osp.basename(exp.rstrip("/")), "n": len(found), kw: round(mean, 2),
                         ("ci95" if args.ci95 else "std"): round(spread, 2)})
        if not rows:
            hint = " (evaluation runs: add --test-log)" if any("--test-log" in p for p in all_problems) else ""
            print(f"error: no finished result found under {args.directory}{hint}; "
                  + ("see the folders listed above" if all_problems else "it has no run sub-folders (seed*/)"),
                  file=sys.stderr)
            return 2
        if args.multi_exp and rows:
            print("===")
            print("Average performance")
            print(f"* {kw}: {np.mean([r[kw] for r in rows]):.2f}%")
            print("===")
    if args.markdown or (args.crt and not args.csv):
        print(markdown(rows))
    if args.csv and rows:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
