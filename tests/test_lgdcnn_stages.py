"""lgdcnn per-dataset stages: the stage list against params, the cpu full-rows rule, task plans,
the run cache key, seed statistics and verdicts, the power-law extrapolation, bf16 autocast."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from matrepro.core.config import paper_config
from matrepro.core.errors import MatreproError
from matrepro.core.precision import Autocast, unwrap, with_precision
from matrepro.core.scaling import fit_power_law
from matrepro.core.timed_checkpoint import TimedCheckpoint
from matrepro.core.validate import FilterLog
from matrepro.papers.lgdcnn import benchmark as ex
from matrepro.papers.lgdcnn import run as lg_run
from matrepro.papers.lgdcnn.tasks import all_tasks, task_config

ROOT = Path(__file__).resolve().parents[1]


def _stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_task_stages_cover_exactly_the_28_tasks_of_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["lgdcnn"]
    st = _stages()
    assert st["lgdcnn_task"]["foreach"] == params["extended"] + params["matbench"]
    assert len(st["lgdcnn_task"]["foreach"]) == 28
    assert st["lgdcnn_curve"]["foreach"] == params["learning_curves"]["datasets"]
    # every task stage reads its own plan file, never params.yaml
    do = st["lgdcnn_task"]["do"]
    assert "results/lgdcnn/plan/${item}.json" in do["deps"] and "params" not in do


def test_cpu_full_rows_are_exactly_the_tasks_with_at_most_max_train_rows():
    cfg = paper_config("lgdcnn", "cpu")
    summary = pd.read_csv(ROOT / "results" / "lgdcnn" / "data_summary.csv")
    sizes = ex.full_train_sizes(summary, all_tasks(cfg), cfg["matbench_val_fraction"])
    assert sizes["aflow__ael_bulk_modulus_vrh"] == 3428 and sizes["log_gvrh"] == 7691 and sizes["steels"] == 218
    small = {t for t, n in sizes.items() if n <= cfg["full_rows"]["max_train"]}
    assert small == set(cfg["full_rows"]["tasks"])
    assert len(small) == 15  # the 8 AFLOW/MP elastic and thermal sets + 7 matbench tasks
    for t in small:
        tc = task_config(cfg, t)
        assert tc["regime"] == "full" and tc["caps"] == {"train": None, "val": None, "test": None}
        assert (tc["train"]["max_epochs"], tc["train"]["epochs_step"], tc["train"]["batch_size"]) == (300, 10, "auto")
        assert tc["train"]["optimizer"] == "lamb_lookahead" and tc["train"]["swa"] and tc["train"]["discard_n"] == 5
    assert task_config(cfg, "OQMD_Bandgap")["regime"] == "capped"


def test_plans_change_only_for_the_task_whose_settings_change(tmp_path):
    cfg = paper_config("lgdcnn", "cpu")
    a = {p.name: p.read_text() for p in lg_run.write_plans(cfg, tmp_path / "a") and (tmp_path / "a").iterdir()}
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["task_overrides"]["steels"] = {"matbench_folds": [0, 1], "seeds": [7]}
    cfg2["ablation"]["run"] = ["default"]  # not part of any benchmark run
    lg_run.write_plans(cfg2, tmp_path / "b")
    b = {p.name: p.read_text() for p in (tmp_path / "b").iterdir()}
    assert set(a) == set(b) and len(a) == 28 + 3
    assert [k for k in a if a[k] != b[k]] == ["steels.json"]
    plan = json.loads(b["steels.json"])
    assert plan["folds"] == [0, 1] and plan["seeds"] == [7] and set(plan["models"]) == {"lgdcnn"}
    assert "ablation" not in plan and "cecv" not in plan


def test_run_key_depends_on_rows_seed_and_recipe():
    cfg = task_config(paper_config("lgdcnn", "smoke"), "steels")
    df = pd.DataFrame({"row": [1, 2, 3], "formula": ["NaCl", "MgO", "Fe"], "target": [1.0, 2.0, 3.0]})
    parts = {s: df for s in ("train", "val", "test")}
    k = ex.run_key("network", "lgdcnn", "steels", 0, 42, cfg, parts)
    assert k == ex.run_key("network", "lgdcnn", "steels", 0, 42, cfg, parts)
    assert k != ex.run_key("network", "lgdcnn", "steels", 0, 43, cfg, parts)
    assert k != ex.run_key("network", "lgdcnn", "steels", 1, 42, cfg, parts)
    assert k != ex.run_key("network", "lgdcnn", "steels", 0, 42, dict(cfg, train={**cfg["train"], "max_epochs": 3}), parts)
    other = {**parts, "train": df.assign(row=[1, 2, 4])}
    assert k != ex.run_key("network", "lgdcnn", "steels", 0, 42, cfg, other)


def test_run_cache_stores_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("MATREPRO_LGDCNN_CACHE", str(tmp_path))
    calls = []

    def fn(ck):
        calls.append(ck)
        ck.save({"epoch": 3})  # what a training does while it runs
        assert (tmp_path / "k1.ckpt").is_file()
        return {"metrics": {"mae": 0.5}, "pred": [1.0, 2.0]}
    assert ex._cached("k1", fn) == ex._cached("k1", fn) == {"metrics": {"mae": 0.5}, "pred": [1.0, 2.0]}
    assert len(calls) == 1 and (tmp_path / "k1.json").is_file()
    assert calls[0].path == tmp_path / "k1.ckpt" and not calls[0].path.exists()  # cleared once stored
    assert isinstance(calls[0], TimedCheckpoint)  # a resumed run's record counts the earlier processes' time
    assert ex._cached("k2", lambda ck: {"ck": ck is None}, use_cache=False) == {"ck": True}
    assert not (tmp_path / "k2.json").exists()


def test_a_network_run_stores_its_weights_beside_the_metrics(tmp_path, monkeypatch):
    """run_fold on the smoke plan: <key>.json (metrics, test predictions) and <key>.pt (spec,
    weights, scaler, slots: what `matrepro predict` rebuilds the network from)."""
    from conftest import mirror_dir

    root = mirror_dir()
    if root is None or not (root / "element_properties" / "mat2vec.csv").is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    monkeypatch.setenv("MATREPRO_LGDCNN_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    plan = dict(task_config(paper_config("lgdcnn", "smoke"), "steels"), seeds=[42], benchmark_peers=[])
    rng = np.random.default_rng(0)
    formulas = ["Fe0.9C0.1", "Fe0.8Ni0.2", "Fe0.7Cr0.2Mo0.1", "Fe0.95Mn0.05", "Fe0.85Co0.15", "Fe0.6Ni0.3Ti0.1"]
    parts = {s: pd.DataFrame({"row": np.arange(1, n + 1), "formula": rng.choice(formulas, n),
                              "target": rng.normal(1500, 100, n)}) for s, n in (("train", 24), ("val", 8), ("test", 8))}
    res, _ = ex.run_fold("steels", 0, plan, {}, root=root, baselines=False, loaded=(parts, FilterLog("steels")))
    key = ex.run_key("network", "lgdcnn", "steels", 0, 42, plan, parts)
    assert res["models"]["lgdcnn"]["per_seed"][0]["epochs"] == 2
    art = torch.load(tmp_path / f"{key}.pt", weights_only=True)
    assert art["spec"]["model"] == "lgdcnn" and art["n_slots"] >= 3  # Fe0.7Cr0.2Mo0.1
    assert set(art["scaler"]) == {"mean", "std"} and art["weights"]
    assert not list(tmp_path.glob("*.ckpt"))


def test_a_run_shared_by_the_curve_and_the_task_stage_serves_both(tmp_path, monkeypatch):
    """The same rows, settings and seed give one run key. Whichever stage trains the run first, the
    other reads a complete record (test predictions included). Seen when the smoke pipeline ran
    stages side by side: a learning-curve point stored no predictions and the task stage that found
    it failed."""
    from conftest import mirror_dir

    root = mirror_dir()
    if root is None or not (root / "element_properties" / "mat2vec.csv").is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    monkeypatch.setenv("MATREPRO_LGDCNN_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    plan = dict(task_config(paper_config("lgdcnn", "smoke"), "steels"), seeds=[42], benchmark_peers=[], folds=[0],
                learning_curves={"sizes": [24], "models": ["lgdcnn"]})
    rng = np.random.default_rng(1)
    formulas = ["Fe0.9C0.1", "Fe0.8Ni0.2", "Fe0.7Cr0.2Mo0.1", "Fe0.95Mn0.05"]
    parts = {s: pd.DataFrame({"row": np.arange(1, n + 1), "formula": rng.choice(formulas, n),
                              "target": rng.normal(1500, 100, n)}) for s, n in (("train", 24), ("val", 8), ("test", 8))}
    monkeypatch.setattr(ex, "load_task", lambda *a, **k: ({s: d.copy() for s, d in parts.items()}, FilterLog("steels")))
    curve = ex.run_curve("steels", plan, tmp_path / "curve", root=root)
    trained = []
    monkeypatch.setattr(ex, "train_network", lambda *a, **k: trained.append(a))  # the task stage must not train
    res, preds = ex.run_fold("steels", 0, plan, {}, root=root, baselines=False, loaded=(parts, FilterLog("steels")))
    assert not trained and len(preds) == 8 and preds["lgdcnn"].notna().all()
    assert res["models"]["lgdcnn"]["mae"] == pytest.approx(curve.mae.iloc[0])
    # a record with the wrong number of test predictions is named, not averaged into a wrong column
    key = ex.run_key("network", "lgdcnn", "steels", 0, 42, plan, parts)
    rec = json.loads((tmp_path / f"{key}.json").read_text())
    (tmp_path / f"{key}.json").write_text(json.dumps(dict(rec, pred=[])))
    with pytest.raises(MatreproError, match=f"run record .*{key}.json: 0 test predictions for 8 test rows"):
        ex.run_fold("steels", 0, plan, {}, root=root, baselines=False, loaded=(parts, FilterLog("steels")))


def _fold(task, fold, per_model):
    return {"task": task, "fold": fold, "label": task, "unit": "eV", "benchmark": "matbench", "regime": "full",
            "caps": {}, "rows": {"train": 100, "val": 10, "test": 20}, "train": {"max_epochs": 300},
            "models": {m: {"per_seed": [{"mae": v, "epochs": 40, "seconds": 1.0} for v in maes]}
                       for m, maes in per_model.items()}}


def test_seed_spread_is_over_seeds_after_averaging_folds():
    rs = [_fold("t", 0, {"lgdcnn": [1.0, 2.0]}), _fold("t", 1, {"lgdcnn": [3.0, 4.0]})]
    s = ex.model_summary(rs, "lgdcnn")
    # seed means over folds: (1+3)/2 = 2, (2+4)/2 = 3 -> mean 2.5, sd 0.7071; fold means 1.5, 3.5
    assert s["mae"] == pytest.approx(2.5) and s["mae_std"] == pytest.approx(np.sqrt(0.5))
    assert s["fold_std"] == pytest.approx(np.sqrt(2.0)) and (s["seeds"], s["folds"]) == (2, 2)
    assert ex.model_summary(rs, "crabnet") is None


def test_verdict_needs_more_than_the_seed_spread():
    assert ex.verdict({"mae": 1.0, "mae_std": 0.1}, {"mae": 1.3, "mae_std": 0.05}) == "wins"
    assert ex.verdict({"mae": 1.0, "mae_std": 0.1}, {"mae": 1.05, "mae_std": 0.05}) == "tie (within seed spread)"
    assert ex.verdict({"mae": 1.3, "mae_std": 0.1}, {"mae": 1.0, "mae_std": 0.1}) == "loses"
    assert ex.verdict({"mae": 1.0, "mae_std": None}, {"mae": 1.1, "mae_std": None}) == "wins (1 seed)"
    assert ex.verdict(None, {"mae": 1.0}) == "–"
    rs = [_fold("t", 0, {"lgdcnn": [1.0, 1.1, 0.9], "crabnet": [2.0, 2.1, 1.9], "roost": [1.0, 1.2, 0.8],
                         "rf_magpie": [3.0], "mlp_magpie": [3.0]})]
    m = ex.benchmark_metrics(rs, {"profile": "smoke", "benchmark_models": ["lgdcnn"],
                                  "benchmark_peers": ["crabnet", "roost"]})
    assert m["tasks"]["t"]["verdict"] == {"crabnet": "wins", "roost": "tie (within seed spread)", "rf_magpie": "wins"}


def test_single_seed_rows_are_judged_by_the_typical_seed_spread():
    # 3-5 % apart with a typical relative spread of 4 %: a tie; 10 % apart: a win or a loss
    assert ex.verdict({"mae": 1.0}, {"mae": 1.03}, rel_spread=0.04) == "tie (1 seed)"
    assert ex.verdict({"mae": 1.05}, {"mae": 1.0}, rel_spread=0.04) == "loses (1 seed)"
    assert ex.verdict({"mae": 1.0}, {"mae": 1.1}, rel_spread=0.04) == "wins (1 seed)"
    # the spread comes from the tasks run with several seeds: relative stds ours 0.1/1.0, crabnet 0.1/2.0,
    # roost 0.2/1.0 (and rf_magpie's is not pooled) -> median 0.1
    rs = [_fold("small", 0, {"lgdcnn": [1.0, 1.1, 0.9], "crabnet": [2.0, 2.1, 1.9], "roost": [1.0, 1.2, 0.8],
                             "rf_magpie": [3.0, 3.0, 3.0]}),
          _fold("big", 0, {"lgdcnn": [1.0], "crabnet": [1.08], "roost": [1.2], "rf_magpie": [0.95]})]
    m = ex.benchmark_metrics(rs, {"profile": "smoke", "benchmark_models": ["lgdcnn"],
                                  "benchmark_peers": ["crabnet", "roost"]})
    band = m["single_seed_spread"]
    assert band["relative"] == pytest.approx(0.1) and band["n"] == 3 and band["tasks"] == ["small"]
    assert m["tasks"]["big"]["verdict"] == {"crabnet": "tie (1 seed)",
                                            "roost": "wins (1 seed)",
                                            "rf_magpie": "tie (1 seed)"}
    # no task with several seeds: the means decide, as before
    one = ex.benchmark_metrics(rs[1:], {"profile": "smoke", "benchmark_models": ["lgdcnn"],
                                        "benchmark_peers": ["crabnet", "roost"]})
    assert one["single_seed_spread"]["relative"] is None
    assert one["tasks"]["big"]["verdict"]["crabnet"] == "wins (1 seed)"


def test_power_law_fit_recovers_alpha_from_synthetic_data():
    rng = np.random.default_rng(0)
    n = np.repeat([1000, 2000, 5000, 10000, 20000], 3)
    mae = 3.0 * n ** -0.35 * np.exp(rng.normal(0, 0.03, len(n)))
    fit = fit_power_law(n, mae)
    assert fit.alpha == pytest.approx(0.35, abs=0.03) and fit.alpha_se < 0.03
    lo, hi = fit.interval(240000)
    assert lo < fit.predict(240000) < hi
    # the 95 % interval at N = 240,000 covers the true value in about 95 % of synthetic draws
    truth, hits = 3.0 * 240000 ** -0.35, 0
    for k in range(300):
        m = 3.0 * n ** -0.35 * np.exp(np.random.default_rng(k).normal(0, 0.03, len(n)))
        lo, hi = fit_power_law(n, m).interval(240000)
        hits += bool(lo < truth < hi)
    assert 0.90 <= hits / 300 <= 0.99
    exact = fit_power_law([10, 100, 1000], [1.0, 0.5, 0.25])  # alpha = log10(2) exactly
    assert exact.alpha == pytest.approx(np.log10(2)) and exact.predict(10000) == pytest.approx(0.125)
    curves = pd.DataFrame({"task": "t", "model": "m", "n_train": n, "mae": mae})
    e = ex.extrapolate_curves(curves, {"t": 240000}).iloc[0]
    assert e.lo95 < e.mae_extrapolated < e.hi95 and e.n_full == 240000 and e.points == 15


@pytest.mark.parametrize("n, mae, msg", [([1, 2], [1.0, 0.5], "need >= 3"), ([1, 1, 1], [1.0, 0.9, 0.8], "2 sizes"),
                                         ([1, 2, 3], [1.0, -0.5, 0.2], "positive"), ([1, 2], [1.0], "same length")])
def test_power_law_rejects_bad_points(n, mae, msg):
    with pytest.raises(MatreproError, match=msg):
        fit_power_law(n, mae)


def test_bf16_autocast_wrapper_trains_in_bf16_and_predicts_in_fp32():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    w = with_precision(net, "bf16")
    assert isinstance(w, Autocast) and unwrap(w) is net and with_precision(net, "fp32") is net
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    w.train()
    out = w(x)
    assert out.dtype == torch.float32
    opt = torch.optim.Adam(w.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(w(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    w.eval()
    assert torch.equal(w(x), net(x))  # eval is the plain fp32 model
    with pytest.raises(MatreproError, match="unknown precision"):
        with_precision(net, "fp8")


def test_warm_lists_every_run_and_skips_claimed_or_cached_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("MATREPRO_LGDCNN_CACHE", str(tmp_path))
    plan = task_config(paper_config("lgdcnn", "smoke"), "steels")
    plan = dict(plan, benchmark_peers=["roost"])
    jobs = ex.warm_jobs("steels", plan)
    # per fold: lgdcnn x 2 seeds, roost x 2 seeds, one baseline job
    assert len(jobs) == len(plan["folds"]) * 5
    assert [j["kind"] for j in jobs[:5]] == ["network", "network", "peer", "peer", "baseline"]
    df = pd.DataFrame({"row": [1, 2, 3], "formula": ["NaCl", "MgO", "Fe"], "target": [1.0, 2.0, 3.0]})
    monkeypatch.setattr(ex, "load_task", lambda *a, **k: ({s: df for s in ("train", "val", "test")}, None))
    trained = []
    monkeypatch.setattr(ex, "run_fold", lambda task, fold, cfg, cache, **k: trained.append((fold, cfg["seeds"], k)))
    first = jobs[0]
    one = dict(plan, seeds=[first["seed"]])
    key = ex.run_key("network", "lgdcnn", "steels", first["fold"], first["seed"], one, {s: df for s in ("train", "val", "test")})
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / f"{key}.claim").touch()  # another worker has it
    assert ex.warm(["steels"], lambda t: plan) == len(jobs) - 1
    assert ex.warm(["steels"], lambda t: plan) == 0  # everything is claimed now
    assert (tmp_path / "claims" / f"{key}.claim").is_file()
    assert ex.warm(["steels"], lambda t: plan, clear_stale=True) == len(jobs)  # no run finished: claims were stale
    assert len(ex.missing_runs("steels", plan)) == len(jobs)
    (tmp_path / f"{key}.json").write_text("{}")
    assert len(ex.missing_runs("steels", plan)) == len(jobs) - 1


def test_warm_trains_a_learning_curve_once_and_the_curve_stage_gathers_it(tmp_path, monkeypatch):
    """``warm curve_<task>`` splits the curve's runs (size x model x seed) between workers like a
    task's; the curve stage then reads every point from the run records without training."""
    monkeypatch.setenv("MATREPRO_LGDCNN_CACHE", str(tmp_path))
    plan = dict(ex.curve_config(paper_config("lgdcnn", "smoke"), "mp_e_form"), seeds=[42, 43])
    sizes, models = plan["learning_curves"]["sizes"], plan["learning_curves"]["models"]
    rng = np.random.default_rng(0)

    def load(task, fold, cfg, root=None):
        n = cfg["caps"]["train"]
        return ({s: pd.DataFrame({"row": np.arange(k), "formula": "NaCl", "target": rng.normal(size=k)})
                 for s, k in (("train", n), ("val", 4), ("test", 5))}, FilterLog(task))
    monkeypatch.setattr(ex, "load_task", load)
    trained = []

    def fake(parts, m, c, seed, *a, **k):
        trained.append((len(parts["train"]), m, seed))
        return {"metrics": {"mae": 1.0 / len(parts["train"]), "epochs": 1}, "pred": [0.0] * len(parts["test"])}
    monkeypatch.setattr(ex, "network_record", fake)
    monkeypatch.setattr(ex, "peer_record", fake)
    n_runs = len(sizes) * len(models) * 2
    assert ex.warm(["curve_mp_e_form"], lambda t: plan) == n_runs
    assert sorted(trained) == sorted((n, m, s) for n in sizes for m in models for s in (42, 43))
    assert len(list(tmp_path.glob("*.json"))) == n_runs and len(list((tmp_path / "claims").glob("*.claim"))) == n_runs
    assert ex.warm(["curve_mp_e_form"], lambda t: plan) == 0  # all recorded
    trained.clear()
    curve = ex.run_curve("mp_e_form", plan, tmp_path / "curve")
    assert not trained and len(curve) == n_runs
    assert (curve.mae * curve.n_train).round(9).eq(1.0).all()


def test_warm_takes_its_options_before_or_after_the_task_names(monkeypatch, tmp_path):
    """``run warm a b --clear-stale`` (a worker script appends options to a list of names) parses
    like ``run warm --clear-stale a b``."""
    monkeypatch.setattr(lg_run, "PLAN_DIR", tmp_path)
    monkeypatch.setenv("MATREPRO_THREADS", str(torch.get_num_threads()))  # main() sets the thread count
    calls = []
    monkeypatch.setattr(ex, "warm", lambda names, plan, clear_stale=False: calls.append((list(names), clear_stale)) or 0)
    for argv in (["warm", "steels", "curve_mp_e_form", "--clear-stale"], ["warm", "--clear-stale", "steels", "curve_mp_e_form"]):
        lg_run.main(argv)
    assert calls == [(["steels", "curve_mp_e_form"], True)] * 2


def test_run_keys_hash_the_code_each_kind_of_run_executes():
    """An edit to our training loop retrains our network and the Magpie MLP, not CrabNet or Roost
    (their runs take hours and never enter core/train.py or core/swa.py)."""
    from pathlib import Path

    from matrepro.papers.lgdcnn import benchmark as bm

    src = Path(bm.__file__).resolve().parents[2]
    for kind, files in bm._HASHED.items():
        assert all((src / f).is_file() for f in files), kind
        assert "papers/lgdcnn/tasks.py" in files and "features/composition.py" in files  # the rows and encoding
    loop = {"core/train.py", "core/swa.py"}
    assert loop <= set(bm._HASHED["network"]) and loop <= set(bm._HASHED["baseline"])
    assert not loop & set(bm._HASHED["peer"]) and "papers/lgdcnn/peers.py" in bm._HASHED["peer"]
    assert bm._code_digest("peer") != bm._code_digest("network")


def test_learning_curve_block_says_where_each_models_published_mae_lies_against_its_band():
    from matrepro.papers.lgdcnn.report import _band_verdict

    fit = {"model": "lgdcnn", "lo95": 0.027, "hi95": 0.043, "paper L-G-DCNN": 0.033, "CrabNet (pub.)": 0.020}
    assert _band_verdict(fit) == "inside the band"  # L-G-DCNN's row is judged by the paper's number
    assert _band_verdict(dict(fit, model="crabnet")) == "below the band"  # CrabNet's by CrabNet's own
    assert _band_verdict(dict(fit, model="crabnet", **{"CrabNet (pub.)": 0.05})) == "above the band"
    assert _band_verdict(dict(fit, model="crabnet", **{"CrabNet (pub.)": float("nan")})) == "–"


def test_cost_table_sums_cpu_seconds_and_marks_unknown_earlier_time():
    def seed(cpu, **extra):
        return {"epochs": 300, "batch_size": 256, "seconds": cpu + 5, "cpu_seconds": cpu,
                "swa_checks": [{"accepted": True}, {"accepted": False}], **extra}
    results = [{"task": "a", "fold": 0, "regime": "full", "rows": {"train": 100},
                "models": {"lgdcnn": {"per_seed": [seed(10.4), seed(20.2)]},
                           "crabnet": {"per_seed": [seed(7.0, resumed_at=[35], earlier_time_recorded=False)]},
                           "roost": {"per_seed": [{"epochs": 300, "seconds": 3.0}]}}}]  # an old record: wall s only
    t = ex.cost_table(results, "lgdcnn")
    row = t.iloc[0]
    assert row["ours (CPU s)"] == 31 and row["SWA accepted"] == "1/1" and row["epochs (per seed)"] == "300/300"
    assert row["crabnet (CPU s)"] == "≥ 7" and row["roost (CPU s)"] == 3
