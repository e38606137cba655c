"""Regression metrics and their aggregation over seeds."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"mae": float(mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
            "r2": float(r2_score(y_true, y_pred))}


def aggregate(per_seed: list[dict[str, float]]) -> dict[str, dict]:
    """{metric: {mean, std (sample, ddof=1), per_seed}} over a list of per-seed metric dicts."""
    out = {}
    for key in per_seed[0]:
        vals = np.array([m[key] for m in per_seed], float)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                    "per_seed": [float(v) for v in vals]}
    return out
