"""gan: apply the paper's model, the GAN critic's features + an MLP, to a CSV of formulas
(``matrepro predict gan --target <target>``).

A model is a folder ``models/gan/<target>/`` written by the gan_represent stage of that target:

* ``critic.pt``: the trained WGAN-GP critic (weights and settings, as ``gan_train`` saved it);
* ``seed<N>.pt``: one MLP per predictor seed on the critic's frozen penultimate features, with the
  feature standardisation (mean, scale, clip) and the target scaler it was trained with;
* ``train_formulas.csv`` (the encoded training compositions, for the distance check) and
  ``card.json`` (core.cards), whose metrics are the stage's test metrics of this very model
  (``gan_mlp``), with the best model on the same rows beside them for context.

Why this model: the abstract's claim is about the *representation* ("with the same predictive
model"), so the model shipped is the GAN representation with the repository's shared predictor
(the MLP; a random forest cannot be saved as tensors). On every target here Magpie + the same MLP
is better (see the card's ``metrics.best_on_same_rows``); ``matrepro models gan`` prints both.

Per input row (``formula`` column; other columns are carried through):

* errors (not predicted): a formula pymatgen cannot parse; one the 85 x 8 atom table cannot hold
  (an element outside its 85, or a count above 8 after mapping): the critic has no input for it;
* the prediction in the target's unit: the mean over the seeds and their standard deviation;
* flags: ``unseen_elements``, ``far_from_training`` (L1 between atomic-fraction vectors to the
  nearest training composition, above the 95th percentile of the test split's distances) and
  ``approximated_table`` (the formula was rounded to fit the table: ``table_error`` is the largest
  atomic-fraction error of what the critic saw).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.batch_input import RowErrors
from ...core.cards import load_member, read_card, write_card
from ...core.errors import DataError
from ...core.train import predict
from ...features.atom_table import map_counts
from ...features.composition import FeatureBatch
from ...features.formula_batch import CompositionDomain, predict_formulas, write_domain
from ...models import build_model
from ...models import composition as _composition_models  # noqa: F401  (registers mlp)
from ...models import gan as _gan_models  # noqa: F401  (registers matgan_critic)
from . import store

CRITIC = "critic.pt"
INPUT = "a CSV with a 'formula' column (UTF-8, BOM and CRLF accepted; other columns are carried through)"
QUANTILE = 0.95
DEFAULT = None  # one model per target: --target is required
STAGE = "gan_represent@{name}"
UNITS = {"oqmd_gap": "eV", "oqmd_eform": "eV/atom", "mp_gap": "eV", "mp_e_form": "eV/atom", "supercon_tc": "K"}
LABELS = {"oqmd_gap": "band gap (OQMD)", "oqmd_eform": "formation enthalpy (OQMD)", "mp_gap": "band gap (MP, matbench)",
          "mp_e_form": "formation energy (MP, matbench)", "supercon_tc": "superconducting Tc (SuperCon, Stanev 2018)"}
MODEL_KEY = "gan_mlp"


def export_model(folder, target: str, cfg: dict, res: dict, *, parts: dict, critic_state: dict, settings: dict,
                 members: dict) -> dict:
    """Write ``folder``: the critic, one MLP member per seed (``members``: {seed: plain-data MLP}),
    the training formulas and the card. ``parts`` are the encoded rows the model was trained and
    tested on; ``res`` the stage's results (metrics are copied from it, never typed)."""
    if not members:
        raise DataError(folder, "no trained MLP members to export (is 'mlp' in gan.predictors and 'gan' in "
                                "gan.representations?)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*"):
        f.unlink()
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in critic_state.items()}, "settings": settings},
               folder / CRITIC)
    names = [CRITIC]
    for seed, m in sorted(members.items()):
        torch.save(m, folder / f"seed{seed}.pt")
        names.append(f"seed{seed}.pt")
    train = parts["train"].formula.tolist()
    coverage, applicability = write_domain(folder, train, parts["test"].formula.tolist(), QUANTILE)
    models = res["blocks"]["encoded"]["models"]
    ours = models[MODEL_KEY]
    best_key = min(models, key=lambda k: models[k]["mae"])
    metrics = {"model": MODEL_KEY, "split": "test rows the atom table encodes", "mae": ours["mae"],
               "mae_std": ours["mae_std"], "rmse": ours["rmse"], "r2": ours["r2"], "seeds": res["seeds"],
               "best_on_same_rows": {"model": best_key, "mae": models[best_key]["mae"],
                                     "mae_std": models[best_key]["mae_std"]}}
    card = {"paper": "gan", "name": target, "target": LABELS.get(target, target), "unit": UNITS.get(target, ""),
            "profile": cfg["profile"], "stage": STAGE.format(name=target), "model": "matgan_critic features + mlp",
            "training": {"rows": {s: len(parts[s]) for s in ("train", "val", "test")},
                         **coverage,
                         "table": store.table_args(cfg), "gan_seed": settings.get("seed")},
            "metrics": metrics, "input": INPUT, "members": names,
            "applicability": {**applicability,
                              "table": "formulas the 85 x 8 atom table cannot hold are errors; rounded ones are "
                                       "flagged approximated_table"}}
    write_card(folder, card)
    return card


class Model:
    """A loaded model folder: its card, the critic, the MLP members and the training compositions."""

    def __init__(self, folder):
        folder = Path(folder)
        self.card = read_card(folder)
        ck = load_member(folder, CRITIC)
        self.settings = ck["settings"]
        self.critic = build_model("matgan_critic", **self.settings["critic"])
        self.critic.load_state_dict(ck["state_dict"], strict=True)
        self.critic.eval()
        self.table = self.settings.get("table", {"mapping": "integer", "tol": 0.02})
        self.members = []
        for name in self.card["members"]:
            if name == CRITIC:
                continue
            m = load_member(folder, name)
            net = build_model(m["model"], **m["config"])
            net.load_state_dict(m["weights"], strict=True)
            net.eval()
            self.members.append((net, m))
        self.domain = CompositionDomain(folder, self.card)

    def check(self, formula: str, file, row, errors: RowErrors):
        """The mapped formula (counts, status, error) or None after recording why the row fails."""
        try:
            m = map_counts(formula, self.table["mapping"], float(self.table["tol"]), file=file, row=row,
                           field="formula")
        except DataError as exc:
            errors.add(file, row, "formula", exc.message)
            return None
        if m.status == "unencodable":
            errors.add(file, row, "formula", f"not representable in the GAN's 85 x 8 atom table: {m.reason}")
            return None
        return m

    def predict(self, formulas: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from ...features.atom_table import encode_formulas
        from .represent import gan_features, mlp_inputs

        tables, _ = encode_formulas(formulas, self.table["mapping"], float(self.table["tol"]))
        feats = gan_features(self.critic, tables, device="cpu")
        preds = []
        for net, m in self.members:
            xs = mlp_inputs(feats, m["x_mean"].numpy(), m["x_scale"].numpy(), m["clip"])
            batch = FeatureBatch(torch.as_tensor(xs, dtype=torch.float32), torch.zeros(len(xs)))
            preds.append(predict(net, batch, device="cpu") * m["y_std"] + m["y_mean"])
        p = np.stack(preds, axis=1)
        return p.mean(axis=1), (p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.full(len(formulas), np.nan))


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, errors) for the CSV at ``path`` with the model in ``folder``."""

    def table_columns(mapped):
        cols = {"table_formula": [m.formula for m in mapped],
                "table_error": [round(float(m.max_fraction_error), 4) for m in mapped]}
        return cols, [[("approximated_table", m.status == "approximated")] for m in mapped]

    return predict_formulas(Model(folder), path, extra=table_columns)
