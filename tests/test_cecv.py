"""CECV (paper card, "CECV algorithm"): element feature matrices and greedy threshold clustering,
checked on hand-made inputs."""
import numpy as np
import pytest
import torch

from matrepro.features.composition import CompositionBatch, encode_formulas
from matrepro.models import build_model
from matrepro.models import composition as _composition  # noqa: F401  (registers the composition models)
from matrepro.papers.lgdcnn.cecv import cecv, efm, element_feature_matrices, greedy_clusters, model_cecv, probe_mask

F = np.array([[1.0, 2.0, 0.0, 3.0],
              [2.0, 0.0, 1.0, 5.0],
              [4.0, 1.0, 3.0, 4.0]])


def _zscore(f):
    return (f - f.mean(axis=0)) / f.std(axis=0)


def test_efm_properties_and_one_entry_by_hand():
    c = efm(F)
    assert c.shape == (3, 3)
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(np.diag(c), 1.0)
    assert (np.abs(c) <= 1).all()
    # by hand: z-score each column across the 3 rows, then Pearson between rows 0 and 1
    z = _zscore(F)
    a, b = z[0] - z[0].mean(), z[1] - z[1].mean()
    assert c[0, 1] == pytest.approx((a @ b) / np.sqrt((a @ a) * (b @ b)))
    np.testing.assert_allclose(c, np.corrcoef(z), atol=1e-12)


def test_efm_column_0_of_the_hand_example():
    # column 0 = (1, 2, 4): mean 7/3, population std sqrt(14/9)
    z0 = (np.array([1.0, 2.0, 4.0]) - 7 / 3) / np.sqrt(14 / 9)
    np.testing.assert_allclose(_zscore(F)[:, 0], z0)


def test_efm_ignores_column_scale_and_offset():
    G = F * np.array([10.0, 0.5, 3.0, 2.0]) + np.array([-4.0, 1.0, 100.0, 0.0])
    np.testing.assert_allclose(efm(G), efm(F), atol=1e-12)


def test_efm_constant_column_is_zero_after_standardising():
    """A constant feature column has no z-score and is set to 0 (sklearn StandardScaler does the same).
    Note: the zero column still counts as an entry of every row in the row-wise Pearson step, so the
    EFM is NOT the same as with the column dropped (see the report)."""
    G = np.c_[F, np.full(3, 7.0)]
    c = efm(G)
    assert np.isfinite(c).all()
    np.testing.assert_allclose(np.diag(c), 1.0)
    np.testing.assert_allclose(c, np.corrcoef(np.c_[_zscore(F), np.zeros(3)]), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_efm_of_any_binary_is_minus_one(seed):
    f = np.random.default_rng(seed).normal(size=(2, 7))
    np.testing.assert_allclose(efm(f), [[1.0, -1.0], [-1.0, 1.0]], atol=1e-12)


def _m(*values):
    return [np.array([[v]]) for v in values]


def test_greedy_clusters_by_hand():
    mats = _m(0.0, 0.08, 0.15, 0.5)
    # thr 0.1: {0, 0.08}, {0.15}, leftover {0.5}
    assert greedy_clusters(mats, 0.1) == 3
    # thr 0.5: 0.5 - 0 = 0.5 <= 0.5 -> one cluster
    assert greedy_clusters(mats, 0.5) == 1
    assert greedy_clusters(mats, 0.49) == 2
    # thr 0: every distinct matrix is its own cluster; equal ones share one
    assert greedy_clusters(mats, 0.0) == 4
    assert greedy_clusters(_m(0.0, 0.3, 0.0, 0.3, 0.3), 0.0) == 2


def test_greedy_clusters_every_entry_must_be_within_thr():
    a = np.array([[1.0, 0.2], [0.2, 1.0]])
    b = np.array([[1.0, 0.25], [0.25, 1.0]])
    c = np.array([[1.0, -0.2], [-0.2, 1.0]])
    assert greedy_clusters([a, b, c], 0.1) == 2
    assert greedy_clusters([a, b, c], 0.4) == 1
    assert greedy_clusters(np.stack([a, b, c]), 0.1) == 2  # an array of matrices works too


def test_greedy_clusters_single_and_empty():
    assert greedy_clusters([], 0.1) == 0
    assert greedy_clusters(_m(0.3), 0.1) == 1


def test_greedy_clustering_depends_on_order():
    # the reference is the first remaining matrix (file order)
    assert greedy_clusters(_m(0.0, 0.08, 0.15), 0.1) == 2  # ref 0: {0, .08}; then {.15}
    assert greedy_clusters(_m(0.08, 0.0, 0.15), 0.1) == 1  # ref .08 reaches both


def test_greedy_clusters_are_not_transitive():
    # only the reference's distance counts: 0.1 is within thr of both 0 and 0.2, but it joins the
    # cluster of the reference 0, and 0.2 (0.2 away from 0) starts its own cluster
    assert greedy_clusters(_m(0.0, 0.1, 0.2), 0.1) == 2
    assert greedy_clusters(_m(0.1, 0.0, 0.2), 0.1) == 1


def test_strict_and_absolute_comparison():
    assert greedy_clusters(_m(0.0, 0.25), 0.25) == 1
    assert greedy_clusters(_m(0.0, 0.25), 0.25, strict=True) == 2
    assert greedy_clusters(_m(0.2, -0.2), 0.1) == 2
    assert greedy_clusters(_m(0.2, -0.2), 0.1, abs_values=True) == 1


def test_cecv_sums_over_n_values():
    by_n = {3: _m(0.0, 0.05, 0.5), 4: _m(0.0, 1.0, 2.0, 3.0), 2: _m(0.0, 1.0), 8: _m(0.0, 1.0)}
    # thr 0.1: n=3 -> 2, n=4 -> 4; n=2 and n=8 are not in the default n = 3..7
    assert cecv(by_n, [0.1]) == [6]
    assert cecv(by_n, [0.1, 1.0]) == [6, 1 + 2]
    assert cecv(by_n, [0.1], n_values=(2, 3)) == [2 + 2]
    assert cecv({}, [0.05, 0.1]) == [0, 0]


def test_abs_n3_applies_to_n3_only_with_strict_comparison():
    by_n = {3: _m(0.2, -0.2), 4: _m(0.2, -0.2)}
    assert cecv(by_n, [0.1]) == [2 + 2]
    assert cecv(by_n, [0.1], abs_n3=True) == [1 + 2]
    edge = {3: _m(0.0, 0.25), 4: _m(0.0, 0.25)}  # difference exactly thr
    assert cecv(edge, [0.25]) == [1 + 1]
    assert cecv(edge, [0.25], abs_n3=True) == [2 + 1]  # n=3: strict <


def test_element_feature_matrices_keep_real_elements_in_formula_order():
    torch.manual_seed(0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table = np.random.default_rng(0).random((119, 8)).astype(np.float32)
        table[0] = 0
        model = build_model("lstm_ref", element_table=table, d_model=8)
        z, frac = encode_formulas(["SiO2", "Fe", "LiAlSiO4", "NaCl"], 4)
        batch = CompositionBatch(torch.as_tensor(z), torch.as_tensor(frac), torch.zeros(4))
        mats = element_feature_matrices(model, batch, batch_size=3)
        assert [m.shape for m in mats] == [(2, 8), (1, 8), (4, 8), (2, 8)]
        with torch.no_grad():
            full = model.element_features(batch.elements, batch.fractions).numpy()
        np.testing.assert_allclose(mats[2], full[2], rtol=1e-6)
        assert probe_mask(batch, 14).tolist() == [True, False, True, False]
        counts, per_n = model_cecv(model, batch.subset(np.flatnonzero(probe_mask(batch, 14))), [0.05])
        assert per_n == {2: 1, 4: 1} and counts == [1]  # n = 2 excluded by default
    finally:
        torch.set_num_threads(n)
