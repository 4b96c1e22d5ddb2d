"""PLOT's local image features: ``CLIP.encode_image_tokens`` against ``encode_image`` (token 0, bit for bit) and the
open_clip oracle (every token), for the ResNet and ViT towers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.tiny_clip import TINY_RESNET, TINY_VIT, tiny_clip


def _images(resolution: int, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, resolution, resolution, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_token_zero_is_encode_image_exactly(resnet):
    model = tiny_clip(seed=2, resnet=resnet)
    sizes = TINY_RESNET if resnet else TINY_VIT
    images = _images(sizes["image_resolution"])
    with torch.no_grad():
        tokens = model.encode_image_tokens(images)
        pooled = model.encode_image(images)
    grid = sizes["image_resolution"] // (32 if resnet else sizes["vision_patch_size"])
    assert tokens.shape == (3, grid * grid + 1, sizes["embed_dim"])
    assert torch.equal(tokens[:, 0], pooled)


def test_vit_visual_prompts_are_left_out_of_the_tokens():
    model = tiny_clip(seed=2)
    images = _images(32, 2)
    prompts = torch.randn(3, 64)
    with torch.no_grad():
        tokens = model.encode_image_tokens(images, prompts=prompts)
        assert tokens.shape == (2, 17, TINY_VIT["embed_dim"])
        assert torch.equal(tokens[:, 0], model.encode_image(images, prompts=prompts))
        assert not torch.allclose(tokens, model.encode_image_tokens(images))  # the prompts act on every token


def test_resnet_tokens_refuse_visual_prompts():
    model = tiny_clip(seed=2, resnet=True)
    with pytest.raises(ValueError, match="ViT"):
        model.encode_image_tokens(_images(64, 1), prompts=torch.randn(2, 16))


def _open_clip_tiny(open_clip, sizes: dict, **vision_extra):
    vision = dict(layers=sizes["vision_layers"], width=sizes["vision_width"], image_size=sizes["image_resolution"],
                  head_width=64, **vision_extra)
    if sizes["vision_patch_size"]:
        vision["patch_size"] = sizes["vision_patch_size"]
    text = dict(context_length=77, vocab_size=49408, width=sizes["transformer_width"],
                heads=sizes["transformer_heads"], layers=sizes["transformer_layers"])
    return open_clip.model.CLIP(sizes["embed_dim"], vision, text, quick_gelu=True).eval()


def test_vit_tokens_match_open_clip_output_tokens():
    open_clip = pytest.importorskip("open_clip")
    ours = tiny_clip(seed=3)
    oracle = _open_clip_tiny(open_clip, TINY_VIT, output_tokens=True)
    oracle.load_state_dict(ours.state_dict(), strict=False)
    images = _images(32)
    with torch.no_grad():
        pooled, tokens = oracle.visual(images)  # tokens after ln_post, before proj
        expected = torch.cat([pooled.unsqueeze(1), tokens @ oracle.visual.proj], dim=1)
        got = ours.encode_image_tokens(images)
    assert (got - expected).abs().max().item() < 1e-5


def test_resnet_tokens_match_open_clip_attention_pool_with_every_query():
    open_clip = pytest.importorskip("open_clip")
    ours = tiny_clip(seed=3, resnet=True)
    oracle = _open_clip_tiny(open_clip, TINY_RESNET)
    oracle.load_state_dict(ours.state_dict(), strict=False)
    images = _images(64)
    v = oracle.visual
    with torch.no_grad():
        x = v.layer4(v.layer3(v.layer2(v.layer1(v.stem(images)))))
        pool = v.attnpool
        # open_clip's pool with torch's multi-head attention, keeping every token (queries from all tokens)
        seq = x.flatten(2).permute(2, 0, 1)  # [HW, B, C]
        seq = torch.cat([seq.mean(dim=0, keepdim=True), seq], dim=0) + pool.positional_embedding[:, None, :]
        full, _ = F.multi_head_attention_forward(
            query=seq, key=seq, value=seq, embed_dim_to_check=seq.shape[-1], num_heads=pool.num_heads,
            q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
            in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0, out_proj_weight=pool.c_proj.weight,
            out_proj_bias=pool.c_proj.bias, use_separate_proj_weight=True, training=False, need_weights=False)
        expected = full.permute(1, 0, 2)  # [B, HW+1, D]
        got = ours.encode_image_tokens(images)
        assert (got[:, 0] - oracle.encode_image(images)).abs().max().item() < 1e-5
    assert got.shape == expected.shape == (3, 5, TINY_RESNET["embed_dim"])
    assert (got - expected).abs().max().item() < 1e-5
