"""The committed epdi data set as images: load the tables and maps, crop every image, split.

An image is a ``size x size`` float32 crop of its surface's ESP map centred on the Li position
(a site, or an NEB image's relaxed Li), with its metadata row (host, dopant, kind, site, path,
image index, saddle flag, E_b) and the crop settings (height, width, size, units) in ``meta``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError
from .imaging import crop


@dataclass
class Images:
    x: np.ndarray          # (N, size, size) float32, V
    rows: pd.DataFrame     # one metadata row per image (records.csv columns)
    meta: dict             # size, width_A, px_A, height_A, units, source folder

    def __len__(self) -> int:
        return len(self.rows)


def read_tables(folder: str | Path) -> dict:
    folder = Path(folder)
    out = {}
    for name in ("records", "paths", "surfaces", "failures"):
        f = folder / f"{name}.csv"
        if not f.exists():
            raise DataError(f, "missing: run `dvc repro epdi_generate` (or `dvc pull`)")
        df = pd.read_csv(f)
        for col in ("dopant", "site", "site_kind", "path", "start", "end", "item", "reason"):
            if col in df:  # text columns: an empty cell is "" (the undoped host, a site's path), never NaN
                df[col] = df[col].fillna("").astype(str)
        out[name] = df
    rec = out["records"]
    for col in ("e_b", "x", "y"):
        bad = np.flatnonzero(~np.isfinite(pd.to_numeric(rec[col], errors="coerce").to_numpy(float)))
        if len(bad):
            raise DataError(folder / "records.csv", "NaN or non-numeric value", row=int(bad[0]) + 1, field=col)
    out["meta"] = json.loads((folder / "meta.json").read_text())
    return out


def read_maps(folder: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    f = Path(folder) / "maps.npz"
    if not f.exists():
        raise DataError(f, "missing: run `dvc repro epdi_generate`")
    z = np.load(f)
    sids = sorted({k.split("/")[0] for k in z.files})
    return {s: (z[f"{s}/phi"], z[f"{s}/cell2"]) for s in sids}


def load_images(folder: str | Path, size: int, width: float) -> Images:
    """Every image whose surface has an ESP map (records without a map are counted by the caller
    from ``has_map``; they are the surfaces whose GPAW calculation failed)."""
    t = read_tables(folder)
    maps = read_maps(folder)
    rec = t["records"]
    rec = rec[rec.surface.isin(maps)].reset_index(drop=True)
    x = np.zeros((len(rec), size, size), np.float32)
    for i, r in enumerate(rec.itertuples()):
        phi, cell2 = maps[r.surface]
        x[i] = crop(phi, cell2, (r.x, r.y), size, width)
    meta = {"size": size, "width_A": width, "px_A": width / size, "height_A": t["meta"]["settings"]["esp_height"],
            "units": "V (vacuum = 0)", "source": str(folder)}
    return Images(x, rec, meta)


def learnable(rows: pd.DataFrame) -> np.ndarray:
    """Site images and interior NEB images (a path's endpoints repeat its sites' images)."""
    n_img = rows.groupby(["surface", "path"]).image.transform("max").fillna(-1)
    endpoint = (rows.kind == "neb") & ((rows.image == 0) | (rows.image == n_img))
    return ~endpoint.to_numpy()


def image_stats(x: np.ndarray) -> pd.DataFrame:
    """The baseline's features: mean, std, min and max of each crop, and the mean of its central
    disc of radius a quarter of the width (the "local mean ESP")."""
    n, s, _ = x.shape
    yy, xx = np.mgrid[:s, :s]
    disc = (xx - (s - 1) / 2) ** 2 + (yy - (s - 1) / 2) ** 2 <= (s / 4) ** 2
    f = x.reshape(n, -1)
    return pd.DataFrame({"mean": f.mean(1), "std": f.std(1), "min": f.min(1), "max": f.max(1),
                         "local_mean": x[:, disc].mean(1)})
