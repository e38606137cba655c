"""gan data: SuperCon validation, the grouped SuperCon split, the targets, and the GAN training
compositions with every downstream test composition excluded."""
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import mirror_dir
from matrepro.core.errors import DataError
from matrepro.core.splits import group_leaks
from matrepro.core.validate import FilterLog
from matrepro.features.atom_table import composition_key
from matrepro.papers.gan import data as gd


def _write(path, df):
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def _supercon_csv(tmp_path, rows):
    return _write(tmp_path / "sc.csv", pd.DataFrame(rows, columns=["name", "Tc"]))


def _steps(flog):
    return {s["reason"]: s["removed"] for s in flog.steps}


# --------------------------------------------------------------------------------- load_supercon
def test_supercon_malformed_names_and_tc_zero_are_logged(tmp_path):
    path = _supercon_csv(tmp_path, [
        ("MgB2", 39.0), ("Y2C2Br0.5!1.5", 10.0), ("Nb3Sn", 18.0), ("Sm1Ba-1Cu3O6.94", 5.0),
        ("Xx2", 3.0),  # matches the pattern but is no element: malformed too
        ("La2CuO4", 0.0), ("Ba0.2La1.8Cu1O4", 30.0), ("Fe2O3", 0.0)])
    flog = FilterLog("t")
    df = gd.load_supercon(path, flog)
    assert list(df.columns) == ["row", "formula", "target"]
    assert df.formula.tolist() == ["MgB2", "Nb3Sn", "Ba0.2La1.8Cu1O4"]
    assert df.row.tolist() == [1, 3, 7] and df.target.tolist() == [39.0, 18.0, 30.0]
    assert _steps(flog) == {"malformed chemical name": 3, "no reported Tc (Tc = 0)": 2}


def test_supercon_nan_tc_names_row_and_field(tmp_path):
    path = _supercon_csv(tmp_path, [("MgB2", 39.0), ("Nb3Sn", 18.0), ("NbTi", None)])
    with pytest.raises(DataError) as e:
        gd.load_supercon(path, FilterLog("t"))
    assert e.value.row == 3 and e.value.field == "Tc" and e.value.file == str(path)


def test_supercon_duplicate_composition_with_different_tc(tmp_path):
    path = _supercon_csv(tmp_path, [("MgB2", 39.0), ("Nb3Sn", 18.0), ("NbTi", 9.5), ("Mg2B4", 30.0)])
    with pytest.raises(DataError) as e:
        gd.load_supercon(path, FilterLog("t"))
    assert "row 1" in str(e.value) and "row 4" in str(e.value) and e.value.row == 4
    flog = FilterLog("t")
    df = gd.load_supercon(path, flog, duplicates="mean")
    assert df.formula.tolist() == ["MgB2", "Nb3Sn", "NbTi"] and df.row.tolist() == [1, 2, 3]
    assert df.target.tolist() == [34.5, 18.0, 9.5]
    assert [s["removed"] for s in flog.steps if "duplicate" in s["reason"]] == [1]


def test_supercon_duplicate_with_equal_tc_keeps_the_first(tmp_path):
    path = _supercon_csv(tmp_path, [("MgB2", 39.0), ("B2Mg", 39.0), ("Nb3Sn", 18.0), ("MgB2", 0.0)])
    flog = FilterLog("t")
    df = gd.load_supercon(path, flog)  # the Tc = 0 copy goes first, so no conflict
    assert df.formula.tolist() == ["MgB2", "Nb3Sn"]
    assert _steps(flog)["duplicate composition with the same Tc (first row kept)"] == 1


def test_supercon_split_keeps_each_composition_on_one_side():
    formulas = [f"Nb{i}Sn1" for i in range(1, 9)] * 2 + ["Mg1B2", "B2Mg1", "MgB2", "Ba0.2La1.8Cu1O4", "Ba0.4La3.6Cu2O8"]
    df = pd.DataFrame({"formula": formulas})
    labels = gd.supercon_split(df, seed=3)
    keys = [composition_key(f) for f in formulas]
    assert group_leaks(keys, labels) == []
    assert set(labels) == {"train", "val", "test"}
    assert (labels == gd.supercon_split(df, seed=3)).all()


# ----------------------------------------------------------------------------- a fake raw tree
SUPERCON_ROWS = [("MgB2", 39.0), ("Nb3Sn", 18.0), ("NbTi", 9.5), ("Nb3Ge", 23.0), ("V3Si", 17.0),
                 ("PbMo6S8", 15.0), ("YBa2Cu3O7", 92.0), ("Ba0.6K0.4Fe2As2", 38.0), ("HgBa2Ca2Cu3O8", 133.0),
                 ("NbN", 16.0), ("Sm1Ba-1Cu3O6.94", 80.0), ("ZnS", 0.0)]
# The same ten superconductors written differently, all in an OQMD training file.
SUPERCON_AS_OQMD = ["B2Mg1", "Sn1Nb3", "Ti1Nb1", "Ge1Nb3", "Si1V3", "S8Pb1Mo6", "O7Y1Ba2Cu3",
                    "Ba3K2Fe10As10", "Hg1Ba2Ca2Cu3O8", "N1Nb1"]
ONLY_TRAIN = ["NaCl", "KBr", "CaO", "GaAs", "SiC", "AlN", "MgO", "CsI"]


def _cfg(**over):
    cfg = {"split_seed": 0, "matbench_fold": 0, "matbench_val_fraction": 0.25,
           "caps": {"train": None, "val": None, "test": None}, "gan_holdout": 2, "gan_rows": None,
           "table": {"mapping": "integer", "tol": 0.02}}
    cfg.update(over)
    return cfg


@pytest.fixture
def raw(tmp_path):
    def split(path, formulas):
        _write(path, pd.DataFrame({"formula": formulas, "target": np.arange(len(formulas), dtype=float)}))

    for j, ds in enumerate(gd.OQMD_DATASETS):
        train = (SUPERCON_AS_OQMD + ONLY_TRAIN) if j == 0 else ONLY_TRAIN[j:] + ["Fe2O3", "NaN", "O1Mg1"]
        split(gd.oqmd_path(tmp_path, ds, "train"), train)
        split(gd.oqmd_path(tmp_path, ds, "val"), ["TiO2", "ZrO2"])
        # Fe4O6 is Fe2O3 (an OQMD train composition) written differently
        split(gd.oqmd_path(tmp_path, ds, "test"), ["Fe4O6", "CuO"] if j == 1 else ["CuO", "Cu2O"])
    for task in gd.MATBENCH_TARGETS.values():
        path, folds = gd.matbench_paths(tmp_path, task)
        # fold 0 holds Li4O2 (= Li2O, in an OQMD train file below) and Cs1I1 (= CsI); the rest are folds 1-4
        formulas = ["Li4O2", "BN", "Cs1I1", "BeO", "ScN", "YN", "LaN", "CeO2", "HfO2", "ThO2"]
        split(path, formulas)
        _write(folds, pd.DataFrame({"row_index": range(10), "test_fold": [0, 1, 0, 2, 3, 4, 1, 2, 3, 4]}))
    split(gd.oqmd_path(tmp_path, gd.OQMD_DATASETS[3], "train"), ONLY_TRAIN[3:] + ["Li2O", "Fe2O3"])
    _write(tmp_path / gd.SUPERCON, pd.DataFrame(SUPERCON_ROWS, columns=["name", "Tc"]))
    return tmp_path


def _supercon_test_keys(cfg, root):
    df = gd.load_supercon(root / gd.SUPERCON, FilterLog("t"))
    labels = gd.supercon_split(df, cfg["split_seed"])
    return {composition_key(f) for f, s in zip(df.formula, labels) if s == "test"}


def test_gan_compositions_exclude_every_downstream_test_composition(raw):
    cfg = _cfg()
    train, hold, flog = gd.gan_training_compositions(cfg, raw)
    keys = {composition_key(f) for f in train + hold}
    sc_test = _supercon_test_keys(cfg, raw)
    assert len(sc_test) == 1  # 10 compositions, 10 % test
    excluded = {composition_key(f) for f in ["Fe2O3", "Li2O", "CsI"]} | sc_test
    assert not keys & excluded
    union = {composition_key(f) for f in SUPERCON_AS_OQMD + ONLY_TRAIN + ["Fe2O3", "NaN", "Li2O"]}
    assert keys == union - excluded  # nothing else lost
    assert len(hold) == 2 and not set(hold) & set(train) and len(train) == len(union) - 4 - 2
    assert gd.leaking_compositions(train + hold, cfg, raw) == set()
    assert gd.leaking_compositions(train + ["Fe4O6"], cfg, raw) == {composition_key("Fe2O3")}
    steps = _steps(flog)
    assert steps["composition in a downstream test set: OQMD_Formation_Enthalpy test split"] == 1  # Fe2O3
    assert steps["composition in a downstream test set: matbench mp_gap test fold 0"] == 2  # Li2O, CsI
    assert steps["composition in a downstream test set: matbench mp_e_form test fold 0"] == 0  # already gone
    assert steps["composition in a downstream test set: SuperCon test split (seed 0)"] == 1
    # first formula string per composition, sorted by key, deterministic
    again, hold2, _ = gd.gan_training_compositions(cfg, raw)
    assert again == train and hold2 == hold
    assert "MgO" in train + hold and "O1Mg1" not in train + hold  # MgO comes first (file 1)
    assert train == sorted(train, key=composition_key)


def test_gan_rows_cap_is_logged(raw):
    train, hold, flog = gd.gan_training_compositions(_cfg(gan_rows=5, gan_holdout=1), raw)
    assert len(train) == 5 and len(hold) == 1
    assert any("profile cap" in s["reason"] and s["rows_after"] == 5 for s in flog.steps)


def test_load_target_oqmd_matbench_supercon(raw):
    cfg = _cfg()
    parts, flog = gd.load_target("oqmd_eform", cfg, raw)
    assert parts["test"].formula.tolist() == ["Fe4O6", "CuO"] and parts["test"].row.tolist() == [1, 2]
    assert list(parts["train"].columns) == ["row", "formula", "target"] and "NaN" in parts["train"].formula.tolist()
    mp, _ = gd.load_target("mp_gap", cfg, raw)
    assert sorted(mp["test"].row) == [1, 3]  # official fold 0 (0-based rows 0 and 2)
    assert len(mp["val"]) == 2 and len(mp["train"]) == 6  # 25 % of the 8 outer rows
    assert set(mp["train"].row) | set(mp["val"].row) | set(mp["test"].row) == set(range(1, 11))
    sc, flog = gd.load_target("supercon_tc", cfg, raw)
    assert sum(len(v) for v in sc.values()) == 10
    assert _steps(flog) == {"malformed chemical name": 1, "no reported Tc (Tc = 0)": 1}
    assert {composition_key(f) for f in sc["test"].formula} == _supercon_test_keys(cfg, raw)
    capped, flog = gd.load_target("mp_e_form", _cfg(caps={"train": 3, "val": None, "test": 1}), raw)
    assert len(capped["train"]) == 3 and len(capped["test"]) == 1 and len(flog.steps) == 2
    with pytest.raises(Exception):
        gd.load_target("nope", cfg, raw)


# ----------------------------------------------------------------------------- the real file
@pytest.fixture
def supercon_mirror_csv():
    m = mirror_dir()
    if m is None or not (m / gd.SUPERCON).is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    return m / gd.SUPERCON


def test_real_supercon_file(supercon_mirror_csv):
    with pytest.raises(DataError, match="different Tc"):  # the verbatim file lists some compositions twice
        gd.load_supercon(supercon_mirror_csv, FilterLog("t"))
    flog = FilterLog("t")
    df = gd.load_supercon(supercon_mirror_csv, flog, duplicates="mean")
    log = flog.to_frame()
    assert log.rows_before.iloc[0] == 16414
    assert log.removed.tolist()[:2] == [10, 3965]  # 3,966 rows have Tc = 0; one of them is malformed
    assert log.rows_after.iloc[1] == 12439
    assert len(df) == log.rows_after.iloc[-1] and (df.target > 0).all()
    labels = gd.supercon_split(df, 42)
    assert group_leaks([composition_key(f) for f in df.formula], labels) == []


# ------------------------------------------------------------------ the stage modules, end to end
from matrepro.papers.gan import generate, prepare, store, training  # noqa: E402


def test_prepare_writes_a_leak_free_encoded_set_and_the_coverage(raw, tmp_path):
    cfg = _cfg(targets=["oqmd_eform", "supercon_tc"])
    out = tmp_path / "processed"
    summary = prepare.prepare(cfg, out, raw)
    assert summary["leaks"] == 0
    tabs = store.load_tables(out)
    assert set(tabs) == {"train", "holdout"} and tabs["train"].shape[1:] == (85, 8)
    assert len(tabs["train"]) == summary["train"] and len(tabs["holdout"]) == summary["holdout"] == 2
    formulas = store.load_gan_formulas(out, "train")
    assert len(formulas) == len(tabs["train"])
    # the stored tables are the formulas' own tables, in the same order ("NaN", sodium nitride, stays a formula)
    from matrepro.features.atom_table import encode_formulas
    again, _ = encode_formulas(formulas)
    assert np.array_equal(again, tabs["train"])
    assert "NaN" in formulas + store.load_gan_formulas(out, "holdout")
    cov = pd.read_csv(out / store.COVERAGE)
    assert len(cov) == 6 and set(cov.target) == {"oqmd_eform", "supercon_tc"}
    assert (cov[["exact", "approximated", "unencodable"]].sum(axis=1) == cov.rows).all()


def test_stage_files_missing_name_the_file_and_the_stage(tmp_path):
    with pytest.raises(DataError, match=r"gan_tables\.npz.*dvc repro gan_data"):
        store.load_tables(tmp_path)
    with pytest.raises(DataError, match=r"gan_status\.csv.*dvc repro gan_data"):
        store.load_gan_formulas(tmp_path)
    with pytest.raises(DataError, match=r"generator\.pt.*dvc repro gan_train"):
        training.load_gan(tmp_path)


def _tiny_gan_cfg():
    return {"profile": "test", "gan_seed": 0, "table": {"mapping": "integer", "tol": 0.02},
            "generator": {"noise_dim": 16, "width": 0.125}, "critic": {"width": 0.125, "norm": "layer"},
            "gan": {"noise_dim": 16, "batch_size": 8, "epochs": 1, "holdout_rows": 8},
            "generator_checks": {"n_samples": 20, "threshold": 0.5}}


def test_train_gan_checkpoints_load_strictly_and_feed_the_generator_checks(tmp_path):
    from matrepro.features.atom_table import encode_formulas
    train = ["NaCl", "KBr", "CaO", "GaAs", "SiC", "AlN", "MgO", "CsI", "Fe2O3", "TiO2", "ZrO2", "CuO"]
    t, s = encode_formulas(train)
    data_dir, model_dir = tmp_path / "data", tmp_path / "models"
    data_dir.mkdir()
    np.savez_compressed(data_dir / store.TABLES, train=t, holdout=t[:4])
    s.assign(part="train").to_csv(data_dir / store.STATUS, index=False)
    cfg = _tiny_gan_cfg()
    m = training.train_gan(cfg, data_dir, model_dir, progress=False)
    assert m["settings"]["train_rows"] == 12 and m["settings"]["holdout_rows"] == 4
    assert len(m["history"]["critic_loss"]) == 1 and np.isfinite(m["holdout_critic_loss"]["last"])
    gen, critic, settings = training.load_gan(model_dir)
    saved = torch.load(model_dir / training.CRITIC, weights_only=True)["state_dict"]
    assert all(torch.equal(v, critic.state_dict()[k]) for k, v in saved.items())
    assert settings["critic"] == cfg["critic"] and not gen.training and not critic.training
    # a checkpoint with a stray key is refused (strict loading)
    ck = torch.load(model_dir / training.CRITIC, weights_only=True)
    ck["state_dict"]["stray.weight"] = torch.zeros(1)
    torch.save(ck, model_dir / training.CRITIC)
    with pytest.raises(RuntimeError, match="stray"):
        training.load_gan(model_dir)
    torch.save({**ck, "state_dict": saved}, model_dir / training.CRITIC)
    chk = generate.generator_checks(cfg, data_dir, model_dir)
    assert chk["report"]["n_generated"] == 20 and len(chk["formulas"]) == 20
    assert chk["report"]["n_training_compositions"] == 12
    assert list(chk["element_frequency"].columns) == ["generated", "training"]
    assert chk["element_frequency"]["training"]["O"] == pytest.approx(6 / 12)
