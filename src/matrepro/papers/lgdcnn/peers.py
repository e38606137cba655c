"""lgdcnn peers: CrabNet and Roost trained here, from their authors' own packages, on exactly the
rows, folds and epoch budget of our L-G-DCNN.

API
---
``PEERS``                      the peer names, ``("crabnet", "roost")``.
``peer_available(name)``       True, or a string saying what to install.
``train_peer(name, parts, cfg, seed, desc="", checkpoint=None) -> PeerResult``
    ``parts``: ``{"train": df, "val": df, "test": df}`` with columns ``formula`` and ``target``
    (as :func:`matrepro.papers.lgdcnn.tasks.load_task` returns them; only train and val are used
    for training). ``cfg``: the lgdcnn config; the budget comes from ``cfg["train"]`` and the
    peer's own settings from ``cfg["peers"][name]`` (keys below; the defaults are the peer's
    published defaults). ``PeerResult.predict(df)`` gives predictions in target units;
    ``epochs`` (epochs actually run), ``seconds`` (training wall time), ``batch_size``,
    ``n_parameters`` (trainable), ``info`` (what the run did).

Before training, every split is checked: a missing ``formula``/``target`` column, a NaN or
non-numeric target, a formula that pymatgen (our parser) or the peer's own parser cannot read,
or an element the peer has no embedding for raises :class:`DataError` naming the split, the row
(the ``row`` column when present, i.e. the source file's row, else the 1-based position) and the
field. A missing package raises :class:`MatreproError` with the pip command. Both peers run on
CUDA when present, else on the CPU, in fp32 (``cfg["train"]["precision"]`` is ours only).

CrabNet (``crabnet==2.0.8``, Wang et al., npj Comput. Mater. 7, 77 (2021))
--------------------------------------------------------------------------
``crabnet.crabnet_.CrabNet.fit`` / ``predict``, unchanged recipe: transformer with
d_model 512, N 3, heads 4, frozen mat2vec embedding, RobustL1 loss, Lamb + Lookahead (k 6,
alpha 0.5), cyclic learning rate (``base_lr``..``max_lr``, half cycle = ``epochs_step`` epochs),
SWA with CrabNet's own acceptance rule, fraction jitter 0.02, target z-scored on the training
rows. Budget, from ``cfg["train"]``: ``epochs=max_epochs`` (CrabNet rounds it up to a multiple of
2*epochs_step; ``epochs`` is what it ran), ``epochs_step``, ``batch_size`` (``"auto"`` -> None:
CrabNet's own rule 2^round(log2 N - 4) in [128, 4096], the same as ours), ``lr``, ``base_lr``,
``max_lr``, ``random_state=seed``, ``val_df=parts["val"]``. No plots, no saved weights, no
printing (``losscurve/learningcurve/save/verbose=False``).

Where the adapter departs from calling ``CrabNet(...).fit`` naively (all in this file, nothing
patched on disk):

* ``fit`` hard-codes ``swa_start = 2`` and ``discard_n = 3``; they are pinned to our budget's
  ``swa_start`` and ``discard_n`` (params.yaml: 2 and 5) so both models stop by the same rule.
  ``peers.crabnet.discard_n: 3`` restores CrabNet's own value.
* ``n_elements``: CrabNet infers the slot count from the *training* rows and then silently
  truncates longer validation/test formulas; the adapter passes the largest element count over
  all splits (and over ``parts["train"].attrs["n_slots"]``), and widens it at predict time. Padding
  is masked in CrabNet, so this changes nothing but the truncation.
* ``fit`` always writes ``figures/lc_data/<model_name>_lc.csv`` into the working directory, even
  with ``learningcurve=False``; it runs in a temporary directory that is then deleted.
* ``predict`` needs a ``target`` column; 0.0 is filled in when the frame has none.
* torch >= 2.x: CrabNet's ``SWA`` optimizer wrapper never calls ``Optimizer.__init__``, so it has
  no step-hook dictionaries. The first ``zero_grad`` patches ``SWA.step`` class-wide with torch's
  hooked wrapper, which then fails (``'SWA' object has no attribute '_optimizer_step_pre_hooks'``)
  in every later CrabNet fit of the same process. The adapter gives each SWA instance the empty
  hook dictionaries ``Optimizer.__setstate__`` would (no behaviour change).
* Resume (``checkpoint``, a :class:`matrepro.core.checkpoint.Checkpoint`): at the start of an
  epoch, when a save is due, the adapter saves the weights and train/eval modes, every optimizer
  level (SWA, Lookahead, Lamb), the cyclic schedule and the generators. A run started again from
  that file lets ``fit`` build its objects as usual, skips the training of the epochs already
  done, loads the saved state at the saved epoch and ends with the predictions of an
  uninterrupted run (tests/test_lgdcnn_peers.py kills one at epoch 5). Roost, about 3x faster per
  epoch here than our network, restarts instead.
* Note (CrabNet's own behaviour, kept): in each SWA check epoch it predicts the whole validation
  set after *every* batch, so its check epochs cost more than ours.

``peers.crabnet`` keys: ``discard_n``, ``swa_start`` (override the budget's), and any other
``CrabNet(...)`` constructor argument except the budget and output ones (e.g. ``d_model``, ``N``,
``heads``, ``dim_feedforward``, ``dropout``, ``fudge``, ``weight_decay``, ``criterion``).

Roost (``aviary-models==1.2.1``, Goodall & Lee, Nat. Commun. 11, 6280 (2020))
----------------------------------------------------------------------------
``aviary.roost.model.Roost`` with ``aviary.roost.data.CompositionData`` / ``collate_batch``; model
at aviary's published defaults (``examples/roost-example.py``): matscholar200 element embedding
(shipped in the wheel; H..Lr), elem_fea_len 64, 3 message-passing layers (3 heads, gate/msg
[256]), 3 pooling heads, trunk [1024, 512], output [256, 128, 64], ``robust=True`` (mean and
log-std outputs) with aviary's ``robust_l1_loss``; targets normalised by aviary's ``Normalizer``
fitted on the training rows; AdamW lr 3e-4, weight decay 1e-6 (``aviary.utils.initialize_optim``,
whose MultiStepLR has no milestones: constant learning rate); batch size 128. Each epoch's
training pass is aviary's own ``model.evaluate(..., action="train")`` (the body of
``BaseModelClass.fit``); the epoch loop is ours because ``fit`` writes checkpoints/logs, swallows
Ctrl-C and keeps only the last epoch.

Differences from the published recipe: ``max_epochs`` from our budget (aviary's example: 100);
the kept weights are those of the epoch with the lowest validation MAE (exact MAE in target
units; aviary 1.2.1 keeps the last epoch, the original Roost code saved the best-validation
checkpoint); batch size = our budget's when it is an integer (e.g. the cpu profile's 64), else
Roost's 128; no early stopping unless ``peers.roost.patience`` is set; the training loader is
shuffled by a seeded generator.

``peers.roost`` keys: ``batch_size``, ``lr``, ``weight_decay``, ``optim`` (SGD | Adam | AdamW),
``robust``, ``loss`` (L1 | L2), ``patience`` and the model's ``elem_embedding``, ``elem_fea_len``,
``n_graph``, ``elem_heads``, ``elem_gate``, ``elem_msg``, ``cry_heads``, ``cry_gate``,
``cry_msg``, ``trunk_hidden``, ``out_hidden``.

Both are deterministic for a fixed seed on the CPU (tests/test_lgdcnn_peers.py trains twice).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import importlib.util
import inspect
import os
import sys
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ...core.checkpoint import (Checkpoint, load_module_state, load_optimizer_state, module_state, optimizer_state,
                                rng_state, set_rng_state)
from ...core.errors import DataError, MatreproError
from ...core.device import get_device, set_seed
from ...features.composition import parse_fractions

PEERS = ("crabnet", "roost")

_PIP = f"{sys.executable} -m pip"
INSTALL = {
    "crabnet": f"{_PIP} install --no-deps --ignore-requires-python crabnet==2.0.8",
    "roost": f"{_PIP} install aviary-models==1.2.1",
}
_DIST = {"crabnet": ("crabnet", "2.0.8", ("crabnet",)),
         "roost": ("aviary-models", "1.2.1", ("aviary", "wandb", "pymatgen"))}

ROOST_DEFAULTS = {"batch_size": 128, "lr": 3e-4, "weight_decay": 1e-6, "optim": "AdamW", "robust": True,
                  "loss": "L1", "patience": None}
ROOST_MODEL_KEYS = ("elem_embedding", "elem_fea_len", "n_graph", "elem_heads", "elem_gate", "elem_msg",
                    "cry_heads", "cry_gate", "cry_msg", "trunk_hidden", "out_hidden")
# CrabNet constructor arguments that the budget or the adapter sets (not settable in peers.crabnet)
_CRABNET_FIXED = {"epochs", "epochs_step", "batch_size", "random_state", "lr", "base_lr", "max_lr",
                  "losscurve", "learningcurve", "save", "verbose", "force_cpu", "compute_device",
                  "prefer_last", "model", "model_name", "n_elements", "classification", "extend_features",
                  "mat_prop", "checkin", "val_size"}


@dataclass
class PeerResult:
    """One trained peer. ``predict(df)`` -> predictions (target units) for ``df['formula']``."""
    name: str
    epochs: int
    seconds: float
    batch_size: int
    n_parameters: int
    info: dict = field(default_factory=dict)
    _predict: Callable[[pd.DataFrame], np.ndarray] | None = field(default=None, repr=False)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        _check_split(df, "predict", self.name, need_target=False, embedding=self.info.get("elem_embedding"))
        return np.asarray(self._predict(df), dtype=np.float64)


def peer_available(name: str) -> bool | str:
    """True when the peer's package (at the pinned version) is importable, else what to install."""
    if name not in PEERS:
        raise MatreproError(f"unknown lgdcnn peer {name!r} (one of {', '.join(PEERS)})")
    dist, pinned, modules = _DIST[name]
    try:
        have = version(dist)
    except PackageNotFoundError:
        return f"{dist} is not installed: {INSTALL[name]}"
    if have != pinned:
        return f"{dist} {have} is installed; the {name} adapter is written for {dist}=={pinned}: {INSTALL[name]}"
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return f"{dist}: cannot import {', '.join(missing)}: {INSTALL[name]}"
    return True


def train_peer(name: str, parts: dict, cfg: dict, seed: int, desc: str = "",
               checkpoint: Checkpoint | None = None) -> PeerResult:
    """Train peer ``name`` on ``parts['train']`` (validation: ``parts['val']``) with the budget of
    ``cfg['train']``; see the module docstring for each peer's recipe. ``checkpoint``: CrabNet saves
    its state there and resumes from it (core.checkpoint); Roost, ~3x faster per epoch than our
    network here, restarts instead."""
    ok = peer_available(name)
    if ok is not True:
        raise MatreproError(f"lgdcnn peer {name!r} cannot run: {ok}")
    for split in ("train", "val"):
        if split not in parts:
            raise MatreproError(f"lgdcnn peer {name!r}: parts has no {split!r} split")
    pcfg = dict((cfg.get("peers") or {}).get(name) or {})
    embedding = pcfg.get("elem_embedding") if name == "roost" else None
    for split, df in parts.items():
        _check_split(df, split, name, need_target=split in ("train", "val") or "target" in df.columns,
                     embedding=embedding)
    if len(parts["train"]) < 2 or len(parts["val"]) < 1:
        raise MatreproError(f"lgdcnn peer {name!r}: needs >= 2 training and >= 1 validation rows "
                            f"(got {len(parts['train'])} and {len(parts['val'])})")
    y = parts["train"]["target"].to_numpy(dtype=float)
    if np.std(y) == 0:
        raise DataError("train split", f"all {len(y)} training targets equal {y[0]!r}: {name} cannot z-score them",
                        field="target")
    if name == "crabnet":
        return _train_crabnet(parts, cfg["train"], pcfg, seed, desc or name, checkpoint)
    return _train_roost(parts, cfg["train"], pcfg, seed, desc or name)


# --------------------------------------------------------------------------------------------------
# input checks


def _row_label(df: pd.DataFrame, i: int) -> int:
    if "row" in df.columns:
        try:
            return int(df["row"].iloc[i])
        except (TypeError, ValueError):
            pass
    return i + 1


def _check_split(df: pd.DataFrame, split: str, peer: str, need_target: bool = True, embedding: str | None = None) -> None:
    """Columns, finite targets, and formulas readable by pymatgen and by the peer (see module doc)."""
    where = f"{split} split"
    need = ["formula"] + (["target"] if need_target else [])
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DataError(where, f"missing column(s) {missing} (columns: {list(df.columns)})", field=missing[0])
    if need_target:
        values = pd.to_numeric(df["target"], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            i = int(bad[0])
            raise DataError(where, f"NaN, infinite or non-numeric target {df['target'].iloc[i]!r} "
                                   f"({len(bad)} such row(s); position {i + 1} of {len(df)}): {peer} cannot train on it",
                            row=_row_label(df, i), field="target")
    seen: set = set()
    for i, formula in enumerate(df["formula"].tolist()):
        if isinstance(formula, str) and formula in seen:
            continue
        row = _row_label(df, i)
        fracs = parse_fractions(formula, file=where, row=row, field="formula")  # pymatgen, as for our models
        if peer == "crabnet":
            _crabnet_parse(formula, fracs, where, row)
        else:
            _roost_parse(formula, fracs, where, row, embedding or "matscholar200")
        seen.add(formula)


def _crabnet_parse(formula: str, fracs, where: str, row: int) -> dict:
    from crabnet.utils.composition import _element_composition
    from pymatgen.core import Element

    try:
        comp = _element_composition(formula)
    except Exception as exc:  # CrabNet's CompositionError, ValueError on odd numbers
        raise DataError(where, f"CrabNet's parser cannot read formula {formula!r}: {exc}", row=row,
                        field="formula") from exc
    unknown = [el for el in comp if not Element.is_valid_symbol(el)]
    if unknown or not comp:
        raise DataError(where, f"formula {formula!r}: CrabNet would skip element(s) {unknown or '(none found)'}",
                        row=row, field="formula")
    return comp


@functools.cache
def _roost_elements(embedding: str = "matscholar200") -> frozenset:
    """Atomic numbers that the aviary element embedding has a row for (matscholar200: H..Lr)."""
    import json

    from pymatgen.core import Element

    spec = importlib.util.find_spec("aviary")
    path = embedding if os.path.isfile(embedding) else os.path.join(
        os.path.dirname(spec.origin), "embeddings", "element", f"{embedding}.json")
    with open(path) as fh:
        return frozenset(Element(el).Z for el in json.load(fh) if Element.is_valid_symbol(el))


def _roost_parse(formula: str, fracs, where: str, row: int, embedding: str = "matscholar200") -> None:
    """CompositionData parses with pymatgen (as we do); every element needs an embedding row."""
    unknown = [z for z, _ in fracs if z not in _roost_elements(embedding)]
    if unknown:
        raise DataError(where, f"formula {formula!r}: element(s) with Z={unknown} have no row in Roost's "
                               f"{embedding} embedding", row=row, field="formula")


def _budget(tcfg: dict) -> dict:
    if "max_epochs" not in tcfg:
        raise MatreproError("lgdcnn.train: max_epochs is required for the peers' budget")
    bs = tcfg.get("batch_size", "auto")
    if bs != "auto" and not (isinstance(bs, (int, np.integer)) and bs > 0):
        raise MatreproError(f"lgdcnn.train.batch_size: 'auto' or a positive integer, not {bs!r}")
    return {"max_epochs": int(tcfg["max_epochs"]), "epochs_step": int(tcfg.get("epochs_step", 10)),
            "discard_n": int(tcfg.get("discard_n", 3)), "swa_start": int(tcfg.get("swa_start", 2)),
            "batch_size": None if bs == "auto" else int(bs), "lr": float(tcfg.get("lr", 1e-3)),
            "base_lr": float(tcfg.get("base_lr", 1e-4)), "max_lr": float(tcfg.get("max_lr", 6e-3))}


@contextlib.contextmanager
def _quiet():
    """Hide the peers' harmless per-call warnings (CrabNet: pin_memory without a GPU, nested
    tensors; aviary: float() of a loss-graph tensor for its metrics)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
        warnings.filterwarnings("ignore", message=".*Converting a tensor with requires_grad=True to a scalar.*")
        yield


# --------------------------------------------------------------------------------------------------
# CrabNet


def _pinned_attribute(name: str) -> property:
    return property(lambda self: self._pinned[name], lambda self, value: None)


@functools.cache
def _crabnet_class():
    from crabnet.crabnet_ import CrabNet

    class BudgetCrabNet(CrabNet):
        """CrabNet with the budget's swa_start/discard_n kept against fit()'s hard-coded values, the
        SWA hook fix, and a progress bar (see the module docstring)."""

        def __init__(self, *, pinned: dict, bar=None, checkpoint: Checkpoint | None = None, **kwargs):
            super().__init__(**kwargs)
            self._pinned = dict(pinned)
            self._bar = bar
            self._checkpoint, self._resume = checkpoint, None

        # fit() assigns discard_n = 3 and swa_start = 2: reads give the budget's values, writes are ignored
        discard_n = _pinned_attribute("discard_n")
        swa_start = _pinned_attribute("swa_start")

        def _train(self):
            opt = self.optimizer
            for attr in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                         "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                         "_optimizer_load_state_dict_pre_hooks", "_optimizer_load_state_dict_post_hooks"):
                if attr not in opt.__dict__:
                    setattr(opt, attr, OrderedDict())
            if self._resumed_or_saved():
                super()._train()
            if self._bar is not None:
                self._bar.update(1)
                self._bar.set_postfix(discards=f"{opt.discard_count}/{self.discard_n}", refresh=False)

        def _resumed_or_saved(self) -> bool:
            """Resume/save at the start of an epoch (core.checkpoint). A resumed fit() builds its
            objects as usual and runs its epoch loop without training up to the saved epoch; there
            the saved state (weights and modes, every optimizer level, the cyclic schedule, the
            generators) is loaded into them. False: skip this epoch's training."""
            ck = self._checkpoint
            if ck is None:
                return True
            if self._resume is None:
                self._resume = ck.load() or False
            if self._resume and self.epoch < self._resume["epoch"]:
                return False
            if self._resume and self.epoch == self._resume["epoch"]:
                st, self._resume = self._resume, False
                load_module_state(self.model, st["model"])
                load_optimizer_state(self.optimizer, st["opt"])
                self.lr_scheduler.load_state_dict(st["sched"])
                set_rng_state(st["rng"])
            elif self.epoch > 0 and ck.due():
                ck.save({"epoch": self.epoch, "model": module_state(self.model), "opt": optimizer_state(self.optimizer),
                         "sched": self.lr_scheduler.state_dict(), "rng": rng_state()})
            return True

    return BudgetCrabNet


def _crabnet_n_elements(df: pd.DataFrame) -> int:
    from crabnet.utils.composition import _element_composition

    return max((len(_element_composition(f)) for f in set(df["formula"])), default=1)


def _crabnet_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A fresh formula/target frame (CrabNet's get_edm adds a column to the frame it is given)."""
    out = pd.DataFrame({"formula": df["formula"].astype(str).to_numpy()})
    out["target"] = pd.to_numeric(df["target"]).to_numpy(dtype=float) if "target" in df.columns else 0.0
    return out


def _train_crabnet(parts: dict, tcfg: dict, pcfg: dict, seed: int, desc: str,
                   checkpoint: Checkpoint | None = None) -> PeerResult:
    from crabnet.crabnet_ import CrabNet

    b = _budget(tcfg)
    pinned = {"discard_n": int(pcfg.pop("discard_n", b["discard_n"])),
              "swa_start": int(pcfg.pop("swa_start", b["swa_start"]))}
    allowed = set(inspect.signature(CrabNet.__init__).parameters) - {"self"} - _CRABNET_FIXED
    bad = sorted(set(pcfg) - allowed)
    if bad:
        raise MatreproError(f"lgdcnn.peers.crabnet: unknown or budget-controlled key(s) {bad}; budget keys belong "
                            f"in lgdcnn.train, and the allowed ones are discard_n, swa_start, {sorted(allowed)}")
    n_el = max([_crabnet_n_elements(df) for df in parts.values()] + [int(parts["train"].attrs.get("n_slots") or 1)])
    step2 = 2 * b["epochs_step"]
    planned = b["max_epochs"] + (-b["max_epochs"]) % step2  # CrabNet's rounding up
    cuda = torch.cuda.is_available()
    train_df, val_df = _crabnet_frame(parts["train"]), _crabnet_frame(parts["val"])
    set_seed(seed)
    Cls = _crabnet_class()
    with tqdm(total=planned, desc=desc, leave=False, mininterval=2) as bar:
        crab = Cls(pinned=pinned, bar=bar, checkpoint=checkpoint, epochs=b["max_epochs"], epochs_step=b["epochs_step"],
                   batch_size=b["batch_size"], lr=b["lr"], base_lr=b["base_lr"], max_lr=b["max_lr"],
                   random_state=seed, n_elements=n_el, model_name="peer", losscurve=False,
                   learningcurve=False, save=False, verbose=False, force_cpu=not cuda, **pcfg)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="crabnet_") as tmp, contextlib.chdir(tmp), _quiet():
            crab.fit(train_df=train_df, val_df=val_df)
        seconds = time.perf_counter() - t0
    ran = len(crab.lr_list)
    opt = crab.optimizer

    def predict(df: pd.DataFrame) -> np.ndarray:
        frame = _crabnet_frame(df)
        crab.n_elements = max(int(crab.n_elements), _crabnet_n_elements(frame))
        with _quiet():
            return crab.predict(frame)

    info = {"planned_epochs": crab.epochs, "max_epochs": b["max_epochs"], "epochs_step": b["epochs_step"],
            "stopped_early": bool(opt.discard_count >= pinned["discard_n"]), "discards": int(opt.discard_count),
            **pinned, "n_elements": int(n_el), "device": str(crab.compute_device),
            "swa_val_mae": [float(m) for m in getattr(opt, "maes", [])], "package": f"crabnet {version('crabnet')}"}
    n_params = sum(p.numel() for p in crab.model.parameters() if p.requires_grad)
    return PeerResult("crabnet", ran, seconds, int(crab.batch_size), int(n_params), info, predict)


# --------------------------------------------------------------------------------------------------
# Roost


def _import_aviary():
    os.environ.setdefault("WANDB_MODE", "disabled")  # aviary.core imports wandb unconditionally
    os.environ.setdefault("WANDB_SILENT", "true")
    from aviary.roost.data import CompositionData, collate_batch
    from aviary.roost.model import Roost
    from aviary.utils import init_normalizers, initialize_losses, initialize_optim

    return CompositionData, collate_batch, Roost, init_normalizers, initialize_losses, initialize_optim


def _roost_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"row_id": np.arange(len(df)), "formula": df["formula"].astype(str).str.strip().to_numpy()})
    out["target"] = pd.to_numeric(df["target"]).to_numpy(dtype=float) if "target" in df.columns else 0.0
    return out


def _train_roost(parts: dict, tcfg: dict, pcfg: dict, seed: int, desc: str) -> PeerResult:
    CompositionData, collate_batch, Roost, init_normalizers, initialize_losses, initialize_optim = _import_aviary()
    from torch.utils.data import DataLoader

    b = _budget(tcfg)
    bad = sorted(set(pcfg) - set(ROOST_DEFAULTS) - set(ROOST_MODEL_KEYS))
    if bad:
        raise MatreproError(f"lgdcnn.peers.roost: unknown key(s) {bad} (allowed: {sorted(ROOST_DEFAULTS)} and "
                            f"{list(ROOST_MODEL_KEYS)})")
    rc = {**ROOST_DEFAULTS, "batch_size": b["batch_size"] or ROOST_DEFAULTS["batch_size"]}
    rc.update({k: v for k, v in pcfg.items() if k in ROOST_DEFAULTS})
    model_kw = {k: pcfg[k] for k in ROOST_MODEL_KEYS if k in pcfg}
    embedding = model_kw.get("elem_embedding", "matscholar200")
    device = get_device()
    task_dict = {"target": "regression"}
    ids = ("row_id", "formula")
    data = {s: CompositionData(_roost_frame(parts[s]), task_dict, inputs="formula", identifiers=ids)
            for s in ("train", "val")}
    bs = int(rc["batch_size"])
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(data["train"], batch_size=bs, shuffle=True, collate_fn=collate_batch, generator=gen)
    val_loader = DataLoader(data["val"], batch_size=16 * bs, shuffle=False, collate_fn=collate_batch)
    model = Roost(robust=bool(rc["robust"]), n_targets=data["train"].n_targets, task_dict=task_dict,
                  device=str(device), **model_kw)
    model.to(device)
    optimizer, scheduler = initialize_optim(model, optim=rc["optim"], learning_rate=float(rc["lr"]),
                                            weight_decay=float(rc["weight_decay"]), momentum=0.9, device=device)
    loss_dict = initialize_losses(task_dict, {"target": rc["loss"]}, robust=bool(rc["robust"]))
    normalizers = init_normalizers(task_dict, device)
    normalizer = normalizers["target"]
    normalizer.fit(torch.tensor(parts["train"]["target"].to_numpy(dtype=np.float32)))
    y_val = parts["val"]["target"].to_numpy(dtype=float)

    def _predict_loader(loader) -> np.ndarray:
        _, outputs, _ = model.predict(loader)
        out = outputs[0]
        mean = out.unbind(dim=1)[0] if model.robust else out.squeeze(1)
        return normalizer.denorm(mean.cpu()).numpy().astype(np.float64)

    best, best_state, best_epoch, wait, val_mae = float("inf"), None, -1, 0, []
    patience = rc["patience"]
    t0 = time.perf_counter()
    with tqdm(range(b["max_epochs"]), desc=desc, leave=False, mininterval=2) as bar, _quiet():
        for epoch in bar:
            model.evaluate(train_loader, loss_dict=loss_dict, optimizer=optimizer, normalizer_dict=normalizers,
                           action="train", verbose=False)
            scheduler.step()
            model.epoch += 1
            mae = float(np.mean(np.abs(_predict_loader(val_loader) - y_val)))
            val_mae.append(mae)
            if mae < best:
                best, best_epoch, wait = mae, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                wait += 1
            bar.set_postfix(val_mae=f"{mae:.4g}", best=f"{best:.4g}", refresh=False)
            if patience is not None and wait > int(patience):  # aviary's rule: stop after patience+1 misses
                break
    seconds = time.perf_counter() - t0
    if best_state is not None:
        model.load_state_dict(best_state)
    CompositionData.__getitem__.cache_clear()  # aviary caches every item of every dataset (functools.cache)

    def predict(df: pd.DataFrame) -> np.ndarray:
        ds = CompositionData(_roost_frame(df), task_dict, inputs="formula", identifiers=ids)
        try:
            return _predict_loader(DataLoader(ds, batch_size=16 * bs, shuffle=False, collate_fn=collate_batch))
        finally:
            CompositionData.__getitem__.cache_clear()

    info = {"max_epochs": b["max_epochs"], "best_epoch": best_epoch, "val_mae": val_mae, "device": str(device),
            "lr": float(rc["lr"]), "weight_decay": float(rc["weight_decay"]), "optim": rc["optim"],
            "robust": bool(rc["robust"]), "loss": rc["loss"], "patience": patience, "elem_embedding": embedding,
            "package": f"aviary-models {version('aviary-models')}"}
    return PeerResult("roost", len(val_mae), seconds, bs, int(model.num_params), info, predict)
