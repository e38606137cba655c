"""lgdcnn peers (CrabNet from crabnet==2.0.8, Roost from aviary-models==1.2.1): a smoke fit on 64
real benchmark rows (mp_e_hull; hand-made formulas when no copy of the suite is on this machine),
prediction on 16 test rows, parameter counts at the published defaults, determinism for a fixed
seed, nothing written to the working directory, and the input checks. Each peer is skipped, with
the pip command, when its package is missing. Also shows that crabnet 2.0.8 runs on Python 3.11
(its metadata says <3.11; the Makefile installs it with --ignore-requires-python)."""
import importlib.util
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, mirror_dir
from matrepro.core.errors import DataError, MatreproError
from matrepro.features.composition import load_split_csv
from matrepro.papers.lgdcnn import peers

# trainable parameters at each peer's published default settings
DEFAULT_PARAMS = {"crabnet": 11_987_206, "roost": 2_322_961}
SIZES = {"train": 64, "val": 16, "test": 16}
# The smoke budget: one epoch; CrabNet rounds it up to one learning-rate cycle, 2 * epochs_step = 2.
SMOKE = {"max_epochs": 1, "epochs_step": 1, "discard_n": 5, "swa_start": 1, "batch_size": "auto",
         "lr": 1e-3, "base_lr": 1e-4, "max_lr": 6e-3}
EXPECTED_EPOCHS = {"crabnet": 2, "roost": 1}
HAND_MADE = ["NaCl", "Fe2O3", "LiCoO2", "MgO", "Al2O3", "SiO2", "TiO2", "ZnS", "GaAs", "CaTiO3", "LiFePO4",
             "KCl", "NaN", "BaTiO3", "SrTiO3", "Cu2O", "CuO", "NiO", "CoO", "MnO2", "Cr2O3", "V2O5", "ZrO2",
             "HfO2", "SnO2", "PbTiO3", "LiMn2O4", "Li2O", "Na2O", "K2O", "CaF2", "MgF2", "LiF", "NaF", "AlN",
             "GaN", "InP", "InAs", "CdTe", "CdS", "ZnO", "ZnSe", "Bi2Te3", "Sb2Te3", "PbS", "PbSe", "SnS",
             "GeO2", "WO3", "MoS2", "WS2", "NbN", "TaC", "TiC", "SiC", "B4C", "BN", "Fe3O4", "FeS2", "CoS2",
             "NiS", "Y2O3", "La2O3", "CeO2", "Nd2Fe14B", "SmCo5", "Li3PO4", "Na3PO4", "Ca3(PO4)2", "MgAl2O4",
             "ZnFe2O4", "CoFe2O4", "NiFe2O4", "LiNbO3", "KNbO3", "NaNbO3", "BiFeO3", "YBa2Cu3O7", "Fe",
             "Cu", "Al", "Si", "Ti", "Ni", "Co", "Zn", "Mg", "Ca", "Li", "Na", "K", "Ag", "Au", "Pt", "Pd"]


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: tiny fits on a busy 2-core machine are much faster that way."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _bench_dir() -> Path | None:
    """mp_e_hull of the CrabNet suite: the project's copy, the data mirror, or the crabnet wheel's."""
    cands = [ROOT / "data" / "raw" / "crabnet_benchmark" / "benchmark_data" / "mp_e_hull"]
    m = mirror_dir()
    if m is not None:
        cands.append(m / "crabnet_benchmark" / "benchmark_data" / "mp_e_hull")
    spec = importlib.util.find_spec("crabnet")
    if spec is not None and spec.origin:
        cands.append(Path(spec.origin).parent / "data" / "benchmark_data" / "mp_e_hull")
    return next((d for d in cands if all((d / f"{s}.csv").is_file() for s in SIZES)), None)


def _parts() -> dict:
    """{'train','val','test'}: seeded random rows (order kept, file row numbers in ``row``)."""
    d = _bench_dir()
    parts = {}
    for i, (s, n) in enumerate(SIZES.items()):
        if d is not None:
            df = load_split_csv(d / f"{s}.csv")
            df = df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]
        else:  # hand-made: distinct formulas per split, a smooth synthetic target
            start = {"train": 0, "val": 64, "test": 80}[s]
            f = (HAND_MADE * 2)[start:start + n]
            df = pd.DataFrame({"row": np.arange(1, n + 1), "formula": f,
                               "target": [len(x) * 0.1 + x.count("O") * 0.3 for x in f]})
        keep = np.sort(np.random.default_rng(10 + i).choice(len(df), n, replace=False))
        parts[s] = df.iloc[keep].reset_index(drop=True)
    return parts


def _cfg(**peer_cfg) -> dict:
    return {"train": dict(SMOKE), "peers": peer_cfg}


def _need(name):
    ok = peers.peer_available(name)
    if ok is not True:
        pytest.skip(ok)


@pytest.fixture(scope="module")
def parts():
    return _parts()


def test_peer_names_and_install_messages(monkeypatch):
    assert peers.PEERS == ("crabnet", "roost")
    with pytest.raises(MatreproError, match="unknown lgdcnn peer"):
        peers.peer_available("cgcnn")

    def missing(dist):
        raise PackageNotFoundError(dist)

    monkeypatch.setattr(peers, "version", missing)
    msg = peers.peer_available("crabnet")
    assert "--no-deps --ignore-requires-python crabnet==2.0.8" in msg
    assert "install aviary-models==1.2.1" in peers.peer_available("roost")
    with pytest.raises(MatreproError, match="crabnet==2.0.8"):
        peers.train_peer("crabnet", _parts(), _cfg(), 0)


@pytest.mark.parametrize("name", peers.PEERS)
def test_smoke_fit_predicts_and_is_deterministic(name, parts, tmp_path, monkeypatch):
    _need(name)
    monkeypatch.chdir(tmp_path)  # the peers must not write into the working directory
    runs = [peers.train_peer(name, parts, _cfg(), seed=7, desc=f"test {name}") for _ in range(2)]
    r = runs[0]
    pred = r.predict(parts["test"])
    assert r.name == name
    assert pred.shape == (SIZES["test"],) and pred.dtype == np.float64
    assert np.isfinite(pred).all()
    assert r.n_parameters == DEFAULT_PARAMS[name]
    assert r.epochs == EXPECTED_EPOCHS[name]
    assert r.batch_size == 128  # 'auto': CrabNet's rule floors at 128; Roost's published 128
    assert r.seconds > 0
    assert np.array_equal(pred, runs[1].predict(parts["test"]))  # same seed -> identical predictions
    # no target column needed to predict; the input frame is left as it was
    test = parts["test"].copy()
    assert np.array_equal(pred, r.predict(test[["formula"]]))
    pd.testing.assert_frame_equal(test, parts["test"])
    assert list(tmp_path.iterdir()) == []
    # predictions are in target units (z-scoring undone): near the training targets' range
    y = parts["train"].target
    assert (pred > y.min() - 3 * y.std()).all() and (pred < y.max() + 3 * y.std()).all()


@pytest.mark.parametrize("name", peers.PEERS)
def test_nan_target_is_rejected_naming_split_row_and_field(name, parts):
    _need(name)
    bad = {s: df.copy() for s, df in parts.items()}
    bad["train"].loc[5, "target"] = np.nan
    row = int(bad["train"].row.iloc[5])
    with pytest.raises(DataError) as e:
        peers.train_peer(name, bad, _cfg(), 0)
    msg = str(e.value)
    assert "train split" in msg and f"row {row}" in msg and "'target'" in msg and name in msg


@pytest.mark.parametrize("name", peers.PEERS)
def test_unparseable_formula_is_rejected_naming_split_row_and_field(name, parts):
    _need(name)
    bad = {s: df.copy() for s, df in parts.items()}
    bad["val"].loc[2, "formula"] = "Fe2Xq3"
    with pytest.raises(DataError) as e:
        peers.train_peer(name, bad, _cfg(), 0)
    msg = str(e.value)
    assert "val split" in msg and f"row {int(bad['val'].row.iloc[2])}" in msg and "'formula'" in msg


def test_roost_rejects_an_element_without_embedding(parts):
    _need("roost")
    bad = {s: df.copy() for s, df in parts.items()}
    bad["test"].loc[0, "formula"] = "RfO2"  # Z=104: matscholar200 stops at Lr
    with pytest.raises(DataError, match="matscholar200"):
        peers.train_peer("roost", bad, _cfg(), 0)


@pytest.mark.parametrize("name", peers.PEERS)
def test_unknown_peer_setting_is_an_error(name, parts):
    _need(name)
    with pytest.raises(MatreproError, match="unknown"):
        peers.train_peer(name, parts, _cfg(**{name: {"epochs": 5, "no_such_key": 1}}), 0)


def test_crabnet_killed_and_resumed_gives_the_uninterrupted_result(parts, tmp_path):
    """CrabNet saves its state (weights, Lamb+Lookahead+SWA, cyclic schedule, generators) at an
    epoch start; started again, it skips to that epoch and ends where an uninterrupted run does."""
    _need("crabnet")
    from matrepro.core.checkpoint import Checkpoint

    class Killed(Exception):
        pass

    class Halt(Checkpoint):
        def save(self, state):
            super().save(state)
            if state["epoch"] == 5:
                raise Killed

    cfg = {"train": {**SMOKE, "max_epochs": 8, "epochs_step": 1}, "peers": {}}
    ref = peers.train_peer("crabnet", parts, cfg, seed=3)
    path = tmp_path / "crab.ckpt"
    with pytest.raises(Killed):
        peers.train_peer("crabnet", parts, cfg, seed=3, checkpoint=Halt(path, every_seconds=0))
    from matrepro.core.timed_checkpoint import TimedCheckpoint

    ck = TimedCheckpoint(path, every_seconds=3600)  # the benchmark's checkpoint: also carries the run's clock
    res = peers.train_peer("crabnet", parts, cfg, seed=3, checkpoint=ck)
    assert ck.resumed_at == [5] and ck.prior_timed is False  # Halt saved no clock: the earlier time is unknown
    assert res.epochs == ref.epochs == 8
    assert res.info["swa_val_mae"] == ref.info["swa_val_mae"] and ref.info["swa_val_mae"]
    assert np.array_equal(res.predict(parts["test"]), ref.predict(parts["test"]))
