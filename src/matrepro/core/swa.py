"""The two weight-averaging rules of the training loop's SWA recipe (``core.train``, ``swa: true``).

Both check the validation MAE at the end of every learning-rate cycle (epochs
``2*epochs_step*k - 1`` from ``epochs_step*swa_start - 1`` on), count a check that finds no new
minimum as a discard, stop after ``discard_n`` discards, and put the averaged weights in the model
at the end. They differ in what they average:

``swa_rule: crabnet`` (``CrabNetSWA``) -- the rule of CrabNet's ``utils/optim.py`` ``SWA`` wrapper and
of its ``Model.train``, which the L-G-DCNN authors use unchanged (dhw059/DeepModelFusion
``lgdcnn/utils/optim.py`` and ``lgdcnn/train.py``; re-implemented from its description, not copied):

* in a check epoch the validation MAE is measured after **every batch** (after the optimizer and
  learning-rate steps), and each measurement is offered to the average;
* a MAE below 0.98 x the reference (the MAE at the last reset; initially infinite) **resets** the
  average to empty and becomes the new reference; the running minimum follows every MAE;
* a MAE within 1 % of the running minimum (``mae <= 1.01 * minimum``) adds the weights with the
  decaying factor ``(1 / (n + 1)) ** (1/3)`` (``buffer += factor * (weights - buffer)``, ``n`` the
  additions since the reset; a reset itself already counts as one addition, as in the original,
  so right after a reset the weights are added twice);
* a check epoch in which no batch added weights is one discard.

In effect the average follows the latest near-best weights: a 2 % improvement starts it afresh.

``swa_rule: uniform`` (``UniformSWA``) -- this repository's first reading of the recipe (until
2026-12-06): one check at the end of each check epoch; the weights join a uniform average
(``torch.optim.swa_utils.AveragedModel``) only if the MAE beats every earlier check. Kept for the
comparison in ``benchmarks/lgdcnn_swa_rule.py``: it keeps early, worse cycles in the average.

Only trainable parameters are averaged (the frozen element table is not), as in the original.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .errors import MatreproError

RULES = ("crabnet", "uniform")


class CrabNetSWA:
    per_batch = True

    def __init__(self, model: nn.Module):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffer: list[torch.Tensor] | None = None
        self.n_avg = 0
        self.minimum = float("inf")
        self.reference = float("inf")
        self.found = False  # an addition in the current check epoch

    @torch.no_grad()
    def _add(self) -> None:
        if self.buffer is None:
            self.buffer = [torch.zeros_like(p) for p in self.params]
        factor = (1.0 / (self.n_avg + 1)) ** (1.0 / 3.0)
        for b, p in zip(self.buffer, self.params):
            b.add_((p.detach() - b) * factor)
        self.n_avg += 1

    def observe(self, mae: float) -> None:
        if mae < 0.98 * self.reference:
            self.buffer = [torch.zeros_like(p) for p in self.params]
            self.n_avg = 0
            self._add()
            self.reference = mae
        if mae < self.minimum:
            self.minimum = mae
        if mae <= 1.01 * self.minimum:
            self._add()
            self.found = True

    def end_epoch(self) -> bool:
        found, self.found = self.found, False
        return found

    @torch.no_grad()
    def finalize(self, model: nn.Module) -> bool:
        if self.buffer is None:
            return False
        for b, p in zip(self.buffer, self.params):
            p.copy_(b)
        return True

    def state_dict(self) -> dict:
        return {"buffer": [b.clone() for b in self.buffer] if self.buffer is not None else None,
                "n_avg": self.n_avg, "minimum": self.minimum, "reference": self.reference, "found": self.found}

    def load_state_dict(self, s: dict) -> None:
        self.buffer = [b.clone() for b in s["buffer"]] if s["buffer"] is not None else None
        self.n_avg, self.minimum, self.reference, self.found = s["n_avg"], s["minimum"], s["reference"], s["found"]


class UniformSWA:
    per_batch = False

    def __init__(self, model: nn.Module):
        self.model = model
        self.avg = torch.optim.swa_utils.AveragedModel(model)
        self.best = float("inf")
        self.found = False

    def observe(self, mae: float) -> None:
        if mae < self.best:
            self.best = mae
            self.avg.update_parameters(self.model)
            self.found = True

    def end_epoch(self) -> bool:
        found, self.found = self.found, False
        return found

    def finalize(self, model: nn.Module) -> bool:
        if int(self.avg.n_averaged) == 0:
            return False
        model.load_state_dict(self.avg.module.state_dict())
        return True

    def state_dict(self) -> dict:
        return {"avg": self.avg.state_dict(), "best": self.best, "found": self.found}

    def load_state_dict(self, s: dict) -> None:
        self.avg.load_state_dict(s["avg"])
        self.best, self.found = s["best"], s["found"]


def make_swa(rule: str, model: nn.Module):
    if rule == "crabnet":
        return CrabNetSWA(model)
    if rule == "uniform":
        return UniformSWA(model)
    raise MatreproError(f"params.yaml: unknown swa_rule {rule!r} ({' | '.join(RULES)})")
