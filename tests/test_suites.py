"""Shared suite rows (features.suites): matbench official-fold parts and the logged cap."""
import numpy as np
import pandas as pd
import pytest

from matrepro.core.errors import DataError, MatreproError
from matrepro.core.validate import FilterLog
from matrepro.features.suites import cap_rows, matbench_parts


def _files(tmp_path, n=20, folds=None):
    pd.DataFrame({"formula": [f"Li{i + 1}O1" for i in range(n)], "target": np.arange(n, dtype=float)}).to_csv(
        tmp_path / "task.csv", index=False)
    folds = folds if folds is not None else [i % 5 for i in range(n)]
    pd.DataFrame({"row_index": range(len(folds)), "test_fold": folds}).to_csv(tmp_path / "folds.csv", index=False)
    return tmp_path / "task.csv", tmp_path / "folds.csv"


def test_matbench_parts_use_the_official_fold_and_a_seeded_val(tmp_path):
    path, folds = _files(tmp_path)
    parts = matbench_parts(path, folds, fold=2, val_fraction=0.25, seed=42)
    assert parts["test"].row.tolist() == [3, 8, 13, 18]  # 1-based rows with test_fold 2
    assert len(parts["val"]) == 4 and len(parts["train"]) == 12
    assert not set(parts["val"].row) & set(parts["train"].row)
    again = matbench_parts(path, folds, fold=2, val_fraction=0.25, seed=42)
    assert again["val"].row.tolist() == parts["val"].row.tolist()


def test_matbench_parts_reject_a_bad_fold_table_or_fold(tmp_path):
    path, folds = _files(tmp_path, folds=[0] * 19)
    with pytest.raises(DataError, match="does not cover the 20 rows"):
        matbench_parts(path, folds, 0, 0.1, 0)
    path, folds = _files(tmp_path)
    with pytest.raises(MatreproError, match="fold 7 is not a fold"):
        matbench_parts(path, folds, 7, 0.1, 0)


def test_cap_rows_keeps_order_and_logs():
    df = pd.DataFrame({"row": range(1, 11)})
    flog = FilterLog("t")
    out = cap_rows(df, 4, 0, flog, "train")
    assert len(out) == 4 and out.row.is_monotonic_increasing
    assert flog.steps[0]["removed"] == 6 and "random 4 of 10 train rows" in flog.steps[0]["reason"]
    assert cap_rows(df, None, 0, flog, "train") is df
