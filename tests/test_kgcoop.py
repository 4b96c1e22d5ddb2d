"""KgCoOp regulariser against hand computation, anchors from the frozen encoder, templates, CTX_INIT handling."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import train
from clip import clip
from dassl.utils.errors import ConfigError
from tests.helpers.trainer_fixtures import tiny_clip
from trainers.config import normalise_ctx_init, resolve_prompt_node
from trainers.modules import CoOpPromptLearner, KgCoOp, PromptedCLIP, Similarity
from trainers.modules.regularisers import kg_loss, kgcoop_template

NAMES = ["red_cat", "dog"]


def test_kg_loss_hand_computation():
    t = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    w = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    assert kg_loss(t, w).item() == pytest.approx(1 - (1.0 + 0.0) / 2)
    tb = torch.stack([t, torch.tensor([[0.0, 1.0], [1.0, 0.0]])])  # [B=2, C, D]
    assert kg_loss(tb, w).item() == pytest.approx(1 - (1.0 + 0.0 + 0.8 + 0.0) / 4)


def test_regulariser_anchors_value_and_gradient():
    torch.manual_seed(0)
    cm = tiny_clip()
    model = PromptedCLIP(cm, CoOpPromptLearner(NAMES, cm, ctx_init="a photo of a"), Similarity(cm, NAMES))
    reg = KgCoOp(w=8.0, template="a photo of a {}, a type of texture.")
    reg.setup(model, NAMES)
    with torch.no_grad():
        ref = cm.encode_text(clip.tokenize(["a photo of a red cat, a type of texture.",
                                            "a photo of a dog, a type of texture."]))
    torch.testing.assert_close(reg.anchors, ref / ref.norm(dim=-1, keepdim=True))
    assert "anchors" not in reg.state_dict()
    out = model(torch.randn(2, 3, 32, 32))
    terms = reg(model, out, {"label": torch.tensor([0, 1])})
    t = out.text_features / out.text_features.norm(dim=-1, keepdim=True)
    hand = 8.0 * (1 - (t * reg.anchors).sum(-1).mean())
    torch.testing.assert_close(terms["kg_loss"], hand)
    terms["kg_loss"].backward()
    assert model.learner.ctx.grad is not None and model.learner.ctx.grad.abs().sum() > 0


def test_templates_are_data():
    assert kgcoop_template("DescribableTextures") == "a photo of a {}, a type of texture."
    assert kgcoop_template("OxfordPets") == "a photo of a {}, a type of pet."
    assert kgcoop_template("EuroSAT") == "a centered satellite photo of {}."
    assert kgcoop_template("SomethingElse") == "a photo of a {}."


def test_ctx_init_respected():
    assert normalise_ctx_init(True) == "a photo of a"
    assert normalise_ctx_init(False) == normalise_ctx_init(None) == normalise_ctx_init("") == ""
    assert normalise_ctx_init("a drawing of") == "a drawing of"
    with pytest.raises(ConfigError):
        normalise_ctx_init(3)
    for value, expected in [("True", "a photo of a"), ("'a drawing of'", "a drawing of"), ("False", "")]:
        cfg = train.setup_cfg(train.parse_args(["--trainer", "KgCoOp", "TRAINER.COOP.CTX_INIT", value]))
        assert resolve_prompt_node(cfg, "COOP")["CTX_INIT"] == expected
    cm = tiny_clip()
    learner = CoOpPromptLearner(NAMES, cm, ctx_init="a drawing of")  # a string is used as given
    assert learner.ctx.shape == (3, 64)
    ref = cm.token_embedding(clip.tokenize(["a drawing of"]))[0, 1:4]
    torch.testing.assert_close(learner.ctx, ref)


def test_kgcoop_options_validation():
    cfg = train.setup_cfg(train.parse_args(["--trainer", "KgCoOp", "--dataset-config-file", "configs/datasets/dtd.yaml",
                                            "TRAINER.COOP.W", "2.0"]))
    from trainers.config import kgcoop_options

    assert kgcoop_options(cfg) == {"w": 2.0, "template": "a photo of a {}, a type of texture.", "fp16_anchors": False}
    cfg.defrost()
    cfg.REGULARISER.KGCOOP.W = -1.0
    with pytest.raises(ConfigError, match="REGULARISER.KGCOOP.W"):
        kgcoop_options(cfg)
    cfg.REGULARISER.KGCOOP.W = None
    cfg.REGULARISER.KGCOOP.TEMPLATE = "no slot"
    with pytest.raises(ConfigError, match="TEMPLATE"):
        kgcoop_options(cfg)


def test_fp16_anchors_switch_reproduces_the_reference(tmp_path):
    """REGULARISER.KGCOOP.FP16_ANCHORS: the anchors of the reference's never-cast fp16 second CLIP, and its KG
    arithmetic; ours (fp32 anchors) is exactly 0 at initialisation, the reference's is not (COCOOP.md)."""
    from tests.helpers.tiny_clip import write_tiny_weights

    path = write_tiny_weights(tmp_path / "w.pt")
    names = ["dog", "cat", "car", "airplane", "tree", "red_panda"]
    texts = [f"a photo of a {n.replace('_', ' ')}." for n in names]
    half = clip.load_clip(path, precision="fp16")
    with torch.no_grad():
        ref = half.encode_text(clip.tokenize(texts))
        ref_anchors = ref / ref.norm(dim=-1, keepdim=True)  # fp16, normalised in fp16 (reference)
    cm = clip.load_clip(path, precision="fp32")
    model = PromptedCLIP(cm, CoOpPromptLearner(names, cm, ctx_init="a photo of a"), Similarity(cm, names)).eval()
    ours, fp16 = KgCoOp(template="a photo of a {}."), KgCoOp(template="a photo of a {}.", fp16_anchors=True)
    ours.setup(model, names)
    fp16.setup(model, names)
    assert fp16.anchors.dtype == torch.float16 and torch.equal(fp16.anchors, ref_anchors)
    assert ours.anchors.dtype == torch.float32
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
        t = out.text_features / out.text_features.norm(dim=-1, keepdim=True)
        w = ref_anchors / ref_anchors.norm(dim=-1, keepdim=True)
        hand = 1.0 - torch.nn.CosineSimilarity(dim=1, eps=1e-07)(t, w).mean()  # the reference's forward
    assert ours(model, out, {})["kg_loss"].item() == 0.0  # ours: exactly 0 at init (template = init phrase)
    got = fp16(model, out, {})["kg_loss"]
    assert got.item() == pytest.approx(hand.item(), abs=0) and got.item() != 0.0 and abs(got.item()) < 1e-3
    cfg = train.setup_cfg(train.parse_args(["--trainer", "KgCoOp", "REGULARISER.KGCOOP.FP16_ANCHORS", "True"]))
    from trainers.config import kgcoop_options

    assert kgcoop_options(cfg)["fp16_anchors"] is True
