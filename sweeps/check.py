"""Checks before anything is submitted: every run's command line goes through train.py's own config building
(``parse_args`` -> ``setup_cfg`` -> ``preflight``), which writes nothing; evaluations need model folders that are
finished on disk or trained by the same sweep."""
from __future__ import annotations

import os
import sys

from dassl.utils.errors import UsageError
from dassl.utils.run_record import is_finished

from .protocols import SweepError
from .runs import REPO, Run


def train_argv(run: Run) -> list[str]:
    """The train.py arguments whose config the run builds (tools/crt_sweep.py builds a CoOpCRT eval config)."""
    if run.program == "train.py":
        return list(run.args)
    if run.program == "tools/crt_sweep.py":
        a = run.args

        def one(flag: str) -> str:
            return a[a.index(flag) + 1] if flag in a else ""

        def many(flag: str) -> list[str]:
            if flag not in a:
                return []
            out = []
            for x in a[a.index(flag) + 1:]:
                if x.startswith("--"):
                    break
                out.append(x)
            return out

        opts = a[a.index("--opts") + 1:] if "--opts" in a else []
        seeds = many("--seeds") or ["1"]
        argv = ["--root", one("--root"), "--seed", seeds[0], "--trainer", "CoOpCRT", "--dataset-config-file",
                one("--dataset-config-file"), "--output-dir", one("--output-base"), "--eval-only"]
        for i, x in enumerate(a):
            if x == "--config-file":
                argv += ["--config-file", a[i + 1]]
        return argv + opts
    raise SweepError(f"unknown program {run.program} in the sweep")


def _masked(argv: list[str]) -> tuple[str, ...]:
    """argv with the per-run values that cannot change the config's validity (seed, folders) masked, for caching."""
    out = list(argv)
    for flag in ("--seed", "--output-dir", "--model-dir"):
        if flag in out:
            out[out.index(flag) + 1] = "*"
    return tuple(out)


def check_runs(runs: list[Run]) -> None:
    """Raise :class:`SweepError` (one line) for the first run whose config train.py would refuse."""
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import train
    from dassl.engine.preflight import preflight

    produced = {f for r in runs for f in r.folders}
    seen: set[tuple[str, ...]] = set()
    for run in runs:
        for need in run.needs:
            if need not in produced and not is_finished(need):
                raise SweepError(f"{run.label or run.key}: needs the finished run {need}, which is neither on disk "
                                 "nor trained by this sweep (add its training to the sweep, or fix the path)")
        argv = train_argv(run)
        if "--dataset-config-file" in argv:
            ds = argv[argv.index("--dataset-config-file") + 1]
            if not os.path.isfile(ds):
                have = sorted(n[:-5] for n in os.listdir(os.path.dirname(ds) or ".") if n.endswith(".yaml")) \
                    if os.path.isdir(os.path.dirname(ds) or ".") else []
                raise SweepError(f"{run.label or run.key}: unknown dataset {os.path.basename(ds)[:-5]!r}: no {ds}"
                                 + (f" (datasets: {' '.join(have)})" if have else ""))
        key = _masked(argv)
        if key in seen:
            continue
        seen.add(key)
        try:
            args = train.parse_args(argv)
            cfg = train.setup_cfg(args)
            preflight(cfg, args, files=False)  # config-level checks; files are checked where the run starts
        except UsageError as e:
            msg = " ".join(str(e).split())
            if any(n in msg for n in run.needs if n in produced):
                continue  # a check of the model folder, which this sweep trains first
            raise SweepError(f"{run.label or run.key}: {msg}") from None
