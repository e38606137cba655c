"""The lgdcnn rows of the project report and README (found by ``matrepro.report`` by name): the
28-dataset table and the CECV counts. Kept apart from the training code, so that report wording can
change without re-running a training stage.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.paths import metrics_dir
from .published import CECV_LABELS, claim_summary, compact_table, fmt_mae, load_metrics, paper_cecv, report_table

FIGURES = [
    ("lgdcnn_benchmark", "lgdcnn: test MAE of every model trained here on the same rows, and CrabNet's published MAE, relative to the paper's L-G-DCNN (* = capped rows)"),
    ("lgdcnn_learning_curves", "lgdcnn, the three large sets: test MAE against training rows for L-G-DCNN and CrabNet "
     "trained here (capped recipe), the power-law fit with its 95 % band carried to the full training size, and the "
     "paper's number there"),
]


def _band_verdict(fit: dict) -> str:
    """Where the published MAE of the fitted model (L-G-DCNN: the paper's; CrabNet: its own paper's) lies
    against the 95 % band of the extrapolation: inside means the row budget alone explains the gap."""
    pub = fit.get({"lgdcnn": "paper L-G-DCNN", "crabnet": "CrabNet (pub.)"}.get(fit["model"], ""))
    if pub is None or not np.isfinite(pub):
        return "–"
    return "inside the band" if fit["lo95"] <= pub <= fit["hi95"] else (
        "below the band" if pub < fit["lo95"] else "above the band")


def results_markdown(mdir=None) -> str:
    """The README block of lgdcnn."""
    return "**lgdcnn**: test MAE on the 28 datasets, from `metrics/lgdcnn/benchmark.json`.\n\n" + report_markdown(mdir)


def report_markdown(mdir=None, ref_dir=None) -> str:
    m = load_metrics(mdir)
    t = report_table(mdir, ref_dir, metrics=m)
    c = claim_summary(t)
    band = (m.get("single_seed_spread") or {}).get("relative")
    notes = sorted({n for n in t.note if n})
    foot = (f"Profile `{t.profile.iloc[0]}`. Test MAE in each dataset's unit, ± the standard deviation over seeds "
            "(none with one seed). *(here)* = trained on this machine on exactly the same rows, folds and epoch budget "
            "as ours; *(pub.)* = published numbers, never our runs (extended: the paper's Fig. 4 columns, equal to "
            "CrabNet's published predictions; matbench: the paper's Table 1 / leaderboard). Regime `full`: every row, "
            "the authors' recipe unchanged (up to 300 epochs, SWA stop rule); `capped`: the profile's row and epoch "
            "caps (large sets). Verdict: wins / loses when the means differ by more than the larger seed spread; "
            + ("with one seed, by more than the typical seed spread, "
               f"{band:.1%} of the larger MAE (the median std/mean of ours and the peers over the "
               "tasks run with several seeds), else tie. " if band is not None else
               "with one seed, by the means. ") +
            f"Median ratio ours/paper: {_f(c['median_ratio_full'])} on the {c['full_row_tasks']} full-row tasks, "
            f"{_f(c['median_ratio_all'])} on the {c['tasks']} run; CrabNet here / CrabNet published on the full-row tasks: "
            f"{_f(c['crabnet_here_over_pub_full'])}.")
    text = compact_table(t).to_markdown(index=False, disable_numparse=True) + "\n\n" + foot + (
        "\n\nNotes: " + " | ".join(notes) if notes else "")
    lc_path = Path(mdir or metrics_dir()) / "lgdcnn" / "learning_curves.json"
    if lc_path.is_file():
        lc = json.loads(lc_path.read_text())
        fits = pd.DataFrame(lc["fits"])
        shown = pd.DataFrame({"dataset": fits.task, "model": fits.model, "alpha": [f"{a:.2f} ± {s:.2f}" for a, s in
                                                                                    zip(fits.alpha, fits.alpha_se)],
                              "largest N trained": fits.n_max_trained, "MAE there": [fmt_mae(v) for v in fits.mae_at_largest],
                              "full N": fits.n_full,
                              "extrapolated MAE [95 %]": [f"{fmt_mae(m)} [{fmt_mae(lo)}, {fmt_mae(hi)}]" for m, lo, hi in
                                                          zip(fits.mae_extrapolated, fits.lo95, fits.hi95)],
                              "paper L-G-DCNN (pub.)": [fmt_mae(v) for v in fits["paper L-G-DCNN"]],
                              "CrabNet (pub.)": [fmt_mae(v) for v in fits["CrabNet (pub.)"]],
                              "this model's pub. MAE": [_band_verdict(f) for f in fits.to_dict(orient="records")]})
        text += (f"\n\n**lgdcnn learning curves** (sizes {lc['sizes']}, seeds {lc['seeds']}; MAE = A·N^-α fitted in "
                 f"log-log space, 95 % interval of the fitted line; profile `{lc['profile']}`), from "
                 "`metrics/lgdcnn/learning_curves.json`:\n\n" + shown.to_markdown(index=False)
                 + (f"\n\nNot run yet: {', '.join(lc['not_run'])}." if lc.get("not_run") else ""))
    cecv_path = Path(mdir or metrics_dir()) / "lgdcnn" / "cecv.json"
    if cecv_path.is_file():
        c = json.loads(cecv_path.read_text())
        paper = paper_cecv(ref_dir).set_index("model")
        rows = []
        for model, counts in c["cecv"].items():
            rows.append({"model": CECV_LABELS.get(model, model), "ours": " / ".join(map(str, counts)),
                         "paper (Fig. 2)": " / ".join(str(int(v)) for v in paper.loc[model].to_numpy())
                         if model in paper.index else "–",
                         "test MAE (ours)": fmt_mae(c["test_mae"].get(model))})
        text += (f"\n\n**lgdcnn CECV** (clusters at thresholds 0.05 … 0.40, {c['probe']}-containing "
                 f"{c['dataset']} test compounds: {c['n_probe']} here; profile `{c['profile']}`), from "
                 "`metrics/lgdcnn/cecv.json`:\n\n" + pd.DataFrame(rows).to_markdown(index=False))
    return text


def _f(v) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.2f}"
