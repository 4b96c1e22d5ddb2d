"""Canonical config nodes filled from the reference spellings by source (not by value), and the two bugs of the
value heuristics this replaced."""
from __future__ import annotations

import os

import pytest

from dassl.config.setup import parse_args, setup_cfg
from dassl.utils.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg_of(tmp_path, trainer, *files, opts=()):
    args = ["--trainer", trainer]
    for i, text in enumerate(files):
        path = tmp_path / f"f{i}.yaml"
        path.write_text(text)
        args += ["--config-file", str(path)]
    return setup_cfg(parse_args(args + list(opts)))


def test_explicit_alias_equal_to_the_default_is_not_ignored(tmp_path):
    """Bug 1: TRAINER.CoOp.N_CTX 16 (= the default) on the command line beats TRAINER.COOP.N_CTX 4 in a YAML."""
    cfg = cfg_of(tmp_path, "CoOp", "TRAINER:\n  COOP:\n    N_CTX: 4\n", opts=["TRAINER.CoOp.N_CTX", "16"])
    assert cfg.MODEL.PROMPT_LEARNER.N_CTX == 16
    cfg = cfg_of(tmp_path, "CoOp", "TRAINER:\n  COOP:\n    N_CTX: 4\n")
    assert cfg.MODEL.PROMPT_LEARNER.N_CTX == 4


def test_explicit_nt_two_is_not_unset(tmp_path):
    """Bug 2: an explicit TRAINER.CoOpNemesis.NT two (the default) beats an earlier REGULARISER.NEMESIS.NT inf."""
    cfg = cfg_of(tmp_path, "CoOpNemesis", "REGULARISER:\n  NEMESIS:\n    NT: inf\n    A: 1.0\n    BETA: 1.0\n",
                 opts=["TRAINER.CoOpNemesis.NT", "two"])
    assert cfg.REGULARISER.NEMESIS.NT == "two"
    cfg = cfg_of(tmp_path, "CoOpNemesis", "REGULARISER:\n  NEMESIS:\n    NT: inf\n    A: 1.0\n    BETA: 1.0\n")
    assert cfg.REGULARISER.NEMESIS.NT == "inf"


def test_later_source_wins_between_spellings(tmp_path):
    early = "TRAINER:\n  CoOp:\n    N_CTX: 2\n"
    late = "MODEL:\n  PROMPT_LEARNER:\n    N_CTX: 3\n"
    assert cfg_of(tmp_path, "CoOp", early, late).MODEL.PROMPT_LEARNER.N_CTX == 3
    assert cfg_of(tmp_path, "CoOp", late, early).MODEL.PROMPT_LEARNER.N_CTX == 2
    # the command line beats every YAML
    assert cfg_of(tmp_path, "CoOp", late, opts=["TRAINER.COOP.N_CTX", "5"]).MODEL.PROMPT_LEARNER.N_CTX == 5
    # a default never beats a written value: REGULARISER.KGCOOP.W from an overlay, TRAINER.COOP.W unwritten
    cfg = cfg_of(tmp_path, "KgCoOp", "REGULARISER:\n  KGCOOP:\n    W: 8.0\n")
    assert cfg.REGULARISER.KGCOOP.W == 8.0
    cfg = cfg_of(tmp_path, "KgCoOp", "REGULARISER:\n  KGCOOP:\n    W: 8.0\n", opts=["TRAINER.COOP.W", "2.0"])
    assert cfg.REGULARISER.KGCOOP.W == 2.0


def test_one_source_two_spellings_different_values_is_an_error(tmp_path):
    both = "TRAINER:\n  COOP:\n    N_CTX: 4\n  CoOp:\n    N_CTX: 8\n"
    with pytest.raises(ConfigError, match=r"TRAINER\.COOP\.N_CTX.*TRAINER\.CoOp\.N_CTX"):
        cfg_of(tmp_path, "CoOp", both)
    with pytest.raises(ConfigError, match="command-line opts"):
        cfg_of(tmp_path, "CoOp", opts=["TRAINER.COOP.N_CTX", "4", "MODEL.PROMPT_LEARNER.N_CTX", "8"])
    same = "TRAINER:\n  COOP:\n    N_CTX: 4\n  CoOp:\n    N_CTX: 4\n"
    assert cfg_of(tmp_path, "CoOp", same).MODEL.PROMPT_LEARNER.N_CTX == 4


def test_spellings_are_per_trainer(tmp_path):
    """TRAINER.COCOOP is CoCoOp's node; CoOp ignores it (and CoCoOp ignores TRAINER.COOP), as the references."""
    text = "TRAINER:\n  COOP:\n    N_CTX: 4\n  COCOOP:\n    N_CTX: 8\n"
    assert cfg_of(tmp_path, "CoOp", text).MODEL.PROMPT_LEARNER.N_CTX == 4
    assert cfg_of(tmp_path, "CoCoOp", text).MODEL.PROMPT_LEARNER.N_CTX == 8
    cfg = cfg_of(tmp_path, "ZeroshotCLIP2")
    assert cfg.MODEL.PROMPT_LEARNER.NAME == "HandcraftedPrompts" and cfg.MODEL.PROMPT_LEARNER.ENSEMBLE is True


def test_errors_name_the_key_the_user_wrote(tmp_path):
    from dassl.engine.preflight import preflight

    cfg = cfg_of(tmp_path, "CoOp", opts=["TRAINER.COOP.CLASS_TOKEN_POSITION", "sideways"])
    with pytest.raises(ConfigError, match=r"^TRAINER\.COOP\.CLASS_TOKEN_POSITION \(= MODEL\.PROMPT_LEARNER\."):
        preflight(cfg)
    cfg = cfg_of(tmp_path, "CoOpNemesis")
    with pytest.raises(ConfigError, match=r"REGULARISER\.NEMESIS\.A \(or TRAINER\.CoOpNemesis\.A\)"):
        preflight(cfg)
    cfg = cfg_of(tmp_path, "MaPLe", opts=["TRAINER.MAPLE.PROMPT_DEPTH", "0"])
    with pytest.raises(ConfigError, match=r"TRAINER\.MAPLE\.PROMPT_DEPTH \(= MODEL\.PROMPT_LEARNER\.PROMPT_DEPTH\)"):
        preflight(cfg)


def test_learner_is_chosen_from_the_config(tmp_path):
    cfg = cfg_of(tmp_path, "CoOp", opts=["MODEL.PROMPT_LEARNER.NAME", "CoCoOpPromptLearner"])
    assert cfg.MODEL.PROMPT_LEARNER.NAME == "CoCoOpPromptLearner"
    with pytest.raises(ConfigError, match="PROMPT_LEARNER registry"):
        from dassl.engine.preflight import preflight

        preflight(cfg_of(tmp_path, "CoOp", opts=["MODEL.PROMPT_LEARNER.NAME", "Nope"]))
