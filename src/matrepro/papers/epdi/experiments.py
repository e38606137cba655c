"""The paper's experiments on the computed data set: the ESP-E_b correlation, the model table,
the saddle-fraction learning curve and the potential-energy curves along held-out paths."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import learn
from .dataset import Images, image_stats


def correlation(data: Images, groups=("VIB",)) -> tuple[dict, pd.DataFrame]:
    """Local mean ESP (mean of the crop's central disc, radius a quarter of the width) against E_b
    at the Li sites of the doped hosts of ``groups`` (the paper's first finding). Pearson and
    Spearman r over all those sites; within each (host, site kind), where only the dopant and the
    site's distance to it vary; and the pooled within-group r (both variables minus their
    (host, site kind) means), which removes the offsets between hosts and between T and H sites."""
    from scipy import stats

    rows = data.rows
    m = ((rows.kind == "site") & (rows.dopant != "") & rows.group.isin(list(groups))).to_numpy()
    f = image_stats(data.x[m])
    df = rows[m][["surface", "host", "dopant", "site", "site_kind", "dist", "e_b"]].reset_index(drop=True)
    df["local_mean_esp_V"] = f["local_mean"].to_numpy()
    df["mean_esp_V"] = f["mean"].to_numpy()
    out = {"groups": list(groups), "n_sites": int(len(df)), "n_surfaces": int(df.surface.nunique())}
    if len(df) >= 3:
        r, p = stats.pearsonr(df.local_mean_esp_V, df.e_b)
        rho, _ = stats.spearmanr(df.local_mean_esp_V, df.e_b)
        out.update(pearson_r=float(r), pearson_p=float(p), spearman_rho=float(rho))
        by = {}
        for (host, kind), g in df.groupby(["host", "site_kind"]):
            if len(g) >= 3:
                by[f"{host} {kind}"] = {"n": int(len(g)), "pearson_r": float(stats.pearsonr(g.local_mean_esp_V, g.e_b)[0])}
        out["by_host_site_kind"] = by
        grp = df.groupby(["host", "site_kind"])
        df["esp_within_V"] = df.local_mean_esp_V - grp.local_mean_esp_V.transform("mean")
        df["e_b_within"] = df.e_b - grp.e_b.transform("mean")
        rw, pw = stats.pearsonr(df.esp_within_V, df.e_b_within)
        out.update(within_pearson_r=float(rw), within_pearson_p=float(pw), n_groups=int(grp.ngroups))
    return out, df


def model_table(data: Images, cfg: dict, source_weights: dict[str, str], progress: bool = True):
    """Every (architecture, source) of ``cfg['learn']['models']`` and each baseline, on the same
    saddle-fraction splits (``table_fraction``, ``table_draws``). Returns (summary rows, per-run rows,
    predictions)."""
    lc = cfg["learn"]
    runs, preds = [], []
    for draw in lc["table_draws"]:
        split = learn.saddle_split(data.rows, lc["target_hosts"], lc["table_fraction"], draw, lc["val_fraction"])
        for arch, sources in lc["models"].items():
            for source in sources:
                avail = _available(arch, source, source_weights)
                if avail is not True:
                    runs.append({"model": arch, "source": learn.model_label(arch, source), "draw": draw,
                                 "status": avail})
                    continue
                src = source_weights.get(arch, "") if source == "source_task" else source
                model, sc, hist, secs = learn.train_cnn(arch, src, data, split.train, split.val, lc, seed=draw,
                                                        desc=f"{arch}/{source} draw {draw}",
                                                        lr=learn.lr_for(source, lc))
                p = learn.predict(model, sc, data.x)
                runs.append({"model": arch, "source": learn.model_label(arch, source), "draw": draw, "status": "ok",
                             **learn.evaluate_split(p, data, split), "epochs": hist.epochs,
                             "best_epoch": hist.best_epoch, "train_seconds": secs})
                preds.append(_pred_frame(data, split, p, arch, learn.model_label(arch, source), draw))
        for kind in lc["baselines"]:
            p = learn.baseline(data, split, kind, seed=draw)
            runs.append({"model": f"{kind} on crop statistics", "source": "none", "draw": draw, "status": "ok",
                         **learn.evaluate_split(p, data, split)})
            preds.append(_pred_frame(data, split, p, f"{kind} on crop statistics", "none", draw))
    runs = pd.DataFrame(runs)
    return summarise(runs), runs, pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()


def _available(arch: str, source: str, source_weights: dict) -> bool | str:
    from ...models import images as cnn

    if source == "imagenet_hub_cache" and not cnn.imagenet_available(arch):
        return "skipped: ImageNet weights not in the torch hub cache (no download here)"
    if source == "source_task" and arch not in source_weights:
        return "skipped: no source-task weights for this architecture"
    return True


def _pred_frame(data: Images, split, p, model, source, draw) -> pd.DataFrame:
    r = data.rows.iloc[split.test]
    return pd.DataFrame({"model": model, "source": source, "draw": draw, "surface": r.surface.to_numpy(),
                         "path": r.path.to_numpy(), "image": r.image.to_numpy(), "is_saddle": r.is_saddle.to_numpy(),
                         "e_b": r.e_b.to_numpy(), "pred": p[split.test]})


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    ok = runs[runs.status == "ok"]
    if not len(ok):
        return pd.DataFrame()
    g = ok.groupby(["model", "source"], sort=False)
    s = g.agg(mae_saddle_eV=("mae_saddle_eV", "mean"), mae_saddle_std=("mae_saddle_eV", "std"),
              mae_test_eV=("mae_test_eV", "mean"), barrier_mae_eV=("barrier_mae_eV", "mean"),
              draws=("draw", "nunique"), n_train=("n_train", "mean"), n_test_saddles=("n_test_saddles", "mean"))
    return s.reset_index().sort_values("mae_saddle_eV").reset_index(drop=True)


def learning_curve(data: Images, cfg: dict, source_weights: dict[str, str], keep: dict | None = None) -> pd.DataFrame:
    """MAE on the test paths' saddles against the fraction of saddle points in training, for the
    curve model (DenseNet121 from the source task) and the ridge baseline, on seeded draws.

    If ``keep`` is a dict, the model trained at ``table_fraction``, draw 0 is stored in it
    (``model``, ``scaler``): :func:`pes_curves` uses exactly that model and need not train it again;
    ``keep["members"]`` gets every draw's model at that fraction (``{draw: (model, scaler, split)}``),
    the ensemble ``matrepro predict epdi`` applies."""
    lc = cfg["learn"]
    arch, source = lc["curve_model"]
    rows = []
    for frac in lc["fractions"]:
        for draw in lc["curve_draws"]:
            split = learn.saddle_split(data.rows, lc["target_hosts"], frac, draw, lc["val_fraction"])
            src = source_weights.get(arch, "") if source == "source_task" else source
            model, sc, hist, secs = learn.train_cnn(arch, src, data, split.train, split.val, lc, seed=draw,
                                                    desc=f"f={frac} draw {draw}", lr=learn.lr_for(source, lc))
            p = learn.predict(model, sc, data.x)
            if keep is not None and frac == lc["table_fraction"]:
                keep.setdefault("members", {})[draw] = (model, sc, split)
                if draw == 0:
                    keep.update(model=model, scaler=sc)
            rows.append({"model": f"{arch} ({learn.model_label(arch, source)})", "fraction": frac, "draw": draw,
                         **learn.evaluate_split(p, data, split), "epochs": hist.epochs, "train_seconds": secs})
            for kind in lc["baselines"]:
                pb = learn.baseline(data, split, kind, seed=draw)
                rows.append({"model": f"{kind} on crop statistics", "fraction": frac, "draw": draw,
                             **learn.evaluate_split(pb, data, split)})
    return pd.DataFrame(rows)


def pes_curves(data: Images, cfg: dict, source_weights: dict[str, str], paths_table: pd.DataFrame,
               trained: dict | None = None):
    """The curve model at ``table_fraction`` (draw 0) predicts E_b along every held-out path (every
    NEB image, endpoints included); the CNN route (crop + predict) is timed against the NEB's own
    wall time. ``trained`` is the ``keep`` dict filled by :func:`learning_curve` (the same split and
    seed); without it the model is trained here.
    Returns (curves per image, barriers per path, timing dict)."""
    lc = cfg["learn"]
    arch, source = lc["curve_model"]
    split = learn.saddle_split(data.rows, lc["target_hosts"], lc["table_fraction"], 0, lc["val_fraction"])
    src = source_weights.get(arch, "") if source == "source_task" else source
    if trained and "model" in trained:
        model, sc = trained["model"], trained["scaler"]
    else:
        model, sc, _, _ = learn.train_cnn(arch, src, data, split.train, split.val, lc, seed=0, desc="PES model",
                                          lr=learn.lr_for(source, lc))
    pred = learn.predict(model, sc, data.x)
    rows = data.rows.assign(pred=pred, key=learn.path_key(data.rows))
    curves = []
    for key in split.test_paths:  # endpoints: the path's own image 0 and n+1, predicted like any image
        for r in rows[(rows.key == key) & (rows.kind == "neb")].sort_values("image").itertuples():
            curves.append({"path": key, "image": int(r.image), "is_saddle": bool(r.is_saddle), "e_b_neb": r.e_b,
                           "e_b_cnn": float(r.pred)})
    curves = pd.DataFrame(curves)
    barriers = learn.barrier_errors(pred, data, split.test_paths)
    # wall time: the CNN route for one path = crop its images + predict; NEB = the generation's seconds
    from .imaging import crop
    from .dataset import read_maps

    maps = read_maps(data.meta["source"])
    t0 = time.perf_counter()
    n_img = 0
    for key in split.test_paths:
        p = rows[(rows.key == key) & (rows.kind == "neb")]
        phi, cell2 = maps[p.surface.iloc[0]]
        xs = np.stack([crop(phi, cell2, (r.x, r.y), data.meta["size"], data.meta["width_A"]) for r in p.itertuples()])
        learn.predict(model, sc, xs)
        n_img += len(p)
    cnn_s = (time.perf_counter() - t0) / max(1, len(split.test_paths))
    keys = set(split.test_paths)
    pt = paths_table.assign(key=paths_table.surface + "|" + paths_table.path)
    neb_s = float(pt[pt.key.isin(keys)].neb_seconds.mean())
    timing = {"cnn_seconds_per_path": cnn_s, "neb_seconds_per_path": neb_s, "speedup": neb_s / cnn_s,
              "images_per_path": n_img / max(1, len(split.test_paths)),
              "note": "CNN route: crop every image of the path from the stored ESP map and predict (the one GPAW map "
                      "per surface is not counted: it also serves every other path and site of that surface); NEB: "
                      "CHGNet climbing-image NEB wall time in the generation stage, endpoints' relaxations included"}
    return curves, barriers, timing


def save_json(obj, path) -> None:
    """JSON with NaN written as null (a skipped run has no MAE), numpy scalars as numbers."""
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(_clean(obj), indent=1, default=_default, allow_nan=False) + "\n")


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (float, np.floating)) and not np.isfinite(o):
        return None
    return o


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(type(o))
