"""The MatGAN 85 x 8 composition table: element list, both mappings, encode/decode, keys."""
import math

import numpy as np
import pytest

from matrepro.core.errors import DataError
from matrepro.features import atom_table as at
from matrepro.features.atom_table import ELEMENTS, composition_key, decode, decode_many, encode, map_counts


def _ones(table):
    return {(ELEMENTS[e], k + 1) for e, k in zip(*np.nonzero(table))}


def test_elements_are_matgans_85():
    assert len(ELEMENTS) == 85 and len(set(ELEMENTS)) == 85
    assert ELEMENTS[:3] == ("H", "Li", "Be") and ELEMENTS[-3:] == ("U", "Np", "Pu")
    assert "Xe" in ELEMENTS and ELEMENTS.index("Xe") == ELEMENTS.index("I") + 1
    for absent in ("He", "Ne", "Ar", "Kr", "Rn", "Po", "At", "Fr", "Ra"):
        assert absent not in ELEMENTS
    assert ELEMENTS.index("Bi") + 1 == ELEMENTS.index("Ac")  # Po..Ra skipped


def test_fe2o3_table_and_round_trip():
    m = map_counts("Fe2O3")
    assert m.status == "exact" and m.counts == {"O": 3, "Fe": 2} and m.max_fraction_error == 0
    t = encode(m)
    assert t.shape == (85, 8) and t.dtype == np.uint8 and t.sum() == 2
    assert _ones(t) == {("Fe", 2), ("O", 3)}
    assert t[ELEMENTS.index("Fe"), 1] == 1 and t[ELEMENTS.index("O"), 2] == 1
    out = decode(t)
    assert out == "O3Fe2"  # table order (O before Fe), count 1 not written
    assert map_counts(out) == m and composition_key(out) == composition_key("Fe2O3")


def test_integer_formulas_reduce_exactly():
    assert map_counts("Fe4O6").counts == {"O": 3, "Fe": 2} and map_counts("Fe4O6").status == "exact"
    assert map_counts("NaCl").counts == {"Na": 1, "Cl": 1} and map_counts("NaCl").status == "exact"
    assert map_counts("C60").counts == {"C": 1}
    fe = map_counts("Fe0.5O0.5")
    assert fe.status == "exact" and fe.counts == {"O": 1, "Fe": 1}


def test_count_above_8_is_unencodable_or_approximated_within_tol():
    # Li12Al: Al >= 1 needs N >= 7, Li <= 8 needs N <= 9; best Li8Al1 -> Li 8/9 vs 12/13: error 0.034 > 0.02
    m = map_counts("Li12Al1")
    assert m.status == "unencodable" and m.counts is None and m.reason.startswith("count above 8 after mapping")
    assert math.isnan(m.max_fraction_error) and encode(m).sum() == 0
    # Li9Al: not exact (Li9 > 8), but N = 9 gives Li8Al1: 8/9 vs 0.9 -> error 1/90 <= 0.02
    a = map_counts("Li9Al1")
    assert a.status == "approximated" and a.counts == {"Li": 8, "Al": 1}
    assert a.max_fraction_error == pytest.approx(1 / 90)
    assert map_counts("Li9Al1", tol=0.01).status == "unencodable"


def test_element_outside_the_table_is_unencodable_not_an_error():
    m = map_counts("He2")
    assert m.status == "unencodable" and "He" in m.reason and "outside the 85-element table" in m.reason
    assert map_counts("XeF2").status == "exact"


def test_fractional_cuprate_by_hand():
    # Ba0.2La1.8CuO4: fractions 1/35, 9/35, 5/35, 20/35. Ba >= 1 needs N >= 18 (0.0286 N >= 0.5), but
    # then O = round(0.571 N) >= 10 > 8; O <= 8 needs N <= 14, where Ba rounds to 0 -> unencodable.
    m = map_counts("Ba0.2La1.8Cu1O4", tol=0.02)
    assert m.status == "unencodable" and m.reason.startswith("count above 8")
    # Mo0.39Ru0.61: N = 2 gives Mo1Ru1 (error 0.11); N = 5 gives Mo2Ru3, error |0.4 - 0.39| = 0.01
    r = map_counts("Mo0.39Ru0.61")
    assert r.status == "approximated" and r.counts == {"Mo": 2, "Ru": 3}
    assert r.max_fraction_error == pytest.approx(0.01)


def test_fraction_bins():
    m = map_counts("Fe2O3", mapping="fraction_bins")
    assert m.status == "approximated" and m.reason == "fraction-binned"
    assert m.counts == {"O": 5, "Fe": 4}  # 0.6 in (4/8, 5/8], 0.4 in (3/8, 4/8]
    assert _ones(encode(m)) == {("Fe", 4), ("O", 5)}
    assert map_counts("NaCl", mapping="fraction_bins").counts == {"Na": 4, "Cl": 4}  # 0.5 -> bin 4 exactly
    assert map_counts("Fe", mapping="fraction_bins").counts == {"Fe": 8}
    cu = map_counts("Ba0.2La1.8Cu1O4", mapping="fraction_bins")
    assert cu.counts == {"O": 5, "Cu": 2, "La": 3, "Ba": 1}
    assert map_counts("He2", mapping="fraction_bins").status == "unencodable"
    with pytest.raises(ValueError):
        map_counts("Fe2O3", mapping="nope")


def test_bad_formula_names_file_row_field():
    with pytest.raises(DataError) as e:
        map_counts("Fe2O3)(", file="x.csv", row=7)
    assert e.value.file == "x.csv" and e.value.row == 7 and e.value.field == "formula"
    with pytest.raises(DataError) as e:
        at.encode_formulas(["NaCl", "Fe2O3", "Xx2"], file="t.csv")
    assert e.value.file == "t.csv" and e.value.row == 3 and e.value.field == "formula"


def test_encode_formulas_status_and_tables():
    formulas = ["Fe2O3", "Fe4O6", "Li9Al1", "Li12Al1", "He2", "NaCl", "Fe2O3"]
    tables, status = at.encode_formulas(formulas)
    assert tables.shape == (7, 85, 8) and tables.dtype == np.uint8
    assert list(status.columns) == ["row", "formula", "status", "reason", "max_fraction_error"]
    assert status.row.tolist() == list(range(1, 8))
    assert status.status.value_counts().to_dict() == {"exact": 4, "approximated": 1, "unencodable": 2}
    assert tables.sum(axis=(1, 2)).tolist() == [2, 2, 2, 0, 0, 2, 2]
    assert (tables[0] == tables[1]).all() and (tables[0] == encode(map_counts("Fe2O3"))).all()
    b, s = at.encode_formulas(formulas, mapping="fraction_bins")
    assert s.status.value_counts().to_dict() == {"approximated": 6, "unencodable": 1}  # only He2


def test_decode_thresholds_and_stacks():
    t = np.zeros((85, 8), np.float32)
    assert decode(t) is None
    t[ELEMENTS.index("Na"), 0] = 0.9
    t[ELEMENTS.index("Cl"), 0] = 0.6
    t[ELEMENTS.index("Cl"), 2] = 0.7  # Cl: argmax -> count 3
    t[ELEMENTS.index("K"), 4] = 0.4  # below threshold
    assert decode(t) == "NaCl3"
    assert decode(t, threshold=0.3) == "NaCl3K5"
    stack = np.stack([t, np.zeros_like(t)])[:, None]  # (2, 1, 85, 8) generator-style output
    assert decode_many(stack) == ["NaCl3", None]
    with pytest.raises(ValueError):
        decode(np.zeros((84, 8)))


def test_composition_key():
    assert composition_key("Fe2O3") == composition_key("Fe4O6") == composition_key("O3Fe2") == "Fe:0.400000,O:0.600000"
    assert composition_key("Fe0.4O0.6") == composition_key("Fe2O3")
    assert composition_key("FeO") != composition_key("Fe2O3")
    assert at.composition_keys(["NaCl", "ClNa"]) == ["Cl:0.500000,Na:0.500000"] * 2
