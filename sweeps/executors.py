"""Executors: ``local`` (a queue over K slots, one GPU each), ``slurm`` (submitit job arrays), ``debug`` (in-process).

Every executor runs the same task, :func:`run_task`: skip a finished run, refuse one whose model folder is not
finished, otherwise start it (``train.py`` continues an interrupted run from its folder), and write an attempt
record ``<sweep>/tasks/<n>.json``. The sweep folder holds ``plan.json`` (the runs), ``logs/<n>.log`` (each run's
stdout and stderr), ``slurm/`` (submitit's files) and ``summary.json`` (the outcome of every run).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import os.path as osp
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import Any, Callable

from dassl.utils.run_record import is_finished, lock_held, request_matches
from dassl.utils.tools import atomic_write_text

from .runs import REPO, Run

FINISHED, SKIPPED, FAILED = "finished", "skipped", "failed"


# ------------------------------------------------------------------------------------------ sweep folder
def task_path(sweep_dir: str, i: int) -> str:
    return osp.join(sweep_dir, "tasks", f"{i:04d}.json")


def log_path(sweep_dir: str, i: int) -> str:
    return osp.join(sweep_dir, "logs", f"{i:04d}.log")


def write_json(path: str, data: Any) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    atomic_write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", path)


def read_json(path: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_plan(sweep_dir: str, runs: list[Run], meta: dict[str, Any]) -> None:
    write_json(osp.join(sweep_dir, "plan.json"), {**meta, "runs": [r.to_json() for r in runs]})


def read_plan(sweep_dir: str) -> tuple[dict[str, Any], list[Run]]:
    plan = read_json(osp.join(sweep_dir, "plan.json"))
    if not isinstance(plan, dict) or "runs" not in plan:
        from .protocols import SweepError

        raise SweepError(f"{sweep_dir} is not a sweep folder (no plan.json; a sweep writes it when it starts)")
    return plan, [Run.from_json(r) for r in plan["runs"]]


def last_error_line(path: str) -> str:
    """The line that says why a run failed: its last ``error:`` line, else the last non-empty line of the log."""
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return "no log"
    for ln in reversed(lines):
        if ln.startswith("error:"):
            return ln
    return lines[-1] if lines else "no output"


def all_finished(run: Run) -> bool:
    return all(is_finished(f) for f in run.folders)


# ------------------------------------------------------------------------------------------------- task
def _outcome(i: int, run: Run, status: str, seconds: float = 0.0, error: str = "", **extra: Any) -> dict[str, Any]:
    return {"index": i, "key": run.key, "label": run.label, "status": status, "seconds": round(seconds, 2),
            "error": error, "time": time.time(), **extra}


def unchanged(run: Run) -> bool:
    """The run's folders finished with exactly this command and unchanged config files. Only ``train.py`` runs
    carry that fingerprint; a finished ``train.py`` run whose command differs is started again and ``train.py``
    decides (same resolved config: skip; another config: an error naming the differing keys)."""
    if osp.basename(run.program) != "train.py":
        return True
    return all(request_matches(f, run.command(), run.kind if run.kind in ("train", "eval") else None)
               for f in run.folders)


def precheck(i: int, run: Run) -> dict[str, Any] | None:
    """An outcome without running (finished, running elsewhere, model not finished), or None to run it."""
    if all_finished(run) and unchanged(run):
        return _outcome(i, run, SKIPPED, note="finished")
    for f in run.folders:
        lock = lock_held(f)
        if lock is not None:
            return _outcome(i, run, SKIPPED, note=f"running elsewhere (pid {lock.get('pid')} on {lock.get('host')})")
    for need in run.needs:
        if not is_finished(need):
            return _outcome(i, run, FAILED, error=f"needs the finished run {need}")
    return None


def run_env(extra: dict[str, str] | None = None, threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    if threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    pp = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = REPO + (os.pathsep + pp if pp else "")
    return env


def run_task(i: int, run: Run, sweep_dir: str, python: str, env: dict[str, str],
             started: Callable[[subprocess.Popen], None] | None = None) -> dict[str, Any]:
    """Run one sweep task in a subprocess; stdout/stderr go to ``logs/<i>.log``. Returns (and records) the outcome."""
    pre = precheck(i, run)
    if pre is not None:
        write_json(task_path(sweep_dir, i), pre)
        return pre
    log = log_path(sweep_dir, i)
    os.makedirs(osp.dirname(log), exist_ok=True)
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(run.command(python))}\n")
        f.flush()
        proc = subprocess.Popen(run.command(python), stdout=f, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        if started is not None:
            started(proc)
        rc = proc.wait()
    seconds = time.time() - t0
    if rc == 0 and all_finished(run):
        out = _outcome(i, run, FINISHED, seconds)
    elif rc < 0:
        out = _outcome(i, run, FAILED, seconds, f"killed by signal {-rc} ({signal.Signals(-rc).name})", rc=rc,
                       killed=True)
    elif rc == 0:
        out = _outcome(i, run, FAILED, seconds, "exited 0 but the run is not finished (no completion record)", rc=rc)
    else:
        out = _outcome(i, run, FAILED, seconds, last_error_line(log), rc=rc)
    out["log"] = log
    write_json(task_path(sweep_dir, i), out)
    return out


# ---------------------------------------------------------------------------------------------- progress
class Progress:
    """A tqdm bar over the runs (on a terminal only) that also collects the outcomes."""

    def __init__(self, total: int, desc: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="run", disable=not sys.stderr.isatty(), dynamic_ncols=True)
        self.outcomes: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def done(self, out: dict[str, Any]) -> None:
        with self.lock:
            if out["index"] in self.outcomes:
                return
            self.outcomes[out["index"]] = out
            self.bar.update(1)
            n_fail = sum(o["status"] == FAILED for o in self.outcomes.values())
            if n_fail:
                self.bar.set_postfix(failed=n_fail)
            if out["status"] == FAILED and self.bar.disable:
                print(f"failed: {out['label'] or out['key']}: {out['error']}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.bar.close()


def _producers(runs: list[Run]) -> dict[int, list[int]]:
    """For each run, the indices of the runs of the sweep that write the folders it needs."""
    by_folder = {f: j for j, r in enumerate(runs) for f in r.folders}
    return {i: sorted({by_folder[n] for n in r.needs if n in by_folder}) for i, r in enumerate(runs)}


# ------------------------------------------------------------------------------------------------- local
class LocalExecutor:
    """A queue over K slots; slot k runs with ``CUDA_VISIBLE_DEVICES=gpus[k]`` (CPU-only slots when no GPUs).

    A free slot takes the next ready run at once; an evaluation waits for the training it needs; a failed run is
    reported and the others go on (its dependants fail with the reason).
    """

    name = "local"

    def __init__(self, gpus: list[str] | None = None, slots: int | None = None, python: str = sys.executable) -> None:
        self.gpus = list(gpus or [])
        self.slots = len(self.gpus) if self.gpus else max(1, slots or 1)
        self.python = python
        self.procs: dict[int, subprocess.Popen] = {}

    def slot_env(self, k: int) -> dict[str, str]:
        if self.gpus:
            return run_env({"CUDA_VISIBLE_DEVICES": self.gpus[k]})
        return run_env(threads=max(1, (os.cpu_count() or 1) // self.slots))

    def run(self, runs: list[Run], sweep_dir: str, progress: Progress, todo: list[int]) -> None:
        producers = _producers(runs)
        pending = list(todo)
        results: "queue.Queue[tuple[int, int, dict[str, Any]]]" = queue.Queue()
        free = list(range(self.slots))
        running: dict[int, int] = {}  # run index -> slot
        status: dict[int, str] = {i: o["status"] for i, o in progress.outcomes.items()}

        def worker(i: int, k: int) -> None:
            try:
                out = run_task(i, runs[i], sweep_dir, self.python, self.slot_env(k),
                               started=lambda p: self.procs.__setitem__(i, p))
            except Exception as e:  # an executor bug must not hang the queue
                out = _outcome(i, runs[i], FAILED, error=f"{type(e).__name__}: {e}")
            results.put((i, k, out))

        try:
            while pending or running:
                # start every ready run on a free slot
                for i in list(pending):
                    if not free:
                        break
                    deps = producers[i]
                    if any(status.get(j) == FAILED for j in deps):
                        pending.remove(i)
                        bad = next(j for j in deps if status.get(j) == FAILED)
                        out = _outcome(i, runs[i], FAILED, error=f"needs {runs[bad].key}, which failed")
                        write_json(task_path(sweep_dir, i), out)
                        status[i] = FAILED
                        progress.done(out)
                        continue
                    if all(status.get(j) in (FINISHED, SKIPPED) for j in deps):
                        pending.remove(i)
                        k = free.pop(0)
                        running[i] = k
                        threading.Thread(target=worker, args=(i, k), daemon=True).start()
                if not running:
                    if pending:  # nothing can start: dependencies outside the queue
                        for i in pending:
                            out = _outcome(i, runs[i], FAILED, error="its dependencies never ran")
                            status[i] = FAILED
                            progress.done(out)
                        pending.clear()
                    break
                i, k, out = results.get()
                running.pop(i, None)
                self.procs.pop(i, None)
                free.append(k)
                free.sort()
                status[i] = out["status"]
                progress.done(out)
        except BaseException:
            self.terminate()
            for i in running:  # stopped with the sweep: they continue from their folders on a re-run
                out = _outcome(i, runs[i], "interrupted", error="stopped with the sweep", killed=True)
                write_json(task_path(sweep_dir, i), out)
                progress.done(out)
            raise

    def terminate(self) -> None:
        """Stop the runs this executor started (by their pids); their folders stay, and continue on a re-run."""
        for p in list(self.procs.values()):
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 30
        for p in list(self.procs.values()):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()


# ------------------------------------------------------------------------------------------------- debug
class _Tee(io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()

    def isatty(self) -> bool:
        return False


class DebugExecutor:
    """In-process and sequential (``train.cli(argv)``; ``tools/crt_sweep.run(argv)``): for tests and debuggers.

    Output goes to the terminal and to ``logs/<n>.log``. With ``raise_errors`` an exception propagates (to
    stop in a post-mortem debugger) instead of being reported.
    """

    name = "debug"

    def __init__(self, raise_errors: bool = False) -> None:
        self.raise_errors = raise_errors

    def run_one(self, i: int, run: Run, sweep_dir: str) -> dict[str, Any]:
        pre = precheck(i, run)
        if pre is not None:
            write_json(task_path(sweep_dir, i), pre)
            return pre
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        log = log_path(sweep_dir, i)
        os.makedirs(osp.dirname(log), exist_ok=True)
        t0, rc, err = time.time(), 1, ""
        with open(log, "a") as f:
            f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} (in-process) {' '.join(run.command())}\n")
            with contextlib.redirect_stdout(_Tee(sys.stdout, f)), contextlib.redirect_stderr(_Tee(sys.stderr, f)):
                try:
                    rc = _in_process(run)
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 1
                except Exception as e:
                    if self.raise_errors:
                        raise
                    traceback.print_exc()
                    err = f"{type(e).__name__}: {' '.join(str(e).split())}"
        seconds = time.time() - t0
        if rc == 0 and all_finished(run):
            out = _outcome(i, run, FINISHED, seconds)
        else:
            out = _outcome(i, run, FAILED, seconds, err or (last_error_line(log) if rc else
                                                            "returned 0 but the run is not finished"), rc=rc)
        out["log"] = log
        write_json(task_path(sweep_dir, i), out)
        return out

    def run(self, runs: list[Run], sweep_dir: str, progress: Progress, todo: list[int]) -> None:
        producers = _producers(runs)
        status = {i: o["status"] for i, o in progress.outcomes.items()}
        for i in todo:
            bad = [j for j in producers[i] if status.get(j) == FAILED]
            if bad:
                out = _outcome(i, runs[i], FAILED, error=f"needs {runs[bad[0]].key}, which failed")
                write_json(task_path(sweep_dir, i), out)
            else:
                out = self.run_one(i, runs[i], sweep_dir)
            status[i] = out["status"]
            progress.done(out)


def _in_process(run: Run) -> int:
    if run.program == "train.py":
        import train

        return int(train.cli(list(run.args)) or 0)
    if run.program == "tools/crt_sweep.py":
        import importlib.util
        import logging

        from dassl.utils.errors import UsageError

        spec = importlib.util.spec_from_file_location("_crt_sweep", osp.join(REPO, "tools", "crt_sweep.py"))
        mod = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(mod)
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
        try:
            mod.run(list(run.args))
        except UsageError as e:
            print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        return 0
    raise ValueError(f"unknown program {run.program}")
