"""lgdcnn benchmark: the 28 per-dataset stages and the learning curves. On each task (each
matbench fold) our L-G-DCNN, the peers trained here from their own packages (CrabNet, Roost;
``peers``) and the Magpie baselines run on exactly the same rows, folds and epoch budget, over the
task plan's seeds; then the gathering: seed statistics, verdicts, power-law extrapolation.

Every single training run (task, fold, model, seed) is recorded by a hash of everything that
decides it (rows, settings, the code of the model, features, peers and training loop, package
versions), so a stage stopped half-way resumes at its first unfinished run:

* ``results/lgdcnn/runs/<key>.json`` (committed): the run's metrics and test predictions. Long
  cpu-profile training spans several sessions; committing each finished run keeps it. A stage
  gathers these records instead of retraining; a changed setting or code file changes the key.
* ``.cache/lgdcnn/`` (machine-local, not committed): ``<key>.ckpt``, the state of a training in
  progress (core.timed_checkpoint: the training state and the run's clock, so a resumed run records
  its whole cost; saved every 10 minutes; removed when the run is recorded),
  ``<key>.pt``, a trained network's weights (for ``matrepro predict``), and ``claims/`` (warm).

``$MATREPRO_LGDCNN_CACHE`` replaces both folders (tests; retraining from scratch into a new folder).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ...core.checkpoint import Checkpoint
from ...core.config import deep_merge
from ...core.errors import MatreproError
from ...core.metrics import regression_metrics
from ...core.paths import project_root
from ...core.scaling import fit_power_law
from ...core.timed_checkpoint import TimedCheckpoint, run_cost
from ...models import count_parameters
from . import peers as peer_mod
from .experiments import predict_network, train_magpie_baselines, train_network
from .tasks import EXTENDED, SPLITS, load_task, task_label, task_unit

RUN_VERSION = 2  # bump when a change outside the hashed files (e.g. here) changes what a cached run gives
# The code each kind of run executes (relative to src/matrepro): an edit re-runs only the kinds that
# run the edited file, e.g. a change to our training loop keeps the CrabNet and Roost runs.
_DATA = ("core/device.py", "features/composition.py", "features/suites.py", "papers/lgdcnn/tasks.py")
_OURS = _DATA + ("core/train.py", "core/swa.py", "core/precision.py", "models/composition.py",
                 "papers/lgdcnn/experiments.py")
_HASHED = {"network": _OURS, "baseline": _OURS, "peer": _DATA + ("papers/lgdcnn/peers.py",)}


def run_cache_dir() -> Path:
    """Machine-local state: checkpoints of trainings in progress, weights, claims."""
    env = os.environ.get("MATREPRO_LGDCNN_CACHE")
    return Path(env) if env else project_root() / ".cache" / "lgdcnn"


def run_record_dir() -> Path:
    """The finished runs' records (JSON, committed)."""
    env = os.environ.get("MATREPRO_LGDCNN_CACHE")
    return Path(env) if env else project_root() / "results" / "lgdcnn" / "runs"


def _code_digest(kind: str) -> str:
    h = hashlib.sha256()
    src = Path(__file__).resolve().parents[2]
    for f in _HASHED[kind]:
        h.update((src / f).read_bytes())
    return h.hexdigest()[:16]


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "numpy", "scikit-learn", "matminer", "crabnet", "aviary-models"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def run_key(kind: str, name: str, task: str, fold, seed: int, cfg: dict, parts: dict) -> str:
    """sha256 of everything that decides one run: which rows (their file row numbers), the
    settings that reach it, the code it runs and the package versions."""
    rows = hashlib.sha256(json.dumps({s: parts[s].row.tolist() for s in SPLITS}).encode()).hexdigest()
    spec = {"v": RUN_VERSION, "kind": kind, "name": name, "task": task, "fold": fold, "seed": seed, "rows": rows,
            "train": cfg["train"], "element_table": cfg["element_table"], "model": cfg["models"].get(name),
            "peer": (cfg.get("peers") or {}).get(name), "baselines": cfg["baselines"] if kind == "baseline" else None,
            "n_slots": parts["train"].attrs.get("n_slots"), "code": _code_digest(kind), "versions": _versions()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]


CHECKPOINT_SECONDS = 600  # a running training saves its state this often (resumed after a kill)


def _checkpoint(key: str, use_cache: bool) -> Checkpoint | None:
    return TimedCheckpoint(run_cache_dir() / f"{key}.ckpt", CHECKPOINT_SECONDS) if use_cache else None


def _cached(key: str, fn, use_cache: bool = True) -> dict:
    """``fn(checkpoint)`` -> {'metrics': ..., 'pred': [...]}, recorded under the run key
    (``run_record_dir()/<key>.json``). ``checkpoint``: where the training saves its state while it
    runs (``run_cache_dir()/<key>.ckpt``; None without the cache), removed once the run is recorded."""
    path = run_record_dir() / f"{key}.json"
    if use_cache and path.is_file():
        return json.loads(path.read_text())
    ck = _checkpoint(key, use_cache)
    out = fn(ck)
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(path)
        ck.clear()
    return out


def _save_weights(key: str, tr, use_cache: bool) -> None:
    """Our trained network (``run_cache_dir()/<key>.pt``: spec, weights, scaler, slots), for the
    checkpoints of ``matrepro predict``."""
    if use_cache:
        path = run_cache_dir() / f"{key}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(tr.artifact(), tmp)
        tmp.replace(path)


def _agg(per_seed: list[dict]) -> dict:
    maes = [r["mae"] for r in per_seed]
    return {"per_seed": per_seed, "mae": float(np.mean(maes)),
            "mae_std": float(np.std(maes, ddof=1)) if len(maes) > 1 else None}


def network_record(parts: dict, m: str, cfg: dict, seed: int, key: str, ck, desc: str, root=None,
                   use_cache: bool = True) -> dict:
    """One training of our network ``m``: the run record (test metrics, run facts, test predictions),
    and its weights beside the record. The task and learning-curve stages both write runs through
    this, so a run that both need (same rows, settings and seed: the same run key) is interchangeable."""
    c0 = time.process_time()
    tr = train_network(parts, m, cfg, seed, desc=desc, root=root, checkpoint=ck)
    _save_weights(key, tr, use_cache)
    y = predict_network(tr, parts["test"])
    return {"metrics": {**regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                        **run_cost(ck, tr.seconds, time.process_time() - c0),
                        "threads": torch.get_num_threads(), "batch_size": tr.batch_size,
                        "swa_checks": tr.history.swa_checks, "n_slots": tr.n_slots,
                        "n_parameters": count_parameters(tr.model),
                        "precision": cfg["train"].get("precision", "fp32")},
            "pred": [float(v) for v in y]}


def peer_record(parts: dict, p: str, cfg: dict, seed: int, ck, desc: str) -> dict:
    """One training of the peer ``p`` (CrabNet, Roost): its run record, as :func:`network_record`."""
    c0 = time.process_time()
    pr = peer_mod.train_peer(p, parts, cfg, seed, desc=desc, checkpoint=ck)
    y = pr.predict(parts["test"])
    return {"metrics": {**regression_metrics(parts["test"].target, y), "epochs": pr.epochs,
                        **run_cost(ck, pr.seconds, time.process_time() - c0),
                        "threads": torch.get_num_threads(), "batch_size": pr.batch_size,
                        "n_parameters": pr.n_parameters},
            "pred": [float(v) for v in y]}


def _test_predictions(record: dict, key: str, n_test: int) -> list:
    if len(record["pred"]) != n_test:
        raise MatreproError(f"run record {run_record_dir() / (key + '.json')}: {len(record['pred'])} test predictions "
                            f"for {n_test} test rows (written by an older version?): delete it to re-run")
    return record["pred"]


def run_fold(task: str, fold, cfg: dict, magpie_cache: dict, root: Path | None = None, models=None, peers=None,
             baselines: bool = True, use_cache: bool = True, loaded: tuple | None = None) -> tuple[dict, pd.DataFrame]:
    """One task (one matbench fold): our networks and the peers over ``cfg['seeds']``, and the Magpie
    baselines (first seed), all on the same rows. ``cfg`` is the task's plan (:func:`tasks.task_config`).
    Returns (result dict, test predictions; each model's column is its mean over seeds)."""
    parts, flog = loaded or load_task(task, fold, cfg, root)  # ``loaded``: (parts, filter log) already read
    name = task + ("" if fold is None else f"/fold{fold}")
    res = {"task": task, "fold": fold, "label": task_label(task), "unit": task_unit(task),
           "benchmark": "extended" if task in EXTENDED else "matbench", "profile": cfg["profile"],
           "regime": cfg.get("regime"), "caps": cfg.get("caps"), "train": cfg["train"],
           "rows": {s: len(parts[s]) for s in SPLITS}, "filters": flog.to_frame().to_dict("records"),
           "seeds": cfg["seeds"], "models": {}}
    preds = parts["test"][["row", "formula", "target"]].copy()
    y_true = parts["test"].target

    def ours(m, seed, key, ck):
        return network_record(parts, m, cfg, seed, key, ck, f"{name} {m} s{seed}", root, use_cache)

    def peer(p, seed, key, ck):
        return peer_record(parts, p, cfg, seed, ck, f"{name} {p} s{seed}")

    jobs = [("network", m, ours) for m in (cfg["benchmark_models"] if models is None else models)]
    jobs += [("peer", p, peer) for p in (cfg.get("benchmark_peers", []) if peers is None else peers)]
    for kind, m, fn in jobs:
        if kind == "peer":
            ok = peer_mod.peer_available(m)
            if ok is not True:
                raise MatreproError(f"lgdcnn peer {m!r} is not installed: {ok}")
        keys = [run_key(kind, m, task, fold, seed, cfg, parts) for seed in cfg["seeds"]]
        runs = [_cached(key, lambda ck, m=m, seed=seed, key=key: fn(m, seed, key, ck), use_cache)
                for seed, key in zip(cfg["seeds"], keys)]
        res["models"][m] = _agg([r["metrics"] for r in runs])
        preds[m] = np.mean([_test_predictions(r, k, len(preds)) for r, k in zip(runs, keys)], axis=0)
    if baselines:
        def base(ck):
            t0 = time.perf_counter()
            out = train_magpie_baselines(parts, cfg, cfg["seeds"][0], magpie_cache)
            secs = round(time.perf_counter() - t0, 1)
            return {"metrics": {m: {**regression_metrics(y_true, y), "seconds": secs} for m, y in out.items()},
                    "pred": {m: [float(v) for v in y] for m, y in out.items()}}
        b = _cached(run_key("baseline", "magpie", task, fold, cfg["seeds"][0], cfg, parts), base, use_cache)
        for m, met in b["metrics"].items():
            res["models"][m] = _agg([met])
            preds[m] = b["pred"][m]
    return res, preds


def run_task(task: str, cfg: dict, out_dir: str | Path, root: Path | None = None, use_cache: bool = True) -> list[dict]:
    """Every fold of one task's plan; writes ``<out_dir>/<given_split|fold<k>>.json`` and the test
    predictions beside them (the stage's output folder)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    magpie_cache: dict = {}
    results = []
    for fold in tqdm(cfg["folds"], desc=task, disable=len(cfg["folds"]) < 2):
        stem = "given_split" if fold is None else f"fold{fold}"
        res, preds = run_fold(task, fold, cfg, magpie_cache, root, use_cache=use_cache)
        (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
        preds.to_csv(out_dir / f"{stem}_predictions.csv.gz", index=False, float_format="%.6g",
                     compression={"method": "gzip", "mtime": 0})
        results.append(res)
    return results


def task_networks(task: str, plan: dict, root: Path | None = None) -> tuple[dict, dict, dict]:
    """Our trained networks of the task's first fold, for ``matrepro predict``: (parts, {seed:
    artifact}, test metrics of exactly these networks). A network whose weights are not on this
    machine (``<key>.pt``; the committed run records carry metrics only) is trained again under the
    same run key. On the machine that recorded the run this gives the same network; on another CPU
    the last bits of the arithmetic can differ and a 300-epoch run drift, so the metrics are those
    of the networks shipped, with the recorded MAE beside them."""
    import logging

    fold = plan["folds"][0]
    parts, _ = load_task(task, fold, plan, root)
    model = plan["benchmark_models"][0]
    arts, maes, recorded = {}, [], []
    for seed in plan["seeds"]:
        one = dict(plan, seeds=[seed])
        key = run_key("network", model, task, fold, seed, one, parts)
        pt = run_cache_dir() / f"{key}.pt"
        record = run_record_dir() / f"{key}.json"
        if not pt.is_file():
            ck, c0 = _checkpoint(key, True), time.process_time()
            tr = train_network(parts, model, one, seed, desc=f"{task} {model} s{seed} (weights)", root=root,
                               checkpoint=ck)
            _save_weights(key, tr, True)
            if not record.is_file():
                y = predict_network(tr, parts["test"])
                cost = run_cost(ck, tr.seconds, time.process_time() - c0)
                _cached(key, lambda _: {"metrics": {**regression_metrics(parts["test"].target, y),
                                                    "epochs": tr.history.epochs, **cost},
                                        "pred": [float(v) for v in y]})
            ck.clear()
        arts[seed] = torch.load(pt, map_location="cpu", weights_only=True)
        y = _predict_artifact(arts[seed], parts["test"], root)
        maes.append(float(np.mean(np.abs(y - parts["test"].target.to_numpy(float)))))
        recorded.append(json.loads(record.read_text())["metrics"]["mae"])
        if not np.isclose(maes[-1], recorded[-1], rtol=1e-5):
            logging.getLogger(__name__).warning("%s seed %s: shipped network's test MAE %.6g, recorded run %.6g "
                                                "(retrained on another machine?)", task, seed, maes[-1], recorded[-1])
    metrics = {"fold": fold, "seeds": list(plan["seeds"]), "mae": float(np.mean(maes)),
               "mae_std": float(np.std(maes, ddof=1)) if len(maes) > 1 else 0.0, "mae_per_seed": maes,
               "recorded_mae_per_seed": recorded, "recorded_in": "results/lgdcnn/runs"}
    return parts, arts, metrics


def _predict_artifact(art: dict, df: pd.DataFrame, root: Path | None = None) -> np.ndarray:
    """Test predictions of a saved network (``Trained.artifact()``), in target units."""
    from ...core.train import predict
    from ...features.composition import make_batch
    from ...models import build_model
    from .tasks import get_element_table

    spec = art["spec"]
    net = build_model(spec["model"], element_table=get_element_table(spec["element_table"], root), **spec["config"])
    net.load_state_dict(art["weights"], strict=True)
    z = predict(net, make_batch(df, int(art["n_slots"])), device="cpu")
    return np.asarray(z, np.float64) * art["scaler"]["std"] + art["scaler"]["mean"]


def pending_tasks(results_dir: str | Path, tasks: list[str]) -> list[str]:
    """The tasks whose stage has not written results yet (a long cpu run fills them in stage by stage)."""
    return [t for t in tasks if not list((Path(results_dir) / t).glob("*.json"))]


def load_results(results_dir: str | Path, tasks: list[str] | None = None, allow_missing: bool = False) -> list[dict]:
    """Every fold result under ``results/lgdcnn/tasks/<task>/`` (in ``tasks`` order when given). A
    task without results is an error, unless ``allow_missing`` (then see :func:`pending_tasks`)."""
    d = Path(results_dir)
    names = tasks if tasks is not None else sorted(p.name for p in d.iterdir() if p.is_dir())
    out = []
    for t in names:
        files = sorted((d / t).glob("*.json"))
        if not files:
            if allow_missing:
                continue
            raise MatreproError(f"{d / t}: no results; run `dvc repro lgdcnn_task@{t}`")
        out += [json.loads(f.read_text()) for f in files]
    return out


def model_summary(results: list[dict], model: str) -> dict | None:
    """One model on one task over its folds and seeds: per seed the mean MAE over the folds, then
    mean and standard deviation over seeds (None with one seed); the fold spread separately."""
    runs = [r for r in results if model in r["models"]]
    if not runs:
        return None
    per_fold = np.array([[s["mae"] for s in r["models"][model]["per_seed"]] for r in runs])  # folds x seeds
    by_seed = per_fold.mean(axis=0)
    first = runs[0]["models"][model]["per_seed"][0]
    return {"mae": float(by_seed.mean()), "mae_std": float(by_seed.std(ddof=1)) if len(by_seed) > 1 else None,
            "fold_std": float(per_fold.mean(axis=1).std(ddof=1)) if len(runs) > 1 else None,
            "seeds": int(per_fold.shape[1]), "folds": len(runs),
            "epochs": first.get("epochs"), "seconds": float(np.sum([[s.get("seconds") or 0 for s in r["models"][model]["per_seed"]] for r in runs]))}


def verdict(ours: dict | None, peer: dict | None, rel_spread: float | None = None) -> str:
    """Ours against one peer trained here on the same rows: 'wins' / 'loses' when the means differ
    by more than the larger seed standard deviation, else 'tie (within seed spread)'. With a single
    seed on both sides there is no spread: ``rel_spread`` (:func:`typical_seed_spread`) times the
    larger MAE stands in for it, and the verdict says "(1 seed)"; without it, the means decide."""
    if not ours or not peer:
        return "–"
    d = peer["mae"] - ours["mae"]
    sds = [v for v in (ours.get("mae_std"), peer.get("mae_std")) if v is not None]
    if not sds:
        if rel_spread is not None and abs(d) <= rel_spread * max(ours["mae"], peer["mae"]):
            return "tie (1 seed)"
        return ("wins" if d > 0 else "loses") + " (1 seed)"
    spread = max(sds)
    if abs(d) <= spread:
        return "tie (within seed spread)"
    return "wins" if d > 0 else "loses"


def typical_seed_spread(summaries: dict[str, dict[str, dict | None]], models: list[str]) -> dict:
    """The seed spread a single-seed row would have: the median relative standard deviation
    (std / mean MAE) of ``models`` over every task they ran with several seeds (``summaries``:
    task -> model -> :func:`model_summary`). ``relative`` is None when no task has several seeds."""
    rel = [(t, m, s["mae_std"] / s["mae"]) for t, ms in summaries.items() for m in models
           if (s := ms.get(m)) and s.get("mae_std") is not None and s["mae"] > 0]
    return {"relative": float(np.median([r for *_, r in rel])) if rel else None,
            "n": len(rel), "models": list(models), "tasks": sorted({t for t, *_ in rel})}


def cpu_cost(per_seed: list[dict]):
    """Summed CPU seconds of one model's runs (wall seconds for records without them); the string
    '≥ n' when a resumed run's time before the resume was not recorded (core.timed_checkpoint)."""
    total = round(sum(x.get("cpu_seconds", x["seconds"]) for x in per_seed))
    return f"≥ {total}" if any(x.get("earlier_time_recorded") is False for x in per_seed) else total


def cost_table(results: list[dict], model: str, peers=("crabnet", "roost")) -> pd.DataFrame:
    """Per task and fold: rows, batch, epochs and SWA acceptances of ``model``, and the CPU cost
    of it and of each peer trained (:func:`cpu_cost`)."""
    rows = []
    for r in results:
        s = r["models"][model]["per_seed"]
        row = {"task": r["task"], "fold": r["fold"], "regime": r["regime"], "train rows": r["rows"]["train"],
               "batch": s[0]["batch_size"], "epochs (per seed)": "/".join(str(x["epochs"]) for x in s),
               "SWA accepted": "/".join(str(sum(c["accepted"] for c in x["swa_checks"])) for x in s),
               "ours (CPU s)": cpu_cost(s)}
        for p in peers:
            if p in r["models"]:
                row[f"{p} epochs"] = "/".join(str(x["epochs"]) for x in r["models"][p]["per_seed"])
                row[f"{p} (CPU s)"] = cpu_cost(r["models"][p]["per_seed"])
        rows.append(row)
    return pd.DataFrame(rows)


def benchmark_metrics(results: list[dict], cfg: dict, pending: list[str] | None = None) -> dict:
    """metrics/lgdcnn/benchmark.json: per task, every model's MAE, seed spread, rows, folds and
    epochs, and the verdict per peer; ``single_seed_spread``: the relative seed spread that judges
    single-seed rows (:func:`typical_seed_spread` of ours and the peers); ``pending``: the tasks
    not run yet."""
    models = list(cfg["benchmark_models"]) + list(peer_mod.PEERS) + ["rf_magpie", "mlp_magpie"]
    out = {"profile": cfg["profile"], "tasks": {}, "pending": list(pending or [])}
    by_task: dict[str, list[dict]] = {}
    for r in results:
        by_task.setdefault(r["task"], []).append(r)
    summaries = {task: {m: model_summary(rs, m) for m in models} for task, rs in by_task.items()}
    band = typical_seed_spread(summaries, [cfg["benchmark_models"][0]] + list(peer_mod.PEERS))
    out["single_seed_spread"] = band
    for task, rs in by_task.items():
        ms = summaries[task]
        ours = ms.get(cfg["benchmark_models"][0])
        out["tasks"][task] = {
            "label": rs[0]["label"], "unit": rs[0]["unit"], "benchmark": rs[0]["benchmark"],
            "regime": rs[0].get("regime"), "caps": rs[0].get("caps"),
            "n_train": int(np.mean([r["rows"]["train"] for r in rs])), "n_test": int(np.mean([r["rows"]["test"] for r in rs])),
            "folds": [r["fold"] for r in rs], "max_epochs": rs[0]["train"]["max_epochs"],
            "models": {m: {k: x for k, x in v.items() if k != "seconds"} for m, v in ms.items() if v is not None},
            "verdict": {p: verdict(ours, ms.get(p), band["relative"]) for p in list(peer_mod.PEERS) + ["rf_magpie"]}}
    return out


def curve_config(cfg: dict, task: str) -> dict:
    """The learning-curve plan of one large task: the profile's settings with ``learning_curves``'
    caps (val/test) and training overrides."""
    lc = cfg["learning_curves"]
    if task not in lc["datasets"]:
        raise MatreproError(f"params.yaml: field 'lgdcnn.learning_curves.datasets': {task!r} is not listed")
    out = {k: v for k, v in cfg.items() if k not in ("full_rows", "task_overrides")}
    out = deep_merge(out, {"train": lc.get("train") or {}, "caps": lc.get("caps") or {}})
    out["seeds"] = lc.get("seeds", cfg["seeds"])
    out["task"], out["regime"] = task, "learning curve"
    out["folds"] = [None] if task in EXTENDED else [int(lc.get("fold", 0))]
    return out


def curve_runs(task: str, cfg: dict, root: Path | None = None, use_cache: bool = True):
    """The single runs of a learning-curve plan, size by size: (row of curve.csv without the
    metrics, run key, ``fn(checkpoint)`` that trains it). The curve stage and ``warm`` both use it."""
    lc = cfg["learning_curves"]
    fold = cfg["folds"][0]
    for n in lc["sizes"]:
        c = dict(cfg, caps={**cfg["caps"], "train": int(n)})
        parts, _ = load_task(task, fold, c, root)
        for m in lc["models"]:
            for seed in c["seeds"]:
                kind = "peer" if m in peer_mod.PEERS else "network"
                key = run_key(kind, m, task, fold, seed, c, parts)
                desc = f"{task} n={n} {m} s{seed}"

                def fn(ck, m=m, seed=seed, key=key, desc=desc, c=c, parts=parts, kind=kind):
                    if kind == "peer":
                        return peer_record(parts, m, c, seed, ck, desc)
                    return network_record(parts, m, c, seed, key, ck, desc, root, use_cache)
                yield ({"task": task, "model": m, "n_train": len(parts["train"]), "seed": seed,
                        "n_test": len(parts["test"])}, key, fn)


def run_curve(task: str, cfg: dict, out_dir: str | Path, root: Path | None = None, use_cache: bool = True) -> pd.DataFrame:
    """Test MAE of each curve model at each training size (seeded random subsets of the task's
    training rows; the same validation and test rows at every size). Writes ``<out_dir>/curve.csv``."""
    rows = [{**row, **_cached(key, fn, use_cache)["metrics"]}
            for row, key, fn in tqdm(list(curve_runs(task, cfg, root, use_cache)), desc=f"{task} curve runs")]
    df = pd.DataFrame(rows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "curve.csv", index=False, float_format="%.6g")
    return df


def extrapolate_curves(curves: pd.DataFrame, full_sizes: dict[str, int]) -> pd.DataFrame:
    """Per task and model: the power-law fit (α ± se) and the MAE it predicts at the task's full
    training size, with the 95 % interval of the fitted line (core.scaling)."""
    rows = []
    for (task, m), g in curves.groupby(["task", "model"], sort=False):
        fit = fit_power_law(g.n_train.to_numpy(), g.mae.to_numpy())
        n_full = full_sizes[task]
        lo, hi = fit.interval(n_full)
        rows.append({"task": task, "model": m, "alpha": fit.alpha, "alpha_se": fit.alpha_se, "points": fit.n_points,
                     "n_max_trained": int(g.n_train.max()), "n_full": int(n_full),
                     "mae_at_largest": float(g[g.n_train == g.n_train.max()].mae.mean()),
                     "mae_extrapolated": float(fit.predict(n_full)), "lo95": float(lo), "hi95": float(hi)})
    return pd.DataFrame(rows)


def full_train_sizes(summary: pd.DataFrame, tasks: list[str], val_fraction: float) -> dict[str, int]:
    """Training rows each task has in full (``results/lgdcnn/data_summary.csv``): the given train
    file of an extended set; for matbench, a fold's outer 80 % minus the inner validation share."""
    s = summary.set_index("task")
    out = {}
    for t in tasks:
        r = s.loc[t]
        out[t] = int(r.split.split("/")[0]) if r.split != "5 folds" else int(round(r.rows * 0.8 * (1 - val_fraction)))
    return out


def warm_jobs(task: str, plan: dict) -> list[dict]:
    """The single runs of one task's plan: every (fold, network or peer, seed), then the baselines."""
    jobs = []
    for fold in plan["folds"]:
        for kind, names in (("network", plan["benchmark_models"]), ("peer", plan.get("benchmark_peers", []))):
            for name in names:
                jobs += [{"task": task, "fold": fold, "kind": kind, "name": name, "seed": s} for s in plan["seeds"]]
        jobs.append({"task": task, "fold": fold, "kind": "baseline", "name": "magpie", "seed": plan["seeds"][0]})
    return jobs


def _job_keys(task: str, plan: dict):
    """(job, plan for its one seed, run key) for every single run of the task's plan."""
    loaded = {}
    for job in warm_jobs(task, plan):
        one = dict(plan, seeds=[job["seed"]])
        if job["fold"] not in loaded:
            loaded[job["fold"]] = load_task(task, job["fold"], plan)
        yield job, one, loaded[job["fold"]], run_key(job["kind"], job["name"], task, job["fold"], job["seed"], one,
                                                     loaded[job["fold"]][0])


def missing_runs(task: str, plan: dict) -> list[dict]:
    """The single runs of the task's plan that are not in the run cache yet."""
    return [job for job, _, _, key in _job_keys(task, plan) if not (run_record_dir() / f"{key}.json").is_file()]


def warm(tasks: list[str], read_plan, clear_stale: bool = False) -> int:
    """Train every single run of ``tasks`` into the run cache, one claim file per run so that
    several processes split the work (a run already cached or claimed is skipped). Returns the
    number of runs trained here. A plan whose regime is "learning curve" (``curve_<task>.json``)
    contributes the runs of its curve (:func:`curve_runs`)."""
    claims = run_cache_dir() / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    if clear_stale:
        for c in claims.glob("*.claim"):
            if not (run_record_dir() / f"{c.stem}.json").is_file():
                c.unlink()
    done = 0
    for name in tasks:
        plan = read_plan(name)
        if plan.get("regime") == "learning curve":
            runs = ((key, lambda key=key, fn=fn: _cached(key, fn)) for _, key, fn in curve_runs(plan["task"], plan))
        else:
            runs = ((key, lambda job=job, one=one, loaded=loaded: _warm_fold_run(name, job, one, loaded))
                    for job, one, loaded, key in _job_keys(name, plan))
        for key, train in runs:
            if (run_record_dir() / f"{key}.json").is_file():
                continue
            try:
                os.close(os.open(claims / f"{key}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                continue
            train()
            done += 1
    return done


def _warm_fold_run(task: str, job: dict, one: dict, loaded: tuple) -> None:
    kind, name = job["kind"], job["name"]
    run_fold(task, job["fold"], one, {}, models=[name] if kind == "network" else [],
             peers=[name] if kind == "peer" else [], baselines=kind == "baseline", loaded=loaded)
