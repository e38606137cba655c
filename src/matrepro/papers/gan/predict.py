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

from ...core.batch_input import RowErrors, read_table
from ...core.cards import load_member, read_card, write_card
from ...core.errors import DataError
from ...core.train import predict
from ...features.applicability import NearestTrainDistance, elements_of, fraction_matrix, unseen_elements
from ...features.atom_table import map_counts
from ...features.composition import FeatureBatch
from ...models import build_model
from ...models import composition as _composition_models  # noqa: F401  (registers mlp)
from ...models import gan as _gan_models  # noqa: F401  (registers matgan_critic)
from . import store

CRITIC = "critic.pt"
TRAIN_FORMULAS = "train_formulas.csv"
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
    from pymatgen.core import Element

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
    pd.DataFrame({"formula": train}).to_csv(folder / TRAIN_FORMULAS, index=False)
    dist = NearestTrainDistance(fraction_matrix(train), metric="manhattan")
    dist.calibrate(fraction_matrix(parts["test"].formula.tolist()), QUANTILE)
    elements = sorted(elements_of(train))
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
                         "elements": [Element.from_Z(z).symbol for z in elements], "n_elements": len(elements),
                         "table": store.table_args(cfg), "gan_seed": settings.get("seed")},
            "metrics": metrics, "input": INPUT, "members": names,
            "applicability": {"composition": {**dist.describe(), "distance": "L1 between atomic-fraction vectors, "
                                              "to the nearest training composition (0..2)"},
                              "unseen_elements": "elements absent from every training formula",
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
        train = pd.read_csv(folder / TRAIN_FORMULAS, dtype=str, keep_default_na=False).formula.tolist()
        self.seen = elements_of(train)
        comp = self.card["applicability"]["composition"]
        self.distance = NearestTrainDistance(fraction_matrix(train), comp["metric"], threshold=comp["threshold"],
                                             quantile=comp["quantile"])

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
        from .represent import gan_features

        tables, _ = encode_formulas(formulas, self.table["mapping"], float(self.table["tol"]))
        feats = gan_features(self.critic, tables, device="cpu")
        preds = []
        for net, m in self.members:
            mean, scale = m["x_mean"].numpy(), m["x_scale"].numpy()
            x = np.where(np.isfinite(feats), feats, np.nan)
            xs = np.nan_to_num((x - mean) / scale, nan=0.0, posinf=0.0, neginf=0.0)
            if m["clip"] is not None:
                xs = np.clip(xs, -m["clip"], m["clip"])
            batch = FeatureBatch(torch.as_tensor(xs, dtype=torch.float32), torch.zeros(len(xs)))
            preds.append(predict(net, batch, device="cpu") * m["y_std"] + m["y_mean"])
        p = np.stack(preds, axis=1)
        return p.mean(axis=1), (p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.full(len(formulas), np.nan))


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, errors) for the CSV at ``path`` with the model in ``folder``."""
    model = Model(folder)
    df = read_table(path, ["formula"])
    errors = RowErrors()
    mapped = [model.check(f, path, r, errors) for f, r in zip(df.formula, df.row)]
    ok = np.array([m is not None for m in mapped], dtype=bool)
    good = df[ok].reset_index(drop=True)
    mapped = [m for m in mapped if m is not None]
    out = good.copy()
    if len(good):
        mean, spread = model.predict(good.formula.tolist())
        d, far = model.distance.far(fraction_matrix(good.formula.tolist()))
        unseen = [unseen_elements(f, model.seen) for f in good.formula]
    else:
        mean = spread = d = np.zeros(0)
        far, unseen = np.zeros(0, bool), []
    approx = [m.status == "approximated" for m in mapped]
    out["prediction"] = mean
    out["spread"] = spread
    out["n_models"] = len(model.members)
    out["unit"] = model.card["unit"]
    out["nearest_train_l1"] = np.round(d, 4)
    out["table_formula"] = [m.formula for m in mapped]
    out["table_error"] = [round(float(m.max_fraction_error), 4) for m in mapped]
    out["unseen_elements"] = [" ".join(u) for u in unseen]
    out["flags"] = [";".join(f for f, on in (("unseen_elements", bool(u)), ("far_from_training", bool(x)),
                                             ("approximated_table", a)) if on)
                    for u, x, a in zip(unseen, far, approx)]
    return out, errors.frame()
