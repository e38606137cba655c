import json

import pytest

from matrepro import report
from matrepro.core.paths import project_root


def test_derived_baseline_maes_come_from_the_stated_improvements():
    rep = report.load_reported()
    cap = rep[rep.paper == "capnet"].set_index(["model", "metric"])["reported"]
    assert cap[("capnet", "mae")] == 2.441
    assert cap[("dnn", "mae")] == pytest.approx(2.441 / (1 - 0.562))
    assert cap[("transformer", "mae")] == pytest.approx(4.99, abs=0.01)


def test_deviations_table_is_complete():
    dev = report.deviations()
    assert len(dev[dev.paper == "capnet"]) >= 8
    assert dev["kind"].isin(["assumption", "deviation", "data"]).all()


def _fake_metrics(tmp_path):
    v = {"mean": 3.0, "std": 0.5, "per_seed": [2.5, 3.0, 3.5]}
    res = {m: {"paper_like": {"random": {"mae": v, "rmse": v, "r2": v}}}
           for m in ("capnet", "dnn", "rnn", "lstm", "transformer")}
    (tmp_path / "capnet.json").write_text(json.dumps({"profile": "smoke", "seeds": [0, 1, 2], "unit": "mAh/g",
                                                      "results": res}))
    return tmp_path


def test_comparison_ratio_and_profile(tmp_path):
    cmp = report.comparison(["capnet"], mdir=_fake_metrics(tmp_path))
    row = cmp[(cmp.model == "capnet") & (cmp.metric == "MAE")].iloc[0]
    assert row["ratio"] == pytest.approx(3.0 / 2.441) and row["profile"] == "smoke"
    assert "smoke" in report.comparison_markdown(cmp)


def test_readme_block_is_regenerated_not_typed(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nstale\n{report.README_END}\nend\n")
    assert report.update_readme(["capnet"], readme, mdir=_fake_metrics(tmp_path))
    text = readme.read_text()
    assert "stale" not in text and "3.00 ± 0.50" in text and "profile `smoke`" in text
    assert not report.update_readme(["capnet"], readme, mdir=_fake_metrics(tmp_path))


def test_committed_readme_matches_committed_metrics(tmp_path, monkeypatch):
    root = project_root()
    if not (root / "metrics" / "capnet.json").is_file():
        pytest.skip("no committed metrics yet")
    # lgdcnn's table shows published numbers from a registered raw file: snapshot it from the
    # mirror into a temporary raw folder (a fresh clone has no data/raw yet)
    from conftest import mirror_dir
    from matrepro import registry
    from matrepro.papers.lgdcnn import published as lg_pub

    if mirror_dir() is None:
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    registry.snapshot("reference_results", dest_root=tmp_path, mirror=mirror_dir())
    monkeypatch.setattr(lg_pub, "raw_dir", lambda: tmp_path)
    text = (root / "README.md").read_text()
    block = text.split(report.README_START, 1)[1].split(report.README_END, 1)[0].strip()
    assert block == report.results_markdown(report.papers_with_metrics()).strip()


def test_gan_reported_losses_are_numbers_not_strings(tmp_path):
    from matrepro.papers.gan.report import reported_losses

    rep = reported_losses()  # the committed data/reported.yaml
    assert rep == {"first": 4.1e13, "last": 0.3194} and all(isinstance(v, float) for v in rep.values())
    # YAML 1.1 (PyYAML) reads "4.1e13" (no dot, no exponent sign) as a string: the file must say 4.1e+13
    bad = tmp_path / "reported.yaml"
    bad.write_text("gan:\n  statements:\n    - {quantity: discriminator total loss on the test set (first), value: 4.1e13}\n")
    assert isinstance(reported_losses(bad)["first"], str) and reported_losses(bad)["last"] is None
