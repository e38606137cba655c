"""Resumable training: a run saves its whole state every few minutes and, when it is started again
after being killed, continues from the last save with the same result as an uninterrupted run.

What is saved is state, never live objects: the module weights and train/eval modes, every
level of a wrapped optimizer (SWA -> Lookahead -> Lamb: per-parameter state in parameter order,
the parameter-group settings and the plain attributes such as SWA's discard count), the
scheduler's ``state_dict``, and the random-number generators. A resumed run builds its objects
as usual and loads the state into them, so references between the objects stay intact. The file
is written atomically; it is our own cache, never user input, hence ``weights_only=False`` on
load. Tests check that an interrupted and resumed run ends with bit-identical weights, for our
training loop and for CrabNet's.
"""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def rng_state() -> dict:
    """The global generators a training epoch draws from (python, numpy, torch CPU and CUDA)."""
    out = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def module_state(model: torch.nn.Module) -> dict:
    """Weights and the train/eval mode of every submodule."""
    return {"weights": model.state_dict(), "training": {n: m.training for n, m in model.named_modules()}}


def load_module_state(model: torch.nn.Module, state: dict) -> None:
    model.load_state_dict(state["weights"])
    for n, m in model.named_modules():
        m.training = state["training"][n]


def _optimizer_chain(opt) -> list:
    """The optimizer and the ones it wraps (``.optimizer``, or ``.base_optimizer`` as in CrabNet's
    Lookahead), outermost first."""
    chain = []
    while isinstance(opt, torch.optim.Optimizer) and all(opt is not o for o in chain):
        chain.append(opt)
        opt = getattr(opt, "optimizer", None) or getattr(opt, "base_optimizer", None)
    return chain


_OPT_SKIP = {"param_groups", "state", "defaults", "optimizer", "base_optimizer"}


def _plain(v) -> bool:
    if isinstance(v, (bool, int, float, str, type(None), np.floating, np.integer)):
        return True
    return isinstance(v, (list, tuple)) and all(_plain(x) for x in v)


def optimizer_state(opt) -> list[dict]:
    """Each level of a (wrapped) optimizer: per-parameter state in parameter order, the group
    settings, and the plain public attributes (numbers, strings, lists of them)."""
    out = []
    for o in _optimizer_chain(opt):
        params = [p for g in o.param_groups for p in g["params"]]
        out.append({"state": [dict(o.state[p]) if p in o.state else None for p in params],
                    "groups": [{k: v for k, v in g.items() if k != "params"} for g in o.param_groups],
                    "attrs": {k: v for k, v in vars(o).items()
                              if not k.startswith("_") and k not in _OPT_SKIP and _plain(v)}})
    return out


def load_optimizer_state(opt, saved: list[dict]) -> None:
    chain = _optimizer_chain(opt)
    if len(chain) != len(saved):
        raise ValueError(f"checkpoint: {len(saved)} optimizer levels saved, {len(chain)} here")
    for o, lvl in zip(chain, saved):
        params = [p for g in o.param_groups for p in g["params"]]
        if len(params) != len(lvl["state"]):
            raise ValueError(f"checkpoint: {len(lvl['state'])} parameters saved, {len(params)} here")
        for p, st in zip(params, lvl["state"]):
            if st is not None:
                o.state[p] = {k: v.to(p.device) if torch.is_tensor(v) and v.dim() > 0 else v for k, v in st.items()}
        for g, sg in zip(o.param_groups, lvl["groups"]):
            g.update(sg)
        for k, v in lvl["attrs"].items():
            setattr(o, k, v)


class Checkpoint:
    """One run's resume file. ``due()`` is true once ``every_seconds`` have passed since the last
    save (or the start); ``save(state)`` stores a dict at an epoch boundary; ``load()`` returns
    the last saved dict or None; ``clear()`` removes the file once the run has finished."""

    def __init__(self, path: str | Path, every_seconds: float = 600.0):
        self.path = Path(path)
        self.every_seconds = float(every_seconds)
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_seconds

    def save(self, state: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.path)
        self._last = time.monotonic()

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        state = torch.load(self.path, weights_only=False)
        log.info("%s: resuming at epoch %s", self.path, state.get("epoch"))
        return state

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
