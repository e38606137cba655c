"""The gan rows of the project report and README (found by ``matrepro.report`` by name).

Reproduced numbers come from ``metrics/gan/*.json`` (written by the gan notebooks); the abstract's
statements from ``data/reported.yaml``. Kept apart from the training code, so that report wording
can change without re-running a training stage.
"""
from __future__ import annotations

import json
from pathlib import Path

from ...core.paths import metrics_dir
from ...core.reported import reported_sections
from .compare import claim_check, compact_table

FIGURES = [  # shown in the project report, in this order
    ("gan_losses", "gan: WGAN-GP critic loss, Wasserstein estimate and gradient penalty, training and held-out"),
    ("gan_generator", "gan: element frequencies and element counts, generated vs training compositions"),
    ("gan_coverage", "gan: how much of each target the 85 x 8 table encodes"),
]
NON_TARGET = ("training", "generator")
LOSS_FIRST = "discriminator total loss on the test set (first)"  # quantities of data/reported.yaml, gan
LOSS_LAST = "discriminator total loss on the test set (last)"
UNITS = {"oqmd_gap": "(eV)", "oqmd_eform": "(eV/atom)", "mp_gap": "(eV)", "mp_e_form": "(eV/atom)", "supercon_tc": "(K)"}


def _num(v) -> str:
    """A reported number as text ("–" when missing)."""
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return "–"


def reported_losses(path=None) -> dict:
    """The abstract's first and last "total discriminator loss on the test set" from
    ``data/reported.yaml`` ({"first", "last"}; None where a statement is missing)."""
    sts = {s["quantity"]: s.get("value") for s in reported_sections(path).get("gan", {}).get("statements", [])}
    return {"first": sts.get(LOSS_FIRST), "last": sts.get(LOSS_LAST)}


def load_metrics(mdir: str | Path | None = None) -> dict[str, dict]:
    d = Path(mdir or metrics_dir()) / "gan"
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def target_results(ms: dict[str, dict]) -> list[dict]:
    return [m for name, m in ms.items() if name not in NON_TARGET]


def results_markdown(mdir=None) -> str:
    """The README block of gan."""
    ms = load_metrics(mdir)
    parts = ["**gan**: GAN critic features vs Magpie and one-hot with the same predictors, from `metrics/gan/*.json`."]
    if "training" in ms:
        t = ms["training"]
        first, last = t["holdout_critic_loss"]["first"], t["holdout_critic_loss"]["last"]
        rep = reported_losses()
        parts.append(f"Held-out critic loss (our analogue of the abstract's \"total discriminator loss on the test "
                     f"set\"): {first:.4g} before training → {last:.4g} after {len(t['history']['critic_loss'])} epochs "
                     f"(paper: {_num(rep.get('first'))} → {_num(rep.get('last'))}; not the same quantity); "
                     f"{t['settings']['train_rows']:,} OQMD training compositions, profile `{t['profile']}`.")
    results = target_results(ms)
    if results:
        tab = compact_table(results)
        parts.append(tab.to_markdown(index=False))
        units = ", ".join(f"{r['target']} {UNITS.get(r['target'], '')}".strip() for r in results)
        parts.append(f"Test metrics, mean ± std over seeds {results[0]['seeds']}, profile `{results[0]['profile']}` "
                     f"({units}). Rows `encoded`: the rows the 85 × 8 table encodes, the same for every "
                     "representation; rows `all`: every row (Magpie and one-hot only). `gan_finetune` = the "
                     "trained critic body with a regression head, fine-tuned.")
        chk = claim_check(results)
    if results and len(chk):
        parts.append("Claim (abstract: \"better than One-hot and Magpie with the same predictive model\"), rows the "
                     "table encodes:\n\n" + chk.drop(columns=["rule"]).to_markdown(index=False, floatfmt=".4g")
                     + "\n\n" + chk["rule"].iloc[0])
    if "generator" in ms:
        g = ms["generator"]
        keys = [k for k, v in g.items() if isinstance(v, (int, float)) and k != "profile"]
        parts.append("Generator: " + ", ".join(f"{k} {g[k]:.3g}" if isinstance(g[k], float) else f"{k} {g[k]}"
                                               for k in keys) + f" (profile `{g['profile']}`).")
    return "\n\n".join(parts)
