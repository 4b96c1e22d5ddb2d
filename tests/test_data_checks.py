"""Issue 12, bad data and cache hygiene: unreadable images (named with their split, exit 2, checkpoints kept,
``DATASET.SKIP_BAD_IMAGES``), split-file labels, the few-shot cache's RNG neutrality, evaluations that never write a
cache, caches outside the current root re-rooted, non-finite backbones and losses."""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil

import pytest
import torch

import datasets  # noqa: F401  (registers the readers)
import train
from dassl.data.datasets import build_dataset
from dassl.utils.errors import UsageError
from datasets.utils import DataFormatError, read_split
from tests.helpers.fake_datasets import make_cfg, make_json_dataset
from tests.helpers.trainer_fixtures import tiny_eurosat_env
from tests.test_preflight_checks import fake_run, tree_hashes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DS = os.path.join(ROOT, "configs", "datasets")


@pytest.fixture(scope="module")
def base_env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("data_checks"))


@pytest.fixture
def env(base_env, tmp_path):
    """A private copy of the generated EuroSAT (tests damage images and write caches)."""
    data = tmp_path / "data"
    shutil.copytree(base_env["data"], data)
    return dict(base_env, data=str(data), out=str(tmp_path / "out"))


def argv(env, *extra, trainer="CoOp"):
    return ["--root", env["data"], "--seed", "1", "--dataset-config-file", os.path.join(DS, "eurosat.yaml"),
            "--config-file", env["cfg"], "--output-dir", env["out"], "--trainer", trainer, *extra]


def error_lines(capsys):
    return [line for line in capsys.readouterr().err.strip().splitlines()
            if line.startswith("error") or "Traceback" in line]


def split_items(env, split):
    """The image paths of a split, in order (building the dataset writes its split JSON)."""
    cfg = make_cfg(env["data"], "EuroSAT")
    ds = build_dataset(cfg)
    return [item.impath for item in getattr(ds, split)]


def truncate_pixels(path):
    """Keep the header (PIL still opens the file) but cut the pixel data: fails only on decode."""
    from PIL import Image

    Image.new("RGB", (64, 64), (10, 200, 30)).save(path, format="PNG")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


# ------------------------------------------------------------------------------------------ unreadable images
def test_bad_image_caught_at_start_up_with_split_and_path(env, capsys):
    bad = split_items(env, "test")[3]
    open(bad, "wb").close()  # zero bytes
    rc = train.cli(argv(env, "OPTIM.MAX_EPOCH", "1"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert f"unreadable image in the test split: {bad}" in errs[0] and "DATASET.SKIP_BAD_IMAGES True" in errs[0]
    assert not os.path.isdir(os.path.join(env["out"], "prompt_learner"))  # stopped before any training


def test_skip_bad_images_counts_and_logs_paths(env, capsys):
    test_items = split_items(env, "test")
    bad = test_items[0]
    with open(bad, "wb") as f:
        f.write(os.urandom(300))
    rc = train.cli(argv(env, "--eval-only", "DATASET.SKIP_BAD_IMAGES", "True", trainer="ZeroshotCLIP"))
    assert rc == 0, error_lines(capsys)
    log = open(os.path.join(env["out"], "log.txt")).read()
    assert "skipped 1 unreadable image(s) of the test split" in log and bad in log
    assert json.load(open(os.path.join(env["out"], "results.json")))["total"] == len(test_items) - 1


def test_truncated_pixels_named_at_read_time_checkpoints_kept(env, capsys):
    """Header fine, pixel data cut: found when the test split is read after training; the run's checkpoint stays
    (resumable), exit 2, one line naming the file and its split."""
    bad = split_items(env, "test")[2]
    truncate_pixels(bad)
    rc = train.cli(argv(env, "OPTIM.MAX_EPOCH", "1"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert f"unreadable image in the test split: {bad}" in errs[0]
    assert os.path.isfile(os.path.join(env["out"], "prompt_learner", "model.pth.tar-1"))


def test_bad_image_in_loader_worker_is_one_line(env, capsys):
    bad = split_items(env, "test")[1]
    truncate_pixels(bad)
    rc = train.cli(argv(env, "--eval-only", "DATALOADER.NUM_WORKERS", "1", trainer="ZeroshotCLIP"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert errs[0].startswith(f"error: unreadable image in the test split: {bad} (") and "Traceback" not in errs[0]


# ------------------------------------------------------------------------------------------ split files
def _split_file(tmp_path, mutate):
    split = make_json_dataset(str(tmp_path), "oxford_pets", "images", "split_zhou_OxfordPets.json",
                              ["cat", "dog", "cow"], {"train": [2, 2, 2], "val": [1, 1, 1], "test": [1, 1, 1]})
    mutate(split)
    path = os.path.join(str(tmp_path), "oxford_pets", "split_zhou_OxfordPets.json")
    with open(path, "w") as f:
        json.dump(split, f)
    return path, os.path.join(str(tmp_path), "oxford_pets", "images")


@pytest.mark.parametrize("mutate,expected", [
    (lambda s: s["train"][0].__setitem__(1, "0"), "has label '0', not an integer"),
    (lambda s: s["test"][0].__setitem__(1, 1.5), "has label 1.5, not an integer"),
    (lambda s: [e.__setitem__(1, 7) for e in s["train"] if e[2] == "cow"], "train labels must be 0..2"),
    (lambda s: s["test"][2].__setitem__(2, "horse"), "class 'horse' (label 2), which has no training items"),
    (lambda s: s.__setitem__("train", [e for e in s["train"] if e[2] != "cow"]),
     "class 'cow' (label 2), which has no training items"),
    (lambda s: s["val"][0].__setitem__(1, 1), "has label 1 for class 'cat', whose training label is 0"),
    (lambda s: s["train"][0].__setitem__(2, "kitty"), "train label 0 is used for two class names"),
], ids=["string_label", "float_label", "label_out_of_range", "unknown_class", "class_without_train",
        "label_name_mismatch", "two_names"])
def test_bad_split_labels_are_one_clear_error(tmp_path, mutate, expected):
    path, images = _split_file(tmp_path, mutate)
    with pytest.raises(DataFormatError) as e:
        read_split(path, images)
    assert isinstance(e.value, UsageError) and path in str(e.value) and expected in str(e.value), str(e.value)


def test_good_split_still_reads(tmp_path):
    path, images = _split_file(tmp_path, lambda s: None)
    train_, val, test = read_split(path, images)
    assert [len(train_), len(val), len(test)] == [6, 3, 3]


# ------------------------------------------------------------------------------------------ few-shot cache
def _pets(tmp_path):
    make_json_dataset(str(tmp_path), "oxford_pets", "images", "split_zhou_OxfordPets.json",
                      ["a", "b", "c"], {"train": [6, 6, 6], "val": [4, 4, 4], "test": [2, 2, 2]})
    return os.path.join(str(tmp_path), "oxford_pets")


def _build(root, seed=1, shots=2):
    random.seed(seed)  # what set_random_seed does before the dataset is built
    ds = build_dataset(make_cfg(str(root), "OxfordPets", num_shots=shots, seed=seed))
    return ds, random.random()


def test_creating_the_cache_leaves_random_as_finding_it(tmp_path):
    """First run (creates the cache) == every later run (finds it): same subset AND same random stream after."""
    d = _pets(tmp_path)
    first, after_create = _build(tmp_path)
    assert os.path.isfile(os.path.join(d, "split_fewshot", "shot_2-seed_1.pkl"))
    second, after_find = _build(tmp_path)
    assert [i.impath for i in first.train_x] == [i.impath for i in second.train_x]
    assert after_create == after_find
    random.seed(1)
    assert after_find == random.random()  # loading consumes nothing: the seed's own stream continues


def test_pan_first_run_equals_cache_found_run(env, tmp_path):
    """PAN samples positions with random.sample: the run that creates the cache trains bit-identically to a rerun
    that finds it (NP random2: every sampled position is penalised, so the positions drive the result)."""
    opts = ["TRAINER.CoOpNemesis.A", "10.0", "TRAINER.CoOpNemesis.BETA", "0.0", "TRAINER.CoOpNemesis.NP", "random2",
            "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1"]
    cache = os.path.join(env["data"], "eurosat", "split_fewshot", "shot_1-seed_1.pkl")
    ctx = []
    for name in ("first", "rerun"):
        env["out"] = str(tmp_path / name)
        assert train.cli(argv(env, *opts, trainer="CoOpNemesis")) == 0
        assert os.path.isfile(cache)
        ckpt = torch.load(os.path.join(env["out"], "prompt_learner", "model.pth.tar-1"), weights_only=True)
        ctx.append(ckpt["state_dict"]["ctx"])
    assert torch.equal(ctx[0], ctx[1])


def test_evaluation_never_writes_a_fewshot_cache(env, tmp_path):
    run = fake_run(tmp_path / "trained", ctx=torch.zeros(16, 64))
    fewshot = os.path.join(env["data"], "eurosat", "split_fewshot")
    rc = train.cli(argv(env, "--eval-only", "--model-dir", run, "DATASET.NUM_SHOTS", "2"))
    assert rc == 0
    assert not os.path.isdir(fewshot) or os.listdir(fewshot) == []


def test_in_memory_subset_equals_the_training_cache(tmp_path):
    from dassl.data.cache_policy import set_fewshot_cache_writable

    d = _pets(tmp_path)
    set_fewshot_cache_writable(False)
    try:
        ev, _ = _build(tmp_path)
    finally:
        set_fewshot_cache_writable(True)
    assert not os.path.exists(os.path.join(d, "split_fewshot", "shot_2-seed_1.pkl"))
    tr, _ = _build(tmp_path)
    assert [i.impath for i in ev.train_x] == [i.impath for i in tr.train_x]


def test_cache_entries_outside_the_root_are_rerooted_even_if_old_copy_exists(tmp_path):
    old_root, new_root = tmp_path / "old", tmp_path / "new"
    _pets(old_root)
    first, _ = _build(old_root)
    shutil.copytree(old_root, new_root)  # a copied dataset; the old copy stays on disk
    copied, _ = _build(new_root)
    new_dir = os.path.join(str(new_root), "oxford_pets") + os.sep
    assert all(i.impath.startswith(new_dir) for i in copied.train_x + copied.val)
    assert [os.path.relpath(i.impath, new_root) for i in copied.train_x] == \
        [os.path.relpath(i.impath, old_root) for i in first.train_x]


# ------------------------------------------------------------------------------------------ non-finite numbers
def test_nan_backbone_is_an_error_not_chance(env, tmp_path, capsys):
    sd = torch.load(env["cfg"].replace("tiny.yaml", "clip/tiny.pt"), weights_only=True)
    key = next(k for k in sd if k.startswith("visual.") and sd[k].is_floating_point())
    sd[key] = sd[key].clone()
    sd[key].view(-1)[0] = float("inf")
    bad = str(tmp_path / "nan_clip.pt")
    torch.save(sd, bad)
    # a fresh folder: an existing one with another config is refused earlier (run-folder check), and the point
    # here is that a NaN backbone never produces a result at chance
    out = tmp_path / "fresh"
    env["out"] = str(out)
    rc = train.cli(argv(env, "--eval-only", "MODEL.BACKBONE.NAME", bad, trainer="ZeroshotCLIP"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1 and "NaN/Inf" in errs[0] and key in errs[0], errs
    assert not (out / "results.json").exists() and not (out / "run.json").exists()


def test_nan_loss_names_epoch_and_iteration_keeps_last_checkpoint(env, monkeypatch, capsys):
    from trainers.prompt_trainer import PromptTrainer

    real = PromptTrainer.loss_terms

    def poisoned(self, *a, **k):
        terms = real(self, *a, **k)
        if self.epoch == 1 and self.batch_idx == 2:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(PromptTrainer, "loss_terms", poisoned)
    rc = train.cli(argv(env, "TRAIN.CHECKPOINT_FREQ", "1"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert "epoch 2/2, iteration 3/5" in errs[0] and "NaN" in errs[0].replace("nan", "NaN")
    folder = os.path.join(env["out"], "prompt_learner")
    assert sorted(os.listdir(folder)) == ["checkpoint", "model.pth.tar-1"]
    assert open(os.path.join(folder, "checkpoint")).read().strip() == "model.pth.tar-1"


def test_prompt_too_long_for_a_class_name(env, capsys):
    rc = train.cli(argv(env, "TRAINER.COOP.N_CTX", "72"))
    errs = error_lines(capsys)
    assert rc == 2 and len(errs) == 1, errs
    assert "N_CTX = 72 is too large" in errs[0] and "77" in errs[0]


def test_log_names_the_device_and_has_no_bars(env, capsys):
    assert train.cli(argv(env, "--eval-only", trainer="ZeroshotCLIP")) == 0
    log = open(os.path.join(env["out"], "log.txt")).read()
    assert "Device: cpu (" in log
    err = capsys.readouterr().err
    assert "it/s" not in err and "\r" not in err and "it/s" not in log  # stderr is not a terminal here


def test_broken_stdout_still_writes_the_log(env):
    """``train.py ... | head -1``: the reader goes away; log.txt is still complete, stderr has no logging tracebacks."""
    import subprocess
    import sys

    cmd = " ".join([sys.executable, os.path.join(ROOT, "train.py"), *argv(env, "--eval-only", trainer="ZeroshotCLIP")])
    r = subprocess.run(["bash", "-c", f"{cmd} | head -1; exit ${{PIPESTATUS[0]}}"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "Logging error" not in r.stderr and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr
    assert "macro_f1" in open(os.path.join(env["out"], "log.txt")).read().splitlines()[-1]
