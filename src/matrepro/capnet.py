"""capnet: Classified Branch–CapNet (Kim, Yang, Chung, Mathematics 13, 3730 (2025)).

Preprocessing (rows, analytic capacity, categories, splits) and the experiment grid
(architecture x feature set x split x seed). Every choice is read from ``params.yaml``; the
paper's full text is not public, so every one of them is an assumption listed in
``data/deviations.yaml``.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import battery as bt
from .errors import MatreproError
from .metrics import aggregate, regression_metrics
from .models import build_model, count_parameters
from .splits import group_leaks, group_split, random_split
from .tabular import TabularEncoder
from .train import TrainConfig, fit, get_device, predict, set_seed
from .validate import FilterLog, read_csv

log = logging.getLogger(__name__)

TABLE, SPLITS, FILTERS, META = "table.csv", "splits.csv", "filters.json", "meta.json"


def group_key(df: pd.DataFrame) -> pd.Series:
    """Rows sharing the (charged, discharged) formula pair share the capacity exactly."""
    return df[bt.F_CHARGE] + " -> " + df[bt.F_DISCHARGE]


def split_column(split: str, seed: int) -> str:
    return f"{split}_seed{seed}"


def make_splits(df: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One column per (split kind, seed): 'train' / 'val' / 'test'. Each seed draws its own split."""
    out = pd.DataFrame({bt.ID: df[bt.ID]})
    groups = group_key(df).to_numpy()
    for seed in cfg["seeds"]:
        for split in cfg["splits"]:
            if split == "random":
                labels = random_split(len(df), cfg["split_fractions"], seed)
            elif split == "group":
                labels = group_split(groups, cfg["split_fractions"], seed)
                leaks = group_leaks(groups, labels)
                if leaks:  # cannot happen with GroupShuffleSplit; checked all the same
                    raise MatreproError(f"group split seed {seed}: groups on two sides: {leaks[:3]}")
            else:
                raise MatreproError(f"params.yaml: field 'capnet.splits': unknown split {split!r}")
            out[split_column(split, seed)] = labels
    return out


def categorical_columns(source: str) -> list[str]:
    return bt.SYMMETRY_CATEGORIES if source == "mp_symmetry" else bt.PROXY_CATEGORIES


def preprocess(raw_csv: str | Path, out_dir: str | Path, cfg: dict,
               refresh_csv: str | Path | None = None) -> dict:
    """raw battery CSV -> table.csv, splits.csv, filters.json, meta.json in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flog = FilterLog("capnet")
    df = bt.select_rows(bt.load_battery_table(raw_csv), cfg, flog)
    df = pd.concat([df, bt.composition_features(df, raw_csv)], axis=1)

    source = cfg.get("categorical_source", "auto")
    have_refresh = refresh_csv is not None and Path(refresh_csv).is_file()
    if source == "auto":
        source = "mp_symmetry" if have_refresh else "composition_proxy"
    if source == "mp_symmetry":
        if not have_refresh:
            raise MatreproError(f"categorical_source is mp_symmetry but {refresh_csv} does not exist: "
                                "run `make mp-refresh` (needs MP_API_KEY) first")
        df = bt.attach_symmetry(df, read_csv(refresh_csv), refresh_csv, flog)

    n_sub = cfg.get("subsample")
    if n_sub and n_sub < len(df):
        keep = np.zeros(len(df), bool)
        keep[np.random.default_rng(cfg["base_seed"]).choice(len(df), n_sub, replace=False)] = True
        df = flog.apply(df, keep, f"profile {cfg['profile']}: random subsample to {n_sub} rows")

    cats = categorical_columns(source)
    cols = [bt.ID, "Battery Formula", bt.ION, bt.F_CHARGE, bt.F_DISCHARGE, *bt.NUMERIC_COLUMNS,
            bt.TARGET, "capacity_analytic", *cats]
    df[cols].to_csv(out_dir / TABLE, index=False)  # full precision: the analytic check reads it
    make_splits(df, cfg).to_csv(out_dir / SPLITS, index=False)
    flog.save(out_dir / FILTERS)
    groups = group_key(df)
    meta = {
        "profile": cfg["profile"], "rows": len(df), "categorical_source": source,
        "categorical_columns": cats,
        "cardinality": {c: int(df[c].nunique()) for c in cats},
        "formula_pairs": int(groups.nunique()),
        "rows_in_shared_pairs": int(groups.duplicated(keep=False).sum()),
        "analytic_max_abs_error_mAh_g": float((df["capacity_analytic"] - df[bt.TARGET]).abs().max()),
        "seeds": list(cfg["seeds"]), "splits": list(cfg["splits"]),
        "split_fractions": list(cfg["split_fractions"]),
    }
    (out_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_processed(processed_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    d = Path(processed_dir)
    meta = json.loads((d / META).read_text())
    table = read_csv(d / TABLE, dtype={c: str for c in meta["categorical_columns"]})
    splits = read_csv(d / SPLITS)
    if not table[bt.ID].equals(splits[bt.ID]):
        raise MatreproError(f"{d}: {TABLE} and {SPLITS} list different rows; rerun preprocess")
    return table, splits, meta


def run_architecture(arch: str, cfg: dict, processed_dir: str | Path, progress: bool = True,
                     device=None) -> tuple[dict, pd.DataFrame]:
    """Train and test one architecture on every feature set x split x seed.

    Returns the metrics (mean, std and per-seed values) and the per-sample test predictions."""
    table, splits, meta = load_processed(processed_dir)
    cats = meta["categorical_columns"]
    tcfg = TrainConfig.from_dict(cfg["train"])
    hparams = cfg["models"][arch]
    device = device or get_device()
    y = table[bt.TARGET].to_numpy(float)
    results, preds = {}, []
    grid = [(fs, sp, s) for fs in cfg["feature_sets"] for sp in cfg["splits"] for s in cfg["seeds"]]
    per = {}
    for fs, sp, seed in tqdm(grid, desc=arch, disable=not progress):
        labels = splits[split_column(sp, seed)].to_numpy()
        part = {k: labels == k for k in ("train", "val", "test")}
        enc = TabularEncoder(bt.FEATURE_SETS[fs], cats, cfg.get("min_category_count", 1))
        enc.fit(table.loc[part["train"]], y[part["train"]])
        data = {k: enc.transform(table.loc[m], y[m]) for k, m in part.items()}
        set_seed(seed)
        model = build_model(arch, n_numeric=len(enc.numeric), cardinalities=enc.cardinalities, **hparams)
        hist = fit(model, data["train"], data["val"], tcfg, seed=seed, device=device, progress=False)
        y_hat = enc.inverse_target(predict(model, data["test"], device=device))
        m = regression_metrics(y[part["test"]], y_hat)
        m.update(epochs=hist.epochs, best_epoch=hist.best_epoch + 1)
        per.setdefault((fs, sp), []).append(m)
        preds.append(pd.DataFrame({"model": arch, "feature_set": fs, "split": sp, "seed": seed,
                                   bt.ID: table.loc[part["test"], bt.ID].to_numpy(),
                                   "y_true": y[part["test"]], "y_pred": y_hat}))
        results.setdefault("n_parameters", {})[fs] = count_parameters(model)
    for (fs, sp), ms in per.items():
        agg = aggregate([{k: v for k, v in m.items() if k in ("mae", "rmse", "r2")} for m in ms])
        agg["epochs"] = [m["epochs"] for m in ms]
        agg["best_epoch"] = [m["best_epoch"] for m in ms]
        results.setdefault(fs, {})[sp] = agg
    results.update(model=arch, profile=cfg["profile"], seeds=list(cfg["seeds"]),
                   hyperparameters=hparams, train=cfg["train"], device=str(device),
                   categorical_source=meta["categorical_source"])
    return results, pd.concat(preds, ignore_index=True)


def analytic_results(cfg: dict, processed_dir: str | Path) -> tuple[dict, pd.DataFrame]:
    """The no-learning baseline on exactly the test rows the models see."""
    table, splits, meta = load_processed(processed_dir)
    y, y_hat = table[bt.TARGET].to_numpy(float), table["capacity_analytic"].to_numpy(float)
    results, preds = {}, []
    for sp in cfg["splits"]:
        ms = []
        for seed in cfg["seeds"]:
            test = splits[split_column(sp, seed)].to_numpy() == "test"
            ms.append(regression_metrics(y[test], y_hat[test]))
            preds.append(pd.DataFrame({"model": "analytic", "feature_set": "formulas", "split": sp,
                                       "seed": seed, bt.ID: table.loc[test, bt.ID].to_numpy(),
                                       "y_true": y[test], "y_pred": y_hat[test]}))
        results[sp] = aggregate(ms)
    return ({"formulas": results, "model": "analytic", "profile": cfg["profile"], "seeds": list(cfg["seeds"]),
             "categorical_source": meta["categorical_source"]},
            pd.concat(preds, ignore_index=True))


def collect(cfg: dict, results_dir: str | Path, analytic: dict) -> dict:
    """Gather the per-architecture result files and the analytic baseline into metrics/capnet.json."""
    results_dir = Path(results_dir)
    results = {}
    for arch in cfg["architectures"]:
        path = results_dir / f"{arch}.json"
        if not path.is_file():
            raise MatreproError(f"{path}: missing; run the train stage for {arch!r}")
        r = json.loads(path.read_text())
        if r["profile"] != cfg["profile"] or r["seeds"] != list(cfg["seeds"]):
            raise MatreproError(f"{path}: made with profile {r['profile']} seeds {r['seeds']}, "
                                f"not {cfg['profile']} {cfg['seeds']}; rerun dvc repro")
        # metrics only; epochs, hyperparameters and parameter counts stay in results/capnet/<arch>.json
        results[arch] = {fs: {sp: {k: cell[k] for k in ("mae", "rmse", "r2")} for sp, cell in r[fs].items()}
                         for fs in cfg["feature_sets"]}
    results["analytic"] = {"formulas": analytic["formulas"]}
    return {"paper": "capnet", "profile": cfg["profile"], "seeds": list(cfg["seeds"]), "unit": "mAh/g",
            "target": bt.TARGET, "categorical_source": analytic.get("categorical_source"),
            "model_order": [*cfg["architectures"], "analytic"], "results": results}
