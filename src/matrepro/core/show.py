"""Display helpers: Markdown text and tables (so notebooks define no functions), and the number
formats the tables share."""
from __future__ import annotations

import pandas as pd

METRIC_LABEL = {"mae": "MAE", "rmse": "RMSE", "r2": "R²"}


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(df: pd.DataFrame, floatfmt: str = ".4g") -> None:
    md(df.to_markdown(index=False, floatfmt=floatfmt))


def fmt(mean: float, std: float, metric: str) -> str:
    """'mean ± std' of a metric over seeds: R² with 3 decimals, errors with 2 (tiny ones in e-notation)."""
    if metric == "r2":
        return f"{mean:.3f} ± {std:.3f}"
    if 0 < abs(mean) < 0.005:  # e.g. the analytic baseline's rounding error: do not print 0.00
        return f"{mean:.1e} ± {std:.1e}"
    return f"{mean:.2f} ± {std:.2f}"


def pm(v: dict, f: str = ".4f") -> str:
    """'mean ± std' of an aggregated metric ``{mean, std, per_run}``; the mean alone for one run."""
    return f"{v['mean']:{f}} ± {v['std']:{f}}" if len(v["per_run"]) > 1 else f"{v['mean']:{f}}"
