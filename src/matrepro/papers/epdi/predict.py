"""epdi: predict the Li binding energy E_b at positions on an electrostatic-potential (ESP) map
(``matrepro predict epdi``).

A model is a folder ``models/epdi/e_b/`` written by the epdi_curves stage: the curve model
(DenseNet121 fine-tuned from the epdi source task, with the paper's 33 % of saddle points in
training), one member per seeded draw of that fraction (``draw<N>.pt``: architecture, weights and
the image/target standardisation), ``train_stats.csv`` (the crop statistics of the training images,
for the distance check) and ``card.json`` (core.cards) with the crop settings and the ESP settings
the maps must be computed with.

Input: a CSV with columns ``map``, ``x``, ``y`` (other columns are carried through). ``map`` is a
``.npz`` file (a path relative to the CSV's folder, or absolute) holding ``phi``, the 2-D ESP map
in V with the vacuum level at 0, sampled on the lateral cell's grid, and ``cell2``, the 2 x 2
lateral cell in A (rows a1, a2); ``x``, ``y`` are the Cartesian Li position in A. The repository's
own maps (``data/epdi/maps.npz``, computed with GPAW at the settings on the card) have this form
per surface; a user's map must be computed the same way (same plane height above the top
chalcogen layer, same units), or the prediction means nothing. The image fed to the CNN is the
``size x size`` crop, ``width`` A wide, centred on (x, y) (``imaging.crop``).

Per row: errors (not predicted) for a missing or unreadable map, a map without ``phi``/``cell2``
or with non-finite values, and a non-numeric position; else the prediction (eV, mean over the
members) and its spread, with the flag ``far_from_training``: the crop's statistics (mean, std,
min, max and central-disc mean of the ESP, standardised on the training images) farther from every
training image (Euclidean) than the 95th percentile of the same distance over the test images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...core.batch_input import RowErrors, read_table
from ...core.cards import load_member, read_card, write_card
from ...features.applicability import NearestTrainDistance
from ...models import build_model
from . import learn
from .dataset import image_stats
from .imaging import crop

TRAIN_STATS = "train_stats.csv"
INPUT = ("a CSV with columns map, x, y: map = an .npz (path relative to the CSV) with 'phi' (2-D ESP map, V, vacuum "
         "= 0) and 'cell2' (2 x 2 lateral cell, A); x, y = Cartesian Li position (A)")
QUANTILE = 0.95
DEFAULT = "e_b"
STAGE = "epdi_curves"


def _standardise(stats: pd.DataFrame, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (stats.to_numpy(np.float64) - mean) / std


def export_model(folder, data, cfg: dict, members: dict, metrics: dict) -> dict:
    """Write ``folder`` from ``members`` ({draw: (model, learn.Scaler, split)}, the curve model at
    the table fraction) and the stage's ``metrics`` (computed, never typed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*"):
        f.unlink()
    lc = cfg["learn"]
    arch = lc["curve_model"][0]
    names, train_idx, test_idx = [], set(), set()
    for draw, (model, sc, split) in sorted(members.items()):
        torch.save({"arch": arch, "config": {"dropout": float(lc["dropout"]), "image_size": int(data.x.shape[-1])},
                    "weights": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    "scaler": {"x_mean": sc.x_mean, "x_std": sc.x_std, "y_mean": sc.y_mean, "y_std": sc.y_std},
                    "draw": int(draw)}, folder / f"draw{draw}.pt")
        names.append(f"draw{draw}.pt")
        train_idx |= set(np.concatenate([split.train, split.val]).tolist())
        test_idx |= set(split.test.tolist())
    test_idx -= train_idx  # an image trained on by any member is not a test image of the ensemble
    tr, te = np.array(sorted(train_idx)), np.array(sorted(test_idx))
    stats = image_stats(data.x)
    mean, std = stats.iloc[tr].mean().to_numpy(), stats.iloc[tr].std(ddof=0).to_numpy()
    std = np.where(std > 0, std, 1.0)
    stats.iloc[tr].to_csv(folder / TRAIN_STATS, index=False, float_format="%.8g")
    dist = NearestTrainDistance(_standardise(stats.iloc[tr], mean, std), metric="euclidean")
    if len(te):
        dist.calibrate(_standardise(stats.iloc[te], mean, std), QUANTILE)
    rows = data.rows
    gen = cfg.get("gpaw", {})
    card = {"paper": "epdi", "name": "e_b", "target": "Li binding energy E_b at a position on a doped TMD monolayer",
            "unit": "eV", "profile": cfg["profile"], "stage": STAGE, "model": f"{arch} (epdi source task, fine-tuned)",
            "training": {"rows": {"train_images_union": int(len(tr)), "test_images_not_trained_on": int(len(te))},
                         "hosts": sorted(set(rows.host.iloc[tr])),
                         "dopants": sorted(d for d in set(rows.dopant.iloc[tr]) if d),
                         "target_hosts": list(lc["target_hosts"]), "saddle_fraction": lc["table_fraction"],
                         "draws": sorted(int(d) for d in members)},
            "image": {"size": int(data.meta["size"]), "width_A": float(data.meta["width_A"]),
                      "height_A": float(data.meta["height_A"]), "units": data.meta["units"]},
            "esp_settings": {"code": "GPAW LCAO", **{k: gen[k] for k in sorted(gen)},
                             "plane": f"{data.meta['height_A']} A above the top chalcogen layer"},
            "metrics": metrics, "input": INPUT, "members": names,
            "applicability": {"image_statistics": {**dist.describe(), "mean": mean.tolist(), "std": std.tolist(),
                                                   "features": list(stats.columns),
                                                   "distance": "Euclidean between standardised crop statistics, to "
                                                               "the nearest training image"}}}
    write_card(folder, card)
    return card


def table_members(data, cfg: dict, source_weights: dict, trained: dict) -> dict:
    """The curve model at the table fraction for every curve draw: ``trained["members"]`` as
    ``experiments.learning_curve(keep=trained)`` left it, plus any draw it did not train (when the
    table fraction is not among the curve's fractions, as in the smoke profile), trained here on the
    same split and seed. Also sets ``trained["model"]``/``["scaler"]`` (draw 0) for the PES curves."""
    lc = cfg["learn"]
    arch, source = lc["curve_model"]
    members = trained.setdefault("members", {})
    for draw in lc["curve_draws"]:
        if draw in members:
            continue
        split = learn.saddle_split(data.rows, lc["target_hosts"], lc["table_fraction"], draw, lc["val_fraction"])
        src = source_weights.get(arch, "") if source == "source_task" else source
        model, sc, _, _ = learn.train_cnn(arch, src, data, split.train, split.val, lc, seed=draw,
                                          desc=f"table fraction draw {draw}", lr=learn.lr_for(source, lc))
        members[draw] = (model, sc, split)
    first = min(members)
    if "model" not in trained:
        trained.update(model=members[first][0], scaler=members[first][1])
    return members


def curve_metrics(curve: pd.DataFrame, cfg: dict) -> dict:
    """The card's test metrics: the curve model's rows of the learning curve at the table fraction
    (mean and sample std over the draws)."""
    lc = cfg["learn"]
    arch, source = lc["curve_model"]
    r = curve[(curve.model == f"{arch} ({learn.model_label(arch, source)})")
              & np.isclose(curve.fraction, lc["table_fraction"])]
    out = {"split": f"held-out paths, {lc['table_fraction']:.0%} of saddle points in training", "draws": len(r)}
    if not len(r):  # the profile's curve does not include the table fraction (smoke)
        out["note"] = f"the learning curve has no point at {lc['table_fraction']}: no test metric on the card"
        return out
    for col, key in (("mae_saddle_eV", "mae"), ("mae_test_eV", "mae_all_test_images"), ("barrier_mae_eV", "barrier_mae")):
        out[key] = float(r[col].mean())
        out[f"{key}_std"] = float(r[col].std()) if len(r) > 1 else float("nan")
    out["mae_is"] = "MAE of E_b on the held-out paths' saddle images (the paper's measure)"
    return out


class Model:
    def __init__(self, folder):
        folder = Path(folder)
        self.card = read_card(folder)
        self.members = []
        for name in self.card["members"]:
            m = load_member(folder, name)
            net = build_model(m["arch"], source="scratch", **m["config"])
            net.load_state_dict(m["weights"], strict=True)
            net.eval()
            self.members.append((net, learn.Scaler(**m["scaler"])))
        app = self.card["applicability"]["image_statistics"]
        self.mean, self.std = np.asarray(app["mean"]), np.asarray(app["std"])
        train = pd.read_csv(folder / TRAIN_STATS)
        self.distance = NearestTrainDistance(_standardise(train, self.mean, self.std), app["metric"],
                                             threshold=app["threshold"], quantile=app["quantile"])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.stack([learn.predict(net, sc, x) for net, sc in self.members], axis=1)
        return p.mean(axis=1), (p.std(axis=1, ddof=1) if p.shape[1] > 1 else np.full(len(x), np.nan))


def _read_map(path: Path):
    """(phi, cell2) or an error message."""
    if not path.is_file():
        return f"map file {path} not found"
    try:
        with np.load(path, allow_pickle=False) as z:
            if "phi" not in z.files or "cell2" not in z.files:
                return f"{path}: needs arrays 'phi' and 'cell2' (has {sorted(z.files)})"
            phi, cell2 = np.asarray(z["phi"], np.float64), np.asarray(z["cell2"], np.float64)
    except Exception as exc:  # not an npz, truncated, pickled objects
        return f"{path}: not a readable .npz ({type(exc).__name__})"
    if phi.ndim != 2 or min(phi.shape) < 2 or cell2.shape != (2, 2):
        return f"{path}: phi must be 2-D and cell2 2 x 2 (got {phi.shape} and {cell2.shape})"
    if not np.isfinite(phi).all() or not np.isfinite(cell2).all() or abs(np.linalg.det(cell2)) < 1e-6:
        return f"{path}: non-finite values or a degenerate cell"
    return phi, cell2


def predict_file(folder, path) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = Model(folder)
    path = Path(path)
    df = read_table(path, ["map", "x", "y"])
    errors = RowErrors()
    size, width = model.card["image"]["size"], model.card["image"]["width_A"]
    maps: dict[Path, object] = {}
    keep, images = [], []
    for i, r in enumerate(df.itertuples()):
        try:
            xy = (float(r.x), float(r.y))
            if not np.isfinite(xy).all():
                raise ValueError
        except ValueError:
            bad = "x" if not _is_number(r.x) else "y"
            errors.add(path, r.row, bad, f"not a number: {getattr(r, bad)!r}")
            continue
        mp = Path(r.map) if Path(r.map).is_absolute() else path.parent / r.map
        if mp not in maps:
            maps[mp] = _read_map(mp)
        got = maps[mp]
        if isinstance(got, str):
            errors.add(path, r.row, "map", got)
            continue
        images.append(crop(got[0], got[1], xy, size, width))
        keep.append(i)
    out = df.iloc[keep].reset_index(drop=True)
    if keep:
        x = np.stack(images)
        mean, spread = model.predict(x)
        d, far = model.distance.far(_standardise(image_stats(x), model.mean, model.std))
    else:
        mean = spread = d = np.zeros(0)
        far = np.zeros(0, bool)
    out["prediction"] = mean
    out["spread"] = spread
    out["n_models"] = len(model.members)
    out["unit"] = "eV"
    out["nearest_train_distance"] = np.round(d, 4)
    out["flags"] = np.where(far, "far_from_training", "")
    return out, errors.frame()


def _is_number(s) -> bool:
    try:
        return bool(np.isfinite(float(s)))
    except ValueError:
        return False
