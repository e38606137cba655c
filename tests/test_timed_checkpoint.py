"""The run clock of resumable runs (core.timed_checkpoint): a run killed and resumed from its
checkpoint reports the seconds of every process that worked on it, says where it was resumed, and
marks its cost as a lower bound when the checkpoint predates the clock. That a real training resumed
through it ends as an uninterrupted one is in tests/test_checkpoint.py."""
import pytest

from matrepro.core import timed_checkpoint as tc
from matrepro.core.checkpoint import Checkpoint
from matrepro.core.timed_checkpoint import TimedCheckpoint, run_cost


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
