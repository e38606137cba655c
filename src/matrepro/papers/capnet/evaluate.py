"""capnet evaluation: the analytic (no-learning) capacity on the very test rows the models see, and
the per-architecture results gathered into ``metrics/capnet.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.errors import MatreproError
from ...core.metrics import aggregate, regression_metrics
from . import data as bt
from .preprocess import load_processed, split_column


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
