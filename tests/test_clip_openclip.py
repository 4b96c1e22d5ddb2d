"""open_clip backbones: parity with open_clip (the oracle) on random-weight models saved in open_clip's own formats,
tag / hf-hub / local-dir resolution from disk only, missing-file and unsupported-model errors, the config keys, and
prompt learning end to end on such a backbone."""
from __future__ import annotations

import json
import logging
import os

import open_clip
import pytest
import torch
import yaml
from safetensors.torch import save_file

import train
from clip import clip, openclip
from clip.config import check_input_cfg, finalize_backbone_cfg, normalize_pretrained
from clip.errors import BackboneConfigError, MissingWeightsError, UnknownModelError
from clip.model import CLIP, QuickGELU, build_clip_from_config
from clip.openclip import UnsupportedModelError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["a photo of a dog.", "cat", "a very small bird sitting on a branch in the rain"]
TEXT = dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2)

#: (id, open_clip model config, custom text tower) -- small widths, real layouts
ARCHS = {
    # OpenAI-style: QuickGELU, head width 32 (2 heads: the head count is not width // 64)
    "vit_quickgelu": (dict(embed_dim=32, quick_gelu=True,
                           vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32),
                           text_cfg=TEXT), False),
    # LAION-style GELU with an MLP ratio != 4 and LayerScale (ViT-M-16-alt has ls_init_value)
    "vit_gelu_ls": (dict(embed_dim=32,
                         vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32,
                                         mlp_ratio=2.5, ls_init_value=0.1),
                         text_cfg=dict(TEXT, mlp_ratio=3.0)), False),
    # GELU text tower with a ModifiedResNet image tower (open_clip's RN50 config without -quickgelu)
    "resnet_gelu": (dict(embed_dim=32, vision_cfg=dict(image_size=64, layers=[1, 1, 1, 1], width=16, head_width=16),
                         text_cfg=TEXT), False),
    # ViT-L/14@336px layout (patch 14, 336 px, 577 tokens) at width 64, saved from open_clip's CustomTextCLIP
    # (keys text.transformer..., text.token_embedding ...)
    "vit_l14_336_customtext": (dict(embed_dim=48, quick_gelu=True,
                                    vision_cfg=dict(image_size=336, patch_size=14, width=64, layers=1, head_width=32),
                                    text_cfg=dict(TEXT, width=96, heads=3, layers=1)), True),
}


def make_openclip(model_cfg: dict, custom_text: bool = False, seed: int = 0):
    """A random open_clip model (every parameter perturbed so that LayerNorms, LayerScale, biases all matter)."""
    cfg = json.loads(json.dumps(model_cfg))
    cls = open_clip.model.CustomTextCLIP if custom_text else open_clip.model.CLIP
    torch.manual_seed(seed)
    model = cls(embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"],
                quick_gelu=cfg.get("quick_gelu", False))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                continue
            p.add_(0.05 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_(0.0, 0.1)
    return model.eval()


def write_repo(folder, model, model_cfg, fmt: str, preprocess=None) -> str:
    """An open_clip model folder as published on the Hugging Face hub: open_clip_config.json + the weights."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "open_clip_config.json"), "w") as fh:
        json.dump({"model_cfg": model_cfg, "preprocess_cfg": preprocess or {}}, fh)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if fmt == "safetensors":
        path = os.path.join(folder, "open_clip_model.safetensors")
        save_file(sd, path)
    elif fmt == "bin":
        path = os.path.join(folder, "open_clip_pytorch_model.bin")
        torch.save(sd, path)
    else:  # an open_clip training checkpoint (DDP "module." prefix, epoch/optimizer entries)
        path = os.path.join(folder, "epoch_1.pt")
        torch.save({"epoch": 1, "name": "tiny", "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    return path


def hf_snapshot(cache, repo_id: str, revision: str = "0123abc") -> str:
    """models--ORG--NAME/snapshots/<rev>/ in a fake Hugging Face cache (with refs/main)."""
    repo = os.path.join(str(cache), "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as fh:
        fh.write(revision)
    snap = os.path.join(repo, "snapshots", revision)
    os.makedirs(snap, exist_ok=True)
    return snap


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Empty CLIP and Hugging Face caches (every variable the lookup reads)."""
    for var in ("HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("CLIP_CACHE_DIR", str(tmp_path / "clipcache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def features(model, images, tokens):
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


# --------------------------------------------------------------------------------------------------------------------
# Parity with open_clip
# --------------------------------------------------------------------------------------------------------------------

PARITY = [("vit_quickgelu", "bin", "hf-hub"), ("vit_gelu_ls", "safetensors", "local-dir"),
          ("resnet_gelu", "pt", "name+file"), ("vit_l14_336_customtext", "safetensors", "hf-hub")]


@pytest.mark.parametrize("arch,fmt,how", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_open_clip(empty_caches, monkeypatch, arch, fmt, how):
    model_cfg, custom = ARCHS[arch]
    ref = make_openclip(model_cfg, custom)
    if how == "hf-hub":
        write_repo(hf_snapshot(empty_caches / "hf", f"testorg/{arch}"), ref, model_cfg, fmt)
        backbone, pretrained = f"hf-hub:testorg/{arch}", None
    elif how == "local-dir":
        write_repo(empty_caches / arch, ref, model_cfg, fmt)
        backbone, pretrained = f"local-dir:{empty_caches / arch}", None
    else:  # a model name (its config) + a weights file
        monkeypatch.setattr(openclip, "_model_configs", lambda: {"Tiny-RN": model_cfg})
        backbone, pretrained = "Tiny-RN", write_repo(empty_caches / arch, ref, model_cfg, fmt)
    ours = clip.load_clip(backbone, precision="fp32", pretrained=pretrained)
    assert isinstance(ours, CLIP) and ours.dtype == torch.float32 and not ours.training
    assert ours.act == ("quick_gelu" if model_cfg.get("quick_gelu") else "gelu")
    size = model_cfg["vision_cfg"]["image_size"]
    assert ours.visual.input_resolution == size and ours.preprocess_cfg["size"] == size
    torch.manual_seed(1)
    images = torch.randn(2, 3, size, size)
    tokens = clip.tokenize(TEXTS)
    img, txt = features(ours, images, tokens)
    ref_img, ref_txt = features(ref, images, tokens)
    d_img, d_txt = (img - ref_img).abs().max().item(), (txt - ref_txt).abs().max().item()
    logging.getLogger(__name__).info(f"parity {arch} ({fmt}, {how}): image {d_img:.2e} text {d_txt:.2e}")
    assert d_img < 1e-4 and d_txt < 1e-4, (d_img, d_txt)
    assert ref_img.abs().max() > 0.1 and ref_txt.abs().max() > 0.1  # non-degenerate features
    # the activation matters: the same weights with the other activation are far off
    flipped = clip.load_clip(backbone, precision="fp32", pretrained=pretrained)
    other = torch.nn.GELU() if ours.act == "quick_gelu" else QuickGELU()
    for block in flipped.transformer.resblocks:
        block.mlp.gelu = other
    assert (features(flipped, images, tokens)[1] - ref_txt).abs().max() > 1e-3


def test_quickgelu_and_gelu_differ_in_open_clip_too():
    """Sanity of the oracle: open_clip's own two activations give different features for the same weights."""
    cfg, _ = ARCHS["vit_quickgelu"]
    a = make_openclip(cfg)
    b = make_openclip(dict(cfg, quick_gelu=False))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        assert (a.encode_text(tokens) - b.encode_text(tokens)).abs().max() > 1e-3


# --------------------------------------------------------------------------------------------------------------------
# Resolution from disk
# --------------------------------------------------------------------------------------------------------------------


def test_real_tag_resolves_in_fake_hf_cache(empty_caches):
    """ViT-B-16 + laion2b_s34b_b88k -> open_clip's table -> laion/CLIP-ViT-B-16-laion2B-s34B-b88K in the HF cache."""
    snap = hf_snapshot(empty_caches / "hf", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
    open(os.path.join(snap, "open_clip_pytorch_model.bin"), "wb").close()
    spec = openclip.resolve("ViT-B-16", "laion2b_s34b_b88k")
    assert spec.weights == os.path.join(snap, "open_clip_pytorch_model.bin")
    assert spec.quick_gelu is False and spec.model_cfg["vision_cfg"]["patch_size"] == 16
    assert spec.preprocess["size"] == 224 and spec.preprocess["mean"] == clip.OPENAI_MEAN
    # safetensors is preferred when both are there; "ViT-B/16" is read as "ViT-B-16"; tags are case-insensitive
    open(os.path.join(snap, "open_clip_model.safetensors"), "wb").close()
    assert openclip.resolve("ViT-B/16", "LAION2B-S34B-B88K").weights.endswith("open_clip_model.safetensors")
    # a tag trained with QuickGELU under a GELU name: the weights' activation wins, with a note
    snap32 = hf_snapshot(empty_caches / "hf", "timm/vit_base_patch32_clip_224.laion400m_e32")
    open(os.path.join(snap32, "open_clip_model.safetensors"), "wb").close()
    spec = openclip.resolve("ViT-B-32", "laion400m_e32")
    assert spec.quick_gelu is True and "ViT-B-32-quickgelu" in spec.notes[0]
    # the CLIP cache folder layout ORG/NAME/FILE (huggingface-cli download ... --local-dir) is searched first
    flat = empty_caches / "clipcache" / "laion" / "CLIP-ViT-L-14-laion2B-s32B-b82K"
    flat.mkdir(parents=True)
    (flat / "open_clip_model.safetensors").write_bytes(b"")
    spec = openclip.resolve("ViT-L-14", "laion2b_s32b_b82k")
    assert spec.weights == str(flat / "open_clip_model.safetensors") and spec.model_cfg["embed_dim"] == 768


def test_tiny_tag_loads_from_fake_hf_cache(empty_caches, monkeypatch):
    """A (model, tag) pair resolved through the tag table to a fake HF cache, loaded and equal to open_clip."""
    cfg, _ = ARCHS["vit_gelu_ls"]
    ref = make_openclip(cfg, seed=3)
    monkeypatch.setattr(openclip, "_model_configs", lambda: {"Tiny-ViT": cfg})
    monkeypatch.setattr(openclip, "_pretrained_table", lambda: {"Tiny-ViT": {"tinytag": {
        "hf_hub": "testorg/tiny-vit/", "url": "", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
        "interpolation": "bilinear", "resize_mode": "shortest"}}})
    snap = hf_snapshot(empty_caches / "hf", "testorg/tiny-vit", revision="feedbeef")
    sd = {k: v.detach().clone().contiguous() for k, v in ref.state_dict().items()}
    save_file(sd, os.path.join(snap, "open_clip_model.safetensors"))
    model = clip.load_clip("Tiny-ViT", precision="fp32", pretrained="tinytag")
    assert model.preprocess_cfg["mean"] == (0.5, 0.5, 0.5) and model.preprocess_cfg["interpolation"] == "bilinear"
    images, tokens = torch.randn(2, 3, 32, 32), clip.tokenize(TEXTS)
    for a, b in zip(features(model, images, tokens), features(ref, images, tokens)):
        assert (a - b).abs().max() < 1e-4
    # clip.load: the preprocessing is the model's (mean/std/interpolation from the tag)
    model2, preprocess = clip.load("Tiny-ViT", pretrained="tinytag")
    norm = preprocess.transforms[-1]
    assert tuple(norm.mean) == (0.5, 0.5, 0.5) and tuple(norm.std) == (0.25, 0.25, 0.25)
    assert preprocess.transforms[0].interpolation.value == "bilinear"


def test_missing_file_names_files_folders_and_command(empty_caches, capsys):
    with pytest.raises(MissingWeightsError) as info:
        openclip.resolve("ViT-B-16", "laion2b_s34b_b88k")
    msg = str(info.value)
    for part in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", str(empty_caches / "hf"),
                 "models--laion--CLIP-ViT-B-16-laion2B-s34B-b88K", str(empty_caches / "clipcache"),
                 "huggingface-cli download laion/CLIP-ViT-B-16-laion2B-s34B-b88K open_clip_model.safetensors",
                 "Nothing is downloaded"):
        assert part in msg, part
    # a URL-released tag also names the URL's file in the CLIP cache
    with pytest.raises(MissingWeightsError, match=r"vit_b_16-laion400m_e31-00efa78f\.pt"):
        openclip.resolve("ViT-B-16", "laion400m_e31")
    with pytest.raises(MissingWeightsError, match="open_clip_config.json"):
        openclip.resolve("hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
    with pytest.raises(MissingWeightsError, match="does not exist"):
        openclip.resolve("ViT-B-16", str(empty_caches / "nope.safetensors"))
    # through train.py: one error line, exit code 2, before anything is written
    out = empty_caches / "out"
    rc = train.cli(["--trainer", "CoOp", "--backbone", "ViT-B-16", "--output-dir", str(out),
                    "MODEL.BACKBONE.PRETRAINED", "laion2b_s34b_b88k"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: open_clip weights for 'ViT-B-16'"), err
    assert not out.exists()


def test_names_tags_and_unsupported_models(empty_caches):
    assert not openclip.is_openclip_request("ViT-B/16", None) and not openclip.is_openclip_request("RN50", True)
    assert not openclip.is_openclip_request("TinySynth", "")
    assert openclip.is_openclip_request("ViT-B-16-quickgelu", None) and openclip.is_openclip_request("RN50", "cc12m")
    assert openclip.is_openclip_request("hf-hub:a/b")
    # OpenAI weights through open_clip's "openai" tag are OpenAI's file and loader
    assert openclip.resolve("ViT-B-16", "openai") == "ViT-B/16"
    assert openclip.resolve("ViT-L-14-336-quickgelu", "openai") == "ViT-L/14@336px"
    # ... or open_clip's copy of them in the Hugging Face cache when OpenAI's file is not there (QuickGELU)
    snap = hf_snapshot(empty_caches / "hf", "timm/vit_base_patch16_clip_224.openai")
    open(os.path.join(snap, "open_clip_model.safetensors"), "wb").close()
    spec = openclip.resolve("ViT-B-16", "openai")
    assert spec.quick_gelu and spec.weights == os.path.join(snap, "open_clip_model.safetensors")
    (empty_caches / "clipcache").mkdir()
    (empty_caches / "clipcache" / "ViT-B-16.pt").write_bytes(b"")
    assert openclip.resolve("ViT-B-16", "openai") == "ViT-B/16"
    with pytest.raises(UnknownModelError, match="set MODEL.BACKBONE.PRETRAINED to one of its pretrained tags.*laion2b"):
        openclip.resolve("ViT-B-16", "")
    with pytest.raises(UnknownModelError, match="unknown pretrained tag 'laion9b'.*laion2b_s34b_b88k"):
        openclip.resolve("ViT-B-16", "laion9b")
    with pytest.raises(UnknownModelError, match="did you mean ViT-B-16"):
        openclip.resolve("ViT-B-61", "laion2b_s34b_b88k")
    with pytest.raises(UnsupportedModelError, match="SigLIP"):
        openclip.resolve("ViT-B-16-SigLIP", "webli")
    with pytest.raises(UnsupportedModelError, match="bert-base-uncased"):
        openclip.resolve("ViT-L-14-CLIPA", "datacomp1b")
    with pytest.raises(UnsupportedModelError, match="timm model"):
        openclip.resolve("EVA02-B-16", "merged2b_s8b_b131k")
    with pytest.raises(UnknownModelError, match="leave MODEL.BACKBONE.PRETRAINED empty"):
        openclip.resolve("hf-hub:laion/x", "laion2b_s34b_b88k")
    assert openclip.describe("ViT-B/16", None) is None and openclip.describe("ViT-B-16", "openai") is None
    # every CLIP-family config with OpenAI's tokenizer that open_clip ships is supported, the others are not
    configs = openclip._model_configs()
    for name in ("ViT-B-16", "ViT-B-32-quickgelu", "ViT-L-14", "ViT-L-14-336", "ViT-H-14-378-quickgelu", "ViT-bigG-14",
                 "ViT-M-16-alt", "RN50", "RN50x64-quickgelu", "ViT-B-16-plus-240", "ViT-g-14"):
        assert openclip.supported_reason(configs[name]) is None, name
    for name in ("coca_ViT-B-32", "ViT-SO400M-14-SigLIP", "xlm-roberta-base-ViT-B-32", "ViT-H-14-worldwide",
                 "ViT-H-14-CLIPA", "convnext_base", "MobileCLIP-S1"):
        assert openclip.supported_reason(configs[name]) is not None, name


def test_open_clip_head_width_and_mlp_ratio_shapes():
    """ViT-H-14 (head width 80) and ViT-bigG-14 (MLP ratio 4.9231) map to our settings with open_clip's shapes."""
    configs = openclip._model_configs()
    for name in ("ViT-H-14", "ViT-bigG-14"):
        cfg = json.loads(json.dumps(configs[name]))
        s = openclip._settings(cfg, False)
        v = cfg["vision_cfg"]
        assert s["vision_heads"] == v["width"] // v["head_width"] and s["transformer_heads"] == cfg["text_cfg"]["heads"]
        block = open_clip.transformer.ResidualAttentionBlock(v["width"], s["vision_heads"], v.get("mlp_ratio", 4.0))
        hidden = block.mlp.c_fc.weight.shape[0]
        ours = build_clip_from_config(vision_width=v["width"] // 10 * 10, vision_layers=1, transformer_layers=1,
                                      vision_mlp_width=hidden, vision_heads=4)
        assert ours.visual.transformer.resblocks[0].mlp.c_fc.weight.shape[0] == hidden


# --------------------------------------------------------------------------------------------------------------------
# Config: MODEL.BACKBONE.PRETRAINED and INPUT.*
# --------------------------------------------------------------------------------------------------------------------


def _args(*argv):
    return train.parse_args(["--trainer", "CoOp", *argv])


def test_pretrained_key_merges_bools_and_strings(tmp_path):
    from dassl.config import get_cfg_default

    assert get_cfg_default().MODEL.BACKBONE.PRETRAINED is None
    yml = tmp_path / "dassl.yaml"
    yml.write_text("MODEL:\n  BACKBONE:\n    NAME: TinySynth\n    PRETRAINED: True\n")
    cfg = train.setup_cfg(_args("--config-file", str(yml)))
    assert cfg.MODEL.BACKBONE.PRETRAINED == "" and cfg.MODEL.BACKBONE.NAME == "TinySynth"
    yml2 = tmp_path / "false.yaml"
    yml2.write_text("MODEL:\n  BACKBONE:\n    PRETRAINED: False\n")
    cfg = train.setup_cfg(_args("--config-file", str(yml), "--config-file", str(yml2)))
    assert cfg.MODEL.BACKBONE.PRETRAINED == ""
    # a Dassl YAML's True, then a tag on the command line (a string): no yacs type mismatch
    with pytest.raises(MissingWeightsError):  # resolved early (before anything is written); no files here
        train.setup_cfg(_args("--config-file", str(yml), "--backbone", "ViT-B-16",
                              "MODEL.BACKBONE.PRETRAINED", "laion2b_s34b_b88k"))
    cfg = train.setup_cfg(_args("--backbone", "ViT-B-16", "MODEL.BACKBONE.PRETRAINED", "openai"))
    assert cfg.MODEL.BACKBONE.PRETRAINED == "openai"
    assert cfg.INPUT.PIXEL_MEAN == [0.485, 0.456, 0.406]  # OpenAI weights: INPUT untouched, exactly as today
    cfg = train.setup_cfg(_args("--backbone", "ViT-B/16"))
    assert cfg.MODEL.BACKBONE.PRETRAINED == "" and cfg.INPUT.SIZE == (224, 224)


def test_input_defaults_follow_the_open_clip_model(empty_caches, caplog):
    cfg_model, _ = ARCHS["vit_gelu_ls"]
    folder = empty_caches / "m"
    write_repo(folder, make_openclip(cfg_model), cfg_model, "safetensors",
               preprocess={"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bilinear"})
    backbone = f"local-dir:{folder}"
    info = openclip.describe(backbone)
    assert info["resolution"] == 32 and info["text_width"] == 64 and info["weights"].endswith(".safetensors")
    cfg = train.setup_cfg(_args("--backbone", backbone))
    assert cfg.INPUT.SIZE == (32, 32) and cfg.INPUT.PIXEL_MEAN == [0.5, 0.5, 0.5]
    assert cfg.INPUT.PIXEL_STD == [0.5, 0.5, 0.5] and cfg.INPUT.INTERPOLATION == "bilinear"
    # values the user set are kept; the trainer-side check warns with both values
    cfg = train.setup_cfg(_args("--backbone", backbone, "INPUT.PIXEL_MEAN", "[0.4, 0.4, 0.4]"))
    assert cfg.INPUT.PIXEL_MEAN == [0.4, 0.4, 0.4] and cfg.INPUT.PIXEL_STD == [0.5, 0.5, 0.5]
    model = clip.load_clip(backbone, precision="fp32")
    with caplog.at_level(logging.WARNING, logger="clip.config"):
        check_input_cfg(cfg.INPUT, model)
    assert "INPUT.PIXEL_MEAN is [0.4, 0.4, 0.4] but the backbone was trained with [0.5, 0.5, 0.5]" in caplog.text
    # a wrong image size is an error for open_clip backbones (train.py: one error line, exit 2)
    cfg = train.setup_cfg(_args("--backbone", backbone, "INPUT.SIZE", "(64, 64)"))
    with pytest.raises(BackboneConfigError, match=r"INPUT.SIZE is \(64, 64\).*set INPUT.SIZE \(32, 32\)"):
        check_input_cfg(cfg.INPUT, model)


def test_normalize_and_finalize_work_on_plain_nodes():
    from yacs.config import CfgNode as CN

    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    cfg.MODEL.BACKBONE.PRETRAINED = True
    normalize_pretrained(cfg)
    assert cfg.MODEL.BACKBONE.PRETRAINED is None
    cfg.merge_from_list(["MODEL.BACKBONE.PRETRAINED", "laion2b_s34b_b88k"])
    cfg.MODEL.BACKBONE.NAME = "RN50"
    cfg.MODEL.BACKBONE.PRETRAINED = "openai"
    finalize_backbone_cfg(cfg, get_cfg_default().INPUT)
    assert cfg.INPUT.PIXEL_MEAN == [0.485, 0.456, 0.406] and cfg.MODEL.BACKBONE.PRETRAINED == "openai"
    node = CN({"MODEL": CN({"BACKBONE": CN({"NAME": "x.pt", "PRETRAINED": None})})})
    finalize_backbone_cfg(node)
    assert node.MODEL.BACKBONE.PRETRAINED == ""


# --------------------------------------------------------------------------------------------------------------------
# ViT-L/14 layouts, prompt paths
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [224, 336], ids=["ViT-L-14", "ViT-L-14-336px"])
def test_vit_l14_layouts_with_prompts(resolution):
    """ViT-L/14 and @336px shapes (patch 14, 257 / 577 tokens) at width 64: shallow + deep visual prompts, deep text
    prompts with the EOT cut, on both activations."""
    for act in ("quick_gelu", "gelu"):
        torch.manual_seed(0)
        model = build_clip_from_config(embed_dim=48, image_resolution=resolution, vision_patch_size=14,
                                       vision_width=64, vision_layers=2, transformer_width=96, transformer_heads=3,
                                       transformer_layers=2, act=act, vision_heads=2)
        assert model.visual.positional_embedding.shape[0] == (resolution // 14) ** 2 + 1
        images = torch.randn(2, 3, resolution, resolution)
        prompts = torch.randn(3, 64) * 0.02
        deep = [torch.randn(3, 64) * 0.02]
        with torch.no_grad():
            plain = model.encode_image(images)
            prompted = model.encode_image(images, prompts=prompts, deep_prompts=deep)
        assert plain.shape == prompted.shape == (2, 48) and not torch.allclose(plain, prompted)
        tokens = clip.tokenize(["a photo of a dog.", "a cat"])
        emb = model.token_embedding(tokens)
        deep_text = [torch.randn(2, 96) * 0.02]
        with torch.no_grad():
            cut = model.encode_prompts(emb, tokens, deep_prompts=deep_text)
            # the uncut reference by hand: all 77 positions through the causal transformer, EOT pooling
            x = model.transformer(emb + model.positional_embedding, deep_prompts=deep_text, prompt_start=1)
            eot = tokens.argmax(-1)
            full = model.ln_final(x[torch.arange(2), eot]) @ model.text_projection
        torch.testing.assert_close(cut, full, rtol=1e-5, atol=1e-6)


def test_openai_checkpoints_build_exactly_as_before(tmp_path):
    """OpenAI-layout files: QuickGELU, 4x MLP, no LayerScale, width // 64 heads (the settings' defaults)."""
    from tests.helpers.tiny_clip import tiny_state_dict

    model = clip.build_model(tiny_state_dict())
    block = model.transformer.resblocks[0]
    assert model.act == "quick_gelu" and isinstance(block.mlp.gelu, QuickGELU)
    assert not block.layer_scale and not hasattr(block, "ls_1")
    assert set(model.state_dict()) == set(tiny_state_dict())


# --------------------------------------------------------------------------------------------------------------------
# Prompt learning end to end on an open_clip backbone
# --------------------------------------------------------------------------------------------------------------------

E2E_CFG = dict(embed_dim=64, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=32),
               text_cfg=TEXT)


@pytest.fixture(scope="module")
def oc_env(tmp_path_factory):
    from tests.helpers.fake_datasets import make_eurosat
    from tests.helpers.trainer_fixtures import write_tiny_train_yaml

    base = tmp_path_factory.mktemp("openclip_e2e")
    make_eurosat(str(base / "data"))
    hf = base / "hf"
    write_repo(hf_snapshot(hf, "testorg/tiny-gelu"), make_openclip(E2E_CFG, seed=5), E2E_CFG, "safetensors")
    cfg = write_tiny_train_yaml(str(base / "tiny.yaml"), "hf-hub:testorg/tiny-gelu")
    return {"base": base, "data": str(base / "data"), "cfg": cfg, "hf": str(hf)}


E2E = [
    ("coop", "CoOp", (), ["TRAINER.COOP.N_CTX", "4"]),
    ("cocoop", "CoCoOp", (), ["TRAINER.COCOOP.N_CTX", "4"]),
    ("kgcoop_dept", "KgCoOp", ("--head", "DePT"), ["TRAINER.COOP.N_CTX", "4"]),
    ("maple_nemesis", "MaPLe", ("--config-file", os.path.join(ROOT, "configs", "regularisers", "nemesis.yaml")),
     ["TRAINER.MAPLE.PROMPT_DEPTH", "2", "REGULARISER.NEMESIS.A", "1.0", "REGULARISER.NEMESIS.BETA", "0.5",
      "REGULARISER.NEMESIS.NP", "1", "REGULARISER.NEMESIS.CW", "0.5"]),
]


@pytest.mark.parametrize("name,trainer,extra,opts", E2E, ids=[e[0] for e in E2E])
def test_prompt_learning_end_to_end(oc_env, monkeypatch, name, trainer, extra, opts):
    for var in ("HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", oc_env["hf"])
    out = oc_env["base"] / name
    argv = ["--root", oc_env["data"], "--seed", "1", "--trainer", trainer, "--dataset-config-file",
            os.path.join(ROOT, "configs", "datasets", "eurosat.yaml"), "--config-file", oc_env["cfg"], *extra,
            "--output-dir", str(out), *opts]
    assert train.cli(argv) == 0
    log = open(out / "log.txt").read()
    assert "open_clip backbone hf-hub:testorg/tiny-gelu" in log and "Elapsed" in log
    with open(out / "results.json") as fh:
        acc = json.load(fh)["accuracy"]
    assert 0.0 <= acc <= 100.0
    with open(out / "config.yaml") as fh:
        written = yaml.safe_load(fh)
    assert written["MODEL"]["BACKBONE"] == {"NAME": "hf-hub:testorg/tiny-gelu", "PRETRAINED": ""}
    assert written["INPUT"]["PIXEL_MEAN"] == list(clip.OPENAI_MEAN)  # the model's (the overlay left the default)
    if name == "coop":  # eval-only on the same backbone reproduces the accuracy
        ev = oc_env["base"] / "coop_eval"
        argv_ev = [str(ev) if a == str(out) else a for a in argv]
        assert train.cli([*argv_ev, "--eval-only", "--model-dir", str(out), "--load-epoch", "2"]) == 0
        with open(ev / "results.json") as fh:
            assert json.load(fh)["accuracy"] == pytest.approx(acc)


# --------------------------------------------------------------------------------------------------------------------
# --list-backbones
# --------------------------------------------------------------------------------------------------------------------


def test_list_backbones(empty_caches, capsys):
    from tests.helpers.tiny_clip import write_tiny_weights

    (empty_caches / "clipcache").mkdir()
    write_tiny_weights(empty_caches / "clipcache" / "RN50.pt")
    snap = hf_snapshot(empty_caches / "hf", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K")
    open(os.path.join(snap, "open_clip_model.safetensors"), "wb").close()
    cfg_model, _ = ARCHS["vit_quickgelu"]
    write_repo(hf_snapshot(empty_caches / "hf", "testorg/tiny"), make_openclip(cfg_model), cfg_model, "bin")
    assert train.cli(["--list-backbones"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.split()[:2] == ["RN50", "found"] for line in lines)
    assert any(line.split()[:2] == ["ViT-B/16", "missing"] for line in lines)
    row = next(line for line in lines if line.split()[:2] == ["ViT-B-16", "laion2b_s34b_b88k"])
    assert row.split()[2] == "found" and row.split()[3] == os.path.join(snap, "open_clip_model.safetensors")
    assert any(line.split()[:2] == ["ViT-L-14", "laion2b_s32b_b82k"] and line.split()[2] == "missing"
               for line in lines)
    assert "NOT supported" in out and "ViT-B-16-SigLIP" in out
    assert any(line.split()[:1] == ["hf-hub:testorg/tiny"] for line in lines)


def test_fp16_layout_matches_openai_checkpoints(empty_caches):
    """PREC fp16 (GPU): linear/conv weights fp16, LayerNorm/embeddings/LayerScale fp32, as OpenAI's files; the
    half model's features stay close to the fp32 ones (run here on CPU, which torch supports for fp16)."""
    cfg_model, _ = ARCHS["vit_gelu_ls"]
    folder = empty_caches / "half"
    ref = make_openclip(cfg_model)
    write_repo(folder, ref, cfg_model, "safetensors")
    spec = openclip.resolve(f"local-dir:{folder}")
    half = openclip.load_openclip(spec, fp16=True)
    block = half.visual.transformer.resblocks[0]
    assert half.dtype == torch.float16 and block.mlp.c_fc.weight.dtype == torch.float16
    assert block.attn.in_proj_weight.dtype == torch.float16 and half.text_projection.dtype == torch.float16
    assert block.ln_1.weight.dtype == torch.float32 and block.ls_1.gamma.dtype == torch.float32
    assert half.token_embedding.weight.dtype == torch.float32 and half.visual.class_embedding.dtype == torch.float32
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        out = half.encode_text(tokens)
        want = ref.encode_text(tokens)
    assert out.dtype == torch.float16 and (out.float() - want).abs().max() < 2e-2
