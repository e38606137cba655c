"""Composition inputs of L-G-DCNN: formula parsing, slot encoding, element tables, target scaling and
the CrabNet-style fraction / element embedding (paper card, "Input encoding")."""
import math

import numpy as np
import pytest
import torch

from matrepro.core.errors import DataError
from matrepro.features.composition import TargetScaler, element_table, encode_formulas, load_split_csv, make_batch
from matrepro.models.composition import CompositionEmbedding, FractionEncoder


def _write(path, text):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------------
# encode_formulas


def test_encode_known_formulas_by_hand():
    z, frac = encode_formulas(["Al2O3", "Fe"])
    assert z.shape == frac.shape == (2, 2)  # default n_slots = the largest element count
    assert z.dtype == np.int64 and frac.dtype == np.float32
    assert z.tolist() == [[13, 8], [26, 0]]
    np.testing.assert_allclose(frac, [[0.4, 0.6], [1.0, 0.0]], rtol=1e-6)


def test_encode_pads_with_zeros_when_more_slots():
    z, frac = encode_formulas(["Al2O3", "Fe"], n_slots=5)
    assert z.tolist() == [[13, 8, 0, 0, 0], [26, 0, 0, 0, 0]]
    np.testing.assert_allclose(frac, [[0.4, 0.6, 0, 0, 0], [1, 0, 0, 0, 0]], rtol=1e-6)


def test_encode_keeps_order_of_appearance():
    z, frac = encode_formulas(["OAl", "AlO", "Fe2O3Li"], n_slots=3)
    assert z[0].tolist() == [8, 13, 0]
    assert z[1].tolist() == [13, 8, 0]
    assert z[2].tolist() == [26, 8, 3]
    np.testing.assert_allclose(frac[2], [2 / 6, 3 / 6, 1 / 6], rtol=1e-6)


def test_fractions_of_real_slots_sum_to_one():
    _, frac = encode_formulas(["Ba0.5Sr0.5TiO3", "LiFePO4", "Cu"], n_slots=6)
    np.testing.assert_allclose(frac.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(frac[0, :4], [0.1, 0.1, 0.2, 0.6], rtol=1e-6)


def test_more_elements_than_slots_is_an_error_not_a_truncation():
    with pytest.raises(DataError, match=r"row 2, field 'formula'.*'LiFePO4' has 4 elements; only 3 slots"):
        encode_formulas(["Al2O3", "LiFePO4"], n_slots=3, file="x.csv")


def test_default_slots_are_capped_at_16():
    many = "".join(f"{el}1" for el in ["H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si",
                                          "P", "S", "Cl", "K", "Ca"])  # 17 elements
    with pytest.raises(DataError, match="17 elements; only 16 slots"):
        encode_formulas([many])
    z, _ = encode_formulas([many[:-3]])  # 16 elements fit
    assert z.shape == (1, 16)


@pytest.mark.parametrize("bad", ["Xx2O", "Al2O3)(", "Qz3", "al2o3"])
def test_bad_formula_names_file_row_and_field(tmp_path, bad):
    path = _write(tmp_path / "train.csv", f"formula,target\nAl2O3,1.0\nFe,2.0\n{bad},3.0\nNaCl,4.0\n")
    df = load_split_csv(path)
    assert df.formula.tolist()[2] == bad
    with pytest.raises(DataError) as exc:
        encode_formulas(df.formula.tolist(), file=path)
    msg = str(exc.value)
    assert str(path) in msg and "row 3" in msg and "formula" in msg
    assert exc.value.row == 3 and exc.value.field == "formula"


def test_empty_formula_names_file_row_and_field(tmp_path):
    path = _write(tmp_path / "val.csv", "formula,target\nAl2O3,1.0\n,2.0\n")
    df = load_split_csv(path)
    assert df.formula.tolist() == ["Al2O3", ""]  # kept as text, not NaN
    with pytest.raises(DataError, match=r"val\.csv, row 2, field 'formula': empty"):
        encode_formulas(df.formula.tolist(), file=path)


def test_unknown_element_is_named():
    with pytest.raises(DataError, match=r"unknown element Xx"):
        encode_formulas(["Fe", "Xx2O"], file="t.csv")


# --------------------------------------------------------------------------------------------------
# load_split_csv


def test_nan_target_is_rejected_with_row_and_field(tmp_path):
    path = _write(tmp_path / "train.csv", "formula,target\nAl2O3,1.0\nFe,NaN\n")
    with pytest.raises(DataError, match=r"train\.csv, row 2, field 'target'"):
        load_split_csv(path)


def test_empty_target_is_rejected(tmp_path):
    path = _write(tmp_path / "train.csv", "formula,target\nAl2O3,1.0\nFe,2.0\nCu,\n")
    with pytest.raises(DataError, match=r"row 3, field 'target'"):
        load_split_csv(path)


def test_missing_target_column(tmp_path):
    path = _write(tmp_path / "train.csv", "formula,value\nAl2O3,1.0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['target'\]"):
        load_split_csv(path)


def test_formula_nan_is_sodium_nitride(tmp_path):
    path = _write(tmp_path / "train.csv", "formula,target\nNaN,0.5\nNA,0.1\nAl2O3,1.0\n")
    df = load_split_csv(path)
    assert df.formula.tolist()[:2] == ["NaN", "NA"]
    z, frac = encode_formulas(df.formula.tolist()[:1])
    assert z.tolist() == [[11, 7]]
    np.testing.assert_allclose(frac, [[0.5, 0.5]])
    assert df.target.tolist() == [0.5, 0.1, 1.0]


def test_make_batch_uses_targets_and_slots(tmp_path):
    path = _write(tmp_path / "t.csv", "formula,target\nAl2O3,1.5\nFe,-2.0\n")
    b = make_batch(load_split_csv(path), 4)
    assert b.elements.shape == (2, 4) and b.n_slots == 4 and len(b) == 2
    assert b.y.tolist() == [1.5, -2.0]
    assert b.subset([1]).elements.tolist() == [[26, 0, 0, 0]]


# --------------------------------------------------------------------------------------------------
# element_table, TargetScaler


def test_element_table_indexed_by_atomic_number(tmp_path):
    path = _write(tmp_path / "tab.csv", "element,a,b\nHe,3.0,4.0\nH,1.0,2.0\n")
    t = element_table(path)
    assert t.shape == (119, 2) and t.dtype == np.float32
    assert t[0].tolist() == [0.0, 0.0]
    assert t[1].tolist() == [1.0, 2.0]
    assert t[2].tolist() == [3.0, 4.0]
    assert not t[3:].any()


def test_element_table_unknown_symbol(tmp_path):
    path = _write(tmp_path / "tab.csv", "element,a,b\nH,1.0,2.0\nZz,3.0,4.0\n")
    with pytest.raises(DataError, match=r"tab\.csv, row 2, field 'element': unknown element symbol 'Zz'"):
        element_table(path)


def test_target_scaler_round_trip_and_statistics():
    y = np.array([1.0, 2.0, 4.0, 9.0])
    s = TargetScaler(y)
    assert s.mean == pytest.approx(4.0)
    assert s.std == pytest.approx(np.std(y))  # population std of the training values
    np.testing.assert_allclose(s.scale(y).mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.scale(y).std(), 1.0)
    np.testing.assert_allclose(s.unscale(s.scale(y)), y)
    np.testing.assert_allclose(s.scale([4.0 + s.std]), [1.0])


def test_target_scaler_constant_target():
    s = TargetScaler([3.0, 3.0])
    assert s.std == 1.0
    np.testing.assert_allclose(s.unscale(s.scale([5.0])), [5.0])


# --------------------------------------------------------------------------------------------------
# fraction encoders (hand-checked)


def test_linear_fraction_table_sin_only_by_hand():
    enc = FractionEncoder(dim=256, resolution=2000, log=False, sin_only=True)
    assert enc.pe.shape == (2000, 256)
    idx = enc.index(torch.tensor([0.5]))
    assert idx.tolist() == [round(0.5 * 2000) - 1] == [999]
    row = enc(torch.tensor([0.5]))[0]
    for i in (0, 1, 2, 128, 255):
        # the table is float32: an argument near 1000 rad carries ~6e-5 rad of rounding
        assert row[i].item() == pytest.approx(math.sin(999 / 50 ** (2 * i / 256)), abs=1e-4)


def test_fraction_table_sin_cos_variant():
    enc = FractionEncoder(dim=256, resolution=2000, sin_only=False)
    assert enc.pe[999, 1].item() == pytest.approx(math.cos(999 / 50 ** (2 / 256)), abs=1e-4)
    assert enc.pe[999, 0].item() == pytest.approx(math.sin(999.0), abs=1e-4)
    assert enc.pe[999, 2].item() == pytest.approx(math.sin(999 / 50 ** (4 / 256)), abs=1e-4)
    assert enc.pe[0, 1].item() == 1.0  # cos(0)


def test_linear_index_clamps_small_fractions():
    enc = FractionEncoder(dim=4, resolution=2000)
    # 0 (padding) and anything below 1/res use row 0; 1.0 uses the last row
    assert enc.index(torch.tensor([0.0, 1e-6, 1.0, 0.25])).tolist() == [0, 0, 1999, 499]


def test_log_fraction_index_by_hand():
    enc = FractionEncoder(dim=4, resolution=2000, log=True)
    # x = 0.0025 * log2(frac)^2, clamped to <= 1 then >= 1/res; index = round(x * res) - 1
    assert enc.index(torch.tensor([0.5])).tolist() == [4]  # x = 0.0025
    assert enc.index(torch.tensor([1e-9])).tolist() == [1999]  # x clamped to 1
    assert enc.index(torch.tensor([0.0])).tolist() == [1999]  # padding: log2(0) = -inf -> 1
    assert enc.index(torch.tensor([1.0])).tolist() == [0]  # x = 0 -> 1/res
    f = 0.1
    expected = round(0.0025 * math.log2(f) ** 2 * 2000) - 1
    assert enc.index(torch.tensor([f])).tolist() == [expected]


# --------------------------------------------------------------------------------------------------
# CompositionEmbedding


def _table(d=8, seed=0):
    t = np.random.default_rng(seed).random((119, d)).astype(np.float32)
    t[0] = 0
    return t


def _pe(idx, dim):
    i = np.arange(dim)
    return np.sin(idx / 50.0 ** (2 * i / dim))


def test_embedding_at_initialisation_by_hand():
    torch.manual_seed(0)
    table = _table()
    emb = CompositionEmbedding(table, d_model=16, resolution=2000, sin_only=True).eval()
    z = torch.tensor([[13, 8, 0]])
    frac = torch.tensor([[0.4, 0.6, 0.0]])
    with torch.no_grad():
        out = emb(z, frac)[0].numpy()
    W, b = emb.proj.weight.detach().numpy(), emb.proj.bias.detach().numpy()
    for slot, (el, f) in enumerate([(13, 0.4), (8, 0.6), (0, 0.0)]):
        lin_idx = max(round(f * 2000), 1) - 1
        x = min(0.0025 * math.log2(f) ** 2, 1.0) if f > 0 else 1.0
        log_idx = round(max(x, 1 / 2000) * 2000) - 1
        expected = (W @ table[el] + b) * 2.0 + np.concatenate([_pe(lin_idx, 8), _pe(log_idx, 8)])
        np.testing.assert_allclose(out[slot], expected, rtol=1e-5, atol=1e-5)
    # hand values of the indices used above
    assert emb.frac_lin.index(frac).tolist() == [[799, 1199, 0]]
    assert emb.frac_log.index(frac).tolist() == [[8, 2, 1999]]


def test_embedding_eval_is_deterministic_train_adds_noise():
    torch.manual_seed(0)
    emb = CompositionEmbedding(_table(), d_model=16)
    z = torch.tensor([[13, 8, 0]])
    frac = torch.tensor([[0.4, 0.6, 0.0]])
    emb.eval()
    with torch.no_grad():
        a, b = emb(z, frac), emb(z, frac)
        emb.train()
        c = emb(z, frac)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_fraction_noise_keeps_padding_zero_and_sum_one():
    torch.manual_seed(0)
    emb = CompositionEmbedding(_table(), d_model=16)
    z = torch.tensor([[13, 8, 0, 0], [26, 0, 0, 0], [3, 26, 15, 8]])
    frac = torch.tensor([[0.4, 0.6, 0, 0], [1, 0, 0, 0], [1 / 7, 1 / 7, 1 / 7, 4 / 7]])
    noisy = emb.noisy(z, frac)
    assert (noisy[z == 0] == 0).all()
    torch.testing.assert_close(noisy.sum(dim=1), torch.ones(3))
    assert not torch.allclose(noisy[0], frac[0])
    assert (noisy[z != 0] > 0).all()
    assert (noisy - frac).abs().max() < 0.2  # 2 % multiplicative noise
