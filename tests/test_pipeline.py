"""A smoke `dvc repro` of the whole pipeline in a copy of the repository (profile smoke)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, mirror_dir

pytestmark = pytest.mark.slow

ARCHS = ["capnet", "dnn", "rnn", "lstm", "transformer"]
LGDCNN_NOTEBOOKS = ["lgdcnn_data", "lgdcnn_benchmark", "lgdcnn_learning_curves", "lgdcnn_ablation",
                    "lgdcnn_cecv", "lgdcnn_sample_efficiency"]
LGDCNN_FIGURES = ["lgdcnn_data", "lgdcnn_benchmark", "lgdcnn_learning_curves", "lgdcnn_ablation", "lgdcnn_cecv",
                  "lgdcnn_sample_efficiency"]
CGCNN_NOTEBOOKS = ["cgcnn_data", "cgcnn_verify", "cgcnn_train_paper", "cgcnn_train_matbench", "cgcnn_screen"]
CGCNN_FIGURES = ["cgcnn_data", "cgcnn_verify", "cgcnn_paper", "cgcnn_matbench", "cgcnn_screening", "cgcnn_ai4kappa"]
GAN_TARGETS = ["oqmd_gap", "oqmd_eform", "mp_gap", "mp_e_form", "supercon_tc"]
GAN_NOTEBOOKS = ["gan_data", "gan_train", "gan_generate"] + [f"gan_represent_{t}" for t in GAN_TARGETS]
GAN_FIGURES = ["gan_coverage", "gan_losses", "gan_generator"]
EPDI_NOTEBOOKS = ["epdi_generate", "epdi_correlation", "epdi_train", "epdi_curves"]
EPDI_FIGURES = ["epdi_maps", "epdi_correlation", "epdi_models", "epdi_learning_curve", "epdi_pes"]
# Regenerating the smoke data set reproduces tests/fixtures/epdi_smoke within these tolerances (seen on
# the machine that made the fixture: identical to the written precision, 1e-6 eV and float32 maps; the
# margin is for another CPU's BLAS, whose rounding can move a relaxation's or an SCF's last steps).
EPDI_TOL_EV, EPDI_TOL_V = 1e-3, 1e-3


def _run(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    mirror = mirror_dir()
    if mirror is None:
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    dst = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dst / f)
    params = (dst / "params.yaml").read_text()
    (dst / "params.yaml").write_text(re.sub(r"(?m)^profile: \w+", "profile: smoke", params, count=1))
    env = {k: v for k, v in os.environ.items() if k != "MATREPRO_ROOT"}
    # one thread per stage, two stages at a time (matrepro.core.pipeline): the 2-core CI machine is busy
    # with two small smoke stages rather than one; the forced re-run below uses the same setting
    env.update(MATREPRO_DATA_MIRROR=str(mirror), DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1", MATREPRO_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    _run(["git", "init", "-q"], dst, env)
    _run([sys.executable, "-m", "matrepro.core.pipeline", "-j", "2"], dst, env)
    _run(["dvc", "repro"], dst, env)  # plain `dvc repro` agrees: nothing is left to run
    return dst, env


def test_metrics_cover_every_model_feature_set_and_split(smoke_repo):
    repo, _ = smoke_repo
    m = json.loads((repo / "metrics" / "capnet.json").read_text())
    assert m["profile"] == "smoke" and len(m["seeds"]) >= 2
    for arch in ARCHS:
        for fs in ("paper_like", "leak_free"):
            for split in ("random", "group"):
                cell = m["results"][arch][fs][split]
                for metric in ("mae", "rmse", "r2"):
                    assert len(cell[metric]["per_seed"]) == len(m["seeds"])
    analytic = m["results"]["analytic"]["formulas"]
    assert analytic["random"]["mae"]["mean"] < 1e-6 and analytic["group"]["mae"]["mean"] < 1e-6


def test_outputs_notebooks_figures_and_offline_html(smoke_repo):
    repo, _ = smoke_repo
    for png in ["capnet_data", "capnet_mae", "capnet_parity"] + LGDCNN_FIGURES + CGCNN_FIGURES + GAN_FIGURES + EPDI_FIGURES:
        assert (repo / "figures" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    executed = sorted(p.name for p in (repo / "notebooks" / "executed").glob("*.ipynb"))
    assert executed == sorted(["capnet_preprocess.ipynb", "capnet_evaluate.ipynb", "report.ipynb"]
                              + [f"capnet_train_{a}.ipynb" for a in ARCHS]
                              + [f"{n}.ipynb" for n in LGDCNN_NOTEBOOKS + CGCNN_NOTEBOOKS + GAN_NOTEBOOKS
                                                         + EPDI_NOTEBOOKS])
    for html in (repo / "reports").glob("*.html"):
        text = html.read_text()
        assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", text), html.name
    report = (repo / "reports" / "results.md").read_text()
    assert "smoke" in report and "2.441" in report
    assert "AFLOW bulk modulus" in report and "8.221" in report and "lgdcnn CECV" in report
    assert "cgcnn" in report and "CGCNN v2019 leaderboard" in report and "cgcnn screening" in report
    assert "**gan**" in report and "4.1e+13" in report and "Claim" in report


def test_cgcnn_protocols_verification_and_screening(smoke_repo):
    repo, _ = smoke_repo
    paper = json.loads((repo / "metrics" / "cgcnn" / "paper.json").read_text())
    mb = json.loads((repo / "metrics" / "cgcnn" / "matbench.json").read_text())
    for m in (paper, mb):
        assert m["profile"] == "smoke" and m["structure_source"] == "rebuilt"
        assert set(m["results"]) == {"G", "K"} and all(set(v) == {"all", "high"} for v in m["results"].values())
        for by_subset in m["results"].values():
            for r in by_subset.values():
                assert set(r["test"]) == {"log10", "GPa"} and r["test"]["log10"]["mae"]["mean"] > 0
    assert len(paper["results"]["G"]["all"]["test"]["log10"]["mae"]["per_run"]) == 2  # smoke: 2 seeds on all
    assert {c["fold"] for c in mb["comparison"]} == {0, 1}
    assert paper["references"]["leaderboard_cgcnn_v2019_mae_log10"] == {"G": 0.0895, "K": 0.0712}
    verify = json.loads((repo / "metrics" / "cgcnn" / "verify.json").read_text())
    assert len(verify["checkpoints"]) == 4 and all(c["loads (weights_only, strict)"] for c in verify["checkpoints"])
    if verify["agreement"] is not None:
        assert verify["agreement"]["max_abs_diff_log10"] < 1e-4
    scr = json.loads((repo / "metrics" / "cgcnn" / "screening.json").read_text())
    assert scr["structures_screened"] + scr["rejected"] == 300 and scr["ensemble_size"] == 2
    authors = [r for r in scr["ai4kappa"] if r["model"].startswith("authors")]
    assert len(authors) == 2 and all(r["MAE vs published (GPa)"] < 0.05 for r in authors)
    assert len(list((repo / "models" / "cgcnn" / "paper").glob("*.pth.tar"))) == 2 * (2 + 1)


def test_gan_metrics_cover_every_target_representation_and_predictor(smoke_repo):
    repo, _ = smoke_repo
    train = json.loads((repo / "metrics" / "gan" / "training.json").read_text())
    assert train["profile"] == "smoke" and len(train["history"]["critic_loss"]) == 2
    assert "reported" not in train  # the abstract's numbers join ours in the report, not in a training output
    assert len(list((repo / "models" / "gan" / "wgan").glob("*.pt"))) == 2
    for target in GAN_TARGETS:
        m = json.loads((repo / "metrics" / "gan" / f"{target}.json").read_text())
        assert m["profile"] == "smoke" and m["target"] == target and len(m["seeds"]) == 2
        enc = m["blocks"]["encoded"]["models"]
        assert set(enc) == {f"{r}_{p}" for r in ("gan", "magpie", "onehot") for p in ("rf", "mlp")} | {"gan_finetune"}
        for cell in enc.values():
            assert len(cell["per_seed"]) == 2 and all(r["mae"] >= 0 for r in cell["per_seed"])
    gen = json.loads((repo / "metrics" / "gan" / "generator.json").read_text())
    assert gen["n_generated"] == 200 and 0 <= gen["n_decodable"] <= 200
    status = (repo / "data" / "processed" / "gan" / "gan_status.csv").read_text()
    assert status.startswith("row,formula,status,reason,max_fraction_error,part")


def test_epdi_smoke_regenerates_the_committed_fixture_within_tolerance(smoke_repo):
    import numpy as np
    import pandas as pd

    repo, _ = smoke_repo
    fix, new = ROOT / "tests" / "fixtures" / "epdi_smoke", repo / "data" / "epdi"
    for name, cols in (("records", ["x", "y", "z_li", "energy", "e_b"]), ("paths", ["e_b_saddle", "barrier"])):
        a, b = pd.read_csv(fix / f"{name}.csv"), pd.read_csv(new / f"{name}.csv")
        assert len(a) == len(b) and list(a.columns) == list(b.columns), name
        for c in cols:
            assert np.abs(a[c].to_numpy() - b[c].to_numpy()).max() <= EPDI_TOL_EV, (name, c)
    za, zb = np.load(fix / "maps.npz"), np.load(new / "maps.npz")
    assert sorted(za.files) == sorted(zb.files)
    for k in za.files:
        assert np.abs(za[k] - zb[k]).max() <= EPDI_TOL_V, k


def test_epdi_metrics_hold_every_experiment(smoke_repo):
    repo, _ = smoke_repo
    ds = json.loads((repo / "metrics" / "epdi" / "dataset.json").read_text())
    assert ds["profile"] == "smoke" and ds["saddles"] >= 4 and ds["failures"] == 0
    corr = json.loads((repo / "metrics" / "epdi" / "correlation.json").read_text())
    assert corr["n_sites"] >= 3 and -1 <= corr["pearson_r"] <= 1
    models = json.loads((repo / "metrics" / "epdi" / "models.json").read_text())
    names = {(r["model"], r["source"]) for r in models["summary"]}
    assert ("densenet121", "epdi source task") in names and ("densenet121", "scratch") in names
    assert ("efficientnet_lite0", "ImageNet (EfficientNet-Lite0 wheel)") in names
    assert {"ridge on crop statistics", "rf on crop statistics"} <= {m for m, _ in names}
    curve = json.loads((repo / "metrics" / "epdi" / "curve.json").read_text())
    assert curve["pes"]["n_paths"] >= 1 and curve["pes"]["timing"]["speedup"] > 0
    assert len(list((repo / "models" / "epdi" / "source").glob("source_*.pt"))) == 1


def test_lgdcnn_metrics_cover_all_28_datasets(smoke_repo):
    repo, _ = smoke_repo
    m = json.loads((repo / "metrics" / "lgdcnn" / "benchmark.json").read_text())
    assert m["profile"] == "smoke" and len(m["tasks"]) == 28
    assert len([p for p in (repo / "results" / "lgdcnn" / "tasks").iterdir() if p.is_dir()]) == 28
    for name, t in m["tasks"].items():  # smoke: the peers train on steels and mp_gap only (time)
        peers = {"crabnet", "roost"} if name in ("steels", "mp_gap") else set()
        assert set(t["models"]) == {"lgdcnn", "rf_magpie", "mlp_magpie"} | peers, name
        assert all(v["mae"] == v["mae"] and v["mae"] >= 0 for v in t["models"].values()), name
        assert set(t["verdict"]) == {"crabnet", "roost", "rf_magpie"}, name
        assert "seconds" not in t["models"]["lgdcnn"], name  # timings stay in results/, not in the metrics
    steels = m["tasks"]["steels"]  # the smoke profile's full-rows task: 2 folds x 2 seeds
    assert steels["regime"] == "full" and steels["folds"] == [0, 1]
    assert steels["models"]["lgdcnn"]["seeds"] == 2 and steels["models"]["lgdcnn"]["mae_std"] is not None
    assert m["tasks"]["mp_gap"]["regime"] == "capped" and m["tasks"]["mp_gap"]["models"]["lgdcnn"]["mae_std"] is None
    assert m["claim"]["tasks"] == 28
    lc = json.loads((repo / "metrics" / "lgdcnn" / "learning_curves.json").read_text())
    assert {(f["task"], f["model"]) for f in lc["fits"]} == {(t, mod) for t in ("OQMD_Formation_Enthalpy", "mp_e_form",
                                                                                 "CritExam__Ef")
                                                             for mod in ("lgdcnn", "roost")}
    assert all(f["lo95"] <= f["mae_extrapolated"] <= f["hi95"] for f in lc["fits"])
    cecv = json.loads((repo / "metrics" / "lgdcnn" / "cecv.json").read_text())
    assert {"lstm_ref", "dcnn_k1", "lgdcnn"} <= set(cecv["cecv"]) and all(len(v) == 8 for v in cecv["cecv"].values())


def test_predict_applies_the_smoke_models_with_cards(smoke_repo, tmp_path):
    """`matrepro models` lists the cards the stages wrote; `python -m matrepro predict` runs on the
    README's inputs (tests/fixtures/predict), predicting the good rows and reporting the bad ones."""
    repo, env = smoke_repo
    fx = ROOT / "tests" / "fixtures" / "predict"
    run = lambda *a: subprocess.run([sys.executable, "-m", "matrepro", *a], cwd=repo, env=env,  # noqa: E731
                                    capture_output=True, text=True)
    r = run("models")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("capnet leak_free", "capnet paper_like", "cgcnn ensemble", "lgdcnn expt_gap", "lgdcnn steels",
                 "epdi e_b", *(f"gan {t}" for t in GAN_TARGETS)):
        assert name in r.stdout, (name, r.stdout)
    r = run("predict", "lgdcnn", "--dataset", "matbench_expt_gap", "--input", str(fx / "formulas.csv"),
            "--out", str(tmp_path / "g.csv"))
    assert r.returncode == 1, r.stdout + r.stderr  # one bad row
    g = pd.read_csv(tmp_path / "g.csv")
    assert g.formula.tolist() == ["GaAs", "ZnO", "SiO2", "CsPbI3", "LiFePO4"] and (g.unit == "eV").all()
    assert g.prediction.notna().all() and pd.read_csv(tmp_path / "g.errors.csv").row.tolist() == [6]
    r = run("predict", "cgcnn", "--input", str(fx / "cifs"), "--out", str(tmp_path / "c.csv"))
    assert r.returncode == 1, r.stdout + r.stderr  # the disordered alloy and the non-CIF
    c = pd.read_csv(tmp_path / "c.csv", keep_default_na=False)
    assert set(c.formula) == {"N2", "C", "MgO", "NaCl", "Si", "GaAs"} and (c.n_models == 2).all()
    assert "molecular_or_isolated" in c.set_index("formula").at["N2", "flags"]
    assert len(pd.read_csv(tmp_path / "c.errors.csv")) == 2
    r = run("predict", "capnet", "--input", str(fx / "electrodes.csv"), "--out", str(tmp_path / "b.csv"))
    assert r.returncode == 0, r.stdout + r.stderr
    b = pd.read_csv(tmp_path / "b.csv")
    assert len(b) == 3 and (b.unit == "mAh/g").all() and b.capacity_analytic[0] == pytest.approx(169.89, abs=0.01)
    r = run("predict", "gan", "--target", "mp_gap", "--input", str(fx / "formulas.csv"), "--out", str(tmp_path / "n.csv"))
    assert r.returncode == 1, r.stdout + r.stderr  # the same bad row
    n = pd.read_csv(tmp_path / "n.csv")
    assert n.formula.tolist() == ["GaAs", "ZnO", "SiO2", "CsPbI3", "LiFePO4"] and (n.n_models == 2).all()
    assert n.prediction.notna().all() and pd.read_csv(tmp_path / "n.errors.csv").row.tolist() == [6]
    r = run("predict", "epdi", "--input", str(fx / "esp" / "sites.csv"), "--out", str(tmp_path / "e.csv"))
    assert r.returncode == 1, r.stdout + r.stderr  # the row whose map does not exist
    e = pd.read_csv(tmp_path / "e.csv")
    assert len(e) == 6 and e.prediction.notna().all() and (e.unit == "eV").all()
    assert pd.read_csv(tmp_path / "e.errors.csv").field.tolist() == ["map"]
    scr = json.loads((repo / "metrics" / "cgcnn" / "screening.json").read_text())
    assert scr["lcb_k"] == 2.0 and 0 <= scr["top15_before_survivors"] <= 15 and "stability_data" in scr


def test_status_clean_and_forced_rerun_identical(smoke_repo):
    repo, env = smoke_repo
    assert "up to date" in _run(["dvc", "status"], repo, env)
    files = ["metrics/capnet.json", "metrics/lgdcnn/benchmark.json", "metrics/lgdcnn/cecv.json",
             "metrics/cgcnn/paper.json"]
    before = {f: json.loads((repo / f).read_text()) for f in files}
    # one architecture's training re-runs (the others are the same loop), then the evaluation
    # lgdcnn: an empty run cache, so that the forced stages really train again; the stages downstream
    # of the forced ones (the report) run as `dvc repro` would run them
    fresh = dict(env, MATREPRO_LGDCNN_CACHE=str(repo / ".cache" / "lgdcnn-rerun"))
    _run([sys.executable, "-m", "matrepro.core.pipeline", "-j", "2", "--force", "capnet_train@capnet",
          "capnet_evaluate", "lgdcnn_task@steels", "lgdcnn_task@mp_gap", "lgdcnn_benchmark", "lgdcnn_cecv",
          "cgcnn_train@paper"], repo, fresh)
    after = {f: json.loads((repo / f).read_text()) for f in files}
    _assert_same(after, before)
    assert "up to date" in _run(["dvc", "status"], repo, env)


def _assert_same(a, b, key=""):
    """Equal, except in the last bits of floats: scikit-learn's random forest, predicting with 2 threads,
    sums its trees in thread order (seen: 1.082800625 vs 1.0828006250000002), and a 2-thread retrain of
    the lgdcnn smoke networks moved a fold spread by 1e-15 relative (17.467670039568475 vs ...453)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), key
        for k in a:
            _assert_same(a[k], b[k], k)
    elif isinstance(a, list):
        assert len(a) == len(b), key
        for x, y in zip(a, b):
            _assert_same(x, y, key)
    elif isinstance(a, float):  # last-bit differences only (2-thread reductions), see above
        assert a == pytest.approx(b, rel=1e-12), key
    else:
        assert a == b, key
