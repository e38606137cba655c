"""epdi: does regenerating surfaces reproduce the committed data set? (a benchmark, not a test)

Recomputes the named surfaces of the committed ``data/epdi`` (profile in its meta.json) with an
empty cache, so CHGNet and GPAW really run again, and prints the largest differences of every
energy, position and ESP map value against the committed files, with the wall time.

    python benchmarks/epdi_regenerate.py --surfaces MoS2-Nb TiS2-V --workers 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from matrepro.core.config import paper_config  # noqa: E402
from matrepro.papers.epdi import generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "epdi"))
    ap.add_argument("--surfaces", nargs="+", default=["MoS2-Nb", "TiS2-V"])
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    data = Path(a.data)
    meta = json.loads((data / "meta.json").read_text())
    cfg = paper_config("epdi", meta["profile"])
    cfg["systems"] = [{s.split("-")[0]: [] if s.endswith("-pure") else [s.split("-")[1]]} for s in a.surfaces]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        res = generate.compute(cfg, workers=a.workers, cache=Path(tmp) / "cache")
        res = [r for r in res if generate.surface_id(r["spec"]["host"], r["spec"]["dopant"]) in a.surfaces]
        generate.write(res, cfg, Path(tmp) / "out", time.time() - t0)
        wall = time.time() - t0
        new = {n: pd.read_csv(Path(tmp) / "out" / f"{n}.csv") for n in ("records", "paths")}
        maps_new = np.load(Path(tmp) / "out" / "maps.npz")
        maps_old = np.load(data / "maps.npz")
        print(f"profile {meta['profile']}; regenerated {a.surfaces} in {wall:.0f} s")
        for name, cols in (("records", ["x", "y", "z_li", "energy", "e_b"]), ("paths", ["e_b_saddle", "barrier"])):
            old = pd.read_csv(data / f"{name}.csv")
            old = old[old.surface.isin(a.surfaces)].reset_index(drop=True)
            n = new[name].reset_index(drop=True)
            assert len(old) == len(n), f"{name}: {len(old)} committed rows, {len(n)} regenerated"
            for c in cols:
                print(f"  {name}.{c}: max |diff| = {np.abs(old[c] - n[c]).max():.3g}")
        for k in maps_new.files:
            print(f"  maps {k}: max |diff| = {np.abs(maps_new[k] - maps_old[k]).max():.3g}")


if __name__ == "__main__":
    main()
