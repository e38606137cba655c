"""Parameters: one ``params.yaml``, one section per paper, three profiles per section.

A section looks like::

    capnet:
      data: {...}              # every key but ``profiles`` is shared by all profiles
      train: {...}
      profiles:
        smoke: {...}           # deep-merged over the shared keys
        cpu: {...}
        paper: {...}

The profile in force is the top-level ``profile`` key of params.yaml (``dvc exp run -S profile=smoke``
or an edit changes it). It is deliberately not overridable by an environment variable: DVC records
params.yaml, so the recorded profile is always the one that made the outputs. In a notebook opened
by hand, the ``profile`` parameter may name another one.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from .errors import MatreproError
from .paths import project_root

PROFILES = ("smoke", "cpu", "paper")


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_params(path: str | Path | None = None) -> dict:
    path = Path(path) if path else project_root() / "params.yaml"
    with open(path) as fh:
        return yaml.safe_load(fh)


def active_profile(params: dict | None = None) -> str:
    params = params if params is not None else load_params()
    profile = params.get("profile", "cpu")
    if profile not in PROFILES:
        raise MatreproError(f"params.yaml: field 'profile': unknown profile {profile!r}; use one of {PROFILES}")
    return profile


def paper_config(paper: str, profile: str | None = None, params: dict | None = None) -> dict[str, Any]:
    """The resolved configuration of one paper under one profile (``profile`` key included)."""
    params = params if params is not None else load_params()
    if paper not in params:
        raise MatreproError(f"params.yaml: no section {paper!r}")
    profile = profile or active_profile(params)
    section = params[paper]
    if profile not in section.get("profiles", {}):
        raise MatreproError(f"params.yaml: section {paper!r} has no profile {profile!r}")
    common = {k: v for k, v in section.items() if k != "profiles"}
    cfg = deep_merge(common, section["profiles"][profile] or {})
    cfg["profile"] = profile
    cfg["base_seed"] = params.get("base", {}).get("seed", 0)
    return cfg
