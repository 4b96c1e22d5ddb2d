#!/usr/bin/env python
"""The main job on the embedded default (TinySynth CLIP + SynthShapes): no datasets, weights, GPU or internet.

Runs, in one process (``train.cli(argv)`` per run, Dassl logs only in each run's ``log.txt``):

1. zero-shot CLIP;
2. CoOp, CoOp + Nemesis PUN and CoOp + Nemesis PAN few-shot over ``--shots`` x ``--seeds`` (same seed, same config
   for every method; the runs at the largest shot count use ``--do-test`` for the norm figure);
3. the corruption sweep of the CoOp checkpoint at the largest shot count (``tools/crt_sweep.py``): original, replace
   (std 0) and scale (x 0.001) at every context position;
4. figures: ``norms.png`` / ``norms_pan.png`` (``tools/plot_norms.py``: CoOp vs PUN / PAN per-position norms and
   matrix norm over epochs, test accuracy on a second axis) and ``fewshot.png`` (``tools/plot_fewshot.py``: accuracy vs shots);
5. ``results.md`` (methods x shots, final prompt norms, corruption summary with the low-norm effect) printed at the
   end, and ``results.json`` (the same numbers, machine-readable).

Run folders use the layout of the sweep scripts (``tools/parse_test_res.py`` works on them)::

    <output>/ZeroshotCLIP/tinysynth/synth_shapes
    <output>/synth_shapes/CoOp/tinysynth_<k>shots/nctx16_cscFalse_ctpend/seed<S>
    <output>/synth_shapes/CoOpNemesis/Beta-1.0/tinysynth_<k>shots/alpha<A>_nctx16_cscFalse_ctpend_nttwo/seed<S>
    <output>/synth_shapes/CoOpNemesis/Beta-0.0/tinysynth_<k>shots/alpha<A>_cw<CW>_pn<NP>_nctx16_..._nttwo/seed<S>
    <output>/output_crt/CoOpCRT/synth_shapes/CoOp/tinysynth_<k>shots/{original|replace/...|rescale/...}/seed<S>

A finished run (completion record ``run.json`` read through ``dassl.utils.run_record``, same settings in its
``config.yaml``) is skipped on a re-run; an interrupted one is continued (``train.py`` resumes it); one with other
settings is started over with ``train.py --force`` (its old files are moved into ``.replaced/<timestamp>/``).
Everything is seeded (``--seeds``, default 1), so a re-run into an empty folder reproduces the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import os.path as osp
import sys
import time
import traceback

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
TOOLS = osp.join(ROOT, "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

DATASET = "synth_shapes"
CFG = "tinysynth"
NCTX, CSC, CTP = 16, "False", "end"
# Nemesis settings of the demo (see docs/EMBEDDED_DEFAULT.md for why these values)
PUN = {"A": "10.0", "BETA": "1.0", "NT": "two", "NP": "1", "CW": "0.1"}
PAN = {"A": "10.0", "BETA": "0.0", "NT": "two", "NP": "2", "CW": "0.5"}
# Epochs per shot count: fewer images per epoch -> more epochs (the paper's recipe also grows with the shots,
# but in steps; here the step counts stay in the same range so every shot count trains properly)
EPOCHS = {1: 50, 2: 40, 4: 30, 8: 25, 16: 20}
METHODS = ("zs", "coop", "pun", "pan")
LABELS = {"zs": "Zero-shot CLIP", "coop": "CoOp", "pun": "CoOp + Nemesis (PUN)", "pan": "CoOp + Nemesis (PAN)"}
SHORT = {"zs": "ZS-CLIP", "coop": "CoOp", "pun": "PUN", "pan": "PAN"}


# ------------------------------------------------------------------------------------------------ runs
def epochs_for(shots: int, override: int | None) -> int:
    if override:
        return override
    return EPOCHS.get(shots, 20)


def nemesis_name(p: dict) -> str:
    """Run-folder name of scripts/coop_nemesis/lib.sh ``nemesis_name``."""
    if p["BETA"] in ("1.0", "1"):
        return f"alpha{p['A']}_nctx{NCTX}_csc{CSC}_ctp{CTP}_nt{p['NT']}"
    return f"alpha{p['A']}_cw{p['CW']}_pn{p['NP']}_nctx{NCTX}_csc{CSC}_ctp{CTP}_nt{p['NT']}"


def method_base(out: str, method: str, shots: int) -> str:
    """The folder holding the ``seed<S>`` run folders of ``method`` at ``shots``."""
    if method == "coop":
        return osp.join(out, DATASET, "CoOp", f"{CFG}_{shots}shots", f"nctx{NCTX}_csc{CSC}_ctp{CTP}")
    p = PUN if method == "pun" else PAN
    return osp.join(out, DATASET, "CoOpNemesis", f"Beta-{p['BETA']}", f"{CFG}_{shots}shots", nemesis_name(p))


def zs_dir(out: str) -> str:
    return osp.join(out, "ZeroshotCLIP", CFG, DATASET)


def crt_base(out: str, shots: int) -> str:
    return osp.join(out, "output_crt", "CoOpCRT", DATASET, "CoOp", f"{CFG}_{shots}shots")


class Run:
    """One train.py invocation: its argv, folder, completion marker and the config values it must match."""

    def __init__(self, method: str, shots: int, seed: int, folder: str, argv: list[str], expect: dict[str, str],
                 marker: str) -> None:
        self.method, self.shots, self.seed, self.folder = method, shots, seed, folder
        self.argv, self.expect, self.marker = argv, expect, marker

    def describe(self) -> str:
        if self.method == "zs":
            return f"{SHORT['zs']:<7}  zero-shot      "
        return f"{SHORT[self.method]:<7} {self.shots:2d} shots seed {self.seed}"


def build_runs(args) -> list[Run]:
    cfg_dir = osp.join(ROOT, "configs")
    data_cfg = osp.join(cfg_dir, "datasets", f"{DATASET}.yaml")
    root_opts = ["--root", args.root] if args.root else []
    runs: list[Run] = []
    if "zs" in args.methods:
        folder = zs_dir(args.output)
        argv = root_opts + ["--trainer", "ZeroshotCLIP", "--dataset-config-file", data_cfg,
                            "--config-file", osp.join(cfg_dir, "trainers", "ZeroshotCLIP", f"{CFG}.yaml"),
                            "--output-dir", folder, "--eval-only"]
        runs.append(Run("zs", 0, 0, folder, argv, {}, "macro_f1"))
    plot_shots = max(args.shots)
    for shots in args.shots:
        ep = epochs_for(shots, args.epochs)
        for method in ("coop", "pun", "pan"):
            if method not in args.methods:
                continue
            trainer = "CoOp" if method == "coop" else "CoOpNemesis"
            key = "TRAINER.COOP" if method == "coop" else "TRAINER.CoOpNemesis"
            for seed in args.seeds:
                folder = osp.join(method_base(args.output, method, shots), f"seed{seed}")
                opts = [f"{key}.N_CTX", str(NCTX), f"{key}.CSC", CSC, f"{key}.CLASS_TOKEN_POSITION", CTP,
                        "DATASET.NUM_SHOTS", str(shots), "OPTIM.MAX_EPOCH", str(ep)]
                expect = {"DATASET.NUM_SHOTS": str(shots), "OPTIM.MAX_EPOCH": str(ep), "SEED": str(seed)}
                if method != "coop":
                    p = PUN if method == "pun" else PAN
                    for k in ("A", "NT", "NP", "CW", "BETA"):
                        opts += [f"{key}.{k}", p[k]]
                    expect.update({f"{key}.A": p["A"], f"{key}.BETA": p["BETA"]})
                argv = root_opts + ["--seed", str(seed), "--trainer", trainer, "--dataset-config-file", data_cfg,
                                    "--config-file", osp.join(cfg_dir, "trainers", trainer, f"{CFG}.yaml"),
                                    "--output-dir", folder]
                do_test = shots == plot_shots or args.do_test_all
                if do_test:
                    argv.append("--do-test")
                expect["TEST.DO_TEST"] = str(do_test)
                runs.append(Run(method, shots, seed, folder, argv + opts, expect, "Elapsed"))
    return runs


def _config_value(text: str, dotted: str) -> str | None:
    """Value of a dotted key in a yacs dump (indentation-based, enough for our flat scalar keys)."""
    parts = dotted.split(".")
    depth, want = 0, 0
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = (len(line) - len(line.lstrip())) // 2
        if indent < depth:
            return None
        if indent != depth:
            continue
        key, _, val = line.strip().partition(":")
        if key == parts[want]:
            if want == len(parts) - 1:
                return val.strip().strip("'\"")
            want += 1
            depth += 1
    return None


def _same_number(a: str | None, b: str) -> bool:
    if a is None:
        return False
    try:
        return float(a) == float(b)
    except ValueError:
        return a.lower() == b.lower()


def run_state(run: Run) -> str:
    """'finished' | 'changed' (finished with other settings) | 'interrupted' | 'new'."""
    from dassl.utils import run_record

    if not osp.isdir(run.folder) or not os.listdir(run.folder):
        return "new"
    kind = "eval" if run.marker == "macro_f1" else "train"
    finished = run_record.is_finished(run.folder, kind) and osp.isfile(osp.join(run.folder, "results.json"))
    cfg_path = osp.join(run.folder, "config.yaml")
    if run.expect:
        if not osp.isfile(cfg_path):
            return "changed" if finished else "interrupted"
        with open(cfg_path) as f:
            text = f.read()
        for k, v in run.expect.items():
            if not _same_number(_config_value(text, k), v):
                return "changed"
    return "finished" if finished else "interrupted"


def read_results(folder: str) -> dict:
    with open(osp.join(folder, "results.json")) as f:
        return json.load(f)


def read_norms(folder: str) -> list[dict]:
    path = osp.join(folder, "norms.jsonl")
    if not osp.isfile(path):
        return []
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    by_epoch = {r["epoch"]: r for r in recs}
    return [by_epoch[e] for e in sorted(by_epoch)]


@contextlib.contextmanager
def quiet(log_path: str | None = None):
    """Send stdout (the Dassl tee's console side) to ``log_path`` or nowhere and stderr to a buffer; restore both
    (and the root logger's level) afterwards. The buffer is yielded so a failure can show it."""
    import logging

    real_out, real_err = sys.stdout, sys.stderr
    sink = open(log_path, "a") if log_path else open(os.devnull, "w")
    err = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    sys.stdout, sys.stderr = sink, err
    try:
        yield err
    finally:
        sys.stdout, sys.stderr = real_out, real_err
        for h in list(root.handlers):  # handlers added during the run would otherwise outlive it
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
        sink.close()


def execute(run: Run, force: bool = False) -> None:
    """Run (or continue: train.py resumes an interrupted folder) one run; ``force`` starts a folder with other
    settings over (train.py moves its old files aside, nothing is deleted)."""
    import train
    from dassl.utils.logger import close_logger

    with quiet() as err:
        try:
            code = train.cli(run.argv + (["--force"] if force else []))
        except BaseException:
            close_logger()
            code = -1
            err.write(traceback.format_exc())
    if code != 0:
        msg = err.getvalue().strip().splitlines()[-15:]
        raise RuntimeError(f"run failed (exit {code}): {run.folder}\n  " + "\n  ".join(msg)
                           + f"\n  log: {osp.join(run.folder, 'log.txt')}")


# ------------------------------------------------------------------------------------------------ CRT
def crt_positions(args) -> list[int]:
    return args.crt_positions if args.crt_positions else list(range(NCTX))


def run_crt(args, shots: int) -> dict:
    """Corruption sweep of the CoOp checkpoints at ``shots`` (in-process tools/crt_sweep.run)."""
    import crt_sweep

    base = crt_base(args.output, shots)
    os.makedirs(base, exist_ok=True)
    argv = (["--root", args.root] if args.root else []) + [
        "--dataset-config-file", osp.join(ROOT, "configs", "datasets", f"{DATASET}.yaml"),
        "--config-file", osp.join(ROOT, "configs", "trainers", "CoOpCRT", f"{CFG}.yaml"),
        "--model-dir", osp.join(method_base(args.output, "coop", shots), "seed{seed}"),
        "--load-epoch", str(epochs_for(shots, args.epochs)), "--output-base", base,
        "--seeds", *map(str, args.seeds), "--types", "original", "replace", "scale",
        "--positions", *map(str, crt_positions(args)), "--replace-factors", args.replace_factor,
        "--scale-factors", args.scale_factor, "--opts", "DATASET.NUM_SHOTS", str(shots)]
    stale = [osp.join(base, "original", f"seed{s}") for s in args.seeds]
    for folder in stale:  # a retrained CoOp model invalidates its sweep
        model = osp.join(method_base(args.output, "coop", shots), f"seed{osp.basename(folder)[4:]}", "log.txt")
        if osp.isfile(osp.join(folder, "log.txt")) and osp.isfile(model) and \
                osp.getmtime(model) > osp.getmtime(osp.join(folder, "log.txt")):
            argv.append("--force") if "--force" not in argv else None
    with quiet(osp.join(base, "sweep.log")) as err:
        try:
            crt_sweep.run(argv)
        except BaseException:
            err.write(traceback.format_exc())
            raise RuntimeError("corruption sweep failed:\n" + err.getvalue()[-3000:]) from None
    return crt_summary(args, shots)


def crt_summary(args, shots: int) -> dict:
    import crt_sweep

    base = crt_base(args.output, shots)
    positions = crt_positions(args)

    def acc(kind: str, pos: int, factor: str) -> float | None:
        vals = []
        for s in args.seeds:
            folder = crt_sweep.setting_dir(base, kind, pos, factor, s)
            if osp.isfile(osp.join(folder, "results.json")):
                vals.append(read_results(folder)["accuracy"])
        return round(sum(vals) / len(vals), 2) if vals else None

    original = acc("original", 0, "0")
    settings = {f"replace (std {args.replace_factor})": ("replace", args.replace_factor),
                f"scale (x{args.scale_factor})": ("scale", args.scale_factor)}
    table = {name: {p: acc(kind, p, f) for p in positions} for name, (kind, f) in settings.items()}
    norms = {}
    for s in args.seeds:
        recs = read_norms(osp.join(method_base(args.output, "coop", shots), f"seed{s}"))
        if recs:
            for p in positions:
                norms.setdefault(p, []).append(recs[-1]["v_norms"][p])
    norms = {p: round(sum(v) / len(v), 3) for p, v in norms.items()}
    raised = {name: [p for p, a in row.items() if a is not None and original is not None and a > original]
              for name, row in table.items()}
    return {"shots": shots, "seeds": list(args.seeds), "original": original, "accuracy": table,
            "coop_position_norms": norms, "raised": raised, "folder": osp.relpath(base, args.output)}


# ------------------------------------------------------------------------------------------------ report
def summarise(args, runs: list[Run]) -> dict:
    res: dict = {"benchmark": "SynthShapes (20 classes, 800 test images) on TinySynth CLIP", "seeds": args.seeds,
                 "shots": args.shots, "epochs": {k: epochs_for(k, args.epochs) for k in args.shots},
                 "nemesis": {"pun": PUN, "pan": PAN}, "methods": {}, "runs": {}}
    for run in runs:
        if not osp.isfile(osp.join(run.folder, "results.json")):
            continue
        acc = read_results(run.folder)["accuracy"]
        recs = read_norms(run.folder)
        entry = {"accuracy": acc, "folder": osp.relpath(run.folder, args.output)}
        if recs:
            entry["matrix_norm"] = recs[-1]["matrix_norm"]
            entry["v_norms"] = recs[-1]["v_norms"]
        res["runs"][run.folder] = entry
        m = res["methods"].setdefault(run.method, {"label": LABELS[run.method], "accuracy": {}, "matrix_norm": {}})
        m["accuracy"].setdefault(str(run.shots), []).append(acc)
        if recs:
            m["matrix_norm"].setdefault(str(run.shots), []).append(recs[-1]["matrix_norm"])
    res["runs"] = list(res["runs"].values())
    for m in res["methods"].values():
        for key in ("accuracy", "matrix_norm"):
            m[f"{key}_mean"] = {k: round(sum(v) / len(v), 2) for k, v in m[key].items()}
    return res


def previous_results(output: str) -> dict | None:
    """The ``results.json`` an earlier main job wrote into ``output`` (None if absent or unreadable)."""
    path = osp.join(output, "results.json")
    try:
        with open(path) as f:
            prev = json.load(f)
    except (OSError, ValueError):
        return None
    return prev if isinstance(prev, dict) and isinstance(prev.get("methods"), dict) else None


def merged_args(args, prev: dict | None):
    """``args`` widened to the methods, shots and seeds of the previous results, so the table is rebuilt from
    every finished run on disk instead of only those of this (possibly subset) invocation."""
    if not prev:
        return args
    full = argparse.Namespace(**vars(args))
    methods = set(args.methods) | {m for m in prev.get("methods", {}) if m in METHODS}
    full.methods = [m for m in METHODS if m in methods]
    full.shots = sorted(set(args.shots) | {int(k) for k in prev.get("shots", []) if int(k) >= 1})
    full.seeds = sorted(set(args.seeds) | {int(k) for k in prev.get("seeds", [])})
    return full


def markdown(res: dict) -> str:
    shots = res["shots"]
    methods = res["methods"]
    zs = methods.get("zs", {}).get("accuracy_mean", {}).get("0")
    lines = [f"## Few-shot accuracy (%) on SynthShapes (test, 800 images; chance 5%), mean over seeds "
             f"{' '.join(map(str, res['seeds']))}", "",
             "| method | " + " | ".join(f"{k} shots" for k in shots) + " |",
             "| --- |" + " ---: |" * len(shots)]
    if zs is not None:
        lines.append(f"| {LABELS['zs']} | " + " | ".join(f"{zs:.1f}" for _ in shots) + " |")
    for key in ("coop", "pun", "pan"):
        if key in methods:
            acc = methods[key]["accuracy_mean"]
            lines.append(f"| {LABELS[key]} | " + " | ".join(f"{acc[str(k)]:.1f}" if str(k) in acc else "-"
                                                           for k in shots) + " |")
    lines += ["", "## Final prompt matrix norm (Frobenius norm of the 16 x 96 context)", "",
              "| method | " + " | ".join(f"{k} shots" for k in shots) + " |", "| --- |" + " ---: |" * len(shots)]
    for key in ("coop", "pun", "pan"):
        if key in methods:
            nm = methods[key]["matrix_norm_mean"]
            lines.append(f"| {LABELS[key]} | " + " | ".join(f"{nm[str(k)]:.2f}" if str(k) in nm else "-"
                                                           for k in shots) + " |")
    lines += ["", "Epochs per shot count: " + ", ".join(f"{k}: {e}" for k, e in res["epochs"].items())
              + f". PUN: A {res['nemesis']['pun']['A']}, BETA 1.0; PAN: A {res['nemesis']['pan']['A']}, BETA 0.0, "
              f"NP {res['nemesis']['pan']['NP']}, CW {res['nemesis']['pan']['CW']} (NT two)."]
    crt = res.get("crt")
    if crt:
        names = list(crt["accuracy"])
        lines += ["", f"## Corruption of the CoOp {crt['shots']}-shot prompt (accuracy %, mean over seeds; "
                  f"original {crt['original']:.1f}%)", "",
                  "| position | CoOp norm | " + " | ".join(names) + " |", "| ---: | ---: |" + " ---: |" * len(names)]
        for p in sorted(next(iter(crt["accuracy"].values())), key=int):
            cells = []
            for name in names:
                a = crt["accuracy"][name][p]
                cells.append("-" if a is None else f"{a:.1f} ({a - crt['original']:+.1f})" +
                             (" **up**" if int(p) in crt["raised"][name] else ""))
            nrm = crt["coop_position_norms"].get(p, crt["coop_position_norms"].get(str(p)))
            lines.append(f"| {p} | {'-' if nrm is None else f'{nrm:.2f}'} | " + " | ".join(cells) + " |")
        lines.append("")
        for name in names:
            up = crt["raised"][name]
            lines.append(f"- {name}: corruption raised accuracy at {len(up)} position(s)"
                         + (f": {', '.join(map(str, up))}" if up else "") + ".")
        lines.append(crt.get("low_norm_note", ""))
    figs = res.get("figures", {})
    if figs:
        lines += ["", "Figures: " + ", ".join(f"`{v}`" for v in figs.values())]
    return "\n".join(lines).rstrip() + "\n"


def low_norm_note(crt: dict) -> str:
    """Is corruption helping at the low-norm positions? (the paper's low-norm effect)."""
    norms = {int(k): v for k, v in crt["coop_position_norms"].items()}
    if not norms:
        return ""
    order = sorted(norms, key=norms.get)
    half = set(order[: max(1, len(order) // 2)])
    up = sorted({p for v in crt["raised"].values() for p in v})
    if not up:
        return "- Low-norm effect: no corruption raised accuracy on this run."
    low = [p for p in up if p in half]
    return (f"- Low-norm effect: {len(low)} of the {len(up)} positions whose corruption raised accuracy are among the "
            f"{len(half)} lowest-norm positions of the CoOp prompt (lowest norms: "
            f"{', '.join(str(p) for p in order[:len(half)])}).")


def plots(args, res: dict) -> dict:
    import plot_fewshot
    import plot_norms

    import matplotlib.pyplot as plt

    out: dict = {}
    k = max(args.shots)

    def run_folder(key: str) -> str | None:
        folder = osp.join(method_base(args.output, key, k), f"seed{args.seeds[0]}")
        return folder if key in args.methods and osp.isfile(osp.join(folder, "norms.jsonl")) else None

    # one figure per Nemesis variant against CoOp (three runs x 16 positions in one panel are unreadable)
    for name, keys in (("norms", ("coop", "pun")), ("norms_pan", ("coop", "pan"))):
        pairs = [(run_folder(key), SHORT[key]) for key in keys if run_folder(key)]
        if len(pairs) < 2 and not (name == "norms" and pairs):
            continue
        fig, _ = plot_norms.make_figure([f for f, _ in pairs], [lab for _, lab in pairs])
        fig.suptitle(f"SynthShapes {k} shots, seed {args.seeds[0]}: prompt norms over epochs "
                     f"({' vs '.join(lab for _, lab in pairs)})", fontsize=10)  # make_figure lays itself out
        path = osp.join(args.output, f"{name}.png")
        fig.savefig(path, dpi=130)
        plt.close(fig)
        out[name] = path
    curves = {LABELS[key]: plot_fewshot.collect_curve(method_base(args.output, key, 0).replace("_0shots", "_{shots}shots"),
                                                      args.shots)
              for key in ("coop", "pun", "pan") if key in args.methods}
    zs = plot_fewshot.read_accuracy(zs_dir(args.output)) if "zs" in args.methods else None
    if any(curves.values()) or zs is not None:
        fig, _ = plot_fewshot.make_figure(curves, zs, title="SynthShapes (TinySynth CLIP): few-shot accuracy")
        path = osp.join(args.output, "fewshot.png")
        fig.savefig(path, dpi=130)
        plt.close(fig)
        out["fewshot"] = path
    return out


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Main job on the embedded default (TinySynth + SynthShapes): zero-shot CLIP, CoOp, CoOp+Nemesis "
                    "(PUN, PAN) few-shot, CoOp corruption sweep, norm and few-shot figures, results table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="CI subset: 16 shots, seed 1, methods zs coop pun, 20 epochs, corruption at positions 0 1 "
                        "(default output <repo>/output/embedded_default_quick)")
    p.add_argument("--shots", type=int, nargs="+", default=None, help="shot counts (default 1 2 4 8 16)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 1)")
    p.add_argument("--methods", nargs="+", default=None, choices=METHODS,
                   help="methods (default zs coop pun pan)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs for every shot count (default per shot count: "
                        + ", ".join(f"{k}: {e}" for k, e in EPOCHS.items()) + ")")
    p.add_argument("--no-crt", action="store_true", help="skip the corruption sweep")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    p.add_argument("--crt-positions", type=int, nargs="+", default=None, help="corrupted positions (default all 16)")
    p.add_argument("--replace-factor", default="0", help="std of the replacement vector")
    p.add_argument("--scale-factor", default="0.001", help="scale factor")
    p.add_argument("--do-test-all", action="store_true",
                   help="per-epoch test accuracy for every run (default: only the largest shot count, the norm figure)")
    p.add_argument("--output", default=None,
                   help="output folder (default $OUTPUT_ROOT, else <repo>/output/embedded_default)")
    p.add_argument("--root", default="", help="datasets root (default $PROMPTCLIP_DATA or ~/.cache/promptclip/data)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("EMBEDDED_THREADS", "1")),
                   help="torch threads (1 is fastest for this tiny model, also on a shared machine)")
    return p


def parse(argv: list[str] | None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.shots = args.shots or [16]
        args.seeds = args.seeds or [1]
        args.methods = args.methods or ["zs", "coop", "pun"]
        args.epochs = args.epochs or 20
        args.crt_positions = args.crt_positions or [0, 1]
    args.shots = sorted(set(args.shots or [1, 2, 4, 8, 16]))
    args.seeds = args.seeds or [1]
    args.methods = [m for m in METHODS if m in (args.methods or list(METHODS))]
    default_out = osp.join(ROOT, "output", "embedded_default_quick" if args.quick else "embedded_default")
    args.output = osp.abspath(args.output or os.environ.get("OUTPUT_ROOT") or default_out)
    if any(k < 1 for k in args.shots) or (args.epochs is not None and args.epochs < 1):
        build_parser().error("shots and epochs must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch
    from tqdm import tqdm

    torch.set_num_threads(max(1, args.threads))
    os.makedirs(args.output, exist_ok=True)
    runs = build_runs(args)
    do_crt = not args.no_crt and "coop" in args.methods
    steps = len(runs) + int(do_crt) + int(not args.no_plots)
    print(f"Embedded default -> {args.output}\n  shots {' '.join(map(str, args.shots))} | seeds "
          f"{' '.join(map(str, args.seeds))} | methods {' '.join(args.methods)} | {len(runs)} runs"
          + (" + corruption sweep" if do_crt else "") + (" + figures" if not args.no_plots else ""), flush=True)
    start = time.time()
    bar = tqdm(total=steps, desc="main job", unit="step", file=sys.stderr, dynamic_ncols=True, disable=None)
    width = len(str(len(runs)))
    try:
        for i, run in enumerate(runs, 1):
            head = f"[{i:>{width}}/{len(runs)}] {run.describe()}"
            state = run_state(run)
            if state == "finished":
                acc = read_results(run.folder)["accuracy"]
                bar.write(f"{head} ... acc {acc:5.1f}%  (skip: finished)")
                bar.update(1)
                continue
            if state in ("interrupted", "changed"):
                bar.write(f"{head} ... redo ({state})")
            t0 = time.time()
            execute(run, force=state == "changed")
            acc = read_results(run.folder)["accuracy"]
            bar.write(f"{head} ... acc {acc:5.1f}%  ({time.time() - t0:.0f} s)")
            bar.update(1)
        prev = previous_results(args.output)
        full = merged_args(args, prev)  # a subset run (e.g. --methods zs) merges into the existing table
        res = summarise(full, build_runs(full))
        if prev and not do_crt and prev.get("crt"):
            res["crt"] = prev["crt"]
        if prev and args.no_plots and prev.get("figures"):
            res["figures"] = prev["figures"]
        if do_crt:
            k = max(args.shots)
            t0 = time.time()
            crt = run_crt(args, k)
            crt["low_norm_note"] = low_norm_note(crt)
            res["crt"] = crt
            n = 1 + 2 * len(crt_positions(args))
            bar.write(f"corruption sweep of CoOp {k} shots: {n} settings x {len(args.seeds)} seed(s) "
                      f"({time.time() - t0:.0f} s)")
            bar.update(1)
        if not args.no_plots:
            t0 = time.time()
            res["figures"] = {k: osp.relpath(v, args.output) for k, v in plots(args, res).items()}
            bar.write(f"figures: {', '.join(res['figures'].values())} ({time.time() - t0:.0f} s)")
            bar.update(1)
    except RuntimeError as e:
        bar.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    table = markdown(res)
    with open(osp.join(args.output, "results.md"), "w") as f:
        f.write(table)
    with open(osp.join(args.output, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    print()
    print(table)
    print(f"Wrote {osp.join(args.output, 'results.md')} and results.json; total {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
