"""gan training stage: WGAN-GP (``core.adversarial.fit_wgan_gp``) on the tables of the data stage.

The generator and the critic are saved as plain state dicts with their settings (``generator.pt``,
``critic.pt``; load them with :func:`load_gan`: ``weights_only=True``, strict keys) beside the
per-epoch history (``history.json``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ...core.adversarial import GANConfig, fit_wgan_gp
from ...core.errors import DataError
from ...core.train import get_device, set_seed
from ...models import build_model, count_parameters
from ...models import gan as _gan_models  # noqa: F401  (registers matgan_generator, matgan_critic)
from . import store

GENERATOR, CRITIC, HISTORY = "generator.pt", "critic.pt", "history.json"


def _to_tensor(tables) -> torch.Tensor:
    return torch.as_tensor(tables, dtype=torch.float32).unsqueeze(1)


def build_pair(cfg: dict):
    """(generator, critic) built by name from ``cfg["generator"]`` and ``cfg["critic"]``."""
    return build_model("matgan_generator", **cfg["generator"]), build_model("matgan_critic", **cfg["critic"])


def train_gan(cfg: dict, data_dir: str | Path, model_dir: str | Path, progress: bool = True) -> dict:
    """WGAN-GP on the prepared tables; saves generator, critic and history to ``model_dir``;
    returns the metrics dict of the training stage."""
    tabs = store.load_tables(data_dir)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    gcfg = GANConfig.from_dict(cfg["gan"])
    set_seed(cfg["gan_seed"])
    gen, critic = build_pair(cfg)
    t0 = time.perf_counter()
    hist = fit_wgan_gp(gen, critic, _to_tensor(tabs["train"]), _to_tensor(tabs["holdout"]), gcfg,
                       seed=cfg["gan_seed"], device=get_device(), desc="WGAN-GP", progress=progress)
    seconds = time.perf_counter() - t0
    settings = {"generator": cfg["generator"], "critic": cfg["critic"], "gan": cfg["gan"],
                "table": store.table_args(cfg), "seed": cfg["gan_seed"], "profile": cfg["profile"],
                "train_rows": int(len(tabs["train"])), "holdout_rows": int(len(tabs["holdout"]))}
    for model, name in ((gen, GENERATOR), (critic, CRITIC)):
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "settings": settings},
                   model_dir / name)
    h = dict(vars(hist))
    (model_dir / HISTORY).write_text(json.dumps(h, indent=1) + "\n")
    return {"paper": "gan", "profile": cfg["profile"], "settings": settings, "seconds": round(seconds, 1),
            "compositions_per_second": round(len(tabs["train"]) * len(hist.critic_loss) / max(hist.seconds, 1e-9), 1),
            "parameters": {"generator": count_parameters(gen), "critic": count_parameters(critic)},
            "critic_features": int(critic.n_features),
            "holdout_critic_loss": {"first": float(hist.initial["holdout_critic_loss"]),
                                    "last": float(hist.holdout_critic_loss[-1])},
            "history": h}


def load_gan(model_dir: str | Path):
    """(generator, critic, settings), loaded strictly and safely (``weights_only=True``)."""
    model_dir = Path(model_dir)
    out = []
    for name, kind, key in ((GENERATOR, "matgan_generator", "generator"), (CRITIC, "matgan_critic", "critic")):
        path = model_dir / name
        if not path.is_file():
            raise DataError(path, "not found (run the gan_train stage: dvc repro gan_train)")
        ck = torch.load(path, map_location="cpu", weights_only=True)
        m = build_model(kind, **ck["settings"][key])
        m.load_state_dict(ck["state_dict"], strict=True)
        m.eval()
        out.append((m, ck["settings"]))
    return out[0][0], out[1][0], out[1][1]
