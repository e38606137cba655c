import json

import pandas as pd
import pytest

from pymatgen.core import Composition

from conftest import battery_row

from matrepro.core.errors import MatreproError
from matrepro.papers.capnet import data as bt
from matrepro.papers.capnet import evaluate
from matrepro.papers.capnet import experiments
from matrepro.papers.capnet import preprocess

PAIRS = [("FePO4", "LiFePO4"), ("CoO2", "LiCoO2"), ("Mn2O4", "LiMn2O4"), ("TiS2", "LiTiS2"),
         ("V2O5", "LiV2O5"), ("NiO2", "LiNiO2"), ("FeSO4F", "LiFeSO4F"), ("MnO2", "LiMnO2")]


@pytest.fixture
def raw_csv(tmp_path):
    rows = []
    for i in range(40):  # 8 formula pairs, 5 polymorphs each
        c, d = PAIRS[i % len(PAIRS)]
        cap = bt.analytic_capacity(Composition(c), Composition(d), "Li")
        rows.append(battery_row(f"mp-{i}_Li", c, d, cap, **{"Average Voltage": 2 + (i % 7) * 0.3}))
    rows.append(battery_row("mp-99_Na", "CoO2", "NaCoO2", 235.0, **{"Working Ion": "Na"}))
    path = tmp_path / "batteries.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


CFG = {"profile": "smoke", "base_seed": 0, "working_ion": "Li", "row_filter": "all",
       "categorical_source": "auto", "split_fractions": [0.6, 0.2, 0.2], "splits": ["random", "group"],
       "seeds": [0, 1], "feature_sets": ["paper_like", "leak_free"], "min_category_count": 1,
       "architectures": ["dnn"], "train": {"max_epochs": 2, "patience": 2, "batch_size": 8},
       "models": {"dnn": {"hidden": 8, "embed_dim": 2, "depth": 1}}}


def test_preprocess_writes_table_splits_and_filter_log(raw_csv, tmp_path):
    out = tmp_path / "proc"
    meta = preprocess.preprocess(raw_csv, out, CFG)
    assert meta["rows"] == 40 and meta["categorical_source"] == "composition_proxy"
    assert meta["formula_pairs"] == 8 and meta["analytic_max_abs_error_mAh_g"] < 1e-9
    steps = json.loads((out / "filters.json").read_text())["steps"]
    assert steps[0]["removed"] == 1 and "working ion" in steps[0]["reason"]
    table, splits, meta = preprocess.load_processed(out)
    assert list(splits.columns) == ["Battery ID", "random_seed0", "group_seed0", "random_seed1", "group_seed1"]


def test_true_symmetry_labels_replace_the_proxies(raw_csv, tmp_path):
    refresh = pd.DataFrame({"Battery ID": [f"mp-{i}_Li" for i in range(39)],  # one electrode missing
                            "crystal_system_charge": "orthorhombic", "spacegroup_number_charge": 62,
                            "crystal_system_discharge": "orthorhombic", "spacegroup_number_discharge": 62})
    refresh_csv = tmp_path / "refresh.csv"
    refresh.to_csv(refresh_csv, index=False)
    meta = preprocess.preprocess(raw_csv, tmp_path / "proc", CFG, refresh_csv=refresh_csv)
    assert meta["categorical_source"] == "mp_symmetry"
    assert meta["categorical_columns"] == bt.SYMMETRY_CATEGORIES
    assert meta["cardinality"]["crystal_system_charge"] == 2  # orthorhombic + unknown
    steps = json.loads((tmp_path / "proc" / "filters.json").read_text())["steps"]
    assert any("1 electrode(s) not in it" in s["reason"] for s in steps)


def test_symmetry_requested_without_refresh_is_an_error(raw_csv, tmp_path):
    with pytest.raises(MatreproError, match="make mp-refresh"):
        preprocess.preprocess(raw_csv, tmp_path / "p", {**CFG, "categorical_source": "mp_symmetry"},
                          refresh_csv=tmp_path / "absent.csv")


def test_run_architecture_grid_and_collect(raw_csv, tmp_path):
    proc, res = tmp_path / "proc", tmp_path / "res"
    preprocess.preprocess(raw_csv, proc, CFG)
    results, preds = experiments.run_architecture("dnn", CFG, proc, progress=False, device="cpu")
    assert set(preds.groupby(["feature_set", "split", "seed"]).groups) == {
        (f, s, k) for f in CFG["feature_sets"] for s in CFG["splits"] for k in CFG["seeds"]}
    assert len(results["leak_free"]["group"]["mae"]["per_seed"]) == 2
    res.mkdir()
    (res / "dnn.json").write_text(json.dumps(results))
    analytic, _ = evaluate.analytic_results(CFG, proc)
    metrics = evaluate.collect(CFG, res, analytic)
    assert metrics["results"]["analytic"]["formulas"]["random"]["mae"]["mean"] < 1e-9
    assert metrics["profile"] == "smoke" and metrics["model_order"] == ["dnn", "analytic"]
    with pytest.raises(MatreproError, match="rerun dvc repro"):
        evaluate.collect({**CFG, "profile": "cpu"}, res, analytic)
