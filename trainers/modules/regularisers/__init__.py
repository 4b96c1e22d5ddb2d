from .base import Regulariser
from .kgcoop import KgCoOp, kg_loss, kgcoop_template
from .nemesis import Nemesis, check_beta, logistic_omega, matrix_norm, parse_np, position_norms, weighted_norm

__all__ = ["Regulariser", "Nemesis", "KgCoOp", "kg_loss", "kgcoop_template", "check_beta", "logistic_omega",
           "matrix_norm", "parse_np", "position_norms", "weighted_norm"]
