"""train.py: argument parsing, config merge order, end-to-end runs (in-process and subprocess), error exits."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

import train
from dassl.utils.logger import close_logger
from tests.helpers.engine_fixtures import make_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXTRA = "tests.helpers.engine_fixtures"

TRAINER_YAML = """
DATALOADER:
  NUM_WORKERS: 0
  TRAIN_X:
    BATCH_SIZE: 4
  TEST:
    BATCH_SIZE: 5
INPUT:
  SIZE: (8, 8)
  INTERPOLATION: "bicubic"
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
  PRINT_FREQ: 2
USE_CUDA: False
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    data = make_image_folder(str(d / "data"))
    (d / "ds.yaml").write_text("DATASET:\n  NAME: EngineTinyFolder\n")
    (d / "tr.yaml").write_text(TRAINER_YAML)
    return {"dir": d, "data": data, "ds": str(d / "ds.yaml"), "tr": str(d / "tr.yaml")}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(train.EXTRA_MODULES_ENV, EXTRA)
    yield
    close_logger()


def _base(files, out):
    return ["--root", files["data"], "--dataset-config-file", files["ds"], "--config-file", files["tr"],
            "--output-dir", str(out)]


def test_merge_order(files, tmp_path):
    (tmp_path / "ds.yaml").write_text("DATASET:\n  NAME: EngineTinyFolder\nOPTIM:\n  LR: 0.1\n  GAMMA: 0.5\n"
                                      "OUTPUT_DIR: from_ds\n")
    (tmp_path / "a.yaml").write_text("OPTIM:\n  LR: 0.2\n  MOMENTUM: 0.7\nSEED: 5\n")
    (tmp_path / "b.yaml").write_text("OPTIM:\n  LR: 0.3\nOUTPUT_DIR: from_overlay\n")
    argv = ["--dataset-config-file", str(tmp_path / "ds.yaml"), "--config-file", str(tmp_path / "a.yaml"),
            "OPTIM.MAX_EPOCH", "7",  # opts in the middle: named flags after them still work
            "--config-file", str(tmp_path / "b.yaml"), "--trainer", "EngineTestTrainer", "--output-dir", "from_cli"]
    cfg = train.setup_cfg(train.parse_args(argv))
    assert cfg.OPTIM.GAMMA == 0.5 and cfg.OPTIM.MOMENTUM == 0.7  # dataset yaml < config yaml
    assert cfg.OPTIM.LR == 0.3  # overlay wins over the first config file
    assert cfg.OUTPUT_DIR == "from_cli"  # CLI flag wins over files
    assert cfg.SEED == 5  # no --seed flag: the file's value survives
    assert cfg.OPTIM.MAX_EPOCH == 7 and cfg.TRAINER.NAME == "EngineTestTrainer"
    cfg = train.setup_cfg(train.parse_args(argv + ["OUTPUT_DIR", "from_opts", "--seed", "0"]))
    assert cfg.OUTPUT_DIR == "from_opts"  # opts win over CLI flags
    assert cfg.SEED == 0  # seed 0 honoured
    assert cfg.is_frozen()
    assert cfg.TEST.DO_TEST is False and cfg.CORRUPT.TYPE == "" and cfg.DATASET.SUBSAMPLE_CLASSES == "all"
    args = train.parse_args(["--corrupt-type", "scale", "--corrupt-position", "3", "--crt-factor", "0.5",
                             "--do-test", "--trainer", "EngineTestTrainer"])
    cfg = train.setup_cfg(args)
    assert (cfg.CORRUPT.TYPE, cfg.CORRUPT.POSITION, cfg.CORRUPT.FACTOR, cfg.TEST.DO_TEST) == ("scale", 3, 0.5, True)
    assert train.parse_args([]).seed == -1 and train.setup_cfg(train.parse_args([])).SEED == -1


def test_train_then_eval_only_in_process(files, tmp_path):
    out = tmp_path / "train"
    rc = train.cli(["--seed", "1", "--trainer", "EngineTestTrainer"] + _base(files, out) + ["OPTIM.MAX_EPOCH", "2"])
    assert rc == 0
    log = (out / "log.txt").read_text().splitlines()
    assert log[0] == "Setting fixed seed: 1"  # in the log file, before everything else
    assert "** Arguments **" in log and "** Config **" in log and "Collecting env info ..." in log
    assert any(ln.startswith("Git commit: ") for ln in log)
    assert any(re.match(r"epoch \[2/2\] batch \[4/4\] time ", ln) for ln in log)
    assert re.fullmatch(r"Elapsed: \d+:\d\d:\d\d", log[-1])
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["OPTIM"]["MAX_EPOCH"] == 2 and cfg["SEED"] == 1 and cfg["INPUT"]["INTERPOLATION"] == "bicubic"
    result = json.loads((out / "results.json").read_text())
    assert result["epoch"] == 2 and result["split"] == "test"

    ev = tmp_path / "eval"
    rc = train.cli(["--seed", "1", "--trainer", "EngineTestTrainer"] + _base(files, ev) +
                   ["--eval-only", "--model-dir", str(out), "--load-epoch", "2"])
    assert rc == 0
    lines = (ev / "log.txt").read_text().splitlines()
    assert any("macro_f1" in ln for ln in lines[-2:])
    assert json.loads((ev / "results.json").read_text())["accuracy"] == result["accuracy"]
    assert json.loads((ev / "results.json").read_text())["epoch"] == 2
    acc_line = [ln for ln in lines if ln.startswith("* accuracy: ")][-1]
    assert acc_line == f"* accuracy: {result['accuracy']:.1f}%"


def test_subprocess_run(files, tmp_path):
    out = tmp_path / "sub"
    env = dict(os.environ, PROMPTCLIP_EXTRA_MODULES=EXTRA, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "train.py", "--trainer", "EngineTestTrainer", "--seed", "2"] + _base(files, out) + [
        "OPTIM.MAX_EPOCH", "1", "TEST.PER_CLASS_RESULT", "True"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "log.txt").read_text()
    assert "Setting fixed seed: 2" in text and "=> per-class result" in text
    assert "* class: 0 (red)\ttotal: 4\tcorrect: " in text
    assert text.splitlines()[-1].startswith("Elapsed: ")
    assert proc.stdout.splitlines()[-1].startswith("Elapsed: ")  # the console gets the same lines
    assert (out / "model" / "model.pth.tar-1").is_file() and (out / "tensorboard").is_dir()


@pytest.mark.parametrize(
    "extra,pattern",
    [
        (["--config-file", "/nonexistent/cfg.yaml"], r"config file not found: /nonexistent/cfg\.yaml"),
        (["--trainer", "EngineTestTrainr"], r'did you mean "EngineTestTrainer"'),
        (["--trainer", "EngineTestTrainer", "OPTIM.LRR", "0.1"], r"unknown config key OPTIM\.LRR.*OPTIM\.LR"),
        (["--trainer", "EngineTestTrainer", "OPTIM.LR", "1"], r"Type mismatch"),
        (["--trainer", "EngineTestTrainer", "OPTIM.LR"], r"KEY VALUE pairs"),
        (["--trainer", "EngineTestTrainer", "--seed", "abc"], r"--seed"),
        (["--trainer", "EngineTestTrainer", "--bogus-flag", "1"], r"unrecognized argument: --bogus-flag"),
        (["--trainer", "EngineTestTrainer", "--eval-only", "--model-dir", "/nonexistent/run"], r"/nonexistent/run"),
    ],
)
def test_user_errors_exit_2_with_one_line(files, tmp_path, capsys, extra, pattern):
    argv = ["--root", files["data"], "--dataset-config-file", files["ds"], "--config-file", files["tr"],
            "--output-dir", str(tmp_path / "err")] + extra
    rc = train.cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and re.search(pattern, err[0]), err


def test_unknown_key_in_yaml(files, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIM:\n  WARMUP_EPOCHS: 1\n")
    assert train.cli(["--config-file", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key OPTIM.WARMUP_EPOCHS in ") and "\n" not in err


def test_list(capsys):
    assert train.cli(["--list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^trainers \(\d+\):", out, re.M) and "  EngineTestTrainer" in out
    assert re.search(r"^datasets \(\d+\):", out, re.M) and "  EngineTinyFolder" in out


def test_no_work_at_import():
    proc = subprocess.run([sys.executable, "-c", "import sys, train; print('torch' in sys.modules)"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False"


def test_clip_weight_errors_are_user_errors(monkeypatch, capsys):
    clip = pytest.importorskip("clip")
    err_cls = getattr(clip, "MissingWeightsError", None)
    if err_cls is None:
        pytest.skip("clip defines no MissingWeightsError")

    def fail(args):
        raise err_cls("RN50 weights not found in /nonexistent/cache\nsee docs")

    monkeypatch.setattr(train, "main", fail)
    assert train.cli(["--trainer", "EngineTestTrainer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: RN50 weights not found in /nonexistent/cache see docs"]
