"""core.swa: CrabNet's weight-averaging rule (the L-G-DCNN authors' recipe), checked by hand and
against CrabNet's own SWA wrapper, and how the training loop drives it."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from matrepro.core.errors import MatreproError
from matrepro.core.swa import CrabNetSWA, UniformSWA, make_swa
from matrepro.core.train import TrainConfig, fit


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.register_buffer("frozen", torch.ones(1))


def _drive(rule, model, steps):
    """steps: (weight, mae) or 'epoch' (end of a check epoch); returns the end_epoch results."""
    ends = []
    for s in steps:
        if s == "epoch":
            ends.append(rule.end_epoch())
            continue
        with torch.no_grad():
            model.w.fill_(s[0])
        rule.observe(s[1])
    return ends


def test_crabnet_rule_by_hand():
    m = Scalar()
    swa = CrabNetSWA(m)
    f = lambda n: (1.0 / (n + 1)) ** (1 / 3)  # noqa: E731
    ends = _drive(swa, m, [(1.0, 1.0)])
    # first MAE: a reset (adds once) and then the ordinary addition: the weights are in twice
    assert swa.n_avg == 2 and swa.buffer[0].item() == pytest.approx(1.0)
    ends += _drive(swa, m, [(3.0, 0.995)])  # within 1 % of the minimum, not 2 % below the reference
    b = 1.0 + (3.0 - 1.0) * f(2)
    assert swa.n_avg == 3 and swa.buffer[0].item() == pytest.approx(b)
    ends += _drive(swa, m, [(5.0, 1.004)])  # 1.004 <= 1.01 * 0.995: still added
    b = b + (5.0 - b) * f(3)
    assert swa.n_avg == 4 and swa.buffer[0].item() == pytest.approx(b)
    ends += _drive(swa, m, [(7.0, 1.02), "epoch"])  # not added, but the epoch found a minimum
    assert swa.buffer[0].item() == pytest.approx(b) and ends == [True]
    ends += _drive(swa, m, [(9.0, 1.2), "epoch"])  # a check epoch without a minimum: a discard
    assert ends == [True, False]
    ends += _drive(swa, m, [(11.0, 0.97), "epoch"])  # 0.97 < 0.98 * 1.0: the average starts afresh
    assert swa.n_avg == 2 and swa.buffer[0].item() == pytest.approx(11.0) and ends[-1] is True
    with torch.no_grad():
        m.w.fill_(-1.0)
    assert swa.finalize(m) and m.w.item() == pytest.approx(11.0)
    assert m.frozen.item() == 1.0  # buffers are not averaged


def test_crabnet_rule_matches_crabnets_own_swa_wrapper():
    optim = pytest.importorskip("crabnet.utils.optim")
    rng = np.random.default_rng(0)
    ours_m, ref_p = Scalar(), nn.Parameter(torch.zeros(3))
    ours_m.w = nn.Parameter(torch.zeros(3))
    ours = CrabNetSWA(ours_m)
    ref = optim.SWA(torch.optim.SGD([ref_p], lr=0.1))
    maes = 1.0 - np.cumsum(rng.uniform(-0.004, 0.012, 60))  # mostly improving, with plateaus and setbacks
    for mae in maes:
        w = torch.as_tensor(rng.normal(size=3), dtype=torch.float32)
        with torch.no_grad():
            ours_m.w.copy_(w)
            ref_p.copy_(w)
        ours.observe(float(mae))
        ref.update_swa(float(mae))
        assert ours.end_epoch() == ref.minimum_found  # here every measurement is its own check epoch
        torch.testing.assert_close(ours.buffer[0], ref.state[ref_p]["swa_buffer"])
        assert ours.n_avg == ref.param_groups[0]["n_avg"]
    ref.swap_swa_sgd()
    ours.finalize(ours_m)
    torch.testing.assert_close(ours_m.w.data, ref_p.data)


def test_uniform_rule_keeps_only_strict_improvements_in_a_plain_mean():
    m = Scalar()
    swa = UniformSWA(m)
    ends = _drive(swa, m, [(1.0, 1.0), "epoch", (3.0, 1.0), "epoch", (5.0, 0.5), "epoch"])
    assert ends == [True, False, True]
    swa.finalize(m)
    assert m.w.item() == pytest.approx(3.0)  # (1 + 5) / 2


def test_unknown_rule_is_named():
    with pytest.raises(MatreproError, match="swa_rule 'best'"):
        make_swa("best", Scalar())


class Batch:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def subset(self, idx):
        return Batch(self.x[idx], self.y[idx])

    def to(self, device):
        return self

    def inputs(self):
        return (self.x,)


@pytest.mark.parametrize("rule, measured", [("crabnet", 4), ("uniform", 1)])
def test_the_loop_measures_after_every_batch_of_a_check_epoch_for_the_crabnet_rule(rule, measured):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    cfg = TrainConfig(loss="l1", optimizer="lamb_lookahead", scheduler="cyclic", epochs_step=1, swa=True,
                      swa_rule=rule, swa_start=1, discard_n=99, max_epochs=6, batch_size=16)
    hist = fit(model, Batch(x, y), Batch(x[:16], y[:16]), cfg, seed=0, device="cpu", progress=False)
    assert [c["epoch"] for c in hist.swa_checks] == [1, 3, 5]
    assert all(c["n_measured"] == measured for c in hist.swa_checks)  # 64 rows / batch 16 = 4 batches
    assert hist.swa_checks[0]["accepted"]
