"""gan data stage: the GAN's OQMD training and held-out compositions (every downstream test
composition excluded), their 85 x 8 tables, and how much of every target the table encodes.

Writes to ``data/processed/gan`` (file names in :mod:`.store`): ``gan_tables.npz`` (train, holdout),
``gan_status.csv`` (every composition with its encoding status and reason), ``gan_filters.json``
(every removal with its count and rule) and ``coverage.csv``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ...features.atom_table import encode_formulas
from . import data, store


def prepare(cfg: dict, out_dir: str | Path, root: Path | None = None) -> dict:
    """Write the GAN's tables, their status, the filter log and the target coverage; returns a summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, holdout, flog = data.gan_training_compositions(cfg, root)
    leaks = data.leaking_compositions(train + holdout, cfg, root)
    if leaks:  # cannot happen: the exclusion above removes them; checked all the same
        raise DataError("gan training set", f"{len(leaks)} downstream test compositions reached GAN training, "
                        f"e.g. {sorted(leaks)[:3]}")
    tabs, stats = {}, []
    args = store.table_args(cfg)
    for part, formulas in (("train", train), ("holdout", holdout)):
        t, s = encode_formulas(formulas, file=f"GAN {part} compositions", **args)
        enc = (s.status != "unencodable").to_numpy()
        flog.apply(s, enc, f"GAN {part}: compositions the 85 x 8 table cannot encode "
                           f"({args['mapping']} mapping; gan_status.csv gives each reason)")
        tabs[part] = t[enc]
        stats.append(s.assign(part=part))
    np.savez_compressed(out_dir / store.TABLES, **tabs)
    status = pd.concat(stats, ignore_index=True)
    status.to_csv(out_dir / store.STATUS, index=False)
    flog.save(out_dir / store.FILTERS)
    coverage = target_coverage(cfg, root)
    coverage.to_csv(out_dir / store.COVERAGE, index=False)
    return {"train": int(len(tabs["train"])), "holdout": int(len(tabs["holdout"])),
            "status": status.groupby(["part", "status"]).size().rename("rows").reset_index(),
            "filters": flog.to_frame(), "coverage": coverage, "leaks": len(leaks)}


def target_coverage(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Per target and part (after the profile caps): rows, and how many the table encodes exactly,
    approximately or not, with the commonest reason a row is unencodable."""
    rows = []
    for target in cfg["targets"]:
        parts, _ = data.load_target(target, cfg, root)
        _, status = data.encode_parts(parts, cfg, target)
        for part, s in status.items():
            c = s.status.value_counts()
            bad = s[s.status == "unencodable"]
            rows.append({"target": target, "part": part, "rows": len(s),
                         **{k: int(c.get(k, 0)) for k in ("exact", "approximated", "unencodable")},
                         "top reason (unencodable)": bad.reason.value_counts().index[0] if len(bad) else ""})
    return pd.DataFrame(rows)
