"""Trainer lifecycle: hooks, log lines, checkpoints, resume equivalence, best-val, zero-model trainers."""
from __future__ import annotations

import json
import os
import re

import pytest
import torch
import torch.nn as nn

from dassl.engine import TRAINER_REGISTRY, build_trainer
from dassl.utils import set_random_seed, setup_logger
from dassl.utils.errors import CheckpointNotFoundError, ConfigError
from dassl.utils.logger import close_logger
from tests.helpers.engine_fixtures import EngineTestTrainer, make_image_folder, tiny_cfg

LINE_RE = re.compile(
    r"^epoch \[(\d+)/(\d+)\] batch \[(\d+)/(\d+)\] time \d+\.\d{3} \(\d+\.\d{3}\) data \d+\.\d{3} \(\d+\.\d{3}\) "
    r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc \d+\.\d{4} \(\d+\.\d{4}\) lr (\d\.\d{4}e[+-]\d\d) eta (\d+:\d\d:\d\d)$"
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return make_image_folder(str(tmp_path_factory.mktemp("data")))


@pytest.fixture(autouse=True)
def _close_logger():
    yield
    close_logger()


def _trainer(data_root, out, cls_name="EngineTestTrainer", **kw):
    cfg = tiny_cfg(data_root, str(out), TRAINER__NAME=cls_name, **kw)
    cfg.freeze()
    set_random_seed(cfg.SEED)
    return build_trainer(cfg)


def test_full_run_outputs(data_root, tmp_path):
    out = tmp_path / "run"
    setup_logger(str(out))
    trainer = _trainer(data_root, out)
    trainer.train()
    close_logger()
    lines = (out / "log.txt").read_text().splitlines()

    train_lines = [ln for ln in lines if ln.startswith("epoch [")]
    # 18 images / batch 4 -> 4 batches, PRINT_FREQ 2 -> batches 2 and 4 of each of 4 epochs
    assert len(train_lines) == 8
    for ln in train_lines:
        assert LINE_RE.match(ln), ln
    lrs = [float(LINE_RE.match(ln).group(5)) for ln in train_lines]
    # constant warm-up 1e-3 in epoch 1; the last batch's line already shows the next epoch's LR (stepped before)
    assert lrs[0] == pytest.approx(1e-3) and lrs[1] == pytest.approx(trainer.cfg.OPTIM.LR)

    tail = lines[lines.index("Finish training"):]
    assert tail[:3] == ["Finish training", "Deploy the last-epoch model", "Evaluate on the *test* set"]
    assert tail[3] == "=> result" and tail[4] == "* total: 12"
    assert re.fullmatch(r"\* accuracy: \d+\.\d%", tail[6]) and tail[8].startswith("* macro_f1: ")
    assert re.fullmatch(r"Elapsed: \d+:\d\d:\d\d", lines[-1])

    assert (out / "model" / "checkpoint").read_text() == "model.pth.tar-4\n"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy", "test/error_rate", "test/macro_f1"} <= tags
    assert len(events.Scalars("train/lr")) == 16  # every batch of every epoch
    ckpt = torch.load(out / "model" / "model.pth.tar-4", weights_only=True)
    assert ckpt["epoch"] == 4 and ckpt["val_result"] is None and "rng_state" in ckpt

    res = json.loads((out / "results.json").read_text())
    assert res["split"] == "test" and res["epoch"] == 4 and res["total"] == 12
    assert res["accuracy"] == pytest.approx(trainer.last_results["accuracy"])
    assert res["correct"] == round(res["accuracy"] * 12 / 100)
    assert set(trainer.last_results) == {"accuracy", "error_rate", "macro_f1"}

    # eval-only reload of the final checkpoint reproduces the accuracy (and val_result=None does not crash)
    t2 = _trainer(data_root, tmp_path / "eval")
    t2.load_model(str(out), epoch=4)
    assert t2.test() == pytest.approx(res["accuracy"])
    t3 = _trainer(data_root, tmp_path / "eval2")
    t3.load_model(str(out), epoch=-1)  # newest
    t3.load_model(str(out))  # no model-best: falls back to the pointer
    assert torch.equal(t3.model.fc.weight, t2.model.fc.weight)
    with pytest.raises(CheckpointNotFoundError):
        t3.load_model(str(out), epoch=7)


class _Interrupted(Exception):
    pass


def test_resume_equals_uninterrupted(data_root, tmp_path):
    straight = _trainer(data_root, tmp_path / "a", TRAIN__CHECKPOINT_FREQ=1)
    straight.train()

    first = _trainer(data_root, tmp_path / "b", TRAIN__CHECKPOINT_FREQ=1)
    original_after_epoch = first.after_epoch

    def after_epoch_then_crash():
        original_after_epoch()
        if first.epoch == 1:
            raise _Interrupted

    first.after_epoch = after_epoch_then_crash
    with pytest.raises(_Interrupted):
        first.train()
    assert (tmp_path / "b" / "model" / "checkpoint").read_text() == "model.pth.tar-2\n"

    torch.manual_seed(12345)  # a different process state: resume must restore RNGs itself
    resumed = _trainer(data_root, tmp_path / "b", TRAIN__CHECKPOINT_FREQ=1)
    resumed.train()
    assert resumed.start_epoch == 2
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.last_results["accuracy"] == straight.last_results["accuracy"]
    assert resumed.optim.param_groups[0]["lr"] == straight.optim.param_groups[0]["lr"]


def test_rerun_into_finished_folder_keeps_results(data_root, tmp_path):
    out = tmp_path / "done"
    t1 = _trainer(data_root, out)
    t1.train()
    before = json.loads((out / "results.json").read_text())
    ckpt_before = (out / "model" / "model.pth.tar-4").read_bytes()
    t2 = _trainer(data_root, out)
    calls = []
    t2.run_epoch = lambda: calls.append(1)
    t2.train()
    assert calls == []  # nothing re-trained
    assert json.loads((out / "results.json").read_text()) == before
    assert (out / "model" / "model.pth.tar-4").read_bytes() == ckpt_before


def test_best_val_selection(data_root, tmp_path):
    out = tmp_path / "best"
    setup_logger(str(out))
    trainer = _trainer(data_root, out, TEST__FINAL_MODEL="best_val")
    trainer.train()
    close_logger()
    text = (out / "log.txt").read_text()
    assert "Evaluate on the *val* set" in text and "Deploy the model with the best val performance" in text
    best = torch.load(out / "model" / "model-best.pth.tar", weights_only=True)
    assert best["val_result"] == pytest.approx(trainer.best_result)
    assert (out / "model" / "checkpoint").read_text() == "model.pth.tar-4\n"  # pointer = resume point
    assert json.loads((out / "results_val.json").read_text())["split"] == "val"
    assert re.search(r"Load .*model-best\.pth\.tar to model \(epoch=\d, val_result=\d+\.\d\)", text)


class _RecordingTrainer(EngineTestTrainer):
    def check_cfg(self, cfg):
        assert not hasattr(self, "cfg")
        self.calls = ["check_cfg"]

    def build_data_loader(self):
        self.calls.append("build_data_loader")
        super().build_data_loader()

    def build_model(self):
        self.calls.append("build_model")
        super().build_model()
        self.frozen = nn.BatchNorm1d(2).eval()  # not registered: must stay in eval mode

    def before_train(self):
        self.calls.append("before_train")
        super().before_train()

    def before_epoch(self):
        self.calls.append("before_epoch")
        assert not self.frozen.training

    def run_epoch(self):
        self.calls.append("run_epoch")
        super().run_epoch()
        assert self.model.training and not self.frozen.training

    def after_epoch(self):
        self.calls.append("after_epoch")
        super().after_epoch()

    def after_train(self):
        self.calls.append("after_train")
        super().after_train()


def test_hook_order_and_model_mode(data_root, tmp_path):
    TRAINER_REGISTRY.register(_RecordingTrainer, force=True)
    t = _trainer(data_root, tmp_path, cls_name="_RecordingTrainer", OPTIM__MAX_EPOCH=2)
    assert t.calls == ["check_cfg", "build_data_loader", "build_model"]
    assert t.evaluator is not None and t.num_classes == 3 and t.dm.dataset.classnames == ["red", "green", "blue"]
    t.train()
    assert t.calls[3:] == ["before_train"] + ["before_epoch", "run_epoch", "after_epoch"] * 2 + ["after_train"]
    assert t.epoch == 1 and t.max_epoch == 2 and t.num_batches == 4 and t.batch_idx == 3
    assert not t.model.training  # test() set eval mode


def test_zero_registered_models(data_root, tmp_path):
    t = _trainer(data_root, tmp_path, cls_name="EngineZeroShotTrainer", OPTIM__MAX_EPOCH=1)
    assert t.get_model_names() == [] and t.get_current_lr() == 0.0
    t.load_model("")  # skipped
    t.set_model_mode("train")
    t.update_lr()
    acc = t.test()
    correct = total = 0
    for batch in t.test_loader:  # the same classifier counted by hand over the test split
        images, labels = t.parse_batch_test(batch)
        correct += int((images.mean(dim=(2, 3)).argmax(dim=1) == labels).sum())
        total += len(labels)
    assert total == 12 and acc == pytest.approx(100.0 * correct / total) and t.last_results["accuracy"] == acc
    t.train()  # runs the loop without anything to optimise or save
    assert not (tmp_path / "model").exists()


def test_register_and_anomaly(data_root, tmp_path):
    t = _trainer(data_root, tmp_path)
    with pytest.raises(KeyError):
        t.register_model("model", nn.Linear(2, 2))
    t.register_model("frozen", nn.Linear(2, 2), None, None)  # optim/sched may be None
    t.model_backward_and_update(t.model(torch.zeros(1, 192)).sum())  # the None optimiser is skipped
    with pytest.raises(FloatingPointError, match="Loss is infinite or NaN!"):
        t.model_backward_and_update(torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(KeyError):
        t.get_model_names("nope")


def test_build_trainer_unknown_name(data_root, tmp_path):
    cfg = tiny_cfg(data_root, str(tmp_path), TRAINER__NAME="EngineTestTrainr")
    with pytest.raises(ConfigError, match='did you mean "EngineTestTrainer"'):
        build_trainer(cfg)
