"""A compact, Dassl-compatible engine (module paths and names follow KaiyangZhou/Dassl.pytorch).

Only what the CLIP prompt-learning trainers use is implemented: yacs config defaults, the trainer
lifecycle (``TrainerBase`` -> ``SimpleTrainer`` -> ``TrainerX``), data manager and transforms,
optimisers and warm-up LR schedulers, the classification evaluator, logging and checkpoint I/O.
"""
__version__ = "0.6.3+compact"
