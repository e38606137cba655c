"""What the gan_data stage writes to ``data/processed/gan`` and the later stages read, and the
table settings they share. Kept apart from the loaders (:mod:`.data`) so that the training and
generator stages do not depend on the raw-data code.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import DataError
from ...core.validate import read_csv, require_columns

TABLES, STATUS, FILTERS, COVERAGE = "gan_tables.npz", "gan_status.csv", "gan_filters.json", "coverage.csv"


def table_args(cfg: dict) -> dict:
    """``mapping`` and ``tol`` of the 85 x 8 table (``cfg["table"]``; defaults: integer, 0.02)."""
    t = cfg.get("table", {})
    return {"mapping": t.get("mapping", "integer"), "tol": float(t.get("tol", 0.02))}


def load_tables(data_dir: str | Path) -> dict[str, np.ndarray]:
    """The GAN's encoded tables written by the gan_data stage: {'train', 'holdout'}."""
    path = Path(data_dir) / TABLES
    if not path.is_file():
        raise DataError(path, "not found (run the gan_data stage: dvc repro gan_data)")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def load_gan_formulas(data_dir: str | Path, part: str = "train") -> list[str]:
    """The formulas behind ``load_tables(data_dir)[part]`` (the encoded ones, in the same order)."""
    path = Path(data_dir) / STATUS
    if not path.is_file():
        raise DataError(path, "not found (run the gan_data stage: dvc repro gan_data)")
    s = read_csv(path, keep_default_na=False)
    require_columns(s, ("part", "formula", "status"), path)
    return s.formula[(s.part == part) & (s.status != "unencodable")].tolist()
