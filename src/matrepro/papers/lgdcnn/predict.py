"""lgdcnn: apply a trained L-G-DCNN to a CSV of formulas (``matrepro predict lgdcnn``).

A model is a folder ``models/lgdcnn/<dataset>/``: one checkpoint per seed (``seed<N>.pt``: the
network's registry name and settings, its weights, the target scaler and the element-slot count),
``train_formulas.csv`` (the training compositions, for the distance check) and ``card.json``
(core.cards). :func:`export_model` writes it from the trained networks of a task's fold;
:func:`predict_file` applies it.

Per input row (``formula`` column; other columns are carried through):

* errors (the row is not predicted): a formula pymatgen cannot parse, an element without an
  embedding in the model's element table (mat2vec covers H..Bi, Th, U, Pu and a few more), more
  elements than the network's slots;
* the prediction in the target's unit: the mean over the seeds, and their standard deviation
  (``spread``) when there is more than one;
* flags: ``unseen_elements`` (elements no training formula contains) and ``far_from_training``:
  the L1 distance between atomic-fraction vectors to the nearest training composition
  (``nearest_train_l1``, 0..2) above the card's threshold, the 95th percentile of the same
  distance over the test split.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ...core.batch_input import RowErrors
from ...core.cards import load_member, read_card, write_card
from ...core.errors import DataError
from ...core.train import predict
from ...features.formula_batch import CompositionDomain, predict_formulas, write_domain
from ...features.composition import CompositionBatch, TargetScaler, encode_formulas, parse_fractions
from ...models import build_model
from ...models import composition as _composition_models  # noqa: F401  (registers lgdcnn)
from .tasks import get_element_table, task_label, task_unit

INPUT = "a CSV with a 'formula' column (UTF-8, BOM and CRLF accepted; other columns are carried through)"
QUANTILE = 0.95
DEFAULT = None  # one model per dataset: --dataset is required
STAGE = "lgdcnn_model@{name}"


def canonical_name(name: str) -> str:
    """Dataset names as in this repository (``expt_gap``); matbench's ``matbench_expt_gap`` works too."""
    return name.removeprefix("matbench_")


def export_model(folder, task: str, plan: dict, parts: dict, artifacts: dict, test_metrics: dict,
                 fold=None, stage: str = "") -> dict:
    """Write ``folder`` for the networks trained on ``parts`` (``artifacts``: {seed: Trained.artifact()})."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    members = []
    for seed, art in sorted(artifacts.items()):
        name = f"seed{seed}.pt"
        torch.save(art, folder / name)
        members.append(name)
    train = parts["train"].formula.tolist()
    coverage, applicability = write_domain(folder, train, parts["test"].formula.tolist(), QUANTILE)
    card = {"paper": "lgdcnn", "name": task, "target": task_label(task), "unit": task_unit(task),
            "profile": plan["profile"], "stage": stage or f"lgdcnn_task@{task}", "fold": fold,
            "model": next(iter(artifacts.values()))["spec"]["model"],
            "training": {"rows": {s: len(parts[s]) for s in ("train", "val", "test")}, "regime": plan.get("regime"),
                         "max_epochs": plan["train"]["max_epochs"],
                         **coverage},
            "metrics": test_metrics, "input": INPUT, "members": members,
            "applicability": applicability}
    write_card(folder, card)
    return card


def _scaler(saved: dict) -> TargetScaler:
    """The training rows' scaler from its saved mean and std."""
    sc = TargetScaler([0.0])
    sc.mean, sc.std = float(saved["mean"]), float(saved["std"])
    return sc


class Model:
    """A loaded model folder: its card, member networks, scalers and training compositions."""

    def __init__(self, folder):
        self.card = read_card(folder)
        self.members = []
        for name in self.card["members"]:
            art = load_member(folder, name)
            spec = art["spec"]
            net = build_model(spec["model"], element_table=get_element_table(spec["element_table"]), **spec["config"])
            net.load_state_dict(art["weights"], strict=True)
            net.eval()
            self.members.append((net, _scaler(art["scaler"]), int(art["n_slots"])))
        self.table_name = load_member(folder, self.card["members"][0])["spec"]["element_table"]
        self.table = get_element_table(self.table_name)
        self.domain = CompositionDomain(folder, self.card)

    def check(self, formula: str, file, row, errors: RowErrors) -> bool:
        from pymatgen.core import Element

        try:
            fr = parse_fractions(formula, file=file, row=row)
        except DataError as exc:
            errors.add(file, row, "formula", exc.message)
            return False
        missing = [Element.from_Z(z).symbol for z, _ in fr if not self.table[z].any()]
        if missing:
            errors.add(file, row, "formula", f"unknown element(s) {missing}: no {self.table_name} embedding")
            return False
        n_slots = self.members[0][2]
        if len(fr) > n_slots:
            errors.add(file, row, "formula", f"{len(fr)} elements; this network takes at most {n_slots}")
            return False
        return True

    def predict(self, formulas: list[str]) -> tuple[np.ndarray, np.ndarray]:
        preds = []
        for net, sc, n_slots in self.members:
            z, f = encode_formulas(formulas, n_slots)
            batch = CompositionBatch(torch.as_tensor(z), torch.as_tensor(f), torch.zeros(len(formulas)))
            preds.append(sc.unscale(predict(net, batch, device="cpu")))
        p = np.stack(preds, axis=1)
        return p.mean(axis=1), (p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.full(len(formulas), np.nan))


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, errors) for the CSV at ``path`` with the model in ``folder``."""
    return predict_formulas(Model(folder), path)


def main(argv: list[str] | None = None) -> int:
    """``python -m matrepro.papers.lgdcnn.predict <task>``: models/lgdcnn/<task>/ (the lgdcnn_model stage)."""
    import argparse
    import json
    import logging
    import os
    from pathlib import Path

    from .benchmark import task_networks

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("task")
    ap.add_argument("--out", default="models/lgdcnn")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("MATREPRO_THREADS", 2)))
    plan_path = Path("results/lgdcnn/plan") / f"{a.task}.json"
    if not plan_path.is_file():
        raise SystemExit(f"{plan_path}: no plan; run `dvc repro lgdcnn_plan` first")
    plan = json.loads(plan_path.read_text())
    parts, arts, metrics = task_networks(a.task, plan)
    out = Path(a.out) / a.task
    for f in out.glob("*") if out.is_dir() else []:
        f.unlink()
    card = export_model(out, a.task, plan, parts, arts, metrics, fold=plan["folds"][0], stage=f"lgdcnn_model@{a.task}")
    print(f"{out}: {len(arts)} network(s), test MAE {metrics['mae']:.4g} {card['unit']} (fold {plan['folds'][0]}), "
          f"composition-distance threshold {card['applicability']['composition']['threshold']:.3g}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
