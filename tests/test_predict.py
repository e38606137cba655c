"""`matrepro predict` / `matrepro models`: applicability flags on constructed cases, model cards
round-tripped, LCB ranking on a toy ensemble, and the CLI on hand-made inputs (a bad row of every
kind, a UTF-8 BOM with CRLF line ends, an empty file, a missing column, a missing model)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from matrepro import cli
from matrepro.core.batch_input import InputError, read_table, structure_files
from matrepro.core.cards import ModelMissing, list_cards, load_member, read_card, write_card
from matrepro.features.applicability import (NearestTrainDistance, elements_of, fraction_matrix, fragment_dimensionality,
                                             isolated_sites, lower_confidence_bound, partial_occupancy, unseen_elements)
from matrepro.features.composition import TargetScaler, encode_formulas
from matrepro.models import build_model
from matrepro.papers.lgdcnn import predict as lg_predict

# ------------------------------------------------------------------------------ applicability


def test_fraction_matrix_and_l1_distance_by_hand():
    x = fraction_matrix(["NaCl", "Fe2O3"])
    assert x.shape == (2, 118)
    assert x[0, 10] == pytest.approx(0.5) and x[0, 16] == pytest.approx(0.5)  # Na (Z=11), Cl (Z=17)
    assert x[1, 25] == pytest.approx(0.4) and x[1, 7] == pytest.approx(0.6)  # Fe (26), O (8)
    d = NearestTrainDistance(x)
    # KCl: |K 0.5| + |Na 0.5| = 1.0 from NaCl; Fe3O4: |0.4-3/7| + |0.6-4/7| = 2/35 from Fe2O3; CsI: 2
    np.testing.assert_allclose(d.distances(fraction_matrix(["NaCl", "KCl", "Fe3O4", "CsI"])),
                               [0.0, 1.0, 2 / 35, 2.0], atol=1e-6)


def test_threshold_is_the_test_quantile_and_flags_beyond_it():
    train = fraction_matrix(["NaCl", "KCl", "LiF", "MgO", "CaO"])
    d = NearestTrainDistance(train)
    test = fraction_matrix(["NaBr", "KBr", "NaF", "SrO", "BaO", "LiCl", "CsI", "MgS", "CaS", "NaCl"])
    thr = d.calibrate(test, 0.9)
    assert thr == pytest.approx(np.quantile(d.distances(test), 0.9))
    dist, far = d.far(fraction_matrix(["CsI", "NaCl"]))
    assert list(far) == [True, False] and dist[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="calibrate"):
        NearestTrainDistance(train).far(test)


def test_unseen_elements():
    seen = elements_of(["NaCl", "Fe2O3"])
    assert unseen_elements("NaFeO2", seen) == []
    assert unseen_elements("LiFePO4", seen) == ["Li", "P"]


def test_lcb_ranks_the_agreed_candidate_first():
    mean = np.array([3.0, 2.8, 2.0])
    spread = np.array([0.5, 0.05, 0.0])
    lcb = lower_confidence_bound(mean, spread, k=2.0)
    np.testing.assert_allclose(lcb, [2.0, 2.7, 2.0])
    assert list(np.argsort(-lcb, kind="stable")) == [1, 0, 2]
    np.testing.assert_allclose(lower_confidence_bound(mean, [np.nan] * 3, 1.0), mean)  # one model: no spread
    with pytest.raises(ValueError):
        lower_confidence_bound(mean, spread, -1)


def test_crystal_flags_on_constructed_cases():
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    box = Structure(Lattice.cubic(30.0), ["Fe"], [[0, 0, 0]])  # one atom in a 30 Å box
    n2 = Structure(Lattice.cubic(5.0), ["N", "N"], [[0, 0, 0], [0.22, 0, 0]])  # N2 molecules 5 Å apart
    alloy = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])  # disordered site
    assert fragment_dimensionality(nacl) == 3 and isolated_sites(nacl, 8.0) == []
    assert fragment_dimensionality(box) == 0 and isolated_sites(box, 8.0) == [0]
    assert fragment_dimensionality(n2) == 0 and isolated_sites(n2, 8.0) == []  # molecular, not isolated
    assert partial_occupancy(alloy) == [0] and partial_occupancy(nacl) == []


# ----------------------------------------------------------------------------------- cards


def test_card_round_trip_and_safe_strict_load(tmp_path):
    net = build_model("mlp", n_features=3, hidden=(4,))
    card = {"paper": "demo", "name": "toy", "target": "t", "unit": "eV", "profile": "smoke", "stage": "demo_train",
            "training": {"rows": {"train": 3}, "elements": ["Na"]}, "metrics": {"mae": 0.5}, "input": "CSV",
            "members": ["seed0.pt"], "applicability": {}}
    (tmp_path / "demo" / "toy").mkdir(parents=True)
    torch.save({"weights": net.state_dict(), "scaler": {"mean": 1.0, "std": 2.0}}, tmp_path / "demo" / "toy" / "seed0.pt")
    write_card(tmp_path / "demo" / "toy", card)
    back = read_card(tmp_path / "demo" / "toy")
    assert {k: back[k] for k in card} == card
    art = load_member(tmp_path / "demo" / "toy", "seed0.pt")
    net2 = build_model("mlp", n_features=3, hidden=(4,))
    net2.load_state_dict(art["weights"], strict=True)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    assert [c["name"] for c in list_cards(tmp_path)] == ["toy"]
    with pytest.raises(Exception, match="card lacks"):
        write_card(tmp_path / "demo" / "bad", {k: v for k, v in card.items() if k != "unit"})
    with pytest.raises(Exception, match="member checkpoint"):
        write_card(tmp_path / "demo" / "bad", {**card, "members": ["nope.pt"]})
    torch.save({"obj": object.__new__(TargetScaler)}, tmp_path / "demo" / "toy" / "evil.pt")  # not weights-only
    with pytest.raises(Exception, match="not a loadable checkpoint"):
        load_member(tmp_path / "demo" / "toy", "evil.pt")
    with pytest.raises(ModelMissing):
        read_card(tmp_path / "demo" / "none")


# ------------------------------------------------------------------------------ input files


def test_table_reader_handles_bom_crlf_and_rejects_unusable_files(tmp_path):
    p = tmp_path / "f.csv"
    p.write_bytes("\ufeffformula,note\r\nNaCl,a\r\n NaN ,b\r\n".encode("utf-8"))
    df = read_table(p, ["formula"])
    assert list(df.columns) == ["row", "formula", "note"] and df.formula.tolist() == ["NaCl", "NaN"]
    assert df.row.tolist() == [1, 2]
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("formula\n")
    (tmp_path / "nocol.csv").write_text("composition\nNaCl\n")
    for name, msg in (("empty.csv", "empty"), ("header.csv", "no data rows"), ("nocol.csv", "missing column"),
                      ("absent.csv", "no such file")):
        with pytest.raises(InputError, match=msg):
            read_table(tmp_path / name, ["formula"])
    with pytest.raises(InputError, match="no .cif"):
        structure_files(tmp_path)


# ------------------------------------------------------------------------- lgdcnn end to end

TRAIN = ["NaCl", "KCl", "LiF", "MgO", "CaO", "Fe2O3", "Al2O3", "SiO2", "TiO2", "ZnS", "GaAs", "NaF"]
TEST = ["NaBr", "KBr", "SrO", "BaO", "LiCl", "MgS"]


def _table(name=None, root=None):
    t = np.random.default_rng(0).random((119, 8)).astype(np.float32)
    t[0] = 0
    t[100:] = 0  # no embedding from Fm (Z=100) on, as mat2vec lacks the heaviest elements
    return t


@pytest.fixture
def lgdcnn_model(tmp_path, monkeypatch):
    """A two-seed toy L-G-DCNN exported like a real one (weights untrained: the CLI is under test)."""
    monkeypatch.setattr(lg_predict, "get_element_table", _table)
    parts = {"train": pd.DataFrame({"formula": TRAIN, "target": np.linspace(0, 5, len(TRAIN))}),
             "val": pd.DataFrame({"formula": TEST[:2], "target": [1.0, 2.0]}),
             "test": pd.DataFrame({"formula": TEST, "target": np.ones(len(TEST))})}
    arts = {}
    for seed in (42, 43):
        torch.manual_seed(seed)
        cfg = {"d_model": 16, "resolution": 100, "blocks": 1}
        net = build_model("lgdcnn", element_table=_table(), **cfg)
        arts[seed] = {"spec": {"model": "lgdcnn", "config": cfg, "element_table": "mat2vec"},
                      "weights": net.state_dict(), "n_slots": 3, "scaler": {"mean": 2.5, "std": 1.5}}
    plan = {"profile": "smoke", "regime": "full", "train": {"max_epochs": 2}}
    folder = tmp_path / "models" / "lgdcnn" / "expt_gap"
    card = lg_predict.export_model(folder, "expt_gap", plan, parts, arts, {"mae": 0.4, "mae_std": 0.01}, fold=0)
    return tmp_path / "models", card, arts


def test_export_writes_a_card_that_matches_the_training_rows(lgdcnn_model):
    models, card, _ = lgdcnn_model
    back = read_card(models / "lgdcnn" / "expt_gap")
    assert back["members"] == ["seed42.pt", "seed43.pt"] and back["unit"] == "eV"
    assert back["training"]["rows"] == {"train": 12, "val": 2, "test": 6}
    assert set(back["training"]["elements"]) == {"Na", "Cl", "K", "Li", "F", "Mg", "O", "Ca", "Fe", "Al", "Si",
                                                 "Ti", "Zn", "S", "Ga", "As"}
    comp = back["applicability"]["composition"]
    assert comp["quantile"] == 0.95 and comp["metric"] == "manhattan" and 0 < comp["threshold"] <= 2


def test_cli_predicts_good_rows_and_reports_every_bad_one(lgdcnn_model, tmp_path, capsys):
    models, card, arts = lgdcnn_model
    inp = tmp_path / "formulas.csv"
    rows = ["formula,id", "NaCl,a", "Xq2O3,b", "Fm2O3,c", "LiFePO4S,d", ",e", "CsI,f", "NaN,g"]
    inp.write_bytes(("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8"))
    out = tmp_path / "pred.csv"
    code = cli.main(["predict", "lgdcnn", "--dataset", "matbench_expt_gap", "--input", str(inp), "--out", str(out),
                     "--models", str(models)])
    assert code == cli.SOME_FAILED
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred.formula.tolist() == ["NaCl", "CsI", "NaN"] and pred.id.tolist() == ["a", "f", "g"]
    assert pred.row.tolist() == [1, 6, 7] and (pred.n_models == 2).all() and (pred.unit == "eV").all()
    err = pd.read_csv(tmp_path / "pred.errors.csv")
    assert err.row.tolist() == [2, 3, 4, 5] and set(err.field) == {"formula"} and set(err.file) == {str(inp)}
    reasons = err.reason.tolist()
    assert "Xq2O3" in reasons[0] and "Fm" in reasons[1] and "embedding" in reasons[1]
    assert "5 elements" in reasons[2] and "at most 3" in reasons[2]
    # the prediction is the seeds' mean, their std the spread (checked against the networks directly)
    nets = []
    for a in arts.values():
        net = build_model("lgdcnn", element_table=_table(), **a["spec"]["config"])
        net.load_state_dict(a["weights"])
        net.eval()
        z, f = encode_formulas(["NaCl"], 3)
        with torch.no_grad():
            o = net(torch.as_tensor(z), torch.as_tensor(f))
        nets.append(float((o[:, 0] if o.ndim == 2 else o)[0]) * 1.5 + 2.5)
    assert pred.prediction[0] == pytest.approx(np.mean(nets), rel=1e-5)
    assert pred.spread[0] == pytest.approx(np.std(nets, ddof=1), rel=1e-4)
    # flags: NaCl is a training row; CsI shares no element with training and is far from it
    assert pred["flags"][0] == "" and pred.nearest_train_l1[0] == 0
    assert pred["flags"][1] == "unseen_elements;far_from_training" and pred.unseen_elements[1] == "Cs I"
    assert pred.nearest_train_l1[1] == pytest.approx(2.0)
    assert "3 row(s) predicted" in capsys.readouterr().out


def test_cli_stops_with_one_message_when_input_or_model_is_unusable(lgdcnn_model, tmp_path, capsys):
    models, _, _ = lgdcnn_model
    ok = tmp_path / "ok.csv"
    ok.write_text("formula\nNaCl\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "nocol.csv").write_text("composition\nNaCl\n")
    base = ["predict", "lgdcnn", "--out", str(tmp_path / "o.csv"), "--models", str(models)]
    assert cli.main(base + ["--dataset", "expt_gap", "--input", str(ok)]) == cli.OK
    assert not (tmp_path / "o.errors.csv").exists()
    for inp, msg in (("empty.csv", "empty"), ("nocol.csv", "missing column"), ("absent.csv", "no such file")):
        assert cli.main(base + ["--dataset", "expt_gap", "--input", str(tmp_path / inp)]) == cli.UNUSABLE
        assert msg in capsys.readouterr().err
    assert cli.main(base + ["--dataset", "steels", "--input", str(ok)]) == cli.UNUSABLE
    err = capsys.readouterr().err
    assert "dvc repro lgdcnn_model@steels" in err and "expt_gap" in err
    assert cli.main(base + ["--input", str(ok)]) == cli.UNUSABLE
    assert "--dataset" in capsys.readouterr().err


def test_models_lists_the_cards(lgdcnn_model, capsys):
    models, _, _ = lgdcnn_model
    assert cli.main(["models", "--models", str(models)]) == cli.OK
    out = capsys.readouterr().out
    assert "lgdcnn expt_gap" in out and "[eV]" in out and "2 member(s)" in out
    assert cli.main(["models", "--json", "--models", str(models)]) == cli.OK
    assert json.loads(capsys.readouterr().out)[0]["name"] == "expt_gap"


# -------------------------------------------------------------------------- cgcnn end to end

NACL_CIF = """data_NaCl
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   5.64
_cell_length_b   5.64
_cell_length_c   5.64
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_as_xyz
  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  0.0  0.0  0.0  1
  Na  Na1  0.0  0.5  0.5  1
  Na  Na2  0.5  0.0  0.5  1
  Na  Na3  0.5  0.5  0.0  1
  Cl  Cl4  0.5  0.0  0.0  1
  Cl  Cl5  0.5  0.5  0.5  1
  Cl  Cl6  0.0  0.0  0.5  1
  Cl  Cl7  0.0  0.5  0.0  1
"""


@pytest.fixture(scope="module")
def cgcnn_model(tmp_path_factory):
    from conftest import mirror_dir
    from matrepro.features.crystal import load_atom_init, structure_graph
    from matrepro.papers.cgcnn import predict as cg_predict
    from matrepro.papers.cgcnn.data import ATOM_INIT

    m = mirror_dir()
    if m is None or not (m / ATOM_INIT).is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    atom_init = m / ATOM_INIT
    table = load_atom_init(atom_init)
    graph_cfg = {"radius": 8.0, "max_num_nbr": 12, "dmin": 0.0, "step": 0.2}
    rng = np.random.RandomState(0)

    def rocksalt(a, b, lat):
        return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lat), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])

    train = [structure_graph(rocksalt(a, b, 4 + 2 * rng.rand()), table) for a, b in
             [("Na", "Cl"), ("K", "Cl"), ("Mg", "O"), ("Ca", "O"), ("Li", "F"), ("Na", "F")] * 3]
    test = [structure_graph(rocksalt(a, b, 4 + 2 * rng.rand()), table) for a, b in [("Na", "Cl"), ("Mg", "O")] * 3]
    tmp_path = tmp_path_factory.mktemp("cgcnn_model")
    members, ckdir = {}, tmp_path / "ck"
    ckdir.mkdir()
    for t in ("G", "K"):
        members[t] = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            net = build_model("cgcnn", atom_fea_len=8, n_conv=1, h_fea_len=8)
            p = ckdir / f"{t}_all_random_seed{seed}.pth.tar"
            torch.save({"state_dict": net.state_dict(), "normalizer": {"mean": torch.tensor(1.5), "std": torch.tensor(0.2)},
                        "args": {"atom_fea_len": 8, "n_conv": 1, "h_fea_len": 8, "n_h": 1}}, p)
            members[t].append(p)
    folder = tmp_path / "models" / "cgcnn" / "ensemble"
    card = cg_predict.export_ensemble(folder, members, atom_init, graph_cfg, train, test,
                                      {"G": np.array([1.0, 1.5]), "K": np.array([1.2, 2.7])},
                                      {"G": {"log10": {"mae": {"mean": 0.1}}}}, "smoke", "all")
    return tmp_path / "models", card


def test_cgcnn_cli_on_a_folder_with_a_bad_structure_of_every_kind(cgcnn_model, tmp_path):
    models, card = cgcnn_model
    assert card["training"]["max_GPa"]["G"] == pytest.approx(10 ** 1.5)
    assert set(card["training"]["elements"]) == {"Na", "Cl", "K", "Mg", "O", "Ca", "Li", "F"}
    d = tmp_path / "cifs"
    d.mkdir()
    (d / "a_nacl.cif").write_bytes(NACL_CIF.replace("\n", "\r\n").encode())
    (d / "b_garbage.cif").write_text("this is not a CIF\n_cell_length_a banana\n")
    Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]]).to(filename=str(d / "c_disordered.cif"))
    Structure(Lattice.cubic(30.0), ["Fe"], [[0, 0, 0]]).to(filename=str(d / "d_box.cif"))  # one atom, 30 Å box
    Structure(Lattice.cubic(3.6), ["N", "N"], [[0, 0, 0], [0.3, 0, 0]]).to(filename=str(d / "e_n2.cif"))
    Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.57), ["Cs", "I"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(d / "f_csi.vasp"), fmt="poscar")
    (d / "notes.txt").write_text("ignored: not a structure file")
    out = tmp_path / "cg.csv"
    code = cli.main(["predict", "cgcnn", "--input", str(d), "--out", str(out), "--models", str(models)])
    assert code == cli.SOME_FAILED
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred.formula.tolist() == ["NaCl", "N2", "CsI"] and pred.row.tolist() == [1, 5, 6]
    assert (pred.n_models == 2).all() and pred.nsites.tolist() == [8, 2, 2]
    assert pred.dimensionality.tolist() == [3, 0, 3]
    flags = pred["flags"].tolist()
    assert "molecular_or_isolated" in flags[1] and "molecular_or_isolated" not in flags[0]
    assert "unseen_elements" in flags[2] and "unseen_elements" in flags[1] and "unseen_elements" not in flags[0]
    for i in range(3):  # the bound is the training maximum, 10^1.5 GPa for G
        assert ("above_training_max_G" in flags[i]) == (pred.log10G[i] > 1.5)
    assert pred.G_GPa.to_numpy() == pytest.approx(10 ** pred.log10G.to_numpy(), rel=1e-4)  # CSV: 6 digits
    err = pd.read_csv(tmp_path / "cg.errors.csv")
    assert err.row.tolist() == [2, 3, 4] and set(err.field) == {"structure"}
    assert "unreadable" in err.reason[0] and "partial occupancy" in err.reason[1]
    assert "no neighbour within 8.0" in err.reason[2]


def test_cgcnn_ensemble_mean_and_spread_match_the_members(cgcnn_model, tmp_path):
    from matrepro.models.crystal import load_checkpoint, predict_graphs
    from matrepro.papers.cgcnn import predict as cg_predict

    models, card = cgcnn_model
    ens = cg_predict.Ensemble(models / "cgcnn" / "ensemble")
    s = Structure.from_str(NACL_CIF, fmt="cif")
    g = ens.graph(s, "nacl")
    got = ens.predict([g])
    each = [predict_graphs(load_checkpoint(models / "cgcnn" / "ensemble" / n)[0], [g], 1.5, 0.2, gdf=ens.gdf)[0]
            for n in card["member_targets"]["K"]]
    assert got.log10K[0] == pytest.approx(np.mean(each), rel=1e-5)
    assert got.log10K_spread[0] == pytest.approx(np.std(each, ddof=1), rel=1e-4)


# ------------------------------------------------------------------------- capnet end to end

def test_capnet_export_reproduces_the_recorded_mae_and_cli_reports_bad_rows(tmp_path, capsys):
    from pymatgen.core import Composition

    from conftest import battery_row
    from matrepro.papers.capnet import data as bt
    from matrepro.papers.capnet import evaluate, experiments, preprocess
    from matrepro.papers.capnet import predict as cap_predict

    pairs = [("FePO4", "LiFePO4"), ("CoO2", "LiCoO2"), ("Mn2O4", "LiMn2O4"), ("TiS2", "LiTiS2"),
             ("V2O5", "LiV2O5"), ("NiO2", "LiNiO2"), ("FeSO4F", "LiFeSO4F"), ("MnO2", "LiMnO2")]
    rows = [battery_row(f"mp-{i}_Li", c, d, bt.analytic_capacity(Composition(c), Composition(d), "Li"),
                        **{"Average Voltage": 2 + (i % 7) * 0.3}) for i, (c, d) in enumerate(pairs * 5)]
    raw = tmp_path / "batteries.csv"
    pd.DataFrame(rows).to_csv(raw, index=False)
    cfg = {"profile": "smoke", "base_seed": 0, "working_ion": "Li", "row_filter": "all", "categorical_source": "auto",
           "split_fractions": [0.6, 0.2, 0.2], "splits": ["random", "group"], "seeds": [0, 1],
           "feature_sets": ["leak_free"], "min_category_count": 1, "architectures": ["dnn"],
           "train": {"max_epochs": 3, "patience": 3, "batch_size": 8}, "models": {"dnn": {"hidden": 8, "embed_dim": 2, "depth": 1}}}
    proc, res = tmp_path / "proc", tmp_path / "res"
    preprocess.preprocess(raw, proc, cfg)
    results, _ = experiments.run_architecture("dnn", cfg, proc, progress=False, device="cpu")
    res.mkdir()
    (res / "dnn.json").write_text(json.dumps(results))
    metrics = evaluate.collect(cfg, res, evaluate.analytic_results(cfg, proc)[0])
    folder = tmp_path / "models" / "capnet" / "leak_free"
    card = cap_predict.export_model(folder, "leak_free", cfg, proc, metrics)
    assert card["architecture"] == "dnn" and card["metrics"]["mae_per_seed"] == pytest.approx(
        results["leak_free"]["group"]["mae"]["per_seed"], rel=1e-4)  # the same training: the recorded MAE again
    assert card["metrics"]["recorded_mae_per_seed"] == results["leak_free"]["group"]["mae"]["per_seed"]
    inp = tmp_path / "mine.csv"
    mine = pd.DataFrame([battery_row("a", "FePO4", "LiFePO4", 0.0), battery_row("b", "CoO2", "LiCoO2", 0.0),
                         battery_row("c", "CoO2", "NaCoO2", 0.0, **{"Working Ion": "Na"}),
                         battery_row("d", "Xq2", "LiXq2", 0.0), battery_row("e", "CrO2", "LiCrO2", 0.0)])
    mine["Average Voltage"] = mine["Average Voltage"].astype(object)
    mine.loc[1, "Average Voltage"] = "high"
    mine.loc[4, "Max Delta Volume"] = 5.0  # far outside the training range (0.07)
    text = mine.drop(columns=[bt.TARGET]).to_csv(index=False, lineterminator="\r\n")
    inp.write_bytes(("\ufeff" + text).encode())
    out = tmp_path / "cap.csv"
    code = cli.main(["predict", "capnet", "--input", str(inp), "--out", str(out), "--models", str(tmp_path / "models")])
    assert code == cli.SOME_FAILED
    pred = pd.read_csv(out, keep_default_na=False)
    assert pred["Battery ID"].tolist() == ["a", "e"] and (pred.n_models == 2).all() and (pred.unit == "mAh/g").all()
    assert pred.capacity_analytic[0] == pytest.approx(169.89, abs=0.01)  # LiFePO4, by hand
    assert pred.out_of_range_columns[0] == ""  # every numeric value inside the training range
    assert "numeric_out_of_range" in pred["flags"][1] and pred.out_of_range_columns[1] == "Max Delta Volume"
    assert "unseen_category" in pred["flags"][1] and "redox_metal" in pred.unseen_categories[1]  # Cr never in training
    err = pd.read_csv(tmp_path / "cap.errors.csv")
    assert err.row.tolist() == [2, 3, 4]
    assert err.field.tolist() == ["Average Voltage", "Working Ion", "Formula Charge"]
    assert "not a number" in err.reason[0] and "Li electrodes only" in err.reason[1] and "Xq2" in err.reason[2]
