"""The one training loop: mini-batches, fixed seeds, CUDA when present and CPU otherwise, tqdm.

Three recipes share it, chosen in params.yaml:

* ``optimizer: adamw`` with early stopping on the validation loss and the best weights restored
  (capnet and the tabular baselines);
* ``optimizer: lamb_lookahead`` + ``scheduler: cyclic`` + ``swa: true`` (CrabNet / L-G-DCNN): Lamb
  inside Lookahead (torch-optimizer), a triangular cyclic learning rate stepped every batch, and
  weight averaging checked on the validation MAE at the end of every learning-rate cycle from the
  second on (``core.swa``: ``swa_rule: crabnet``, CrabNet's own rule, measures after every batch of
  the check epoch and averages the latest near-best weights); a check that finds no new minimum is
  a discard, after ``discard_n`` discards training stops; the averaged weights are kept at the end;
* ``optimizer: sgd`` (momentum) + ``scheduler: multistep`` + ``select: val_mae`` (txie-93/cgcnn
  ``main.py``): every epoch is trained (no early stopping when ``patience >= max_epochs``), the
  learning rate is multiplied by ``gamma`` at each milestone epoch, and the weights of the epoch
  with the lowest validation MAE are kept.

A batch object has ``__len__``, ``subset(idx)``, ``to(device)``, ``inputs()`` and ``y``. A model
returns (B,) predictions or (B, 2) = [prediction, log-std]; ``predict`` returns the prediction.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from typing import Protocol

from .checkpoint import (Checkpoint, load_module_state, load_optimizer_state, module_state, optimizer_state,
                         rng_state, set_rng_state)
from .device import get_device, set_seed  # noqa: F401  (re-exported: the papers import them from here)
from .errors import MatreproError
from .swa import make_swa


class Batch(Protocol):
    """What ``fit`` and ``predict`` need of a data set: the features live in ``core``'s callers
    (``features.tabular``, ``features.composition``, ``features.crystal``), not here."""

    y: torch.Tensor | None

    def __len__(self) -> int: ...

    def subset(self, idx) -> "Batch": ...

    def to(self, device) -> "Batch": ...

    def inputs(self) -> tuple: ...


def robust_l1(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CrabNet's RobustL1: mean of sqrt(2) |y - yhat| exp(-log_std) + log_std."""
    pred, log_std = out[:, 0], out[:, 1]
    return torch.mean(math.sqrt(2.0) * torch.abs(pred - y) * torch.exp(-log_std) + log_std)


LOSSES = {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss, "robust_l1": lambda: robust_l1}


@dataclass
class TrainConfig:
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 20
    loss: str = "mse"
    min_delta: float = 0.0
    optimizer: str = "adamw"  # adamw | lamb_lookahead
    scheduler: str = "none"  # none | cyclic
    base_lr: float = 1e-4  # cyclic schedule
    max_lr: float = 6e-3
    epochs_step: int = 1  # half a learning-rate cycle, in epochs
    swa: bool = False
    swa_start: int = 2  # first SWA check at epoch epochs_step * swa_start - 1 (0-based)
    discard_n: int = 3
    swa_rule: str = "crabnet"  # crabnet | uniform (core.swa)
    lookahead_k: int = 6
    lookahead_alpha: float = 0.5
    val_rows: int | None = None  # evaluate on at most this many validation rows (first ones)
    momentum: float = 0.9  # sgd
    scheduler_milestones: list[int] = field(default_factory=list)  # multistep: epochs at which lr *= gamma
    gamma: float = 0.1  # multistep
    select: str = "val_loss"  # val_loss | val_mae: the validation score that picks the kept epoch

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise MatreproError(f"params.yaml: unknown training setting(s) {sorted(unknown)}")
        return cls(**d)


def crabnet_batch_size(n_train: int) -> int:
    """CrabNet's rule: 2^round(log2(N_train) - 4), clipped to [128, 4096]."""
    return int(np.clip(2 ** round(np.log2(max(n_train, 1)) - 4), 128, 4096))


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    swa_checks: list[dict] = field(default_factory=list)  # epoch, val_mae, accepted
    lr: list[float] = field(default_factory=list)  # learning rate at the end of each epoch
    val_mae: list[float] = field(default_factory=list)  # select: val_mae only

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


@torch.no_grad()
def predict(model: nn.Module, data: Batch, batch_size: int = 4096, device=None) -> np.ndarray:
    device = device or next(model.parameters()).device
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        o = model(*data.subset(slice(i, i + batch_size)).to(device).inputs())
        out.append((o[:, 0] if o.ndim == 2 else o).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def predict_raw(model: nn.Module, data, batch_size: int = 4096, device=None) -> torch.Tensor:
    """The model's full output (e.g. prediction and log-std), on the CPU."""
    device = device or next(model.parameters()).device
    model.eval()
    return torch.cat([model(*data.subset(slice(i, i + batch_size)).to(device).inputs()).cpu()
                      for i in range(0, len(data), batch_size)])


def make_optimizer(model: nn.Module, cfg: TrainConfig):
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "lamb_lookahead":
        import torch_optimizer

        lamb = torch_optimizer.Lamb(params, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-6,
                                    weight_decay=cfg.weight_decay)
        return torch_optimizer.Lookahead(lamb, k=cfg.lookahead_k, alpha=cfg.lookahead_alpha)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise MatreproError(f"params.yaml: unknown optimizer {cfg.optimizer!r} (adamw | lamb_lookahead | sgd)")


def make_scheduler(opt, cfg: TrainConfig, batches_per_epoch: int):
    if cfg.scheduler == "none":
        return None
    if cfg.scheduler == "cyclic":
        return torch.optim.lr_scheduler.CyclicLR(opt, base_lr=cfg.base_lr, max_lr=cfg.max_lr, cycle_momentum=False,
                                                 step_size_up=cfg.epochs_step * batches_per_epoch)
    if cfg.scheduler == "multistep":  # stepped once per epoch, as in txie-93/cgcnn
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.scheduler_milestones), gamma=cfg.gamma)
    raise MatreproError(f"params.yaml: unknown scheduler {cfg.scheduler!r} (none | cyclic | multistep)")


def _val_mae(model: nn.Module, val, device) -> float:
    return float(np.mean(np.abs(predict(model, val, device=device) - val.y.cpu().numpy())))


def fit(model: nn.Module, train, val, cfg: TrainConfig, seed: int = 0,
        device=None, progress: bool = True, desc: str = "train", checkpoint: Checkpoint | None = None) -> History:
    """Train one model. Without SWA: keep the weights of the epoch with the lowest validation loss
    (early stopping after ``patience`` epochs without improvement). With SWA: see the module doc.

    ``checkpoint`` (core.checkpoint): the training state is saved there at the start of an epoch
    whenever a save is due; started again, the run continues from the saved state and reaches the
    weights an uninterrupted run would have."""
    device = device or get_device()
    if cfg.select not in ("val_loss", "val_mae"):
        raise MatreproError(f"params.yaml: unknown select {cfg.select!r} (val_loss | val_mae)")
    set_seed(seed)
    model.to(device)
    loss_fn = LOSSES[cfg.loss]()
    opt = make_optimizer(model, cfg)
    n_batches = -(-len(train) // cfg.batch_size)
    sched = make_scheduler(opt, cfg, n_batches)
    if cfg.val_rows is not None and len(val) > cfg.val_rows:
        val = val.subset(slice(0, cfg.val_rows))
    swa = make_swa(cfg.swa_rule, model) if cfg.swa else None
    discards = 0
    gen = torch.Generator().manual_seed(seed)
    hist, best, best_state, wait = History(), float("inf"), None, 0
    start = 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        start, hist = saved["epoch"], saved["hist"]
        discards, best, best_state, wait = (saved[k] for k in ("discards", "best", "best_state", "wait"))
        load_module_state(model, saved["model"])
        load_optimizer_state(opt, saved["opt"])
        if sched is not None:
            sched.load_state_dict(saved["sched"])
        if swa is not None:
            swa.load_state_dict(saved["swa"])
        gen.set_state(saved["gen"])
        set_rng_state(saved["rng"])
    bar = tqdm(range(start, cfg.max_epochs), desc=desc, disable=not progress, leave=False, mininterval=2,
               initial=start, total=cfg.max_epochs)
    for epoch in bar:
        if checkpoint is not None and epoch > start and checkpoint.due():
            checkpoint.save({"epoch": epoch, "hist": hist, "discards": discards, "best": best,
                             "best_state": best_state, "wait": wait, "model": module_state(model),
                             "opt": optimizer_state(opt), "sched": sched.state_dict() if sched is not None else None,
                             "swa": swa.state_dict() if swa is not None else None,
                             "gen": gen.get_state(), "rng": rng_state()})
        model.train()
        perm = torch.randperm(len(train), generator=gen)
        total = 0.0
        check = bool(cfg.swa) and (epoch + 1) % (2 * cfg.epochs_step) == 0 and epoch >= cfg.epochs_step * cfg.swa_start - 1
        check_maes = []
        for i in range(0, len(train), cfg.batch_size):
            b = train.subset(perm[i:i + cfg.batch_size]).to(device)
            opt.zero_grad()
            loss = loss_fn(model(*b.inputs()), b.y)
            loss.backward()
            opt.step()
            if sched is not None and cfg.scheduler != "multistep":
                sched.step()
            total += loss.item() * len(b)
            if check and swa.per_batch:  # the CrabNet rule measures after every batch of a check epoch
                check_maes.append(_val_mae(model, val, device))
                swa.observe(check_maes[-1])
                model.train()
        hist.train_loss.append(total / len(train))
        hist.lr.append(float(opt.param_groups[0]["lr"]))
        if sched is not None and cfg.scheduler == "multistep":
            sched.step()
        raw = predict_raw(model, val, device=device)
        v = float(loss_fn(raw, val.y.cpu()))
        hist.val_loss.append(v)
        if cfg.select == "val_mae":
            pred = raw[:, 0] if raw.ndim == 2 else raw
            hist.val_mae.append(float(np.mean(np.abs(pred.numpy() - val.y.cpu().numpy()))))
        bar.set_postfix(train=f"{hist.train_loss[-1]:.4f}", val=f"{v:.4f}", refresh=False)
        if cfg.swa:
            if check:
                if not swa.per_batch:
                    check_maes.append(_val_mae(model, val, device))
                    swa.observe(check_maes[-1])
                accepted = swa.end_epoch()
                if accepted:
                    hist.best_epoch = epoch
                else:
                    discards += 1
                hist.swa_checks.append({"epoch": epoch, "val_mae": min(check_maes), "accepted": bool(accepted),
                                        "n_measured": len(check_maes)})
                if discards >= cfg.discard_n:
                    hist.stopped_early = True
                    break
            continue
        if cfg.select == "val_mae":
            v = hist.val_mae[-1]
        if v < best - cfg.min_delta:
            best, best_state, wait, hist.best_epoch = v, copy.deepcopy(model.state_dict()), 0, epoch
        else:
            wait += 1
            if wait >= cfg.patience:
                hist.stopped_early = True
                break
    if cfg.swa:
        swa.finalize(model)
    elif best_state is not None:
        model.load_state_dict(best_state)
    return hist
