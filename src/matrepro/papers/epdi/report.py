"""The epdi rows of the project report and README (found by ``matrepro.report`` by name).

Reproduced numbers come from ``metrics/epdi/*.json`` (written by the epdi notebooks); the paper's
statements from ``data/reported.yaml``. The paper's numbers come from its own, unpublished DFT data;
ours from a data set computed here (CHGNet + GPAW), so the two are set side by side, not divided.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.paths import metrics_dir
from ...core.reported import reported_sections

FIGURES = [
    ("epdi_correlation", "epdi: local mean ESP against the Li binding energy at the sites of doped group-VIB hosts"),
    ("epdi_learning_curve", "epdi: MAE on held-out saddle-point E_b against the fraction of saddle points in training; the star is the paper's 0.0444 eV (its own DFT data)"),
    ("epdi_pes", "epdi: potential-energy curves along held-out paths, NEB (CHGNet) against the CNN from ESP images"),
    ("epdi_maps", "epdi: ESP maps (GPAW, LCAO dzp) and the images cropped from them"),
]
MAE_33 = "MAE on saddle-point binding energies, DenseNet121-TL, 33 % of saddle points in training"


def load_metrics(mdir=None) -> dict[str, dict]:
    d = Path(mdir or metrics_dir()) / "epdi"
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def paper_value(quantity: str = MAE_33):
    sts = {s["quantity"]: s.get("value") for s in reported_sections().get("epdi", {}).get("statements", [])}
    return sts.get(quantity)


def results_markdown(mdir=None) -> str:
    ms = load_metrics(mdir)
    parts = ["**epdi**: ESP-image CNNs for Li binding energies on doped TMD monolayers, on a data set computed here "
             "(CHGNet 0.3.0 energies and climbing-image NEB, GPAW PBE/LCAO-dzp ESP maps), from `metrics/epdi/*.json`. "
             "The paper's DFT data are not public, so its numbers are shown beside ours, not divided by them."]
    ds = ms.get("dataset")
    if ds:
        parts.append(f"Data set (profile `{ds['profile']}`): {ds['surfaces']} surfaces, {ds['images']} images "
                     f"({ds['site_images']} sites, {ds['neb_interior_images']} NEB images), **{ds['saddles']} saddle "
                     f"points**, {ds['failures']} failed configurations; barriers "
                     f"{ds['barrier_eV'].get('min', float('nan')):.3f}–{ds['barrier_eV'].get('max', float('nan')):.3f} eV; "
                     f"{ds['compute_seconds'] / 60:.0f} min of compute.")
    c = ms.get("correlation")
    if c and "pearson_r" in c:
        within = c.get("within_pearson_r")
        by = ", ".join(f"{k} {v['pearson_r']:+.2f}" for k, v in c.get("by_host_site_kind", {}).items())
        parts.append(f"Paper's first finding (\"strong positive correlation\" of local mean ESP and E_b on doped VIB "
                     f"hosts), {c['n_sites']} sites: over all sites r = {c['pearson_r']:+.2f} (Spearman ρ = "
                     f"{c['spearman_rho']:+.2f}); within each host and site kind, where only the dopant and the distance "
                     f"to it change, r = {by}; pooled within those groups **r = "
                     f"{float('nan') if within is None else within:+.2f}**. ESP: potential of a positive test charge, V, "
                     "vacuum = 0; E_b < 0 binds.")
    m = ms.get("models")
    if m and m.get("summary"):
        t = pd.DataFrame(m["summary"])
        cols = ["model", "source", "mae_saddle_eV", "mae_saddle_std", "mae_test_eV", "barrier_mae_eV", "draws"]
        parts.append(f"Model table (saddle fraction {m['fraction']}, draws {m['draws']}, profile `{m['profile']}`; "
                     "MAE in eV on the held-out paths' saddle points):\n\n"
                     + t[cols].to_markdown(index=False, floatfmt=".4f"))
        skipped = [r for r in m.get("runs", []) if r.get("status", "ok") != "ok"]
        if skipped:
            why = {}
            for r in skipped:
                why.setdefault(r["status"].removeprefix("skipped: "), set()).add(f"{r['model']} / {r['source']}")
            parts.append("Not run: " + "; ".join(f"{', '.join(sorted(v))} ({k})" for k, v in why.items()) + ".")
    cv = ms.get("curve")
    if cv:
        t = pd.DataFrame(cv["curve"])
        f33 = min(t.fraction.unique(), key=lambda f: abs(f - 0.33))
        at33 = t[t.fraction == f33]
        pv = paper_value()
        line = []
        for _, r in at33.iterrows():
            line.append(f"{r['model']}: {r['mae_saddle_eV']:.4f} ± {0 if pd.isna(r['std']) else r['std']:.4f} eV")
        parts.append(f"Learning curve at {100 * f33:.0f} % of saddle points (draws {cv['draws']}): " + "; ".join(line)
                     + f". Paper, DenseNet121-TL on its DFT data: {pv} eV.")
        pes = cv.get("pes", {})
        if pes.get("n_paths"):
            tm = pes["timing"]
            parts.append(f"Barriers of {pes['n_paths']} held-out paths from predicted E_b: MAE "
                         f"{pes['barrier_mae_eV']:.3f} eV (max {pes['barrier_max_error_eV']:.3f}); CNN route "
                         f"{tm['cnn_seconds_per_path'] * 1000:.0f} ms per path against {tm['neb_seconds_per_path']:.1f} s "
                         f"for the CHGNet NEB (×{tm['speedup']:.0f}; the GPAW map per surface, "
                         "shared by all its paths, not counted).")
    return "\n\n".join(parts)
