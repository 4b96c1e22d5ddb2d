"""Checkpoint I/O: round trip, atomic writes, weights_only, legacy Dassl files, malicious pickles."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from dassl.utils import load_checkpoint, load_pretrained_weights, resume_from_checkpoint, save_checkpoint
from dassl.utils.errors import CheckpointNotFoundError
from dassl.utils.safe_pickle import InertStub
from dassl.utils.torchtools import get_rng_state, set_rng_state
from tests.helpers.engine_fixtures import Evil, EvilSystem, UpstreamStyleScheduler


def _state(model, epoch, **extra):
    return {"state_dict": model.state_dict(), "epoch": epoch, "optimizer": None, "scheduler": None,
            "val_result": None, **extra}


def test_round_trip_layout_and_weights_only(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    d = tmp_path / "prompt_learner"
    path = save_checkpoint(
        {"state_dict": model.state_dict(), "epoch": 3, "optimizer": opt.state_dict(), "scheduler": None,
         "val_result": None, "rng_state": get_rng_state()}, str(d))
    assert os.path.basename(path) == "model.pth.tar-3"
    assert (d / "checkpoint").read_text() == "model.pth.tar-3\n"
    assert sorted(os.listdir(d)) == ["checkpoint", "model.pth.tar-3"]  # no temp files left
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) >= {"state_dict", "epoch", "optimizer", "scheduler", "val_result"}
    assert torch.equal(ckpt["state_dict"]["weight"], model.weight)
    assert load_checkpoint(path)["epoch"] == 3


def test_is_best_copy_and_module_prefix(tmp_path):
    model = nn.Linear(3, 2)
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    save_checkpoint({"state_dict": sd, "epoch": 1}, str(tmp_path), is_best=True)
    best = torch.load(tmp_path / "model-best.pth.tar", weights_only=True)
    assert set(best["state_dict"]) == {"weight", "bias"}


def test_crash_during_save_keeps_old_file_and_pointer(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    save_checkpoint(_state(model, 1), str(tmp_path), model_name="model.pth.tar-1")
    before = (tmp_path / "model.pth.tar-1").read_bytes()

    real_save = torch.save

    def crashing_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(torch, "save", crashing_save)
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(model, 1), str(tmp_path), model_name="model.pth.tar-1")
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(_state(model, 2), str(tmp_path))
    monkeypatch.setattr(torch, "save", real_save)

    assert (tmp_path / "model.pth.tar-1").read_bytes() == before
    assert (tmp_path / "checkpoint").read_text() == "model.pth.tar-1\n"
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.pth.tar-1"]


def test_rng_state_round_trip():
    state = get_rng_state()
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_rng_state(state)
    b = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    assert a == b


def test_upstream_style_checkpoint_with_pickled_scheduler(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.002, momentum=0.9)
    legacy = {
        "state_dict": model.state_dict(),
        "epoch": 7,
        "optimizer": opt.state_dict(),
        "scheduler": {"successor": UpstreamStyleScheduler(opt), "warmup_epoch": 1, "last_epoch": 1,
                      "base_lrs": [0.002], "_last_lr": [0.0018]},
        "val_result": None,
    }
    path = tmp_path / "model.pth.tar-7"
    torch.save(legacy, path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # what upstream files do on current torch

    ckpt = load_checkpoint(str(path))
    assert ckpt["epoch"] == 7
    assert torch.equal(ckpt["state_dict"]["weight"], model.weight)
    successor = ckpt["scheduler"]["successor"]
    assert isinstance(successor, InertStub)
    assert successor.stub_name == "UpstreamStyleScheduler"
    assert successor.state["last_epoch"] == 3
    assert isinstance(successor.state["optimizer"], InertStub)  # the pickled SGD was not rebuilt

    # such a file can also be resumed: weights and optimizer load, the legacy successor state is translated
    from dassl.config import get_cfg_default
    from dassl.optim import build_lr_scheduler, build_optimizer

    cfg = get_cfg_default()
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    model2 = nn.Linear(3, 2)
    opt2 = build_optimizer(model2, cfg.OPTIM)
    sched2 = build_lr_scheduler(opt2, cfg.OPTIM)
    (tmp_path / "checkpoint").write_text("model.pth.tar-7\n")
    assert resume_from_checkpoint(str(tmp_path), model2, opt2, sched2) == 7
    assert torch.equal(model2.weight, model.weight)
    assert sched2.successor.last_epoch == 3


@pytest.mark.parametrize("kind", ["function", "os.system"])
def test_malicious_pickle_is_not_executed(tmp_path, kind):
    marker = tmp_path / "marker.txt"
    evil = Evil(str(marker)) if kind == "function" else EvilSystem(f"touch {marker}")
    model = nn.Linear(2, 2)
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": model.state_dict(), "epoch": 2, "payload": evil}, path)

    ckpt = load_checkpoint(str(path))
    assert not marker.exists()
    assert isinstance(ckpt["payload"], InertStub)
    assert ckpt["epoch"] == 2 and torch.equal(ckpt["state_dict"]["weight"], model.weight)

    # sanity: the payload really is armed (plain pickle executes it)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_missing_and_none_paths(tmp_path):
    with pytest.raises(ValueError):
        load_checkpoint(None)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(str(tmp_path / "nope.pth"))
    with pytest.raises(CheckpointNotFoundError):
        resume_from_checkpoint(str(tmp_path), nn.Linear(2, 2))


def test_load_pretrained_weights_keeps_matching_keys(tmp_path):
    src = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    dst = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
    save_checkpoint({"state_dict": src.state_dict(), "epoch": 1}, str(tmp_path))
    old_last = dst[1].weight.clone()
    load_pretrained_weights(dst, str(tmp_path / "model.pth.tar-1"))
    assert torch.equal(dst[0].weight, src[0].weight)
    assert torch.equal(dst[1].weight, old_last)
