import pytest
import torch

from matrepro.core.train import TrainConfig, fit, predict
from matrepro.features.tabular import TabularBatch
from matrepro.models import MODELS, build_model, count_parameters
from matrepro.models import tabular as _tabular  # noqa: F401  (registers the tabular models)

N_NUM, CARDS = 11, [5, 7, 9, 4]
PARAMS = {"capnet": 49713, "dnn": 43281, "rnn": 7841, "lstm": 26657, "transformer": 18721}


def _batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_num = torch.randn(n, N_NUM, generator=g)
    x_cat = torch.stack([torch.randint(0, c, (n,), generator=g) for c in CARDS], dim=1)
    y = x_num[:, 0] * 1.5 - x_num[:, 1] + 0.3 * (x_cat[:, 0].float() - 2)  # learnable signal
    return TabularBatch(x_num, x_cat, y)


def test_all_five_capnet_models_are_registered():
    assert set(PARAMS) <= set(MODELS)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_output_shape_and_parameter_count(name):
    model = build_model(name, n_numeric=N_NUM, cardinalities=CARDS)
    b = _batch(7)
    assert model(b.x_num, b.x_cat).shape == (7,)
    assert count_parameters(model) == PARAMS[name]


def test_capnet_parameter_count_by_hand():
    # numeric branch 11->128->128->32; 4 x [Embedding(c,16) + 16->32->32]; head 160->128->1
    numeric = (11 * 128 + 128) + (128 * 128 + 128) + (128 * 32 + 32)
    branches = sum(c * 16 for c in CARDS) + 4 * ((16 * 32 + 32) + (32 * 32 + 32))
    head = (5 * 32 * 128 + 128) + (128 + 1)
    model = build_model("capnet", n_numeric=N_NUM, cardinalities=CARDS)
    assert count_parameters(model) == numeric + branches + head


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_loss_falls_on_a_tiny_set(name):
    train, val = _batch(64, 0), _batch(32, 1)
    torch.manual_seed(0)
    model = build_model(name, n_numeric=N_NUM, cardinalities=CARDS)
    hist = fit(model, train, val, TrainConfig(lr=3e-3, batch_size=16, max_epochs=25, patience=100),
               seed=0, device="cpu", progress=False)
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0]


def test_same_seed_same_predictions():
    train, val = _batch(64, 0), _batch(32, 1)
    out = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model("dnn", n_numeric=N_NUM, cardinalities=CARDS)
        fit(model, train, val, TrainConfig(max_epochs=5, batch_size=16), seed=0, device="cpu", progress=False)
        out.append(predict(model, val))
    assert (out[0] == out[1]).all()


def test_early_stopping_restores_best_epoch():
    train, val = _batch(64, 0), _batch(32, 1)
    torch.manual_seed(0)
    model = build_model("dnn", n_numeric=N_NUM, cardinalities=CARDS)
    hist = fit(model, train, val, TrainConfig(lr=0.05, max_epochs=60, patience=3, batch_size=8), seed=0,
               device="cpu", progress=False)
    assert hist.stopped_early and hist.epochs == hist.best_epoch + 1 + 3
    val_loss = torch.nn.functional.mse_loss(torch.as_tensor(predict(model, val)), val.y).item()
    assert val_loss == pytest.approx(min(hist.val_loss), rel=1e-5)


def test_unknown_model_name():
    with pytest.raises(Exception, match="unknown model 'nope'"):
        build_model("nope", n_numeric=1, cardinalities=[])
