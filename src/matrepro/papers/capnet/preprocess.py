"""capnet preprocessing (Kim, Yang, Chung, Mathematics 13, 3730 (2025)): the Li rows of the battery
table, the analytic capacity, the categorical columns and one split per (kind, seed), written to
``data/processed/capnet``. Every choice is read from ``params.yaml``; the paper's full text is not
public, so every one of them is an assumption listed in ``data/deviations.yaml``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import MatreproError
from ...core.splits import group_leaks, group_split, random_split
from ...core.validate import FilterLog, read_csv
from . import data as bt

TABLE, SPLITS, FILTERS, META = "table.csv", "splits.csv", "filters.json", "meta.json"


def group_key(df: pd.DataFrame) -> pd.Series:
    """Rows sharing the (charged, discharged) formula pair share the capacity exactly."""
    return df[bt.F_CHARGE] + " -> " + df[bt.F_DISCHARGE]


def split_column(split: str, seed: int) -> str:
    return f"{split}_seed{seed}"


def make_splits(df: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One column per (split kind, seed): 'train' / 'val' / 'test'. Each seed draws its own split."""
    out = pd.DataFrame({bt.ID: df[bt.ID]})
    groups = group_key(df).to_numpy()
    for seed in cfg["seeds"]:
        for split in cfg["splits"]:
            if split == "random":
                labels = random_split(len(df), cfg["split_fractions"], seed)
            elif split == "group":
                labels = group_split(groups, cfg["split_fractions"], seed)
                leaks = group_leaks(groups, labels)
                if leaks:  # cannot happen with GroupShuffleSplit; checked all the same
                    raise MatreproError(f"group split seed {seed}: groups on two sides: {leaks[:3]}")
            else:
                raise MatreproError(f"params.yaml: field 'capnet.splits': unknown split {split!r}")
            out[split_column(split, seed)] = labels
    return out


def categorical_columns(source: str) -> list[str]:
    return bt.SYMMETRY_CATEGORIES if source == "mp_symmetry" else bt.PROXY_CATEGORIES


def preprocess(raw_csv: str | Path, out_dir: str | Path, cfg: dict,
               refresh_csv: str | Path | None = None) -> dict:
    """raw battery CSV -> table.csv, splits.csv, filters.json, meta.json in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    flog = FilterLog("capnet")
    df = bt.select_rows(bt.load_battery_table(raw_csv), cfg, flog)
    df = pd.concat([df, bt.composition_features(df, raw_csv)], axis=1)

    source = cfg.get("categorical_source", "auto")
    have_refresh = refresh_csv is not None and Path(refresh_csv).is_file()
    if source == "auto":
        source = "mp_symmetry" if have_refresh else "composition_proxy"
    if source == "mp_symmetry":
        if not have_refresh:
            raise MatreproError(f"categorical_source is mp_symmetry but {refresh_csv} does not exist: "
                                "run `make mp-refresh` (needs MP_API_KEY) first")
        df = bt.attach_symmetry(df, read_csv(refresh_csv), refresh_csv, flog)

    n_sub = cfg.get("subsample")
    if n_sub and n_sub < len(df):
        keep = np.zeros(len(df), bool)
        keep[np.random.default_rng(cfg["base_seed"]).choice(len(df), n_sub, replace=False)] = True
        df = flog.apply(df, keep, f"profile {cfg['profile']}: random subsample to {n_sub} rows")

    cats = categorical_columns(source)
    cols = [bt.ID, "Battery Formula", bt.ION, bt.F_CHARGE, bt.F_DISCHARGE, *bt.NUMERIC_COLUMNS,
            bt.TARGET, "capacity_analytic", *cats]
    df[cols].to_csv(out_dir / TABLE, index=False)  # full precision: the analytic check reads it
    make_splits(df, cfg).to_csv(out_dir / SPLITS, index=False)
    flog.save(out_dir / FILTERS)
    groups = group_key(df)
    meta = {
        "profile": cfg["profile"], "rows": len(df), "categorical_source": source,
        "categorical_columns": cats,
        "cardinality": {c: int(df[c].nunique()) for c in cats},
        "formula_pairs": int(groups.nunique()),
        "rows_in_shared_pairs": int(groups.duplicated(keep=False).sum()),
        "analytic_max_abs_error_mAh_g": float((df["capacity_analytic"] - df[bt.TARGET]).abs().max()),
        "seeds": list(cfg["seeds"]), "splits": list(cfg["splits"]),
        "split_fractions": list(cfg["split_fractions"]),
    }
    (out_dir / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_processed(processed_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    d = Path(processed_dir)
    meta = json.loads((d / META).read_text())
    table = read_csv(d / TABLE, dtype={c: str for c in meta["categorical_columns"]})
    splits = read_csv(d / SPLITS)
    if not table[bt.ID].equals(splits[bt.ID]):
        raise MatreproError(f"{d}: {TABLE} and {SPLITS} list different rows; rerun preprocess")
    return table, splits, meta
