"""Train/validation/test splits, stored as data (one label per row), never re-derived silently."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from .errors import MatreproError

LABELS = ("train", "val", "test")


def _check(fractions) -> tuple[float, float, float]:
    tr, va, te = (float(f) for f in fractions)
    if min(tr, va, te) <= 0 or abs(tr + va + te - 1) > 1e-9:
        raise MatreproError(f"split fractions must be positive and sum to 1, got {fractions}")
    return tr, va, te


def random_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Row-wise random split (the paper-style split)."""
    _, va, te = _check(fractions)
    idx = np.arange(n)
    rest, test = train_test_split(idx, test_size=te, random_state=seed)
    train, val = train_test_split(rest, test_size=va / (1 - te), random_state=seed + 1)
    out = np.empty(n, dtype=object)
    out[train], out[val], out[test] = "train", "val", "test"
    return out


def group_split(groups, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Split so that all rows of a group land on one side (fractions are of groups, not rows)."""
    _, va, te = _check(fractions)
    groups = np.asarray(groups)
    idx = np.arange(len(groups))
    rest, test = next(GroupShuffleSplit(1, test_size=te, random_state=seed).split(idx, groups=groups))
    sub = next(GroupShuffleSplit(1, test_size=va / (1 - te), random_state=seed + 1)
               .split(rest, groups=groups[rest]))
    out = np.empty(len(groups), dtype=object)
    out[test] = "test"
    out[rest[sub[0]]] = "train"
    out[rest[sub[1]]] = "val"
    return out


def group_leaks(groups, labels) -> list:
    """Groups that appear in more than one part of a split (empty when the split is clean)."""
    seen: dict = {}
    for g, lab in zip(groups, labels):
        seen.setdefault(g, set()).add(lab)
    return [g for g, labs in seen.items() if len(labs) > 1]
