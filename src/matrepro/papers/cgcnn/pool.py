"""cgcnn screening pool (the cgcnn_pool stage, ``python -m matrepro.papers.cgcnn.pool``): crystal
graphs of the Materials Project structure pool, built in worker processes and stored by structure
hash; every structure without a graph is counted and listed.
"""
from __future__ import annotations

import gzip
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...core.paths import raw_dir
from ...core.validate import FilterLog
from ...features.crystal import load_atom_init, read_structure, structure_graph, structure_hash
from ...features.graphstore import save_store
from .data import ATOM_INIT

log = logging.getLogger(__name__)

POOL_DIR = "mp_structure_pool"
AI4KAPPA = "cgcnn/ai4kappa_screening/MP_Semiconductor_low_Kappa.csv"


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



def main(argv: list[str] | None = None) -> None:
    """``python -m matrepro.papers.cgcnn.pool``: the screening pool's graphs (the cgcnn_pool stage)."""
    import argparse

    from ...core.config import paper_config

    ap = argparse.ArgumentParser(description=main.__doc__)
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
