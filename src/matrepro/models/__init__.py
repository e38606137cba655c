"""Models are small torch modules registered by name; a paper picks them in params.yaml.

A model module registers its classes when it is imported, and a paper imports the model modules it
uses (``from ...models import tabular``), so that each DVC stage depends only on the model files it
really runs. ``build_model`` names the registered models when a name is unknown.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..core.errors import MatreproError

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
        raise MatreproError(f"unknown model {name!r}; registered: {sorted(MODELS)} (a model registers when its "
                            "module is imported: matrepro.models.tabular, .composition or .crystal)")
    return MODELS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

