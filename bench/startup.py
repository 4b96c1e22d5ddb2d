#!/usr/bin/env python
"""Start-up of ``train.py --eval-only``: where a short process spends its time before the first batch.

    python bench/startup.py                          # 5 interleaved rounds on a generated tiny run
    python bench/startup.py --repeats 9 --compare ../other-checkout   # + whole-process ratio vs another checkout

A tiny EuroSAT-layout dataset (10 classes, 10 test images), a tiny random CLIP (width 64, 32 px) and a CoOp
checkpoint (1 epoch) are generated in a temporary folder. Each round then starts fresh processes:

* ``python -c "import torch"`` (the floor: whole-process wall time),
* ``python bench/startup.py --child ...``: ``train.cli`` in-process with timers around its phases (same command
  line as a user's ``train.py --eval-only``), printing one JSON line:

  ``torch`` (``import torch``), ``import`` (engine, trainers, datasets, clip), ``config`` (``setup_cfg`` +
  pre-flight), ``dataset`` (``DataManager``: reader, split, loaders), ``clip`` (CLIP load in the factory),
  ``model`` (the rest of ``build_trainer`` and ``load_model``, with its parts ``env_info`` -- waiting for the
  environment report --, ``header`` -- the run header's git and version probes -- and ``tokenizer``), ``first_batch`` (from the start of the evaluation
  to the first batch in the model: the first useful work), ``rest`` (the remaining evaluation and the exit).

It prints the median of each phase, ``first useful work - import torch`` (target: <= 1 s) and its ratio to the
time of importing torch alone. ``--compare DIR`` also times the same ``train.py`` command of another checkout
(e.g. a pre-change commit made with ``git worktree add``) against this one, whole processes, interleaved, and prints
the median ratio. ``--json PATH`` writes the numbers.
"""
from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ["torch", "import", "config", "dataset", "clip", "model", "first_batch", "rest"]


# ------------------------------------------------------------------------------------------------ child
def child(argv: list[str]) -> int:
    """Run ``train.cli(argv)`` with phase timers; print ``STARTUP_JSON {...}``."""
    marks: dict[str, float] = {}
    import torch  # noqa: F401

    marks["torch"] = time.perf_counter()
    sys.path.insert(0, ROOT)
    import clip  # noqa: F401
    import datasets  # noqa: F401
    import dassl.config.setup as setup
    import dassl.data.data_manager as dm
    import dassl.engine  # noqa: F401
    import dassl.engine.trainer as engine_trainer
    import train
    import trainers  # noqa: F401
    import trainers.modules.factory as factory

    marks["import"] = time.perf_counter()

    def wrap(obj, name, before=None, after=None):
        real = getattr(obj, name)

        def wrapped(*a, **k):
            if before:
                before()
            out = real(*a, **k)
            if after:
                after()
            return out

        setattr(obj, name, wrapped)

    def mark(key):
        return lambda: marks.setdefault(key, time.perf_counter())

    wrap(setup, "setup_cfg")
    real_preflight = __import__("dassl.engine.preflight", fromlist=["preflight"]).preflight

    def preflight(*a, **k):
        out = real_preflight(*a, **k)
        marks.setdefault("config", time.perf_counter())
        return out

    sys.modules["dassl.engine.preflight"].preflight = preflight
    real_dm_init = dm.DataManager.__init__

    def dm_init(self, *a, **k):
        marks.setdefault("dataset_start", time.perf_counter())
        real_dm_init(self, *a, **k)
        marks.setdefault("dataset", time.perf_counter())

    dm.DataManager.__init__ = dm_init
    real_load = factory.clip.load_clip

    def load_clip(*a, **k):
        marks.setdefault("clip_start", time.perf_counter())
        out = real_load(*a, **k)
        marks.setdefault("clip", time.perf_counter())
        return out

    factory.clip.load_clip = load_clip
    real_test = engine_trainer.SimpleTrainer.test

    def test(self, *a, **k):
        marks.setdefault("model", time.perf_counter())
        real_inf = self.model_inference

        def model_inference(x):
            marks.setdefault("first_batch", time.perf_counter())
            return real_inf(x)

        self.model_inference = model_inference
        return real_test(self, *a, **k)

    engine_trainer.SimpleTrainer.test = test
    spent = {"env_info": 0.0, "header": 0.0, "tokenizer": 0.0}

    def timed(obj, name, key):
        real = getattr(obj, name)

        def wrapped(*a, **k):
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                spent[key] += time.perf_counter() - t0

        setattr(obj, name, wrapped)

    import clip.clip as clip_clip
    import dassl.utils.run_header as run_header

    timed(train, "_env_info", "env_info")
    timed(run_header, "log_run_header", "header")
    timed(clip_clip, "_get_tokenizer", "tokenizer")
    code = train.cli(argv)
    marks["rest"] = time.perf_counter()
    if code != 0:
        print(f"train.cli exited {code}", file=sys.stderr)
        return code
    # phases as durations: each from the previous mark (dataset/clip: from their own start)
    t = {"torch": marks["torch"] - _T0, "import": marks["import"] - marks["torch"]}
    t["config"] = marks["config"] - marks["import"]
    t["dataset"] = marks["dataset"] - marks["dataset_start"]
    t["clip"] = marks["clip"] - marks["clip_start"]
    t["model"] = (marks["model"] - marks["config"]) - t["dataset"] - t["clip"]  # logger, header, build, load
    t.update(spent)  # parts of "model"
    t["first_batch"] = marks["first_batch"] - marks["model"]
    t["rest"] = marks["rest"] - marks["first_batch"]
    t["until_first_batch"] = marks["first_batch"] - _T0
    t["after_torch"] = marks["first_batch"] - marks["torch"]
    print("STARTUP_JSON " + json.dumps(t), flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ parent
def make_fixtures(base: str) -> list[str]:
    """Generated dataset, tiny CLIP, a 1-epoch CoOp checkpoint; returns the eval-only argv (without output dir)."""
    sys.path.insert(0, ROOT)
    from tests.helpers.trainer_fixtures import tiny_eurosat_env

    env = tiny_eurosat_env(base)
    common = ["--root", env["data"], "--trainer", "CoOp", "--dataset-config-file",
              os.path.join(ROOT, "configs", "datasets", "eurosat.yaml"), "--config-file", env["cfg"], "--seed", "1"]
    model_dir = os.path.join(base, "coop")
    run = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *common, "--output-dir", model_dir,
                          "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "2"], capture_output=True, text=True,
                         cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(f"training the checkpoint failed:\n{run.stderr[-2000:]}")
    return [*common, "--eval-only", "--model-dir", model_dir, "--load-epoch", "1", "DATASET.NUM_SHOTS", "2"]


def _wall(cmd: list[str], cwd: str, env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    dt = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"command failed ({run.returncode}): {' '.join(cmd)}\n{run.stderr[-2000:]}")
    return dt, run.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="interleaved rounds (medians; default 5)")
    p.add_argument("--workdir", default=None, help="folder for the generated run (default: a temporary one)")
    p.add_argument("--compare", default=None, metavar="DIR",
                   help="another checkout: time its train.py on the same command, whole processes, interleaved")
    p.add_argument("--json", default=None, metavar="PATH", help="write the medians as JSON")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        return child(args.child)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(dir=args.workdir) as base:
        # byte-code cached as on a user's machine (in the temporary folder, so the checkout stays clean), even
        # where PYTHONDONTWRITEBYTECODE is set; one untimed warm-up run fills the cache
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(base, "pycache")
        os.environ.clear()
        os.environ.update(env)
        eval_argv = make_fixtures(base)
        _wall([sys.executable, os.path.abspath(__file__), "--child", *eval_argv, "--output-dir",
               os.path.join(base, "warmup")], ROOT)
        if args.compare:
            other = os.path.abspath(args.compare)
            _wall([sys.executable, os.path.join(other, "train.py"), *eval_argv, "--output-dir",
                   os.path.join(base, "warmup_other")], other)
        rows: list[dict] = []
        torch_wall: list[float] = []
        ours_wall: list[float] = []
        other_wall: list[float] = []
        for r in range(args.repeats):
            torch_wall.append(_wall([sys.executable, "-c", "import torch"], ROOT)[0])
            out_dir = os.path.join(base, f"eval{r}")
            dt, out = _wall([sys.executable, os.path.abspath(__file__), "--child", *eval_argv, "--output-dir",
                             out_dir], ROOT)
            rows.append(json.loads(out.split("STARTUP_JSON ", 1)[1].splitlines()[0]))
            if args.compare:
                cmd = [*eval_argv, "--output-dir", os.path.join(base, f"w_ours{r}")]
                ours_wall.append(_wall([sys.executable, os.path.join(ROOT, "train.py"), *cmd], ROOT)[0])
                cmd = [*eval_argv, "--output-dir", os.path.join(base, f"w_other{r}")]
                other_wall.append(_wall([sys.executable, os.path.join(other, "train.py"), *cmd], other)[0])

    med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    floor = statistics.median(torch_wall)
    print(f"train.py --eval-only on a tiny generated run; median of {args.repeats} interleaved rounds "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    print(f"{'phase':<14} {'seconds':>8}")
    for k in PHASES:
        print(f"{k:<14} {med[k]:8.3f}")
        if k == "model":
            for sub in ("env_info", "header", "tokenizer"):
                print(f"  {sub:<12} {med[sub]:8.3f}")
    print(f"{'first batch at':<14} {med['until_first_batch']:8.3f}  (from process start, in-process clock)")
    print(f"python -c 'import torch' (whole process): {floor:.3f} s; import torch in the child: {med['torch']:.3f} s")
    print(f"first useful work - import torch: {med['after_torch']:.3f} s (target <= 1 s)")
    print(f"ratio (first batch since start) / (import torch alone, in-process): "
          f"{med['until_first_batch'] / med['torch']:.2f}")
    result = {"phases": med, "python_import_torch_wall": floor, "repeats": args.repeats}
    if args.compare:
        ratios = [a / b for a, b in zip(ours_wall, other_wall)]
        result.update(ours_wall=statistics.median(ours_wall), other_wall=statistics.median(other_wall),
                      ratio=statistics.median(ratios))
        print(f"whole process: this checkout {result['ours_wall']:.2f} s, {args.compare} {result['other_wall']:.2f} s,"
              f" ratio {result['ratio']:.2f} (median of per-round ratios)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
