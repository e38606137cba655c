"""Result tables of the gan comparison: representation x predictor x target, and the abstract's
claim checked row by row. Pure numpy/pandas over the result dicts that ``represent.run_target``
returns, so that the report (and a wording change) does not depend on the training code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

PREDICTORS = ("rf", "mlp")
CLAIM_RULE = ("yes: GAN's mean MAE is below both Magpie's and one-hot's by more than m; no: above either "
              "by more than m; else within noise. m = the larger of sqrt(std_gan^2 + std_magpie^2) and "
              "sqrt(std_gan^2 + std_onehot^2), std = sample std of the test MAE over seeds (0 with one seed)")


def _as_list(results) -> list[tuple[str, dict]]:
    """[(target, result), ...] from one result, a list of them, or {target: result}."""
    if isinstance(results, dict) and "blocks" in results:
        return [(str(results.get("target", "")), results)]
    if isinstance(results, dict):
        return [(str(r.get("target", t)), r) for t, r in results.items()]
    return [(str(r.get("target", "")), r) for r in results]


def results_table(results) -> pd.DataFrame:
    """One row per target, block, representation and predictor: rows per part, mean and std over
    seeds of the test MAE, RMSE and R²."""
    out = []
    for target, res in _as_list(results):
        for block, b in res["blocks"].items():
            for key, m in b["models"].items():
                out.append({"target": target, "rows": block, "representation": m["representation"],
                            "predictor": m["predictor"], "n_train": b["rows"]["train"], "n_val": b["rows"]["val"],
                            "n_test": b["rows"]["test"], "seeds": len(m["per_seed"]),
                            "MAE": m["mae"], "MAE std": m["mae_std"], "RMSE": m["rmse"], "RMSE std": m["rmse_std"],
                            "R2": m["r2"], "R2 std": m["r2_std"]})
    return pd.DataFrame(out)


def _pm(mean: float, std: float) -> str:
    return f"{mean:.4g} ± {std:.2g}"


def compact_table(results) -> pd.DataFrame:
    """:func:`results_table` for reading: one row per target, rows block, representation and
    predictor, with "mean ± std" over seeds of the test MAE, RMSE and R²."""
    t = results_table(results)
    if t.empty:
        return t
    return pd.DataFrame({"target": t.target, "rows": t["rows"],
                         "train / val / test": [f"{a:,} / {b:,} / {c:,}" for a, b, c in zip(t.n_train, t.n_val, t.n_test)],
                         "representation": t.representation, "predictor": t.predictor, "seeds": t.seeds,
                         "MAE": [_pm(m, s) for m, s in zip(t.MAE, t["MAE std"])],
                         "RMSE": [_pm(m, s) for m, s in zip(t.RMSE, t["RMSE std"])],
                         "R²": [_pm(m, s) for m, s in zip(t.R2, t["R2 std"])]})


def claim_check(results) -> pd.DataFrame:
    """Per target and predictor (encoded block: the same rows for every representation): is the
    GAN representation better than Magpie and one-hot with the same model? Verdict ``yes``, ``no``
    or ``within noise`` by ``CLAIM_RULE``; a baseline not run is left out of the rule (NaN)."""
    out = []
    for target, res in _as_list(results):
        models = res["blocks"]["encoded"]["models"]
        for pred in res.get("predictors", PREDICTORS):
            gan = models.get(f"gan_{pred}")
            others = {r: models.get(f"{r}_{pred}") for r in ("magpie", "onehot")}
            if gan is None or not any(others.values()):
                continue
            present = {r: m for r, m in others.items() if m is not None}
            margin = max(float(np.hypot(gan["mae_std"], m["mae_std"])) for m in present.values())
            diffs = {r: m["mae"] - gan["mae"] for r, m in present.items()}  # > 0: GAN better
            if all(d > margin for d in diffs.values()):
                verdict = "yes"
            elif any(-d > margin for d in diffs.values()):
                verdict = "no"
            else:
                verdict = "within noise"
            out.append({"target": target, "predictor": pred, "gan MAE": gan["mae"],
                        "magpie MAE": others["magpie"]["mae"] if others["magpie"] else np.nan,
                        "onehot MAE": others["onehot"]["mae"] if others["onehot"] else np.nan,
                        "margin": margin, "seeds": len(gan["per_seed"]), "verdict": verdict, "rule": CLAIM_RULE})
    return pd.DataFrame(out, columns=["target", "predictor", "gan MAE", "magpie MAE", "onehot MAE", "margin", "seeds",
                                      "verdict", "rule"])
