"""cgcnn screening: crystal graphs of the Materials Project pool (the cgcnn_pool stage,
``python -m matrepro.papers.cgcnn.screening pool``), ensemble predictions of the paper-protocol
models with their spread, and the agreement with the authors' published AI4Kappa predictions.
"""
from __future__ import annotations

import gzip
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.errors import DataError
from ...core.metrics import regression_metrics
from ...core.paths import raw_dir
from ...core.validate import FilterLog
from ...features.crystal import collate, load_atom_init, read_structure, structure_graph, structure_hash
from ...features.graphstore import GraphStore, save_store
from ...models.crystal import load_checkpoint
from .data import ATOM_INIT, CHECKPOINTS, TARGETS, atom_table, gdf

log = logging.getLogger(__name__)

POOL_DIR = "mp_structure_pool"
AI4KAPPA = "cgcnn/ai4kappa_screening/MP_Semiconductor_low_Kappa.csv"
AI4KAPPA_COLS = {"G": "Shear modulus (GPa)", "K": "Bulk modulus (GPa)"}


# ------------------------------------------------------------------------------- screening pool
def _pool_chunk(args):
    lines, gcfg, atom_init_path = args
    table = load_atom_init(atom_init_path)
    ok, bad = [], []
    for item in lines:
        shard, lineno, line = item if isinstance(item, tuple) else ("<pool>", None, item)
        try:
            d = json.loads(line)
            mid = d["material_id"]
        except (ValueError, KeyError) as exc:
            raise DataError(shard, f"not a pool JSON line with a material_id ({exc})", row=lineno) from exc
        where = f"{shard} line {lineno}: {mid}" if lineno else mid
        try:
            s = read_structure(d["cif"], id=where)
            g = structure_graph(s, table, gcfg["radius"], gcfg["max_num_nbr"], id=mid)
        except DataError as exc:  # counted and listed, never dropped silently
            bad.append({"material_id": mid, "formula": d.get("formula"), "reason": str(DataError(where, exc.message))})
            continue
        ok.append((mid, d.get("formula"), int(d.get("nsites", len(s))), structure_hash(s), g))
    return ok, bad


def pool_files(root: Path | None = None) -> list[Path]:
    root = Path(root) if root else raw_dir()
    files = sorted((root / POOL_DIR).glob("mp_pool_*.jsonl.gz"))
    if not files:
        raise DataError(root / POOL_DIR, "no mp_pool_*.jsonl.gz shards (run the snapshot stage: dvc repro)")
    return files


def prepare_pool(cfg: dict, out_dir: str | Path, root: Path | None = None, workers: int = 2) -> dict:
    """Graphs of the screening pool (every structure, or the profile's ``max_structures`` chosen at
    random with ``base_seed``), built in ``workers`` processes and stored by structure hash.
    Writes ``pool_rows.csv``, ``pool_graphs.npz``, ``pool_rejected.csv`` and ``pool_filters.json``."""
    from tqdm import tqdm

    root = Path(root) if root else raw_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []  # (shard, 1-based line, text): errors name the file and line
    for f in pool_files(root):
        with gzip.open(f, "rt") as fh:
            lines.extend((f.name, i, t) for i, t in enumerate(fh, start=1))
    flog = FilterLog("cgcnn screening pool")
    n0 = len(lines)
    cap = cfg["screening"].get("max_structures")
    if cap and cap < n0:
        # keep the AI4Kappa comparison rows first when capping, then fill at random
        ai = set(pd.read_csv(root / AI4KAPPA, usecols=[0]).iloc[:, 0])
        ids = [json.loads(t)["material_id"] for _, _, t in lines]
        rng = np.random.RandomState(cfg["base_seed"])
        first = [i for i, m in enumerate(ids) if m in ai]
        rng.shuffle(first)
        rest = [i for i in rng.permutation(n0) if ids[i] not in ai]
        n_ai = min(len(first), int(cap * cfg["screening"].get("ai4kappa_share", 0.5)))
        pick = sorted(first[:n_ai] + rest[:cap - n_ai])
        lines = [lines[i] for i in pick]
        flog.steps.append({"step": 1, "reason": f"profile {cfg['profile']}: keep {cap} of the pool structures ({n_ai} "
                           f"from the AI4Kappa list, the rest at random, seed {cfg['base_seed']})",
                           "rows_before": n0, "removed": n0 - len(lines), "rows_after": len(lines)})
    chunk = 2000
    jobs = [(lines[i:i + chunk], cfg["graph"], str(root / ATOM_INIT)) for i in range(0, len(lines), chunk)]
    graphs, meta, rejected = {}, [], []
    with ProcessPoolExecutor(max_workers=workers) as ex:
        for ok, bad in tqdm(ex.map(_pool_chunk, jobs), total=len(jobs), desc="pool graphs", mininterval=5, leave=False):
            rejected.extend(bad)
            for mid, formula, nsites, key, g in ok:
                graphs.setdefault(key, g)
                meta.append({"material_id": mid, "formula": formula, "nsites": nsites, "key": key})
    df = pd.DataFrame(meta)
    n_before = len(lines)
    flog.steps.append({"step": len(flog.steps) + 1, "reason": "crystal graph could not be built (pool_rejected.csv)",
                       "rows_before": n_before, "removed": len(rejected), "rows_after": len(df)})
    df.to_csv(out_dir / "pool_rows.csv", index=False)
    save_store(out_dir / "pool_graphs.npz", graphs)
    pd.DataFrame(rejected, columns=["material_id", "formula", "reason"]).to_csv(out_dir / "pool_rejected.csv", index=False)
    flog.save(out_dir / "pool_filters.json")
    return {"structures": len(df), "unique_graphs": len(graphs), "rejected": len(rejected), "filters": flog.to_frame()}


def ensemble_members(model_dir: str | Path, subset: str) -> dict[str, list[Path]]:
    model_dir = Path(model_dir)
    out = {t: sorted(model_dir.glob(f"{t}_{subset}_random_seed*.pth.tar")) for t in TARGETS}
    for t, paths in out.items():
        if not paths:
            raise DataError(model_dir, f"no trained {t} checkpoints for subset {subset!r} (run cgcnn_train@paper)")
    return out


def atom_batches(sizes: np.ndarray, max_atoms: int = 2048) -> list[np.ndarray]:
    """Indices grouped into batches of similar-sized crystals with at most ``max_atoms`` atoms each
    (a batch holds at least one crystal). On a CPU, batches of ~1-2k atoms run about 3x faster per
    atom than 512 large crystals at once (the (atoms x 12 x 128) intermediates stay in cache)."""
    order = np.argsort(sizes, kind="stable")
    batches, cur, n = [], [], 0
    for i in order:
        if cur and n + sizes[i] > max_atoms:
            batches.append(np.array(cur))
            cur, n = [], 0
        cur.append(i)
        n += int(sizes[i])
    if cur:
        batches.append(np.array(cur))
    return batches


def screen(cfg: dict, data_dir: str | Path, model_dir: str | Path, root: Path | None = None,
           max_atoms: int = 2048) -> pd.DataFrame:
    """Ensemble predictions on the pool: per structure, our mean and spread (std over seeds) of
    log10 G and K, GPa, Pugh ratio K/G, and the authors' checkpoints' predictions."""
    from tqdm import tqdm

    root = Path(root) if root else raw_dir()
    rows = pd.read_csv(Path(data_dir) / "pool_rows.csv")
    store = GraphStore(Path(data_dir) / "pool_graphs.npz", atom_table(root))
    members = ensemble_members(model_dir, cfg["screening"]["subset"])
    models = {}
    for t, paths in members.items():
        for p in paths:
            models[f"{t}:{p.stem.split('.')[0]}"] = load_checkpoint(p)[:3]
    for t in TARGETS:
        models[f"{t}:liu2025"] = load_checkpoint(root / CHECKPOINTS[f"liu2025_{t}"][0])[:3]
    sizes = store.n_atoms(rows.key)
    preds = {name: np.empty(len(rows)) for name in models}
    g = gdf(cfg)
    for m, _, _ in models.values():
        m.eval()
    with torch.no_grad():
        for idx in tqdm(atom_batches(sizes, max_atoms), desc="screening", mininterval=5, leave=False):
            inputs = collate([store.get(rows.key.iat[j]) for j in idx], g).inputs()  # once for all models
            for name, (model, mean, std) in models.items():
                preds[name][idx] = model(*inputs).numpy() * std + mean
    out = rows[["material_id", "formula", "nsites"]].copy()
    for t in TARGETS:
        ours = np.stack([preds[n] for n in models if n.startswith(f"{t}:") and not n.endswith("liu2025")], axis=1)
        out[f"log10{t}"] = ours.mean(axis=1)
        out[f"log10{t}_spread"] = ours.std(axis=1, ddof=1) if ours.shape[1] > 1 else 0.0
        out[f"{t}_GPa"] = 10 ** out[f"log10{t}"]
        out[f"log10{t}_liu2025"] = preds[f"{t}:liu2025"]
        out[f"{t}_GPa_liu2025"] = 10 ** preds[f"{t}:liu2025"]
    out["n_models"] = len(members["G"])
    out["pugh_K_over_G"] = out.K_GPa / out.G_GPa
    return out


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


def main(argv: list[str] | None = None) -> None:
    """``python -m matrepro.papers.cgcnn.screening pool``: the screening pool's graphs (the cgcnn_pool stage)."""
    import argparse

    from ...core.config import paper_config

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("what", choices=["pool"])
    ap.add_argument("--out", default="data/processed/cgcnn_pool")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = paper_config("cgcnn")
    s = prepare_pool(cfg, a.out, workers=int(cfg.get("workers", 2)))
    print(f"profile {cfg['profile']}: {s['structures']} pool structures with a graph, "
          f"{s['unique_graphs']} distinct, {s['rejected']} rejected")
    print(s["filters"].to_string(index=False))


if __name__ == "__main__":
    main()
