"""The 12-neighbour-cut diagnostics (matrepro.papers.cgcnn.stability), on crystals counted by hand."""
from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from matrepro.features.crystal import CrystalGraph
from matrepro.papers.cgcnn.stability import cut_ambiguity, kept_sets_differ, perturbed


def perovskite(a=3.9) -> Structure:
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])


def test_cubic_perovskite_oxygen_cut_splits_a_mixed_shell():
    # O: 2 Ti at a/2, then 8 O and 4 Sr at a/sqrt2; keeping 12 splits that shell of 12 across sites.
    # Sr: 12 O at a/sqrt2, the 13th (Ti) is farther: no split. Ti: 6 O, then 8 Sr (one site): split,
    # but every candidate is the same site, so the kept sites are fixed.
    assert cut_ambiguity(perovskite(), 8.0, 12) == 3


def test_rock_salt_primitive_cut_is_not_ambiguous():
    # Na: 6 Cl, then 12 Na images of the one Na site: 6 of them are kept, all the same site
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    assert cut_ambiguity(nacl.get_primitive_structure(), 8.0, 12) == 0


def test_fewer_neighbours_than_the_cut_is_never_ambiguous():
    assert cut_ambiguity(perovskite(), 2.0, 12) == 0  # O: 2 Ti, Ti: 6 O, Sr: none


def test_perturbed_scales_only_the_lattice_by_one_plus_eps():
    s = perovskite()
    p = perturbed(s, 1e-12)
    assert np.allclose(p.lattice.matrix, s.lattice.matrix * (1 + 1e-12), rtol=0, atol=1e-15)
    assert not np.array_equal(p.lattice.matrix, s.lattice.matrix)
    assert p.species == s.species and np.array_equal(p.frac_coords, s.frac_coords)


def test_kept_sets_differ_ignores_order_but_not_membership():
    def g(idx):
        return CrystalGraph(np.zeros((2, 1), np.float32), np.array(idx), np.zeros((2, 3), np.float32))
    assert not kept_sets_differ(g([[0, 1, 1], [0, 0, 1]]), g([[1, 0, 1], [1, 0, 0]]))
    assert kept_sets_differ(g([[0, 1, 1], [0, 0, 1]]), g([[0, 0, 1], [0, 0, 1]]))


def test_summarise_counts_structures_and_finds_the_worst():
    import pandas as pd
    from matrepro.papers.cgcnn.stability import summarise
    df = pd.DataFrame({"id": ["a", "b", "c"], "atoms": [2, 5, 3], "ambiguous_cut_atoms": [0, 3, 1],
                       "order_changed": [True, True, False], "kept_changed": [False, True, False],
                       "abs_change_m": [0.0, 0.02, 2e-5]})
    s = summarise(df, eps=1e-16)
    assert (s["structures"], s["with_ambiguous_cut"], s["order_changed"], s["kept_changed"]) == (3, 2, 2, 1)
    assert s["per_checkpoint"] == [{"checkpoint": "m", "moved > 1e-5": 2, "moved > 0.01": 1,
                                    "max abs change (log10 GPa)": 0.02, "worst structure": "b"}]
