"""Step-time optimisations keep results exact: PAN's copy-0 sharing (alphas and losses with and without)."""
from __future__ import annotations

import random

import pytest
import torch

from clip.model import build_clip_from_config
from trainers.modules import CoCoOpPromptLearner, CoOpPromptLearner, PromptedCLIP, Similarity
from trainers.modules.regularisers.nemesis import Nemesis


def _model(classes=6, seed=0, learner_cls=CoOpPromptLearner, **clip_sizes):
    torch.manual_seed(seed)
    clip_model = build_clip_from_config(**clip_sizes)
    names = [f"class {i}" for i in range(classes)]
    learner = learner_cls(names, clip_model, n_ctx=4)
    return PromptedCLIP(clip_model, learner, Similarity(clip_model, names)).train(), names


class _Never(dict):
    """A verdict table that never allows a shortcut (and never records one)."""

    def get(self, key, default=None):
        return False

    def __contains__(self, key):
        return True


# 20 classes, width 128: big enough for this CPU's matrix kernels to give each row the same bits whatever the
# number of rows (with 6 classes of width 64 they do not, and both shortcuts are refused)
WIDER = dict(classes=20, transformer_width=128, transformer_heads=4)


def _steps(share: bool, n=6, suffix: bool = True, perturb: float = 0.0, classes=6, learner_cls=CoOpPromptLearner,
           **clip_sizes):
    model, names = _model(classes, learner_cls=learner_cls, **clip_sizes)
    reg = Nemesis(a=1.0, beta=0.0, n_pos=2, cw=0.5)
    reg.setup(model, names)
    reg.on_epoch_start(0, 2)
    if not share:
        reg._share_copy0 = _Never()
    if not suffix:
        reg._suffix_exact = _Never()
    if perturb:  # a suffix path that is off in the last bits: the once-per-shape check must refuse it
        real_from = model.clip.encode_prompts_from
        model.clip.encode_prompts_from = lambda *a, **k: real_from(*a, **k) * (1.0 + perturb)
    sizes: list[int] = []
    real = model.encode_text
    model.encode_text = lambda out: (sizes.append(out.prompts.shape[0]), real(out))[1]
    opt = torch.optim.SGD(model.learner.parameters(), lr=5.0)
    random.seed(0)
    g = torch.Generator().manual_seed(1)
    alphas, losses = [], []
    for _ in range(n):
        images = torch.randn(8, 3, 32, 32, generator=g)
        labels = torch.randint(0, len(names), (8,), generator=g)
        out = model(images)
        loss = torch.nn.functional.cross_entropy(out.logits, labels) + reg(model, out, {"label": labels})["norm_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.invalidate_cache()
        alphas.append(reg.alpha.clone())
        losses.append(loss.item())
    return alphas, losses, sizes, model.learner.ctx.detach().clone(), reg


def test_pan_copy0_sharing_is_exact():
    a1, l1, s1, ctx1, reg = _steps(share=True, suffix=False)
    a0, l0, s0, ctx0, _ = _steps(share=False)
    assert l1 == l0 and all(torch.equal(x, y) for x, y in zip(a1, a0)) and torch.equal(ctx1, ctx0)
    assert any(float(a.sum()) > 0 for a in a0)  # PAN selected positions at some step (the comparison has teeth)
    # without sharing: every step encodes (NP+1)*C corrupted-stack prompts (plus the step's own C)
    assert s0.count(3 * 6) == 6
    if all(reg._share_copy0.values()):  # exact on this machine: after the first (checking) step only NP*C
        assert s1.count(3 * 6) == 1 and s1.count(2 * 6) == 1 + 5


@pytest.mark.parametrize("learner_cls", [CoOpPromptLearner, CoCoOpPromptLearner])
def test_pan_prefix_reuse_is_exact_and_used_once_checked(learner_cls):
    """The corrupted copies from the step's recorded text states (only the rows from the corrupted token) give
    the same alphas, losses and context as the full calls; once every (shape, token) was checked, the text tower
    is called for the step's own prompts only (CoCoOp: the per-image prompts of every copy likewise)."""
    a2, l2, s2, ctx2, reg = _steps(share=True, n=12, learner_cls=learner_cls, **WIDER)
    a0, l0, _, ctx0, _ = _steps(share=False, n=12, learner_cls=learner_cls, **WIDER)
    assert l2 == l0 and all(torch.equal(x, y) for x, y in zip(a2, a0)) and torch.equal(ctx2, ctx0)
    if learner_cls is CoOpPromptLearner:  # PAN selected positions at some step (random CoCoOp never does here)
        assert any(float(a.sum()) > 0 for a in a0)
    if not all(reg._share_copy0.values()):  # rows depend on their number on this machine: no shortcut at all
        assert not reg._suffix_exact
        return
    # each verdict is torch.equal of the suffix path's features and the full call's, on a real step; the keys are
    # the shape plus the corrupted token 1 + j
    assert reg._suffix_exact and all(reg._suffix_exact.values())
    assert {key[-1] for key in reg._suffix_exact} <= {1, 2, 3, 4}
    if len(reg._suffix_exact) == 4:  # after every position was seen: one text call of the step's own prompts
        assert s2[-1] == s2[-2] == s2[0]


def test_pan_prefix_reuse_that_is_not_exact_is_refused():
    a3, l3, _, ctx3, reg = _steps(share=True, n=12, perturb=1e-6, **WIDER)
    a0, l0, _, ctx0, _ = _steps(share=False, n=12, **WIDER)
    assert l3 == l0 and all(torch.equal(x, y) for x, y in zip(a3, a0)) and torch.equal(ctx3, ctx0)
    assert not any(reg._suffix_exact.values())
    if all(reg._share_copy0.values()):  # the path was tried (it is only after copy 0 sharing) and refused
        assert reg._suffix_exact


def _cocoop(text_checkpoint: bool, text_chunk: int = 0):
    from trainers.modules import CoCoOpPromptLearner

    torch.manual_seed(0)
    clip_model = build_clip_from_config()
    names = [f"class {i}" for i in range(5)]
    learner = CoCoOpPromptLearner(names, clip_model, n_ctx=4)
    return PromptedCLIP(clip_model, learner, Similarity(clip_model, names), text_chunk=text_chunk,
                        text_checkpoint=text_checkpoint).train()


def test_text_checkpointing_gives_the_same_logits_and_gradients():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(3, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 3, 1])
    for chunk in (0, 1):  # one batched text call, or one per image (TEXT_CHUNK)
        results = []
        for ckpt in (False, True):
            model = _cocoop(ckpt, chunk)
            assert model.clip.transformer.grad_checkpointing is ckpt
            out = model(images)
            torch.nn.functional.cross_entropy(out.logits, labels).backward()
            grads = {n: p.grad.clone() for n, p in model.learner.named_parameters()}
            results.append((out.logits.detach(), grads))
        (ref_logits, ref_grads), (logits, grads) = results
        assert set(ref_grads) and all(g.abs().sum() > 0 for g in ref_grads.values())
        assert torch.equal(logits, ref_logits)
        assert all(torch.equal(grads[n], ref_grads[n]) for n in ref_grads)


def test_text_checkpoint_config_key_reaches_the_model(tmp_path):
    from tests.helpers.trainer_fixtures import tiny_eurosat_env
    import train
    from dassl.engine import build_trainer
    import os

    env = tiny_eurosat_env(tmp_path)
    ds = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "datasets",
                      "eurosat.yaml")
    base = ["--root", env["data"], "--trainer", "CoCoOp", "--dataset-config-file", ds, "--config-file", env["cfg"],
            "--output-dir", str(tmp_path / "out"), "TRAINER.COCOOP.N_CTX", "4"]
    for opts, expected in (([], False), (["MODEL.PROMPT_LEARNER.TEXT_CHECKPOINT", "True"], True),
                           (["TRAINER.COCOOP.TEXT_CHECKPOINT", "True"], True)):
        trainer = build_trainer(train.setup_cfg(train.parse_args(base + opts)))
        assert trainer.model.clip.transformer.grad_checkpointing is expected
        assert trainer.model.clip.visual.transformer.grad_checkpointing is False


def test_eager_optimizers_update_exactly_like_torch():
    from dassl.config import get_cfg_default
    from dassl.optim import build_lr_scheduler, build_optimizer

    torch_classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                     "rmsprop": torch.optim.RMSprop}
    for name, cls in torch_classes.items():
        cfg = get_cfg_default()
        cfg.OPTIM.NAME, cfg.OPTIM.MOMENTUM, cfg.OPTIM.WEIGHT_DECAY = name, 0.9, 5e-4
        runs = []
        for eager in (True, False):
            torch.manual_seed(0)
            p = torch.nn.Parameter(torch.randn(4, 3))
            opt = build_optimizer([p], cfg.OPTIM)
            if not eager:  # the same hyper-parameters on torch's own class
                import inspect

                accepted = inspect.signature(cls.__init__).parameters
                opt = cls(opt.param_groups[0]["params"], **{k: v for k, v in opt.defaults.items() if k in accepted})
            assert isinstance(opt, cls) and repr(opt).startswith(cls.__name__)
            sched = build_lr_scheduler(opt, cfg.OPTIM)
            for _ in range(4):
                opt.zero_grad()
                ((p - 1) ** 3).sum().backward()
                opt.step()
                sched.step()
            state = opt.state_dict()
            opt.load_state_dict(state)
            runs.append((p.detach().clone(), state))
        (p1, s1), (p0, s0) = runs
        assert torch.equal(p1, p0), name
        assert s1["param_groups"] == s0["param_groups"]
        assert all(torch.equal(s1["state"][0][k], s0["state"][0][k]) if torch.is_tensor(s0["state"][0][k])
                   else s1["state"][0][k] == s0["state"][0][k] for k in s0["state"][0])
