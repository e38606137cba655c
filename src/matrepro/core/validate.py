"""Table validation and logged filtering. Nothing is dropped silently.

Row numbers in messages are 1-based data rows (the header is row 0, so row N is on line N+1 of a CSV).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

log = logging.getLogger(__name__)


def read_csv(path: str | Path, **kw) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (run the snapshot stage: dvc repro)")
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not a readable CSV: {exc}") from exc


def require_columns(df: pd.DataFrame, columns, file) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(file, f"missing column(s) {missing}; found {list(df.columns)}", field=missing[0])


def require_unique(df: pd.DataFrame, column: str, file) -> None:
    dup = df[column].duplicated(keep="first").to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((df[column] == df[column].iloc[i]).to_numpy())[0])
        raise DataError(file, f"duplicate id {df[column].iloc[i]!r} (first seen on row {first + 1}); "
                        f"{int(dup.sum())} duplicate(s) in all", row=i + 1, field=column)


def require_finite(df: pd.DataFrame, columns, file) -> None:
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raw = df[col].iloc[i]
            kind = "NaN/empty or non-numeric" if not np.isinf(values[i]) else "infinite"
            raise DataError(file, f"{kind} value {raw!r} ({int(bad.sum())} bad value(s) in this column)",
                            row=i + 1, field=col)


class FilterLog:
    """Applies row filters, logging and recording how many rows each one removed and why."""

    def __init__(self, name: str):
        self.name = name
        self.steps: list[dict] = []

    def apply(self, df: pd.DataFrame, keep, reason: str) -> pd.DataFrame:
        keep = np.asarray(keep, dtype=bool)
        removed = int((~keep).sum())
        self.steps.append({"step": len(self.steps) + 1, "reason": reason, "rows_before": len(df),
                           "removed": removed, "rows_after": len(df) - removed})
        log.info("%s: %s: removed %d of %d rows", self.name, reason, removed, len(df))
        return df.loc[keep].reset_index(drop=True)

    def note(self, n_rows: int, reason: str) -> None:
        """Record a step that removes nothing but changes rows (e.g. a label filled in), so it is counted."""
        self.steps.append({"step": len(self.steps) + 1, "reason": reason, "rows_before": n_rows,
                           "removed": 0, "rows_after": n_rows})
        log.info("%s: %s", self.name, reason)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps, columns=["step", "reason", "rows_before", "removed", "rows_after"])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"name": self.name, "steps": self.steps}, indent=2) + "\n")
