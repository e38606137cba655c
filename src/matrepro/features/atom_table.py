"""The MatGAN composition table: a formula -> a binary (85, 8) array, and back.

Entry ``(e, k - 1)`` is 1 when element ``e`` (row order :data:`ELEMENTS`) occurs with exactly
``k`` atoms, ``k = 1 .. 8`` (Dan et al., npj Comput. Mater. 6, 84, 2020; MatGAN's
``function/one_hot_matrix.py`` builds the same array from integer counts). Every element row has
at most one 1; an all-zero row is an absent element.

Formulas are parsed strictly with pymatgen (:func:`features.chem.parse_formula`): unparseable text
or an unknown element raises :class:`DataError` naming file, row and field. A formula that parses
but that the table cannot hold is *unencodable* (status, reason), never an error.

Mapping a composition to counts (``map_counts``); ``f_i`` are the atomic fractions:

``integer`` (default; MatGAN, whose data are integer formulas)
    1. **exact**: the smallest total ``N`` (from the number of elements ``n`` up to ``8 n``)
       whose counts ``c_i = round(f_i N)`` reproduce every fraction (``|c_i / N - f_i| < 1e-9``)
       with every ``c_i`` in 1..8. Integer formulas therefore round-trip reduced by their gcd
       (Fe4O6 -> Fe2O3, C60 -> C); one whose reduced counts exceed 8 (Li12Al1) is not exact.
    2. **approximated**: otherwise the smallest ``N`` whose rounded counts are all in 1..8 and
       reproduce the composition within ``tol``: ``max_i |c_i / sum(c) - f_i| <= tol``. The error
       is measured on the composition the table actually holds (``c / sum(c)``, what
       :func:`decode` returns), which equals ``c / N`` whenever the counts add up to ``N``.
       No element is ever dropped (every count >= 1). Rounding is half-up (``floor(x + 0.5)``).
    3. **unencodable** otherwise ("count above 8 after mapping ..."), or when an element is not
       among the 85 ("element He outside the 85-element table").

``fraction_bins``
    The count of element ``i`` is the index (1-based) of the bin of ``f_i`` among 8 equal bins of
    (0, 1]: (0, 1/8] -> 1, (1/8, 2/8] -> 2, ... (7/8, 1] -> 8. Always encodable for elements in
    the table; status always ``approximated``, reason ``"fraction-binned"``.

``max_fraction_error`` is ``max_i |f_i - c_i / sum(c)|`` for both mappings (0 when exact, NaN
when unencodable).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import DataError
from .chem import parse_formula

# The 85 symbols of MatGAN's train_data/Periodic_Table/Periodic_Table.csv (originofmatter/MatGAN
# @ e36c74495bfc2fbebad9d561fb69867b4e7295a8), in that file's order: H .. Pu without the noble
# gases He, Ne, Ar, Kr, Rn (Xe is kept) and without Po, At, Fr, Ra.
ELEMENTS: tuple[str, ...] = (
    "H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca",
    "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Rb",
    "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",
    "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm",
    "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Ac", "Th",
    "Pa", "U", "Np", "Pu",
)
ELEMENT_INDEX: dict[str, int] = {s: i for i, s in enumerate(ELEMENTS)}
N_ELEMENTS = len(ELEMENTS)
MAX_COUNT = 8
TABLE_SHAPE = (N_ELEMENTS, MAX_COUNT)
MAPPINGS = ("integer", "fraction_bins")
STATUSES = ("exact", "approximated", "unencodable")
STATUS_COLUMNS = ["row", "formula", "status", "reason", "max_fraction_error"]

_EXACT = 1e-9


@dataclass(frozen=True)
class MappedFormula:
    """Counts per element (table order; None when unencodable), status, reason and the largest
    atomic-fraction error of the encoded composition."""
    counts: dict[str, int] | None
    status: str  # "exact" | "approximated" | "unencodable"
    reason: str
    max_fraction_error: float

    @property
    def formula(self) -> str | None:
        """The encoded composition as a formula string in table order ("Fe2O3"), None if unencodable."""
        return None if self.counts is None else _join(self.counts.items())


def _join(pairs) -> str:
    return "".join(s + (str(c) if c > 1 else "") for s, c in pairs)


def _fractions(formula, file, row, field) -> tuple[list[str], list[float]]:
    """(symbols, atomic fractions) in pymatgen's order; strict parse."""
    comp = parse_formula(formula, file=file, row=row, field=field)
    amounts = comp.get_el_amt_dict()
    total = sum(amounts.values())
    symbols = list(amounts)
    fr = [amounts[s] / total for s in symbols]
    if min(fr) <= 0:
        raise DataError(file, f"formula {formula!r} has a non-positive amount", row=row, field=field)
    return symbols, fr


def _error(fr, counts) -> float:
    s = sum(counts)
    return max(abs(f - c / s) for f, c in zip(fr, counts))


def _in_table_order(symbols, counts) -> dict[str, int]:
    return dict(sorted(zip(symbols, counts), key=lambda sc: ELEMENT_INDEX[sc[0]]))


def _integer(symbols, fr, tol, max_count) -> MappedFormula:
    n = len(fr)
    approx = None
    for total in range(n, max_count * n + 1):
        counts = [math.floor(f * total + 0.5) for f in fr]
        if min(counts) < 1 or max(counts) > max_count:
            continue
        if all(abs(c / total - f) < _EXACT for c, f in zip(counts, fr)):
            return MappedFormula(_in_table_order(symbols, counts), "exact", "", 0.0)
        if approx is None:
            err = _error(fr, counts)
            if err <= tol:
                approx = (counts, err)
    if approx is not None:
        counts, err = approx
        return MappedFormula(_in_table_order(symbols, counts), "approximated",
                             f"rounded to counts within tol {tol:g}", float(err))
    return MappedFormula(None, "unencodable",
                         f"count above {max_count} after mapping (no total of at most {max_count * n} atoms "
                         f"reproduces the fractions within tol {tol:g} with every count in 1..{max_count})",
                         float("nan"))


def _bins(symbols, fr, max_count) -> MappedFormula:
    counts = [min(max(math.ceil(f * max_count - _EXACT), 1), max_count) for f in fr]
    return MappedFormula(_in_table_order(symbols, counts), "approximated", "fraction-binned",
                         float(_error(fr, counts)))


def map_counts(formula: str, mapping: str = "integer", tol: float = 0.02, max_count: int = MAX_COUNT, *,
               file: str | Path | None = None, row: int | None = None, field: str = "formula") -> MappedFormula:
    """Counts (1..max_count) for each element of ``formula`` under ``mapping`` (module docstring).
    Unparseable formulas and unknown elements raise DataError(file, row=row, field=field)."""
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown table mapping {mapping!r}; known: {MAPPINGS}")
    symbols, fr = _fractions(formula, file, row, field)
    outside = [s for s in symbols if s not in ELEMENT_INDEX]
    if outside:
        return MappedFormula(None, "unencodable",
                             f"element {', '.join(outside)} outside the {N_ELEMENTS}-element table", float("nan"))
    if mapping == "integer":
        return _integer(symbols, fr, float(tol), int(max_count))
    return _bins(symbols, fr, int(max_count))


def _flat(mapped: MappedFormula) -> list[int]:
    """Flat indices (element * 8 + count - 1) of the ones of a mapped formula."""
    if mapped.counts is None:
        return []
    return [ELEMENT_INDEX[s] * MAX_COUNT + c - 1 for s, c in mapped.counts.items()]


def encode(mapped: MappedFormula) -> np.ndarray:
    """The (85, 8) uint8 table of a mapped formula (all zeros when unencodable)."""
    out = np.zeros(N_ELEMENTS * MAX_COUNT, np.uint8)
    out[_flat(mapped)] = 1
    return out.reshape(TABLE_SHAPE)


def encode_formulas(formulas, mapping: str = "integer", tol: float = 0.02, *,
                    file: str | Path | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """(N, 85, 8) uint8 tables and a status frame (row (1-based), formula, status, reason,
    max_fraction_error). Unencodable formulas get all-zero tables. Each distinct formula string
    is mapped once; a bad formula raises DataError naming ``file``, its first row and 'formula'."""
    formulas = list(formulas)
    cache: dict[str, tuple[MappedFormula, list[int]]] = {}
    status, reason, err = [], [], []
    rows_idx, flat_idx = [], []
    for i, f in enumerate(formulas):
        hit = cache.get(f)
        if hit is None:
            m = map_counts(f, mapping, tol, file=file, row=i + 1, field="formula")
            hit = cache[f] = (m, _flat(m))
        m, flat = hit
        status.append(m.status)
        reason.append(m.reason)
        err.append(m.max_fraction_error)
        rows_idx.extend([i] * len(flat))
        flat_idx.extend(flat)
    tables = np.zeros((len(formulas), N_ELEMENTS * MAX_COUNT), np.uint8)
    tables[np.asarray(rows_idx, np.int64), np.asarray(flat_idx, np.int64)] = 1
    frame = pd.DataFrame({"row": np.arange(1, len(formulas) + 1), "formula": formulas, "status": status,
                          "reason": reason, "max_fraction_error": np.asarray(err, np.float64)},
                         columns=STATUS_COLUMNS)
    return tables.reshape(len(formulas), *TABLE_SHAPE), frame


def decode_many(tables, threshold: float = 0.5) -> list[str | None]:
    """Formula strings of a stack of tables (shape (..., 85, 8), e.g. (N, 1, 85, 8) generator
    output): each element row whose maximum is >= ``threshold`` contributes count argmax + 1;
    None for a table with no such row. Symbols in table order, count 1 not written ("Fe2O3")."""
    t = np.asarray(tables, dtype=np.float32)
    if t.shape[-2:] != TABLE_SHAPE:
        raise ValueError(f"tables must end in shape {TABLE_SHAPE}, got {t.shape}")
    t = t.reshape(-1, *TABLE_SHAPE)
    present = t.max(axis=2) >= threshold
    counts = t.argmax(axis=2) + 1
    out: list[str | None] = []
    for p, c in zip(present, counts):
        idx = np.flatnonzero(p)
        out.append(_join((ELEMENTS[e], int(c[e])) for e in idx) if len(idx) else None)
    return out


def decode(table, threshold: float = 0.5) -> str | None:
    """Formula string of one (85, 8) table (see :func:`decode_many`), None when empty."""
    t = np.asarray(table)
    if t.shape != TABLE_SHAPE:
        raise ValueError(f"a table has shape {TABLE_SHAPE}, got {t.shape}")
    return decode_many(t[None], threshold)[0]


def composition_key(formula: str, *, file: str | Path | None = None, row: int | None = None,
                    field: str = "formula") -> str:
    """Canonical key of a composition (atomic fractions to 6 decimals, sorted by symbol), e.g.
    "Fe:0.400000,O:0.600000" for Fe2O3, Fe4O6 and Fe0.4O0.6 alike. Used for leak checks."""
    symbols, fr = _fractions(formula, file, row, field)
    return ",".join(f"{s}:{f:.6f}" for s, f in sorted(zip(symbols, fr)))


def composition_keys(formulas, *, file: str | Path | None = None, cache: dict | None = None,
                     field: str = "formula") -> list[str]:
    """:func:`composition_key` of each formula (1-based row in errors); ``cache`` (formula -> key)
    may be shared between calls."""
    cache = {} if cache is None else cache
    out = []
    for i, f in enumerate(formulas):
        k = cache.get(f)
        if k is None:
            k = cache[f] = composition_key(f, file=file, row=i + 1, field=field)
        out.append(k)
    return out
