"""Composition parsing with pymatgen, with errors that name file, row and field."""
from __future__ import annotations

import warnings
from pathlib import Path

from pymatgen.core import Composition, Element

from ..core.errors import DataError

# Valence of each working ion (charge carried per inserted ion), as used by the Materials Project.
ION_VALENCE = {"Li": 1, "Na": 1, "K": 1, "Rb": 1, "Cs": 1, "Mg": 2, "Ca": 2, "Zn": 2, "Al": 3, "Y": 3}


def parse_formula(formula, *, file: str | Path | None = None, row: int | None = None,
                  field: str | None = None) -> Composition:
    """Parse a formula string; unparseable text or an unknown element raises DataError."""
    if not isinstance(formula, str) or not formula.strip():
        raise DataError(file, f"empty or non-text formula {formula!r}", row=row, field=field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            comp = Composition(formula.strip())
    except Exception as exc:  # pymatgen raises ValueError / KeyError / CompositionError
        raise DataError(file, f"cannot parse formula {formula!r}: {exc}", row=row, field=field) from exc
    for el in comp.elements:
        if not isinstance(el, Element):  # DummySpecies: letters pymatgen accepted but no element
            raise DataError(file, f"unknown element {el!s} in formula {formula!r}", row=row, field=field)
    if comp.num_atoms <= 0:
        raise DataError(file, f"formula {formula!r} has no atoms", row=row, field=field)
    return comp
