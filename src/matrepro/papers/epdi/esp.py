"""Electrostatic-potential maps with GPAW and the images cropped from them.

One GPAW calculation per surface (the relaxed Li-free slab): PBE, LCAO ``dzp`` basis, a k-point
mesh (2 x 2 for a 3 x 3 cell), Fermi-Dirac smearing 0.1 eV, grid spacing ``h``. GPAW's
``get_electrostatic_potential`` gives the electron's electrostatic potential energy on the fine grid,
in eV. We store the **electrostatic potential felt by a positive test charge, in volts, relative to
the vacuum level** (the convention of surface-ESP analyses):

    phi(r) = -(v(r) - v_vac) / e,   v_vac = mean of v on the grid plane farthest from the slab.

The map is phi on the plane ``height`` A above the top chalcogen layer (linear interpolation between
grid planes), on GPAW's fine lateral grid (fractional coordinates i/N1, j/N2). An image is a square
``size x size`` pixel crop, ``width`` A wide, centred on a lateral position, axis-aligned in
Cartesian x/y (``imaging.crop``), so a crop costs < 2 ms and needs no further DFT.
"""
from __future__ import annotations

import math

import numpy as np

from .structures import ConfigFailed, top_z


def gpaw_potential(slab, kpts: int, h: float, basis: str = "dzp", xc: str = "PBE", width: float = 0.1):
    """Run GPAW on ``slab``; returns (v on the fine grid in eV, seconds, whether point-group
    symmetry was used)."""
    import time

    from gpaw import GPAW, FermiDirac, mpi

    t0 = time.time()

    def run(point_group: bool):
        calc = GPAW(mode="lcao", basis=basis, xc=xc, kpts=(kpts, kpts, 1), h=h, txt=None,
                    occupations=FermiDirac(width), communicator=mpi.serial_comm,
                    symmetry={"point_group": point_group})
        atoms = slab.copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        return calc

    point_group = True
    try:
        try:
            calc = run(True)
        except Exception as exc:
            # GPAW's symmetry analysis can fail on a relaxed, slightly asymmetric slab
            # ("SymmetryAnalysisBug"); the same SCF without point-group symmetry is exact, only slower
            if "Symmetry" not in type(exc).__name__:
                raise
            point_group = False
            calc = run(False)
    except Exception as exc:  # an SCF that does not converge raises in GPAW
        raise ConfigFailed(f"GPAW SCF failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
    v = calc.get_electrostatic_potential()
    if not np.all(np.isfinite(v)):
        raise ConfigFailed("GPAW electrostatic potential has NaN values")
    return np.asarray(v, dtype=np.float64), time.time() - t0, point_group


def plane_map(v: np.ndarray, slab, height: float) -> np.ndarray:
    """phi (V, vacuum = 0) on the plane ``height`` A above the top chalcogen layer, on the fine
    lateral grid, shape (N1, N2)."""
    nz = v.shape[2]
    c = float(slab.cell[2, 2])
    zc = float(slab.positions[:, 2].mean())
    # the plane farthest from the slab centre (periodic in z): the vacuum level
    kvac = int(round(((zc + c / 2) % c) / c * nz)) % nz
    v_vac = float(v[:, :, kvac].mean())
    z = top_z(slab) + height
    g = z / c * nz  # GPAW's grid point k sits at z = k c / nz
    k0 = int(math.floor(g))
    w = g - k0
    vz = (1 - w) * v[:, :, k0 % nz] + w * v[:, :, (k0 + 1) % nz]
    return -(vz - v_vac)
