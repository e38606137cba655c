"""Where things live. Nothing here creates folders at import time."""
from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root: $MATREPRO_ROOT, else the nearest parent of the cwd with dvc.yaml."""
    env = os.environ.get("MATREPRO_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "dvc.yaml").exists() and (p / "src" / "matrepro").exists():
            return p
    return here


def data_dir() -> Path:
    return project_root() / "data"


def raw_dir() -> Path:
    return data_dir() / "raw"


def metrics_dir() -> Path:
    return project_root() / "metrics"
