"""Models are small torch modules registered by name; a paper picks them in params.yaml."""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import MatreproError

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(cls):
        if name in MODELS:
            raise MatreproError(f"model {name!r} registered twice")
        MODELS[name] = cls
        return cls
    return deco


def build_model(name: str, **kwargs) -> nn.Module:
    if name not in MODELS:
        raise MatreproError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


from . import tabular  # noqa: E402,F401  (registers the tabular models)
from . import composition  # noqa: E402,F401  (registers the composition models)
from . import crystal  # noqa: E402,F401  (registers cgcnn)
