"""Config: Dassl defaults, merge order, unknown keys, type rules, seed handling."""
from __future__ import annotations

import pytest
from yacs.config import CfgNode

from dassl.config import clean_cfg, get_cfg_default, validate_cfg
from dassl.utils import set_random_seed
from dassl.utils.errors import ConfigError

# Dassl's generic keys with their defaults
DEFAULTS = {
    "VERSION": 1, "OUTPUT_DIR": "./output", "RESUME": "", "SEED": -1, "USE_CUDA": True, "VERBOSE": True,
    "INPUT.SIZE": (224, 224), "INPUT.INTERPOLATION": "bilinear", "INPUT.TRANSFORMS": (), "INPUT.NO_TRANSFORM": False,
    "INPUT.PIXEL_MEAN": [0.485, 0.456, 0.406], "INPUT.PIXEL_STD": [0.229, 0.224, 0.225], "INPUT.CROP_PADDING": 4,
    "INPUT.RRCROP_SCALE": (0.08, 1.0), "INPUT.CUTOUT_N": 1, "INPUT.CUTOUT_LEN": 16, "INPUT.GN_MEAN": 0.0,
    "INPUT.GN_STD": 0.15, "INPUT.RANDAUGMENT_N": 2, "INPUT.RANDAUGMENT_M": 10, "INPUT.COLORJITTER_B": 0.4,
    "INPUT.COLORJITTER_C": 0.4, "INPUT.COLORJITTER_S": 0.4, "INPUT.COLORJITTER_H": 0.1, "INPUT.RGS_P": 0.2,
    "INPUT.GB_P": 0.5, "INPUT.GB_K": 21,
    "DATASET.ROOT": "", "DATASET.NAME": "", "DATASET.SOURCE_DOMAINS": (), "DATASET.TARGET_DOMAINS": (),
    "DATASET.NUM_LABELED": -1, "DATASET.NUM_SHOTS": -1, "DATASET.VAL_PERCENT": 0.1, "DATASET.STL10_FOLD": -1,
    "DATASET.CIFAR_C_TYPE": "", "DATASET.CIFAR_C_LEVEL": 1, "DATASET.ALL_AS_UNLABELED": False,
    "DATALOADER.NUM_WORKERS": 4, "DATALOADER.K_TRANSFORMS": 1, "DATALOADER.RETURN_IMG0": False,
    "DATALOADER.TRAIN_X.SAMPLER": "RandomSampler", "DATALOADER.TRAIN_X.BATCH_SIZE": 32,
    "DATALOADER.TRAIN_X.N_DOMAIN": 0, "DATALOADER.TRAIN_X.N_INS": 16, "DATALOADER.TRAIN_U.SAME_AS_X": True,
    "DATALOADER.TRAIN_U.SAMPLER": "RandomSampler", "DATALOADER.TRAIN_U.BATCH_SIZE": 32,
    "DATALOADER.TRAIN_U.N_DOMAIN": 0, "DATALOADER.TRAIN_U.N_INS": 16, "DATALOADER.TEST.SAMPLER": "SequentialSampler",
    "DATALOADER.TEST.BATCH_SIZE": 32,
    "MODEL.INIT_WEIGHTS": "", "MODEL.BACKBONE.NAME": "", "MODEL.BACKBONE.PRETRAINED": None, "MODEL.HEAD.NAME": "",
    "MODEL.HEAD.HIDDEN_LAYERS": (), "MODEL.HEAD.ACTIVATION": "relu", "MODEL.HEAD.BN": True, "MODEL.HEAD.DROPOUT": 0.0,
    "OPTIM.NAME": "adam", "OPTIM.LR": 0.0003, "OPTIM.WEIGHT_DECAY": 5e-4, "OPTIM.MOMENTUM": 0.9,
    "OPTIM.SGD_DAMPNING": 0, "OPTIM.SGD_NESTEROV": False, "OPTIM.RMSPROP_ALPHA": 0.99, "OPTIM.ADAM_BETA1": 0.9,
    "OPTIM.ADAM_BETA2": 0.999, "OPTIM.STAGED_LR": False, "OPTIM.NEW_LAYERS": (), "OPTIM.BASE_LR_MULT": 0.1,
    "OPTIM.LR_SCHEDULER": "single_step", "OPTIM.STEPSIZE": (-1,), "OPTIM.GAMMA": 0.1, "OPTIM.MAX_EPOCH": 10,
    "OPTIM.WARMUP_EPOCH": -1, "OPTIM.WARMUP_TYPE": "linear", "OPTIM.WARMUP_CONS_LR": 1e-5,
    "OPTIM.WARMUP_MIN_LR": 1e-5, "OPTIM.WARMUP_RECOUNT": True,
    "TRAIN.CHECKPOINT_FREQ": 0, "TRAIN.PRINT_FREQ": 10, "TRAIN.COUNT_ITER": "train_x",
    "TEST.EVALUATOR": "Classification", "TEST.PER_CLASS_RESULT": False, "TEST.COMPUTE_CMAT": False,
    "TEST.NO_TEST": False, "TEST.SPLIT": "test", "TEST.FINAL_MODEL": "last_step",
    "TRAINER.NAME": "",
}


def _get(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_default_values(key):
    value = _get(get_cfg_default(), key)
    assert value == DEFAULTS[key] and type(value) is type(DEFAULTS[key])


def test_get_cfg_default_is_a_fresh_copy():
    a = get_cfg_default()
    a.OPTIM.LR = 1.0
    assert get_cfg_default().OPTIM.LR == 0.0003


def test_yacs_rules_we_rely_on(tmp_path):
    cfg = get_cfg_default()
    cfg.NEW_KEY = 3  # extend_cfg adds keys by assignment
    yml = tmp_path / "a.yaml"
    yml.write_text("INPUT:\n  SIZE: (32, 32)\nOPTIM:\n  WARMUP_CONS_LR: 1e-5\n")
    cfg.merge_from_file(str(yml))
    assert cfg.INPUT.SIZE == (32, 32) and cfg.OPTIM.WARMUP_CONS_LR == 1e-5
    with pytest.raises(ValueError):
        cfg.merge_from_list(["OPTIM.LR", "1"])  # int vs float is a type mismatch
    (tmp_path / "bad.yaml").write_text("OPTIM:\n  LRR: 0.1\n")
    with pytest.raises(KeyError, match="OPTIM.LRR"):
        cfg.merge_from_file(str(tmp_path / "bad.yaml"))


def test_clean_cfg_keeps_name_and_trainer():
    cfg = get_cfg_default()
    cfg.TRAINER.COOP = CfgNode({"N_CTX": 16})
    cfg.TRAINER.MCD = CfgNode({"N_STEP_F": 4})
    clean_cfg(cfg, "coop")
    assert set(cfg.TRAINER.keys()) == {"NAME", "COOP"}


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("OPTIM.NAME", "adagrad", "OPTIM.NAME"),
        ("OPTIM.LR_SCHEDULER", "poly", "OPTIM.LR_SCHEDULER"),
        ("OPTIM.WARMUP_TYPE", "exp", "OPTIM.WARMUP_TYPE"),
        ("TEST.FINAL_MODEL", "best", "TEST.FINAL_MODEL"),
        ("INPUT.INTERPOLATION", "lanczos", "INPUT.INTERPOLATION"),
        ("DATALOADER.TRAIN_X.SAMPLER", "RandomDomainSampler", "SAMPLER"),
    ],
)
def test_validate_cfg_names_the_key(key, value, match):
    cfg = get_cfg_default()
    validate_cfg(cfg)
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
    with pytest.raises(ConfigError, match=match):
        validate_cfg(cfg)


def test_set_random_seed_zero_is_honoured():
    import random

    import numpy as np
    import torch

    set_random_seed(0)
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_random_seed(0)
    b = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    set_random_seed(1)
    c = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    assert a == b and a != c
