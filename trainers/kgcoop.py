"""KgCoOp: Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization", CVPR 2023
(arXiv:2303.13283)."""
from __future__ import annotations

import logging

import torch
from torch import nn

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer

logger = logging.getLogger(__name__)

#: the reference's hard-coded width of its dead modules (whatever the model width)
REFERENCE_DEAD_WIDTH = 512


@torch.no_grad()
def consume_reference_dead_draws(clip_model: nn.Module) -> None:
    """Draw and discard what the KgCoOp reference draws for modules it builds but never uses (bias vectors, a meta-net linear, a second CLIP, an adapter),
    in its order, right after its context: ``bias_vectors`` (``[1, 512]`` N(0, 0.02^2) in CLIP's dtype), the
    initialisation of a second CLIP of the backbone's architecture (loaded to compute the anchors), the meta-net
    ``Linear(512, 512)``, then ``Adapter(512, 4)`` (``Linear(512, 128)``, ``Linear(128, 512)``, no bias).

    So the global torch generator is where the reference's is when the first batch is drawn (sampler, augmentation,
    DePT's classifier initialisation that follows).
    """
    from clip.model import CLIP, _infer_sizes

    torch.empty(1, REFERENCE_DEAD_WIDTH, dtype=clip_model.dtype).normal_(std=0.02)  # bias_vectors
    try:  # the second CLIP's random initialisation (draws depend on the parameter shapes only)
        sizes = _infer_sizes(clip_model.state_dict()) if isinstance(clip_model, CLIP) else None
    except (KeyError, IndexError, ValueError, AttributeError):
        sizes = None
    if sizes is None:
        logger.warning("KgCoOp: cannot re-enact the reference's second-CLIP initialisation for this backbone; "
                       "seeded runs will not follow the reference's random stream")
    else:
        CLIP(**sizes)
    w = REFERENCE_DEAD_WIDTH
    nn.Linear(w, w)  # meta_net.linear1
    nn.Linear(w, w // 4, bias=False)  # adapter.fc.0
    nn.Linear(w // 4, w, bias=False)  # adapter.fc.2


@TRAINER_REGISTRY.register()
class KgCoOp(PromptTrainer):
    """The CoOp learner + the ``KgCoOp`` regulariser: ``CE + W * (1 - mean_c cos(t_c, w_c^clip))``.

    Keys: ``TRAINER.COOP.{N_CTX, CSC, CTX_INIT, PREC, CLASS_TOKEN_POSITION, W, ALPHA (unused)}`` (spellings of
    ``MODEL.PROMPT_LEARNER.*``, ``TRAINER.PREC`` and ``REGULARISER.KGCOOP.W``). ``CTX_INIT``: a string is used as
    given, the configs' boolean True means "a photo of a", False/"" random (the reference ignored the string).
    The anchors come from the same frozen text encoder; amp covers the KG term too.
    The random draws of the reference's dead modules are consumed after the learner
    (:func:`consume_reference_dead_draws`), so seeded runs follow the reference's random stream.
    """

    LEARNER = "CoOpPromptLearner"
    REFERENCE_NODES = ("TRAINER.COOP", "TRAINER.CoOp")
    REGULARISERS = ("KgCoOp",)

    def after_learner_built(self, learner: nn.Module, clip_model: nn.Module) -> None:
        consume_reference_dead_draws(clip_model)


@TRAINER_REGISTRY.register()
class KgCoOpNemesis(KgCoOp):
    """KgCoOp + the ``Nemesis`` regulariser (``REGULARISER.NEMESIS.*``)."""

    REGULARISERS = ("KgCoOp", "Nemesis")
