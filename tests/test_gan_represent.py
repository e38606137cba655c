"""gan representations, predictors, claim check and generator checks on tiny hand-made inputs."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Composition

from matrepro.features.atom_table import ELEMENTS, encode_formulas
from matrepro.models import build_model
from matrepro.papers.gan import generate, represent

SLIM = {"width": 0.125, "norm": "layer"}


@pytest.fixture(scope="module")
def critic():
    torch.manual_seed(0)
    return build_model("matgan_critic", **SLIM).eval()


# ------------------------------------------------------------------------------ representations
def test_onehot_is_the_fraction_vector():
    x = represent.onehot_features(["Fe2O3", "NaCl", "Fe2O3"])
    assert x.shape == (3, 118)
    assert x[0, 25] == pytest.approx(0.4) and x[0, 7] == pytest.approx(0.6)  # Fe Z=26, O Z=8
    assert x[0].sum() == pytest.approx(1.0) and np.count_nonzero(x[0]) == 2
    assert x[1, 10] == pytest.approx(0.5) and x[1, 16] == pytest.approx(0.5)  # Na Z=11, Cl Z=17
    np.testing.assert_array_equal(x[0], x[2])
    frac = represent.onehot_features(["Ba0.2La1.8Cu1O4"])  # fractional formulas are fine
    assert frac.sum() == pytest.approx(1.0) and frac[0, 55] == pytest.approx(0.2 / 7)


def test_onehot_bad_formula_names_the_row():
    with pytest.raises(ValueError, match="row 2"):
        represent.onehot_features(["NaCl", "Xx2"], file="f.csv")


def test_gan_features_nan_for_empty_tables(critic):
    tables, status = encode_formulas(["Fe2O3", "NaCl", "Li20Al1"])
    assert list(status.status) == ["exact", "exact", "unencodable"]
    critic.train()
    f = represent.gan_features(critic, tables, batch_size=2)
    assert critic.training  # mode restored
    critic.eval()
    assert f.shape == (3, critic.n_features) and f.dtype == np.float32
    assert np.isfinite(f[:2]).all() and np.isnan(f[2]).all()
    assert not np.allclose(f[0], f[1])
    g = represent.gan_features(critic, tables[:2])
    np.testing.assert_allclose(f[:2], g, rtol=1e-5, atol=1e-6)  # batching does not matter
    assert represent.gan_features(critic, tables[:0]).shape == (0, critic.n_features)


def test_table_batch_protocol():
    tables, _ = encode_formulas(["Fe2O3", "NaCl", "LiFePO4", "CaTiO3", "MgO"])
    b = represent.TableBatch.from_tables(tables, np.arange(5.0))
    assert len(b) == 5 and b.x.shape == (5, 1, 85, 8) and b.x.dtype == torch.float32
    s = b.subset(torch.tensor([0, 2]))
    assert len(s) == 2 and s.x.shape == (2, 1, 85, 8) and s.y.tolist() == [0.0, 2.0]
    assert torch.equal(s.x[1, 0], torch.as_tensor(tables[2], dtype=torch.float32))
    (x,) = b.subset(slice(1, 4)).to("cpu").inputs()
    assert x.shape == (3, 1, 85, 8)
    nb = represent.TableBatch.from_tables(tables)
    assert nb.y is None and nb.subset([1]).y is None and len(nb.to("cpu")) == 5


# ----------------------------------------------------------------------------------- predictors
def _cfg(**over) -> dict:
    cfg = {"representations": ["gan", "magpie", "onehot"], "predictors": ["rf", "mlp"], "finetune": True,
           "rf": {"n_estimators": 5, "n_jobs": 1}, "mlp": {"hidden": [16], "dropout": 0.0},
           "mlp_train": {"lr": 0.003, "batch_size": 32, "max_epochs": 2, "patience": 2, "loss": "l1"},
           "critic": dict(SLIM), "finetune_model": {"hidden": 16, "dropout": 0.1},
           "finetune_train": {"lr": 0.001, "batch_size": 32, "max_epochs": 1, "patience": 1, "loss": "l1"}}
    cfg.update(over)
    return cfg


def test_train_predictors_on_a_linear_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.5
    x[3, 1] = np.nan  # a missing feature is handled alike by both predictors
    cut = {"train": slice(0, 120), "val": slice(120, 160), "test": slice(160, 200)}
    X = {s: x[c] for s, c in cut.items()}
    Y = {s: y[c] for s, c in cut.items()}
    timings = {}
    out = represent.train_predictors(X, Y, _cfg(rf={"n_estimators": 20}, mlp_train={"max_epochs": 5, "batch_size": 32}),
                                     seed=0, timings=timings)
    assert set(out) == {"rf", "mlp"} == set(timings)
    for p in out.values():
        assert p.shape == (40,) and np.isfinite(p).all()
    base = np.abs(Y["test"] - Y["train"].mean()).mean()
    assert np.abs(out["rf"] - Y["test"]).mean() < 0.8 * base
    again = represent.train_predictors(X, Y, _cfg(predictors=["rf"], rf={"n_estimators": 20}), seed=0)
    np.testing.assert_array_equal(again["rf"], out["rf"])  # seeded


def test_mlp_input_clip_bounds_a_wild_test_row():
    # feature 0 is nearly constant on train; one test row has it 1e6 sd out (Magpie's mp_e_form case)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(160, 3))
    x[:, 0] = 1.0 + 1e-6 * rng.normal(size=160)
    y = x[:, 1] - x[:, 2]
    X = {"train": x[:100], "val": x[100:130], "test": x[130:].copy()}
    X["test"][0, 0] = 2.0
    Y = {"train": y[:100], "val": y[100:130], "test": y[130:]}
    over = {"predictors": ["mlp"], "mlp_train": {"lr": 0.003, "batch_size": 32, "max_epochs": 3, "patience": 3, "loss": "l1"}}
    free = represent.train_predictors(X, Y, _cfg(**over), seed=0)["mlp"]
    clipped = represent.train_predictors(X, Y, _cfg(mlp_input_clip=10.0, **over), seed=0)["mlp"]
    np.testing.assert_allclose(clipped[1:], free[1:], rtol=1e-5, atol=1e-6)  # ordinary rows: inside +-10 sd
    assert abs(free[0]) > 100 * np.abs(Y["test"]).max()  # the wild row, unclipped
    assert abs(clipped[0]) < 10 * np.abs(Y["test"]).max()


# ---------------------------------------------------------------------------------- claim check
def _model(rep, pred, mae, std):
    return {"representation": rep, "predictor": pred, "mae": mae, "mae_std": std, "per_seed": [{}, {}, {}]}


def test_claim_check_verdicts():
    def res(target, numbers):
        models = {f"{r}_{p}": _model(r, p, m, s) for (r, p), (m, s) in numbers.items()}
        return {"target": target, "predictors": ["rf", "mlp"], "blocks": {"encoded": {"models": models}}}

    a = res("a", {("gan", "rf"): (0.10, 0.01), ("magpie", "rf"): (0.20, 0.01), ("onehot", "rf"): (0.30, 0.02),
                  ("gan", "mlp"): (0.30, 0.01), ("magpie", "mlp"): (0.20, 0.01), ("onehot", "mlp"): (0.40, 0.01)})
    b = res("b", {("gan", "rf"): (0.20, 0.05), ("magpie", "rf"): (0.21, 0.05), ("onehot", "rf"): (0.50, 0.05)})
    out = represent.claim_check([a, b])
    assert list(out.columns[:5]) == ["target", "predictor", "gan MAE", "magpie MAE", "onehot MAE"]
    v = {(t, p): x for t, p, x in zip(out.target, out.predictor, out.verdict)}
    assert v == {("a", "rf"): "yes", ("a", "mlp"): "no", ("b", "rf"): "within noise"}
    row = out[(out.target == "a") & (out.predictor == "rf")].iloc[0]
    assert row["margin"] == pytest.approx(np.hypot(0.01, 0.02))  # the larger combined std
    assert "within noise" in row["rule"]
    assert len(represent.claim_check(a)) == 2  # one result dict works too


def test_report_block_formats_mean_and_std_per_row(tmp_path):
    import json

    from matrepro.papers.gan import compare, report

    m = {"representation": "gan", "predictor": "rf", "mae": 0.123456, "mae_std": 0.0123, "rmse": 0.2, "rmse_std": 0.01,
         "r2": 0.8, "r2_std": 0.05, "per_seed": [{}, {}, {}]}
    rows = {"train": 2000, "val": 500, "test": 1999}
    res = {"target": "oqmd_gap", "profile": "smoke", "seeds": [0, 1, 2], "predictors": ["rf"],
           "blocks": {"encoded": {"rows": rows, "models": {"gan_rf": m}}}}
    tab = compare.compact_table(res)
    assert tab.iloc[0].to_dict() == {"target": "oqmd_gap", "rows": "encoded", "train / val / test": "2,000 / 500 / 1,999",
                                     "representation": "gan", "predictor": "rf", "seeds": 3,
                                     "MAE": "0.1235 ± 0.012", "RMSE": "0.2 ± 0.01", "R²": "0.8 ± 0.05"}
    (tmp_path / "gan").mkdir()
    (tmp_path / "gan" / "oqmd_gap.json").write_text(json.dumps(res))
    text = report.results_markdown(tmp_path)
    assert "0.1235 ± 0.012" in text and "oqmd_gap (eV)" in text and "profile `smoke`" in text


# ----------------------------------------------------------------------------------- generation
def test_validity_charge_neutrality():
    v = generate.validity(["NaCl", "Na2Cl", "", None, "Fe2O3", "Xx"])
    assert v.dtype == bool and v.tolist() == [True, False, False, False, True, False]
    d = generate.validity_details(["Na2Cl", None, "Xx", "Ba0.2La1.8Cu1O4"])
    assert d.reason[0].startswith("no charge-neutral") and d.reason[1] == "empty formula"
    assert "pymatgen cannot handle" in d.reason[2] or "unknown element" in d.reason[2]
    assert not d.valid[3]  # a non-integer formula cannot be checked: invalid, with a reason
    assert d.reason[3]


@pytest.mark.parametrize("formula", ["Fe2O3", "Fe3O4", "LiFePO4", "Na2Cl", "CaTiO3", "Li8Be7B5C3N2O8", "Fe",
                                     "NaCl2", "CuSO4", "Ba2YCu3O7", "Xe1F2", "Mg3N2Cl", "Fe7Co5Ni3Cu8"])
def test_set_sum_agrees_with_pymatgen(formula):
    comp = Composition(formula)
    assert generate._neutral_exists(comp.reduced_composition) == bool(comp.oxi_state_guesses(max_sites=-50))


def test_set_sum_agrees_with_pymatgen_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(40):
        els = rng.choice(ELEMENTS, int(rng.integers(2, 5)), replace=False)
        comp = Composition("".join(f"{e}{rng.integers(1, 9)}" for e in els))
        assert generate._neutral_exists(comp.reduced_composition) == bool(comp.oxi_state_guesses(max_sites=-50)), comp


def test_validity_many_elements_is_fast():
    t0 = time.perf_counter()
    d = generate.validity_details(["Fe7Co5Ni3Cu8Mn7Cr5V3Ti7", "Li8Be7B5C3N7O8Mg7Al8"])
    assert time.perf_counter() - t0 < 10
    assert not d.valid[0] and d.method[0].startswith("exact set-sum")  # pymatgen: () after ~5 min
    assert not d.valid[1] and "not checked" in d.reason[1]  # 52 atoms reduced: beyond max_sites


def test_generator_report_by_composition_key():
    gen = ["Fe2O3", "Fe4O6", "NaCl", None, "Na2Cl", "LiFePO4", ""]
    rep = generate.generator_report(gen, ["NaCl", "MgO"])
    assert rep["n_generated"] == 7 and rep["n_decodable"] == 5
    assert rep["decodable_share"] == pytest.approx(5 / 7)
    assert rep["valid_share"] == pytest.approx(4 / 5)  # Na2Cl is not charge-neutral
    assert rep["n_unique"] == 4 and rep["unique_share"] == pytest.approx(4 / 5)  # Fe2O3 = Fe4O6
    assert rep["n_novel"] == 3 and rep["novel_share"] == pytest.approx(3 / 4)  # NaCl is in training
    assert rep["novel_examples"] == ["Fe2O3", "LiFePO4"]  # valid, novel, first seen
    el = generate.generator_report(["Zn", "Fe2O3", "Zn2", "Cu"], ["NaCl"])
    assert el["n_valid_novel"] == 3 and el["novel_examples"] == ["Zn", "Fe2O3", "Cu"]
    assert el["n_valid_novel_compounds"] == 1 and el["novel_compound_examples"] == ["Fe2O3"]  # elements are no new materials
    assert generate.generator_report([None], ["NaCl"])["n_decodable"] == 0


def test_element_statistics():
    f = ["Fe2O3", "NaCl", "LiFePO4", "Cu", None]
    dist = generate.element_count_distribution(f)
    assert list(dist.index) == ["1", "2", "3", "4", "5", "6", "7", "8+"]
    assert dist.sum() == pytest.approx(1.0)
    assert dist["1"] == pytest.approx(0.25) and dist["2"] == pytest.approx(0.5) and dist["4"] == pytest.approx(0.25)
    freq = generate.element_frequency(f)
    assert list(freq.index) == list(ELEMENTS)
    assert freq["Fe"] == pytest.approx(0.5) and freq["O"] == pytest.approx(0.5) and freq["H"] == 0


def test_generated_formulas_decode(critic):
    gen = build_model("matgan_generator", noise_dim=16, width=0.125)
    out = generate.generated_formulas(gen, 5, 16, seed=0)
    assert len(out) == 5 and all(f is None or isinstance(f, str) for f in out)
    assert out == generate.generated_formulas(gen, 5, 16, seed=0)  # seeded


# ----------------------------------------------------------------------------------- end to end
def _parts(seed: int = 0, n: int = 60, unencodable: bool = True) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    metals = ["Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Al", "Ga", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu",
              "Zn", "Y", "Zr"]
    anions = ["O", "S", "F", "Cl", "N"]
    pool = sorted({f"{m}{a}{x}{c}" for m in metals for x in anions for a in (1, 2, 3) for c in (1, 2, 3, 4)})
    pick = rng.permutation(len(pool))[: 3 * n]
    formulas = [pool[i] for i in pick]
    parts = {}
    for k, s in enumerate(represent.PARTS):
        f = formulas[k * n:(k + 1) * n]
        if unencodable:
            f[5] = "Li20Al1"  # no cell of counts 1..8 within tol 0.02 (Li9Al1 would be: Li8Al1, error 0.011)
        comp = [Composition(x) for x in f]
        y = [sum(el.Z * comp_i.get_atomic_fraction(el) for el in comp_i) / 10 + rng.normal(0, 0.1) for comp_i in comp]
        parts[s] = pd.DataFrame({"row": np.arange(1, n + 1), "formula": f, "target": y})
    return parts


def _encode(parts):
    tables, status = {}, {}
    for s, df in parts.items():
        tables[s], status[s] = encode_formulas(df.formula.tolist(), file=s)
    return tables, status


def test_run_target_end_to_end(critic):
    parts = _parts()
    tables, status = _encode(parts)
    assert all((status[s].status == "unencodable").sum() == 1 for s in represent.PARTS)
    state = {k: v.clone() for k, v in critic.state_dict().items()}
    res, preds = represent.run_target(parts, tables, status, critic, state, _cfg(), [0, 1], {})

    assert res["rows"]["left_out_unencodable"] == {"train": 1, "val": 1, "test": 1}
    assert res["rows"]["encoded"] == {"train": 59, "val": 59, "test": 59}
    assert res["rows"]["all"] == {"train": 60, "val": 60, "test": 60}
    assert res["n_features"] == {"gan": critic.n_features, "magpie": 132, "onehot": 118}
    enc, full = res["blocks"]["encoded"], res["blocks"]["all"]
    assert set(enc["models"]) == {"gan_rf", "gan_mlp", "magpie_rf", "magpie_mlp", "onehot_rf", "onehot_mlp",
                                  "gan_finetune"}
    assert set(full["models"]) == {"magpie_rf", "magpie_mlp", "onehot_rf", "onehot_mlp"}
    assert enc["rows"]["test"] == 59 and full["rows"]["test"] == 60 and not full["copied_from_encoded"]
    for block in (enc, full):
        for m in block["models"].values():
            assert [r["seed"] for r in m["per_seed"]] == [0, 1]
            assert all(np.isfinite([m["mae"], m["mae_std"], m["rmse"], m["r2"]]))

    # predictions: one row per test row; the encoded columns share one set of rows, the unencodable one NaN
    assert len(preds) == 60 and list(preds.formula) == list(parts["test"].formula)
    left = (preds.table_status == "unencodable").to_numpy()
    assert left.sum() == 1 and preds.formula[left].item() == "Li20Al1"
    enc_cols = [*(f"{r}_{p}" for r in ("gan", "magpie", "onehot") for p in ("rf", "mlp")), "gan_finetune"]
    for c in enc_cols:
        np.testing.assert_array_equal(preds[c].isna().to_numpy(), left)
    for c in ("magpie_rf_all", "magpie_mlp_all", "onehot_rf_all", "onehot_mlp_all"):
        assert preds[c].notna().all()
    # the encoded block's seed-0 metric is computed on exactly the encoded test rows
    enc_idx = ~left
    r = represent.train_predictors(
        {s: represent.onehot_features(parts[s].formula[(status[s].status != "unencodable").to_numpy()])
         for s in represent.PARTS},
        {s: parts[s].target.to_numpy()[(status[s].status != "unencodable").to_numpy()] for s in represent.PARTS},
        _cfg(predictors=["rf"]), seed=0)
    assert enc["models"]["onehot_rf"]["per_seed"][0]["mae"] == pytest.approx(
        np.abs(r["rf"] - preds.target[enc_idx].to_numpy()).mean())

    tab = represent.results_table(res)
    assert len(tab) == 11 and set(tab.rows) == {"encoded", "all"}
    assert set(tab[tab.rows == "encoded"].n_test) == {59}
    check = represent.claim_check(res)
    assert list(check.predictor) == ["rf", "mlp"]
    assert set(check.verdict) <= {"yes", "no", "within noise"}


def test_run_target_nothing_left_out_copies_the_all_block(critic):
    parts = _parts(seed=1, n=30, unencodable=False)
    tables, status = _encode(parts)
    cfg = _cfg(representations=["onehot"], predictors=["rf"], finetune=False)
    res, preds = represent.run_target(parts, tables, status, critic, {}, cfg, [0], {})
    assert res["rows"]["left_out_unencodable"] == {"train": 0, "val": 0, "test": 0}
    assert res["blocks"]["all"]["copied_from_encoded"]
    assert res["blocks"]["all"]["models"]["onehot_rf"]["mae"] == res["blocks"]["encoded"]["models"]["onehot_rf"]["mae"]
    np.testing.assert_array_equal(preds["onehot_rf"], preds["onehot_rf_all"])
    assert "gan_finetune" not in res["blocks"]["encoded"]["models"]


def test_run_target_rejects_misaligned_status(critic):
    parts = _parts(seed=2, n=20)
    tables, status = _encode(parts)
    status["val"] = status["val"].iloc[::-1].reset_index(drop=True)
    with pytest.raises(Exception, match="val"):
        represent.run_target(parts, tables, status, critic, {}, _cfg(representations=["onehot"], finetune=False),
                             [0], {})


# ------------------------------------------------------------------- the shipped model (matrepro predict gan)
def test_exported_model_reproduces_the_stage_predictions_and_reports_bad_rows(critic, tmp_path):
    """run_target keeps the gan_mlp members; the exported folder, loaded strictly and weights-only,
    predicts the test rows exactly as the stage did (seed mean), and a CSV with a BOM, CRLF ends
    and a bad row of every kind gives errors and flags row by row."""
    from matrepro import cli
    from matrepro.papers.gan import predict as gan_predict

    parts = _parts()
    tables, status = _encode(parts)
    state = {k: v.clone() for k, v in critic.state_dict().items()}
    kept: dict = {}
    cfg = _cfg(finetune=False, profile="smoke")
    res, preds = represent.run_target(parts, tables, status, critic, state, cfg, [0, 1], {}, keep_models=kept)
    assert sorted(kept) == [0, 1] and all(set(m) >= {"weights", "x_mean", "x_scale", "y_mean"} for m in kept.values())
    masks = {s: (status[s].status != "unencodable").to_numpy() for s in represent.PARTS}
    enc = {s: parts[s][masks[s]].reset_index(drop=True) for s in represent.PARTS}
    settings = {"critic": dict(SLIM), "table": {"mapping": "integer", "tol": 0.02}, "seed": 7}
    folder = tmp_path / "models" / "gan" / "toy_target"
    card = gan_predict.export_model(folder, "toy_target", cfg, res, parts=enc, critic_state=state, settings=settings,
                                    members=kept)
    assert card["metrics"]["mae"] == res["blocks"]["encoded"]["models"]["gan_mlp"]["mae"]
    assert card["members"] == ["critic.pt", "seed0.pt", "seed1.pt"]

    model = gan_predict.Model(folder)
    test_f = enc["test"].formula.tolist()
    mean, spread = model.predict(test_f)
    np.testing.assert_allclose(mean, preds.gan_mlp[masks["test"]].to_numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(spread >= 0)

    # the CLI on a user file: BOM + CRLF, one good row per case, and a bad row of every kind
    inp = tmp_path / "in.csv"
    rows = ["formula,note", f"{test_f[0]},known", "Li8Al1,rounded? no: exact", "LiAl0.3,approximated",
            "Xx2O3,unparseable", "He2O,outside the 85", "Li20Al1,count above 8", "PuO2,unseen element"]
    inp.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    out = tmp_path / "out.csv"
    rc = cli.main(["predict", "gan", "--target", "toy_target", "--input", str(inp), "--out", str(out),
                   "--models", str(tmp_path / "models")])
    assert rc == cli.SOME_FAILED
    got = pd.read_csv(out, keep_default_na=False)
    err = pd.read_csv(tmp_path / "out.errors.csv")
    assert list(err.row) == [4, 5, 6] and set(err.field) == {"formula"}
    assert "outside" in err.reason[1] and "count above 8" in err.reason[2]
    assert list(got.formula) == [test_f[0], "Li8Al1", "LiAl0.3", "PuO2"]
    assert got.prediction.iloc[0] == pytest.approx(mean[0], rel=1e-5)
    flags = got["flags"].tolist()
    assert "unseen_elements" not in flags[0] and "approximated_table" not in flags[0] + flags[1]
    assert "approximated_table" in flags[2] and got.table_error.iloc[2] > 0 and got.table_formula.iloc[1] == "Li8Al"
    assert "unseen_elements" in flags[3] and got.unseen_elements.iloc[3] == "Pu"
    assert list(got.unit.unique()) == [""] and (got.n_models == 2).all()
