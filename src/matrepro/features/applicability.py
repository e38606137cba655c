"""Applicability of a trained model to new inputs: the checks ``matrepro predict`` and the cgcnn
screening attach to every prediction as flags (a flag never removes a row; it says why a number
may be an extrapolation).

Compositions
    ``unseen_elements``: elements of the input that no training row contains (the model never saw
    their embedding in context). ``fraction_matrix`` turns formulas into atomic-fraction vectors
    (one column per element, Z = 1..118); ``NearestTrainDistance`` measures the L1 distance from
    each input to its nearest training composition (0 = a training composition, 2 = no element in
    common). Calibration: the threshold is a quantile (default 0.95) of the same distance over the
    test split, so by construction 5 % of the test rows lie beyond it; an input beyond it is
    flagged ``far_from_training``.

Crystals
    ``partial_occupancy`` (disordered sites: CGCNN needs one element per site), and
    ``fragment_dimensionality``: the Larsen et al. (Phys. Rev. Mater. 3, 034003, 2019) dimension of
    the bonded network (pymatgen's ``get_dimensionality_larsen`` on ``CrystalNN`` bonds). 0 means
    the crystal is made of isolated molecules or atoms (N2, I2, a single atom in a large box);
    such a "crystal" is a molecular solid whose elastic response is set by van der Waals contacts
    that a CGCNN trained on bonded inorganic crystals never saw. ``isolated_sites``: sites with no
    other atom within a cutoff. Distances in a model's learned crystal-feature space use the same
    ``NearestTrainDistance`` (Euclidean).

Ranking
    ``lower_confidence_bound`` (mean - k * spread) ranks ensemble predictions so that a candidate
    the ensemble disagrees on falls behind one it agrees on.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import DataError
from .composition import parse_fractions

N_ELEMENTS = 118


def fraction_matrix(formulas, *, file=None, rows=None, field: str = "formula") -> np.ndarray:
    """(n, 118) atomic fractions (column Z-1); a bad formula raises DataError naming file, row and field."""
    out = np.zeros((len(formulas), N_ELEMENTS), dtype=np.float32)
    for i, f in enumerate(formulas):
        row = rows[i] if rows is not None else i + 1
        for z, frac in parse_fractions(f, file=file, row=row, field=field):
            if not 1 <= z <= N_ELEMENTS:
                raise DataError(file, f"formula {f!r}: element Z={z} outside 1..{N_ELEMENTS}", row=row, field=field)
            out[i, z - 1] += frac
    return out


def elements_of(formulas) -> set[int]:
    """Atomic numbers present in any of ``formulas``."""
    return {z for f in formulas for z, _ in parse_fractions(f)}


def unseen_elements(formula: str, seen: set[int]) -> list[str]:
    """Symbols of the elements of ``formula`` that are not in ``seen`` (atomic numbers), in formula order."""
    from pymatgen.core import Element

    return [Element.from_Z(z).symbol for z, _ in parse_fractions(formula) if z not in seen]


class NearestTrainDistance:
    """Distance from each input to its nearest training point (``metric``: 'manhattan' for
    composition fractions, 'euclidean' for learned features), and a threshold calibrated on a
    held-out split."""

    def __init__(self, train: np.ndarray, metric: str = "manhattan", threshold: float | None = None,
                 quantile: float | None = None):
        from sklearn.neighbors import NearestNeighbors

        train = np.asarray(train, dtype=np.float32)
        if train.ndim != 2 or len(train) == 0:
            raise ValueError(f"NearestTrainDistance needs a non-empty 2-D training matrix, got shape {train.shape}")
        self.metric, self.threshold, self.quantile = metric, threshold, quantile
        self._nn = NearestNeighbors(n_neighbors=1, metric=metric, algorithm="brute").fit(train)

    def distances(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        out = [self._nn.kneighbors(x[i:i + chunk])[0][:, 0] for i in range(0, len(x), chunk)]
        return np.concatenate(out) if out else np.zeros(0)

    def calibrate(self, held_out: np.ndarray, quantile: float = 0.95) -> float:
        """Set the threshold to the ``quantile`` of the held-out rows' distances; returns it."""
        if not 0 < quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {quantile}")
        self.threshold = float(np.quantile(self.distances(held_out), quantile))
        self.quantile = float(quantile)
        return self.threshold

    def far(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, beyond-threshold mask)."""
        if self.threshold is None:
            raise ValueError("NearestTrainDistance: calibrate() first (no threshold)")
        d = self.distances(x)
        return d, d > self.threshold

    def describe(self) -> dict:
        return {"metric": self.metric, "threshold": self.threshold, "quantile": self.quantile,
                "calibrated_on": "test split: nearest-training-row distance"}


def lower_confidence_bound(mean, spread, k: float) -> np.ndarray:
    """mean - k * spread (spread: the ensemble's standard deviation; 0 for a single model)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return np.asarray(mean, dtype=float) - k * np.nan_to_num(np.asarray(spread, dtype=float))


# ----------------------------------------------------------------------------------- crystals
def partial_occupancy(structure) -> list[int]:
    """Indices of the sites with more than one species or an occupancy below 1."""
    return [i for i, s in enumerate(structure) if not s.is_ordered]


def isolated_sites(structure, cutoff: float) -> list[int]:
    """Indices of the sites with no other atom (periodic images included) within ``cutoff`` Å."""
    if len(structure) == 0:
        return []
    nbrs = structure.get_all_neighbors(cutoff)
    return [i for i, n in enumerate(nbrs) if not n]


def bonded_fragments(structure) -> dict:
    """The bonded network (``CrystalNN`` bonds): its Larsen dimension (0-3; 0 = isolated molecules
    or atoms), the number of components and how many of them are single atoms. Raises DataError for
    a disordered structure (bonds are undefined)."""
    import warnings

    from pymatgen.analysis.dimensionality import get_dimensionality_larsen, get_structure_components
    from pymatgen.analysis.local_env import CrystalNN

    if partial_occupancy(structure):
        raise DataError(None, "bonded fragments of a disordered structure")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns about missing oxidation states
        bonded = CrystalNN().get_bonded_structure(structure)
        comps = get_structure_components(bonded, inc_orientation=False)
    return {"dimensionality": int(get_dimensionality_larsen(bonded)), "components": len(comps),
            "isolated_atoms": sum(1 for c in comps if len(c["structure_graph"].structure) == 1)}


def fragment_dimensionality(structure) -> int:
    """Larsen dimension (0-3) of the CrystalNN-bonded network; 0 = isolated molecules or atoms."""
    return bonded_fragments(structure)["dimensionality"]
