"""features.formula_batch: the formula-CSV part of `matrepro predict` that lgdcnn and gan share."""
import numpy as np
import pytest

from matrepro.features.formula_batch import CompositionDomain, predict_formulas, write_domain


class StubModel:
    """Predicts the number of elements in a formula; rejects formulas containing 'Xx'."""

    def __init__(self, folder, card):
        self.card, self.members = card, ["a", "b"]
        self.domain = CompositionDomain(folder, card)

    def check(self, formula, file, row, errors):
        if "Xx" in formula:
            errors.add(file, row, "formula", "stub: Xx")
            return None
        return {"formula": formula, "approx": formula.startswith("Fe")}

    def predict(self, formulas):
        n = np.array([float(sum(c.isupper() for c in f)) for f in formulas])
        return n, np.full(len(n), 0.5)


@pytest.fixture
def stub(tmp_path):
    train, test = ["NaCl", "KCl", "NaBr"], ["KBr", "NaCl"]
    coverage, applicability = write_domain(tmp_path, train, test, 0.5)
    assert coverage == {"elements": ["Na", "Cl", "K", "Br"], "n_elements": 4}
    # the test rows' nearest-training L1 distances are 1.0 (KBr: KCl or NaBr) and 0 (NaCl): median 0.5
    assert applicability["composition"]["threshold"] == pytest.approx(0.5)
    return StubModel(tmp_path, {"unit": "eV", "applicability": applicability})


def test_columns_flags_and_errors_in_order(stub, tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes("\ufeffformula,id\r\nNaCl,a\r\nXxO,b\r\nFeO,c\r\nNaBr2,d\r\n".encode("utf-8"))

    def extra(checked):
        return ({"approx_formula": [c["formula"] for c in checked]},
                [[("approximated", c["approx"])] for c in checked])

    out, errors = predict_formulas(stub, path, extra=extra)
    assert out["formula"].tolist() == ["NaCl", "FeO", "NaBr2"] and out["id"].tolist() == ["a", "c", "d"]
    assert list(out.columns)[-8:] == ["prediction", "spread", "n_models", "unit", "nearest_train_l1",
                                      "approx_formula", "unseen_elements", "flags"]
    assert out["prediction"].tolist() == [2.0, 2.0, 2.0] and (out["n_models"] == 2).all()
    # NaBr2 = Na 1/3, Br 2/3 against NaBr (1/2, 1/2): L1 = 1/6 + 1/6
    assert out["nearest_train_l1"].tolist() == [0.0, 2.0, pytest.approx(0.3333, abs=1e-4)]
    assert out["unseen_elements"].tolist() == ["", "Fe O", ""]
    assert out["flags"].tolist() == ["", "unseen_elements;far_from_training;approximated", ""]
    assert errors.to_dict("records") == [{"file": str(path), "row": 2, "field": "formula", "reason": "stub: Xx"}]


def test_no_good_row_gives_empty_columns(stub, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("formula\nXx\n")
    out, errors = predict_formulas(stub, path)
    assert len(out) == 0 and "flags" in out.columns and len(errors) == 1
