"""clip.model: numerical parity with open_clip, size inference, RNG order, prompt-aware towers."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clip import clip
from clip.errors import CorruptWeightsError
from clip.model import CLIP, TextEncoder, build_clip_from_config, build_model, convert_weights, text_global_pool
from tests.helpers.tiny_clip import TINY_RESNET, TINY_VIT, tiny_clip, tiny_state_dict

SENTENCES = ["a photo of a dog.", "a bad photo of the Bugatti Veyron 16.4 Convertible 2009.", "x", "北京 😀 café"]


# --------------------------------------------------------------------------------------------------------------------
# Independent reference: sequence-first nn.MultiheadAttention with a materialised additive causal mask, full length.
# --------------------------------------------------------------------------------------------------------------------


def _ref_block(block, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x: [L, N, D] sequence-first."""
    h = block.ln_1(x)
    x = x + block.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
    return x + block.mlp(block.ln_2(x))


def _causal_mask(length: int) -> torch.Tensor:
    return torch.full((length, length), float("-inf")).triu_(1)


def ref_encode_prompts(model: CLIP, prompts: torch.Tensor, tokens: torch.Tensor, deep=None) -> torch.Tensor:
    x = (prompts + model.positional_embedding).permute(1, 0, 2)
    mask = _causal_mask(x.shape[0])
    for i, block in enumerate(model.transformer.resblocks):
        if deep is not None and 1 <= i <= len(deep) and deep[i - 1] is not None:
            p = deep[i - 1]
            p = p.unsqueeze(1).expand(-1, x.shape[1], -1) if p.dim() == 2 else p.permute(1, 0, 2)
            x = torch.cat([x[:1], p, x[1 + p.shape[0] :]])
        x = _ref_block(block, x, mask)
    x = model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ model.text_projection


def ref_encode_image(model: CLIP, image: torch.Tensor, prompts=None, deep=None) -> torch.Tensor:
    v = model.visual
    x = v.conv1(image).flatten(2).permute(0, 2, 1)
    x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], 1) + v.positional_embedding
    if prompts is not None:
        prompts = prompts.expand(x.shape[0], -1, -1) if prompts.dim() == 2 else prompts
        x = torch.cat([x, prompts], 1)
    x = v.ln_pre(x).permute(1, 0, 2)
    for i, block in enumerate(v.transformer.resblocks):
        if deep is not None and 1 <= i <= len(deep):
            p = deep[i - 1]
            x = torch.cat([x[: -p.shape[-2]], p.unsqueeze(1).expand(-1, x.shape[1], -1)])
        x = _ref_block(block, x, None)
    return v.ln_post(x[0]) @ v.proj


# --------------------------------------------------------------------------------------------------------------------
# Parity with open_clip (independent implementation of the same architecture)
# --------------------------------------------------------------------------------------------------------------------


def _open_clip_tiny(open_clip, sizes: dict):
    vision = dict(layers=sizes["vision_layers"], width=sizes["vision_width"], image_size=sizes["image_resolution"],
                  head_width=64)
    if sizes["vision_patch_size"]:
        vision["patch_size"] = sizes["vision_patch_size"]
    text = dict(context_length=77, vocab_size=49408, width=sizes["transformer_width"],
                heads=sizes["transformer_heads"], layers=sizes["transformer_layers"])
    return open_clip.model.CLIP(sizes["embed_dim"], vision, text, quick_gelu=True).eval()


def _openai_keys(sd: dict) -> dict:
    return {k: v for k, v in sd.items() if "attn_mask" not in k}


def _assert_same_features(ours: CLIP, oracle, resolution: int, atol: float) -> None:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, resolution, resolution, generator=g)
    text = clip.tokenize(SENTENCES)
    with torch.no_grad():
        assert (ours.encode_image(images) - oracle.encode_image(images)).abs().max().item() <= atol
        assert (ours.encode_text(text) - oracle.encode_text(text)).abs().max().item() <= atol


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_tiny_parity_with_open_clip_both_ways(tmp_path, resnet):
    open_clip = pytest.importorskip("open_clip")
    sizes = TINY_RESNET if resnet else TINY_VIT
    # ours -> open_clip
    ours = tiny_clip(seed=3, resnet=resnet)
    oracle = _open_clip_tiny(open_clip, sizes)
    oracle.load_state_dict(ours.state_dict(), strict=False)
    missing = set(_openai_keys(oracle.state_dict())) ^ set(ours.state_dict())
    assert not missing
    _assert_same_features(ours, oracle, sizes["image_resolution"], 1e-5)
    # open_clip -> file -> ours
    torch.manual_seed(4)
    oracle = _open_clip_tiny(open_clip, sizes)
    # fp16-representable values, so that the fp16 conversion inside build_model loses nothing.
    sd = {k: v.half().float() if v.is_floating_point() else v for k, v in _openai_keys(oracle.state_dict()).items()}
    oracle.load_state_dict(sd, strict=False)
    torch.save(sd, tmp_path / "oc.pt")
    ours, preprocess = clip.load(str(tmp_path / "oc.pt"), device="cpu")
    assert ours.dtype == torch.float32 and not ours.training
    assert ours.visual.input_resolution == sizes["image_resolution"]
    _assert_same_features(ours, oracle, sizes["image_resolution"], 1e-5)


@pytest.mark.parametrize(("arch", "layers"), [("RN50-quickgelu", (3, 4, 6, 3)), ("ViT-B-16-quickgelu", 12)])
def test_real_architecture_parity_with_open_clip(tmp_path, arch, layers):
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(0)
    oracle = open_clip.create_model(arch).eval()
    # The checkpoints hold fp16 weights: round once so that both models hold identical values.
    sd = {k: v.half().float() if v.is_floating_point() else v for k, v in _openai_keys(oracle.state_dict()).items()}
    oracle.load_state_dict(sd, strict=False)
    torch.save(sd, tmp_path / "w.pt")
    ours, _ = clip.load(str(tmp_path / "w.pt"), device="cpu")
    assert ours.visual.input_resolution == 224 and ours.context_length == 77 and ours.vocab_size == 49408
    assert ours.transformer.width == 512 and ours.transformer.layers == 12
    assert ours.text_projection.shape[1] == (1024 if isinstance(layers, tuple) else 512)
    if isinstance(layers, tuple):
        assert tuple(len(getattr(ours.visual, f"layer{i}")) for i in (1, 2, 3, 4)) == layers
        assert ours.visual.attnpool.num_heads == 32
    else:
        assert len(ours.visual.transformer.resblocks) == layers and ours.visual.conv1.kernel_size == (16, 16)
    _assert_same_features(ours, oracle, 224, 1e-4)


# --------------------------------------------------------------------------------------------------------------------
# build_model / convert_weights / RNG
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_build_model_infers_sizes_and_loads_fp16(resnet):
    sd = tiny_state_dict(seed=0, resnet=resnet)
    meta = {"input_resolution": torch.tensor(1), "context_length": torch.tensor(77), "vocab_size": torch.tensor(3)}
    sd_with_meta = dict(sd, **meta)
    model = build_model(sd_with_meta)
    assert "input_resolution" in sd_with_meta  # the caller's dict is not modified
    assert not model.training and model.dtype == torch.float16
    sizes = TINY_RESNET if resnet else TINY_VIT
    assert model.visual.input_resolution == sizes["image_resolution"]
    assert model.visual.output_dim == sizes["embed_dim"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, sd[key]) and value.dtype == sd[key].dtype, key


def test_build_model_is_strict():
    sd = tiny_state_dict()
    with pytest.raises(CorruptWeightsError, match="unexpected|Unexpected"):
        build_model(dict(sd, extra=torch.zeros(1)))
    broken = dict(sd)
    del broken["ln_final.bias"]
    with pytest.raises(CorruptWeightsError, match="ln_final.bias"):
        build_model(broken)
    with pytest.raises(CorruptWeightsError, match="not an OpenAI-layout"):
        build_model({"foo": torch.zeros(1)})
    wrong = dict(sd, **{"visual.ln_post.weight": torch.zeros(3)})
    with pytest.raises(CorruptWeightsError):
        build_model(wrong)


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_convert_weights_exact_set(resnet):
    model = build_clip_from_config(**(TINY_RESNET if resnet else TINY_VIT))
    convert_weights(model)
    half = {k for k, v in model.state_dict().items() if v.dtype == torch.float16}
    expected = set()
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            expected |= {prefix + "weight"} | ({prefix + "bias"} if module.bias is not None else set())
        if isinstance(module, nn.MultiheadAttention):
            expected |= {prefix + "in_proj_weight", prefix + "in_proj_bias"}
    expected |= {"text_projection"} | (set() if resnet else {"visual.proj"})
    assert half == expected
    fp32 = {k for k, v in model.state_dict().items() if v.dtype == torch.float32}
    assert {"token_embedding.weight", "positional_embedding", "logit_scale", "ln_final.weight"} <= fp32
    assert ("visual.attnpool.positional_embedding" if resnet else "visual.class_embedding") in fp32


def _replay_reference_init(sizes: dict) -> dict[str, torch.Tensor]:
    """Draw the random numbers of the reference CLIP (tiny ViT) in the reference order, from scratch."""

    def linear(out_f, in_f, bias=True):
        w = torch.empty(out_f, in_f)
        nn.init.kaiming_uniform_(w, a=math.sqrt(5))
        if bias:
            nn.init.uniform_(torch.empty(out_f), -1 / math.sqrt(in_f), 1 / math.sqrt(in_f))
        return w

    def blocks(width, layers):
        for _ in range(layers):
            linear(width, width)  # attn.out_proj (its own reset, then MHA re-inits)
            nn.init.xavier_uniform_(torch.empty(3 * width, width))  # attn.in_proj_weight
            linear(4 * width, width)  # mlp.c_fc
            linear(width, 4 * width)  # mlp.c_proj

    vw, res, patch = sizes["vision_width"], sizes["image_resolution"], sizes["vision_patch_size"]
    dim = sizes["embed_dim"]
    out = {}
    conv = torch.empty(vw, 3, patch, patch)
    nn.init.kaiming_uniform_(conv, a=math.sqrt(5))
    out["visual.conv1.weight"] = conv
    out["visual.class_embedding"] = vw**-0.5 * torch.randn(vw)
    out["visual.positional_embedding"] = vw**-0.5 * torch.randn((res // patch) ** 2 + 1, vw)
    blocks(vw, sizes["vision_layers"])
    out["visual.proj"] = vw**-0.5 * torch.randn(vw, dim)
    tw, tl = sizes["transformer_width"], sizes["transformer_layers"]
    blocks(tw, tl)
    torch.empty(sizes["vocab_size"], tw).normal_()  # nn.Embedding default init
    out["token_embedding.weight"] = torch.empty(sizes["vocab_size"], tw).normal_(std=0.02)
    out["positional_embedding"] = torch.empty(sizes["context_length"], tw).normal_(std=0.01)
    for i in range(tl):
        out[f"transformer.resblocks.{i}.attn.in_proj_weight"] = torch.empty(3 * tw, tw).normal_(std=tw**-0.5)
        torch.empty(tw, tw).normal_()  # out_proj
        torch.empty(4 * tw, tw).normal_()  # c_fc
        out[f"transformer.resblocks.{i}.mlp.c_proj.weight"] = torch.empty(tw, 4 * tw).normal_(
            std=tw**-0.5 * (2 * tl) ** -0.5
        )
    out["text_projection"] = torch.empty(tw, dim).normal_(std=tw**-0.5)
    return out


def test_random_init_consumes_rng_like_reference():
    torch.manual_seed(123)
    expected = _replay_reference_init(TINY_VIT)
    after_replay = torch.random.get_rng_state()
    torch.manual_seed(123)
    model = build_clip_from_config(**TINY_VIT)
    assert torch.equal(torch.random.get_rng_state(), after_replay)
    sd = model.state_dict()
    for key, value in expected.items():
        assert torch.equal(sd[key], value), key


@pytest.mark.parametrize("resnet", [False, True], ids=["vit", "resnet"])
def test_build_model_consumes_rng_like_construction(resnet):
    sd = tiny_state_dict(resnet=resnet)
    torch.manual_seed(7)
    build_model(sd)
    after_build = torch.rand(3)
    torch.manual_seed(7)
    build_clip_from_config(**(TINY_RESNET if resnet else TINY_VIT))
    assert torch.equal(torch.rand(3), after_build)
    torch.manual_seed(7)
    assert not torch.equal(torch.rand(3), after_build)


# --------------------------------------------------------------------------------------------------------------------
# Text tower: cut after the longest EOT, deep prompts
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> CLIP:
    return tiny_clip(seed=5, transformer_layers=4, vision_layers=4)


def _embed(model: CLIP, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = clip.tokenize(texts)
    return model.token_embedding(tokens), tokens


@torch.no_grad()
def test_text_cut_is_exact(model):
    emb, tokens = _embed(model, SENTENCES)
    full = ref_encode_prompts(model, emb, tokens)
    assert (model.encode_prompts(emb, tokens) - full).abs().max().item() <= 1e-5
    assert (model.encode_text(tokens) - full).abs().max().item() <= 1e-5
    # Each sentence alone (short cut) equals its row in the mixed batch (long cut).
    for i in range(len(SENTENCES)):
        alone = model.encode_prompts(emb[i : i + 1], tokens[i : i + 1])
        assert (alone - full[i : i + 1]).abs().max().item() <= 1e-5
    # Shorter inputs than the context length are accepted.
    assert (model.encode_prompts(emb[:, :30], tokens[:, :30]) - full).abs().max().item() <= 1e-5
    assert torch.allclose(text_global_pool(emb, tokens), emb[torch.arange(4), tokens.argmax(-1)])


def test_text_cut_really_cuts(model, monkeypatch):
    seen = []
    block = model.transformer.resblocks[0]
    original = type(block).forward
    monkeypatch.setattr(type(block), "forward",
                        lambda self, x, *a, **k: seen.append(x.shape[1]) or original(self, x, *a, **k))
    emb, tokens = _embed(model, ["a dog.", "a photo of a dog."])
    with torch.no_grad():
        model.encode_prompts(emb, tokens)
    assert seen[0] == int(tokens.argmax(-1).max()) + 1 == 8


@torch.no_grad()
def test_text_deep_prompts(model):
    g = torch.Generator().manual_seed(0)
    emb, tokens = _embed(model, SENTENCES)
    width = model.transformer.width
    deep = [torch.randn(2, width, generator=g) for _ in range(2)]  # J = 3: injected before blocks 1 and 2
    base = model.encode_prompts(emb, tokens)
    assert torch.equal(model.encode_prompts(emb, tokens, deep_prompts=None), base)
    out = model.encode_prompts(emb, tokens, deep_prompts=deep)
    assert (out - ref_encode_prompts(model, emb, tokens, deep)).abs().max().item() <= 1e-5
    assert (out - base).abs().max().item() > 1e-3
    # Different prompts -> different output; per-sequence [N, n, D] equal rows == shared [n, D].
    # (not a constant shift: the LayerNorms would remove it)
    other = model.encode_prompts(emb, tokens, deep_prompts=[deep[0], deep[1] + torch.randn(2, width, generator=g)])
    assert (other - out).abs().max().item() > 1e-3
    per_seq = [p.unsqueeze(0).expand(len(SENTENCES), -1, -1) for p in deep]
    assert torch.allclose(model.encode_prompts(emb, tokens, deep_prompts=per_seq), out, atol=1e-6)
    # A prompt for a block beyond the depth (4 blocks: at most 3 injections) is never used.
    extra = deep + [torch.randn(2, width, generator=g), torch.randn(2, width, generator=g)]
    full_depth = model.encode_prompts(emb, tokens, deep_prompts=extra)
    extra[3] = torch.randn(2, width, generator=g)
    assert torch.equal(model.encode_prompts(emb, tokens, deep_prompts=extra), full_depth)
    extra[2] = torch.randn(2, width, generator=g)
    assert not torch.equal(model.encode_prompts(emb, tokens, deep_prompts=extra), full_depth)
    # Injection overwrites positions 1..n: the first-layer content of those positions only matters through block 0.
    manual = ref_encode_prompts(model, emb, tokens, [deep[0]])
    assert (model.encode_prompts(emb, tokens, deep_prompts=[deep[0]]) - manual).abs().max().item() <= 1e-5
    # None entries skip a layer.
    skip = model.encode_prompts(emb, tokens, deep_prompts=[None, deep[1]])
    assert (skip - ref_encode_prompts(model, emb, tokens, [None, deep[1]])).abs().max().item() <= 1e-5
    assert (skip - out).abs().max().item() > 1e-4


@torch.no_grad()
def test_text_deep_prompt_longer_than_prompt(model):
    # n deep tokens beyond the longest EOT still fit (the cut keeps at least n + 1 positions).
    emb, tokens = _embed(model, ["x", "a"])
    deep = [torch.randn(6, model.transformer.width)]
    out = model.encode_prompts(emb, tokens, deep_prompts=deep)
    assert (out - ref_encode_prompts(model, emb, tokens, deep)).abs().max().item() <= 1e-5


def test_text_encoder_module_and_gradients(model):
    encoder = TextEncoder(model)
    assert encoder.dtype == model.dtype and encoder.transformer is model.transformer
    emb, tokens = _embed(model, SENTENCES)
    ctx = nn.Parameter(torch.zeros(4, model.transformer.width))
    prompts = torch.cat([emb[:, :1], ctx.expand(4, -1, -1), emb[:, 1:-4]], dim=1)
    deep = [nn.Parameter(torch.randn(2, model.transformer.width) * 0.02)]
    out = encoder(prompts, tokens, deep)
    assert torch.equal(out, model.encode_prompts(prompts, tokens, deep))
    out.square().sum().backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0 and deep[0].grad.abs().sum() > 0
    assert set(dict(encoder.named_parameters())) < {f"{k}" for k in dict(model.named_parameters())}


# --------------------------------------------------------------------------------------------------------------------
# Image tower: visual prompts
# --------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_visual_prompts(model):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 32, 32, generator=g)
    width = model.visual.transformer.width
    base = model.encode_image(images)
    assert (base - ref_encode_image(model, images)).abs().max().item() <= 1e-5
    assert torch.equal(model.encode_image(images, prompts=None, deep_prompts=None), base)
    prompts = torch.randn(3, width, generator=g)
    shallow = model.encode_image(images, prompts=prompts)
    assert (shallow - ref_encode_image(model, images, prompts)).abs().max().item() <= 1e-5
    assert (shallow - base).abs().max().item() > 1e-3
    per_image = prompts.unsqueeze(0).expand(2, -1, -1).clone()
    assert torch.allclose(model.encode_image(images, prompts=per_image), shallow, atol=1e-6)
    deep = [torch.randn(3, width, generator=g) for _ in range(2)]
    out = model.encode_image(images, prompts=prompts, deep_prompts=deep)
    assert (out - ref_encode_image(model, images, prompts, deep)).abs().max().item() <= 1e-5
    assert (out - shallow).abs().max().item() > 1e-3
    extra = deep + [torch.randn(3, width, generator=g), torch.randn(3, width, generator=g)]
    full_depth = model.encode_image(images, prompts=prompts, deep_prompts=extra)
    extra[3] = torch.randn(3, width, generator=g)
    assert torch.equal(model.encode_image(images, prompts=prompts, deep_prompts=extra), full_depth)
    with pytest.raises(ValueError, match="prompts"):
        model.encode_image(images, deep_prompts=deep)
    with pytest.raises(ValueError, match="tokens"):
        model.encode_image(images, prompts=prompts, deep_prompts=[torch.randn(2, width)])
    with pytest.raises(ValueError, match="visual prompts must have shape"):
        model.encode_image(images, prompts=torch.randn(3, width + 1))


def test_resnet_rejects_visual_prompts():
    rn = tiny_clip(resnet=True)
    images = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match="ViT"):
        rn.encode_image(images, prompts=torch.randn(2, 64))
    with pytest.raises(ValueError, match="ViT"):
        rn.encode_image(images, deep_prompts=[torch.randn(2, 64)])


def test_wrong_image_size_is_a_clear_error(model):
    with pytest.raises(ValueError, match="32x32"):
        model.encode_image(torch.randn(1, 3, 48, 48))


# --------------------------------------------------------------------------------------------------------------------
# Whole model, dtypes
# --------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def test_forward_logits(model):
    images = torch.randn(3, 3, 32, 32)
    tokens = clip.tokenize(SENTENCES)
    per_image, per_text = model(images, tokens)
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(model.encode_text(tokens), dim=-1)
    assert per_image.shape == (3, 4) and torch.equal(per_text, per_image.t())
    assert torch.allclose(per_image, model.logit_scale.exp() * img @ txt.t(), atol=1e-5)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07), rel=0.2)


@torch.no_grad()
def test_fp16_model_casts_prompts():
    half = build_model(tiny_state_dict(seed=2))
    full = build_model(tiny_state_dict(seed=2)).float()
    emb, tokens = _embed(full, SENTENCES[:2])
    deep = [torch.randn(2, 64)]
    out16 = half.encode_prompts(emb, tokens, deep)  # fp32 prompt tensors into an fp16 model
    out32 = full.encode_prompts(emb, tokens, deep)
    assert out16.dtype == torch.float16 and torch.allclose(out16.float(), out32, atol=2e-2, rtol=2e-2)
    images = torch.randn(1, 3, 32, 32)
    vis16 = half.encode_image(images, prompts=torch.randn(2, 64), deep_prompts=[torch.randn(2, 64)])
    assert vis16.dtype == torch.float16 and torch.isfinite(vis16).all()
