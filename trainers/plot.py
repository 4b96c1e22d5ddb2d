"""PLOT: Chen et al., "PLOT: Prompt Learning with Optimal Transport for Vision-Language Models", ICLR 2023
(arXiv:2210.01253), and PLOT + Nemesis (Fu et al., ICLR 2024), as the ShyFoo/Nemesis fork names them."""
from __future__ import annotations

from dassl.engine import TRAINER_REGISTRY

from .modules.heads.plot import TransportPlanError
from .prompt_trainer import PromptTrainer

__all__ = ["PLOT", "PLOTNemesis"]


@TRAINER_REGISTRY.register()
class PLOT(PromptTrainer):
    """N prompt sets (``PLOTPromptLearner``) + the optimal-transport head (``PLOT``) + CE.

    Keys: ``TRAINER.PLOT.{N,N_CTX,CSC,CTX_INIT,CLASS_TOKEN_POSITION,PREC}`` (spellings of
    ``MODEL.PROMPT_LEARNER.{N_SETS,...}`` / ``TRAINER.PREC``); the Sinkhorn settings are ``MODEL.HEAD.PLOT.{EPS,
    MAX_ITER,THRESH}``. Works on ResNet and ViT towers (local features of ``clip.encode_image_tokens``). Logs the
    context's norms averaged over the N sets. A NaN transport plan stops the run with an error naming the step.
    """

    LEARNER = "PLOTPromptLearner"
    HEAD = "PLOT"
    REFERENCE_NODES = ("TRAINER.PLOT",)

    def _where(self) -> str:
        return (f"run {self.output_dir}, epoch {getattr(self, 'epoch', 0) + 1}/{getattr(self, 'max_epoch', '?')}, "
                f"iteration {getattr(self, 'batch_idx', 0) + 1}/{getattr(self, 'num_batches', '?')}")

    def forward_backward(self, batch: dict) -> dict[str, float]:
        try:
            return super().forward_backward(batch)
        except TransportPlanError as e:
            raise TransportPlanError(f"{e} ({self._where()}; no checkpoint was written for this epoch)") from None

    def model_inference(self, images):
        try:
            return super().model_inference(images)
        except TransportPlanError as e:
            raise TransportPlanError(f"{e} (run {self.output_dir}, evaluation)") from None


@TRAINER_REGISTRY.register()
class PLOTNemesis(PLOT):
    """PLOT + the ``Nemesis`` regulariser: per-position norms ``[N, M]`` summed over the sets; PAN scales position
    j in every set and recomputes the transport plan for each of the NP+1 copies (one text call for all of them).

    Keys: ``TRAINER.PLOTNemesis.{N,N_CTX,CSC,CTX_INIT,CLASS_TOKEN_POSITION,PREC}`` and ``.{A,NT,NP,CW,BETA}``
    (spellings of ``REGULARISER.NEMESIS.*``; the Food101/OxfordPets dataset YAMLs set ``PAN_SCALE`` / ``OMEGA``).
    """

    REGULARISERS = ("Nemesis",)
    REFERENCE_NODES = ("TRAINER.PLOTNemesis",)
