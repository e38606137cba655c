"""A resumable run's whole cost: a :class:`~matrepro.core.checkpoint.Checkpoint` that also keeps
the run's clock across kills and resumes.

A run killed and resumed from its checkpoint used to report only the seconds of its last process.
Here each save stores the wall and CPU seconds spent on the run so far (this process's share since
the checkpoint object was made, plus what a loaded state carried); after ``load()``,
``prior_seconds`` / ``prior_cpu_seconds`` are what earlier processes spent up to the saved epoch and
``resumed_at`` lists the epochs where the run was picked up. Work between the last save and a kill is
done again after the resume, so it is counted once. A state saved before this clock existed leaves
the earlier time unknown (``prior_timed`` False) and the run's seconds are then a lower bound.

Kept apart from ``core.checkpoint`` (which every paper's training stage imports) so that the
benchmark stages which record run costs are the only ones it touches.
"""
from __future__ import annotations

import time

from .checkpoint import Checkpoint


class TimedCheckpoint(Checkpoint):
    def __init__(self, path, every_seconds: float = 600.0):
        super().__init__(path, every_seconds)
        self._t0, self._c0 = time.monotonic(), time.process_time()
        self.prior_seconds = self.prior_cpu_seconds = 0.0
        self.resumed_at: list = []
        self.prior_timed = True

    def clock(self) -> dict:
        """The run's seconds so far, over every process that worked on it."""
        return {"seconds": self.prior_seconds + time.monotonic() - self._t0,
                "cpu_seconds": self.prior_cpu_seconds + time.process_time() - self._c0,
                "resumed_at": list(self.resumed_at), "prior_timed": self.prior_timed}

    def save(self, state: dict) -> None:
        super().save({**state, "clock": self.clock()})

    def load(self) -> dict | None:
        state = super().load()
        if state is None:
            return None
        clock = state.get("clock")
        self._t0, self._c0 = time.monotonic(), time.process_time()
        self.prior_seconds = float(clock["seconds"]) if clock else 0.0
        self.prior_cpu_seconds = float(clock["cpu_seconds"]) if clock else 0.0
        self.prior_timed = bool(clock["prior_timed"]) if clock else False
        self.resumed_at = (list(clock["resumed_at"]) if clock else []) + [state.get("epoch")]
        return state


def run_cost(checkpoint: Checkpoint | None, seconds: float, cpu_seconds: float) -> dict:
    """A run record's cost fields: this process's wall and CPU seconds plus what earlier processes
    spent before a resume; for a resumed run also ``resumed_at`` (epochs) and
    ``earlier_time_recorded`` (False: a pre-clock checkpoint left the earlier time unknown, so the
    seconds are a lower bound)."""
    timed = isinstance(checkpoint, TimedCheckpoint)
    out = {"seconds": round(seconds + (checkpoint.prior_seconds if timed else 0.0), 1),
           "cpu_seconds": round(cpu_seconds + (checkpoint.prior_cpu_seconds if timed else 0.0), 1)}
    if timed and checkpoint.resumed_at:
        out["resumed_at"] = list(checkpoint.resumed_at)
        out["earlier_time_recorded"] = checkpoint.prior_timed
    return out
