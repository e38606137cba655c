"""Rows of the composition benchmark suites that more than one paper reads: the matbench v0.1
full tables with their official folds, and a profile's seeded row cap.

A matbench task becomes train / val / test: test = the rows of the official test fold in use,
val = a seeded ``val_fraction`` of the remaining rows (``np.random.default_rng(seed + fold)``),
train = the rest. A cap keeps a seeded random ``n`` rows in their order and is logged.
(lgdcnn still carries its own copy in ``papers/lgdcnn/tasks.py``; it moves here when its stages
are re-run for issue 13, so that this change does not re-run them for nothing.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import DataError, MatreproError
from ..core.validate import FilterLog, read_csv, require_columns
from .composition import load_split_csv

SPLITS = ("train", "val", "test")


def with_rows(df: pd.DataFrame) -> pd.DataFrame:
    """(row, formula, target) with 1-based file rows, so that errors and results name the row."""
    return df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]


def cap_rows(df: pd.DataFrame, n: int | None, seed: int, flog: FilterLog, what: str) -> pd.DataFrame:
    """Keep a seeded random ``n`` rows (order kept); logged. ``None`` keeps all."""
    if n is None or len(df) <= n:
        return df
    keep = np.zeros(len(df), bool)
    keep[np.random.default_rng(seed).choice(len(df), int(n), replace=False)] = True
    return flog.apply(df, keep, f"profile cap: random {n} of {len(df)} {what} rows (seed {seed})")


def matbench_test_mask(path: str | Path, folds_path: str | Path, fold: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The full matbench table (row, formula, target) and its 'is official test fold ``fold``' mask."""
    path, folds_path = Path(path), Path(folds_path)
    df = with_rows(load_split_csv(path))
    folds = read_csv(folds_path)
    require_columns(folds, ["row_index", "test_fold"], folds_path)
    if len(folds) != len(df) or set(folds.row_index) != set(range(len(df))):
        raise DataError(folds_path, f"fold table does not cover the {len(df)} rows of {path.name}")
    test_fold = folds.set_index("row_index").test_fold.reindex(range(len(df))).to_numpy()
    if fold not in set(test_fold.tolist()):
        raise MatreproError(f"matbench fold {fold} is not a fold of {folds_path}")
    return df, test_fold == fold


def matbench_parts(path: str | Path, folds_path: str | Path, fold: int, val_fraction: float,
                   seed: int) -> dict[str, pd.DataFrame]:
    """train / val / test of one official matbench fold (see the module docstring)."""
    df, is_test = matbench_test_mask(path, folds_path, fold)
    outer = df[~is_test]
    val = np.zeros(len(outer), bool)
    n_val = int(round(float(val_fraction) * len(outer)))
    val[np.random.default_rng(seed + fold).choice(len(outer), n_val, replace=False)] = True
    return {"train": outer[~val], "val": outer[val], "test": df[is_test]}
