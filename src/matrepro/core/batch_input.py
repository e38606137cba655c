"""User input for batch prediction. A bad row is reported, never guessed: it goes to an error list
(file, row, field, reason) while the good rows go on. A problem with the whole input (missing
file, empty file, missing column) stops with one :class:`InputError`.

Tables are read as UTF-8 with or without a byte-order mark, with LF or CRLF line ends, every
column as text (so the formula "NaN", sodium nitride, stays a formula). Row numbers are 1-based
data rows (the header is row 0), as a spreadsheet shows them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import MatreproError

ERROR_COLUMNS = ["file", "row", "field", "reason"]


class InputError(MatreproError):
    """The input as a whole cannot be used."""


class RowErrors:
    """Collects the rows that could not be predicted."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, file, row, field, reason) -> None:
        self.rows.append({"file": str(file), "row": row, "field": field, "reason": str(reason)})

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=ERROR_COLUMNS)


def read_table(path: str | Path, required: list[str]) -> pd.DataFrame:
    """A CSV of user rows with a ``row`` column added (1-based data row). Column names are
    stripped of spaces; every value is text."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; this model reads one CSV file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    if df.empty:
        raise InputError(f"{path}: no data rows")
    df = df.apply(lambda col: col.str.strip())
    df.insert(0, "row", range(1, len(df) + 1))
    return df


STRUCTURE_SUFFIXES = (".cif", ".vasp", ".poscar")


def structure_files(path: str | Path) -> list[Path]:
    """One structure file, or every CIF/POSCAR file of a folder (sorted; POSCAR/CONTCAR by name)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and (
        p.suffix.lower() in STRUCTURE_SUFFIXES or p.name.upper().startswith(("POSCAR", "CONTCAR"))))
    if not files:
        raise InputError(f"{path}: no .cif, .vasp, POSCAR or CONTCAR files in this folder")
    return files
