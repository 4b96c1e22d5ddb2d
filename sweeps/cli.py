"""``python tools/sweep.py``: run a sweep spec (or a sweep script's arguments) on an executor, or report a sweep.

    python tools/sweep.py SPEC.yaml [--executor local|slurm|debug] [--gpus 0,1,2,3] [--dry-run]
    python tools/sweep.py [options] scripts/coop_nemesis/main.sh eurosat dtd    (the script's arguments and env)
    python tools/sweep.py --status SWEEP_DIR

Exit codes: 0 every run finished (or was already), 1 some run failed, 2 bad input (one ``error:`` line).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any

from dassl.utils.errors import UsageError
from dassl.utils.run_record import lock_held, run_status

from .executors import FAILED, FINISHED, SKIPPED, DebugExecutor, LocalExecutor, Progress, all_finished, read_json, \
    read_plan, task_path, unchanged, write_json, write_plan
from .protocols import SweepError, expand_script
from .runs import REPO, Run


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise SweepError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tools/sweep.py", description=__doc__.split("\n\n")[0], allow_abbrev=False,
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("target", nargs="?", help="a sweep spec (.yaml) or a script under scripts/ (then its arguments)")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.add_argument("--executor", choices=["local", "slurm", "debug"], help="default: the spec's, else local")
    p.add_argument("--dry-run", action="store_true", help="list the commands (and what would be skipped); run nothing")
    p.add_argument("--status", metavar="SWEEP_DIR", help="report finished / running / failed / missing runs")
    p.add_argument("--sweep-dir", help="the sweep folder (plan, logs, summary; default <output_root>/sweeps/<name>)")
    p.add_argument("--python", default=None, help="interpreter for the runs (default: this one)")
    g = p.add_argument_group("local")
    g.add_argument("--gpus", help="comma-separated GPU ids, one slot each ('none': CPU only; default: all visible)")
    g.add_argument("--slots", type=int, help="parallel CPU-only runs when there are no GPUs (default 1)")
    g = p.add_argument_group("slurm (override the spec's slurm: section)")
    g.add_argument("--partition")
    g.add_argument("--time", type=int, help="minutes per run (default 1440)")
    g.add_argument("--gpus-per-task", type=int)
    g.add_argument("--cpus-per-task", type=int)
    g.add_argument("--mem-gb", type=float)
    g.add_argument("--array-parallelism", type=int, help="most array tasks running at once")
    g.add_argument("--account")
    g.add_argument("--qos")
    g.add_argument("--no-wait", action="store_true", help="submit and return (follow with --status)")
    g.add_argument("--debug-raise", action="store_true", help="debug executor: let exceptions propagate")
    return p


# -------------------------------------------------------------------------------------------------- plan
def _script_sweep_name(script: str, args: list[str]) -> str:
    parts = script.replace(".sh", "").replace("/", "_")
    name = "_".join([parts, *args])
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", name)[:120]


def build(ns: argparse.Namespace) -> tuple[list[Run], dict[str, Any]]:
    """Runs and settings of the requested sweep (spec or script)."""
    if not ns.target:
        raise SweepError("give a sweep spec (SPEC.yaml), a script under scripts/ with its arguments, or --status DIR")
    if ns.target.endswith((".yaml", ".yml")):
        from .spec import expand_spec, load_spec

        if ns.script_args:
            raise SweepError(f"unexpected arguments after the spec: {' '.join(ns.script_args)} (options go before it)")
        spec = load_spec(ns.target)
        runs = expand_spec(spec)
        meta = {"name": spec.name, "spec": osp.abspath(spec.path), "protocol": spec.protocol,
                "sweep_dir": spec.sweep_dir, "executor": spec.data.get("executor") or "local",
                "slurm": spec.slurm, "local": spec.local, "python": spec.data.get("python")}
        return runs, meta
    if ns.target.endswith(".sh"):
        env = dict(os.environ)
        runs = expand_script(ns.target, ns.script_args, env)
        out = env.get("OUTPUT_ROOT") or osp.join(REPO, "output")
        from .protocols import script_key

        key = script_key(ns.target)
        name = _script_sweep_name(key, ns.script_args)
        meta = {"name": name, "script": key, "args": ns.script_args, "sweep_dir": osp.join(osp.abspath(out), "sweeps", name),
                "executor": "local", "slurm": {}, "local": {}, "python": env.get("PYTHON")}
        return runs, meta
    raise SweepError(f"{ns.target}: expected a sweep spec (.yaml) or a script (.sh) under scripts/")


def detect_gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [x.strip() for x in r.stdout.splitlines() if x.strip().isdigit()] if r.returncode == 0 else []


def _gpus(ns: argparse.Namespace, local: dict[str, Any]) -> list[str]:
    g = ns.gpus if ns.gpus is not None else local.get("gpus")
    if g is None:
        return detect_gpus()
    if isinstance(g, list):
        return [str(x) for x in g]
    g = str(g).strip()
    if g in ("none", ""):
        return []
    if g == "all":
        return detect_gpus()
    ids = [x.strip() for x in g.split(",") if x.strip()]
    if not all(x.isdigit() for x in ids):
        raise SweepError(f"--gpus: comma-separated GPU ids like 0,1,2,3 (or none / all), got {g!r}")
    return ids


def _slurm_params(ns: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    p = dict(spec)
    for key in ("partition", "time", "gpus_per_task", "cpus_per_task", "mem_gb", "array_parallelism", "account",
                "qos"):
        v = getattr(ns, key)
        if v is not None:
            p[key] = v
    return p


# ---------------------------------------------------------------------------------------------- reports
def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def summary_table(runs: list[Run], outcomes: dict[int, dict[str, Any]]) -> str:
    from tabulate import tabulate

    counts: dict[str, int] = {}
    for o in outcomes.values():
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    lines = [tabulate([[k, counts.get(k, 0)] for k in (FINISHED, SKIPPED, FAILED, "interrupted", "submitted") if counts.get(k) or
                       k in (FINISHED, SKIPPED, FAILED)], headers=["status", "runs"])]
    show = [i for i in sorted(outcomes) if len(outcomes) <= 40 or outcomes[i]["status"] == FAILED]
    if show:
        rows = []
        for i in show:
            o = outcomes[i]
            msg = o.get("error") or o.get("note") or ""
            rows.append([i, o["status"], runs[i].label or runs[i].key, _fmt_s(o.get("seconds", 0)), msg[:160]])
        lines.append(tabulate(rows, headers=["#", "status", "run", "time", "error / note"]))
    return "\n\n".join(lines)


def write_summary(sweep_dir: str, meta: dict[str, Any], runs: list[Run], outcomes: dict[int, dict[str, Any]],
                  started: float, executor: str) -> str:
    counts = {k: sum(o["status"] == k for o in outcomes.values())
              for k in (FINISHED, SKIPPED, FAILED, "interrupted", "submitted")}
    data = {"name": meta.get("name"), "executor": executor, "started": time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(started)), "seconds": round(time.time() - started, 1), "counts": counts,
        "runs": [{**outcomes[i], "folders": runs[i].folders, "command": runs[i].command(meta.get("python_exe") or
                                                                                        sys.executable)}
                 for i in sorted(outcomes)]}
    path = osp.join(sweep_dir, "summary.json")
    write_json(path, data)
    return path


def status_report(sweep_dir: str) -> int:
    """Print each run's state (finished / running / failed / interrupted / missing); 0 when all are finished."""
    from tabulate import tabulate

    plan, runs = read_plan(sweep_dir)
    jobs = (read_json(osp.join(sweep_dir, "jobs.json")) or {}) if plan.get("executor") == "slurm" else {}
    queue: dict[str, str] = {}
    if jobs.get("arrays") and shutil.which("squeue"):
        from .slurm import squeue_states

        queue = squeue_states(set(jobs["arrays"])) or {}
    rows, counts = [], {}
    for i, run in enumerate(runs):
        states = [run_status(f) for f in run.folders]
        rec = read_json(task_path(sweep_dir, i)) or {}
        err = ""
        job = (jobs.get("jobs") or {}).get(str(i), "")
        if all(s == "finished" for s in states):
            st = "finished"
        elif job and queue.get(job) in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING"):
            st, err = "queued", f"job {job}"
        elif job and queue.get(job) in ("RUNNING", "COMPLETING", "SUSPENDED"):
            st, err = "running", f"job {job}"
        elif "running" in states:
            st = "running"
            lock = next(lock_held(f) for f, s in zip(run.folders, states) if s == "running") or {}
            err = f"pid {lock.get('pid')} on {lock.get('host')}"
        elif rec.get("killed") and "interrupted" in states:
            st, err = "interrupted", rec.get("error", "")
        elif rec.get("status") == FAILED:
            st, err = "failed", rec.get("error", "")
        elif "interrupted" in states:
            st = "interrupted"
        else:
            st = "missing"
        counts[st] = counts.get(st, 0) + 1
        rows.append([i, st, run.label or run.key, err[:160]])
    print(f"sweep {plan.get('name')} ({sweep_dir}): " +
          ", ".join(f"{counts.get(k, 0)} {k}" for k in ("finished", "running", "failed", "interrupted", "missing")
                    + (("queued",) if counts.get("queued") else ())))
    print(tabulate(rows, headers=["#", "status", "run", "error / owner"]))
    return 0 if counts.get("finished", 0) == len(runs) else 1


# ------------------------------------------------------------------------------------------------- main
def run_sweep(ns: argparse.Namespace) -> int:
    from .check import check_runs

    runs, meta = build(ns)
    if not runs:
        raise SweepError("the sweep has no runs (check datasets / methods / shots / seeds)")
    sweep_dir = osp.abspath(ns.sweep_dir) if ns.sweep_dir else meta["sweep_dir"]
    executor = ns.executor or meta.get("executor") or "local"
    python = ns.python or meta.get("python") or sys.executable
    if executor not in ("local", "slurm", "debug"):
        raise SweepError(f"executor must be local, slurm or debug, got {executor!r}")
    check_runs(runs)  # before anything is written or submitted
    finished = [i for i, r in enumerate(runs) if all_finished(r) and unchanged(r)]
    if ns.dry_run:
        print(f"# sweep {meta['name']}: {len(runs)} run(s), {len(finished)} finished (skipped); folder {sweep_dir}")
        for i, r in enumerate(runs):
            prefix = "# skip (finished): " if i in finished else ""
            print(prefix + " ".join(shlex.quote(x) for x in r.command(python)))
        return 0
    meta = dict(meta, sweep_dir=sweep_dir, executor=executor, python_exe=python)
    write_plan(sweep_dir, runs, meta)
    started = time.time()
    progress = Progress(len(runs), f"sweep {meta['name']}")
    for i in finished:
        o = {"index": i, "key": runs[i].key, "label": runs[i].label, "status": SKIPPED, "seconds": 0.0, "error": "",
             "note": "finished", "time": time.time()}
        write_json(task_path(sweep_dir, i), o)
        progress.done(o)
    todo = [i for i in range(len(runs)) if i not in progress.outcomes]
    interrupted = False
    try:
        if todo:
            if executor == "local":
                gpus = _gpus(ns, meta.get("local") or {})
                slots = ns.slots if ns.slots is not None else (meta.get("local") or {}).get("slots")
                ex = LocalExecutor(gpus, slots, python)
                print(f"local: {ex.slots} slot(s)" + (f" on GPUs {','.join(gpus)}" if gpus else " (CPU only)"),
                      file=sys.stderr, flush=True)
                ex.run(runs, sweep_dir, progress, todo)
            elif executor == "debug":
                DebugExecutor(ns.debug_raise).run(runs, sweep_dir, progress, todo)
            else:
                from .slurm import SlurmExecutor

                SlurmExecutor(_slurm_params(ns, meta.get("slurm") or {}), python, wait=not ns.no_wait).run(
                    runs, sweep_dir, progress, todo, name=meta["name"])
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    path = write_summary(sweep_dir, meta, runs, progress.outcomes, started, executor)
    print(summary_table(runs, progress.outcomes))
    print(f"summary: {path}")
    if interrupted:
        print(f"interrupted: the started runs stop and continue from their folders when the sweep is run again "
              f"(python tools/sweep.py --status {sweep_dir})", file=sys.stderr)
        return 130
    if executor == "slurm" and ns.no_wait:
        print(f"submitted; follow with: python tools/sweep.py --status {sweep_dir}")
        return 0
    return 1 if any(o["status"] == FAILED for o in progress.outcomes.values()) else 0


def _first_yaml(argv: list[str]) -> str:
    return next(a for a in argv if a.endswith((".yaml", ".yml")))


def main(argv: list[str] | None = None) -> int:
    import signal

    def _term(signum, frame):  # a killed sweep stops its runs (by pid) like Ctrl-C
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, _term)
    except ValueError:  # not the main thread
        pass
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        ns = build_parser().parse_args(argv)
        if ns.target and ns.target.endswith((".yaml", ".yml")) and ns.script_args:
            rest = list(argv)
            rest.remove(ns.target)  # options may also follow a spec
            ns = build_parser().parse_args(rest)
            if ns.target:
                raise SweepError(f"unexpected argument after the spec: {ns.target}")
            ns.target = _first_yaml(argv)
        if ns.status:
            return status_report(ns.status)
        return run_sweep(ns)
    except UsageError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. --dry-run | head
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
