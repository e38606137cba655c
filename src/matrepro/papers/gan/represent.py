"""gan representations (Hu, Song, Jiang, Li, Symmetry 12, 1889, 2020) and the same predictors on each.

The abstract's claim: with the same predictive model, the representation learnt by the GAN's
discriminator beats One-hot and Magpie on band gap, formation energy and Tc. Three representations of
a composition are compared here, each fed to the same two predictors with identical settings:

* ``gan``: the trained critic's feature vector (``MatGANCritic.features``: its penultimate layer),
  frozen, computed on the 85 x 8 atom table (``features.atom_table``);
* ``magpie``: matminer's Magpie preset (132 features, ``features.composition.magpie_features``);
* ``onehot``: the 118-d *fractional* one-hot vector of ElemNet / CBFV (entry Z-1 = atomic fraction
  of element Z). This is the "one-hot" the abstract compares against; the binary 85 x 8 table itself
  is the GAN's input, not a baseline.

Predictors: ``rf`` (a random forest) and ``mlp`` (the registered ``mlp`` through ``core.train.fit``),
plus ``gan_finetune``: the critic body fine-tuned with a regression head (``matgan_finetune``).

Rows. The GAN can only featurise rows its table encodes. The comparison is therefore made on the
rows every representation can featurise (table status != ``unencodable``, in every part: the
``encoded`` block), the same rows for all three; Magpie and one-hot are run again on **all** rows
(the ``all`` block), so that the rows left out are visible and their effect can be read. When no
row is left out the ``all`` block is the ``encoded`` block (same rows, same seeds: identical
numbers) and is copied rather than re-trained (``copied_from_encoded``).

Seeds vary the predictors only (forest, MLP and fine-tune initialisation, batch order); the critic
is the one GAN trained with ``gan_seed``, so its training noise is not in the seed std.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...core.errors import DataError, MatreproError
from ...core.metrics import aggregate, regression_metrics
from ...core.train import TrainConfig, fit, get_device, predict, set_seed
from ...features.chem import parse_formula
from ...features.composition import MAX_Z, FeatureBatch, TargetScaler, magpie_features
from ...models import build_model
from ...models import composition as _composition_models  # noqa: F401  (registers mlp)
from ...models import gan as _gan_models  # noqa: F401  (registers matgan_critic, matgan_finetune)
from . import data
from .training import load_gan
from .compare import CLAIM_RULE, PREDICTORS, claim_check, results_table  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")
REPRESENTATIONS = ("gan", "magpie", "onehot")
FINETUNE = "gan_finetune"
UNENCODABLE = "unencodable"


# ----------------------------------------------------------------------------- representations
def onehot_features(formulas, *, file=None) -> np.ndarray:
    """(N, 118) float32 element-fraction vectors: entry Z-1 = the atomic fraction of element Z
    (pymatgen ``Composition(f).fractional_composition``). Defined for every parseable formula; an
    unparseable one raises DataError naming ``file`` and the row. Computed once per distinct formula."""
    formulas = list(formulas)
    out = np.zeros((len(formulas), MAX_Z), np.float32)
    cache: dict[str, np.ndarray] = {}
    for i, f in enumerate(formulas):
        if f not in cache:
            comp = parse_formula(f, file=file, row=i + 1, field="formula").fractional_composition
            v = np.zeros(MAX_Z, np.float32)
            for el, amt in comp.items():
                v[el.Z - 1] += float(amt)
            cache[f] = v
        out[i] = cache[f]
    return out


def magpie(formulas, cache: dict | None = None) -> np.ndarray:
    """matminer's Magpie preset (132 features): ``features.composition.magpie_features``; ``cache``
    (formula -> row) may be shared between targets."""
    return magpie_features(list(formulas), cache=cache)


def _table_tensor(tables: np.ndarray) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(tables), dtype=torch.float32)
    if t.ndim != 3 or tuple(t.shape[1:]) != (85, 8):
        raise MatreproError(f"atom tables must have shape (N, 85, 8), got {tuple(t.shape)}")
    return t.unsqueeze(1)


@torch.no_grad()
def gan_features(critic, tables: np.ndarray, batch_size: int = 2048, device=None) -> np.ndarray:
    """(N, critic.n_features) float32: ``critic.features`` on each (85, 8) table, in eval mode.

    A row whose table is all zeros (an unencodable composition) gets a NaN row, so that it is never
    featurised as an "empty composition". The critic is moved to ``device`` (default: its own
    device) and left in the training mode it had."""
    tables = np.asarray(tables)
    n = len(tables)
    out = np.full((n, int(critic.n_features)), np.nan, np.float32)
    empty = ~tables.reshape(n, -1).any(axis=1) if n else np.zeros(0, bool)
    idx = np.flatnonzero(~empty)
    if device is None:
        device = next(critic.parameters()).device
    was_training = critic.training
    critic.to(device).eval()
    try:
        for i in range(0, len(idx), batch_size):
            j = idx[i:i + batch_size]
            f = critic.features(_table_tensor(tables[j]).to(device))
            out[j] = f.reshape(len(j), -1).float().cpu().numpy()
    finally:
        critic.train(was_training)
    return out


@dataclass
class TableBatch:
    """Atom tables as (N, 1, 85, 8) float and (z-scored or raw) targets (or None): the critic
    fine-tuning data, following ``core.train``'s Batch protocol."""
    x: torch.Tensor
    y: torch.Tensor | None = None

    @classmethod
    def from_tables(cls, tables: np.ndarray, y=None) -> "TableBatch":
        x = _table_tensor(tables)
        yt = None if y is None else torch.as_tensor(np.asarray(y, np.float32))
        if yt is not None and len(yt) != len(x):
            raise MatreproError(f"TableBatch: {len(x)} tables but {len(yt)} targets")
        return cls(x, yt)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx) -> "TableBatch":
        return TableBatch(self.x[idx], None if self.y is None else self.y[idx])

    def to(self, device) -> "TableBatch":
        return TableBatch(self.x.to(device), None if self.y is None else self.y.to(device))

    def inputs(self) -> tuple[torch.Tensor]:
        return (self.x,)


# ----------------------------------------------------------------------------------- predictors
def _nonfinite_to_nan(a: np.ndarray, inf_only: bool = False) -> np.ndarray:
    """``a`` with inf (and, unless ``inf_only``, NaN) as NaN; no copy when there is nothing to replace."""
    a = np.asarray(a)
    bad = np.isinf(a) if inf_only else ~np.isfinite(a)
    return np.where(bad, np.nan, a) if bad.any() else a


def mlp_inputs(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, clip: float | None) -> np.ndarray:
    """The MLP's input rows: standardised with the training rows' ``mean`` and ``scale``, NaN/inf -> 0
    after scaling, then clipped to +-``clip`` standard deviations when ``clip`` is set. The one
    transform that training (``train_predictors``) and the exported model (``papers.gan.predict``) apply."""
    xs = np.nan_to_num((_nonfinite_to_nan(x) - mean) / scale, nan=0.0, posinf=0.0, neginf=0.0)
    return xs if clip is None else np.clip(xs, -float(clip), float(clip))


def _predictors(cfg: dict) -> list[str]:
    preds = list(cfg.get("predictors", PREDICTORS))
    bad = sorted(set(preds) - set(PREDICTORS))
    if bad:
        raise MatreproError(f"params.yaml gan.predictors: unknown {bad} (known: {list(PREDICTORS)})")
    return preds


def train_predictors(X: dict[str, np.ndarray], y: dict[str, np.ndarray], cfg: dict, seed: int,
                     timings: dict | None = None, keep: dict | None = None) -> dict[str, np.ndarray]:
    """The same predictors, with the same settings, on any feature matrices X[train/val/test]:
    {"rf": test predictions, "mlp": test predictions} (those in ``cfg["predictors"]``).

    * ``rf``: RandomForestRegressor(cfg["rf"]["n_estimators"], n_jobs=cfg["rf"].get("n_jobs", 1),
      max_features=cfg["rf"].get("max_features", 1.0), random_state=seed) on the raw features (inf -> NaN; sklearn's forest handles NaN);
    * ``mlp``: the registered ``mlp`` (cfg["mlp"] arguments) through ``core.train.fit`` with
      ``TrainConfig.from_dict(cfg["mlp_train"])``; inputs standardised on train, NaN/inf -> 0
      after scaling, then clipped to +-``cfg["mlp_input_clip"]`` standard deviations (when set:
      a feature that is nearly constant on train must not turn one unusual test row into an
      input thousands of standard deviations out); the target z-scored on train
      (``TargetScaler``) and unscaled back.

    ``timings`` (optional) receives the seconds each predictor took; ``keep`` (optional) receives the
    trained MLP as plain data (``keep["mlp"]``: weights, settings and both scalers), the member
    checkpoint that ``papers.gan.predict`` applies."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.preprocessing import StandardScaler

    for s in PARTS:
        if len(X[s]) != len(y[s]):
            raise MatreproError(f"train_predictors: {s} has {len(X[s])} feature rows but {len(y[s])} targets")
    timings = {} if timings is None else timings
    out = {}
    for name in _predictors(cfg):
        t0 = time.perf_counter()
        if name == "rf":
            rcfg = cfg["rf"]
            clean = {s: _nonfinite_to_nan(X[s], inf_only=True) for s in ("train", "test")}
            rf = RandomForestRegressor(n_estimators=int(rcfg["n_estimators"]), n_jobs=rcfg.get("n_jobs", 1),
                                       max_features=rcfg.get("max_features", 1.0), random_state=seed)
            rf.fit(clean["train"], np.asarray(y["train"], float))
            out["rf"] = rf.predict(clean["test"])
        else:
            sc = StandardScaler().fit(_nonfinite_to_nan(X["train"]))
            ys = TargetScaler(y["train"])

            clip = cfg.get("mlp_input_clip")

            def fb(s):
                xs = mlp_inputs(X[s], sc.mean_, sc.scale_, clip)
                return FeatureBatch(torch.as_tensor(xs, dtype=torch.float32),
                                    torch.as_tensor(ys.scale(y[s]), dtype=torch.float32))

            set_seed(seed)
            mlp = build_model("mlp", n_features=X["train"].shape[1], **cfg.get("mlp", {}))
            fit(mlp, fb("train"), fb("val"), TrainConfig.from_dict(cfg["mlp_train"]), seed=seed,
                device=get_device(), progress=False)
            out["mlp"] = ys.unscale(predict(mlp, fb("test")))
            if keep is not None:
                keep["mlp"] = {"model": "mlp", "config": {"n_features": int(X["train"].shape[1]), **cfg.get("mlp", {})},
                               "weights": {k: v.detach().cpu().clone() for k, v in mlp.state_dict().items()},
                               "x_mean": torch.as_tensor(sc.mean_, dtype=torch.float64),
                               "x_scale": torch.as_tensor(sc.scale_, dtype=torch.float64),
                               "clip": None if clip is None else float(clip),
                               "y_mean": float(ys.mean), "y_std": float(ys.std), "seed": int(seed)}
        timings[name] = round(time.perf_counter() - t0, 2)
    return out


def finetune_model_args(cfg: dict) -> dict:
    """``matgan_finetune`` arguments: the critic's architecture (cfg["critic"]: width, norm) and
    the head (cfg["finetune_model"]: hidden, dropout)."""
    return {**cfg.get("critic", {}), **cfg.get("finetune_model", {})}


def finetune_critic(critic_state: dict, tables: dict[str, np.ndarray], y: dict, cfg: dict, seed: int,
                    model_args: dict) -> np.ndarray:
    """Test predictions of the critic body fine-tuned with a regression head: ``matgan_finetune``
    built from ``model_args``, the trained critic's weights loaded, the target z-scored on train,
    trained through ``core.train.fit`` with ``TrainConfig.from_dict(cfg["finetune_train"])``."""
    ys = TargetScaler(y["train"])
    batch = {s: TableBatch.from_tables(tables[s], ys.scale(y[s])) for s in PARTS}
    set_seed(seed)
    model = build_model("matgan_finetune", **model_args)
    model.load_critic(copy.deepcopy(critic_state))
    fit(model, batch["train"], batch["val"], TrainConfig.from_dict(cfg["finetune_train"]), seed=seed,
        device=get_device(), progress=False)
    return ys.unscale(predict(model, batch["test"], batch_size=1024))


# ------------------------------------------------------------------------------------ one target
def _summarise(rep: str, pred: str, per_seed: list[dict]) -> dict:
    agg = aggregate([{k: r[k] for k in ("mae", "rmse", "r2")} for r in per_seed])
    out = {"representation": rep, "predictor": pred, "per_seed": per_seed}
    for k, v in agg.items():
        out[k], out[f"{k}_std"] = v["mean"], v["std"]
    return out


def _encoded_mask(parts, tables, status) -> dict[str, np.ndarray]:
    masks = {}
    for s in PARTS:
        df, st, tab = parts[s], status[s], np.asarray(tables[s])
        if not (len(df) == len(st) == len(tab)):
            raise MatreproError(f"{s}: {len(df)} rows, {len(st)} status rows and {len(tab)} tables (must match)")
        if "formula" in st and not (st["formula"].astype(str).to_numpy() == df["formula"].astype(str).to_numpy()).all():
            raise MatreproError(f"{s}: the status table's formulas are not the rows' formulas in order")
        enc = (st["status"] != UNENCODABLE).to_numpy()
        empty = ~tab.reshape(len(tab), -1).any(axis=1)
        if (enc & empty).any():
            i = int(np.flatnonzero(enc & empty)[0])
            raise DataError(f"{s} part", f"formula {df.formula.iloc[i]!r} has status {st.status.iloc[i]!r} "
                                         "but an all-zero table", row=i + 1, field="formula")
        masks[s] = enc
    return masks


def run_target(parts: dict[str, pd.DataFrame], tables: dict[str, np.ndarray], status: dict[str, pd.DataFrame],
               critic, critic_state: dict, cfg: dict, seeds, magpie_cache: dict | None = None,
               keep_models: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """Every representation x predictor x seed on one target; returns (results, test predictions).

    ``parts[s]`` holds columns row, formula, target; ``tables[s]`` and ``status[s]`` are the atom
    tables and their status rows (``atom_table.encode_formulas``) in the same order.

    results: ``rows`` (per part: rows encoded, all rows, rows left out as unencodable, table status
    counts), ``n_features``, ``seeds`` and ``blocks``: ``encoded`` (the comparison: the same encoded
    rows for every representation, plus ``gan_finetune`` when ``cfg["finetune"]``) and ``all``
    (Magpie and one-hot on every row); each block's ``models[key]`` has the per-seed test MAE, RMSE,
    R² and their mean and sample std over seeds (``core.metrics.aggregate``).
    predictions: one row per test row (row, formula, target, table_status), one column per block
    model with its seed-mean test prediction: ``<rep>_<predictor>`` for the encoded block (NaN on
    rows left out), ``<rep>_<predictor>_all`` for the all block, and ``gan_finetune``.

    ``keep_models`` (optional dict) receives the paper's model, the frozen critic features + MLP of
    the encoded block, one member per seed (``{seed: member}``), for ``matrepro predict gan``."""
    seeds = list(seeds)
    if not seeds:
        raise MatreproError("run_target: no seeds")
    reps = list(cfg.get("representations", REPRESENTATIONS))
    bad = sorted(set(reps) - set(REPRESENTATIONS))
    if bad:
        raise MatreproError(f"params.yaml gan.representations: unknown {bad} (known: {list(REPRESENTATIONS)})")
    preds_names = _predictors(cfg)
    do_finetune = bool(cfg.get("finetune", True))
    masks = _encoded_mask(parts, tables, status)
    n_enc = {s: int(masks[s].sum()) for s in PARTS}
    for s, need in (("train", 2), ("val", 1), ("test", 1)):
        if n_enc[s] < need:
            raise MatreproError(f"{s}: only {n_enc[s]} rows the atom table encodes; the encoded comparison "
                                f"needs at least {need}")
    n_all = {s: len(parts[s]) for s in PARTS}
    left_out = {s: n_all[s] - n_enc[s] for s in PARTS}
    rows = {"encoded": n_enc, "all": n_all, "left_out_unencodable": left_out,
            "table_status": {s: {k: int((status[s]["status"] == k).sum()) for k in ("exact", "approximated", UNENCODABLE)}
                             for s in PARTS}}
    y_all = {s: parts[s]["target"].to_numpy(float) for s in PARTS}
    y_enc = {s: y_all[s][masks[s]] for s in PARTS}

    # features: computed once (deterministic); only the predictors vary with the seed
    feats_all: dict[str, dict[str, np.ndarray]] = {}
    if "magpie" in reps:
        feats_all["magpie"] = {s: magpie(parts[s]["formula"], magpie_cache) for s in PARTS}
    if "onehot" in reps:
        feats_all["onehot"] = {s: onehot_features(parts[s]["formula"], file=f"{s} part") for s in PARTS}
    feats_enc = {r: {s: X[s][masks[s]] for s in PARTS} for r, X in feats_all.items()}
    if "gan" in reps:
        feats_enc["gan"] = {s: gan_features(critic, np.asarray(tables[s])[masks[s]]) for s in PARTS}
    n_features = {r: int(next(iter(X.values())).shape[1]) for r, X in feats_enc.items()}

    test = parts["test"]
    out_pred = pd.DataFrame({"row": test["row"].to_numpy() if "row" in test else np.arange(1, len(test) + 1),
                             "formula": test["formula"].to_numpy(), "target": y_all["test"],
                             "table_status": status["test"]["status"].to_numpy()})

    def run_block(block: str, feats: dict, y: dict, rep_list: list[str]) -> dict:
        models = {}
        for rep in rep_list:
            per_seed = {p: [] for p in preds_names}
            pred_sum = {p: np.zeros(len(y["test"])) for p in preds_names}
            for seed in seeds:
                timings: dict = {}
                keep = {} if (keep_models is not None and block == "encoded" and rep == "gan") else None
                yhat = train_predictors(feats[rep], y, cfg, seed, timings=timings, keep=keep)
                if keep and "mlp" in keep:
                    keep_models[seed] = keep["mlp"]
                for p in preds_names:
                    per_seed[p].append({"seed": seed, **regression_metrics(y["test"], yhat[p]), "seconds": timings[p]})
                    pred_sum[p] += yhat[p]
            for p in preds_names:
                key = f"{rep}_{p}"
                models[key] = {**_summarise(rep, p, per_seed[p]), "n_features": n_features[rep]}
                col = key if block == "encoded" else f"{key}_all"
                mask = masks["test"] if block == "encoded" else np.ones(len(test), bool)
                out_pred[col] = np.nan
                out_pred.loc[mask, col] = pred_sum[p] / len(seeds)
            log.info("%s block: %s done (%s)", block, rep, ", ".join(f"{p} MAE {models[f'{rep}_{p}']['mae']:.4g}"
                                                                       for p in preds_names))
        return models

    blocks = {"encoded": {"rows": n_enc, "left_out_unencodable": left_out,
                          "description": "rows the atom table encodes (status exact or approximated) in every "
                                         "part; the same rows for every representation",
                          "models": run_block("encoded", feats_enc, y_enc, reps)}}
    if do_finetune:
        per_seed, pred_sum = [], np.zeros(n_enc["test"])
        enc_tables = {s: np.asarray(tables[s])[masks[s]] for s in PARTS}
        for seed in seeds:
            t0 = time.perf_counter()
            yhat = finetune_critic(critic_state, enc_tables, y_enc, cfg, seed, finetune_model_args(cfg))
            per_seed.append({"seed": seed, **regression_metrics(y_enc["test"], yhat),
                             "seconds": round(time.perf_counter() - t0, 2)})
            pred_sum += yhat
        blocks["encoded"]["models"][FINETUNE] = _summarise(FINETUNE, "finetune", per_seed)
        out_pred[FINETUNE] = np.nan
        out_pred.loc[masks["test"], FINETUNE] = pred_sum / len(seeds)

    base = [r for r in reps if r != "gan"]
    copied = not any(left_out.values())
    blocks["all"] = {"rows": n_all, "copied_from_encoded": copied,
                     "description": "every row (Magpie and one-hot only: the GAN cannot featurise rows its "
                                    "table does not encode)"}
    if copied:  # same rows, same order, same seeds: the encoded block's numbers exactly
        blocks["all"]["models"] = {k: copy.deepcopy(v) for k, v in blocks["encoded"]["models"].items()
                                   if v["representation"] in base}
        for k in blocks["all"]["models"]:
            out_pred[f"{k}_all"] = out_pred[k]
    else:
        blocks["all"]["models"] = run_block("all", feats_all, y_all, base)
    res = {"seeds": seeds, "representations": reps, "predictors": preds_names, "finetune": do_finetune,
           "rows": rows, "n_features": n_features, "blocks": blocks}
    return res, out_pred


# ------------------------------------------------------------------------------- the stage
def run_representation(target: str, cfg: dict, model_dir, root=None, magpie_cache: dict | None = None,
                       keep: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """The gan_represent stage for one target: its parts (``data.load_target``), their 85 x 8
    tables, the trained critic (``model_dir``), then :func:`run_target` over ``cfg["seeds"]``.
    ``keep`` (optional dict) receives what ``papers.gan.predict.export_model`` needs to save the
    paper's model: ``members`` (critic features + MLP, one per seed), ``parts`` (the encoded rows),
    ``critic_state`` and ``settings``."""
    parts, flog = data.load_target(target, cfg, root)
    tables, status = data.encode_parts(parts, cfg, target)
    _, critic, settings = load_gan(model_dir)
    critic_state = {k: v.clone() for k, v in critic.state_dict().items()}
    members: dict | None = {} if keep is not None else None
    res, preds = run_target(parts, tables, status, critic, critic_state, cfg, cfg["seeds"],
                            magpie_cache if magpie_cache is not None else {}, keep_models=members)
    res.update({"target": target, "profile": cfg["profile"], "filters": flog.to_frame().to_dict("records"),
                "gan_settings": settings})
    if keep is not None:
        masks = _encoded_mask(parts, tables, status)
        keep.update(members=members, parts={s: parts[s][masks[s]].reset_index(drop=True) for s in PARTS},
                    critic_state=critic_state, settings=settings)
    return res, preds
