"""The one training loop: mini-batches, early stopping on a validation split, fixed seeds,
CUDA when present and CPU otherwise, tqdm progress."""
from __future__ import annotations

import copy
import os
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from .errors import MatreproError
from .tabular import TabularBatch

LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}


def get_device(prefer: str | None = None) -> torch.device:
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch; ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 20
    loss: str = "mse"
    min_delta: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise MatreproError(f"params.yaml: unknown training setting(s) {sorted(unknown)}")
        return cls(**d)


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


@torch.no_grad()
def predict(model: nn.Module, data: TabularBatch, batch_size: int = 4096, device=None) -> np.ndarray:
    device = device or next(model.parameters()).device
    model.eval()
    out = [model(data.x_num[i:i + batch_size].to(device), data.x_cat[i:i + batch_size].to(device)).cpu()
           for i in range(0, len(data), batch_size)]
    return torch.cat(out).numpy()


def _eval_loss(model, data: TabularBatch, loss_fn, device) -> float:
    pred = torch.as_tensor(predict(model, data, device=device))
    return float(loss_fn(pred, data.y))


def fit(model: nn.Module, train: TabularBatch, val: TabularBatch, cfg: TrainConfig, seed: int = 0,
        device=None, progress: bool = True, desc: str = "train") -> History:
    """Train with Adam; keep the weights of the epoch with the lowest validation loss."""
    device = device or get_device()
    set_seed(seed)
    model.to(device)
    loss_fn = LOSSES[cfg.loss]()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    hist, best, best_state, wait = History(), float("inf"), None, 0
    bar = tqdm(range(cfg.max_epochs), desc=desc, disable=not progress, leave=False, mininterval=2)
    for epoch in bar:
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        for i in range(0, len(train), cfg.batch_size):
            b = train.subset(perm[i:i + cfg.batch_size]).to(device)
            opt.zero_grad()
            loss = loss_fn(model(b.x_num, b.x_cat), b.y)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        hist.train_loss.append(total / len(train))
        v = _eval_loss(model, val, loss_fn, device)
        hist.val_loss.append(v)
        bar.set_postfix(train=f"{hist.train_loss[-1]:.4f}", val=f"{v:.4f}", refresh=False)
        if v < best - cfg.min_delta:
            best, best_state, wait, hist.best_epoch = v, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            wait += 1
            if wait >= cfg.patience:
                hist.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist
