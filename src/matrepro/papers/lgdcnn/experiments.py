"""lgdcnn experiments (Du et al., JCTC 20, 6756 (2024)): L-G-DCNN and the reference networks
through the one training loop, the Magpie RF/MLP baselines, and the ablation, CECV and
sample-efficiency runs. The 28-dataset benchmark and the learning curves (with the peers) are in
``benchmark``. Every run reads its rows from ``tasks`` and its settings from params.yaml.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ...core.checkpoint import Checkpoint
from ...core.errors import MatreproError
from ...core.metrics import regression_metrics
from ...core.paths import raw_dir
from ...core.precision import unwrap, with_precision
from ...core.train import TrainConfig, crabnet_batch_size, fit, get_device, predict, set_seed
from ...features.composition import CompositionBatch, FeatureBatch, TargetScaler, encode_formulas, load_split_csv, magpie_features, make_batch
from ...models import build_model, count_parameters
from ...models import composition as _composition_models  # noqa: F401  (registers lgdcnn, the CECV references, mlp)
from .tasks import BENCH, SPLITS, get_element_table, load_task

log = logging.getLogger(__name__)


def train_config(cfg: dict, n_train: int, overrides: dict | None = None) -> TrainConfig:
    d = dict(cfg["train"])
    d.update(overrides or {})
    d.pop("precision", None)  # applied to the model (core.precision), not to the loop
    if d.get("batch_size", "auto") == "auto":
        d["batch_size"] = crabnet_batch_size(n_train)
    return TrainConfig.from_dict(d)


@dataclass
class Trained:
    model: torch.nn.Module
    scaler: TargetScaler
    n_slots: int
    history: object
    seconds: float
    batch_size: int
    spec: dict | None = None  # what rebuilds the network: registry name, its settings, element table

    def artifact(self) -> dict:
        """The trained network as plain data: ``spec``, weights, target scaler, element slots."""
        return {"spec": self.spec, "weights": self.model.state_dict(), "n_slots": int(self.n_slots),
                "scaler": {"mean": self.scaler.mean, "std": self.scaler.std}}


def train_network(parts: dict, model_name: str, cfg: dict, seed: int, overrides: dict | None = None,
                  desc: str = "", root: Path | None = None, checkpoint: Checkpoint | None = None) -> Trained:
    """Encode, z-score the target on the training rows, and train one composition network
    (``checkpoint``: resumable, see core.checkpoint)."""
    mcfg = dict(cfg["models"].get(model_name, {}))
    mcfg.update(overrides or {})
    model_cls = mcfg.pop("model", model_name)
    table_name = mcfg.pop("element_table", cfg["element_table"])
    n_slots = parts["train"].attrs.get("n_slots") or int(
        max(encode_formulas(p.formula.tolist())[0].shape[1] for p in parts.values()))
    scaler = TargetScaler(parts["train"].target)
    data = {}
    for s, df in parts.items():
        b = make_batch(df, n_slots)
        data[s] = CompositionBatch(b.elements, b.fractions, torch.as_tensor(scaler.scale(df.target), dtype=torch.float32))
    set_seed(seed)
    model = build_model(model_cls, element_table=get_element_table(table_name, root), **mcfg)
    tcfg = train_config(cfg, len(data["train"]))
    t0 = time.perf_counter()
    wrapped = with_precision(model, cfg["train"].get("precision", "fp32"))
    hist = fit(wrapped, data["train"], data["val"], tcfg, seed=seed, device=get_device(), desc=desc or model_name,
               checkpoint=checkpoint)
    return Trained(unwrap(wrapped), scaler, n_slots, hist, time.perf_counter() - t0, tcfg.batch_size,
                   {"model": model_cls, "config": mcfg, "element_table": table_name})


def predict_network(tr: Trained, df: pd.DataFrame) -> np.ndarray:
    b = make_batch(df, tr.n_slots)
    return tr.scaler.unscale(predict(tr.model, b))


def train_magpie_baselines(parts: dict, cfg: dict, seed: int, cache: dict) -> dict[str, np.ndarray]:
    """RF (500 trees, as CrabNet's retrain_rf) and a plain MLP on matminer's Magpie features."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.preprocessing import StandardScaler

    bcfg = cfg["baselines"]
    X = {s: magpie_features(parts[s].formula.tolist(), cache=cache) for s in SPLITS}
    out = {}
    rf = RandomForestRegressor(n_estimators=bcfg["rf_trees"], n_jobs=bcfg.get("rf_jobs", 1), random_state=seed)
    rf.fit(X["train"], parts["train"].target.to_numpy())
    out["rf_magpie"] = rf.predict(X["test"])
    sc = StandardScaler().fit(X["train"])
    ys = TargetScaler(parts["train"].target)

    def fb(s):
        x = np.nan_to_num(sc.transform(X[s]), nan=0.0, posinf=0.0, neginf=0.0)
        return FeatureBatch(torch.as_tensor(x, dtype=torch.float32),
                            torch.as_tensor(ys.scale(parts[s].target), dtype=torch.float32))

    set_seed(seed)
    mlp = build_model("mlp", n_features=X["train"].shape[1], **bcfg.get("mlp", {}))
    fit(mlp, fb("train"), fb("val"), TrainConfig.from_dict(bcfg["mlp_train"]), seed=seed, device=get_device(),
        progress=False)
    out["mlp_magpie"] = ys.unscale(predict(mlp, fb("test")))
    return out


def _variant(spec: dict) -> tuple[str, dict]:
    spec = dict(spec)
    return spec.pop("model"), spec


def run_ablation(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Table 2: each variant of ``cfg['ablation']['run']`` on each ablation dataset (test MAE)."""
    acfg = cfg["ablation"]
    rows = []
    for task in acfg["datasets"]:
        parts, _ = load_task(task, None, cfg, root)
        for name in tqdm(acfg["run"], desc=f"ablation {task}"):
            if name not in acfg["variants"]:
                raise MatreproError(f"params.yaml: field 'lgdcnn.ablation.run': unknown variant {name!r}")
            model, over = _variant(acfg["variants"][name])
            tr = train_network(parts, model, cfg, cfg["seeds"][0], overrides=over, desc=f"{task} {name}", root=root)
            y = predict_network(tr, parts["test"])
            rows.append({"task": task, "variant": name, "model": model, **over,
                         **regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                         "n_parameters": count_parameters(tr.model), "seconds": round(tr.seconds, 1),
                         "n_train": len(parts["train"]), "n_test": len(parts["test"])})
    return pd.DataFrame(rows)


def run_cecv(cfg: dict, root: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train each CECV model on the CECV dataset (same rows and seed for all) and compute its CECV
    on every test compound containing the probe element. Returns (cecv table, model MAEs)."""
    from pymatgen.core import Element

    from . import cecv

    c = cfg["cecv"]
    root = Path(root) if root else raw_dir()
    parts, _ = load_task(c["dataset"], None, cfg, root)
    test_full = load_split_csv(root / BENCH / c["dataset"] / "test.csv")
    z_probe = Element(c["probe"]).Z
    zs, _ = encode_formulas(test_full.formula.tolist())
    probe = test_full[(zs == z_probe).any(axis=1)].reset_index(drop=True)
    if c.get("probe_rows"):
        probe = probe.iloc[:c["probe_rows"]]
    rows, maes = [], []
    for m in tqdm(c["models"], desc="cecv models"):
        tr = train_network(parts, m, cfg, cfg["seeds"][0], desc=f"cecv {m}", root=root)
        y = predict_network(tr, parts["test"])
        maes.append({"model": m, **regression_metrics(parts["test"].target, y), "epochs": tr.history.epochs,
                     "n_parameters": count_parameters(tr.model), "seconds": round(tr.seconds, 1)})
        batch = make_batch(probe, tr.n_slots)
        counts, per_n = cecv.model_cecv(tr.model, batch, c["thresholds"], c["n_elements"])
        rows.append({"model": m, **{f"thr_{t:g}": n for t, n in zip(c["thresholds"], counts)},
                     "n_probe": len(probe), "n_by_elements": json.dumps(per_n)})
    return pd.DataFrame(rows), pd.DataFrame(maes)


def run_sample_efficiency(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Test MAE against training-set size (random subsets of the training file, seeded) for
    L-G-DCNN and RF-Magpie, on the same validation and test rows."""
    s = cfg["sample_efficiency"]
    rows, cache = [], {}
    for n in tqdm(s["sizes"], desc="sample efficiency"):
        c = dict(cfg, caps={**cfg.get("caps", {}), "train": n})
        parts, _ = load_task(s["dataset"], None, c, root)
        tr = train_network(parts, "lgdcnn", c, cfg["seeds"][0], desc=f"n={n}", root=root)
        y = predict_network(tr, parts["test"])
        base = train_magpie_baselines(parts, c, cfg["seeds"][0], cache)
        for model, pred in (("lgdcnn", y), ("rf_magpie", base["rf_magpie"]), ("mlp_magpie", base["mlp_magpie"])):
            rows.append({"n_train": len(parts["train"]), "model": model,
                         **regression_metrics(parts["test"].target, pred), "n_test": len(parts["test"])})
    return pd.DataFrame(rows)

