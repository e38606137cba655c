"""capnet: apply the trained capacity model to a battery table (``matrepro predict capnet``).

One model folder per feature set, ``models/capnet/<feature_set>/`` (stage ``capnet_model``): the
architecture with the lowest mean test MAE on the **group** split (unseen charge/discharge formula
pairs: the case of a new electrode) in ``metrics/capnet.json``, trained again on that split for
every seed (deterministic on one machine: the card shows the recorded MAE beside its own), one
checkpoint per seed (weights, the fitted encoder as plain arrays and lists), and ``card.json``.

Input: a battery-explorer CSV (the columns of the Materials Project battery table: ``Working Ion``,
``Formula Charge``, ``Formula Discharge`` and the feature set's numeric columns; the ``leak_free``
set needs no energy or volumetric column). Per row:

* errors (not predicted): a missing or non-numeric value, an unparseable formula, a working ion
  other than the training ion (Li), no framework left after removing the ion;
* the predicted gravimetric capacity (mAh/g), the seeds' spread, and the analytic capacity from
  the two formulas (a physics check anybody can read);
* flags: ``unseen_category`` (a categorical value the training rows never had: the model sees the
  reserved "unknown" code), ``numeric_out_of_range`` (a numeric column outside the training
  range), ``far_from_training`` (Euclidean distance of the standardised numeric features to the
  nearest training row above the 95th percentile of the test split's distances).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.batch_input import RowErrors, read_table
from ...core.cards import load_member, read_card, write_card
from ...core.errors import DataError
from ...core.train import predict
from ...features.applicability import NearestTrainDistance
from ...features.tabular import TabularBatch, TabularEncoder
from ...models import build_model
from ...models import tabular as _tabular_models  # noqa: F401  (registers capnet, dnn, rnn, lstm, transformer)
from . import data as bt
from .experiments import train_one
from .preprocess import load_processed, split_column

DEFAULT = "leak_free"
STAGE = "capnet_model"
INPUT = ("a battery-explorer CSV: 'Working Ion', 'Formula Charge', 'Formula Discharge' and the feature "
         "set's numeric columns (UTF-8, BOM and CRLF accepted; other columns are carried through)")
SELECT_SPLIT = "group"
QUANTILE = 0.95


def encoder_state(enc: TabularEncoder) -> dict:
    """The fitted encoder as plain data (loads with weights_only=True)."""
    return {"numeric": list(enc.numeric), "categorical": list(enc.categorical), "min_count": int(enc.min_count),
            "mean": torch.tensor(enc.scaler.mean_), "scale": torch.tensor(enc.scaler.scale_),
            "categories": [[str(c) for c in cats] for cats in (enc.ordinal.categories_ if enc.ordinal else [])],
            "y_mean": float(enc.y_mean), "y_std": float(enc.y_std)}


def encode(state: dict, df: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(x_num, x_cat, unseen mask per row and categorical column) with a saved encoder."""
    x = (df[state["numeric"]].to_numpy(float) - state["mean"].numpy()) / state["scale"].numpy()
    codes, unseen = [], []
    for col, cats in zip(state["categorical"], state["categories"]):
        index = {c: i + 1 for i, c in enumerate(cats)}  # 0 = unseen, as in TabularEncoder
        c = df[col].astype(str).map(lambda v: index.get(v, 0)).to_numpy()
        codes.append(c)
        unseen.append(c == 0)
    n = len(df)
    x_cat = np.stack(codes, axis=1) if codes else np.zeros((n, 0), np.int64)
    return (torch.tensor(x, dtype=torch.float32), torch.tensor(x_cat, dtype=torch.int64),
            np.stack(unseen, axis=1) if unseen else np.zeros((n, 0), bool))


def best_architecture(metrics: dict, feature_set: str, split: str = SELECT_SPLIT) -> str:
    archs = [a for a in metrics["model_order"] if feature_set in metrics["results"].get(a, {})]
    return min(archs, key=lambda a: metrics["results"][a][feature_set][split]["mae"]["mean"])


def export_model(folder, feature_set: str, cfg: dict, processed_dir, metrics: dict, check: bool = True) -> dict:
    """Train the best architecture of ``feature_set`` on the group split for every seed; write the
    folder. The card's metrics are those of the networks shipped; ``check`` warns when they differ
    from the ones recorded in ``metrics`` (training is deterministic on one machine; another CPU can
    round differently and early stopping then picks another epoch)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table, splits, meta = load_processed(processed_dir)
    cats = meta["categorical_columns"]
    arch = best_architecture(metrics, feature_set)
    recorded = metrics["results"][arch][feature_set][SELECT_SPLIT]["mae"]["per_seed"]
    y = table[bt.TARGET].to_numpy(float)
    members, maes, train_x, test_x = [], [], None, None
    for seed, want in zip(cfg["seeds"], recorded):
        labels = splits[split_column(SELECT_SPLIT, seed)].to_numpy()
        model, enc, data, part, _ = train_one(arch, cfg, table, y, labels, cats, feature_set, seed, "cpu")
        y_hat = enc.inverse_target(predict(model, data["test"], device="cpu"))
        mae = float(np.mean(np.abs(y_hat - y[part["test"]])))
        if check and not np.isclose(mae, want, rtol=1e-4):
            logging.getLogger(__name__).warning(
                "%s/%s/%s seed %s: the shipped network's test MAE %.6g differs from the recorded %.6g (the recorded "
                "run came from other code, data or machine: dvc repro capnet_evaluate re-runs it)", arch, feature_set,
                SELECT_SPLIT, seed, mae, want)
        saved = encoder_state(enc)
        x_num, x_cat, _ = encode(saved, table.loc[part["test"]])  # the saved encoder must reproduce the fitted one
        if not (torch.allclose(x_num, data["test"].x_num, atol=1e-5) and torch.equal(x_cat, data["test"].x_cat)):
            raise DataError(processed_dir, f"capnet encoder state does not reproduce its transform (seed {seed})")
        name = f"seed{seed}.pt"
        torch.save({"arch": arch, "hparams": dict(cfg["models"][arch]), "cardinalities": enc.cardinalities,
                    "weights": model.state_dict(), "encoder": saved}, folder / name)
        members.append(name)
        maes.append(mae)
        if train_x is None:  # the distance check uses the first seed's split and scaling
            train_x, test_x = data["train"].x_num.numpy(), data["test"].x_num.numpy()
            train_rows = table.loc[part["train"]]
    dist = NearestTrainDistance(train_x, metric="euclidean")
    dist.calibrate(test_x, QUANTILE)
    np.savez_compressed(folder / "train_numeric.npz", x=train_x)
    num = bt.FEATURE_SETS[feature_set]
    card = {"paper": "capnet", "name": feature_set, "target": bt.TARGET, "unit": "mAh/g", "profile": cfg["profile"],
            "stage": STAGE, "architecture": arch, "selected_by": f"lowest mean test MAE on the {SELECT_SPLIT} split",
            "working_ion": cfg["working_ion"], "categorical_source": meta["categorical_source"],
            "training": {"rows": {k: int(v.sum()) for k, v in part.items()}, "split": SELECT_SPLIT,
                         "numeric_range": {c: [float(train_rows[c].min()), float(train_rows[c].max())] for c in num},
                         "elements": sorted({e.symbol for f in train_rows[bt.F_DISCHARGE]
                                             for e in bt.parse_formula(f).elements})},
            "metrics": {"split": SELECT_SPLIT, "mae": float(np.mean(maes)), "mae_std": float(np.std(maes, ddof=1)),
                        "mae_per_seed": maes, "recorded_mae_per_seed": [float(v) for v in recorded],
                        "recorded_in": "metrics/capnet.json"},
            "input": INPUT, "members": members,
            "applicability": {"numeric": {**dist.describe(), "features": "standardised numeric columns"},
                              "unseen_category": "categorical value absent from the training rows",
                              "numeric_out_of_range": "numeric value outside the training rows' range"}}
    write_card(folder, card)
    return card


def _rows(df: pd.DataFrame, card: dict, path, errors: RowErrors) -> pd.DataFrame:
    """Validated rows with numeric columns as floats and the derived categories; bad rows to ``errors``."""
    num = list(card["training"]["numeric_range"])
    keep, derived = [], []
    for i in range(len(df)):
        r = df.iloc[i]
        row = int(r["row"])
        bad = None
        for c in num:
            try:
                v = float(r[c])
            except ValueError:
                bad = (c, f"not a number: {r[c]!r}")
                break
            if not np.isfinite(v):
                bad = (c, f"missing or non-finite value {r[c]!r}")
                break
        if bad is None and r[bt.ION] != card["working_ion"]:
            bad = (bt.ION, f"working ion {r[bt.ION]!r}: the model was trained on {card['working_ion']} electrodes only")
        if bad is None:
            try:
                feats = bt.composition_features(pd.DataFrame([r]), path).iloc[0].to_dict()
            except DataError as exc:
                bad = (exc.field or bt.F_DISCHARGE, exc.message)
        if bad:
            errors.add(path, row, bad[0], bad[1])
            continue
        keep.append(i)
        derived.append(feats)
    out = df.iloc[keep].reset_index(drop=True)
    for c in num:
        out[c] = out[c].astype(float)
    d = pd.DataFrame(derived, index=out.index) if derived else pd.DataFrame(index=out.index)
    for c in d.columns:
        if c not in out.columns:
            out[c] = d[c]
    return out


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = Path(folder)
    card = read_card(folder)
    arts = [load_member(folder, m) for m in card["members"]]
    state = arts[0]["encoder"]
    cats = state["categorical"]
    derived = set(bt.PROXY_CATEGORIES) | {"capacity_analytic"}
    need = [bt.ION, bt.F_CHARGE, bt.F_DISCHARGE, *card["training"]["numeric_range"]] + [c for c in cats if c not in derived]
    df = read_table(path, need)
    errors = RowErrors()
    good = _rows(df, card, path, errors)
    if not len(good):
        return good, errors.frame()
    preds = []
    for a in arts:
        net = build_model(a["arch"], n_numeric=len(a["encoder"]["numeric"]), cardinalities=a["cardinalities"],
                          **a["hparams"])
        net.load_state_dict(a["weights"], strict=True)
        x_num, x_cat, _ = encode(a["encoder"], good)
        preds.append(predict(net, TabularBatch(x_num, x_cat), device="cpu") * a["encoder"]["y_std"]
                     + a["encoder"]["y_mean"])
    p = np.stack(preds, axis=1)
    x_num, _, unseen = encode(state, good)
    f = card["applicability"]["numeric"]
    dist = NearestTrainDistance(np.load(folder / "train_numeric.npz")["x"], "euclidean", threshold=f["threshold"],
                                quantile=f["quantile"])
    d, far = dist.far(x_num.numpy())
    rng = card["training"]["numeric_range"]
    tol = {c: 1e-9 * max(1.0, abs(lo), abs(hi)) for c, (lo, hi) in rng.items()}  # CSV round trips move the last bit
    out_of = [[c for c, (lo, hi) in rng.items() if not lo - tol[c] <= good.at[i, c] <= hi + tol[c]]
              for i in range(len(good))]
    out = good.copy()
    out["prediction"] = p.mean(axis=1)
    out["spread"] = p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.nan
    out["n_models"] = p.shape[1]
    out["unit"] = card["unit"]
    out["nearest_train_distance"] = np.round(d, 4)
    out["unseen_categories"] = [" ".join(c for c, u in zip(cats, row) if u) for row in unseen]
    out["out_of_range_columns"] = [" ".join(o) for o in out_of]
    out["flags"] = [";".join(n for n, on in (("unseen_category", bool(u.any())), ("numeric_out_of_range", bool(o)),
                                             ("far_from_training", bool(x))) if on)
                    for u, o, x in zip(unseen, out_of, far)]
    return out, errors.frame()


def main(argv: list[str] | None = None) -> None:
    """``python -m matrepro.papers.capnet.predict``: models/capnet/<feature set>/ (the capnet_model stage)."""
    import argparse
    import logging

    from ...core.config import paper_config

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--processed", default="data/processed/capnet")
    ap.add_argument("--metrics", default="metrics/capnet.json")
    ap.add_argument("--out", default="models/capnet")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = paper_config("capnet")
    metrics = json.loads(Path(a.metrics).read_text())
    for fs in cfg["feature_sets"]:
        out = Path(a.out) / fs
        for f in out.glob("*") if out.is_dir() else []:
            f.unlink()
        card = export_model(out, fs, cfg, a.processed, metrics)
        print(f"{out}: {card['architecture']} x {len(card['members'])} seeds, test MAE ({card['metrics']['split']} split) "
              f"{card['metrics']['mae']:.3g} ± {card['metrics']['mae_std']:.2g} mAh/g")


if __name__ == "__main__":
    main()
