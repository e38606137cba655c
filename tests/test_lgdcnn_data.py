"""lgdcnn task loading: given splits, official matbench folds, profile caps (logged), slots."""
import numpy as np
import pandas as pd
import pytest

from matrepro.core.errors import DataError
from matrepro.papers.lgdcnn import tasks as lg_tasks

FORMULAS = ["Al2O3", "NaCl", "Fe", "SiO2", "LiFePO4", "MgO", "CaTiO3", "ZnS", "GaAs", "NaN"]


def _cfg(**over):
    cfg = {"split_seed": 42, "matbench_val_fraction": 0.25, "caps": {}, "drop_unary": False}
    cfg.update(over)
    return cfg


@pytest.fixture
def raw(tmp_path):
    d = tmp_path / lg_tasks.BENCH / "aflow__ael_bulk_modulus_vrh"
    d.mkdir(parents=True)
    for i, s in enumerate(lg_tasks.SPLITS):
        pd.DataFrame({"formula": FORMULAS, "target": np.arange(10) + 100 * i}).to_csv(d / f"{s}.csv", index=False)
    m = tmp_path / lg_tasks.MATBENCH_FULL
    m.mkdir(parents=True)
    pd.DataFrame({"formula": FORMULAS * 2, "target": np.arange(20.0)}).to_csv(m / "steels_yield.csv", index=False)
    f = tmp_path / lg_tasks.FOLDS
    f.mkdir(parents=True)
    pd.DataFrame({"row_index": range(20), "test_fold": [k % 5 for k in range(20)]}).to_csv(
        f / "matbench_steels.csv", index=False)
    return tmp_path


def test_extended_task_keeps_given_splits_and_the_formula_nan(raw):
    parts, flog = lg_tasks.load_task("aflow__ael_bulk_modulus_vrh", None, _cfg(), raw)
    assert [len(parts[s]) for s in lg_tasks.SPLITS] == [10, 10, 10]
    assert parts["test"].target.tolist() == list(range(200, 210))
    assert "NaN" in parts["train"].formula.tolist()  # sodium nitride, not a missing value
    assert parts["train"].attrs["n_slots"] == 4  # LiFePO4: the most elements
    assert flog.to_frame().empty


def test_caps_are_seeded_logged_and_keep_order(raw):
    cfg = _cfg(caps={"train": 4, "val": None, "test": 3})
    parts, flog = lg_tasks.load_task("aflow__ael_bulk_modulus_vrh", None, cfg, raw)
    again, _ = lg_tasks.load_task("aflow__ael_bulk_modulus_vrh", None, cfg, raw)
    assert len(parts["train"]) == 4 and len(parts["val"]) == 10 and len(parts["test"]) == 3
    assert parts["train"].row.tolist() == again["train"].row.tolist()
    assert parts["train"].row.is_monotonic_increasing
    log = flog.to_frame()
    assert len(log) == 2 and log.iloc[0].to_dict()["removed"] == 6 and "cap" in log.iloc[0].to_dict()["reason"]


def test_matbench_fold_uses_official_test_rows_and_inner_validation(raw):
    parts, _ = lg_tasks.load_task("steels", 2, _cfg(), raw)
    assert sorted(parts["test"].row - 1) == [k for k in range(20) if k % 5 == 2]
    assert len(parts["val"]) == 4 and len(parts["train"]) == 12  # 25 % of the 16 outer rows
    seen = set(parts["train"].row) | set(parts["val"].row) | set(parts["test"].row)
    assert seen == set(range(1, 21))
    assert not set(parts["val"].row) & set(parts["train"].row)


def test_matbench_fold_table_must_cover_every_row(raw):
    p = raw / lg_tasks.FOLDS / "matbench_steels.csv"
    pd.read_csv(p).iloc[:-1].to_csv(p, index=False)
    with pytest.raises(DataError, match="matbench_steels.csv"):
        lg_tasks.load_task("steels", 0, _cfg(), raw)


def test_nan_target_is_rejected_with_file_row_and_field(raw):
    p = raw / lg_tasks.BENCH / "aflow__ael_bulk_modulus_vrh" / "val.csv"
    df = pd.read_csv(p, keep_default_na=False, dtype=str)
    df.loc[3, "target"] = "nan"
    df.to_csv(p, index=False)
    with pytest.raises(DataError) as e:
        lg_tasks.load_task("aflow__ael_bulk_modulus_vrh", None, _cfg(), raw)
    msg = str(e.value)
    assert "val.csv" in msg and "row 4" in msg and "target" in msg


def test_unknown_task_is_an_error(raw):
    with pytest.raises(Exception, match="unknown lgdcnn task"):
        lg_tasks.load_task("not_a_task", None, _cfg(), raw)


def test_every_task_has_label_and_unit():
    for t in list(lg_tasks.EXTENDED) + list(lg_tasks.MATBENCH):
        assert lg_tasks.task_label(t) and lg_tasks.task_unit(t)
    assert len(lg_tasks.EXTENDED) == 18 and len(lg_tasks.MATBENCH) == 10


def test_task_config_gives_each_task_its_regime_folds_and_seeds():
    cfg = {"extended": ["mp_e_hull", "aflow__Egap"], "matbench": ["steels", "mp_gap"], "matbench_folds": [0],
           "seeds": [42], "caps": {"train": 2000, "val": 1000, "test": None},
           "train": {"max_epochs": 12, "epochs_step": 2, "batch_size": 64},
           "full_rows": {"max_train": 10000, "tasks": ["steels", "aflow__Egap"],
                         "caps": {"train": None, "val": None, "test": None},
                         "train": {"max_epochs": 300, "epochs_step": 10, "batch_size": "auto"}, "seeds": [1, 2, 3]},
           "task_overrides": {"steels": {"matbench_folds": [0, 1, 2, 3, 4]}}}
    s = lg_tasks.task_config(cfg, "steels")
    assert (s["regime"], s["folds"], s["seeds"]) == ("full", [0, 1, 2, 3, 4], [1, 2, 3])
    assert s["caps"] == {"train": None, "val": None, "test": None}
    assert s["train"] == {"max_epochs": 300, "epochs_step": 10, "batch_size": "auto"}
    g = lg_tasks.task_config(cfg, "mp_gap")
    assert (g["regime"], g["folds"], g["seeds"], g["train"]["max_epochs"]) == ("capped", [0], [42], 12)
    assert lg_tasks.task_config(cfg, "aflow__Egap")["folds"] == [None]
    assert lg_tasks.task_config(cfg, "mp_e_hull")["caps"]["train"] == 2000
    assert "full_rows" not in s and "task_overrides" not in s
    with pytest.raises(Exception, match="not in lgdcnn.extended"):
        lg_tasks.task_config(cfg, "jdft2d")
    with pytest.raises(Exception, match="full_rows.tasks"):
        lg_tasks.task_config(dict(cfg, full_rows={"tasks": ["nope"]}), "steels")
