"""The run clock of resumable runs (core.timed_checkpoint): a run killed and resumed from its
checkpoint reports the seconds of every process that worked on it, says where it was resumed, and
marks its cost as a lower bound when the checkpoint predates the clock; the resumed training itself
is unchanged (same weights as an uninterrupted run)."""
import pytest
import torch

from matrepro.core import timed_checkpoint as tc
from matrepro.core.checkpoint import Checkpoint
from matrepro.core.timed_checkpoint import TimedCheckpoint, run_cost
from matrepro.core.train import TrainConfig, fit
from matrepro.features.tabular import TabularBatch
from matrepro.models import build_model
from matrepro.models import tabular as _tabular  # noqa: F401  (registers the tabular models)


class FakeTime:
    """Wall and CPU clocks the test moves by hand."""

    def __init__(self):
        self.wall, self.cpu = 1000.0, 50.0

    def monotonic(self):
        return self.wall

    def process_time(self):
        return self.cpu

    def advance(self, wall, cpu):
        self.wall += wall
        self.cpu += cpu


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(tc, "time", fake)
    return fake


def test_a_fresh_run_costs_what_it_measured(clock, tmp_path):
    ck = TimedCheckpoint(tmp_path / "a.ckpt", every_seconds=3600)
    assert ck.load() is None
    assert run_cost(ck, 12.34, 5.0) == {"seconds": 12.3, "cpu_seconds": 5.0}
    assert run_cost(None, 12.34, 5.0) == {"seconds": 12.3, "cpu_seconds": 5.0}
    assert run_cost(Checkpoint(tmp_path / "b.ckpt"), 1.0, 1.0) == {"seconds": 1.0, "cpu_seconds": 1.0}


def test_seconds_before_each_resume_are_carried_over(clock, tmp_path):
    path = tmp_path / "run.ckpt"
    first = TimedCheckpoint(path, every_seconds=3600)
    clock.advance(100, 90)
    first.save({"epoch": 7})
    clock.advance(30, 30)  # work after the last save, lost in the kill: done again, counted once
    second = TimedCheckpoint(path, every_seconds=3600)
    assert second.load()["epoch"] == 7
    assert (second.prior_seconds, second.prior_cpu_seconds, second.resumed_at) == (100, 90, [7])
    clock.advance(50, 40)
    second.save({"epoch": 12})
    third = TimedCheckpoint(path, every_seconds=3600)
    third.load()
    assert (third.prior_seconds, third.prior_cpu_seconds, third.resumed_at) == (150, 130, [7, 12])
    cost = run_cost(third, 20.0, 19.0)  # the last process measured 20 s wall, 19 s CPU
    assert cost == {"seconds": 170.0, "cpu_seconds": 149.0, "resumed_at": [7, 12], "earlier_time_recorded": True}


def test_a_checkpoint_from_before_the_clock_gives_a_lower_bound(clock, tmp_path):
    path = tmp_path / "old.ckpt"
    Checkpoint(path, every_seconds=3600).save({"epoch": 35})  # no clock in it
    ck = TimedCheckpoint(path, every_seconds=3600)
    ck.load()
    cost = run_cost(ck, 4841.0, 4800.0)
    assert cost == {"seconds": 4841.0, "cpu_seconds": 4800.0, "resumed_at": [35], "earlier_time_recorded": False}
    clock.advance(10, 10)
    ck.save({"epoch": 40})  # a later resume still knows the earlier time is missing
    again = TimedCheckpoint(path, every_seconds=3600)
    again.load()
    assert again.resumed_at == [35, 40] and again.prior_timed is False and again.prior_seconds == 10


class Killed(Exception):
    pass


class TimedHalt(TimedCheckpoint):
    """Saves at every epoch boundary and 'kills' the run right after saving at epoch ``at``."""

    def __init__(self, path, at: int):
        super().__init__(path, every_seconds=0)
        self.at = at

    def save(self, state):
        super().save(state)
        if state["epoch"] == self.at:
            raise Killed


def _run(checkpoint=None):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        x = torch.randn(n, 4, generator=g)
        return TabularBatch(x, torch.zeros(n, 1, dtype=torch.long), x[:, 0] - x[:, 1])

    train, val = batch(32), batch(8)
    model = build_model("dnn", n_numeric=4, cardinalities=[1])
    cfg = TrainConfig(optimizer="lamb_lookahead", scheduler="cyclic", epochs_step=1, swa=True, swa_start=1,
                      discard_n=5, max_epochs=6, batch_size=8)
    fit(model, train, val, cfg, seed=1, device="cpu", progress=False, checkpoint=checkpoint)
    return model


def test_a_real_training_resumes_with_its_clock_and_the_same_weights(tmp_path):
    ref = _run()
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        _run(TimedHalt(path, at=3))
    saved = torch.load(path, weights_only=False)
    assert saved["epoch"] == 3 and saved["clock"]["seconds"] > 0 and saved["clock"]["resumed_at"] == []
    ck = TimedCheckpoint(path, every_seconds=3600)
    model = _run(ck)
    assert ck.resumed_at == [3] and ck.prior_seconds == saved["clock"]["seconds"]
    for (k, a), b in zip(ref.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
