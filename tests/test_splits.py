import numpy as np
import pandas as pd
import pytest

from matrepro.core.errors import MatreproError
from matrepro.core.splits import group_leaks, group_split, random_split
from matrepro.papers.capnet import data as bt
from matrepro.papers.capnet import preprocess


def test_random_split_sizes_and_determinism():
    a = random_split(1000, (0.8, 0.1, 0.1), seed=3)
    b = random_split(1000, (0.8, 0.1, 0.1), seed=3)
    c = random_split(1000, (0.8, 0.1, 0.1), seed=4)
    assert (a == b).all() and not (a == c).all()
    counts = pd.Series(a).value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (800, 100, 100)


def test_group_split_keeps_groups_together():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 150, size=1200)
    labels = group_split(groups, (0.8, 0.1, 0.1), seed=1)
    assert group_leaks(groups, labels) == []
    assert set(labels) == {"train", "val", "test"}


def test_group_leaks_detects_a_leak():
    assert group_leaks(["a", "a", "b"], ["train", "test", "train"]) == ["a"]


def test_bad_fractions():
    with pytest.raises(MatreproError):
        random_split(10, (0.8, 0.3, 0.1))


def test_no_group_leakage_on_the_li_electrodes(battery_mirror_csv):
    df = bt.load_battery_table(battery_mirror_csv)
    df = df[df[bt.ION] == "Li"].reset_index(drop=True)
    cfg = {"seeds": [0, 1, 2], "splits": ["random", "group"], "split_fractions": [0.8, 0.1, 0.1]}
    splits = preprocess.make_splits(df, cfg)
    groups = preprocess.group_key(df)
    for seed in cfg["seeds"]:
        assert group_leaks(groups, splits[f"group_seed{seed}"]) == []
    # the random split, by contrast, does leak formula pairs (the reason for the group split)
    assert group_leaks(groups, splits["random_seed0"])
