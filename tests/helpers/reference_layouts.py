"""Write checkpoints exactly as the reference implementations lay them out (Dassl per-model folders, KgCoOp,
MaPLe and DePT wrappers).

:func:`write_reference_run` takes a trained state in OUR key names (learner, optional DePT head, the frozen CLIP
backbone) and writes ``<run>/<folder>/model.pth.tar-<epoch>`` plus the ``checkpoint`` pointer, in the layout of
one reference method:

* ``coop`` / ``cocoop`` (KaiyangZhou/CoOp; also Nemesis): ``prompt_learner/`` with the learner's keys plus the
  class-dependent ``token_prefix`` [C, 1, Dt] / ``token_suffix`` [C, L-1-M, Dt] buffers.
* ``kgcoop`` (htyao89/KgCoOp): as CoOp plus the dead ``bias_vectors`` [1, 512] and ``meta_net.linear1.*``
  [512, 512] / [512].
* ``maple`` (multimodal-prompt-learning): the whole wrapper in ``MultiModalPromptLearner/``: ``prompt_learner.*``
  (learner keys and buffers), ``image_encoder.*`` (= CLIP ``visual.*``), ``text_encoder.{transformer.*,
  positional_embedding, ln_final.*, text_projection}``, ``logit_scale``.
* ``dept-<base>`` (Koorye/DePT ``ExtrasLinearProbe<Base>``): the base method's wrapper in ``PromptLearner/``
  (``MultiModalPromptLearner/`` for MaPLe) plus ``film_lp_{img,text}.{scale,bias}`` [D] and
  ``linear_probe_proj.{weight,bias}``; DePT-KgCoOp also carries ``prompt_learner.bias_vectors``,
  ``prompt_learner.meta_net.linear1.*``, the alias ``meta_net.linear1.*`` and ``adapter.fc.{0,2}.weight``
  ([128, 512], [512, 128]: 512 hard-coded whatever the model width).

The files also hold what Dassl writes next to the weights: ``epoch``, an SGD ``optimizer`` state, a ``scheduler``
state with a PICKLED scheduler object inside (Dassl's warm-up wrapper), ``val_result``.
"""
from __future__ import annotations

import os
from typing import Mapping

import torch

#: our DePT head key -> the reference's
HEAD_KEYS = {
    "film_lp_img.gamma": "film_lp_img.scale",
    "film_lp_img.beta": "film_lp_img.bias",
    "film_lp_text.gamma": "film_lp_text.scale",
    "film_lp_text.beta": "film_lp_text.bias",
    "linear_probe_proj.weight": "linear_probe_proj.weight",
    "linear_probe_proj.bias": "linear_probe_proj.bias",
}
METHODS = ("coop", "cocoop", "kgcoop", "maple", "dept-coop", "dept-cocoop", "dept-kgcoop", "dept-maple")


def frozen_wrapper_keys(clip_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference wrapper's frozen CLIP entries (image_encoder / text_encoder / logit_scale) of a CLIP state."""
    out = {}
    for key, value in clip_state.items():
        if key.startswith("visual."):
            out["image_encoder." + key[len("visual."):]] = value
        elif key.startswith(("transformer.", "ln_final.")) or key in ("positional_embedding", "text_projection"):
            out["text_encoder." + key] = value
        elif key == "logit_scale":
            out[key] = value
        # token_embedding is not part of the reference wrapper
    return out


def _dassl_extras(params: list[torch.Tensor]) -> dict:
    p = torch.nn.Parameter(params[0].detach().float().clone())
    optim = torch.optim.SGD([p], lr=0.002, momentum=0.9)
    p.grad = torch.ones_like(p)
    optim.step()
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=10)
    return {"optimizer": optim.state_dict(), "scheduler": {"successor": sched, "finished": True, "last_epoch": 1},
            "val_result": None}


def write_reference_run(
    run_dir: str | os.PathLike,
    method: str,
    learner: Mapping[str, torch.Tensor],
    clip_state: Mapping[str, torch.Tensor],
    n_cls: int,
    n_ctx: int,
    head: Mapping[str, torch.Tensor] | None = None,
    epoch: int = 2,
    seed: int = 0,
) -> str:
    """Write one reference run folder; returns the checkpoint path.

    Args:
        run_dir: the run folder (``--model-dir``).
        method: one of :data:`METHODS`.
        learner: our learner state dict (``ctx``, ``meta_net.*``, ``proj.*``, ``compound_*``).
        clip_state: the backbone's OpenAI-layout state dict (the frozen CLIP the reference run used).
        n_cls, n_ctx: the class-buffer shapes ``[C, 1, Dt]`` / ``[C, L-1-M, Dt]``.
        head: our DePT head state (``dept-*``; ``_extra_state`` is not part of the reference).
        epoch: file name ``model.pth.tar-<epoch>`` and the stored epoch.
        seed: seed of the random buffers and dead tensors (their values must not matter).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    gen = torch.Generator().manual_seed(seed)
    width = clip_state["ln_final.weight"].shape[0]
    length = clip_state["positional_embedding"].shape[0]
    dtype = next(iter(learner.values())).dtype
    base = method.split("-")[-1]
    dept = method.startswith("dept-")

    def rnd(*shape, dt=dtype):
        return torch.randn(*shape, generator=gen).to(dt)

    pl = {k: v.detach().clone() for k, v in learner.items()}
    pl["token_prefix"] = rnd(n_cls, 1, width)
    pl["token_suffix"] = rnd(n_cls, length - 1 - n_ctx, width)
    if base == "kgcoop":
        pl["bias_vectors"] = rnd(1, 512)
        pl["meta_net.linear1.weight"] = rnd(512, 512)
        pl["meta_net.linear1.bias"] = rnd(512)
    if base in ("coop", "cocoop", "kgcoop") and not dept:
        folder, state = "prompt_learner", pl
    else:
        folder = "MultiModalPromptLearner" if base == "maple" else "PromptLearner"
        state = {f"prompt_learner.{k}": v for k, v in pl.items()}
        state.update({k: v.detach().clone() for k, v in frozen_wrapper_keys(clip_state).items()})
        if base == "kgcoop":
            state["meta_net.linear1.weight"] = pl["meta_net.linear1.weight"]
            state["meta_net.linear1.bias"] = pl["meta_net.linear1.bias"]
            state["adapter.fc.0.weight"] = rnd(128, 512)
            state["adapter.fc.2.weight"] = rnd(512, 128)
        if dept:
            if head is None:
                raise ValueError("a dept-* layout needs the head state")
            state.update({HEAD_KEYS[k]: v.detach().clone() for k, v in head.items() if k in HEAD_KEYS})
    fdir = os.path.join(os.fspath(run_dir), folder)
    os.makedirs(fdir, exist_ok=True)
    path = os.path.join(fdir, f"model.pth.tar-{epoch}")
    torch.save({"state_dict": state, "epoch": epoch, **_dassl_extras(list(learner.values()))}, path)
    with open(os.path.join(fdir, "checkpoint"), "w") as f:
        f.write(os.path.basename(path) + "\n")
    return path
