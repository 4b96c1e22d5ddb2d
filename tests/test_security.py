"""Loading a file never runs code from it (issue 10).

Malicious TorchScript archives (a ``__setstate__`` that writes a marker file through ``torch.from_file(...,
shared=True)``) and malicious pickles are placed at every path the code reads a user-given checkpoint from:
eval-only with ``--load-epoch N`` / ``-1`` / without (``model-best.pth.tar``), re-running into a folder, ``--resume``,
``model-best`` during resume, ``MODEL.BACKBONE.NAME``, and ``tools/crt_sweep.py``. The marker must never appear and
the run must stop with one ``error:`` line (exit 2). The archive is first shown to be armed: ``torch.jit.load`` (and
``torch.load(weights_only=False)``) does write the marker. OpenAI-layout archives still load, as data, to exactly the
weights ``torch.jit.load`` gives, and ``.py`` config files are refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile

import pytest
import torch

import train
from dassl.utils import load_checkpoint, save_checkpoint
from dassl.utils.errors import CorruptCheckpointError, UnsafeFileError
from dassl.utils.logger import close_logger
from tests.helpers.tiny_clip import tiny_clip, write_tiny_weights
from tests.helpers.trainer_fixtures import tiny_eurosat_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASET_YAML = os.path.join(ROOT, "configs", "datasets", "eurosat.yaml")
PAYLOAD = b"pwned"


# ---------------------------------------------------------------------------------------------------------------------
# Malicious files
# ---------------------------------------------------------------------------------------------------------------------


class _EvilModule(torch.nn.Module):
    """Scripted module whose ``__setstate__`` (run by ``torch.jit.load``) writes ``PAYLOAD`` to ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(4, 64))
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def __getstate__(self) -> tuple[str, torch.Tensor, bool]:
        return (self.marker, self.weight, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, torch.Tensor, bool]) -> None:
        self.marker = state[0]
        self.weight = state[1]
        self.training = state[2]
        out = torch.from_file(state[0], True, 5, dtype=torch.uint8)  # shared=True: creates and writes the file
        out.copy_(torch.tensor([112, 119, 110, 101, 100], dtype=torch.uint8))
        if int(out.sum()) < 0:  # keeps the write from being optimised away
            print("unreachable")


def write_evil_archive(path: str, marker: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_EvilModule(marker)), path)
    return path


def _write_marker(path: str) -> int:
    with open(path, "wb") as f:
        f.write(PAYLOAD)
    return 0


class _EvilCall:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_write_marker, (self.marker,))


class _EvilSystem:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_evil_pickle(path: str, marker: str, kind: str) -> str:
    """A checkpoint-shaped pickle whose weights entry is a payload (legacy format too, not only zip)."""
    payload = _EvilCall(marker) if kind == "call" else _EvilSystem(marker)
    state = {"state_dict": {"ctx": payload}, "epoch": 2, "optimizer": None, "scheduler": None, "val_result": None}
    torch.save(state, path, _use_new_zipfile_serialization=kind != "system")
    return path


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    d = tmp_path_factory.mktemp("evil")
    marker = str(d / "MARKER")
    files = {
        "archive": write_evil_archive(str(d / "evil_archive.pt"), marker),
        "pickle_call": write_evil_pickle(str(d / "evil_call.pt"), marker, "call"),
        "pickle_system": write_evil_pickle(str(d / "evil_system.pt"), marker, "system"),
    }
    return {"dir": d, "marker": marker, **files}


@pytest.fixture
def marker(evil):
    if os.path.exists(evil["marker"]):
        os.remove(evil["marker"])
    yield evil["marker"]
    assert not os.path.exists(evil["marker"]), "the payload ran"


def test_the_malicious_files_are_armed(evil, marker):
    """Without our loaders the payloads do run (so the tests below can fail)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(evil["archive"])
    assert open(marker, "rb").read() == PAYLOAD
    os.remove(marker)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.load(evil["archive"], weights_only=False)  # torch.load dispatches archives to torch.jit.load
    assert open(marker, "rb").read() == PAYLOAD
    os.remove(marker)
    for kind in ("pickle_call", "pickle_system"):
        torch.load(evil[kind], weights_only=False)
        assert os.path.exists(marker)
        os.remove(marker)


# ---------------------------------------------------------------------------------------------------------------------
# load_checkpoint itself
# ---------------------------------------------------------------------------------------------------------------------


def test_load_checkpoint_refuses_archives_before_reading_them(evil, marker, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("nothing in a TorchScript archive may be unpickled or loaded")

    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(torch.jit, "load", boom)
    with pytest.raises(UnsafeFileError, match="is a TorchScript archive \\(code\\), not a checkpoint; refused"):
        load_checkpoint(evil["archive"])
    # also an archive in OpenAI's layout (harmless, but still not a checkpoint) and one under another folder name
    ok = write_tiny_weights(tmp_path / "clip.pt", torchscript=True)
    with pytest.raises(UnsafeFileError, match="clip.pt is a TorchScript archive"):
        load_checkpoint(ok)


def test_load_checkpoint_pickles_and_damaged_files(evil, marker, tmp_path):
    for kind in ("pickle_call", "pickle_system"):
        with pytest.raises(CorruptCheckpointError, match="holds a pickled object .* among its weights.*not executed"):
            load_checkpoint(evil[kind])
    good = save_checkpoint({"state_dict": {"ctx": torch.randn(4, 64)}, "epoch": 1}, str(tmp_path / "run"))
    data = open(good, "rb").read()
    cases = {"zero.pth": b"", "cut.pth": data[: len(data) // 2], "random.pth": os.urandom(4096),
             "text.pth": b"hello world\n", "zipjunk.pth": b"PK\x03\x04" + os.urandom(200)}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CorruptCheckpointError, match=name) as info:
            load_checkpoint(str(tmp_path / name))
        assert "empty" in str(info.value) or "truncated or not a PyTorch checkpoint" in str(info.value)
    with pytest.raises(CorruptCheckpointError, match="not a file"):
        load_checkpoint(str(tmp_path))
    assert torch.equal(load_checkpoint(good)["state_dict"]["ctx"], torch.load(good, weights_only=True)["state_dict"]["ctx"])


def test_torchscript_dispatch_cannot_be_reached(evil, marker, monkeypatch):
    """Even if the entry check were fooled, torch.load's TorchScript dispatch in the legacy path raises."""
    import dassl.utils.torchtools as tt

    monkeypatch.setattr(tt, "_is_torchscript_bytes", lambda data: False)
    with pytest.raises(UnsafeFileError, match="TorchScript archive"):
        load_checkpoint(evil["archive"])
    assert torch.jit.load is not None and torch.jit.load.__name__ == "load"  # restored


# ---------------------------------------------------------------------------------------------------------------------
# Every path a run reads a checkpoint from
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return tiny_eurosat_env(tmp_path_factory.mktemp("security"))


@pytest.fixture(autouse=True)
def _close_logger():
    yield
    close_logger()


def _argv(env, out, *extra, trainer="CoOp"):
    return ["--root", env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file", DATASET_YAML,
            "--config-file", env["cfg"], "--output-dir", str(out), *extra, f"TRAINER.{trainer}.N_CTX", "4"]


def _genuine(path: str, epoch: int = 1) -> str:
    return save_checkpoint({"state_dict": {"ctx": torch.randn(4, 64)}, "epoch": epoch, "optimizer": None,
                            "scheduler": None, "val_result": 50.0}, os.path.dirname(path), model_name=os.path.basename(path))


def _place(src: str, dst: str) -> str:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.write(fin.read())
    return dst


def _layout(place: str, base, src: str) -> tuple[list[str], str]:
    """Put the malicious file ``src`` where ``place`` reads it under ``base``: (extra argv, planted path)."""
    run = base / "run"
    learner = run / "prompt_learner"
    if place == "eval_epoch":
        return ["--eval-only", "--model-dir", str(run), "--load-epoch", "2"], _place(src, str(learner / "model.pth.tar-2"))
    if place == "eval_latest":
        _genuine(str(learner / "model.pth.tar-1"))
        return ["--eval-only", "--model-dir", str(run), "--load-epoch", "-1"], _place(src, str(learner / "model.pth.tar-2"))
    if place == "eval_best":
        return ["--eval-only", "--model-dir", str(run)], _place(src, str(learner / "model-best.pth.tar"))
    if place in ("rerun", "resume_flag"):
        planted = _place(src, str(learner / "model.pth.tar-1"))
        (learner / "checkpoint").write_text("model.pth.tar-1\n")
        return ([] if place == "rerun" else ["--resume", str(run)]), planted
    if place == "best_during_resume":
        _genuine(str(learner / "model.pth.tar-1"))
        return [], _place(src, str(learner / "model-best.pth.tar"))
    if place == "backbone":
        planted = _place(src, str(base / "weights" / "clip.pt"))
        return ["MODEL.BACKBONE.NAME", planted], planted
    raise AssertionError(place)


PLACES = ["eval_epoch", "eval_latest", "eval_best", "rerun", "resume_flag", "best_during_resume", "backbone"]
KINDS = ["archive", "pickle_call", "pickle_system"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("place", PLACES)
def test_malicious_file_at_every_path(env, evil, marker, tmp_path, capsys, place, kind):
    extra, planted = _layout(place, tmp_path, evil[kind])
    out = tmp_path / "run" if place in ("rerun", "best_during_resume") else tmp_path / "out"
    rc = train.cli(_argv(env, out, *extra))
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error: ")]
    assert rc == 2
    assert len(err) == 1 and planted in err[0], err
    if place == "backbone":  # CLIP weights may be archives: read as data, then refused as not a CLIP
        assert "CLIP" in err[0] or "TorchScript" in err[0] or "weights" in err[0], err[0]
    elif kind == "archive":
        assert "is a TorchScript archive (code), not a checkpoint; refused because loading it would run its code" in err[0]
    else:
        assert "pickled object" in err[0] and "not executed" in err[0]


def test_eval_only_subprocess_exits_2(env, evil, marker, tmp_path):
    extra, planted = _layout("eval_epoch", tmp_path, evil["archive"])
    cmd = [sys.executable, os.path.join(ROOT, "train.py"), *_argv(env, tmp_path / "out", *extra)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"error: {planted} is a TorchScript archive (code), not a checkpoint" in proc.stderr


@pytest.mark.parametrize("kind", ["archive", "pickle_call"])
def test_crt_sweep(env, evil, marker, tmp_path, kind):
    from tools import crt_sweep

    run = tmp_path / "run"
    planted = _place(evil[kind], str(run / "prompt_learner" / "model.pth.tar-2"))
    argv = ["--root", env["data"], "--dataset-config-file", DATASET_YAML, "--config-file", env["cfg"],
            "--model-dir", str(run), "--load-epoch", "2", "--output-base", str(tmp_path / "sweep"), "--seeds", "1",
            "--types", "original", "--opts", "TRAINER.CoOpCRT.N_CTX", "4"]
    error = UnsafeFileError if kind == "archive" else CorruptCheckpointError
    with pytest.raises(error, match=planted):
        crt_sweep.run(argv)


# ---------------------------------------------------------------------------------------------------------------------
# CLIP archives: read as data, same weights and features as torch.jit.load
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_openai_layout_archive_matches_jit_load(tmp_path, monkeypatch, resnet):
    import clip
    from clip.archive import read_torchscript_state_dict

    path = write_tiny_weights(tmp_path / "w.pt", resnet=resnet, torchscript=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.jit.load(path, map_location="cpu").state_dict()
    ours = read_torchscript_state_dict(path)
    assert list(ours) == list(ref)
    for k, v in ref.items():
        assert ours[k].dtype == v.dtype and ours[k].shape == v.shape and ours[k].stride() == v.stride(), k
        assert torch.equal(ours[k], v), k
        assert not ours[k].requires_grad

    def no_jit(*args, **kwargs):
        raise AssertionError("torch.jit.load must not be used on weights files")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    sd = clip.load_state_dict(path)
    assert set(sd) == set(ref) - {"input_resolution", "context_length", "vocab_size"}
    model = clip.load_clip(path, precision="fp32")
    expected = tiny_clip(resnet=resnet)
    clip.convert_weights(expected)
    expected.float().eval()
    size = expected.visual.input_resolution
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    text = clip.tokenize(["a photo of a cat", "a dog"])
    with torch.no_grad():
        assert torch.equal(model.encode_image(images), expected.encode_image(images))
        assert torch.equal(model.encode_text(text), expected.encode_text(text))


def test_malicious_archive_as_clip_weights_runs_nothing(evil, marker, monkeypatch):
    import clip
    from clip.archive import read_torchscript_state_dict

    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: (_ for _ in ()).throw(AssertionError("jit.load used")))
    assert set(read_torchscript_state_dict(evil["archive"])) <= {"weight"}
    with pytest.raises(clip.CorruptWeightsError):
        clip.load_clip(evil["archive"])


def test_archive_reader_refuses_foreign_globals(tmp_path):
    """Only tensor-rebuilding globals and inert TorchScript holders: anything else in data.pkl is refused."""
    import pickle

    from clip import CorruptWeightsError
    from clip.archive import read_torchscript_state_dict

    src = write_tiny_weights(tmp_path / "w.pt", torchscript=True)
    bad = tmp_path / "bad.pt"
    marker = tmp_path / "m"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/data.pkl"):
                data = pickle.dumps(_EvilSystem(str(marker)), protocol=2)
            zout.writestr(info, data)
    with pytest.raises(CorruptWeightsError, match="posix.system|os.system|not allowed"):
        read_torchscript_state_dict(str(bad))
    assert not marker.exists()
    for name, content in {"zero.pt": b"", "cut.pt": open(src, "rb").read()[:5000]}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CorruptWeightsError, match=name):
            import clip

            clip.load_state_dict(str(tmp_path / name))


# ---------------------------------------------------------------------------------------------------------------------
# Config files are data
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--config-file", "--dataset-config-file"])
def test_python_config_is_refused(tmp_path, capsys, flag):
    marker = tmp_path / "config_ran"
    py = tmp_path / "evil.py"
    py.write_text(f"open({str(marker)!r}, 'w').write('x')\ncfg = {{}}\n")
    rc = train.cli(["--trainer", "CoOp", flag, str(py), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not marker.exists()
    assert err[-1].startswith(f"error: {py} ({flag}) is not a YAML file"), err
    assert not (tmp_path / "out").exists()
