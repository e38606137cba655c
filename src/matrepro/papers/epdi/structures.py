"""Doped MX2 monolayers, Li adsorption sites and the diffusion paths between them (ASE).

Hosts are monolayers in the phase each prefers as a free-standing sheet (2H trigonal prismatic for
the group VIB disulfides and 2H-NbS2/TaS2; 1T octahedral for the group IVB disulfides and VS2).
Lattice constants and metal-chalcogen heights are PBE values of the C2DB database (Haastrup et al.,
2D Mater. 5, 042002, 2018), rounded to 0.01 A; the slab geometry is then relaxed with CHGNet at
fixed cell. An ``n x n`` supercell holds one dopant on the metal site at the origin.

Sites (the issue's "top-of-metal" and "hollow"):

* ``T`` — on top of a metal atom;
* ``H`` — on top of the hexagon centre, the one of the two threefold positions that has no top-layer
  chalcogen under it (in 2H it is above the empty prism; in 1T above a bottom-layer chalcogen).

Equivalent sites and paths repeat the same image and the same energy, which would leak between a
training and a test set, so only distinct ones are kept. Two sites (or two T-H paths) are equivalent
when a symmetry operation of the slab that keeps the surface up (a spglib operation of the ideal doped
supercell with z -> z; the lattice translations of the supercell included) maps one onto the other: in
a doped cell the C3v operations about the dopant, in the undoped cell every translation too, so all T
are one site and all T-H hops one path. Equal distance to the dopant is not enough: in a 3 x 3 cell
the two T sites at sqrt(3) a are C3v-inequivalent (one has its three nearest dopant images in the
directions of its top-layer chalcogens, the other in the directions of its hollows). Each class is
represented by its first member in a fixed order (distance to the dopant, then plain distance to the
origin, then x, then y, all rounded to 1e-4 A), so every machine keeps the same sites whatever the
last bits of its floats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.errors import MatreproError

# phase, a (A), M-X height (A): C2DB PBE, rounded
HOSTS: dict[str, tuple[str, float, float]] = {
    "TiS2": ("1T", 3.41, 1.42),
    "ZrS2": ("1T", 3.69, 1.45),
    "HfS2": ("1T", 3.64, 1.46),
    "VS2": ("1T", 3.17, 1.49),
    "NbS2": ("2H", 3.34, 1.57),
    "TaS2": ("2H", 3.34, 1.57),
    "CrS2": ("2H", 3.05, 1.47),
    "MoS2": ("2H", 3.18, 1.56),
    "WS2": ("2H", 3.18, 1.57),
    "MoSe2": ("2H", 3.32, 1.67),
    "WSe2": ("2H", 3.32, 1.68),
}
GROUP = {"Ti": "IVB", "Zr": "IVB", "Hf": "IVB", "V": "VB", "Nb": "VB", "Ta": "VB",
         "Cr": "VIB", "Mo": "VIB", "W": "VIB"}
DOPANTS = ("Sc", "Ti", "Zr", "Hf", "V", "Nb", "Ta", "Cr", "Mo", "W", "Mn", "Re", "Fe", "Co", "Ni")
SITE_KINDS = ("T", "H")


def host_metal(host: str) -> str:
    check_host(host)
    return host.rstrip("0123456789").removesuffix("Se").removesuffix("S")


def check_host(host: str) -> None:
    if host not in HOSTS:
        raise MatreproError(f"params.yaml: field 'hosts': unknown host {host!r}; known: {sorted(HOSTS)}")


def check_dopant(host: str, dopant: str | None) -> None:
    check_host(host)
    if dopant is None:
        return
    if dopant not in DOPANTS:
        raise MatreproError(f"params.yaml: field 'dopants': unknown dopant {dopant!r} for host {host}; "
                            f"known: {list(DOPANTS)}")
    if dopant == host_metal(host):
        raise MatreproError(f"params.yaml: field 'dopants': dopant {dopant!r} equals the metal of host {host} "
                            "(the undoped host is always included; list only foreign metals)")


class ConfigFailed(MatreproError):
    """A configuration (an SCF, a relaxation or an NEB) that failed; recorded with its reason."""


def top_z(slab) -> float:
    """z of the top chalcogen layer (A)."""
    sym = np.array(slab.get_chemical_symbols())
    return float(slab.positions[np.isin(sym, ["S", "Se"]), 2].max())


def build_slab(host: str, dopant: str | None, n: int, vacuum: float):
    """The n x n supercell of ``host`` with ``dopant`` on the metal at the origin, centred in z with
    ``vacuum`` A above and below."""
    from ase.build import mx2

    check_dopant(host, dopant)
    if n < 1:
        raise MatreproError(f"params.yaml: field 'supercell': must be >= 1, got {n}")
    phase, a, dz = HOSTS[host]
    slab = mx2(formula=host, kind=phase, a=a, thickness=2 * dz, size=(n, n, 1), vacuum=vacuum)
    metal = host_metal(host)
    idx = [i for i, s in enumerate(slab.get_chemical_symbols()) if s == metal]
    origin = min(idx, key=lambda i: np.linalg.norm(slab.positions[i, :2]))
    # put that metal at the lateral origin
    slab.positions[:, :2] -= slab.positions[origin, :2]
    slab.wrap()
    if dopant:
        slab[origin].symbol = dopant
    slab.info.update(host=host, dopant=dopant or "", phase=phase, a=a, n=n, dopant_index=origin)
    return slab


@dataclass(frozen=True)
class Site:
    name: str        # e.g. "T3"
    kind: str        # T | H
    xy: tuple[float, float]
    dist: float      # periodic lateral distance to the dopant (metal at the origin), A


def _pdist(cell2: np.ndarray, xy: np.ndarray, ref=(0.0, 0.0)) -> float:
    """Minimum-image lateral distance in a 2-D periodic cell (rows of ``cell2`` are a1, a2)."""
    frac = np.linalg.solve(cell2.T, np.asarray(xy) - np.asarray(ref))
    best = np.inf
    for i in (-1, 0, 1):
        for j in (-1, 0, 1):
            f = frac - np.round(frac) + (i, j)
            best = min(best, float(np.linalg.norm(f @ cell2)))
    return best


def all_sites(slab) -> list[Site]:
    """Every T and H site of the slab (n^2 of each)."""
    n = slab.info["n"]
    cell2 = np.asarray(slab.cell)[:2, :2]
    zs = slab.positions[:, 2]
    sym = np.array(slab.get_chemical_symbols())
    metals = [i for i, s in enumerate(sym) if s != "S" and s != "Se"]
    chalc = [i for i, s in enumerate(sym) if s in ("S", "Se")]
    ztop = zs[chalc].max()
    top = [i for i in chalc if zs[i] > ztop - 0.5]
    metal_xy = slab.positions[metals, :2]
    unit = cell2 / n
    cands = [(1 / 3, 2 / 3), (2 / 3, 1 / 3)]
    top_frac = np.linalg.solve(unit.T, slab.positions[top[0], :2]) % 1.0
    occupied = min(range(2), key=lambda k: np.linalg.norm(((top_frac - cands[k] + 0.5) % 1.0) - 0.5))
    hollow = np.array(cands[1 - occupied]) @ unit
    sites = []
    for k, xy in enumerate(sorted(map(tuple, np.round(metal_xy, 6)), key=lambda p: _site_order(cell2, p))):
        sites.append(Site(f"T{k}", "T", (float(xy[0]), float(xy[1])), round(_pdist(cell2, xy), 4)))
    hx = [tuple(np.asarray(xy) + hollow) for xy in metal_xy]
    for k, xy in enumerate(sorted(hx, key=lambda p: _site_order(cell2, p))):
        sites.append(Site(f"H{k}", "H", (float(xy[0]), float(xy[1])), round(_pdist(cell2, xy), 4)))
    return sites


def _site_order(cell2: np.ndarray, xy) -> tuple[float, ...]:
    """Sort key of a site: periodic distance to the dopant, then plain distance to the origin (so the
    representative of a class is, where possible, the in-cell copy that faces the dopant directly),
    then x, then y; every term rounded to 1e-4 A.

    Equivalent sites have the same distance up to the last bits of a float, and those bits depend on
    the BLAS/LAPACK build: an unrounded key let two machines keep different (if equivalent)
    representatives, so different positions, image crops and path names. Rounded, the choice is the
    same everywhere."""
    x, y = float(xy[0]), float(xy[1])
    return tuple(round(v, 4) + 0.0 for v in (_pdist(cell2, xy), float(np.hypot(x, y)), x, y))


def surface_operations(slab, symprec: float = 1e-3) -> list[tuple[np.ndarray, np.ndarray]]:
    """The symmetry operations of ``slab`` that keep z (spglib, ``symprec`` A), as (R, t) acting on
    lateral fractional coordinates: f -> R f + t. Lattice translations of the supercell are included."""
    import spglib

    cell = (np.asarray(slab.cell), slab.get_scaled_positions(), slab.numbers)
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        raise MatreproError(f"spglib found no symmetry for {slab.info.get('host')}:{slab.info.get('dopant')}")
    ops = []
    for rot, tr in zip(sym["rotations"], sym["translations"]):
        if rot[2, 2] == 1 and not rot[2, :2].any() and not rot[:2, 2].any() and abs(tr[2] - round(tr[2])) < 1e-6:
            ops.append((rot[:2, :2].astype(float), np.asarray(tr[:2], float)))
    return ops


def _frac_key(f) -> tuple[float, ...]:
    """Fractional coordinates reduced into [0, 1), rounded to 1e-4, as a hashable key."""
    return tuple(round(float(v) % 1.0, 4) % 1.0 + 0.0 for v in f)


def _site_orbit_key(ops, cell2, xy) -> tuple[float, ...]:
    f = np.linalg.solve(cell2.T, np.asarray(xy, float))
    return min(_frac_key(r @ f + t) for r, t in ops)


def distinct_sites(slab) -> list[Site]:
    """One site per symmetry class (the first in the order of ``all_sites``)."""
    ops = surface_operations(slab)
    cell2 = np.asarray(slab.cell)[:2, :2]
    seen, out = set(), []
    for s in all_sites(slab):
        key = (s.kind, _site_orbit_key(ops, cell2, s.xy))
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def check_site(slab, xy) -> None:
    cell2 = np.asarray(slab.cell)[:2, :2]
    frac = np.linalg.solve(cell2.T, np.asarray(xy, float))
    if np.any(frac < -1e-6) or np.any(frac > 1 + 1e-6):
        raise MatreproError(f"site {tuple(np.round(xy, 3))} A lies outside the {slab.info.get('n')}x"
                            f"{slab.info.get('n')} cell of {slab.info.get('host')} (fractional {np.round(frac, 3)})")


@dataclass(frozen=True)
class Path:
    name: str
    start: Site   # a T site
    end: Site     # a neighbouring H site (end.xy is the H image nearest start, possibly outside the cell)


def distinct_paths(slab) -> list[Path]:
    """Every T -> neighbouring H hop, one per symmetry class of (T, hop vector)."""
    cell2 = np.asarray(slab.cell)[:2, :2]
    a = slab.info["a"]
    ops = surface_operations(slab)
    sites = all_sites(slab)
    ts = [s for s in sites if s.kind == "T"]
    hs = [s for s in sites if s.kind == "H"]
    seen, out = set(), []
    for t in ts:
        ft = np.linalg.solve(cell2.T, np.asarray(t.xy))
        for h in hs:
            for i in (-1, 0, 1):
                for j in (-1, 0, 1):
                    xy = np.asarray(h.xy) + i * cell2[0] + j * cell2[1]
                    d = np.linalg.norm(xy - np.asarray(t.xy))
                    if abs(d - a / np.sqrt(3)) > 0.05:
                        continue
                    hop = np.linalg.solve(cell2.T, xy - np.asarray(t.xy))
                    key = min(_frac_key(r @ ft + tr) + tuple(round(float(v), 4) + 0.0 for v in r @ hop)
                              for r, tr in ops)
                    if key in seen:
                        continue
                    seen.add(key)
                    end = Site(h.name, "H", (float(xy[0]), float(xy[1])), h.dist)
                    out.append(Path(f"{t.name}-{h.name}", t, end))
    return out
