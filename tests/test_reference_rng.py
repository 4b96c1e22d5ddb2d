"""Each learner consumes the global torch RNG exactly as its reference does while the model is built (CoOp,
CoCoOp, KgCoOp, MaPLe, DePT): the generator state after our ``build_model`` must equal the state after an independent
re-enactment of the reference's construction, i.e. the same sequence of ``torch.empty(...).normal_`` /
``nn.Linear`` / CLIP constructions with the reference's shapes and dtypes (the reference's hard-coded 512s
included)."""
from __future__ import annotations

import os

import pytest
import torch
from torch import nn

import train
from clip.model import build_clip_from_config
from tests.helpers.trainer_fixtures import tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")
SEED = 123
D = DT = DV = 64  # the tiny CLIP of tests/helpers/trainer_fixtures.py: joint, text and vision widths
C, C_BASE = 10, 5  # EuroSAT classes (all / base)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("rng"), test_batch_size=5)


def rng_after_build(env, tmp_path, trainer, opts):
    from dassl.engine import build_trainer

    args = ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file",
            os.path.join(DS, "eurosat.yaml"), "--config-file", env["cfg"], "--output-dir", str(tmp_path), *opts]
    t = build_trainer(train.setup_cfg(train.parse_args(args)))
    for registry in (t._models, t._optims, t._scheds):
        registry.clear()
    torch.manual_seed(SEED)
    t.build_model()
    return torch.get_rng_state()


# -- the references' draws, re-enacted -------------------------------------------------------------------------
def clip_init():
    build_clip_from_config()  # OpenAI build_model: CLIP(...) constructed (default inits + initialize_parameters)


def normal(*shape, dtype=torch.float32):
    nn.init.normal_(torch.empty(*shape, dtype=dtype), std=0.02)


def coop(n_ctx=None, csc=False, dtype=torch.float32):
    if n_ctx:  # random context (no CTX_INIT)
        normal(*((C, n_ctx, DT) if csc else (n_ctx, DT)), dtype=dtype)


def cocoop(n_ctx=None, dtype=torch.float32):
    coop(n_ctx, dtype=dtype)
    nn.Linear(D, D // 16)  # meta_net.linear1
    nn.Linear(D // 16, DT)  # meta_net.linear2


def kgcoop(n_ctx=None, dtype=torch.float32):
    coop(n_ctx, dtype=dtype)
    normal(1, 512, dtype=dtype)  # bias_vectors
    clip_init()  # the second CLIP (anchors)
    nn.Linear(512, 512)  # meta_net.linear1
    nn.Linear(512, 128, bias=False)  # Adapter(512, 4).fc.0
    nn.Linear(128, 512, bias=False)  # Adapter(512, 4).fc.2


def maple(n_ctx=2, init=True, depth=2, dtype=torch.float32):
    if not init or n_ctx > 4:
        normal(n_ctx, DT, dtype=dtype)
    nn.Linear(DT, DV)  # proj
    for _ in range(depth - 1):
        normal(n_ctx, DT)  # compound_prompts_text (fp32)
    nn.Linear(DT, DV)  # the single layer copied J-1 times


def dept(base, n_cls=C_BASE, **kw):
    base(**kw)
    nn.Linear(D, n_cls)  # linear_probe_proj (FiLM: ones/zeros, no draws)


def expected_state(reenact) -> torch.Tensor:
    torch.manual_seed(SEED)
    clip_init()
    reenact()
    return torch.get_rng_state()


FP32 = {k: ["TRAINER.%s.PREC" % k, "fp32"] for k in ("COOP", "COCOOP", "MAPLE", "CoOpNemesis")}
BASE = ["DATASET.SUBSAMPLE_CLASSES", "base"]
CASES = [
    ("coop_random", "CoOp", ["TRAINER.COOP.N_CTX", "4", *FP32["COOP"]], lambda: coop(4)),
    ("coop_csc", "CoOp", ["TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.CSC", "True", *FP32["COOP"]],
     lambda: coop(4, csc=True)),
    ("coop_init", "CoOp", ["TRAINER.COOP.CTX_INIT", "a photo of a", *FP32["COOP"]], lambda: coop(None)),
    ("nemesis", "CoOpNemesis", ["TRAINER.CoOpNemesis.N_CTX", "4", "TRAINER.CoOpNemesis.A", "1.0",
                                "TRAINER.CoOpNemesis.BETA", "1.0", *FP32["CoOpNemesis"]], lambda: coop(4)),
    ("cocoop_random", "CoCoOp", ["TRAINER.COCOOP.N_CTX", "4", *FP32["COCOOP"]], lambda: cocoop(4)),
    ("cocoop_init", "CoCoOp", ["TRAINER.COCOOP.CTX_INIT", "a photo of a", *FP32["COCOOP"]], lambda: cocoop(None)),
    ("kgcoop_init", "KgCoOp", ["TRAINER.COOP.CTX_INIT", "True", *FP32["COOP"]], lambda: kgcoop(None)),
    ("kgcoop_random", "KgCoOp", ["TRAINER.COOP.N_CTX", "4", *FP32["COOP"]], lambda: kgcoop(4)),
    ("maple_init", "MaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "3", *FP32["MAPLE"]], lambda: maple(2, True, 3)),
    ("maple_random", "MaPLe", ["TRAINER.MAPLE.CTX_INIT", "", "TRAINER.MAPLE.PROMPT_DEPTH", "2", *FP32["MAPLE"]],
     lambda: maple(2, False, 2)),
    ("maple_long", "MaPLe", ["TRAINER.MAPLE.N_CTX", "5", "TRAINER.MAPLE.PROMPT_DEPTH", "2", *FP32["MAPLE"]],
     lambda: maple(5, True, 2)),
    ("dept_coop", "ExtrasLinearProbeCoOp", ["TRAINER.COOP.N_CTX", "4", *FP32["COOP"], *BASE],
     lambda: dept(coop, n_ctx=4)),
    ("dept_cocoop", "ExtrasLinearProbeCoCoOp", ["TRAINER.COCOOP.CTX_INIT", "a photo of a", *FP32["COCOOP"], *BASE],
     lambda: dept(cocoop, n_ctx=None)),
    ("dept_kgcoop", "ExtrasLinearProbeKgCoOp", ["TRAINER.COOP.CTX_INIT", "True", *FP32["COOP"], *BASE],
     lambda: dept(kgcoop, n_ctx=None)),
    ("dept_maple", "ExtrasLinearProbeMaPLe", ["TRAINER.MAPLE.PROMPT_DEPTH", "2", *FP32["MAPLE"], *BASE],
     lambda: dept(maple, n_ctx=2, init=True, depth=2)),
]


@pytest.mark.parametrize("name,trainer,opts,reenact", CASES, ids=[c[0] for c in CASES])
def test_rng_state_after_build_matches_the_reference(env, tmp_path, name, trainer, opts, reenact):
    assert torch.equal(rng_after_build(env, tmp_path, trainer, opts), expected_state(reenact))
