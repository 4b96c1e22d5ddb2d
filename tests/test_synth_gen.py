"""datasets.synthgen: deterministic rendering, captions, vocabulary, held-out pairs."""
from __future__ import annotations

import numpy as np
import pytest

from datasets import synthgen


def test_render_is_deterministic_and_well_formed():
    def draw(seed):
        rng = np.random.default_rng(seed)
        images, scenes = synthgen.render_batch(rng, 12, size=32)
        captions = [synthgen.caption_scene(s, rng) for s in scenes]
        return images, scenes, captions

    a, b, c = draw(3), draw(3), draw(4)
    assert a[0].shape == (12, 32, 32, 3) and a[0].dtype == np.uint8
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("shape", synthgen.SHAPES)
@pytest.mark.parametrize("texture", synthgen.TEXTURES)
def test_every_shape_and_texture_renders(shape, texture):
    rng = np.random.default_rng(0)
    scene = synthgen.Scene(shape, "red", texture, "large", "center", "white")
    img = synthgen.render_scene(scene, rng, size=32).astype(int)
    # the shape covers a fair part of the image and differs from the white background
    covered = (np.abs(img - 245).sum(-1) > 120).mean()
    assert 0.1 < covered < 0.9


def test_captions_fit_their_scene_and_use_the_vocabulary():
    rng = np.random.default_rng(1)
    vocab = set(synthgen.vocabulary())
    for _ in range(300):
        scene = synthgen.sample_scene(rng)
        text, mentioned = synthgen.caption_with_attributes(scene, rng)
        assert synthgen.caption_fits(mentioned, scene)
        assert "colour" in mentioned or "shape" in mentioned
        assert set(text.rstrip(".").split()) <= vocab, text


def test_vocabulary_is_plain_bpe_words():
    from clip import clip

    for word in synthgen.vocabulary():
        ids = clip.tokenize(word)[0]
        n = int((ids != 0).sum()) - 2  # minus SOT/EOT
        assert 1 <= n <= 2, (word, n)


def test_heldout_pairs_are_excluded_and_some_are_benchmark_classes():
    rng = np.random.default_rng(2)
    for _ in range(2000):
        s = synthgen.sample_scene(rng, exclude_pairs=synthgen.HELDOUT_PAIRS)
        assert (s.colour, s.shape) not in synthgen.HELDOUT_PAIRS
    classes = synthgen.SYNTH_SHAPES_CLASSES
    held = [pair in synthgen.HELDOUT_PAIRS for pair in classes]
    assert len(set(classes)) == len(classes) == 20
    assert 0 < sum(held[:10]) < 10 and 0 < sum(held[10:]) < 10  # in both the base and the new half


def test_lighting():
    scene = synthgen.Scene("star", "yellow", "plain", "large", "center", "blue")
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    studio = synthgen.render_scene(scene, rng_a, 32)
    dusk = synthgen.render_scene(scene, rng_b, 32, lighting="dusk")
    assert not np.array_equal(studio, dusk)
    assert dusk.mean() < studio.mean()  # dimmer
    assert dusk[..., 2].mean() < dusk[..., 0].mean()  # warm: less blue than red on average
    # "studio" returns the image as is and draws no random numbers (pretraining batches do not depend on it)
    image = np.full((4, 4, 3), 100, np.uint8)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert synthgen.apply_lighting(image, rng, "studio") is image
    assert rng.bit_generator.state == state
    with pytest.raises(ValueError):
        synthgen.apply_lighting(image, np.random.default_rng(0), "neon")
