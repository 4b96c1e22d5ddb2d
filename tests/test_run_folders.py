"""Run folders never lose work (issue 11 part 1, issue 12 resume / signals / disk full).

Subprocesses where the exit code, a kill or the untouched folder matter; the fast checks run in-process.
"""
from __future__ import annotations

import errno
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

import train
from dassl.utils import run_record
from dassl.utils.logger import close_logger
from tests.helpers.engine_fixtures import make_image_folder
from tests.helpers.script_stub import python_stub_env
from tests.helpers.trainer_fixtures import tiny_eurosat_env
from tests.helpers.files import tree_hashes as tree_hash

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRA = "tests.helpers.engine_fixtures,tests.helpers.fault_injection"
TRAINER_YAML = """
DATALOADER:
  NUM_WORKERS: 0
  TRAIN_X:
    BATCH_SIZE: 4
  TEST:
    BATCH_SIZE: 5
INPUT:
  SIZE: (8, 8)
  TRANSFORMS: ["random_flip", "normalize"]
OPTIM:
  NAME: "sgd"
  LR: 0.05
  MAX_EPOCH: 3
  LR_SCHEDULER: "cosine"
  WARMUP_EPOCH: 1
  WARMUP_TYPE: "constant"
  WARMUP_CONS_LR: 1e-3
TRAIN:
  PRINT_FREQ: 1
USE_CUDA: False
"""
LOSS_RE = re.compile(r"^epoch \[(\d+)/\d+\] batch \[(\d+)/\d+\] time \S+ \(\S+\) data \S+ \(\S+\) (.* lr \S+) eta ")


def losses(log_path) -> dict[tuple[int, int], str]:
    """(epoch, batch) -> the logged meters (losses, accuracy, norms: ``name val (avg)``) and LR of a log; a line
    repeated after a resume (it ran past the resume point before the kill): the last one counts."""
    out = {}
    with open(log_path) as f:
        for line in f:
            m = LOSS_RE.match(line.strip())
            if m:
                out[(int(m.group(1)), int(m.group(2)))] = m.group(3)
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    data = make_image_folder(str(d / "data"))
    (d / "ds.yaml").write_text("DATASET:\n  NAME: EngineTinyFolder\n")
    (d / "tr.yaml").write_text(TRAINER_YAML)
    return {"dir": d, "data": data, "ds": str(d / "ds.yaml"), "tr": str(d / "tr.yaml")}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(train.EXTRA_MODULES_ENV, EXTRA)
    monkeypatch.delenv("FAULT_AT", raising=False)
    yield
    close_logger()


def argv(files, out, *extra):
    return ["--root", files["data"], "--dataset-config-file", files["ds"], "--config-file", files["tr"],
            "--trainer", "EngineTestTrainer", "--seed", "1", "--output-dir", str(out), *extra]


def sub_env(**extra):
    return dict(os.environ, PROMPTCLIP_EXTRA_MODULES=EXTRA, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=ROOT, **extra)


def run_sub(args, **env):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, env=sub_env(**env),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def finished(files):
    out = files["dir"] / "finished"
    assert train.cli(argv(files, out)) == 0
    close_logger()
    return out


# ------------------------------------------------------------------------------------ record, comparison, force
def test_completion_record_and_config_hash(files, finished):
    rec = run_record.read_record(str(finished))
    res = json.loads((finished / "results.json").read_text())
    assert rec["finished"] is True and rec["kind"] == "train" and rec["epoch"] == 3
    assert rec["results"]["accuracy"] == res["accuracy"]
    cfg = train.setup_cfg(train.parse_args(argv(files, finished)))
    assert rec["config_hash"] == run_record.config_hash(cfg)
    assert run_record.run_status(str(finished)) == "finished" and not (finished / ".lock").exists()
    # keys that do not change results are ignored, the others are not
    same = train.setup_cfg(train.parse_args(argv(files, "/elsewhere", "TRAIN.PRINT_FREQ", "7",
                                                 "DATALOADER.NUM_WORKERS", "3")))
    assert run_record.config_hash(same) == rec["config_hash"]
    assert run_record.compare_folder(str(finished), same, train.parse_args(argv(files, finished))) == []
    other = train.setup_cfg(train.parse_args(argv(files, finished, "OPTIM.LR", "0.01")))
    assert run_record.config_hash(other) != rec["config_hash"]
    # the scripts' reader (a plain file, no torch)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "dassl/utils/run_record.py"), "status", "--kind",
                           "train", str(finished)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "finished"


@pytest.mark.parametrize("extra,pattern", [
    (["OPTIM.LR", "0.01"], r"OPTIM\.LR: 0\.05 in the folder, 0\.01 requested"),
    (["OPTIM.MAX_EPOCH", "5"], r"OPTIM\.MAX_EPOCH: 3 in the folder, 5 requested"),  # raising MAX_EPOCH: a change
    (["--eval-only", "--model-dir", "{finished}"], r"--eval-only: False in the folder, True requested"),
    (["OPTIM.LR", "-"], r"Type mismatch|bad command-line option"),
])
def test_failing_invocation_leaves_folder_byte_identical(files, finished, capsys, extra, pattern):
    before = tree_hash(finished)
    capsys.readouterr()
    extra = [x.replace("{finished}", str(finished)) for x in extra]
    assert train.cli(argv(files, finished) + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(pattern, err[0]), err
    if "requested" in pattern:
        assert "--force" in err[0] and "new --output-dir" in err[0]
    assert tree_hash(finished) == before


def test_crash_while_building_leaves_folder_byte_identical(files, finished):
    """Even an unexpected error while the trainer is built (here the fixture dataset's raw FileNotFoundError)
    leaves the folder untouched: the log lines were only kept in memory (``--force``: a finished folder with the
    same config is otherwise skipped before anything is built)."""
    before = tree_hash(finished)
    with pytest.raises(FileNotFoundError):
        train.cli(argv(files, finished, "--root", "/nonexistent/data", "--force"))
    assert tree_hash(finished) == before


def test_finished_folder_is_skipped_unless_the_config_differs(files, tmp_path, capsys):
    """Same config (any spelling of the command): skipped, nothing written; another value: refused naming the key.
    The record's request fingerprint (arguments + config-file hashes) lets scripts skip without starting Python."""
    tr = tmp_path / "tr.yaml"
    tr.write_text(TRAINER_YAML)
    out = tmp_path / "fp"
    a = argv(dict(files, tr=str(tr)), out, "OPTIM.MAX_EPOCH", "1")
    assert train.cli(a) == 0
    before = tree_hash(out)
    capsys.readouterr()
    assert train.cli(a + ["TRAIN.PRINT_FREQ", "7"]) == 0  # another command, same resolved config
    assert "skip (finished)" in capsys.readouterr().out and tree_hash(out) == before
    assert train.cli(a + ["OPTIM.LR", "0.5"]) == 2
    assert "OPTIM.LR" in capsys.readouterr().err and tree_hash(out) == before
    assert run_record.request_matches(str(out), ["python", "/x/train.py", *a], "train")
    assert run_record.request_matches(str(out), a + ["--force"], "train")  # --force is not part of the request
    assert not run_record.request_matches(str(out), a, "eval")
    assert not run_record.request_matches(str(out), a + ["TRAIN.PRINT_FREQ", "7"], "train")
    tr.write_text(TRAINER_YAML + "# edited\n")  # an edited YAML is another request (train.py then compares)
    assert not run_record.request_matches(str(out), a, "train")


def test_a_newer_checkout_continues_a_run_an_older_one_started(files, tmp_path):
    """Keys added to (or removed from) the config schema since a run started are not a difference of the request:
    an interrupted run continues with a warning naming them; a new key the user sets explicitly is a difference."""
    out = tmp_path / "old"
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 0
    (out / "run.json").unlink()  # interrupted before its record
    rc = json.loads((out / "run_config.json").read_text())
    assert "TRAIN.RESUME_EVERY_ITERS" in rc["config"] and "OPTIM.ADAM_BETA2" in rc["config"]
    del rc["config"]["OPTIM.ADAM_BETA2"]  # as written by code without this key
    rc["config"]["OPTIM.OLD_REMOVED_KEY"] = 3  # a key this code no longer has
    (out / "run_config.json").write_text(json.dumps(rc))
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1", "OPTIM.ADAM_BETA2", "0.9")) == 2  # set: a difference
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 0
    log = (out / "log.txt").read_text()
    assert "1 new key(s) at their defaults (OPTIM.ADAM_BETA2)" in log
    assert "1 key(s) no longer exist (OPTIM.OLD_REMOVED_KEY)" in log


def test_other_worker_count_is_allowed_with_a_warning(files, tmp_path):
    out = tmp_path / "w"
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 0
    (out / "run.json").unlink()  # as if interrupted just before its completion record (else: skipped as finished)
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "1")) == 0
    assert "Warning: DATALOADER.NUM_WORKERS is 1 now but was 0" in (out / "log.txt").read_text()


def test_rerun_same_config_continues_and_force_moves_aside(files, tmp_path):
    out = tmp_path / "run"
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 0
    old = tree_hash(out)
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1", "TRAIN.PRINT_FREQ", "3")) == 0  # same config
    assert tree_hash(out) == old  # finished with this config: skipped, nothing written
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "2", "--force")) == 0
    moved = glob.glob(str(out / ".replaced" / "*"))
    assert len(moved) == 1
    assert tree_hash(moved[0])["model/model.pth.tar-1"] == old["model/model.pth.tar-1"]
    assert run_record.read_record(str(out))["epoch"] == 2 and (out / "model" / "model.pth.tar-2").is_file()
    assert "======== new run" not in (out / "log.txt").read_text()  # a fresh log; the old one is in .replaced


# ------------------------------------------------------------------------------------------------------ lock
def test_lock_refuses_live_owner_and_takes_over_stale(files, finished, tmp_path, capsys):
    out = tmp_path / "locked"
    live = subprocess.Popen(["sleep", "60"])
    try:
        out.mkdir()
        (out / ".lock").write_text(json.dumps({"pid": live.pid, "host": socket.gethostname(), "started": "now"}))
        capsys.readouterr()
        assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 2
        err = capsys.readouterr().err
        assert f"in use by pid {live.pid} on host {socket.gethostname()}" in err
        assert sorted(os.listdir(out)) == [".lock"]  # nothing else written
        assert run_record.run_status(str(out)) == "running"
    finally:
        live.kill()
        live.wait()
    # the owner is gone: the lock is stale and taken over with a warning
    assert train.cli(argv(files, out, "OPTIM.MAX_EPOCH", "1")) == 0
    log = (out / "log.txt").read_text()
    assert f"taking over the stale lock of pid {live.pid}" in log
    assert not (out / ".lock").exists() and run_record.is_finished(str(out), "train")


def test_second_process_is_refused_while_first_runs(files, tmp_path):
    out = tmp_path / "busy"
    first = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *argv(files, out, "OPTIM.MAX_EPOCH",
                              "40")], cwd=ROOT, env=sub_env(FAULT_AT="0:0:HOLD"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        for _ in range(3000):  # the first process imports torch and the trainers first (slow on a busy machine)
            if (out / ".lock").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()
        second = run_sub(argv(files, out, "OPTIM.MAX_EPOCH", "40"))
        assert second.returncode == 2, second.stderr
        assert f"in use by pid {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    assert first.returncode == 143 and "Traceback" not in first.stderr
    assert not (out / ".lock").exists()


# ------------------------------------------------------------------------------------------- signals, resume
def test_sigterm_sigint_stop_at_a_safe_point_and_resume_bit_identical(files, tmp_path, monkeypatch):
    """SIGTERM (a real process: exit 143, no traceback) in the middle of epoch 2, then SIGINT (in-process: the
    same handler) at the start of epoch 3, then a plain re-run: bit-identical to an uninterrupted run."""
    from dassl.engine.trainer import TrainerBase

    ref, out = tmp_path / "ref", tmp_path / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the subprocess (OMP_NUM_THREADS=1)
    try:
        assert train.cli(argv(files, ref)) == 0
        r = run_sub(argv(files, out), FAULT_AT="1:1:TERM")
        assert r.returncode == 143 and "Traceback" not in r.stderr + r.stdout, r.stderr
        assert (out / "log.txt").read_text().splitlines()[-1] == (
            "interrupted at epoch 2 iteration 2; rerun the same command to continue")
        assert not (out / ".lock").exists() and run_record.run_status(str(out)) == "interrupted"
        assert torch.load(out / "resume.pth.tar", weights_only=True)["batch"] == 2

        original = TrainerBase.write_scalar

        def sigint(self, tag, value, step=None):
            original(self, tag, value, step)
            if tag == "train/lr" and (self.epoch, self.batch_idx) == (2, 0):
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(TrainerBase, "write_scalar", sigint)
        assert train.cli(argv(files, out)) == 130
        monkeypatch.setattr(TrainerBase, "write_scalar", original)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
        assert (out / "log.txt").read_text().splitlines()[-1] == (
            "interrupted at epoch 3 iteration 1; rerun the same command to continue")
        (out / "model").mkdir(exist_ok=True)
        (out / "model" / ".model.pth.tar-3.x1y2.tmp").write_bytes(b"partial")  # what a kill -9 mid-save leaves
        assert train.cli(argv(files, out)) == 0
    finally:
        torch.set_num_threads(threads)
    assert not (out / "model" / ".model.pth.tar-3.x1y2.tmp").exists()
    a = torch.load(ref / "model" / "model.pth.tar-3", weights_only=True)["state_dict"]
    b = torch.load(out / "model" / "model.pth.tar-3", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(ref / "log.txt") == losses(out / "log.txt") and len(losses(ref / "log.txt")) == 12
    assert run_record.read_record(str(out))["results"] == run_record.read_record(str(ref))["results"]


def test_mid_epoch_resume_with_loader_workers(files, tmp_path, monkeypatch):
    """In-process crash after iteration (1, 2) with a resume checkpoint every iteration and one loader worker:
    the continued run redoes the epoch's sampler order and worker seeds and ends bit-identical."""
    from dassl.engine.trainer import TrainerBase

    opts = ["DATALOADER.NUM_WORKERS", "1", "TRAIN.RESUME_EVERY_ITERS", "1"]
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert train.cli(argv(files, ref, *opts)) == 0
    original = TrainerBase.write_scalar

    class Crash(Exception):
        pass

    def crash(self, tag, value, step=None):
        original(self, tag, value, step)
        if tag == "train/lr" and (self.epoch, self.batch_idx) == (1, 2):
            raise Crash

    monkeypatch.setattr(TrainerBase, "write_scalar", crash)
    with pytest.raises(Crash):
        train.cli(argv(files, out, *opts))
    close_logger()
    monkeypatch.setattr(TrainerBase, "write_scalar", original)
    ckpt = torch.load(out / "resume.pth.tar", weights_only=True)
    assert (ckpt["epoch"], ckpt["batch"]) == (1, 2)
    torch.manual_seed(999)  # another process state: the resume restores every RNG itself
    assert train.cli(argv(files, out, *opts)) == 0
    a = torch.load(ref / "model" / "model.pth.tar-3", weights_only=True)["state_dict"]
    b = torch.load(out / "model" / "model.pth.tar-3", weights_only=True)["state_dict"]
    assert losses(ref / "log.txt") == losses(out / "log.txt")
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------------- disk full
def test_disk_full_while_checkpointing(files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "full"
    real_save = torch.save
    calls = []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 3:  # model.pth.tar-1, resume.pth.tar (epoch 1), then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    capsys.readouterr()
    assert train.cli(argv(files, out, "TRAIN.CHECKPOINT_FREQ", "1")) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert err == [f"error: no space left on device while writing {out / 'model' / 'model.pth.tar-2'}"], err
    assert "Logging error" not in captured.err + captured.out
    assert (out / "model" / "checkpoint").read_text() == "model.pth.tar-1\n"
    assert not glob.glob(str(out / "**" / ".*.tmp"), recursive=True) and not (out / ".lock").exists()
    assert torch.load(out / "resume.pth.tar", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(torch, "save", real_save)
    assert train.cli(argv(files, out, "TRAIN.CHECKPOINT_FREQ", "1")) == 0  # space freed: continues


def test_disk_full_while_logging_leaves_finished_log_intact(files, finished, tmp_path, capsys, monkeypatch):
    import shutil

    import dassl.utils.logger as logmod

    # a run interrupted after training, before its record (a finished one would be skipped without logging)
    shutil.copytree(finished, tmp_path / "run")
    finished = tmp_path / "run"
    for name in ("run.json", "resume.pth.tar"):
        (finished / name).unlink()
    before = tree_hash(finished)

    class FullFile:
        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, s):
            self.n += len(s)
            if self.n > 200:
                self.f.write(s[:50])  # a fragment reaches the disk, then the device is full
                self.f.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(s)

        def __getattr__(self, name):
            return getattr(self.f, name)

    real_open = open
    monkeypatch.setattr(logmod, "open", lambda *a, **k: FullFile(real_open(*a, **k)), raising=False)
    capsys.readouterr()
    assert train.cli(argv(files, finished)) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"error: no space left on device while writing {finished / 'log.txt'}"]
    assert "Logging error" not in captured.err + captured.out
    after = tree_hash(finished)
    assert after["log.txt"] == before["log.txt"]  # no fragment appended to the finished run's log


def test_broken_stdout_pipe_keeps_the_log(files, tmp_path):
    out = tmp_path / "piped"
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), *argv(files, out, "OPTIM.MAX_EPOCH",
                             "1")], cwd=ROOT, env=sub_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Logging error" not in err and "BrokenPipe" not in err and "Traceback" not in err, err
    assert (out / "log.txt").read_text().splitlines()[-1].startswith("Elapsed: ")


# ------------------------------------------------------------------------------------------- through the scripts
@pytest.fixture(scope="module")
def eurosat(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("eurosat"))


def _script_env(eurosat, out_root, epochs=2, **extra):
    backbone = os.path.join(str(eurosat["base"]), "clip", "tiny.pt")
    opts = (f"MODEL.BACKBONE.NAME {backbone} INPUT.SIZE (32,32) OPTIM.MAX_EPOCH {epochs} DATALOADER.TRAIN_X.BATCH_SIZE 4 "
            "DATALOADER.TEST.BATCH_SIZE 50 DATALOADER.NUM_WORKERS 0 TRAIN.PRINT_FREQ 1 USE_CUDA False")
    return dict(os.environ, PYTHON=sys.executable, STATUS_PYTHON=sys.executable, DATA=eurosat["data"],
                OUTPUT_ROOT=str(out_root), SEEDS="1", EXTRA_OPTS=opts, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
                PYTHONPATH=ROOT, PROMPTCLIP_EXTRA_MODULES="tests.helpers.fault_injection", **extra)


def _sh(script, *args, env):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", script), *map(str, args)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_kill9_mid_epoch_shipped_config_continues_through_script(eurosat, tmp_path):
    """scripts/coop/main.sh with the shipped rn50_ep50 config (no CHECKPOINT_FREQ): kill -9 in the middle of
    epoch 2, re-run the script: it continues the folder (never deletes it) and ends bit-identical."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ("eurosat", "rn50_ep50", "end", 4, 2, False)
    rel = "eurosat/CoOp/rn50_ep50_2shots/nctx4_cscFalse_ctpend/seed1"
    r = _sh("coop/main.sh", *args, env=_script_env(eurosat, tmp_path / "a"))
    assert r.returncode == 0, r.stderr[-2000:]
    r = _sh("coop/main.sh", *args, env=_script_env(eurosat, tmp_path / "b", FAULT_AT="1:2:KILL"))
    assert r.returncode == 137
    a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
    assert (b / ".lock").exists() and not (b / "run.json").exists()  # killed: stale lock, no record
    r = _sh("coop/main.sh", *args, env=_script_env(eurosat, tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "continue (interrupted)" in r.stdout and "taking over the stale lock" in (b / "log.txt").read_text()
    wa = torch.load(a / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]
    wb = torch.load(b / "prompt_learner" / "model.pth.tar-2", weights_only=True)["state_dict"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = losses(a / "log.txt"), losses(b / "log.txt")
    assert la == lb and len(la) == 2 * 5
    logged = [m.groups()[:2] for m in map(LOSS_RE.match, (b / "log.txt").read_text().splitlines()) if m]
    assert len(logged) == len(set(logged)) == 10  # every iteration once: lines past the resume point were moved
    moved = (b / "log.superseded.txt").read_text()
    assert "after its resume point" in moved and LOSS_RE.search(moved.splitlines()[1]) is not None
    assert "Moved the" in (b / "log.txt").read_text()
    norms_a = (a / "norms.jsonl").read_text().splitlines()
    assert (b / "norms.jsonl").read_text().splitlines() == norms_a and len(norms_a) == 2  # no duplicate epochs
    assert run_record.read_record(str(b))["results"] == run_record.read_record(str(a))["results"]

    def scalars(folder):
        acc = EventAccumulator(str(folder / "tensorboard"))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars("train/ce_loss")]

    sa, sb = scalars(a), scalars(b)
    assert sb == sa and len({s for s, _ in sb}) == len(sb) == 10  # one stream continuing, no duplicated steps
    # re-running the script now skips the finished run and leaves it alone
    before = tree_hash(b)
    r = _sh("coop/main.sh", *args, env=_script_env(eurosat, tmp_path / "b"))
    assert r.returncode == 0 and "skip (finished)" in r.stdout and tree_hash(b) == before


def test_issue11_reproduction(eurosat, tmp_path, capsys, monkeypatch):
    """Train with scripts/coop_nemesis/train.sh; re-run train.py into the folder with BETA 1.5 (exit 2, folder
    byte-identical); re-run the script (skip, nothing deleted)."""
    args = ("eurosat", "rn50_ep50", "end", 4, 1, False, 1.0, "two", 1, 0.1, 1.0)
    env = _script_env(eurosat, tmp_path, epochs=1)
    r = _sh("coop_nemesis/train.sh", *args, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    folder = tmp_path / "eurosat/CoOpNemesis/Beta-1.0/rn50_ep50_1shots/alpha1.0_nctx4_cscFalse_ctpend_nttwo/seed1"
    assert run_record.is_finished(str(folder), "train")
    before = tree_hash(folder)
    cfg = json.loads((folder / "run_config.json").read_text())["config"]
    monkeypatch.setenv(train.EXTRA_MODULES_ENV, "")
    bad = ["--root", eurosat["data"], "--seed", "1", "--trainer", "CoOpNemesis", "--dataset-config-file",
           os.path.join(ROOT, "configs/datasets/eurosat.yaml"), "--config-file",
           os.path.join(ROOT, "configs/trainers/CoOpNemesis/rn50_ep50.yaml"), "--output-dir", str(folder),
           "TRAINER.CoOpNemesis.N_CTX", "4", "TRAINER.CoOpNemesis.CSC", "False",
           "TRAINER.CoOpNemesis.CLASS_TOKEN_POSITION", "end", "TRAINER.CoOpNemesis.A", "1.0",
           "TRAINER.CoOpNemesis.NT", "two", "TRAINER.CoOpNemesis.NP", "1", "TRAINER.CoOpNemesis.CW", "0.1",
           "DATASET.NUM_SHOTS", "1", *env["EXTRA_OPTS"].split(), "TRAINER.CoOpNemesis.BETA", "1.5"]
    assert cfg["TRAINER.CoOpNemesis.BETA"] == 1.0
    capsys.readouterr()
    assert train.cli(bad) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "BETA" in err[0]
    assert tree_hash(folder) == before
    i = bad.index("TRAINER.CoOpNemesis.BETA")
    assert train.cli(bad[:i] + ["TRAINER.CoOpNemesis.BETA", "1.0", "--root", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "nodata") in err[0], err  # the dataset is missing: after the checks
    assert tree_hash(folder) == before
    r = _sh("coop_nemesis/train.sh", *args, env=env)
    assert r.returncode == 0 and "skip (finished)" in r.stdout
    assert tree_hash(folder) == before
    # the script with another hyperparameter: train.py compares and refuses naming the key; nothing changes
    r = _sh("coop_nemesis/train.sh", *args, env=dict(env, EXTRA_OPTS=env["EXTRA_OPTS"] + " OPTIM.LR 0.5"))
    assert r.returncode == 2 and "check (finished" in r.stdout, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ") and "OPTIM.LR" in r.stderr
    assert tree_hash(folder) == before


def test_scripts_forward_signals_to_their_child(tmp_path):
    env, _ = python_stub_env(tmp_path)
    sleeper = tmp_path / "python"
    sleeper.write_text(f"#!/usr/bin/env bash\necho $$ > {tmp_path}/child.pid\nexec sleep 60\n")
    proc = subprocess.Popen(["bash", os.path.join(ROOT, "scripts/coop/main.sh"), "eurosat", "rn50_ep50", "end", "16",
                             "1", "False"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pidfile = tmp_path / "child.pid"
    for _ in range(300):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the training process outlived the killed script")
