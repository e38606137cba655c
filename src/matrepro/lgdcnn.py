"""lgdcnn: L-G-DCNN on the 28-dataset CrabNet/matbench suite (Du et al., JCTC 20, 6756 (2024)).

Tasks are either one of the 18 "extended" CrabNet datasets (given train/val/test files) or one
fold of a matbench task (official test fold; a seeded 12.5 % of the outer training rows as
validation, i.e. 10 % of the whole set). Each profile caps the rows per split (random, seeded,
logged in a FilterLog) and the epochs; the caps in force are stored with every result.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .composition import (MAX_SLOTS, CompositionBatch, FeatureBatch, TargetScaler, element_table, load_split_csv,
                          magpie_features, make_batch, encode_formulas)
from .errors import DataError, MatreproError
from .metrics import regression_metrics
from .models import build_model, count_parameters
from .paths import raw_dir
from .train import TrainConfig, crabnet_batch_size, fit, get_device, predict, set_seed
from .validate import FilterLog, read_csv, require_columns

log = logging.getLogger(__name__)

BENCH = "crabnet_benchmark/benchmark_data"
MATBENCH_FULL = "crabnet_benchmark/matbench_full"
FOLDS = "matbench_official_folds"
ELEMENTS = "element_properties"

# Paper label, unit (the CrabNet files carry none; units as in the paper card) for every task.
EXTENDED = {
    "aflow__ael_bulk_modulus_vrh": ("AFLOW bulk modulus", "GPa"),
    "aflow__ael_debye_temperature": ("AFLOW Debye temperature", "K"),
    "aflow__ael_shear_modulus_vrh": ("AFLOW shear modulus", "GPa"),
    "aflow__agl_thermal_conductivity_300K": ("AFLOW thermal conductivity", "W/(m·K)"),
    "aflow__agl_thermal_expansion_300K": ("AFLOW thermal expansion", "1/K"),
    "aflow__Egap": ("AFLOW band gap", "eV"),
    "aflow__energy_atom": ("AFLOW energy per atom", "eV/atom"),
    "CritExam__Ed": ("Bartel decomposition enthalpy", "eV/atom"),
    "CritExam__Ef": ("Bartel formation enthalpy", "eV/atom"),
    "mp_bulk_modulus": ("MP bulk modulus", "GPa"),
    "mp_e_hull": ("MP energy above hull", "eV/atom"),
    "mp_elastic_anisotropy": ("MP elastic anisotropy", "–"),
    "mp_mu_b": ("MP magnetisation", "μB"),
    "mp_shear_modulus": ("MP shear modulus", "GPa"),
    "OQMD_Bandgap": ("OQMD band gap", "eV"),
    "OQMD_Energy_per_atom": ("OQMD energy per atom", "eV/atom"),
    "OQMD_Formation_Enthalpy": ("OQMD formation enthalpy", "eV/atom"),
    "OQMD_Volume_per_atom": ("OQMD volume per atom", "Å³/atom"),
}
# matbench task -> (file in matbench_full/, paper label, unit)
MATBENCH = {
    "dielectric": ("dielectric.csv", "Dielectric", "–"),
    "expt_gap": ("expt_gap.csv", "Exp band gap", "eV"),
    "jdft2d": ("jdft2d.csv", "Jdft2d", "meV/atom"),
    "log_gvrh": ("elasticity_log10(G_VRH).csv", "Log gvrh", "log10(GPa)"),
    "log_kvrh": ("elasticity_log10(K_VRH).csv", "Log kvrh", "log10(GPa)"),
    "mp_e_form": ("mp_e_form.csv", "MP formation enthalpy", "eV/atom"),
    "mp_gap": ("mp_gap.csv", "MP band gap", "eV"),
    "perovskites": ("castelli.csv", "Perovskites", "eV/unit cell"),
    "phonons": ("phonons.csv", "Phonons", "cm⁻¹"),
    "steels": ("steels_yield.csv", "Yield strength", "MPa"),
}
SPLITS = ("train", "val", "test")


def task_label(task: str) -> str:
    return EXTENDED[task][0] if task in EXTENDED else MATBENCH[task][1]


def task_unit(task: str) -> str:
    return EXTENDED[task][1] if task in EXTENDED else MATBENCH[task][2]


def _cap(df: pd.DataFrame, n: int | None, seed: int, flog: FilterLog, what: str) -> pd.DataFrame:
    """Keep a seeded random ``n`` rows (order kept); logged. ``None`` keeps all."""
    if n is None or len(df) <= n:
        return df
    keep = np.zeros(len(df), bool)
    keep[np.random.default_rng(seed).choice(len(df), n, replace=False)] = True
    return flog.apply(df, keep, f"profile cap: random {n} of {len(df)} {what} rows (seed {seed})")


def load_task(task: str, fold: int | None, cfg: dict, root: Path | None = None) -> tuple[dict, FilterLog]:
    """{'train','val','test'} DataFrames (columns row, formula, target) after the profile's caps."""
    root = Path(root) if root else raw_dir()
    seed = cfg["split_seed"]
    flog = FilterLog(f"lgdcnn/{task}" + ("" if fold is None else f"/fold{fold}"))
    if task in EXTENDED:
        parts = {}
        for s in SPLITS:
            path = root / BENCH / task / f"{s}.csv"
            df = load_split_csv(path)
            parts[s] = df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]
    elif task in MATBENCH:
        path = root / MATBENCH_FULL / MATBENCH[task][0]
        df = load_split_csv(path)
        df = df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]
        folds_path = root / FOLDS / f"matbench_{task}.csv"
        folds = read_csv(folds_path)
        require_columns(folds, ["row_index", "test_fold"], folds_path)
        if len(folds) != len(df) or set(folds.row_index) != set(range(len(df))):
            raise DataError(folds_path, f"fold table does not cover the {len(df)} rows of {path.name}")
        test_fold = folds.set_index("row_index").test_fold.reindex(range(len(df))).to_numpy()
        is_test = test_fold == fold
        outer = df[~is_test]
        val_mask = np.zeros(len(outer), bool)
        n_val = int(round(cfg["matbench_val_fraction"] * len(outer)))
        val_mask[np.random.default_rng(seed + fold).choice(len(outer), n_val, replace=False)] = True
        parts = {"train": outer[~val_mask], "val": outer[val_mask], "test": df[is_test]}
    else:
        raise MatreproError(f"params.yaml: unknown lgdcnn task {task!r}")
    # Slots = the largest element count in the whole task (all rows, before any cap), so a capped
    # run pads exactly as a full run would (padding is not masked inside the network).
    n_slots = max(encode_formulas(parts[s].formula.tolist())[0].shape[1] for s in SPLITS)
    caps = cfg.get("caps", {})
    for s in SPLITS:
        parts[s] = _cap(parts[s].reset_index(drop=True), caps.get(s), seed, flog, s)
    parts["train"].attrs["n_slots"] = int(n_slots)
    if cfg.get("drop_unary", False):
        for s in SPLITS:
            n_el = np.array([len(encode_formulas([f])[0][0].nonzero()[0]) for f in parts[s].formula])
            parts[s] = flog.apply(parts[s], n_el > 1, f"single-element formulas ({s})")
    return parts, flog


def tasks(cfg: dict, family: str) -> list[tuple[str, int | None]]:
    """(task, fold) pairs of one family ('extended' or 'matbench') in the profile."""
    if family == "extended":
        return [(t, None) for t in cfg["extended"]]
    out = []
    for t in cfg["matbench"]:
        folds = cfg.get("matbench_folds_small", cfg["matbench_folds"]) if t in cfg.get("matbench_small", []) \
            else cfg["matbench_folds"]
        out += [(t, int(k)) for k in folds]
    return out


def train_config(cfg: dict, n_train: int, overrides: dict | None = None) -> TrainConfig:
    d = dict(cfg["train"])
    d.update(overrides or {})
    if d.get("batch_size", "auto") == "auto":
        d["batch_size"] = crabnet_batch_size(n_train)
    return TrainConfig.from_dict(d)


_TABLES: dict[str, np.ndarray] = {}


def get_element_table(name: str, root: Path | None = None) -> np.ndarray:
    root = Path(root) if root else raw_dir()
    if name not in _TABLES:
        _TABLES[name] = element_table(root / ELEMENTS / f"{name}.csv")
    return _TABLES[name]


@dataclass
class Trained:
    model: torch.nn.Module
    scaler: TargetScaler
    n_slots: int
    history: object
    seconds: float
    batch_size: int


def train_network(parts: dict, model_name: str, cfg: dict, seed: int, overrides: dict | None = None,
                  desc: str = "", root: Path | None = None) -> Trained:
    """Encode, z-score the target on the training rows, and train one composition network."""
    mcfg = dict(cfg["models"].get(model_name, {}))
    mcfg.update(overrides or {})
    model_cls = mcfg.pop("model", model_name)
    table_name = mcfg.pop("element_table", cfg["element_table"])
    n_slots = parts["train"].attrs.get("n_slots") or int(
        max(encode_formulas(p.formula.tolist())[0].shape[1] for p in parts.values()))
    scaler = TargetScaler(parts["train"].target)
    data = {}
    for s, df in parts.items():
        b = make_batch(df, n_slots)
        data[s] = CompositionBatch(b.elements, b.fractions, torch.as_tensor(scaler.scale(df.target), dtype=torch.float32))
    set_seed(seed)
    model = build_model(model_cls, element_table=get_element_table(table_name, root), **mcfg)
    tcfg = train_config(cfg, len(data["train"]))
    t0 = time.perf_counter()
    hist = fit(model, data["train"], data["val"], tcfg, seed=seed, device=get_device(), desc=desc or model_name)
    return Trained(model, scaler, n_slots, hist, time.perf_counter() - t0, tcfg.batch_size)


def predict_network(tr: Trained, df: pd.DataFrame) -> np.ndarray:
    b = make_batch(df, tr.n_slots)
    return tr.scaler.unscale(predict(tr.model, b))


def train_magpie_baselines(parts: dict, cfg: dict, seed: int, cache: dict) -> dict[str, np.ndarray]:
    """RF (500 trees, as CrabNet's retrain_rf) and a plain MLP on matminer's Magpie features."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.preprocessing import StandardScaler

    bcfg = cfg["baselines"]
    X = {s: magpie_features(parts[s].formula.tolist(), cache=cache) for s in SPLITS}
    out = {}
    rf = RandomForestRegressor(n_estimators=bcfg["rf_trees"], n_jobs=bcfg.get("rf_jobs", 1), random_state=seed)
    rf.fit(X["train"], parts["train"].target.to_numpy())
    out["rf_magpie"] = rf.predict(X["test"])
    sc = StandardScaler().fit(X["train"])
    ys = TargetScaler(parts["train"].target)

    def fb(s):
        x = np.nan_to_num(sc.transform(X[s]), nan=0.0, posinf=0.0, neginf=0.0)
        return FeatureBatch(torch.as_tensor(x, dtype=torch.float32),
                            torch.as_tensor(ys.scale(parts[s].target), dtype=torch.float32))

    set_seed(seed)
    mlp = build_model("mlp", n_features=X["train"].shape[1], **bcfg.get("mlp", {}))
    fit(mlp, fb("train"), fb("val"), TrainConfig.from_dict(bcfg["mlp_train"]), seed=seed, device=get_device(),
        progress=False)
    out["mlp_magpie"] = ys.unscale(predict(mlp, fb("test")))
    return out


def run_task(task: str, fold: int | None, cfg: dict, cache: dict, root: Path | None = None,
             models: list[str] | None = None, baselines: bool = True) -> tuple[dict, pd.DataFrame]:
    """Train the networks (default: cfg['benchmark_models']) and the Magpie baselines on one task;
    returns (result dict, test predictions)."""
    parts, flog = load_task(task, fold, cfg, root)
    seed = cfg["seeds"][0]
    name = task + ("" if fold is None else f"/fold{fold}")
    res = {"task": task, "fold": fold, "label": task_label(task), "unit": task_unit(task),
           "benchmark": "extended" if task in EXTENDED else "matbench", "profile": cfg["profile"],
           "rows": {s: len(parts[s]) for s in SPLITS}, "filters": flog.to_frame().to_dict("records"),
           "seeds": cfg["seeds"], "models": {}}
    preds = parts["test"][["row", "formula", "target"]].copy()
    for m in models or cfg["benchmark_models"]:
        per_seed, per_seed_pred = [], []
        for seed in cfg["seeds"]:
            tr = train_network(parts, m, cfg, seed, desc=f"{name} {m} s{seed}", root=root)
            y = predict_network(tr, parts["test"])
            per_seed.append({**regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                             "seconds": round(tr.seconds, 1), "batch_size": tr.batch_size,
                             "swa_checks": tr.history.swa_checks, "n_slots": tr.n_slots,
                             "n_parameters": count_parameters(tr.model)})
            per_seed_pred.append(y)
        res["models"][m] = {"per_seed": per_seed,
                            "mae": float(np.mean([r["mae"] for r in per_seed])),
                            "mae_std": float(np.std([r["mae"] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0}
        preds[m] = np.mean(per_seed_pred, axis=0)
    if baselines:
        t0 = time.perf_counter()
        for m, y in train_magpie_baselines(parts, cfg, cfg["seeds"][0], cache).items():
            res["models"][m] = {"per_seed": [regression_metrics(parts["test"].target, y)], "mae_std": 0.0}
            res["models"][m]["mae"] = res["models"][m]["per_seed"][0]["mae"]
            preds[m] = y
        res["baseline_seconds"] = round(time.perf_counter() - t0, 1)
    return res, preds


def run_family(family: str, cfg: dict, out_dir: str | Path, root: Path | None = None) -> list[dict]:
    """Every task of one family; writes <out_dir>/<task>[_fold<k>].json and predictions .csv.gz."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    results = []
    for task, fold in tqdm(tasks(cfg, family), desc=family):
        stem = task + ("" if fold is None else f"_fold{fold}")
        res, preds = run_task(task, fold, cfg, cache, root)
        (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
        preds.to_csv(out_dir / f"{stem}_predictions.csv.gz", index=False, float_format="%.6g",
                     compression={"method": "gzip", "mtime": 0})
        results.append(res)
    return results


def summary_table(results: list[dict]) -> pd.DataFrame:
    """One row per task: MAE per model (matbench: mean over the folds that ran)."""
    rows = []
    for r in results:
        rows.append({"task": r["task"], "fold": r["fold"], "label": r["label"], "unit": r["unit"],
                     "n_train": r["rows"]["train"], "n_test": r["rows"]["test"],
                     "epochs": r["models"].get("lgdcnn", {}).get("per_seed", [{}])[0].get("epochs"),
                     **{m: v["mae"] for m, v in r["models"].items()}})
    df = pd.DataFrame(rows)
    num = [c for c in df.columns if c not in ("task", "fold", "label", "unit")]
    agg = df.groupby(["task", "label", "unit"], sort=False)[num].mean().reset_index()
    agg["folds"] = df.groupby("task", sort=False).fold.apply(
        lambda s: "given split" if s.isna().all() else ",".join(str(int(k)) for k in s)).to_numpy()
    return agg


def load_reported_mae(path: str | Path) -> pd.DataFrame:
    """The paper's reported and the published reference MAEs (reference_results CSVs), wide:
    one row per dataset."""
    df = read_csv(path)
    require_columns(df, ["table", "dataset", "model", "value"], path)
    return df


def family_metrics(results: list[dict], cfg: dict) -> dict:
    tab = summary_table(results)
    return {"profile": cfg["profile"], "seeds": cfg["seeds"], "caps": cfg.get("caps", {}),
            "max_epochs": cfg["train"]["max_epochs"],
            "tasks": {r["task"]: {"mae": {m: float(r[m]) for m in cfg["benchmark_models"] + ["rf_magpie", "mlp_magpie"]
                                          if m in r},
                                  "n_train": int(r["n_train"]), "n_test": int(r["n_test"]), "folds": r["folds"],
                                  "epochs": None if pd.isna(r["epochs"]) else int(r["epochs"]),
                                  "unit": r["unit"], "label": r["label"]}
                      for r in tab.to_dict("records")}}


# Published columns shown beside ours: (column, table in the reported CSV, model label there).
PAPER_COLUMNS = {
    "extended": [("paper L-G-DCNN", "extended_fig4", "L-G-DCNN"), ("paper L-G-DCNN-V1", "extended_fig4", "L-G-DCNN-V1"),
                 ("CrabNet (pub.)", "extended_fig4", "Crabnet-ref"), ("Roost (pub.)", "extended_fig4", "Roost-ref"),
                 ("RF-Magpie (pub.)", "extended_fig4", "RF-ref"), ("Finder (pub.)", "extended_fig4", "Finder-ref")],
    "matbench": [("paper L-G-DCNN", "matbench_table1", "L-G-DCNN"),
                 ("paper L-G-DCNN-V1", "matbench_table1", "L-G-DCNN-V1"),
                 ("CrabNet (pub.)", "matbench_table1", "Crabnet-ref(matbench leaderboard)"),
                 ("Finder (pub.)", "matbench_table1", "Finder-ref(matbench leaderboard)")],
}
# matbench task -> dataset name in CrabNet's published (de-duplicated CV) metrics
CRABNET_MATBENCH_NAME = {"perovskites": "castelli", "log_gvrh": "elasticity_log10(G_VRH)",
                         "log_kvrh": "elasticity_log10(K_VRH)", "steels": "steels_yield"}


def published_table(ref_dir: str | Path | None = None) -> pd.DataFrame:
    """Every published MAE we compare with, one row per task, with a ``source`` note per column.

    Extended datasets: the paper's Fig. 4 columns (its CrabNet, Roost and RF columns equal the
    metrics recomputed from CrabNet's published predictions). Matbench: the paper's Table 1
    (L-G-DCNN, and CrabNet/Finder from the matbench leaderboard); Roost and RF have no official-fold
    numbers, so CrabNet's published de-duplicated 5-fold CV metrics are shown, marked as such.
    """
    ref_dir = Path(ref_dir) if ref_dir else raw_dir() / "reference_results"
    rep = load_reported_mae(ref_dir / "lgdcnn_preprint_reported_mae.csv")
    pub = read_csv(ref_dir / "crabnet_publication_test_metrics.csv")
    rows = []
    for family, cols in PAPER_COLUMNS.items():
        names = list(EXTENDED) if family == "extended" else list(MATBENCH)
        for task in names:
            key = task if family == "extended" else f"matbench_{task}"
            row = {"task": task}
            for col, table, model in cols:
                hit = rep[(rep.table == table) & (rep.dataset == key) & (rep.model == model)]
                row[col] = pd.to_numeric(hit.value, errors="coerce").iloc[0] if len(hit) else np.nan  # '*' = not reported
                if len(hit) and isinstance(hit.note.iloc[0], str) and hit.note.iloc[0] and family == "extended":
                    row.setdefault("note", []).append(f"{col}: {hit.note.iloc[0]}")
            if family == "matbench":
                name = CRABNET_MATBENCH_NAME.get(task, task)
                row.setdefault("note", []).append("Roost, RF: CrabNet's de-duplicated 5-fold CV, not the official folds")
                for col, model in (("Roost (pub.)", "Roost"), ("RF-Magpie (pub.)", "RF")):
                    hit = pub[(pub.benchmark == "matbench_cv(crabnet-dedup)") & (pub.dataset == name)
                              & (pub.model == model) & (pub.metric == "MAE")]
                    row[col] = float(hit.value.iloc[0]) if len(hit) else np.nan
            row["note"] = "; ".join(row.get("note", []))
            rows.append(row)
    return pd.DataFrame(rows)


def _variant(spec: dict) -> tuple[str, dict]:
    spec = dict(spec)
    return spec.pop("model"), spec


def run_ablation(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Table 2: each variant of ``cfg['ablation']['run']`` on each ablation dataset (test MAE)."""
    acfg = cfg["ablation"]
    rows = []
    for task in acfg["datasets"]:
        parts, _ = load_task(task, None, cfg, root)
        for name in tqdm(acfg["run"], desc=f"ablation {task}"):
            if name not in acfg["variants"]:
                raise MatreproError(f"params.yaml: field 'lgdcnn.ablation.run': unknown variant {name!r}")
            model, over = _variant(acfg["variants"][name])
            tr = train_network(parts, model, cfg, cfg["seeds"][0], overrides=over, desc=f"{task} {name}", root=root)
            y = predict_network(tr, parts["test"])
            rows.append({"task": task, "variant": name, "model": model, **over,
                         **regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                         "n_parameters": count_parameters(tr.model), "seconds": round(tr.seconds, 1),
                         "n_train": len(parts["train"]), "n_test": len(parts["test"])})
    return pd.DataFrame(rows)


def run_cecv(cfg: dict, root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train each CECV model on the CECV dataset (same rows and seed for all) and compute its CECV
    on every test compound containing the probe element. Returns (cecv table, model MAEs)."""
    from pymatgen.core import Element

    from . import cecv

    c = cfg["cecv"]
    root = Path(root) if root else raw_dir()
    parts, _ = load_task(c["dataset"], None, cfg, root)
    test_full = load_split_csv(root / BENCH / c["dataset"] / "test.csv")
    z_probe = Element(c["probe"]).Z
    zs, _ = encode_formulas(test_full.formula.tolist())
    probe = test_full[(zs == z_probe).any(axis=1)].reset_index(drop=True)
    if c.get("probe_rows"):
        probe = probe.iloc[:c["probe_rows"]]
    rows, maes = [], []
    for m in tqdm(c["models"], desc="cecv models"):
        tr = train_network(parts, m, cfg, cfg["seeds"][0], desc=f"cecv {m}", root=root)
        y = predict_network(tr, parts["test"])
        maes.append({"model": m, **regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                     "n_parameters": count_parameters(tr.model), "seconds": round(tr.seconds, 1)})
        batch = make_batch(probe, tr.n_slots)
        counts, per_n = cecv.model_cecv(tr.model, batch, c["thresholds"], c["n_elements"])
        rows.append({"model": m, **{f"thr_{t:g}": n for t, n in zip(c["thresholds"], counts)},
                     "n_probe": len(probe), "n_by_elements": json.dumps(per_n)})
    return pd.DataFrame(rows), pd.DataFrame(maes)


def run_sample_efficiency(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Test MAE against training-set size (random subsets of the training file, seeded) for
    L-G-DCNN and RF-Magpie, on the same validation and test rows."""
    s = cfg["sample_efficiency"]
    rows, cache = [], {}
    for n in tqdm(s["sizes"], desc="sample efficiency"):
        c = dict(cfg, caps={**cfg.get("caps", {}), "train": n})
        parts, _ = load_task(s["dataset"], None, c, root)
        tr = train_network(parts, "lgdcnn", c, cfg["seeds"][0], desc=f"n={n}", root=root)
        y = predict_network(tr, parts["test"])
        base = train_magpie_baselines(parts, c, cfg["seeds"][0], cache)
        for model, pred in (("lgdcnn", y), ("rf_magpie", base["rf_magpie"]), ("mlp_magpie", base["mlp_magpie"])):
            rows.append({"n_train": len(parts["train"]), "model": model,
                         **regression_metrics(parts["test"].target, pred), "n_test": len(parts["test"])})
    return pd.DataFrame(rows)


FAMILIES = ("extended", "matbench")


def load_metrics(mdir: str | Path | None = None, families=FAMILIES) -> dict[str, dict]:
    from .paths import metrics_dir

    d = Path(mdir or metrics_dir()) / "lgdcnn"
    out = {}
    for fam in families:
        p = d / f"{fam}.json"
        if p.is_file():
            out[fam] = json.loads(p.read_text())
    if not out:
        raise MatreproError(f"{d}: no lgdcnn metrics yet; run `dvc repro`")
    return out


def report_table(mdir=None, ref_dir=None, families=FAMILIES) -> pd.DataFrame:
    """The 28-dataset table: our L-G-DCNN and Magpie baselines beside every published number,
    with ratio = ours / paper's L-G-DCNN."""
    pub = published_table(ref_dir).set_index("task")
    rows = []
    for fam, m in load_metrics(mdir, families).items():
        for task, r in m["tasks"].items():
            p = pub.loc[task]
            ours = r["mae"].get("lgdcnn")
            rows.append({"benchmark": fam, "dataset": r["label"], "unit": r["unit"],
                         "L-G-DCNN (ours)": ours, "paper L-G-DCNN": p["paper L-G-DCNN"],
                         "ratio": ours / p["paper L-G-DCNN"] if ours is not None else np.nan,
                         "RF-Magpie (ours)": r["mae"].get("rf_magpie"), "MLP-Magpie (ours)": r["mae"].get("mlp_magpie"),
                         "CrabNet (pub.)": p["CrabNet (pub.)"], "Roost (pub.)": p["Roost (pub.)"],
                         "RF-Magpie (pub.)": p["RF-Magpie (pub.)"],
                         "train rows": r["n_train"], "test rows": r["n_test"], "folds": r["folds"],
                         "epochs": r.get("epochs"), "profile": m["profile"], "note": p["note"]})
    return pd.DataFrame(rows)


def _g(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4g}"


def report_markdown(mdir=None, ref_dir=None) -> str:
    t = report_table(mdir, ref_dir)
    m = load_metrics(mdir)
    shown = t.drop(columns=["note"]).copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f" and c not in ("epochs",):
            shown[c] = [f"{v:.2f}" if c == "ratio" else _g(v) for v in shown[c]]
    any_m = next(iter(m.values()))
    notes = sorted({n for n in t.note if n})
    foot = (f"Profile `{any_m['profile']}`; caps per split {any_m['caps']}; at most {any_m['max_epochs']} epochs; "
            f"seeds {any_m['seeds']}. Test MAE in each dataset's unit. *(ours)* = trained here on the same rows; "
            "*(pub.)* = published numbers, never our runs (extended: the paper's Fig. 4 columns, equal to CrabNet's "
            "published predictions; matbench: CrabNet from the paper's Table 1 / leaderboard). "
            "ratio = L-G-DCNN (ours) / paper L-G-DCNN. Matbench rows: mean over the folds listed.")
    text = shown.to_markdown(index=False, disable_numparse=True) + "\n\n" + foot + (
        "\n\nNotes: " + " | ".join(notes) if notes else "")
    from .paths import metrics_dir

    cecv_path = Path(mdir or metrics_dir()) / "lgdcnn" / "cecv.json"
    if cecv_path.is_file():
        c = json.loads(cecv_path.read_text())
        paper = paper_cecv(ref_dir).set_index("model")
        rows = []
        for model, counts in c["cecv"].items():
            rows.append({"model": CECV_LABELS.get(model, model), "ours": " / ".join(map(str, counts)),
                         "paper (Fig. 2)": " / ".join(str(int(v)) for v in paper.loc[model].to_numpy())
                         if model in paper.index else "–",
                         "test MAE (ours)": _g(c["test_mae"].get(model))})
        text += (f"\n\n**lgdcnn CECV** (clusters at thresholds 0.05 … 0.40, {c['probe']}-containing "
                 f"{c['dataset']} test compounds: {c['n_probe']} here; profile `{c['profile']}`), from "
                 "`metrics/lgdcnn/cecv.json`:\n\n" + pd.DataFrame(rows).to_markdown(index=False))
    return text


CECV_LABELS = {"lstm_ref": "LSTM", "dcnn_k1": "DCNN-K1", "dcnn": "DCNN", "ldcnn": "LDCNN",
               "ldcnn_att": "L-ATT-RES-DCNN", "lgdcnn": "L-G-DCNN", "lgdcnn_v1": "L-G-DCNN-V1"}
ABLATION_LABELS = {"DCNN layers=2": "default", "DCNN layers=4": "blocks_4", "DCNN layers=6": "blocks_6",
                   "Model1": "M1_onehot", "Model2": "M2_post_nn", "Model3": "M3_no_residual",
                   "Model4": "M4_no_region_residual", "Model5": "M5_self_attention", "Model6": "M6_ldcnn"}


def paper_ablation(ref_dir=None) -> pd.DataFrame:
    """The paper's Table 2 (published): task, variant, paper_mae."""
    ref_dir = Path(ref_dir) if ref_dir else raw_dir() / "reference_results"
    rep = load_reported_mae(ref_dir / "lgdcnn_preprint_reported_mae.csv")
    rep = rep[rep.table == "ablation_table2"]
    out = []
    for r in rep.itertuples():
        key = next(v for k, v in ABLATION_LABELS.items() if r.model.startswith(k))
        out.append({"task": r.dataset, "variant": key, "paper_mae": pd.to_numeric(r.value, errors="coerce"),
                    "paper_note": r.note if isinstance(r.note, str) else ""})
    return pd.DataFrame(out)


def paper_cecv(ref_dir=None) -> pd.DataFrame:
    """The paper's Fig. 2 CECV counts (published), with our model names."""
    ref_dir = Path(ref_dir) if ref_dir else raw_dir() / "reference_results"
    df = read_csv(ref_dir / "lgdcnn_preprint_cecv_si_oqmd_fe.csv")
    names = {v: k for k, v in CECV_LABELS.items()}
    return df.assign(model=[names.get(m, m) for m in df.model])


def data_summary(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Every file of the suite parsed in full; sizes, unary formulas, elements, duplicates, and the
    rows the profile keeps (first fold for matbench)."""
    root = Path(root) if root else raw_dir()
    rows = []
    for task in list(EXTENDED) + list(MATBENCH):
        if task in EXTENDED:
            files = [root / BENCH / task / f"{s}.csv" for s in SPLITS]
        else:
            files = [root / MATBENCH_FULL / MATBENCH[task][0]]
        dfs = [load_split_csv(f) for f in files]
        n_el = np.concatenate([(encode_formulas(d.formula.tolist(), MAX_SLOTS, file=f)[0] > 0).sum(axis=1)
                               for d, f in zip(dfs, files)])
        allf = pd.concat(dfs)
        fold = None if task in EXTENDED else int(cfg["matbench_folds"][0])
        kept, _ = load_task(task, fold, cfg, root)
        rows.append({"task": task, "label": task_label(task), "unit": task_unit(task),
                     "benchmark": "extended" if task in EXTENDED else "matbench",
                     "rows": len(allf), "split": "/".join(str(len(d)) for d in dfs) if task in EXTENDED else "5 folds",
                     "unary": int((n_el == 1).sum()), "max elements": int(n_el.max()),
                     "duplicate formulas": int(allf.formula.duplicated().sum()),
                     "target min": float(allf.target.min()), "target max": float(allf.target.max()),
                     "rows_kept": int(sum(len(v) for v in kept.values())),
                     "kept train/val/test": "/".join(str(len(kept[s])) for s in SPLITS)})
    return pd.DataFrame(rows)
