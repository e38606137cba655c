"""Composition-only inputs (L-G-DCNN / CrabNet style): formula -> element slots + fractions.

Each formula becomes ``n_slots`` element slots holding the atomic number (0 = padding) and the
atomic fraction (amount / total, 0 for padding). Element order is the order of appearance in the
formula string, as pymatgen's parser returns it. Element tables (mat2vec, one-hot) are indexed by
atomic number with an all-zero row 0 for padding.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Element

from ..core.errors import DataError
from ..core.validate import read_csv, require_columns, require_finite
from .chem import parse_formula

log = logging.getLogger(__name__)

MAX_SLOTS = 16  # CrabNet's cap on the number of elements per formula
MAX_Z = 118


def parse_fractions(formula: str, *, file=None, row=None, field="formula") -> list[tuple[int, float]]:
    """[(Z, atomic fraction), ...] in formula order; bad formulas raise DataError."""
    comp = parse_formula(formula, file=file, row=row, field=field)
    total = comp.num_atoms
    out = [(int(el.Z), float(amt) / total) for el, amt in comp.items()]
    for z, frac in out:
        if not (0 < frac <= 1):
            raise DataError(file, f"formula {formula!r}: element Z={z} has fraction {frac}", row=row, field=field)
    return out


@dataclass
class CompositionBatch:
    """Element slots, fractions and (z-scored or raw) targets of N formulas."""
    elements: torch.Tensor  # (N, L) long, 0 = padding
    fractions: torch.Tensor  # (N, L) float
    y: torch.Tensor  # (N,) float

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> "CompositionBatch":
        return CompositionBatch(self.elements[idx], self.fractions[idx], self.y[idx])

    def to(self, device) -> "CompositionBatch":
        return CompositionBatch(self.elements.to(device), self.fractions.to(device), self.y.to(device))

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.elements, self.fractions

    @property
    def n_slots(self) -> int:
        return self.elements.shape[1]


def encode_formulas(formulas, n_slots: int | None = None, *, file=None) -> tuple[np.ndarray, np.ndarray]:
    """(Z array, fraction array) of shape (N, n_slots). ``n_slots`` defaults to the largest element
    count (capped at 16); a formula with more elements than slots is an error, not a truncation."""
    cache: dict[str, list[tuple[int, float]]] = {}
    parsed = []
    for i, f in enumerate(formulas):
        if f not in cache:
            cache[f] = parse_fractions(f, file=file, row=i + 1)
        parsed.append(cache[f])
    longest = max((len(p) for p in parsed), default=1)
    n_slots = n_slots or min(longest, MAX_SLOTS)
    if longest > n_slots:
        i = next(i for i, p in enumerate(parsed) if len(p) > n_slots)
        raise DataError(file, f"formula {formulas[i]!r} has {len(parsed[i])} elements; only {n_slots} slots",
                        row=i + 1, field="formula")
    z = np.zeros((len(parsed), n_slots), np.int64)
    frac = np.zeros((len(parsed), n_slots), np.float32)
    for i, p in enumerate(parsed):
        for j, (el, fr) in enumerate(p):
            z[i, j], frac[i, j] = el, fr
    return z, frac


def load_split_csv(path: str | Path, target: str = "target") -> pd.DataFrame:
    """A CrabNet-style ``formula,target`` file, validated (missing columns, NaN/inf targets).

    The formula column is read as text with no missing-value parsing: "NaN" is a real formula
    (sodium nitride, Na1 N1; e.g. mp_e_hull/train.csv) that pandas would otherwise turn into NaN."""
    df = read_csv(path, dtype={"formula": str}, keep_default_na=False,
                  na_values={target: ["", "NaN", "nan", "NA", "N/A", "null"]})
    require_columns(df, ["formula", target], path)
    require_finite(df, [target], path)
    return df


def make_batch(df: pd.DataFrame, n_slots: int, *, target: str = "target", file=None) -> CompositionBatch:
    z, frac = encode_formulas(df["formula"].tolist(), n_slots, file=file)
    return CompositionBatch(torch.as_tensor(z), torch.as_tensor(frac),
                            torch.as_tensor(df[target].to_numpy(np.float32)))


def element_table(path: str | Path) -> np.ndarray:
    """An element-property CSV (first column the element symbol) as a (119, d) array indexed by Z,
    row 0 all zeros for padding. Elements absent from the file keep zero rows (logged)."""
    df = pd.read_csv(path)
    sym_col = df.columns[0]
    values = df.drop(columns=[sym_col]).to_numpy(np.float32)
    table = np.zeros((MAX_Z + 1, values.shape[1]), np.float32)
    for i, sym in enumerate(df[sym_col]):
        try:
            z = Element(str(sym).strip()).Z
        except ValueError as exc:
            raise DataError(path, f"unknown element symbol {sym!r}", row=i + 1, field=sym_col) from exc
        table[z] = values[i]
    missing = [z for z in range(1, MAX_Z + 1) if not table[z].any()]
    if missing:
        log.info("%s: %d elements without a row (zero vectors): Z=%s", Path(path).name, len(missing), missing[:10])
    return table


class TargetScaler:
    """z-score with the training mean and std."""

    def __init__(self, y):
        y = np.asarray(y, np.float64)
        self.mean, self.std = float(y.mean()), float(y.std())
        if not np.isfinite(self.std) or self.std == 0:
            self.std = 1.0

    def scale(self, y):
        return (np.asarray(y, np.float64) - self.mean) / self.std

    def unscale(self, z):
        return np.asarray(z, np.float64) * self.std + self.mean


@dataclass
class FeatureBatch:
    """A feature matrix and targets (the Magpie baselines)."""
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx) -> "FeatureBatch":
        return FeatureBatch(self.x[idx], self.y[idx])

    def to(self, device) -> "FeatureBatch":
        return FeatureBatch(self.x.to(device), self.y.to(device))

    def inputs(self) -> tuple[torch.Tensor]:
        return (self.x,)


def magpie_features(formulas, n_jobs: int = 1, cache: dict | None = None) -> np.ndarray:
    """matminer's ElementProperty 'magpie' preset (132 features) for each formula; computed once
    per distinct formula (``cache`` may be shared between calls)."""
    import warnings

    from matminer.featurizers.composition import ElementProperty
    from pymatgen.core import Composition

    cache = {} if cache is None else cache
    todo = sorted(set(formulas) - set(cache))
    if todo:
        ep = ElementProperty.from_preset("magpie")
        ep.set_n_jobs(n_jobs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = ep.featurize_many([Composition(f) for f in todo], pbar=False)
        for f, r in zip(todo, rows):
            cache[f] = np.asarray(r, np.float64)
    return np.stack([cache[f] for f in formulas])
