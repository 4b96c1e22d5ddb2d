"""The local and debug executors, the sweep folder (plan, logs, task records, summary) and --status, on stand-in
runs (tests/helpers/sweep_fake_run.py) and, for the in-process executor and the CLI, on real tiny train.py runs."""
from __future__ import annotations

import json
import os
import socket
import textwrap

import pytest

from dassl.utils.run_record import LOCK_FILE, is_finished
from sweeps import cli
from sweeps.executors import DebugExecutor, LocalExecutor, Progress, read_json
from sweeps.runs import Run

FAKE = "tests/helpers/sweep_fake_run.py"


def fake(folder, sleep=0.0, fail="", needs=(), label=""):
    args = ["--output-dir", str(folder), "--sleep", str(sleep)] + (["--fail", fail] if fail else [])
    return Run(FAKE, args, [str(folder)], "eval" if needs else "train", [str(n) for n in needs], label or folder.name)


def info(folder):
    with open(os.path.join(folder, "info.json")) as f:
        return json.load(f)


def test_local_queue_slots_gpus_failures_and_dependencies(tmp_path):
    out = tmp_path / "runs"
    runs = [fake(out / "long", sleep=2.0)] + [fake(out / f"short{k}", sleep=0.2) for k in range(3)]
    runs.append(fake(out / "bad", fail="TRAINER.X.BETA must be in [0, 1]"))
    runs.append(fake(out / "eval_bad", needs=[out / "bad"]))  # needs a failed run: not started
    runs.append(fake(out / "eval_ok", needs=[out / "short0"]))
    sweep = str(tmp_path / "sweep")
    progress = Progress(len(runs), "t")
    LocalExecutor(gpus=["3", "5"]).run(runs, sweep, progress, list(range(len(runs))))
    o = progress.outcomes
    assert [o[i]["status"] for i in range(len(runs))] == ["finished"] * 4 + ["failed", "failed", "finished"]
    assert o[4]["error"] == "error: TRAINER.X.BETA must be in [0, 1]"
    assert "bad, which failed" in o[5]["error"] and not (out / "eval_bad").exists()
    long, shorts = info(out / "long"), [info(out / f"short{k}") for k in range(3)]
    assert {long["cuda"]} | {s["cuda"] for s in shorts} == {"3", "5"}
    # no lock-step: the three short runs went one after the other on the other GPU while the long one ran
    assert all(s["cuda"] != long["cuda"] and s["end"] < long["end"] for s in shorts)
    starts = sorted([long["start"]] + [s["start"] for s in shorts])
    assert starts[-1] - starts[0] < 1.9
    rec = read_json(os.path.join(sweep, "tasks", "0004.json"))
    assert rec["status"] == "failed" and os.path.isfile(rec["log"])


def test_local_cpu_slots_pin_threads(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    runs = [fake(tmp_path / f"r{k}") for k in range(2)]
    progress = Progress(2, "t")
    LocalExecutor(gpus=[], slots=2).run(runs, str(tmp_path / "s"), progress, [0, 1])
    assert all(progress.outcomes[i]["status"] == "finished" for i in (0, 1))
    i0 = info(tmp_path / "r0")
    assert i0["cuda"] == os.environ.get("CUDA_VISIBLE_DEVICES") and i0["threads"] == str(max(1, (os.cpu_count() or 1) // 2))


def write_spec(tmp_path, extra="", seeds="[1, 2]"):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(textwrap.dedent(f"""
        protocol: fewshot
        data: {tmp_path}/data
        output_root: {tmp_path}/out
        datasets: [synth_shapes]
        methods: [coop]
        cfg: tinysynth
        shots: [1]
        seeds: {seeds}
        overrides: {{OPTIM.MAX_EPOCH: 1, DATALOADER.TEST.BATCH_SIZE: 400}}
        """) + extra)
    return str(spec)


def test_cli_rejects_a_bad_spec_before_writing(tmp_path, capsys):
    spec = write_spec(tmp_path, "")
    text = open(spec).read().replace("OPTIM.MAX_EPOCH", "OPTIM.MAX_EPOCHS")
    open(spec, "w").write(text)
    assert cli.main([spec, "--executor", "debug"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and 'did you mean "OPTIM.MAX_EPOCH"' in err[0]
    assert not (tmp_path / "out").exists()
    open(spec, "w").write(text.replace("OPTIM.MAX_EPOCHS", "OPTIM.MAX_EPOCH").replace("[coop]", "[CoOp]"))
    assert cli.main([spec]) == 2 and "unknown method 'CoOp'" in capsys.readouterr().err


def test_cli_debug_executor_real_runs_skip_and_status(tmp_path, capsys):
    spec = write_spec(tmp_path, seeds="[2]")
    assert cli.main([spec, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("train.py --root") == 1 and not (tmp_path / "out").exists()
    assert cli.main([spec, "--executor", "debug"]) == 0
    out = capsys.readouterr().out
    sweep = tmp_path / "out" / "sweeps" / "tiny"
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["counts"] == {"finished": 1, "skipped": 0, "failed": 0, "interrupted": 0, "submitted": 0}
    folders = [r["folders"][0] for r in summary["runs"]]
    assert all(is_finished(f) for f in folders) and folders[0].endswith("seed2")
    # a re-run skips both; --dry-run marks them
    assert cli.main([spec, "--executor", "debug"]) == 0
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["counts"]["skipped"] == 1
    capsys.readouterr()
    assert cli.main([spec, "--dry-run"]) == 0 and capsys.readouterr().out.count("# skip (finished)") == 1
    # status: finished / running (a live lock) / failed (last attempt) / missing
    assert cli.main(["--status", str(sweep)]) == 0
    assert "1 finished" in capsys.readouterr().out


def test_status_running_failed_missing(tmp_path, capsys):
    out = tmp_path / "runs"
    runs = [fake(out / "ok"), fake(out / "bad", fail="boom"), fake(out / "busy"), fake(out / "later")]
    sweep = str(tmp_path / "sweep")
    from sweeps.executors import write_plan

    write_plan(sweep, runs, {"name": "t"})
    progress = Progress(2, "t")
    DebugExecutor().run(runs, sweep, progress, [])  # nothing to do: no records
    LocalExecutor(slots=1).run(runs, sweep, progress, [0, 1])
    os.makedirs(out / "busy")
    (out / "busy" / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert cli.status_report(sweep) == 1
    text = capsys.readouterr().out
    assert "1 finished, 1 running, 1 failed, 0 interrupted, 1 missing" in text and "error: boom" in text
    with pytest.raises(cli.SweepError, match="not a sweep folder"):
        cli.status_report(str(tmp_path))


def test_slurm_parameters_and_checkpoint_hook(tmp_path):
    """Spec / CLI resources become the sbatch lines; the checkpoint hook stops the run and requeues the same task."""
    import subprocess
    import sys

    import submitit

    from sweeps.slurm import SlurmExecutor, SlurmTask

    ns = cli.build_parser().parse_args(["--partition", "gpu", "--gpus-per-task", "1", "--mem-gb", "31.5", "x.yaml"])
    params = cli._slurm_params(ns, {"partition": "cpu", "time": 90, "cpus_per_task": 6, "array_parallelism": 8})
    ex = SlurmExecutor(params)._executor(str(tmp_path), "fewshot")
    text = ex._executor._make_submission_file_text("python -u x", "uid")
    for line in ("--partition=gpu", "--time=90", "--cpus-per-task=6", "--gpus-per-node=1", "--mem=32GB",
                 f"--output={tmp_path}/slurm/%j/%j_0_log.out", "--signal=USR2@90"):
        assert f"#SBATCH {line}\n" in text, line
    assert ex._executor.parameters["array_parallelism"] == 8  # --array=0-N%8
    task = SlurmTask(str(tmp_path), sys.executable, 1)
    task._proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    again = task.checkpoint(3, {"program": "train.py"})
    assert task._proc.poll() is not None  # the run was stopped (it continues from its folder)
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.args == (3, {"program": "train.py"})
    assert isinstance(again.function, SlurmTask) and again.function.sweep_dir == str(tmp_path)
