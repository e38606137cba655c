"""CGCNN throughput: ours versus the reference implementation (cgcnn2==0.6.0) on the same structures.

    python benchmarks/cgcnn_throughput.py [--n 2000] [--workers 2] [--repeats 1]

Not a test: it prints timings. Both codes start from the same CIF files on disk (the reference's
only input format), written with pymatgen's CifWriter from high-confidence rebuilt Matbench
structures (data/raw/elastic_structures, or the mirror), and train the paper's model (3 conv,
64/128, batch 256, SGD lr 0.01 momentum 0.9, MSE) for one epoch on the standardised log10 G target.

* graphs: reference = cgcnn2 ``CIFData[i]`` for every i (parse, neighbours, Gaussian expansion,
  atom features; the items are kept, as its ``lru_cache`` keeps them); ours = ``read_structure`` +
  ``structure_graph`` in ``--workers`` processes (the pipeline's pool builder does the same) and,
  for comparison, in one process.
* epoch: reference = its ``collate_pool`` DataLoader (shuffle, batch 256, workers 0) and
  ``CrystalGraphConvNet`` with the training step of its ``main.py``; ours = ``matrepro.core.train.fit``
  for one epoch (collate at batch time, validation on one structure).

torch uses 2 threads in both. End to end = graphs + one epoch; the ratio is reference / ours.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from matrepro.core.train import TrainConfig, fit  # noqa: E402
from matrepro.features.crystal import CrystalData, load_atom_init, read_structure, structure_graph  # noqa: E402
from matrepro.models import build_model  # noqa: E402


def raw(rel: str) -> Path:
    for base in (ROOT / "data" / "raw", Path(os.environ.get("MATREPRO_DATA_MIRROR", ROOT.parent / "shared" / "data"))):
        if (base / rel).exists():
            return base / rel
    raise SystemExit(f"{rel} not found in data/raw or the mirror (run dvc repro snapshot@elastic_structures)")


def write_cifs(n: int, out: Path) -> tuple[list[str], np.ndarray]:
    import csv

    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    recs = json.load(gzip.open(raw("elastic_structures/mp_elastic_structures.json.gz"), "rt"))
    rows = [r for r in csv.DictReader(open(raw("elastic_structures/matbench_log_gkvrh_to_mpid.csv")))
            if r["confidence"] == "high"]
    rng = np.random.RandomState(0)
    rows = [rows[i] for i in sorted(rng.choice(len(rows), n, replace=False))]
    ids, y = [], []
    for r in rows:
        i = f"mb{int(r['mbid_index']):05d}"
        CifWriter(Structure.from_dict(recs[r["mp_id"]]["structure"])).write_file(out / f"{i}.cif")
        ids.append(i)
        y.append(float(r["log10G_matbench"]))
    y = np.array(y)
    (out / "id_prop.csv").write_text("".join(f"{i},{v}\n" for i, v in zip(ids, y)))
    import shutil
    shutil.copy(raw("cgcnn/atom_init.json"), out / "atom_init.json")
    return ids, (y - y.mean()) / y.std()


def _ours_chunk(args):
    paths, atom_init = args
    torch.set_num_threads(1)
    table = load_atom_init(atom_init)
    return [structure_graph(read_structure(p, id=p.stem), table, id=p.stem) for p in paths]


def ours_graphs(d: Path, ids: list[str], workers: int):
    paths = [d / f"{i}.cif" for i in ids]
    if workers <= 1:
        return _ours_chunk((paths, d / "atom_init.json"))
    chunks = [(paths[k::workers * 4], d / "atom_init.json") for k in range(workers * 4)]
    with ProcessPoolExecutor(workers) as ex:
        parts = list(ex.map(_ours_chunk, chunks))
    by_id = {g.id: g for part in parts for g in part}
    return [by_id[i] for i in ids]


def ours_epoch(graphs, y) -> float:
    data = CrystalData(graphs, y)
    cfg = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, batch_size=256, max_epochs=1, patience=1,
                      loss="mse", scheduler="multistep", scheduler_milestones=[100], select="val_mae")
    model = build_model("cgcnn", atom_fea_len=64, n_conv=3, h_fea_len=128, n_h=1)
    t = time.perf_counter()
    fit(model, data, data.subset([0]), cfg, seed=0, progress=False)
    return time.perf_counter() - t


def reference(d: Path, y) -> tuple[float, float]:
    from cgcnn2.data import CIFData, collate_pool
    from cgcnn2.model import CrystalGraphConvNet
    from torch.utils.data import DataLoader

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = CIFData(str(d))
        items = [ds[i] for i in range(len(ds))]
    t_graph = time.perf_counter() - t
    torch.manual_seed(0)
    model = CrystalGraphConvNet(92, 41, atom_fea_len=64, n_conv=3, h_fea_len=128, n_h=1)
    opt = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9, weight_decay=0)
    target = {cid: torch.tensor([float(v)]) for (_, _, cid), v in zip(items, y)}  # standardised, as ours
    items = [(x, target[cid], cid) for x, _, cid in items]
    loader = DataLoader(items, batch_size=256, shuffle=True, collate_fn=collate_pool, num_workers=0)
    loss_fn = torch.nn.MSELoss()
    t = time.perf_counter()
    model.train()
    for inputs, tgt, _ in loader:
        out = model(*inputs)
        out = out[0] if isinstance(out, tuple) else out
        loss = loss_fn(out, tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return t_graph, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ids, y = write_cifs(a.n, d)
        res = {k: [] for k in ("ref_graph", "ref_epoch", "our_graph", "our_graph_1p", "our_epoch")}
        for _ in range(a.repeats):
            rg, re_ = reference(d, y)
            res["ref_graph"].append(rg)
            res["ref_epoch"].append(re_)
            t = time.perf_counter()
            graphs = ours_graphs(d, ids, a.workers)
            res["our_graph"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ours_graphs(d, ids, 1)
            res["our_graph_1p"].append(time.perf_counter() - t)
            res["our_epoch"].append(ours_epoch(graphs, y))
        atoms = sum(g.n_atoms for g in graphs)
    m = {k: float(np.median(v)) for k, v in res.items()}
    ref_total, our_total = m["ref_graph"] + m["ref_epoch"], m["our_graph"] + m["our_epoch"]
    our_total_1p = m["our_graph_1p"] + m["our_epoch"]
    print(f"{a.n} structures ({atoms} atoms), CIF files on disk, torch {torch.__version__}, 2 threads, "
          f"median of {a.repeats} repeat(s)")
    print(f"{'step':<34}{'cgcnn2 (s)':>12}{'ours (s)':>12}{'ratio':>8}")
    print(f"{'graphs (' + str(a.workers) + ' processes for ours)':<34}{m['ref_graph']:>12.2f}{m['our_graph']:>12.2f}{m['ref_graph'] / m['our_graph']:>8.2f}")
    print(f"{'graphs (1 process)':<34}{m['ref_graph']:>12.2f}{m['our_graph_1p']:>12.2f}{m['ref_graph'] / m['our_graph_1p']:>8.2f}")
    print(f"{'one training epoch':<34}{m['ref_epoch']:>12.2f}{m['our_epoch']:>12.2f}{m['ref_epoch'] / m['our_epoch']:>8.2f}")
    print(f"{'end to end':<34}{ref_total:>12.2f}{our_total:>12.2f}{ref_total / our_total:>8.2f}")
    print(f"{'end to end (ours in 1 process)':<34}{ref_total:>12.2f}{our_total_1p:>12.2f}{ref_total / our_total_1p:>8.2f}")


if __name__ == "__main__":
    main()
