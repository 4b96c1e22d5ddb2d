"""TinySynth: the pretraining script (quick mode) and the committed checkpoint."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT = os.path.join(ROOT, "clip", "weights", "TinySynth.pt")
MAX_BYTES = 16 * 2**20


def _pretrain_module():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import pretrain_tiny_clip
    finally:
        sys.path.pop(0)
    return pretrain_tiny_clip


def test_quick_pretraining_writes_a_loadable_checkpoint(tmp_path):
    from clip import clip

    pretrain = _pretrain_module()
    out = tmp_path / "tiny.pt"
    metrics = pretrain.main(["--quick", "--output", str(out), "--threads", "1", "--no-progress"])
    assert np.isfinite(metrics["loss"])
    sd = torch.load(out, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    model = clip.build_model(sd).float()
    assert set(sd) == set(model.state_dict())
    with torch.no_grad():
        image = model.encode_image(torch.randn(2, 3, 32, 32))
        text = model.encode_text(clip.tokenize(["a photo of a red circle.", "a blue star."]))
    assert image.shape == text.shape == (2, 32)
    assert torch.isfinite(image).all() and torch.isfinite(text).all()


def test_quick_pretraining_is_deterministic(tmp_path):
    pretrain = _pretrain_module()
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    pretrain.main(["--quick", "--output", str(a), "--threads", "1", "--no-progress", "--seed", "3"])
    pretrain.main(["--quick", "--output", str(b), "--threads", "1", "--no-progress", "--seed", "3"])
    sa = torch.load(a, weights_only=True)
    sb = torch.load(b, weights_only=True)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_committed_checkpoint_exists_and_is_small():
    assert os.path.isfile(CHECKPOINT), f"missing {CHECKPOINT} (run tools/pretrain_tiny_clip.py)"
    assert os.path.getsize(CHECKPOINT) <= MAX_BYTES


@pytest.fixture(scope="module")
def tiny_clip():
    from clip import clip

    return clip.load_clip("TinySynth", "fp32", "cpu")


def test_committed_checkpoint_loads_through_load_clip(tiny_clip):
    from clip import clip

    assert tiny_clip.dtype == torch.float32
    assert tiny_clip.visual.input_resolution == 32
    assert tiny_clip.positional_embedding.shape[0] == 77
    assert tiny_clip.token_embedding.weight.shape[0] == 49408
    sd = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(sd) == set(clip.build_model(sd).state_dict())


def test_committed_checkpoint_zero_shot_beats_chance(tiny_clip):
    """Zero-shot on freshly rendered SynthShapes images (5 per class, benchmark lighting): at least twice chance."""
    from clip import clip
    from datasets import synthgen

    pretrain = _pretrain_module()
    images, labels = pretrain.make_zero_shot_set(seed=123, per_class=5, image_size=32, lighting="dusk")
    names = [f"{c} {s}" for c, s in synthgen.SYNTH_SHAPES_CLASSES]
    with torch.no_grad():
        text = F.normalize(tiny_clip.encode_text(clip.tokenize([f"a photo of a {n}." for n in names])), dim=-1)
        feats = F.normalize(tiny_clip.encode_image(images), dim=-1)
    acc = ((feats @ text.t()).argmax(1) == labels).float().mean().item()
    assert acc >= 2 / len(names), f"zero-shot accuracy {acc:.3f} is below twice chance"


def test_evaluate_checkpoint_runs(tmp_path):
    """The checkpoint check used for docs/EMBEDDED_DEFAULT.md runs end to end (tiny settings)."""
    pretrain = _pretrain_module()
    results = pretrain.evaluate_checkpoint(CHECKPOINT, str(tmp_path), shots=1, epochs=1, n_ctx=4, log=False)
    assert set(results) == {"zero_shot", "coop", "base2new"}
    assert results["zero_shot"]["all"] >= 100 * 2 / 20
    assert all(np.isfinite(v) for group in results.values() for v in group.values())
