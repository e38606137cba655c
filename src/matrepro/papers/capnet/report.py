"""The capnet rows of the project report and README (found by ``matrepro.report`` by name).

Reproduced numbers come from ``metrics/capnet.json`` (written by the capnet_evaluate notebook),
reported ones from ``data/reported.yaml``. Kept apart from the training code, so that report
wording can change without re-running a training stage.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.errors import MatreproError
from ...core.paths import metrics_dir
from ...core.reported import load_reported
from ...core.show import METRIC_LABEL, fmt

PAPER = "capnet"
FIGURES: list[tuple[str, str]] = []  # the capnet figures are shown in its own notebooks


def load_metrics(mdir: str | Path | None = None) -> dict:
    path = Path(mdir or metrics_dir()) / f"{PAPER}.json"
    if not path.is_file():
        raise MatreproError(f"{path}: no metrics yet; run `dvc repro`")
    return json.loads(path.read_text())


def reproduced_long(mdir: str | Path | None = None) -> pd.DataFrame:
    """metrics/capnet.json -> one row per model x feature set x split x metric."""
    m = load_metrics(mdir)
    rows = []
    for model, by_fs in m["results"].items():
        for fs, by_split in by_fs.items():
            for split, by_metric in by_split.items():
                for metric, v in by_metric.items():
                    if metric in METRIC_LABEL:
                        rows.append({"paper": PAPER, "model": model, "feature_set": fs, "split": split,
                                     "metric": metric, "mean": v["mean"], "std": v["std"],
                                     "n_seeds": len(v["per_seed"]), "profile": m["profile"]})
    return pd.DataFrame(rows)


def comparison(reported: pd.DataFrame | None = None, mdir=None) -> pd.DataFrame:
    """Reported vs reproduced (mean ± std over seeds), with ratio = reproduced / reported."""
    reported = reported if reported is not None else load_reported()
    rep = reported[reported.paper == PAPER]
    out = []
    if rep.empty:
        return pd.DataFrame(out)
    rp = reproduced_long(mdir)
    for _, r in rep.iterrows():
        hit = rp[(rp.model == r.model) & (rp.metric == r.metric) & (rp.feature_set == r.setting_feature_set)
                 & (rp.split == r.setting_split)]
        if hit.empty:
            raise MatreproError(f"metrics/{PAPER}.json has no {r.model}/{r.setting_feature_set}/"
                                f"{r.setting_split}/{r.metric}")
        h = hit.iloc[0]
        out.append({"paper": PAPER, "model": r.model, "metric": METRIC_LABEL[r.metric],
                    "setting": f"{r.setting_feature_set}, {r.setting_split} split",
                    "reported": r.reported, "reported as": r.kind,
                    "reproduced": h["mean"], "± std": h["std"], "seeds": h["n_seeds"],
                    "ratio": h["mean"] / r.reported, "profile": h["profile"]})
    return pd.DataFrame(out)


def results_markdown(mdir=None) -> str:
    """The README block of capnet: every model x feature set x split, in the order of the metrics file."""
    m = load_metrics(mdir)
    rows = []
    for model, by_fs in m["results"].items():
        for fs, by_split in by_fs.items():
            for split, v in by_split.items():
                rows.append({"model": model, "feature set": fs, "split": split,
                             **{METRIC_LABEL[k]: fmt(v[k]["mean"], v[k]["std"], k) for k in METRIC_LABEL}})
    return (f"**{PAPER}**: profile `{m['profile']}`, mean ± std over seeds {m['seeds']}, "
            f"{m.get('unit', '')}, from `metrics/{PAPER}.json`.\n\n" + pd.DataFrame(rows).to_markdown(index=False))
