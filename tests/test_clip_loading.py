"""clip.clip: offline weight resolution, file formats, SHA-256 checks, errors, ``load`` and ``load_clip``."""
from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from types import SimpleNamespace

import pytest
import torch

import clip as clip_pkg
from clip import clip
from clip.errors import CorruptWeightsError, MissingWeightsError, UnknownModelError
from tests.helpers.tiny_clip import register_tiny_clip, tiny_state_dict, write_tiny_weights

TOKENS = clip.tokenize(["a photo of a dog.", "a cat"])


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    """An empty cache folder (via $CLIP_CACHE_DIR) and a fake official 'ViT-B/16' entry whose hash is settable."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("CLIP_CACHE_DIR", str(folder))
    monkeypatch.setitem(clip._MODELS, "ViT-B/16", f"https://example.invalid/clip/models/{'0' * 64}/ViT-B-16.pt")

    def set_hash(sha: str) -> None:
        monkeypatch.setitem(clip._MODELS, "ViT-B/16", f"https://example.invalid/clip/models/{sha}/ViT-B-16.pt")

    return SimpleNamespace(path=folder, set_hash=set_hash)


def test_public_api():
    assert clip_pkg.clip is clip
    for name in ("load", "tokenize", "available_models", "load_clip", "build_model", "MissingWeightsError",
                 "CorruptWeightsError", "register_local_model", "load_state_dict"):
        assert getattr(clip_pkg, name) is getattr(clip, name), name
    assert issubclass(MissingWeightsError, FileNotFoundError) and issubclass(CorruptWeightsError, RuntimeError)
    assert issubclass(UnknownModelError, RuntimeError) and issubclass(UnknownModelError, MissingWeightsError)
    official = ["RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"]
    assert list(clip._MODELS) == official
    assert clip.available_models()[: len(official)] == official and "TinySynth" in clip.available_models()
    url = clip._MODELS["ViT-B/16"]
    assert url == ("https://openaipublic.azureedge.net/clip/models/"
                   "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt")
    assert clip._MODELS["ViT-L/14@336px"].endswith("/ViT-L-14-336px.pt")
    assert clip._LOCAL_MODELS["TinySynth"] == os.path.join(os.path.dirname(clip.__file__), "weights", "TinySynth.pt")


def test_formats_load_identically(tmp_path):
    plain = write_tiny_weights(tmp_path / "plain.pt")
    wrapped = write_tiny_weights(tmp_path / "wrapped.pt", wrap=True)
    archive = write_tiny_weights(tmp_path / "archive.pt", torchscript=True)
    with zipfile.ZipFile(archive) as zf:  # really an OpenAI-style TorchScript archive
        assert any("/code/" in n for n in zf.namelist()) and any(n.endswith("constants.pkl") for n in zf.namelist())
    expected = tiny_state_dict()
    for path in (plain, wrapped, archive):
        sd = clip.load_state_dict(path)
        assert set(sd) == set(expected), path  # JIT metadata entries dropped
        for key, value in expected.items():
            assert torch.equal(sd[key], value) and sd[key].dtype == value.dtype, (path, key)
    outs = []
    for path in (plain, archive):
        model, preprocess = clip.load(path, device="cpu")
        assert model.dtype == torch.float32 and not model.training
        with torch.no_grad():
            outs.append(model.encode_text(TOKENS))
    assert torch.equal(outs[0], outs[1])


def test_jit_true_warns_and_returns_eager_model(tmp_path):
    path = write_tiny_weights(tmp_path / "w.pt")
    with pytest.warns(UserWarning, match="jit"):
        model, _ = clip.load(path, jit=True)
    assert isinstance(model, clip_pkg.CLIP)


def test_preprocess(tmp_path):
    from PIL import Image

    _, preprocess = clip.load(write_tiny_weights(tmp_path / "w.pt"))
    image = Image.new("L", (50, 40), color=128)
    x = preprocess(image)
    assert x.shape == (3, 32, 32)
    expected = (128 / 255 - torch.tensor([0.48145466, 0.4578275, 0.40821073])) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )
    assert torch.allclose(x[:, 16, 16], expected, atol=1e-2)


def test_missing_official_file_message(fake_cache):
    with pytest.raises(MissingWeightsError) as info:
        clip.load_state_dict("ViT-B/16")
    message = str(info.value)
    assert str(fake_cache.path / "ViT-B-16.pt") in message
    assert f"folder {fake_cache.path}" in message and "CLIP_CACHE_DIR" in message
    assert clip._MODELS["ViT-B/16"] in message
    # download_root overrides the environment.
    with pytest.raises(MissingWeightsError, match="elsewhere"):
        clip.load("ViT-B/16", download_root=str(fake_cache.path / "elsewhere"))


def test_default_cache_folder(monkeypatch):
    monkeypatch.delenv("CLIP_CACHE_DIR", raising=False)
    assert clip.cache_dir() == os.path.expanduser("~/.cache/clip")
    monkeypatch.setenv("CLIP_CACHE_DIR", "/some/where")
    assert clip.cache_dir() == "/some/where" and clip.cache_dir("/x") == "/x"


def test_official_name_verified_and_cached(fake_cache, monkeypatch):
    path = write_tiny_weights(fake_cache.path / "ViT-B-16.pt")
    fake_cache.set_hash(_sha(path))
    sd = clip.load_state_dict("ViT-B/16")
    assert torch.equal(sd["text_projection"], tiny_state_dict()["text_projection"])
    assert os.path.isfile(path + ".sha256.json")
    assert clip._download(clip._MODELS["ViT-B/16"]) == path  # OpenAI-compatible helper, offline
    # The verification is remembered (no re-hash) until the file changes.
    calls = []
    real_sha = clip._sha256
    monkeypatch.setattr(clip, "_sha256", lambda p: calls.append(p) or real_sha(p))
    clip.load_state_dict("ViT-B/16")
    assert calls == []
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    clip.load_state_dict("ViT-B/16")
    assert calls == [path]


def test_sha_mismatch(fake_cache):
    path = write_tiny_weights(fake_cache.path / "ViT-B-16.pt")
    good = _sha(path)
    fake_cache.set_hash("f" * 64)
    with pytest.raises(CorruptWeightsError) as info:
        clip.load_clip("ViT-B/16", precision="fp32")
    message = str(info.value)
    assert "f" * 64 in message and good in message and path in message and "example.invalid" in message
    # A stale sidecar for another hash does not hide the mismatch.
    fake_cache.set_hash(good)
    clip.load_state_dict("ViT-B/16")
    fake_cache.set_hash("e" * 64)
    with pytest.raises(CorruptWeightsError, match="SHA-256 mismatch"):
        clip.load_state_dict("ViT-B/16")


@pytest.mark.parametrize("torchscript", [False, True], ids=["state_dict", "torchscript"])
def test_truncated_file(tmp_path, fake_cache, torchscript):
    path = write_tiny_weights(tmp_path / "w.pt", torchscript=torchscript)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptWeightsError, match="cut.pt"):
        clip.load(str(cut))
    # Under an official name the SHA check catches it first.
    (fake_cache.path / "ViT-B-16.pt").write_bytes(data[: len(data) // 2])
    fake_cache.set_hash(hashlib.sha256(data).hexdigest())
    with pytest.raises(CorruptWeightsError, match="truncated or corrupt"):
        clip.load_clip("ViT-B/16")


def test_not_a_state_dict(tmp_path):
    torch.save({"a": 1}, tmp_path / "x.pt")
    with pytest.raises(CorruptWeightsError, match="state dict of tensors"):
        clip.load_state_dict(str(tmp_path / "x.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a pytorch file at all")
    with pytest.raises(CorruptWeightsError):
        clip.load_state_dict(str(tmp_path / "junk.pt"))
    sd = tiny_state_dict()
    del sd["visual.proj"]
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(CorruptWeightsError):
        clip.load_clip(str(tmp_path / "partial.pt"))


def test_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(UnknownModelError) as info:
        clip.load("ViT-Z/99")
    assert "ViT-B/16" in str(info.value) and "TinySynth" in str(info.value) and "ViT-Z/99" in str(info.value)
    with pytest.raises(MissingWeightsError, match="nope.pt"):
        clip.load_state_dict(str(tmp_path / "nope.pt"))


def test_local_models(tmp_path, monkeypatch):
    monkeypatch.setattr(clip, "_LOCAL_MODELS", dict(clip._LOCAL_MODELS))
    missing = tmp_path / "weights" / "TinySynth.pt"
    monkeypatch.setitem(clip._LOCAL_MODELS, "TinySynth", str(missing))
    with pytest.raises(MissingWeightsError, match=str(missing)):
        clip.load_clip("TinySynth")
    path = register_tiny_clip("MyTiny", tmp_path, seed=1)
    assert "MyTiny" in clip.available_models()
    model = clip.load_clip("MyTiny", precision="fp32")
    assert torch.equal(model.text_projection.half(), tiny_state_dict(seed=1)["text_projection"])
    # Local names come before official ones.
    clip.register_local_model("RN50", path)
    assert clip.load_state_dict("RN50")["visual.proj"].shape == (64, 32)


def test_load_clip_precision(tmp_path, monkeypatch, caplog):
    path = write_tiny_weights(tmp_path / "w.pt")
    monkeypatch.setattr(clip, "_warned_cpu_fp16", False)
    with caplog.at_level(logging.WARNING, logger="clip.clip"):
        first = clip.load_clip(path)  # fp16 requested on CPU
        second = clip.load_clip(path, precision="fp16", device=torch.device("cpu"))
    warnings = [r for r in caplog.records if "fp16" in r.getMessage()]
    assert len(warnings) == 1 and "slow" in warnings[0].getMessage()  # a speed warning, fp16 is honoured
    for model in (first, second):  # fp16 means fp16 on CPU too: OpenAI's half-precision layout
        assert model.dtype == torch.float16 and not model.training
        assert all(not p.requires_grad for p in model.parameters())
        assert model.ln_final.weight.dtype == torch.float32 and model.token_embedding.weight.dtype == torch.float32
    assert torch.equal(first.visual.conv1.weight, tiny_state_dict()["visual.conv1.weight"])
    for precision in ("fp32", "amp"):
        model = clip.load_clip(path, precision=precision)
        assert model.dtype == torch.float32 and not any(p.requires_grad for p in model.parameters())
        assert all(p.dtype == torch.float32 for p in model.parameters())
        # fp16 weights are the reference: fp32 models hold the fp16-rounded values.
        assert torch.equal(model.visual.conv1.weight, tiny_state_dict()["visual.conv1.weight"].float())
    # Off the CPU, fp16 stays fp16 (checked on the meta device; no GPU needed).
    meta = clip.load_clip(path, precision="fp16", device="meta")
    assert meta.dtype == torch.float16 and meta.ln_final.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        clip.load_clip(path, precision="bf16")
    with torch.no_grad():
        assert torch.equal(first.encode_text(TOKENS), second.encode_text(TOKENS))


def test_load_clip_draws_rng_like_build(tmp_path):
    path = write_tiny_weights(tmp_path / "w.pt")
    torch.manual_seed(0)
    clip.load_clip(path, precision="fp32")
    after = torch.rand(2)
    torch.manual_seed(0)
    assert not torch.equal(torch.rand(2), after)  # the random init ran (reference RNG side effect)
