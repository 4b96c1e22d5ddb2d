"""Every registered trainer of ``trainers/`` (read from ``TRAINER_REGISTRY``, not from a list: a new trainer is
covered without editing this file) builds from its own table of defaults on a tiny CLIP, takes one training step
that changes exactly its trainable tensors, and survives a save / load into a fresh trainer with identical
logits. Options a component requires (Nemesis's ``A`` and ``BETA``) come from that component's ``example()``."""
from __future__ import annotations

import dataclasses
import os

import pytest
import torch

import train
import trainers
from dassl.engine import TRAINER_REGISTRY
from tests.helpers.trainer_fixtures import tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")


def _ours(name: str) -> bool:
    return TRAINER_REGISTRY.get(name).__module__.startswith("trainers.")


NAMES = sorted(n for n in TRAINER_REGISTRY.registered_names() if _ours(n))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("registry"), test_batch_size=5)


def required_opts(cls) -> list[str]:
    """``KEY VALUE`` opts of the example options of every regulariser the trainer adds (the others default)."""
    reg = trainers.REGISTRIES["regulariser"]
    opts: list[str] = []
    for name in getattr(cls, "REGULARISERS", ()) or ():
        options_cls = reg.options_class(name)
        example = options_cls.example()
        node = reg.node(name)
        for f in dataclasses.fields(options_cls):
            value = getattr(example, f.name)
            if value is not None:
                opts += [f"{node}.{f.metadata.get('key', f.name.upper())}", str(value)]
    return opts


def build(env, name: str, out):
    from dassl.engine import build_trainer

    cls = TRAINER_REGISTRY.get(name)
    argv = ["--root", env["data"], "--seed", "1", "--trainer", name, "--dataset-config-file", DS, "--config-file",
            env["cfg"], "--output-dir", str(out), *required_opts(cls)]
    return build_trainer(train.setup_cfg(train.parse_args(argv)))


IMAGES = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))


def logits(t) -> torch.Tensor:
    t.set_model_mode("eval")
    with torch.no_grad():
        return t.model_inference(IMAGES)


def test_the_registry_holds_every_reference_name():
    for name in ("CoOp", "CoOpNemesis", "CoOpCRT", "CoCoOp", "KgCoOp", "MaPLe", "ZeroshotCLIP", "ZeroshotCLIP2",
                 "ExtrasLinearProbeCoOp", "ExtrasLinearProbeCoCoOp", "ExtrasLinearProbeKgCoOp",
                 "ExtrasLinearProbeMaPLe"):
        assert name in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_registered_trainer_step_and_checkpoint_round_trip(env, tmp_path, name):
    t = build(env, name, tmp_path / "a")
    trainable = {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if not p.requires_grad}
    out = logits(t)
    assert out.shape == (3, t.num_classes) and torch.isfinite(out).all()
    if not t.get_model_names():  # zero-shot: nothing to train or save
        assert not trainable
        return
    assert trainable
    t.set_model_mode("train")
    batch = next(iter(t.train_loader_x))
    t.forward_backward(batch)
    changed = {n for n, p in t.model.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])}
    assert changed, "one step changed no trainable tensor"
    assert all(torch.equal(p, frozen[n]) for n, p in t.model.named_parameters() if not p.requires_grad)
    expected = logits(t)
    t.save_model(0, str(tmp_path / "a"))
    fresh = build(env, name, tmp_path / "b")
    fresh.load_model(str(tmp_path / "a"), epoch=1)
    assert torch.equal(logits(fresh), expected)
