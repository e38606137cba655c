"""The lgdcnn rows of the project report and README (found by ``matrepro.report`` by name): the
28-dataset table and the CECV counts. Kept apart from the training code, so that report wording can
change without re-running a training stage.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.paths import metrics_dir
from .published import CECV_LABELS, fmt_mae, load_metrics, paper_cecv, report_table

FIGURES: list[tuple[str, str]] = []  # the lgdcnn figures are shown in its own notebooks


def results_markdown(mdir=None) -> str:
    """The README block of lgdcnn."""
    return "**lgdcnn**: test MAE on the 28 datasets, from `metrics/lgdcnn/*.json`.\n\n" + report_markdown(mdir)


def report_markdown(mdir=None, ref_dir=None) -> str:
    t = report_table(mdir, ref_dir)
    m = load_metrics(mdir)
    shown = t.drop(columns=["note"]).copy()
    for c in shown.columns:
        if shown[c].dtype.kind == "f" and c not in ("epochs",):
            shown[c] = [f"{v:.2f}" if c == "ratio" else fmt_mae(v) for v in shown[c]]
    any_m = next(iter(m.values()))
    notes = sorted({n for n in t.note if n})
    foot = (f"Profile `{any_m['profile']}`; caps per split {any_m['caps']}; at most {any_m['max_epochs']} epochs; "
            f"seeds {any_m['seeds']}. Test MAE in each dataset's unit. *(ours)* = trained here on the same rows; "
            "*(pub.)* = published numbers, never our runs (extended: the paper's Fig. 4 columns, equal to CrabNet's "
            "published predictions; matbench: CrabNet from the paper's Table 1 / leaderboard). "
            "ratio = L-G-DCNN (ours) / paper L-G-DCNN. Matbench rows: mean over the folds listed.")
    text = shown.to_markdown(index=False, disable_numparse=True) + "\n\n" + foot + (
        "\n\nNotes: " + " | ".join(notes) if notes else "")
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
