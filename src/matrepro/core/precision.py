"""Mixed precision as a model wrapper, so that the one training loop stays as it is.

``Autocast(model)`` runs the wrapped model's forward pass under ``torch.autocast`` (bf16 by
default) while it is training, and returns float32, so the loss and the optimiser work in fp32.
In eval mode it is the plain model: validation, SWA checks and test predictions are fp32. The CPU
path needs AVX-512 BF16 (or AMX) to be faster; ``benchmarks/lgdcnn_throughput.py`` measures it.
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import MatreproError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


class Autocast(nn.Module):
    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, *args, **kwargs):
        if not self.training:
            return self.model(*args, **kwargs)
        device = next(self.model.parameters()).device.type
        with torch.autocast(device, dtype=self.dtype):
            return self.model(*args, **kwargs).float()


def with_precision(model: nn.Module, precision: str) -> nn.Module:
    """``model`` itself for fp32, else wrapped in :class:`Autocast`."""
    if precision not in PRECISIONS:
        raise MatreproError(f"params.yaml: unknown precision {precision!r} (one of {sorted(PRECISIONS)})")
    return model if PRECISIONS[precision] is None else Autocast(model, PRECISIONS[precision])


def unwrap(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, Autocast) else model
