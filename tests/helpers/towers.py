"""Small random transformers for the tests of the text and image towers' shortcuts."""
from __future__ import annotations

import torch


def frozen_transformer(width: int = 128, layers: int = 2, causal: bool = True, **kw):
    """A random ``clip.model.Transformer`` (4 heads, seed 0) with every parameter frozen; LayerScale gammas drawn
    from U(0.5, 1.5), since their 1e-5 init would hide the residual branches."""
    from clip.model import Transformer

    torch.manual_seed(0)
    t = Transformer(width, layers, 4, causal=causal, **kw)
    with torch.no_grad():
        for name, p in t.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.5, 1.5)
    return t.requires_grad_(False)
