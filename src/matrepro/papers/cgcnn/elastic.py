"""cgcnn data: the Matbench v0.1 log_gvrh / log_kvrh rows with targets, official folds and structures.

Structures come from the official Matbench files when they have been fetched (registered by URL and
sha256; not in the offline mirror), otherwise from the rebuilt set (``elastic_structures``: 10,966
of the 10,987 rows, each with a match confidence). Every table says which source it used.
"""
from __future__ import annotations

import bz2
import gzip
import json
import logging
import random
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from ...core.errors import DataError
from ...core.paths import raw_dir
from ...core.validate import FilterLog, read_csv, require_columns

log = logging.getLogger(__name__)

TARGET_FILES = {"G": ("matbench/matbench_log_gvrh_targets_nostructures.json.bz2", "log10(G_VRH)"),
                "K": ("matbench/matbench_log_kvrh_targets_nostructures.json.bz2", "log10(K_VRH)")}
FOLDS_FILE = "matbench_official_folds/matbench_log_gvrh.csv"
LINKS_FILE = "elastic_structures/matbench_log_gkvrh_to_mpid.csv"
STRUCTURES_FILE = "elastic_structures/mp_elastic_structures.json.gz"
N_ROWS = 10987


def load_targets(root: Path | None = None) -> pd.DataFrame:
    """One row per Matbench row (0-based ``row``): mbid, composition, log10 G and K (GPa)."""
    root = Path(root) if root else raw_dir()
    cols = {}
    for key, (rel, col) in TARGET_FILES.items():
        path = root / rel
        if not path.is_file():
            raise DataError(path, "file not found (run the snapshot stage: dvc repro)")
        t = json.load(bz2.open(path))
        order = sorted(t["mbid"], key=int)
        cols[f"mbid_{key}"] = [t["mbid"][k] for k in order]
        cols[f"log10{key}"] = np.array([t[col][k] for k in order], float)
        cols[f"composition_{key}"] = [t["composition"][k] for k in order]
    df = pd.DataFrame({"row": np.arange(len(cols["mbid_G"])), "mbid_G": cols["mbid_G"], "mbid_K": cols["mbid_K"],
                       "composition": cols["composition_G"], "log10G": cols["log10G"], "log10K": cols["log10K"]})
    if len(df) != N_ROWS or (pd.Series(cols["composition_G"]) != pd.Series(cols["composition_K"])).any():
        raise DataError(root / TARGET_FILES["K"][0], "G and K target files do not list the same 10,987 materials")
    bad = ~np.isfinite(df[["log10G", "log10K"]].to_numpy()).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(root / TARGET_FILES["G"][0], "non-finite target", row=i + 1, field="log10(G_VRH)/log10(K_VRH)")
    return df


def load_folds(root: Path | None = None) -> np.ndarray:
    """Official test fold (0-4) of each row (gvrh and kvrh share the folds)."""
    root = Path(root) if root else raw_dir()
    path = root / FOLDS_FILE
    f = read_csv(path)
    require_columns(f, ["row_index", "test_fold"], path)
    if len(f) != N_ROWS or set(f.row_index) != set(range(N_ROWS)):
        raise DataError(path, f"fold table does not cover the {N_ROWS} rows")
    return f.set_index("row_index").test_fold.reindex(range(N_ROWS)).to_numpy()


def load_links(root: Path | None = None) -> pd.DataFrame:
    """The rebuilt-structure link table (mp_id, confidence, source, checks), checked against targets."""
    root = Path(root) if root else raw_dir()
    path = root / LINKS_FILE
    links = read_csv(path, dtype={"mp_id": str}, keep_default_na=False, na_values={"log10G_matbench": [""]})
    require_columns(links, ["mbid_index", "mp_id", "confidence", "structure_source", "log10G_matbench",
                            "log10K_matbench"], path)
    if len(links) != N_ROWS:
        raise DataError(path, f"{len(links)} rows, expected {N_ROWS}")
    return links.sort_values("mbid_index").reset_index(drop=True)


def load_structures(mp_ids, root: Path | None = None) -> dict[str, Structure]:
    """pymatgen Structures of the requested MP ids from the rebuilt set."""
    root = Path(root) if root else raw_dir()
    path = root / STRUCTURES_FILE
    if not path.is_file():
        raise DataError(path, "file not found (run the snapshot stage: dvc repro)")
    records = json.load(gzip.open(path))
    out = {}
    for mp in mp_ids:
        if mp not in records:
            raise DataError(path, f"no record for {mp}", field="mp_id")
        try:
            out[mp] = Structure.from_dict(records[mp]["structure"])
        except Exception as exc:
            raise DataError(path, f"{mp}: cannot build the structure: {exc}", field="structure") from exc
    return out


def matbench_table(root: Path | None = None, flog: FilterLog | None = None) -> pd.DataFrame:
    """Targets + official folds + the rebuilt-structure link of every Matbench row."""
    targets = load_targets(root)
    targets["test_fold"] = load_folds(root)
    links = load_links(root)
    diff = np.abs(links.log10G_matbench.to_numpy(float) - targets.log10G.to_numpy())
    if np.nanmax(diff) > 1e-6:
        i = int(np.nanargmax(diff))
        raise DataError(root or raw_dir() / LINKS_FILE, "link table disagrees with the Matbench target", row=i + 1,
                        field="log10G_matbench")
    df = targets.assign(mp_id=links.mp_id.replace("", np.nan), confidence=links.confidence,
                        structure_source=links.structure_source)
    df["has_structure"] = df.mp_id.notna() & (df.confidence != "none")
    return df


def select_subset(df: pd.DataFrame, subset: str, flog: FilterLog) -> pd.DataFrame:
    """'all' = every row with a rebuilt structure; 'high' = high-confidence links only. Logged."""
    out = flog.apply(df, df.has_structure.to_numpy(), "no rebuilt structure (confidence none)")
    if subset == "high":
        out = flog.apply(out, (out.confidence == "high").to_numpy(), "match confidence medium or low")
    elif subset != "all":
        raise DataError("params.yaml", f"unknown structure subset {subset!r} (all | high)", field="cgcnn.subsets")
    return out.reset_index(drop=True)


def cgcnn_random_split(n: int, ratios=(0.8, 0.1, 0.1), seed: int = 123) -> np.ndarray:
    """txie-93/cgcnn's split: ``random.seed(123); random.shuffle(rows)`` then train = the first
    int(0.8 n) rows, validation the int(0.1 n) rows before the test block, test = the last int(0.1 n).
    Returns 'train' / 'val' / 'test' / 'unused' per row."""
    idx = list(range(n))
    random.seed(seed)
    random.shuffle(idx)
    n_val, n_test = int(ratios[1] * n), int(ratios[2] * n)
    n_train = int(ratios[0] * n)
    labels = np.full(n, "unused", object)  # int() rounding can leave a row or two out, as in the reference
    labels[idx[:n_train]] = "train"
    labels[idx[-(n_val + n_test):-n_test]] = "val"
    labels[idx[-n_test:]] = "test"
    return labels
