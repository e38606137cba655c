"""capnet experiments: the grid architecture x feature set x split x seed through the one training
loop (CapNet and the DNN, RNN, LSTM and Transformer baselines, registered in ``models.tabular``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from ...core.metrics import aggregate, regression_metrics
from ...core.train import TrainConfig, fit, get_device, predict, set_seed
from ...features.tabular import TabularEncoder
from ...models import build_model, count_parameters
from ...models import tabular as _tabular_models  # noqa: F401  (registers capnet, dnn, rnn, lstm, transformer)
from . import data as bt
from .preprocess import load_processed, split_column

log = logging.getLogger(__name__)


def train_one(arch: str, cfg: dict, table: pd.DataFrame, y, labels, cats: list[str], feature_set: str, seed: int,
              device="cpu") -> tuple:
    """One run: the encoder fitted on the 'train' rows of ``labels``, the network trained with
    validation on 'val'. Returns (model, encoder, {split: batch}, {split: mask}, history)."""
    part = {k: labels == k for k in ("train", "val", "test")}
    enc = TabularEncoder(bt.FEATURE_SETS[feature_set], cats, cfg.get("min_category_count", 1))
    enc.fit(table.loc[part["train"]], y[part["train"]])
    data = {k: enc.transform(table.loc[m], y[m]) for k, m in part.items()}
    set_seed(seed)
    model = build_model(arch, n_numeric=len(enc.numeric), cardinalities=enc.cardinalities, **cfg["models"][arch])
    hist = fit(model, data["train"], data["val"], TrainConfig.from_dict(cfg["train"]), seed=seed, device=device,
               progress=False)
    return model, enc, data, part, hist


def run_architecture(arch: str, cfg: dict, processed_dir: str | Path, progress: bool = True,
                     device=None) -> tuple[dict, pd.DataFrame]:
    """Train and test one architecture on every feature set x split x seed.

    Returns the metrics (mean, std and per-seed values) and the per-sample test predictions."""
    table, splits, meta = load_processed(processed_dir)
    cats = meta["categorical_columns"]
    hparams = cfg["models"][arch]
    device = device or get_device()
    y = table[bt.TARGET].to_numpy(float)
    results, preds = {}, []
    grid = [(fs, sp, s) for fs in cfg["feature_sets"] for sp in cfg["splits"] for s in cfg["seeds"]]
    per = {}
    for fs, sp, seed in tqdm(grid, desc=arch, disable=not progress):
        labels = splits[split_column(sp, seed)].to_numpy()
        model, enc, data, part, hist = train_one(arch, cfg, table, y, labels, cats, fs, seed, device)
        y_hat = enc.inverse_target(predict(model, data["test"], device=device))
        m = regression_metrics(y[part["test"]], y_hat)
        m.update(epochs=hist.epochs, best_epoch=hist.best_epoch + 1)
        per.setdefault((fs, sp), []).append(m)
        preds.append(pd.DataFrame({"model": arch, "feature_set": fs, "split": sp, "seed": seed,
                                   bt.ID: table.loc[part["test"], bt.ID].to_numpy(),
                                   "y_true": y[part["test"]], "y_pred": y_hat}))
        results.setdefault("n_parameters", {})[fs] = count_parameters(model)
    for (fs, sp), ms in per.items():
        agg = aggregate([{k: v for k, v in m.items() if k in ("mae", "rmse", "r2")} for m in ms])
        agg["epochs"] = [m["epochs"] for m in ms]
        agg["best_epoch"] = [m["best_epoch"] for m in ms]
        results.setdefault(fs, {})[sp] = agg
    results.update(model=arch, profile=cfg["profile"], seeds=list(cfg["seeds"]),
                   hyperparameters=hparams, train=cfg["train"], device=str(device),
                   categorical_source=meta["categorical_source"])
    return results, pd.concat(preds, ignore_index=True)
