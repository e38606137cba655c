"""How well defined is CGCNN's 12-neighbour cut? (shown in the cgcnn verification notebook)

CGCNN keeps the ``max_num_nbr`` nearest neighbours of every atom. When the cut falls inside a shell
of equidistant neighbours, the reference (and our ``features.crystal.structure_graph``, which
copies it) keeps the ones that come first after a stable sort on float64 distances, i.e. the
choice is made by the last bits of the distances and by the order of pymatgen's neighbour list.
When that shell holds more than one site, the kept neighbours, and so the prediction, can change
with a last-bit change of the cell, which another CPU or numpy/pymatgen build may produce.

``cut_ambiguity`` counts such atoms from the structure alone; ``cut_sensitivity`` measures the
effect: it scales each lattice by ``1 + eps`` (eps a few 1e-16, i.e. the last bit) and reports
which structures change their kept neighbours and how far the released checkpoints' predictions
move.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure
from tqdm import tqdm

from ...core.paths import raw_dir
from ...features.crystal import structure_graph
from ...models.crystal import load_checkpoint, predict_graphs
from .data import gdf
from .references import CHECKPOINTS

EPS = 3e-16


def cut_ambiguity(structure: Structure, radius: float, max_num_nbr: int) -> int:
    """Atoms whose ``max_num_nbr`` cut splits a shell of neighbours at equal (float32) distance
    that belong to more than one site: which of them are kept is not fixed by the crystal."""
    center, points, _, dist = structure.get_neighbor_list(r=radius)
    d32 = np.asarray(dist).astype(np.float32)
    center, points = np.asarray(center), np.asarray(points)
    n = 0
    for i in range(len(structure)):
        sel = center == i
        d, p = d32[sel], points[sel]
        if len(d) <= max_num_nbr:
            continue
        cut = np.sort(d)[max_num_nbr - 1]
        shell = d == cut
        if (d < cut).sum() + shell.sum() > max_num_nbr and len(np.unique(p[shell])) > 1:
            n += 1
    return n


def perturbed(structure: Structure, eps: float = EPS) -> Structure:
    """The same crystal with its lattice scaled by ``1 + eps`` (fractional coordinates kept)."""
    return Structure(Lattice(structure.lattice.matrix * (1.0 + eps)), structure.species, structure.frac_coords)


def kept_sets_differ(a, b) -> bool:
    """True if any atom keeps a different multiset of neighbour sites in graph ``a`` and ``b``."""
    return any(sorted(x) != sorted(y) for x, y in zip(a.nbr_fea_idx.tolist(), b.nbr_fea_idx.tolist()))


def cut_sensitivity(structures: list, ids: list, table: np.ndarray, cfg: dict, eps: float = EPS,
                    root: Path | None = None) -> pd.DataFrame:
    """One row per structure: atoms with an ambiguous cut, whether the neighbour order and the kept
    neighbours change when the lattice is scaled by ``1 + eps``, and |change| of each released
    checkpoint's prediction (log10 GPa)."""
    root = Path(root) if root else raw_dir()
    r, m = cfg["graph"]["radius"], cfg["graph"]["max_num_nbr"]
    g0, g1, out = [], [], []
    for s, i in tqdm(list(zip(structures, ids)), desc="cut sensitivity", mininterval=5, leave=False):
        a, b = structure_graph(s, table, r, m, id=str(i)), structure_graph(perturbed(s, eps), table, r, m, id=str(i))
        g0.append(a)
        g1.append(b)
        out.append({"id": i, "atoms": len(s), "ambiguous_cut_atoms": cut_ambiguity(s, r, m),
                    "order_changed": not np.array_equal(a.nbr_fea_idx, b.nbr_fea_idx),
                    "kept_changed": kept_sets_differ(a, b)})
    df = pd.DataFrame(out)
    for name, (rel, _target, _origin) in CHECKPOINTS.items():
        model, mean, std, _ = load_checkpoint(root / rel)
        p0 = np.asarray(predict_graphs(model, g0, mean, std, gdf=gdf(cfg)))
        p1 = np.asarray(predict_graphs(model, g1, mean, std, gdf=gdf(cfg)))
        df[f"abs_change_{name}"] = np.abs(p1 - p0)
    return df


def summarise(df: pd.DataFrame, eps: float = EPS) -> dict:
    """Counts and the largest prediction change, per checkpoint, for the report."""
    out = {"eps": eps, "structures": len(df), "with_ambiguous_cut": int((df.ambiguous_cut_atoms > 0).sum()),
           "order_changed": int(df.order_changed.sum()), "kept_changed": int(df.kept_changed.sum()),
           "per_checkpoint": []}
    for c in [c for c in df.columns if c.startswith("abs_change_")]:
        d = df[c].to_numpy()
        out["per_checkpoint"].append({"checkpoint": c.removeprefix("abs_change_"),
                                      "moved > 1e-5": int((d > 1e-5).sum()), "moved > 0.01": int((d > 0.01).sum()),
                                      "max abs change (log10 GPa)": float(d.max()) if len(d) else 0.0,
                                      "worst structure": str(df.id.iloc[int(d.argmax())]) if len(d) else ""})
    return out
