"""The ``slurm`` executor: one submitit job array per dependency stage (trainings, then the evaluations that load
them, with ``--dependency=afterany``), logs under ``<sweep>/slurm/``.

Preemption and timeouts: submitit calls :meth:`SlurmTask.checkpoint` on the signal Slurm sends before it stops
the job; it stops the run (train.py keeps its checkpoints) and returns a ``DelayedSubmission`` of the same task,
which submitit requeues. A requeued task (also ``scontrol requeue``) runs :meth:`SlurmTask.__call__` again, and
train.py continues the run from its folder. The launcher waits by watching ``squeue`` and the run folders (no
accounting database needed), or returns at once with ``--no-wait`` (then ``--status``).
"""
from __future__ import annotations

import math
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Any

from .executors import FAILED, FINISHED, SKIPPED, Progress, _outcome, _producers, all_finished, last_error_line, \
    read_json, run_env, run_task, task_path, write_json
from .protocols import SweepError
from .runs import REPO, Run

ALIVE = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUE_HOLD", "REQUEUE_FED",
         "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}


class SlurmTask:
    """The callable submitit pickles: run one sweep task (see :func:`sweeps.executors.run_task`)."""

    def __init__(self, sweep_dir: str, python: str, threads: int | None) -> None:
        self.sweep_dir, self.python, self.threads = sweep_dir, python, threads
        self._proc: subprocess.Popen | None = None

    def __call__(self, i: int, run_json: dict[str, Any]) -> dict[str, Any]:
        run = Run.from_json(run_json)
        env = run_env(threads=self.threads)
        job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID", ""))
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        out = run_task(i, run, self.sweep_dir, self.python, env, started=lambda p: setattr(self, "_proc", p))
        out["job_id"] = f"{job}_{task}" if task is not None else job
        out["restarts"] = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        write_json(task_path(self.sweep_dir, i), out)
        return out

    def checkpoint(self, i: int, run_json: dict[str, Any]):
        """Stop the run (it resumes from its folder) and requeue the same task."""
        import submitit

        p = self._proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        return submitit.helpers.DelayedSubmission(SlurmTask(self.sweep_dir, self.python, self.threads), i, run_json)

    def __getstate__(self) -> dict[str, Any]:
        return {"sweep_dir": self.sweep_dir, "python": self.python, "threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._proc = None


def squeue_states(job_ids: set[str]) -> dict[str, str] | None:
    """``{"<array>_<task>": STATE}`` of the jobs of ``job_ids`` (array ids) that squeue lists; None when it fails."""
    try:
        r = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    out = {}
    for line in r.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        if jid.split("_")[0] in job_ids:
            out[jid] = state
    return out


class SlurmExecutor:
    name = "slurm"

    def __init__(self, params: dict[str, Any], python: str = sys.executable, wait: bool = True,
                 poll_s: float = 3.0) -> None:
        self.params, self.python, self.wait, self.poll_s = dict(params), python, wait, poll_s
        self.job_ids: dict[int, str] = {}

    def _executor(self, sweep_dir: str, name: str):
        import submitit

        p = self.params
        ex = submitit.AutoExecutor(folder=osp.join(sweep_dir, "slurm", "%j"), cluster="slurm")
        kw: dict[str, Any] = {"name": name, "timeout_min": int(p.get("time") or 1440), "nodes": 1,
                              "tasks_per_node": 1, "cpus_per_task": int(p.get("cpus_per_task") or 1),
                              "slurm_array_parallelism": int(p.get("array_parallelism") or 256),
                              "slurm_setup": [f"export PYTHONPATH={REPO}${{PYTHONPATH:+:$PYTHONPATH}}"]}
        if p.get("gpus_per_task"):
            kw["gpus_per_node"] = int(p["gpus_per_task"])
        if p.get("mem_gb"):
            kw["mem_gb"] = int(math.ceil(float(p["mem_gb"])))  # sbatch takes whole GB here
        if p.get("partition"):
            kw["slurm_partition"] = str(p["partition"])
        for key in ("account", "qos", "constraint"):
            if p.get(key):
                kw[f"slurm_{key}"] = str(p[key])
        self._additional = dict(p.get("additional") or {})
        ex.update_parameters(**kw)
        return ex

    def run(self, runs: list[Run], sweep_dir: str, progress: Progress, todo: list[int], name: str = "sweep") -> None:
        if shutil.which("sbatch") is None:
            raise SweepError("sbatch not found: the slurm executor needs a Slurm cluster (on a workstation: "
                             "bash tools/slurm/local_cluster.sh; or use --executor local)")
        ex = self._executor(sweep_dir, name)
        # stages: a run goes after the stage of every run of the sweep it needs
        producers = _producers(runs)
        stage: dict[int, int] = {}

        def depth(i: int) -> int:
            if i not in stage:
                stage[i] = 1 + max((depth(j) for j in producers[i]), default=-1)
            return stage[i]

        todo_set = set(todo)
        by_stage: dict[int, list[int]] = {}
        for i in todo:
            by_stage.setdefault(depth(i), []).append(i)
        threads = int(self.params.get("cpus_per_task") or 1)
        task = SlurmTask(sweep_dir, self.python, threads)
        submitted_at = time.time()
        array_ids: list[str] = []
        for s in sorted(by_stage):
            idx = by_stage[s]
            extra = dict(self._additional)
            deps = sorted({self.job_ids[j].split("_")[0] for i in idx for j in producers[i]
                           if j in todo_set and j in self.job_ids})
            if deps:
                extra["dependency"] = "afterany:" + ":".join(deps)
            ex.update_parameters(slurm_additional_parameters=extra)
            jobs = ex.map_array(task, idx, [runs[i].to_json() for i in idx])
            for i, job in zip(idx, jobs):
                self.job_ids[i] = str(job.job_id)
            array_ids.append(str(jobs[0].job_id).split("_")[0])
            print(f"submitted stage {s}: {len(idx)} run(s) as job array {array_ids[-1]}", file=sys.stderr, flush=True)
        write_json(osp.join(sweep_dir, "jobs.json"), {"submitted": submitted_at, "arrays": array_ids,
                                                      "jobs": {str(i): j for i, j in self.job_ids.items()}})
        if not self.wait:
            for i in todo:
                progress.outcomes.setdefault(i, _outcome(i, runs[i], "submitted", job_id=self.job_ids[i]))
            return
        self.watch(runs, sweep_dir, progress, todo, submitted_at, set(array_ids))

    def watch(self, runs: list[Run], sweep_dir: str, progress: Progress, todo: list[int], since: float,
              arrays: set[str]) -> None:
        misses = 0
        while True:
            states = squeue_states(arrays)
            if states is None:
                misses += 1
                if misses > 20:
                    raise SweepError("squeue keeps failing: cannot follow the jobs; they may still run "
                                     f"(python tools/sweep.py --status {sweep_dir})")
                time.sleep(self.poll_s)
                continue
            misses = 0
            for i in todo:
                if i in progress.outcomes:
                    continue
                if states.get(self.job_ids[i]) in ALIVE:
                    continue
                progress.done(self.outcome(i, runs[i], sweep_dir, since))
            if all(i in progress.outcomes for i in todo):
                return
            time.sleep(self.poll_s)

    def outcome(self, i: int, run: Run, sweep_dir: str, since: float) -> dict[str, Any]:
        rec = read_json(task_path(sweep_dir, i))
        fresh = isinstance(rec, dict) and float(rec.get("time", 0)) >= since - 1
        job = self.job_ids[i]
        if all_finished(run):
            status = SKIPPED if fresh and rec.get("status") == SKIPPED else FINISHED
            out = _outcome(i, run, status, float(rec.get("seconds", 0)) if fresh else 0.0, job_id=job)
            if fresh:
                out["restarts"] = rec.get("restarts", 0)
                out["note"] = rec.get("note", "")
            return out
        if fresh and rec.get("status") == FAILED:
            err = rec.get("error", "")
        else:
            err = "the job ended without finishing the run: " + last_error_line(
                osp.join(sweep_dir, "slurm", job, f"{job}_0_log.err"))
        out = _outcome(i, run, FAILED, float(rec.get("seconds", 0)) if fresh else 0.0, err, job_id=job)
        write_json(task_path(sweep_dir, i), out)
        return out
