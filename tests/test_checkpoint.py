"""Resumable training (core.checkpoint): a run killed part-way and started again from its
checkpoint ends with the same weights, losses and SWA decisions as a run never interrupted, with
the CrabNet recipe (Lamb+Lookahead, cyclic LR, SWA) and with plain early stopping."""
import pytest
import torch

from matrepro.core.checkpoint import Checkpoint, optimizer_state
from matrepro.core.timed_checkpoint import TimedCheckpoint
from matrepro.core.train import TrainConfig, fit, make_optimizer, predict
from matrepro.features.tabular import TabularBatch
from matrepro.models import build_model
from matrepro.models import tabular as _tabular  # noqa: F401  (registers the tabular models)

N_NUM, CARDS = 6, [4, 3, 5, 2]


class Killed(Exception):
    pass


class Halt(Checkpoint):
    """Saves at every epoch boundary and 'kills' the run right after saving at epoch ``at``."""

    def __init__(self, path, at: int):
        super().__init__(path, every_seconds=0)
        self.at = at

    def save(self, state):
        super().save(state)
        if state["epoch"] == self.at:
            raise Killed


def _batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    x_num = torch.randn(n, N_NUM, generator=g)
    x_cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], dim=1)
    return TabularBatch(x_num, x_cat, x_num[:, 0] - 0.5 * x_num[:, 1] + 0.2 * x_cat[:, 0].float())


def _run(name, cfg, checkpoint=None):
    torch.manual_seed(0)
    model = build_model(name, n_numeric=N_NUM, cardinalities=CARDS)
    hist = fit(model, _batch(48, 0), _batch(16, 1), cfg, seed=3, device="cpu", progress=False, checkpoint=checkpoint)
    return model, hist


CONFIGS = {
    "crabnet_recipe": ("transformer", TrainConfig(optimizer="lamb_lookahead", scheduler="cyclic", epochs_step=1,
                                                  swa=True, swa_start=1, discard_n=5, max_epochs=8, batch_size=16)),
    "early_stopping": ("dnn", TrainConfig(lr=0.05, max_epochs=40, patience=3, batch_size=8)),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_killed_and_resumed_run_equals_an_uninterrupted_one(case, tmp_path):
    name, cfg = CONFIGS[case]
    ref_model, ref = _run(name, cfg)
    stop = 5 if case == "crabnet_recipe" else max(2, ref.epochs // 2)
    assert stop < ref.epochs
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        _run(name, cfg, Halt(path, at=stop))
    assert path.is_file()
    assert torch.load(path, weights_only=False)["epoch"] == stop
    model, hist = _run(name, cfg, Checkpoint(path, every_seconds=3600))  # resumes at `stop`
    assert hist.train_loss == ref.train_loss and hist.val_loss == ref.val_loss
    assert hist.swa_checks == ref.swa_checks and hist.lr == ref.lr
    assert (hist.best_epoch, hist.stopped_early) == (ref.best_epoch, ref.stopped_early)
    for (k, a), b in zip(ref_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    val = _batch(16, 1)
    assert (predict(ref_model, val) == predict(model, val)).all()
    if case == "crabnet_recipe":
        assert ref.swa_checks  # the SWA state really was carried across the interruption


class TimedHalt(Halt, TimedCheckpoint):
    """Halt, saving the run's clock as well (core.timed_checkpoint)."""


def test_a_resume_through_the_timed_checkpoint_carries_the_clock_and_the_same_weights(tmp_path):
    name, cfg = CONFIGS["crabnet_recipe"]
    ref_model, _ = _run(name, cfg)
    path = tmp_path / "run.ckpt"
    with pytest.raises(Killed):
        _run(name, cfg, TimedHalt(path, at=5))
    saved = torch.load(path, weights_only=False)
    assert saved["epoch"] == 5 and saved["clock"]["seconds"] > 0 and saved["clock"]["resumed_at"] == []
    ck = TimedCheckpoint(path, every_seconds=3600)
    model, _ = _run(name, cfg, ck)
    assert ck.resumed_at == [5] and ck.prior_seconds == saved["clock"]["seconds"]
    for (k, a), b in zip(ref_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoint_file_is_atomic_due_and_cleared(tmp_path):
    ck = Checkpoint(tmp_path / "sub" / "a.ckpt", every_seconds=3600)
    assert ck.load() is None and not ck.due()
    ck.save({"epoch": 4, "x": torch.arange(3)})
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.ckpt"]  # no .tmp left behind
    assert ck.load()["epoch"] == 4
    ck.clear()
    assert ck.load() is None
    ck.clear()  # clearing twice is fine
    assert Checkpoint(tmp_path / "b.ckpt", every_seconds=0).due()


def test_optimizer_levels_must_match(tmp_path):
    cfg = CONFIGS["crabnet_recipe"][1]
    model = build_model("dnn", n_numeric=N_NUM, cardinalities=CARDS)
    saved = optimizer_state(make_optimizer(model, cfg))
    assert len(saved) >= 2  # Lookahead wraps Lamb: both levels are saved
    from matrepro.core.checkpoint import load_optimizer_state
    with pytest.raises(ValueError, match="optimizer levels"):
        load_optimizer_state(torch.optim.SGD(model.parameters(), lr=0.1), saved)
