"""The run header (transforms, git state, versions, GPU) in every run's log; it never changes the numbers."""
from __future__ import annotations

import json
import re

import pytest

import train
from dassl.utils import run_header
from dassl.utils.logger import close_logger
from tests.helpers.engine_fixtures import make_image_folder
from tests.test_train_cli import EXTRA, TRAINER_YAML


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv(train.EXTRA_MODULES_ENV, EXTRA)
    yield
    close_logger()


def _run(tmp_path, name):
    data = make_image_folder(str(tmp_path / "data"))
    (tmp_path / "ds.yaml").write_text("DATASET:\n  NAME: EngineTinyFolder\n")
    (tmp_path / "tr.yaml").write_text(TRAINER_YAML)
    out = tmp_path / name
    rc = train.cli(["--seed", "1", "--trainer", "EngineTestTrainer", "--root", data, "--dataset-config-file",
                    str(tmp_path / "ds.yaml"), "--config-file", str(tmp_path / "tr.yaml"), "--output-dir", str(out),
                    "OPTIM.MAX_EPOCH", "2"])
    assert rc == 0
    return out


def test_header_in_log_and_numbers_unchanged(tmp_path, monkeypatch):
    out = _run(tmp_path, "with")
    log = (out / "log.txt").read_text()
    head = log[:log.index("epoch [")]
    assert "** Run header **" in head
    assert re.search(r"Git commit: ([0-9a-f]{40}|unknown)", head) and "working tree" in head
    assert "torch " in head and "CUDA (torch build)" in head and "GPU: " in head
    # the exact pipelines, with parameters (TRAINER_YAML: random_flip + normalize at 8x8, bicubic)
    train_part = head[head.index("Transform (train):"):head.index("Transform (test):")]
    assert "Resize(size=(8, 8), interpolation=bicubic" in train_part and "RandomHorizontalFlip(p=0.5)" in train_part
    assert "Normalize(mean=[" in train_part and "std=[" in train_part
    test_part = head[head.index("Transform (test):"):]
    assert "CenterCrop(size=(8, 8))" in test_part and "RandomHorizontalFlip" not in test_part
    close_logger()
    # the same run without the header: identical losses and accuracy (the header draws no random numbers)
    monkeypatch.setattr(run_header, "log_run_header", lambda cfg, log=None: "")
    ref = _run(tmp_path, "without")
    losses = lambda p: re.findall(r"loss \S+ \(\S+\)", (p / "log.txt").read_text())  # noqa: E731
    assert losses(out) and losses(out) == losses(ref)
    assert json.loads((out / "results.json").read_text()) == json.loads((ref / "results.json").read_text())
    assert "** Run header **" not in (ref / "log.txt").read_text()


def test_git_commit_read_without_subprocess(tmp_path):
    repo = tmp_path / "r"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text("# pack-refs\n" + "a" * 40 + " refs/heads/main\n")
    assert run_header.git_commit(str(repo)) == "a" * 40
    (repo / ".git" / "refs" / "heads" / "main").write_text("b" * 40 + "\n")
    assert run_header.git_commit(str(repo)) == "b" * 40  # a loose ref wins over packed-refs
    wt = tmp_path / "wt"  # a worktree: .git is a file, refs live in the common dir
    (repo / ".git" / "worktrees" / "wt").mkdir(parents=True)
    (repo / ".git" / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "worktrees" / "wt" / "commondir").write_text("../..\n")
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {repo / '.git' / 'worktrees' / 'wt'}\n")
    assert run_header.git_commit(str(wt)) == "b" * 40
    assert run_header.git_commit(str(tmp_path / "none")) is None and run_header.git_dirty(str(tmp_path)) is None


def test_report_reads_a_real_run(tmp_path):
    """tools/report.py on a folder written by the real train.py: the accuracy it reports is the run's own."""
    from tools import report

    out = _run(tmp_path, "output/eurosat/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed1")
    close_logger()
    acc = json.loads((out / "results.json").read_text())["accuracy"]
    rep = report.build_report(str(tmp_path / "output"))
    (row,) = rep["single"]
    assert (row["protocol"], row["dataset"], row["shots"], row["seeds"]) == ("fewshot", "eurosat", 1, ["seed1"])
    assert row["mean"] == pytest.approx(acc) and row["unfinished"] == [] and row["missing"] == []
    line = [ln for ln in (out / "log.txt").read_text().splitlines() if ln.startswith("* accuracy: ")][-1]
    assert line == f"* accuracy: {row['mean']:.1f}%"
