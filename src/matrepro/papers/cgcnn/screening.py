"""cgcnn screening (the cgcnn_screen stage; the pool's graphs come from ``pool``, the cgcnn_pool
stage): ensemble predictions of the paper-protocol models with their spread, the applicability flags of ``predict`` (the same checks as
``matrepro predict cgcnn``), a ranking by lower confidence bound, and the agreement with the
authors' published AI4Kappa predictions.
"""
from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.metrics import regression_metrics
from ...core.paths import raw_dir
from ...features.applicability import lower_confidence_bound
from ...features.crystal import read_structure
from ...features.graphstore import GraphStore
from ...models.crystal import load_checkpoint
from .data import CHECKPOINTS, TARGETS, atom_table
from .pool import AI4KAPPA, pool_files
from .predict import Ensemble, fragments_or_none

log = logging.getLogger(__name__)

AI4KAPPA_COLS = {"G": "Shear modulus (GPa)", "K": "Bulk modulus (GPa)"}


def screen(cfg: dict, data_dir: str | Path, ensemble_dir: str | Path, root: Path | None = None) -> pd.DataFrame:
    """Ensemble predictions on the pool (models/cgcnn/ensemble, the cgcnn_model stage): per
    structure our mean and spread (std over seeds) of log10 G and K, GPa, the Pugh ratio K/G, the
    authors' checkpoints' predictions, the applicability checks that need no structure (learned-
    feature distance, unseen elements, above the training maximum) and the lower confidence bound
    ``lcb_log10G`` = mean - k * spread (k = ``screening.lcb_k``) that ranks the candidates."""
    root = Path(root) if root else raw_dir()
    ens = Ensemble(ensemble_dir)
    rows = pd.read_csv(Path(data_dir) / "pool_rows.csv")
    store = GraphStore(Path(data_dir) / "pool_graphs.npz", atom_table(root))
    liu = {t: load_checkpoint(root / CHECKPOINTS[f"liu2025_{t}"][0])[:3] for t in TARGETS}
    graphs = [store.get(k) for k in rows.key]
    pred = ens.predict(graphs, extra=liu)
    out = pd.concat([rows[["material_id", "formula", "nsites"]].reset_index(drop=True), pred], axis=1)
    for t in TARGETS:
        out[f"{t}_GPa_liu2025"] = 10 ** out[f"log10{t}_extra"]
        out = out.rename(columns={f"log10{t}_extra": f"log10{t}_liu2025"})
    out["pugh_K_over_G"] = out.K_GPa / out.G_GPa
    out["unseen_elements"] = [bool({int(z) for z in g.z} - ens.seen) for g in graphs]
    mx = ens.card["training"]["max_log10"]
    for t in TARGETS:
        out[f"above_training_max_{t}"] = out[f"log10{t}"] > mx[t]
    k = float(cfg["screening"]["lcb_k"])
    out["lcb_log10G"] = lower_confidence_bound(out.log10G, out.log10G_spread, k)
    out["lcb_G_GPa"] = 10 ** out.lcb_log10G
    return out


# the flags a survivor must be free of; those marked * need the structure (top candidates only)
SCREEN_FLAGS = ("unseen_elements", "far_from_training", "above_training_max_G", "above_training_max_K",
                "molecular_or_isolated", "isolated_atoms", "elemental_molecular_solid", "CN_phase_above_diamond")
MOLECULAR_ELEMENTS = {"H", "N", "O", "F", "Cl", "Br", "I", "He", "Ne", "Ar", "Kr", "Xe"}


def pool_structures(ids, root: Path | None = None) -> dict:
    """{material_id: Structure} for ``ids``, read from the pool shards."""
    want, out = set(ids), {}
    prefix = '{"material_id": "'
    for f in pool_files(root):
        with gzip.open(f, "rt") as fh:
            for i, line in enumerate(fh, start=1):
                mid = line[len(prefix):line.index('"', len(prefix))] if line.startswith(prefix) \
                    else json.loads(line)["material_id"]
                if mid in want:
                    out[mid] = read_structure(json.loads(line)["cif"], id=f"{f.name} line {i}: {mid}")
                    if len(out) == len(want):
                        return out
    missing = sorted(want - set(out))
    if missing:
        raise KeyError(f"not in the pool shards: {missing[:5]}")
    return out


def structure_flags(screened: pd.DataFrame, ids, root: Path | None = None) -> pd.DataFrame:
    """Bonded-fragment checks (CrystalNN + Larsen dimensionality) for ``ids``, and the known failure
    classes: an elemental molecular solid (one element, bonded network of dimension 0 or a molecular
    element), a C/N-only phase above the training maximum G (diamond's region), isolated atoms."""
    from pymatgen.core import Composition

    structs = pool_structures(ids, root)
    sub = screened.set_index("material_id").loc[list(ids)]
    rows = []
    for mid in ids:
        s = structs[mid]
        fr = fragments_or_none(s)
        els = {e.symbol for e in Composition(sub.at[mid, "formula"]).elements}
        dim = None if fr is None else fr["dimensionality"]
        rows.append({"material_id": mid, "dimensionality": dim,
                     "isolated_atoms": None if fr is None else fr["isolated_atoms"],
                     "molecular_or_isolated": dim == 0,
                     "isolated_atoms_flag": bool(fr and fr["isolated_atoms"]),
                     "elemental_molecular_solid": len(els) == 1 and (dim == 0 or els <= MOLECULAR_ELEMENTS),
                     "CN_phase_above_diamond": els <= {"C", "N"} and bool(sub.at[mid, "above_training_max_G"])})
    return pd.DataFrame(rows)


def rank_candidates(screened: pd.DataFrame, cfg: dict, root: Path | None = None) -> dict:
    """Before (today's ranking: mean log10 G) and after (LCB, flags): the top ``top_n`` of each, the
    flags of every checked candidate, and how many of the old top 15 survive. The structure checks
    run on the union of the old top ``top_n`` and the best ``flag_top`` by LCB."""
    sc = cfg["screening"]
    n, n_check = int(sc["top_n"]), int(sc["flag_top"])
    before = screened.sort_values("log10G", ascending=False, kind="stable").head(n)
    by_lcb = screened.sort_values("lcb_log10G", ascending=False, kind="stable").head(n_check)
    ids = list(dict.fromkeys(list(before.material_id) + list(by_lcb.material_id)))
    sf = structure_flags(screened, ids, root).rename(columns={"isolated_atoms": "isolated_atom_count"})
    sf = sf.rename(columns={"isolated_atoms_flag": "isolated_atoms"})
    checked = screened.merge(sf, on="material_id")
    checked["flags"] = [";".join(f for f in SCREEN_FLAGS if bool(r[f])) for _, r in checked.iterrows()]
    checked["survives"] = checked["flags"] == ""
    flags_of = checked.set_index("material_id")
    before = before.assign(flags=[flags_of.at[m, "flags"] for m in before.material_id],
                           survives=[bool(flags_of.at[m, "survives"]) for m in before.material_id])
    after = checked[checked.survives].sort_values("lcb_log10G", ascending=False, kind="stable").head(n)
    return {"checked": checked, "before": before, "after": after,
            "top15_survivors": int(before.head(15).survives.sum()),
            "flag_counts": {f: int(checked[f].astype(bool).sum()) for f in SCREEN_FLAGS}}


def ai4kappa_comparison(screened: pd.DataFrame, root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The authors' published predicted K and G (AI4Kappa list) against (a) their own checkpoints run
    here on our pool structures and (b) our retrained ensemble, on the ids in both."""
    root = Path(root) if root else raw_dir()
    pub = pd.read_csv(root / AI4KAPPA)
    pub = pub.rename(columns={pub.columns[0]: "material_id"})
    m = screened.merge(pub[["material_id", "formula", "Number of Atoms"] + list(AI4KAPPA_COLS.values())],
                       on="material_id", suffixes=("", "_published"))
    rows = []
    for t, col in AI4KAPPA_COLS.items():
        pubv = m[col].to_numpy(float)
        for who, c in (("authors' checkpoint, run here", f"{t}_GPa_liu2025"), ("our ensemble", f"{t}_GPa")):
            v = m[c].to_numpy(float)
            rows.append({"target": t, "model": who, "structures": len(m),
                         "MAE vs published (GPa)": float(np.mean(np.abs(v - pubv))),
                         "median |Δ| (GPa)": float(np.median(np.abs(v - pubv))),
                         "MAE vs published (log10)": float(np.mean(np.abs(np.log10(v) - np.log10(pubv)))),
                         "share within 1 % of published": float(np.mean(np.abs(v / pubv - 1) < 0.01)),
                         "R² vs published (GPa)": regression_metrics(pubv, v)["r2"]})
    return pd.DataFrame(rows), m
