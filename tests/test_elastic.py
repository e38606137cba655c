"""cgcnn data: Matbench elastic targets, official folds, rebuilt-structure links, CGCNN's split."""
import collections

import numpy as np
import pytest

from conftest import mirror_dir
from matrepro.core.errors import DataError
from matrepro.core.validate import FilterLog
from matrepro.papers.cgcnn import elastic


@pytest.fixture(scope="module")
def root():
    m = mirror_dir()
    if m is None or not (m / elastic.LINKS_FILE).is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    return m


def test_matbench_table_has_every_row_with_folds_and_links(root):
    df = elastic.matbench_table(root)
    assert len(df) == 10987 and df.row.tolist() == list(range(10987))
    assert df.mbid_G.iloc[0] == "mb-log-gvrh-00001" and df.mbid_K.iloc[-1] == "mb-log-kvrh-10987"
    assert sorted(collections.Counter(df.test_fold).values()) == [2197, 2197, 2197, 2198, 2198]
    assert df.has_structure.sum() == 10966 and (df.confidence == "high").sum() == 10577
    assert df.mp_id.iloc[0] == "mp-7878"


def test_subsets_are_logged_not_silent(root):
    df = elastic.matbench_table(root)
    flog = FilterLog("t")
    high = elastic.select_subset(df, "high", flog)
    steps = flog.to_frame()
    assert len(high) == 10577
    assert steps.removed.tolist() == [21, 389]
    with pytest.raises(DataError, match="unknown structure subset"):
        elastic.select_subset(df, "best", FilterLog("t"))


def test_structures_load(root):
    s = elastic.load_structures(["mp-7878"], root)["mp-7878"]
    assert s.composition.reduced_formula == "Ca(AgGe)2" and s.is_ordered
    with pytest.raises(DataError, match="no record"):
        elastic.load_structures(["mp-0"], root)


def test_cgcnn_split_matches_the_reference_rule():
    import random

    n = 103
    labels = elastic.cgcnn_random_split(n)
    idx = list(range(n))
    random.seed(123)
    random.shuffle(idx)
    assert [i for i in idx[:82]] == [i for i in idx if labels[i] == "train"]
    assert set(idx[-10:]) == {i for i in range(n) if labels[i] == "test"}
    assert set(idx[-20:-10]) == {i for i in range(n) if labels[i] == "val"}
    assert collections.Counter(labels) == {"train": 82, "val": 10, "test": 10, "unused": 1}
    assert np.array_equal(labels, elastic.cgcnn_random_split(n))


def test_missing_target_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        elastic.load_targets(tmp_path)
