"""A composition model applied to a CSV of formulas: the part of ``matrepro predict`` that every
formula-input paper (lgdcnn, gan) shares.

A formula model keeps, beside its networks, the training formulas (``train_formulas.csv``) and a
card whose ``applicability.composition`` entry holds the calibrated distance threshold
(``features.applicability``). :class:`CompositionDomain` reloads that domain; :func:`predict_formulas`
reads the CSV, lets the model reject bad rows (each one goes to the errors table with file, row,
field and reason, and is not predicted), predicts the good ones and writes the output columns:

``prediction, spread, n_models, unit, nearest_train_l1, <model-specific columns>, unseen_elements, flags``

with the flags ``unseen_elements`` and ``far_from_training`` first, then the model's own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pandas as pd

from ..core.batch_input import RowErrors, read_table
from .applicability import NearestTrainDistance, elements_of, fraction_matrix, unseen_elements

TRAIN_FORMULAS = "train_formulas.csv"


def write_domain(folder, train: list[str], test: list[str], quantile: float) -> tuple[dict, dict]:
    """Save the training formulas in ``folder`` and calibrate the distance threshold on ``test``:
    the card's ``(training element coverage, applicability entries)``."""
    from pymatgen.core import Element

    pd.DataFrame({"formula": train}).to_csv(Path(folder) / TRAIN_FORMULAS, index=False)
    dist = NearestTrainDistance(fraction_matrix(train), metric="manhattan")
    dist.calibrate(fraction_matrix(test), quantile)
    elements = sorted(elements_of(train))
    coverage = {"elements": [Element.from_Z(z).symbol for z in elements], "n_elements": len(elements)}
    applicability = {"composition": {**dist.describe(), "distance": "L1 between atomic-fraction vectors, "
                                     "to the nearest training composition (0..2)"},
                     "unseen_elements": "elements absent from every training formula"}
    return coverage, applicability


class CompositionDomain:
    """The training compositions of a saved model (``write_domain``): the elements seen and the
    calibrated distance."""

    def __init__(self, folder, card: dict):
        train = pd.read_csv(Path(folder) / TRAIN_FORMULAS, dtype=str, keep_default_na=False).formula.tolist()
        self.seen = elements_of(train)
        comp = card["applicability"]["composition"]
        self.distance = NearestTrainDistance(fraction_matrix(train), comp["metric"], threshold=comp["threshold"],
                                             quantile=comp["quantile"])

    def columns(self, formulas: list[str]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """(nearest-training L1 distance, beyond-threshold mask, unseen element symbols) per formula."""
        if not formulas:
            return np.zeros(0), np.zeros(0, bool), []
        d, far = self.distance.far(fraction_matrix(formulas))
        return d, far, [unseen_elements(f, self.seen) for f in formulas]


class FormulaModel(Protocol):
    card: dict
    members: list
    domain: CompositionDomain

    def check(self, formula: str, file, row, errors: RowErrors):
        """Something truthy for a row the model can take, else a falsy value after ``errors.add``."""

    def predict(self, formulas: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, spread) over the members."""


def predict_formulas(model: FormulaModel, path,
                     extra: Callable[[list], tuple[dict, list[list[tuple[str, bool]]]]] | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, errors) for the formula CSV at ``path``.

    ``extra(checked)`` (optional) receives the truthy ``check`` results of the good rows and returns
    the model's own columns ({name: values}) and, per row, its own (flag, on) pairs."""
    df = read_table(path, ["formula"])
    errors = RowErrors()
    checked = [model.check(f, path, r, errors) for f, r in zip(df["formula"], df["row"])]
    ok = np.array([bool(c) for c in checked], dtype=bool)
    good = df[ok].reset_index(drop=True)
    checked = [c for c in checked if c]
    formulas = good["formula"].tolist()
    mean, spread = model.predict(formulas) if formulas else (np.zeros(0), np.zeros(0))
    d, far, unseen = model.domain.columns(formulas)
    cols, own_flags = extra(checked) if extra is not None else ({}, [[] for _ in formulas])
    out = good.copy()
    out["prediction"] = mean
    out["spread"] = spread
    out["n_models"] = len(model.members)
    out["unit"] = model.card["unit"]
    out["nearest_train_l1"] = np.round(d, 4)
    for name, values in cols.items():
        out[name] = values
    out["unseen_elements"] = [" ".join(u) for u in unseen]
    out["flags"] = [";".join(f for f, on in [("unseen_elements", bool(u)), ("far_from_training", bool(x)), *own]
                             if on)
                    for u, x, own in zip(unseen, far, own_flags)]
    return out, errors.frame()
