"""The epdi generation stage: CHGNet energies and NEB paths plus one GPAW ESP map per surface,
resumable and parallel over processes.

A *surface* is one (host, dopant) pair (dopant ``None``: the undoped host). Its task relaxes the
slab and computes the GPAW map (the *slab part*), then relaxes Li at every distinct site and runs a
climbing-image NEB on every distinct T-H path (the *Li part*). Both parts are cached under
``<cache>/<sha256 of their inputs>.pkl``: the slab part by the settings that change the slab or the map
(and ``SLAB_VERSION``), the whole surface by every setting (and ``GEN_VERSION``), with the
chgnet/gpaw/ase versions in both. So an interrupted run resumes where it stopped, a rerun with the
same settings computes nothing, and a change to the Li sites, the Li height or the NEB reuses the
relaxed slabs and the GPAW maps (about 4/5 of the compute). The cache lives in
``$MATREPRO_EPDI_CACHE`` or ``<repo>/.cache/epdi`` (not committed; DVC deletes a stage's outputs
before it runs, so the cache cannot be one).

Failures never vanish: a path whose NEB does not converge and a surface whose GPAW SCF or slab
relaxation fails are written to ``failures.csv`` with their reason; the notebook counts them.

Output (a folder the repository commits, DVC ``cache: false``):

* ``records.csv`` — one row per image: surface, host, dopant, kind (``site`` or ``neb``), site or
  path name, image index along the path (0 and n+1 are the endpoint sites), whether it is the path's
  saddle, Li x/y/z (A), E(slab+Li), E_b (eV), distance to the dopant;
* ``paths.csv`` — per path: endpoints, barrier (saddle above the lower endpoint), NEB steps;
* ``surfaces.csv`` — per surface: phase, group, lattice, E(slab), seconds for CHGNet and GPAW;
* ``maps.npz`` — per surface the ESP map phi (V, vacuum 0, float32) and its lateral cell;
* ``failures.csv`` and ``meta.json`` (profile, settings, E_ref(Li), versions, wall time).

Images are crops of the maps (``dataset.load_images``), made when they are used.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import MatreproError
from ...core.paths import project_root
from . import structures as st

GEN_VERSION = 3  # bump when the generation code changes its numbers (every cached Li part is then recomputed)
SLAB_VERSION = 1  # bump as well when the change touches the slab, its relaxation or the GPAW map
# sha256 (first 16 hex) of structures.py + energies.py + esp.py as of GEN_VERSION. A test recomputes it, so
# an edit of the physics code fails CI until someone decides: bump GEN_VERSION (numbers change; and
# SLAB_VERSION if the slab or the map change) or only update this digest (comments, refactoring).
PHYSICS_DIGEST = "6813e7bfcfa06bd1"
PHYSICS_FILES = ("structures.py", "energies.py", "esp.py")


def physics_digest() -> str:
    h = hashlib.sha256()
    for name in PHYSICS_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    env = os.environ.get("MATREPRO_EPDI_CACHE")
    return Path(env) if env else project_root() / ".cache" / "epdi"


def surfaces(cfg: dict) -> list[tuple[str, str | None]]:
    """(host, dopant) pairs from ``cfg['systems']`` (a list of ``{host: [dopants]}``; a list, so that a
    profile replaces it whole), the undoped host first."""
    out = []
    systems = cfg.get("systems") or []
    if not isinstance(systems, list) or not systems:
        raise MatreproError("params.yaml: field 'epdi.systems': a non-empty list of {host: [dopants]}")
    pairs = [(h, d) for item in systems for h, d in item.items()]
    for host, dopants in pairs:
        st.check_host(host)
        out.append((host, None))
        for d in dopants or []:
            st.check_dopant(host, d)
            out.append((host, d))
    return out


def versions() -> dict:
    from importlib.metadata import version

    return {p: version(p) for p in ("chgnet", "gpaw", "ase")}


SLAB_KEYS = ("supercell", "vacuum", "fmax_slab", "gpaw", "esp_height")
LI_KEYS = ("li_height", "fmax_li", "neb")


def task_spec(cfg: dict, host: str, dopant: str | None) -> dict:
    return {"host": host, "dopant": dopant, **{k: cfg[k] for k in SLAB_KEYS + LI_KEYS},
            "versions": versions(), "gen_version": GEN_VERSION}


def slab_spec(spec: dict) -> dict:
    """The inputs of a surface's slab part (relaxed slab, E(slab), E_ref(Li), GPAW map)."""
    return {"part": "slab", "host": spec["host"], "dopant": spec["dopant"], **{k: spec[k] for k in SLAB_KEYS},
            "versions": spec["versions"], "slab_version": SLAB_VERSION}


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker():
    for v in THREAD_VARS:
        os.environ[v] = "1"
    import torch

    torch.set_num_threads(1)


def slab_part(spec: dict) -> dict:
    """Relax the slab and compute its GPAW map. Failures are inside the result, never raised."""
    from . import energies as en
    from . import esp

    out = {"spec": slab_spec(spec), "failures": [], "map": None}
    ideal = st.build_slab(spec["host"], spec["dopant"], spec["supercell"], spec["vacuum"])
    t0 = time.time()
    try:
        e_ref = en.li_reference()
        slab, e_slab = en.relax_slab(ideal, spec["fmax_slab"])
    except en.ConfigFailed as exc:
        out["failures"].append({"stage": "chgnet slab", "item": "", "reason": str(exc)})
        return out
    slab.calc = None
    out.update(slab=slab, e_ref=e_ref, e_slab=e_slab, cell2=np.asarray(slab.cell)[:2, :2].copy(),
               slab_seconds=time.time() - t0)
    g = spec["gpaw"]
    try:
        v, secs, pg = esp.gpaw_potential(slab, g["kpts"], g["h"], g["basis"], g["xc"], g["smearing"])
        out["map"] = esp.plane_map(v, slab, spec["esp_height"]).astype(np.float32)
        out.update(gpaw_seconds=secs, gpaw_point_group=pg)
    except en.ConfigFailed as exc:
        out["failures"].append({"stage": "gpaw", "item": "", "reason": str(exc)})
    return out


def run_surface(spec: dict, cache: Path | None = None) -> dict:
    """Compute one surface, its slab part from ``cache`` when there. Returns a result dict; failures are
    inside it, never raised."""
    _init_worker()
    import warnings

    warnings.filterwarnings("ignore")
    from . import energies as en

    part = _cached(slab_spec(spec), cache) if cache is not None else None
    if part is None:
        part = slab_part(spec)
        if cache is not None:
            _store(part, cache)
    out = {"spec": spec, "sites": [], "paths": [], "failures": list(part["failures"]), "map": part["map"]}
    if "slab" not in part:
        return out
    slab = part["slab"].copy()
    out.update({k: part[k] for k in ("e_ref", "e_slab", "cell2")})
    out.update({k: part[k] for k in ("gpaw_seconds", "gpaw_point_group") if k in part})
    ideal = st.build_slab(spec["host"], spec["dopant"], spec["supercell"], spec["vacuum"])
    t0 = time.time()
    endpoints = {}
    for s in st.distinct_sites(ideal):
        ts = time.time()
        try:
            atoms, e = en.li_at_site(slab, s.xy, spec["li_height"], spec["fmax_li"])
        except en.ConfigFailed as exc:
            out["failures"].append({"stage": "chgnet site", "item": s.name, "reason": str(exc)})
            continue
        endpoints[s.name] = (atoms, e)
        out["sites"].append({"site": s.name, "site_kind": s.kind, "x": s.xy[0], "y": s.xy[1],
                             "z_li": float(atoms.positions[-1, 2]), "energy": e, "dist": s.dist,
                             "seconds": time.time() - ts})
    neb = spec["neb"]
    for p in st.distinct_paths(ideal):
        ts = time.time()
        try:
            a0 = endpoints[p.start.name][0] if p.start.name in endpoints else \
                en.li_at_site(slab, p.start.xy, spec["li_height"], spec["fmax_li"])[0]
            a1, _ = en.li_at_site(slab, p.end.xy, spec["li_height"], spec["fmax_li"])
            images, energies, steps = en.neb(a0, a1, neb["n_images"], neb["fmax"], neb["max_steps"])
        except en.ConfigFailed as exc:
            out["failures"].append({"stage": "chgnet neb", "item": p.name, "reason": str(exc)})
            continue
        out["paths"].append({"path": p.name, "start": p.start.name, "end": p.end.name,
                             "li": np.array([im.positions[-1] for im in images]), "energy": energies,
                             "steps": steps, "seconds": time.time() - ts,
                             "dist": [float(st._pdist(np.asarray(slab.cell)[:2, :2], im.positions[-1, :2]))
                                      for im in images]})
    # CHGNet time of the surface: its slab relaxation (possibly from the cache) and its Li part
    out["chgnet_seconds"] = part["slab_seconds"] + time.time() - t0
    return out


def _cached(spec: dict, cache: Path):
    f = cache / f"{spec_hash(spec)}.pkl"
    if f.exists():
        with open(f, "rb") as fh:
            return pickle.load(fh)
    return None


def _store(res: dict, cache: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / f"{spec_hash(res['spec'])}.pkl"
    tmp = f.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(res, fh)
    tmp.replace(f)


def compute(cfg: dict, workers: int = 2, cache: Path | None = None, progress: bool = True) -> list[dict]:
    """Every surface's result, from the cache where present, else computed in ``workers`` processes."""
    import multiprocessing as mp

    from tqdm import tqdm

    cache = cache or cache_dir()
    specs = [task_spec(cfg, h, d) for h, d in surfaces(cfg)]
    results, todo = {}, []
    for s in specs:
        r = _cached(s, cache)
        if r is None:
            todo.append(s)
        else:
            results[spec_hash(s)] = r
    bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc="epdi surfaces", disable=not progress)
    if todo:
        for v in THREAD_VARS:  # inherited by the spawned workers
            os.environ[v] = "1"
        if workers <= 1:
            it = map(partial(run_surface, cache=cache), todo)
        else:
            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, maxtasksperchild=4)
            it = pool.imap_unordered(partial(run_surface, cache=cache), todo)
        for r in it:
            _store(r, cache)
            results[spec_hash(r["spec"])] = r
            bar.update(1)
            bar.set_postfix_str(f"{r['spec']['host']}-{r['spec']['dopant'] or 'pure'}")
        if workers > 1:
            pool.close()
            pool.join()
    bar.close()
    return [results[spec_hash(s)] for s in specs]


def surface_id(host: str, dopant: str | None) -> str:
    return f"{host}-{dopant}" if dopant else f"{host}-pure"


def tables(results: list[dict]) -> dict[str, pd.DataFrame]:
    """records, paths, surfaces and failures tables from the per-surface results."""
    recs, paths, surfs, fails = [], [], [], []
    for r in results:
        host, dopant = r["spec"]["host"], r["spec"]["dopant"]
        sid = surface_id(host, dopant)
        base = {"surface": sid, "host": host, "dopant": dopant or "", "phase": st.HOSTS[host][0],
                "group": st.GROUP[st.host_metal(host)]}
        for f in r["failures"]:
            fails.append({"surface": sid, **f})
        if "e_slab" not in r:
            continue
        has_map = r["map"] is not None
        surfs.append({**base, "a": st.HOSTS[host][1], "n": r["spec"]["supercell"], "e_slab": r["e_slab"],
                      "e_ref_li": r["e_ref"], "n_sites": len(r["sites"]), "n_paths": len(r["paths"]),
                      "has_map": has_map, "chgnet_seconds": r.get("chgnet_seconds", np.nan),
                      "gpaw_seconds": r.get("gpaw_seconds", np.nan),
                      "gpaw_point_group": r.get("gpaw_point_group", "")})
        e0 = r["e_slab"] + r["e_ref"]
        for s in r["sites"]:
            recs.append({**base, "kind": "site", "site": s["site"], "site_kind": s["site_kind"], "path": "",
                         "image": -1, "is_saddle": False, "x": s["x"], "y": s["y"], "z_li": s["z_li"],
                         "energy": s["energy"], "e_b": s["energy"] - e0, "dist": s["dist"], "has_map": has_map,
                         "seconds": s["seconds"]})
        for p in r["paths"]:
            en = np.asarray(p["energy"])
            k_sad = 1 + int(np.argmax(en[1:-1]))
            paths.append({**base, "path": p["path"], "start": p["start"], "end": p["end"],
                          "e_b_start": en[0] - e0, "e_b_end": en[-1] - e0, "e_b_saddle": en[k_sad] - e0,
                          "barrier": float(en[k_sad] - min(en[0], en[-1])), "saddle_image": k_sad,
                          "n_images": len(en) - 2, "neb_steps": p["steps"], "neb_seconds": p["seconds"],
                          "has_map": has_map})
            for k in range(len(en)):
                x, y, z = p["li"][k]
                recs.append({**base, "kind": "neb", "site": "", "site_kind": "", "path": p["path"], "image": k,
                             "is_saddle": k == k_sad, "x": x, "y": y, "z_li": z, "energy": en[k],
                             "e_b": en[k] - e0, "dist": p["dist"][k], "has_map": has_map,
                             "seconds": np.nan})
    cols = ["surface", "stage", "item", "reason"]
    return {"records": pd.DataFrame(recs), "paths": pd.DataFrame(paths), "surfaces": pd.DataFrame(surfs),
            "failures": pd.DataFrame(fails, columns=cols)}


def write(results: list[dict], cfg: dict, out_dir: str | Path) -> dict:
    """Write the data set (records, paths, surfaces, failures, maps.npz, meta.json) to ``out_dir``.

    Every byte is a function of ``results`` and ``cfg`` only, never of the clock: re-running the stage on a
    warm cache rewrites ``data/epdi`` identically, so DVC does not re-run the training stages below it.
    The wall time of a run is a metric of that run (the notebook writes it to ``metrics/epdi/dataset.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = tables(results)
    for name, df in t.items():
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6f")
    maps = {}
    for r in results:
        if r.get("map") is not None:
            sid = surface_id(r["spec"]["host"], r["spec"]["dopant"])
            maps[f"{sid}/phi"] = r["map"].astype(np.float32)
            maps[f"{sid}/cell2"] = np.asarray(r["cell2"], dtype=np.float64)
    np.savez_compressed(out / "maps.npz", **maps)
    e_ref = next((r["e_ref"] for r in results if "e_ref" in r), None)
    meta = {"profile": cfg.get("profile"), "settings": {k: cfg[k] for k in
            ("supercell", "vacuum", "li_height", "fmax_slab", "fmax_li", "neb", "gpaw", "esp_height", "systems")},
            "e_ref_li_eV": e_ref, "versions": versions(), "gen_version": GEN_VERSION,
            "units": {"phi": "V, electrostatic potential of a positive test charge, vacuum level = 0",
                      "energy": "eV (CHGNet 0.3.0)", "length": "angstrom"},
            "compute_seconds": round(float(t["surfaces"][["chgnet_seconds", "gpaw_seconds"]].sum().sum()), 1)
            if len(t["surfaces"]) else 0.0}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return t


def main(argv=None) -> None:
    import argparse

    from ...core.config import paper_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/epdi")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args(argv)
    cfg = paper_config("epdi", a.profile)
    t0 = time.time()
    res = compute(cfg, workers=a.workers or cfg.get("workers", 2))
    t = write(res, cfg, a.out)
    print(f"{len(t['records'])} images ({int(t['records'].is_saddle.sum()) if len(t['records']) else 0} saddles) "
          f"from {len(t['surfaces'])} surfaces; {len(t['failures'])} failures; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
