"""Logging set-up, meters and the evaluator's printed result block."""
from __future__ import annotations

import logging
import re
import sys

import pytest
import torch

from dassl.config import get_cfg_default
from dassl.evaluation import EVALUATOR_REGISTRY, Classification, build_evaluator
from dassl.utils import AverageMeter, MetricMeter, setup_logger
from dassl.utils.errors import ConfigError
from dassl.utils.logger import RUN_SEPARATOR_PREFIX, close_logger

lib_logger = logging.getLogger("dassl.test")


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    close_logger()


def test_setup_logger_tees_stdout_and_root_logger(tmp_path):
    setup_logger(str(tmp_path))
    print("printed line")
    # flushed per line: readable by another reader before closing (print itself does not flush)
    assert (tmp_path / "log.txt").read_text() == "printed line\n"
    lib_logger.info("library line")
    assert (tmp_path / "log.txt").read_text() == "printed line\nlibrary line\n"
    close_logger()
    assert not isinstance(sys.stdout, type(None))


def test_append_with_separator_and_no_duplicates(tmp_path):
    setup_logger(str(tmp_path))
    lib_logger.info("first run")
    tee1 = sys.stdout
    setup_logger(str(tmp_path))  # second call: closes the first tee
    assert tee1.file.closed
    lib_logger.info("second run")
    close_logger()
    lines = (tmp_path / "log.txt").read_text().splitlines()
    assert lines[0] == "first run"
    assert re.fullmatch(rf"{RUN_SEPARATOR_PREFIX} \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d ========", lines[2])
    assert lines[3:] == ["second run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]  # never a timestamped new file
    root_handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "_StdoutHandler"]
    assert len(root_handlers) == 1


def test_explicit_file_name(tmp_path):
    setup_logger(str(tmp_path / "sub" / "run.log"))
    lib_logger.info("x")
    close_logger()
    assert (tmp_path / "sub" / "run.log").read_text() == "x\n"


def test_meters():
    m = AverageMeter()
    m.update(torch.tensor(2.0))
    m.update(4.0)
    assert m.avg == 3.0 and m.val == 4.0
    mm = MetricMeter()
    mm.update({"loss": 1.0, "acc": torch.tensor(50.0)})
    mm.update({"loss": 3.0, "acc": 100.0})
    assert str(mm) == "loss 3.0000 (2.0000) acc 100.0000 (75.0000)"
    mm.update(None)
    with pytest.raises(TypeError):
        mm.update([1.0])


def _cfg(tmp_path, **test):
    cfg = get_cfg_default()
    cfg.OUTPUT_DIR = str(tmp_path)
    for k, v in test.items():
        cfg.TEST[k] = v
    return cfg


def test_result_block_format(tmp_path, caplog):
    cfg = _cfg(tmp_path, PER_CLASS_RESULT=True, COMPUTE_CMAT=True)
    ev = build_evaluator(cfg, lab2cname={0: "cat", 1: "dog", 2: "bird"})
    assert isinstance(ev, Classification) and "Classification" in EVALUATOR_REGISTRY
    # 1,200 samples: class 0 all right, class 1 half right, class 2 never occurs in y_true
    labels = torch.tensor([0] * 600 + [1] * 600)
    preds = torch.tensor([0] * 600 + [1] * 300 + [2] * 300)
    logits = torch.nn.functional.one_hot(preds, 3).float()
    with caplog.at_level(logging.INFO):
        ev.process(logits[:700], labels[:700])
        ev.process(logits[700:], labels[700:])
        res = ev.evaluate()
    assert list(res) == ["accuracy", "error_rate", "macro_f1", "perclass_accuracy"]
    assert res["accuracy"] == pytest.approx(75.0)
    # F1 over labels present in y_true only: class0 F1=1, class1 F1=2*1*0.5/1.5
    assert res["macro_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    text = caplog.text
    assert "=> result\n* total: 1,200\n* correct: 900\n* accuracy: 75.0%\n* error: 25.0%\n* macro_f1: 83.3%" in text
    assert "=> per-class result" in text
    assert "* class: 1 (dog)\ttotal: 600\tcorrect: 300\tacc: 50.0%" in text
    assert "* average: 75.0%" in text
    cmat = torch.load(tmp_path / "cmat.pt", weights_only=True)
    assert cmat.shape == (3, 3) and cmat[1, 1] == pytest.approx(0.5)
    assert ev.total == 1200 and ev.correct == 900


def test_unknown_evaluator(tmp_path):
    with pytest.raises(ConfigError, match="TEST.EVALUATOR"):
        build_evaluator(_cfg(tmp_path, EVALUATOR="Retrieval"))
