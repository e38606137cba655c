"""CECV, the Chemical Environment Clustering (or Classification) Vector of L-G-DCNN.

For each probe compound (every test formula that contains the probe element), the per-element
outputs of a chosen layer (``model.element_features``: the last DCNN block of L-G-DCNN, the BiLSTM
output of the LSTM reference) form an n x d matrix. Each of the d feature columns is z-scored
across the n element rows, and the n x n Pearson correlation matrix between the element rows is
the compound's element feature matrix (EFM). Compounds are grouped by n; within a group they are
clustered greedily at each threshold, and CECV(thr) is the total number of clusters over the
chosen n values.

Choices (see data/deviations.yaml):

* Greedy clustering is the clean reading of the paper's description: the first unclustered
  compound (file order) is the reference; every unclustered compound whose EFM differs from it by
  at most ``thr`` in every entry joins its cluster; repeat; a single leftover is one cluster. Each
  compound belongs to exactly one cluster. The authors' code differs in two ways (quirks 8 and 9
  of the paper card): for n = 3 it compares absolute values with a strict ``<``, and its outer loop
  may reuse an already-clustered compound as a reference. ``abs_n3=True`` reproduces the first;
  the second is not reproduced (it can count a cluster twice).
* A feature column that is constant across the n elements has no z-score; it is set to 0, as
  scikit-learn's StandardScaler does (it still counts as an entry of every row, so the result is
  not the same as dropping the column). A row that is constant after standardisation (norm below
  1e-9) correlates 0 with every other row. Element order is the formula's order of appearance.
* n = 2 is excluded by default: z-scored rows of a 2-element compound are exact negatives, so every
  binary EFM is [[1, -1], [-1, 1]] and carries no information.
"""
from __future__ import annotations

import numpy as np
import torch

from ...features.composition import CompositionBatch


def efm(features: np.ndarray) -> np.ndarray:
    """n x d element features -> n x n Pearson correlation of the column-standardised rows."""
    f = np.asarray(features, np.float64)
    sd = f.std(axis=0)
    z = np.where(sd > 0, (f - f.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    zc = z - z.mean(axis=1, keepdims=True)
    norm = np.sqrt((zc ** 2).sum(axis=1))
    flat = norm < 1e-9
    zc[flat] = 0.0
    c = (zc @ zc.T) / np.outer(np.where(flat, 1.0, norm), np.where(flat, 1.0, norm))
    np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)


def greedy_clusters(mats: list[np.ndarray] | np.ndarray, thr: float, abs_values: bool = False,
                    strict: bool = False) -> int:
    """Number of clusters of same-shape matrices under the greedy max-abs-difference rule."""
    if len(mats) == 0:
        return 0
    m = np.stack([np.abs(x) if abs_values else np.asarray(x) for x in mats]).reshape(len(mats), -1)
    remaining = np.arange(len(m))
    clusters = 0
    while len(remaining) > 1:
        ref = m[remaining[0]]
        d = np.abs(m[remaining] - ref).max(axis=1)
        member = d < thr if strict else d <= thr
        member[0] = True
        remaining = remaining[~member]
        clusters += 1
    return clusters + len(remaining)


def cecv(efms_by_n: dict[int, list[np.ndarray]], thresholds, n_values=(3, 4, 5, 6, 7),
         abs_n3: bool = False) -> list[int]:
    """CECV(thr) = sum over n of the number of greedy clusters of the n-element EFMs."""
    out = []
    for thr in thresholds:
        total = 0
        for n in n_values:
            faithful = abs_n3 and n == 3
            total += greedy_clusters(efms_by_n.get(n, []), thr, abs_values=faithful, strict=faithful)
        out.append(total)
    return out


@torch.no_grad()
def element_feature_matrices(model, batch: CompositionBatch, batch_size: int = 512) -> list[np.ndarray]:
    """The per-element features of each compound (real elements only, formula order), n x d."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(batch), batch_size):
        b = batch.subset(slice(i, i + batch_size)).to(device)
        feats = model.element_features(b.elements, b.fractions).cpu().numpy()
        n = (b.elements != 0).sum(dim=1).cpu().numpy()
        out += [feats[j, :n[j]] for j in range(len(n))]
    return out


def probe_mask(batch: CompositionBatch, z_probe: int) -> np.ndarray:
    return (batch.elements == z_probe).any(dim=1).numpy()


def model_cecv(model, batch: CompositionBatch, thresholds, n_values=(3, 4, 5, 6, 7),
               abs_n3: bool = False) -> tuple[list[int], dict[int, int]]:
    """(CECV, number of compounds per n) of one trained model on a probe batch."""
    by_n: dict[int, list[np.ndarray]] = {}
    for f in element_feature_matrices(model, batch):
        by_n.setdefault(len(f), []).append(efm(f))
    return cecv(by_n, thresholds, n_values, abs_n3), {n: len(v) for n, v in sorted(by_n.items())}
