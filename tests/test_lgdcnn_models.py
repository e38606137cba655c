"""L-G-DCNN and its reference models (paper card, "L-G-DCNN", "Variants", "Training"): parameter
counts, output rule, documented padding quirks, RobustL1, and a tiny end-to-end fit."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from matrepro.core.train import TrainConfig, crabnet_batch_size, fit, predict, robust_l1
from matrepro.features.composition import CompositionBatch, TargetScaler, encode_formulas
from matrepro.models import MODELS, build_model, count_parameters
from matrepro.models.composition import LGDCNN, SoftAttention

MAT2VEC_SHAPE = np.zeros((119, 200))  # the real mat2vec table's shape (values irrelevant to counts)
PARAMS = {"lgdcnn": 8_635_911, "lgdcnn_v1": 8_635_911, "ldcnn": 7_190_022, "lstm_ref": 1_681_414,
          "dcnn": 5_613_062, "dcnn_k1": 629_766}
# small constructor arguments per model so the forward tests stay fast
SMALL = {"lgdcnn": {"d_model": 16}, "lgdcnn_v1": {"d_model": 16}, "ldcnn": {"d_model": 16},
         "lstm_ref": {"d_model": 16}, "dcnn": {"d_model": 16, "d": 16}, "dcnn_k1": {"d_model": 16, "d": 8}}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; with two threads on a busy 2-core machine the
    OpenMP workers spin and the tiny fit below takes 100x longer."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _table(d=8, seed=0):
    t = np.random.default_rng(seed).random((119, d)).astype(np.float32)
    t[0] = 0
    return t


def _inputs(formulas=("Al2O3", "Fe", "LiFePO4", "NaCl"), n_slots=5):
    z, frac = encode_formulas(list(formulas), n_slots)
    return torch.as_tensor(z), torch.as_tensor(frac)


# --------------------------------------------------------------------------------------------------
# parameter counts


def test_all_composition_models_are_registered():
    assert set(PARAMS) <= set(MODELS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_with_paper_sizes(name):
    model = build_model(name, element_table=MAT2VEC_SHAPE)
    assert count_parameters(model) == PARAMS[name]


def test_lgdcnn_parameter_breakdown_matches_card():
    m = build_model("lgdcnn", element_table=MAT2VEC_SHAPE)
    assert count_parameters(m) == 8_635_911  # "≈ 8.64 M"
    assert count_parameters(m.embed.proj) == 102_912 == 200 * 512 + 512
    assert count_parameters(m.lstm) == 1_576_960
    assert count_parameters(m.gru) == 1_182_720
    assert count_parameters(m.attention) == 263_169  # one MLP shared by the LSTM and GRU stages
    assert count_parameters(m.dcnn.region) == 786_944
    assert count_parameters(m.dcnn.convs) == 4_721_664  # 3 blocks x 2 convs
    assert len(m.dcnn.convs) == 3  # blocks=2 means three residual double-conv blocks
    assert count_parameters(m.head) == 1_539
    scalers = [n for n, p in m.named_parameters() if p.ndim == 0]
    assert sorted(scalers) == ["embed.emb_scaler", "embed.pos_scaler", "embed.pos_scaler_log"]
    assert all(p.item() == 1.0 for n, p in m.named_parameters() if p.ndim == 0)
    assert not m.embed.table.weight.requires_grad  # the frozen mat2vec table is not counted
    parts = 102_912 + 1_576_960 + 1_182_720 + 263_169 + 786_944 + 4_721_664 + 1_539 + 3
    assert parts == 8_635_911


def test_model_settings_from_the_card():
    t = _table()
    for name, res in [("lgdcnn", 2000), ("lgdcnn_v1", 2000), ("ldcnn", 2000), ("lstm_ref", 5000),
                      ("dcnn", 5000), ("dcnn_k1", 5000)]:
        m = build_model(name, element_table=t, **SMALL[name])
        assert m.embed.frac_lin.resolution == m.embed.frac_log.resolution == res, name
        assert m.embed.frac_lin.pe[5, 1] == pytest.approx(math.sin(5 / 50 ** (2 / 8)), abs=1e-6)  # sin only
        assert not m.mask_padding
    k1 = build_model("dcnn_k1", element_table=t, d_model=16)
    assert k1.dcnn.region.kernel_size == (1,) and k1.dcnn.region.padding == (0,)
    assert k1.dcnn.region.out_channels == 256


# --------------------------------------------------------------------------------------------------
# forward pass


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_output_shape_with_padding(name):
    torch.manual_seed(0)
    model = build_model(name, element_table=_table(), **SMALL[name]).eval()
    z, frac = _inputs()
    assert (z == 0).any()
    with torch.no_grad():
        out = model(z, frac)
        feats = model.element_features(z, frac)
    assert out.shape == (4, 2)
    assert feats.shape[:2] == (4, 5)
    assert torch.isfinite(out).all()


def test_lgdcnn_default_element_features_are_512_wide():
    torch.manual_seed(0)
    model = build_model("lgdcnn", element_table=_table(200)).eval()
    z, frac = _inputs(n_slots=4)
    with torch.no_grad():
        assert model.element_features(z, frac).shape == (4, 4, 512)


def test_output_rule_masked_mean_then_sigmoid_gate():
    """forward = [mean_real(value) * sigmoid(mean_real(logit)), mean_real(log_std)] of the per-slot head."""
    torch.manual_seed(0)
    model = build_model("lgdcnn", element_table=_table(), d_model=16).eval()
    z, frac = _inputs()
    with torch.no_grad():
        out = model(z, frac)
        per_slot = model.head(model.element_features(z, frac))
    for b in range(len(z)):
        n = int((z[b] != 0).sum())
        value, log_std, logit = per_slot[b, :n].mean(dim=0)
        torch.testing.assert_close(out[b], torch.stack([value * torch.sigmoid(logit), log_std]))


def test_v1_max_pools_over_the_feature_axis():
    torch.manual_seed(0)
    m = build_model("lgdcnn_v1", element_table=_table(), d_model=16).eval()
    z, frac = _inputs()
    with torch.no_grad():
        x = m.embed(z, frac)
        o1, o2 = m.global_block(x, None)
        s = (o1 + o2 + m.dcnn(o2)).numpy()
        got = m.element_features(z, frac).numpy()
    padded = np.pad(s, ((0, 0), (0, 0), (1, 1)), constant_values=-np.inf)
    expected = np.maximum(np.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_attention_weights_unmasked_and_masked():
    torch.manual_seed(0)
    att = SoftAttention(8)
    h = torch.randn(2, 5, 8)
    pad = torch.tensor([[False, False, True, True, True], [False, False, False, False, True]])
    with torch.no_grad():
        w = att.weights(h)
        wm = att.weights(h, pad)
    assert w.shape == (2, 5, 1)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 1))
    assert (w[pad] > 0).all()  # documented quirk: padded slots share the softmax
    assert (wm[pad] == 0).all()
    torch.testing.assert_close(wm.sum(dim=1), torch.ones(2, 1))
    torch.testing.assert_close(att(h, pad), h + h * wm)


def test_padding_is_not_masked_inside_the_network():
    """Documented quirk: the prediction of a formula depends on how many padded slots it carries."""
    torch.manual_seed(0)
    model = LGDCNN(_table(), d_model=16, mask_padding=False).eval()
    with torch.no_grad():
        a = model(*_inputs(("Al2O3",), n_slots=2))
        b = model(*_inputs(("Al2O3",), n_slots=5))
        c = model(*_inputs(("Al2O3",), n_slots=5))
    assert torch.equal(b, c)
    assert not torch.allclose(a, b)


# --------------------------------------------------------------------------------------------------
# loss, batch rule, training


def test_robust_l1_by_hand():
    out = torch.tensor([[1.0, 0.0], [2.0, math.log(2.0)], [-1.0, -1.0]])
    y = torch.tensor([0.0, 3.0, -1.0])
    terms = [math.sqrt(2) * 1 * 1 + 0, math.sqrt(2) * 1 * 0.5 + math.log(2), 0 + -1.0]
    assert robust_l1(out, y).item() == pytest.approx(sum(terms) / 3, rel=1e-6)


@pytest.mark.parametrize("n, expected", [(3000, 256), (100, 128), (1, 128), (10**7, 4096), (4096, 256),
                                         (239_190, 4096)])
def test_crabnet_batch_size(n, expected):
    assert crabnet_batch_size(n) == expected
    if 128 < expected < 4096:
        assert expected == 2 ** round(math.log2(n) - 4)


ELEMENTS = ["Li", "Na", "Mg", "Al", "Si", "Fe", "Cu", "O", "S", "N", "Cl", "Ti"]


def _synthetic(n, seed):
    rng = np.random.default_rng(seed)
    formulas = []
    for _ in range(n):
        k = rng.integers(1, 4)
        els = rng.choice(ELEMENTS, k, replace=False)
        formulas.append("".join(f"{e}{rng.integers(1, 5)}" for e in els))
    z, frac = encode_formulas(formulas, 3)
    y = frac[:, 0] * 10  # target = fraction of the first element x 10
    return torch.as_tensor(z), torch.as_tensor(frac), y


def _fit_once(seed=0):
    zt, ft, yt = _synthetic(64, 0)
    zv, fv, yv = _synthetic(16, 1)
    sc = TargetScaler(yt)
    train = CompositionBatch(zt, ft, torch.as_tensor(sc.scale(yt), dtype=torch.float32))
    val = CompositionBatch(zv, fv, torch.as_tensor(sc.scale(yv), dtype=torch.float32))
    torch.manual_seed(seed)
    model = build_model("lgdcnn", element_table=_table(), d_model=32)
    cfg = TrainConfig(loss="robust_l1", optimizer="lamb_lookahead", scheduler="cyclic", epochs_step=1, swa=True,
                      swa_start=1, discard_n=5, max_epochs=6, batch_size=16)
    hist = fit(model, train, val, cfg, seed=seed, device="cpu", progress=False)
    return hist, predict(model, val)


def test_lgdcnn_trains_with_the_crabnet_recipe_and_is_deterministic():
    hist, pred = _fit_once()
    assert hist.epochs == 6
    assert hist.train_loss[-1] < hist.train_loss[0]
    # SWA checks at the end of every cycle (2 * epochs_step epochs) from epoch epochs_step*swa_start-1
    assert [c["epoch"] for c in hist.swa_checks] == [1, 3, 5]
    assert hist.swa_checks[0]["accepted"]
    # cyclic LR: half a cycle = epochs_step epochs; peak after epoch 0, trough after epoch 1
    assert hist.lr[0] == pytest.approx(6e-3) and hist.lr[1] == pytest.approx(1e-4)
    assert np.isfinite(pred).all()
    hist2, pred2 = _fit_once()
    assert hist2.train_loss == hist.train_loss
    np.testing.assert_array_equal(pred, pred2)
