import numpy as np
import pandas as pd
import pytest

from matrepro.core.config import deep_merge, paper_config
from matrepro.core.errors import MatreproError
from matrepro.features.tabular import TabularEncoder


def test_encoder_standardises_and_reserves_zero_for_unseen():
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "x"]})
    enc = TabularEncoder(["a"], ["c"]).fit(train, np.array([10.0, 20.0, 30.0]))
    b = enc.transform(pd.DataFrame({"a": [2.0], "c": ["never-seen"]}), np.array([20.0]))
    assert b.x_num.item() == pytest.approx(0.0)
    assert b.x_cat.item() == 0
    assert b.y.item() == pytest.approx(0.0)
    seen = enc.transform(train).x_cat.squeeze(1).tolist()
    assert seen == [1, 2, 1] and enc.cardinalities == [3]
    assert enc.inverse_target(np.array([1.0]))[0] == pytest.approx(20 + np.std([10, 20, 30]))


def test_profile_merge_and_unknown_profile():
    params = {"profile": "smoke", "base": {"seed": 1},
              "p": {"train": {"lr": 1, "epochs": 10}, "profiles": {"smoke": {"train": {"epochs": 2}}, "cpu": {}}}}
    cfg = paper_config("p", params=params)
    assert cfg["train"] == {"lr": 1, "epochs": 2} and cfg["profile"] == "smoke"
    assert paper_config("p", "cpu", params)["train"]["epochs"] == 10
    with pytest.raises(MatreproError, match="no profile 'paper'"):
        paper_config("p", "paper", params)
    with pytest.raises(MatreproError, match="unknown profile"):
        paper_config("p", params={**params, "profile": "gpu"})
    assert deep_merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


def test_committed_params_have_three_profiles():
    for profile in ("smoke", "cpu", "paper"):
        cfg = paper_config("capnet", profile)
        assert set(cfg["architectures"]) == {"capnet", "dnn", "rnn", "lstm", "transformer"}
        assert len(cfg["seeds"]) >= (2 if profile == "smoke" else 3)
