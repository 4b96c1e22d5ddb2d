"""User-facing error paths of ``train.py``: bad input gives exactly one ``error: ...`` line on stderr naming the
problem, exit code 2, no traceback, and leaves what a finished run wrote in the output folder untouched."""
from __future__ import annotations

import os

import pytest
import torch

import train
from tests.helpers.trainer_fixtures import tiny_clip, tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = tiny_eurosat_env(tmp_path_factory.mktemp("user_errors"))
    env["resnet"] = str(env["base"] / "clip" / "resnet.pt")
    torch.save(tiny_clip(resnet=True).state_dict(), env["resnet"])
    (env["base"] / "empty_cache").mkdir()
    (env["base"] / "empty_model").mkdir()
    return env


# (id, argv after the common part; "{x}" is filled from env, expected substrings of the error line)
CASES = [
    ("missing_config", ["--trainer", "CoOp", "--config-file", "nonexistent.yaml"],
     ["config file not found: nonexistent.yaml"]),
    ("unknown_trainer", ["--trainer", "CoOpp"], ['"CoOpp" is not registered in the TRAINER registry', "CoOp"]),
    ("unknown_head", ["--trainer", "CoOp", "--head", "Foo"], ['"Foo" is not registered in the HEAD registry']),
    ("unknown_key", ["--trainer", "CoOp", "FOO.BAR", "1"], ["unknown config key FOO.BAR"]),
    ("int_for_float", ["--trainer", "CoOp", "OPTIM.LR", "1"], ["OPTIM.LR", "Type mismatch"]),
    ("odd_opts", ["--trainer", "CoOp", "OPTIM.LR"], ["KEY VALUE pairs"]),
    ("missing_dataset", ["--trainer", "CoOp", "--root", "{base}/nowhere", "--dataset-config-file",
                         os.path.join(DS, "oxford_pets.yaml")], ["dataset folder not found: {base}/nowhere/oxford_pets",
                                                                  "DATASETS.md#oxfordpets"]),
    ("missing_weights", ["--trainer", "CoOp", "--backbone", "RN50"], ["{base}/empty_cache/RN50.pt"]),
    ("missing_model_dir", ["--trainer", "CoOp", "--eval-only", "--model-dir", "/nonexistent/run"],
     ["model directory not found", "/nonexistent/run"]),
    ("empty_model_dir", ["--trainer", "CoOp", "--eval-only", "--model-dir", "{base}/empty_model"],
     ["{base}/empty_model/prompt_learner"]),
    ("nemesis_without_a", ["--trainer", "CoOpNemesis"], ["TRAINER.CoOpNemesis.A", "REGULARISER.NEMESIS.A"]),
    ("bad_class_token_position", ["--trainer", "CoOp", "TRAINER.COOP.CLASS_TOKEN_POSITION", "sideways"],
     ["TRAINER.COOP.CLASS_TOKEN_POSITION", "sideways"]),
    ("bad_subsample", ["--trainer", "CoOp", "DATASET.SUBSAMPLE_CLASSES", "half"],
     ["DATASET.SUBSAMPLE_CLASSES", "half"]),
    ("maple_resnet", ["--trainer", "MaPLe", "--backbone", "{resnet}"], ["MaPLe needs a ViT", "MODEL.BACKBONE.NAME"]),
]


def _fill(items, env):
    return [s.format(base=env["base"], resnet=env["resnet"]) for s in items]


@pytest.mark.parametrize("extra,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_one_error_line_exit_2(env, tmp_path, capsys, monkeypatch, extra, expected):
    monkeypatch.setenv("CLIP_CACHE_DIR", str(env["base"] / "empty_cache"))
    out = tmp_path / "finished_run"
    out.mkdir()
    kept = {"config.yaml": "SEED: 1\n", "results.json": '{"accuracy": 50.0}\n', "log.txt": "Elapsed: 1\n"}
    for name, text in kept.items():
        (out / name).write_text(text)
    argv = ["--root", env["data"], "--seed", "1", "--dataset-config-file", os.path.join(DS, "eurosat.yaml"),
            "--config-file", env["cfg"], "--output-dir", str(out), *_fill(extra, env)]
    rc = train.cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "Warning" not in line and not line.startswith("  ")]  # library warnings
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in _fill(expected, env):
        assert text in err[0], err[0]
    assert (out / "config.yaml").read_text() == kept["config.yaml"]
    assert (out / "results.json").read_text() == kept["results.json"]
    assert (out / "log.txt").read_text().startswith(kept["log.txt"])
