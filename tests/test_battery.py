import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from matrepro.core.errors import DataError
from matrepro.core.validate import FilterLog
from matrepro.features.chem import parse_formula
from matrepro.papers.capnet import data as bt

F_OVER_3_6 = 96485.33212331001 / 3.6  # mAh per mol of electrons
W = {"Li": 6.941, "Fe": 55.845, "P": 30.973762, "O": 15.9994, "Co": 58.933195}  # pymatgen's weights


def test_analytic_capacity_by_hand_lifepo4():
    m = W["Li"] + W["Fe"] + W["P"] + 4 * W["O"]  # 157.756 g/mol
    expected = 1 * F_OVER_3_6 / m  # ~169.89 mAh/g
    got = bt.analytic_capacity(Composition("FePO4"), Composition("LiFePO4"), "Li")
    assert got == pytest.approx(expected, abs=1e-3)
    assert got == pytest.approx(169.89, abs=0.01)


def test_analytic_capacity_partial_lithiation_and_unreduced_formula():
    # Li(CoO2)2 = LiCo2O4 holds 0.5 Li per CoO2; LiCoO2 holds 1: dx = 0.5 per CoO2
    m = W["Li"] + W["Co"] + 2 * W["O"]
    got = bt.analytic_capacity(Composition("LiCo2O4"), Composition("LiCoO2"), "Li")
    assert got == pytest.approx(0.5 * F_OVER_3_6 / m, abs=1e-3)


def test_analytic_equals_table_on_every_row(battery_mirror_csv):
    df = bt.load_battery_table(battery_mirror_csv)
    feats = bt.composition_features(df, battery_mirror_csv)
    err = (feats["capacity_analytic"] - df[bt.TARGET]).abs()
    assert len(df) == 4351
    assert err.max() < 1e-6, df.loc[err.idxmax(), [bt.ID, bt.F_CHARGE, bt.F_DISCHARGE]].to_dict()


@pytest.mark.parametrize("discharge, family, metal", [
    ("LiFePO4", "phosphate", "Fe"),
    ("LiCoO2", "oxide", "Co"),
    ("LiMn2O4", "oxide", "Mn"),
    ("Li3V2(PO4)2F3", "fluoro-phosphate", "V"),
    ("LiFeSO4F", "fluoro-sulfate", "Fe"),
    ("Li2MnSiO4", "silicate", "Mn"),
    ("LiFeBO3", "borate", "Fe"),
    ("Li3FeF6", "fluoride", "Fe"),
    ("LiTiS2", "sulfide", "Ti"),
    ("Li3Sb", "intermetallic/other", "none"),
    ("LiNi0.5Mn1.5O4", "oxide", "Mn"),
    ("LiNiCoO4", "oxide", "Co"),  # tie: alphabetical
])
def test_categories_by_hand(discharge, family, metal):
    h = bt.host(Composition(discharge), "Li")
    assert bt.anion_family(h) == family
    assert bt.redox_metal(h) == metal


def test_prototype_and_element_count():
    feats = bt.composition_features(pd.DataFrame({bt.ION: ["Li"], bt.F_CHARGE: ["FePO4"],
                                                  bt.F_DISCHARGE: ["LiFePO4"]}), "mem.csv")
    assert feats.loc[0, "host_prototype"] == "ABC4"
    assert feats.loc[0, "host_n_elements"] == "3"


def _write(df, tmp_path):
    p = tmp_path / "batteries.csv"
    df.to_csv(p, index=False)
    return p


def test_loader_accepts_good_table(small_battery_df, tmp_path):
    df = bt.load_battery_table(_write(small_battery_df, tmp_path))
    assert len(df) == 3


@pytest.mark.parametrize("field, value, message", [
    ("Gravimetric Capacity", np.nan, "NaN"),
    ("Gravimetric Capacity", np.inf, "infinite"),
    ("Average Voltage", "abc", "non-numeric"),
])
def test_loader_rejects_bad_numbers(small_battery_df, tmp_path, field, value, message):
    df = small_battery_df.astype({field: object})
    df.loc[1, field] = value
    path = _write(df, tmp_path)
    with pytest.raises(DataError, match=message) as exc:
        bt.load_battery_table(path)
    assert exc.value.row == 2 and exc.value.field == field
    assert str(path) in str(exc.value) and "row 2" in str(exc.value)


def test_loader_rejects_missing_column(small_battery_df, tmp_path):
    with pytest.raises(DataError, match="missing column.*Average Voltage") as exc:
        bt.load_battery_table(_write(small_battery_df.drop(columns=["Average Voltage"]), tmp_path))
    assert exc.value.field == "Average Voltage"


def test_loader_rejects_duplicate_ids(small_battery_df, tmp_path):
    df = small_battery_df.copy()
    df.loc[2, bt.ID] = df.loc[0, bt.ID]
    with pytest.raises(DataError, match="duplicate id 'mp-1_Li' \\(first seen on row 1\\)") as exc:
        bt.load_battery_table(_write(df, tmp_path))
    assert exc.value.row == 3 and exc.value.field == bt.ID


def test_loader_rejects_unknown_ion(small_battery_df, tmp_path):
    df = small_battery_df.copy()
    df.loc[0, bt.ION] = "Xx"
    with pytest.raises(DataError, match="unknown working ion 'Xx'"):
        bt.load_battery_table(_write(df, tmp_path))


@pytest.mark.parametrize("formula, message", [
    ("Li(FePO4", "cannot parse formula"),
    ("LiXx2O3", "unknown element Xx"),
    ("", "empty"),
])
def test_bad_formulas_name_file_row_field(small_battery_df, formula, message):
    df = small_battery_df.copy()
    df.loc[2, bt.F_DISCHARGE] = formula
    with pytest.raises(DataError, match=message) as exc:
        bt.composition_features(df, "batteries.csv")
    assert (exc.value.file, exc.value.row, exc.value.field) == ("batteries.csv", 3, bt.F_DISCHARGE)


def test_parse_formula_is_pymatgen():
    assert parse_formula("Li3V2(PO4)3").reduced_formula == "Li3V2(PO4)3"


def test_row_selection_logs_every_removal(small_battery_df):
    df = small_battery_df.copy()
    df.loc[0, bt.ION] = "Na"
    df.loc[1, "Average Voltage"] = 7.0
    flog = FilterLog("t")
    out = bt.select_rows(df, {"working_ion": "Li", "row_filter": "cathode"}, flog)
    assert list(out[bt.ID]) == ["mp-3_Li"]
    steps = flog.to_frame()
    assert list(steps["removed"]) == [1, 1, 0]
    assert steps["reason"].str.contains("working ion").iloc[0]


def test_feature_sets_leak_free_has_no_energy_columns():
    assert set(bt.LEAKING_COLUMNS) <= set(bt.FEATURE_SETS["paper_like"])
    assert not set(bt.LEAKING_COLUMNS) & set(bt.FEATURE_SETS["leak_free"])
