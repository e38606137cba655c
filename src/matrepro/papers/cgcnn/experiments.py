"""cgcnn experiments: the paper's protocol (random 80/10/10 with CGCNN's seed-123 shuffle) and the
Matbench one (5 official folds) through the one training loop; per-sample predictions, checkpoints
that carry their hyperparameters, metrics in log10 GPa and in GPa.
"""
from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.errors import DataError, MatreproError
from ...core.show import pm
from ...core.train import TrainConfig, fit, get_device, set_seed
from ...features.crystal import CrystalData
from ...features.graphstore import GraphStore
from ...models import build_model, count_parameters
from ...models.crystal import predict_graphs
from . import elastic
from .data import TARGETS, atom_table, both_units, data_source, gdf, load_rows, subset_rows

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- settings
def train_config(cfg: dict) -> TrainConfig:
    return TrainConfig.from_dict(cfg["train"])


def model_args(cfg: dict) -> dict:
    """The checkpoint ``args`` (txie-93 names): architecture, training and graph settings."""
    t = cfg["train"]
    return {**{k: int(v) for k, v in cfg["model"].items()}, "task": "regression", "epochs": int(t["max_epochs"]),
            "batch_size": int(t["batch_size"]), "lr": float(t["lr"]), "momentum": float(t.get("momentum", 0.9)),
            "weight_decay": float(t.get("weight_decay", 0.0)), "optim": t["optimizer"].upper(),
            "lr_milestones": [int(m) for m in t.get("scheduler_milestones", [])],
            "radius": float(cfg["graph"]["radius"]), "max_num_nbr": int(cfg["graph"]["max_num_nbr"]),
            "step": float(cfg["graph"]["step"])}


# ------------------------------------------------------------------------------------- splits
def paper_split(n: int, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """txie-93/cgcnn's split of n rows (labels) and the 500 rows its Normalizer samples (positions):
    ``random.seed(123); shuffle``, contiguous train/val/test blocks, then ``random.sample`` of 500
    dataset positions with the same generator, as ``main.py`` does after building the dataset."""
    p = cfg["protocols"]["paper"]
    labels = elastic.cgcnn_random_split(n, tuple(p["ratios"]), seed=p["split_seed"])
    random.seed(p["split_seed"])
    order = list(range(n))
    random.shuffle(order)
    sample = [order[i] for i in random.sample(range(n), min(500, n))]
    return labels, np.array(sample, np.int64)


def matbench_split(rows: pd.DataFrame, fold: int, cfg: dict) -> np.ndarray:
    """Official test fold ``fold``; a seeded ``val_fraction`` of the outer training rows validates."""
    p = cfg["protocols"]["matbench"]
    labels = np.where(rows.test_fold.to_numpy() == fold, "test", "train").astype(object)
    outer = np.flatnonzero(labels == "train")
    rng = np.random.RandomState(p["split_seed"] + fold)
    val = rng.choice(outer, int(round(p["val_fraction"] * len(outer))), replace=False)
    labels[val] = "val"
    return labels


def normaliser(y: np.ndarray, labels: np.ndarray, mode: str, sample: np.ndarray | None = None) -> tuple[float, float]:
    """'sample500': mean/std (torch, unbiased) of 500 random rows of the whole dataset, as txie-93's
    Normalizer (a small leak of validation/test targets); 'train': of the training rows only."""
    if mode == "sample500":
        if sample is None:
            raise MatreproError("normaliser sample500 needs the sampled rows")
        t = torch.as_tensor(y[sample], dtype=torch.float32)
    elif mode == "train":
        t = torch.as_tensor(y[labels == "train"], dtype=torch.float32)
    else:
        raise DataError("params.yaml", f"unknown normaliser {mode!r} (sample500 | train)", field="cgcnn.normaliser")
    return float(t.mean()), float(t.std())


def _agg(values: list[float]) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "per_run": [float(x) for x in v]}


def aggregate_runs(blocks: list[dict]) -> dict:
    """{unit: {metric: {mean, std, per_run}}} over runs (seeds or folds)."""
    return {u: {m: _agg([b[u][m] for b in blocks]) for m in blocks[0][u]} for u in blocks[0]}


# ---------------------------------------------------------------------------------- training
def save_run_checkpoint(path: Path, model, mean: float, std: float, args: dict, hist, extra: dict) -> None:
    """txie-93's checkpoint layout with plain data only (loads with weights_only=True)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": int(hist.best_epoch) + 1, "state_dict": model.state_dict(),
                "best_mae_error": float(min(hist.val_mae) * std) if hist.val_mae else None,
                "normalizer": {"mean": torch.tensor(mean), "std": torch.tensor(std)},
                "args": {**args, **extra}}, path)


def train_run(store: GraphStore, rows: pd.DataFrame, target: str, labels: np.ndarray, cfg: dict, seed: int,
              norm: tuple[float, float], desc: str = "cgcnn") -> tuple:
    """Train one CGCNN on the rows labelled 'train', select the epoch on 'val'. Returns (model,
    history, predictions of every labelled row in log10 GPa, seconds)."""
    y = rows[TARGETS[target]["column"]].to_numpy(float)
    mean, std = norm
    graphs = [store.get(k, id=int(r)) for k, r in zip(rows.key, rows.row)]
    data = CrystalData(graphs, (y - mean) / std, gdf=gdf(cfg))
    tr, va = data.subset(np.flatnonzero(labels == "train")), data.subset(np.flatnonzero(labels == "val"))
    set_seed(seed)  # the initial weights depend on the seed too
    model = build_model("cgcnn", **cfg["model"])
    t0 = time.time()
    hist = fit(model, tr, va, train_config(cfg), seed=seed, device=get_device(), desc=desc)
    seconds = time.time() - t0
    used = np.flatnonzero(labels != "unused")
    pred = predict_graphs(model.cpu(), [graphs[i] for i in used], mean, std, gdf=gdf(cfg))
    return model, hist, pd.DataFrame({"row": rows.row.to_numpy()[used], "split": labels[used],
                                      "y_true": y[used], "y_pred": pred}), seconds


def run_protocol(protocol: str, cfg: dict, data_dir: str | Path, out_dir: str | Path, model_dir: str | Path,
                 root: Path | None = None) -> dict:
    """Every (target, subset, fold, seed) run of one protocol. Writes ``predictions.csv`` (paper:
    every row with its split; matbench: test rows) and ``runs.csv`` to ``out_dir``, one checkpoint per
    run to ``model_dir``; returns the metrics dict (also for ``metrics/cgcnn/<protocol>.json``)."""
    if protocol not in ("paper", "matbench"):
        raise MatreproError(f"unknown cgcnn protocol {protocol!r} (paper | matbench)")
    out_dir, model_dir = Path(out_dir), Path(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    rows_all = load_rows(data_dir)
    cfg = {**cfg, "_source": data_source(data_dir)}
    store = GraphStore(Path(data_dir) / "graphs.npz", atom_table(root))
    pcfg = cfg["protocols"][protocol]
    args = model_args(cfg)
    preds, runs, results = [], [], {}
    for target in cfg["targets"]:
        for subset in cfg["subsets"]:
            rows = subset_rows(rows_all, subset)
            seeds = pcfg["seeds"][subset]
            folds = ["random"] if protocol == "paper" else list(pcfg["folds"])
            blocks, whole = [], []
            for fold in folds:
                if protocol == "paper":
                    labels, sample = paper_split(len(rows), cfg)
                else:
                    labels, sample = matbench_split(rows, fold, cfg), None
                y = rows[TARGETS[target]["column"]].to_numpy(float)
                norm = normaliser(y, labels, pcfg["normaliser"], sample)
                for seed in seeds:
                    name = f"{target}_{subset}_{fold if protocol == 'paper' else f'fold{fold}'}_seed{seed}"
                    log.info("cgcnn %s: %s (%d train / %d val / %d test rows)", protocol, name,
                             (labels == "train").sum(), (labels == "val").sum(), (labels == "test").sum())
                    model, hist, p, sec = train_run(store, rows, target, labels, cfg, seed, norm, desc=name)
                    save_run_checkpoint(model_dir / f"{name}.pth.tar", model, norm[0], norm[1], args, hist,
                                        {"target": f"log10 {TARGETS[target]['label']} (GPa)", "protocol": protocol,
                                         "subset": subset, "fold": str(fold), "seed": int(seed),
                                         "n_train": int((labels == 'train').sum()), "structure_source": cfg["_source"]})
                    test = p[p.split == "test"]
                    block = both_units(test.y_true, test.y_pred)
                    blocks.append(block)
                    if protocol == "paper":
                        whole.append(both_units(p.y_true, p.y_pred))
                    runs.append({"target": target, "subset": subset, "fold": fold, "seed": seed,
                                 "n_train": int((labels == "train").sum()), "n_val": int((labels == "val").sum()),
                                 "n_test": int((labels == "test").sum()), "epochs": hist.epochs,
                                 "best_epoch": hist.best_epoch + 1, "best_val_mae_log10": float(min(hist.val_mae) * norm[1]),
                                 "test_mae_log10": block["log10"]["mae"], "test_mae_GPa": block["GPa"]["mae"],
                                 "test_r2_log10": block["log10"]["r2"], "seconds": round(sec, 1),
                                 "normaliser_mean": norm[0], "normaliser_std": norm[1]})
                    keep = p if protocol == "paper" else test
                    preds.append(keep.assign(target=target, subset=subset, fold=fold, seed=seed))
            res = {"n_rows": len(rows), "runs": len(blocks), "seeds": list(seeds), "folds": [str(f) for f in folds],
                   "test": aggregate_runs(blocks)}
            if whole:
                res["whole_set"] = aggregate_runs(whole)
            if protocol == "matbench":
                res["per_fold"] = [{"fold": int(r["fold"]), "seed": int(r["seed"]), "mae_log10": r["test_mae_log10"],
                                    "mae_GPa": r["test_mae_GPa"], "n_test": r["n_test"]}
                                   for r in runs if r["target"] == target and r["subset"] == subset]
            results.setdefault(target, {})[subset] = res
    pred = pd.concat(preds, ignore_index=True)[["target", "subset", "fold", "seed", "row", "split", "y_true", "y_pred"]]
    pred.to_csv(out_dir / "predictions.csv", index=False, float_format="%.6g")
    pd.DataFrame(runs).to_csv(out_dir / "runs.csv", index=False, float_format="%.6g")
    return {"paper": "cgcnn", "protocol": protocol, "profile": cfg["profile"], "structure_source": cfg["_source"],
            "settings": {"model": cfg["model"], "train": cfg["train"], "protocol": pcfg, "graph": cfg["graph"]},
            "parameters": count_parameters(build_model("cgcnn", **cfg["model"])), "results": results}


def summary_table(metrics: dict, part: str = "test") -> pd.DataFrame:
    """One row per target and subset: runs, MAE / RMSE / R² in log10 GPa and MAE / R² in GPa."""
    out = []
    for target, by_subset in metrics["results"].items():
        for subset, r in by_subset.items():
            m = r[part]
            out.append({"protocol": metrics["protocol"], "target": f"log10 {target}", "subset": subset,
                        "rows": r["n_rows"], "runs": len(m["log10"]["mae"]["per_run"]),
                        "MAE (log10)": pm(m["log10"]["mae"]), "RMSE (log10)": pm(m["log10"]["rmse"]),
                        "R² (log10)": pm(m["log10"]["r2"], ".3f"), "MAE (GPa)": pm(m["GPa"]["mae"], ".2f"),
                        "R² (GPa)": pm(m["GPa"]["r2"], ".3f"), "profile": metrics["profile"]})
    return pd.DataFrame(out)
