"""Trained models that users can apply (``matrepro predict``): a folder per model under
``models/<paper>/<name>/`` holding ``card.json`` and the member checkpoints it lists.

The card says what the model is and what it may be applied to: paper, name, target and unit,
the profile it was trained in, the DVC stage that writes it, the training rows and the elements
they contain, the test metrics (copied from ``metrics/``, never typed), the input format, the
members (one checkpoint per seed or ensemble member) and the applicability checks with their
calibrated thresholds. Checkpoints hold tensors and plain values only and are loaded with
``torch.load(weights_only=True)``; the networks load them with strict keys.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import MatreproError
from .paths import project_root

CARD = "card.json"
REQUIRED = ("paper", "name", "target", "unit", "profile", "stage", "training", "metrics", "input", "members",
            "applicability")


class ModelMissing(MatreproError):
    """No trained model where one was asked for; the message says what to run."""


def models_dir() -> Path:
    return project_root() / "models"


def write_card(folder: str | Path, card: dict) -> Path:
    """Validate and write ``card.json`` (members must exist beside it)."""
    folder = Path(folder)
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise MatreproError(f"{folder / CARD}: card lacks {missing}")
    for m in card["members"]:
        if not (folder / m).is_file():
            raise MatreproError(f"{folder / CARD}: member checkpoint {m!r} is not in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CARD
    path.write_text(json.dumps(card, indent=1, sort_keys=True, default=float) + "\n")
    return path


def read_card(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file():
        raise ModelMissing(f"no trained model in {folder} (no {CARD})")
    try:
        card = json.loads(path.read_text())
    except ValueError as exc:
        raise MatreproError(f"{path}: not valid JSON ({exc})") from exc
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise MatreproError(f"{path}: card lacks {missing}")
    card["folder"] = str(folder)
    return card


def load_member(folder: str | Path, name: str) -> dict:
    """One member checkpoint, loaded safely (tensors and plain values only)."""
    path = Path(folder) / name
    if not path.is_file():
        raise ModelMissing(f"{path}: member checkpoint missing")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, foreign objects
        raise MatreproError(f"{path}: not a loadable checkpoint ({type(exc).__name__}: {exc})") from exc


def list_cards(root: str | Path | None = None, paper: str | None = None) -> list[dict]:
    """Every card under ``models/`` (or ``root``), optionally for one paper, sorted by paper and name."""
    root = Path(root) if root else models_dir()
    pattern = f"{paper}/*/{CARD}" if paper else f"*/*/{CARD}"
    return [read_card(p.parent) for p in sorted(root.glob(pattern))]
