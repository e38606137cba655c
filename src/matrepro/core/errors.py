"""Errors raised on bad input. Every message names the file, the row and the field."""
from __future__ import annotations

from pathlib import Path


class MatreproError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(MatreproError, ValueError):
    """A raw or processed table is malformed.

    ``row`` is the 1-based data row as a spreadsheet user sees it (the header is row 0),
    ``field`` the column name. Either may be None when the problem is file-wide.
    """

    def __init__(self, file: str | Path | None, message: str, *, row: int | None = None,
                 field: str | None = None):
        self.file = str(file) if file is not None else None
        self.row = row
        self.field = field
        self.message = message
        where = [f"file {self.file}" if self.file else "input"]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")

    def __reduce__(self):  # picklable (worker processes send it back to the parent)
        return (_rebuild_data_error, (type(self), self.file, self.message, self.row, self.field))


def _rebuild_data_error(cls, file, message, row, field):
    return cls(file, message, row=row, field=field)


class RegistryError(MatreproError):
    """A registered raw file could not be fetched or failed its hash check."""


class MissingAPIKeyError(MatreproError):
    """The Materials Project API key is not set."""
