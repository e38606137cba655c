"""Energies with CHGNet through its ASE calculator: slab relaxation, Li binding energies at sites,
climbing-image NEB between neighbouring sites.

Bookkeeping (the paper's definition)::

    E_b = E(slab + Li) - E(slab) - E_ref(Li)

* ``E(slab)``: the Li-free slab, positions relaxed with CHGNet at fixed cell (BFGS, fmax below).
* ``E(slab + Li)``: that slab frozen, Li placed ``li_height`` A above the top chalcogen layer at the
  site, Li's height relaxed with its lateral position held (so the energy belongs to the site, and
  the frozen slab is the one whose ESP map is imaged). Frozen slab: an assumption, recorded.
* ``E_ref(Li)``: CHGNet energy per atom of bcc Li metal at its CHGNet-relaxed lattice constant
  (negative E_b: adsorption is favoured over plating Li metal). An isolated Li atom would shift every
  E_b by one constant and change no trend, barrier or MAE.

NEB: ``n_images`` interior images between a T site and a neighbouring H site (both endpoints as
above), ASE's climbing-image NEB with the improved tangent, FIRE to ``fmax``; the slab is frozen and
Li moves freely. A band that has not converged in ``max_steps`` raises ``ConfigFailed``. The saddle
is the highest interior image; its E_b is the saddle-point binding energy, and the barrier is its
energy above the lower endpoint.

CHGNet's weights ship inside the PyPI package (``chgnet/pretrained/0.3.0``); ``load_chgnet`` loads
that file and never a hub.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ...core.errors import MatreproError
from .structures import ConfigFailed, top_z  # noqa: F401  (ConfigFailed: raised here, caught by callers)


def chgnet_weights_path():
    from importlib.resources import files

    import chgnet

    path = files(chgnet) / "pretrained" / "0.3.0" / "chgnet_0.3.0_e29f68s314m37.pth.tar"
    if not path.is_file():
        raise MatreproError(f"CHGNet 0.3.0 weights not found inside the chgnet package at {path}; "
                            "reinstall chgnet (make install)")
    return path


@lru_cache(maxsize=1)
def load_chgnet():
    """CHGNet 0.3.0 from the file inside the installed package (no network)."""
    import torch
    from chgnet.model import CHGNet

    torch.set_num_threads(1)
    return CHGNet.from_file(str(chgnet_weights_path()), verbose=False)


def calculator():
    """A CHGNet ASE calculator on the one loaded model (its "will run on cpu" print silenced)."""
    import contextlib
    import io

    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNetCalculator(model=load_chgnet(), use_device="cpu")


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ConfigFailed(f"{what}: energy is NaN or infinite")
    return float(value)


def li_reference(fmax: float = 0.01) -> float:
    """CHGNet energy per atom of bcc Li (lattice relaxed), eV."""
    from ase.build import bulk
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    li = bulk("Li", "bcc", a=3.44, cubic=True)
    li.calc = calculator()
    BFGS(FrechetCellFilter(li), logfile=None).run(fmax=fmax, steps=200)
    return _finite(li.get_potential_energy() / len(li), "bcc Li reference")


def relax_slab(slab, fmax: float, steps: int = 300):
    from ase.optimize import BFGS

    slab = slab.copy()
    slab.calc = calculator()
    opt = BFGS(slab, logfile=None)
    if not opt.run(fmax=fmax, steps=steps):
        raise ConfigFailed(f"slab relaxation did not reach fmax {fmax} eV/A in {steps} steps")
    e = _finite(slab.get_potential_energy(), "slab")
    slab.calc = None
    return slab, e


def with_li(slab, xy, li_height: float):
    from ase import Atoms
    from ase.constraints import FixAtoms, FixCartesian

    atoms = slab.copy() + Atoms("Li", positions=[[xy[0], xy[1], top_z(slab) + li_height]])
    li = len(atoms) - 1
    atoms.set_constraint([FixAtoms(indices=list(range(li))), FixCartesian(li, mask=(True, True, False))])
    return atoms


def li_at_site(slab, xy, li_height: float, fmax: float, steps: int = 200):
    """Li above ``xy`` on the frozen slab, its height relaxed. Returns (atoms, energy)."""
    from ase.optimize import BFGS

    atoms = with_li(slab, xy, li_height)
    atoms.calc = calculator()
    if not BFGS(atoms, logfile=None).run(fmax=fmax, steps=steps):
        raise ConfigFailed(f"Li height relaxation at {tuple(np.round(xy, 3))} did not converge in {steps} steps")
    e = _finite(atoms.get_potential_energy(), "slab+Li")
    atoms.calc = None
    return atoms, e


def neb(start, end, n_images: int, fmax: float, max_steps: int):
    """Climbing-image NEB between two slab+Li configurations. Returns (images, energies, optimiser
    steps), endpoints included, or raises ConfigFailed."""
    from ase.constraints import FixAtoms
    from ase.mep import NEB
    from ase.optimize import FIRE

    li = len(start) - 1
    frozen = FixAtoms(indices=list(range(li)))
    images = [start.copy()]
    for _ in range(n_images):
        images.append(start.copy())
    images.append(end.copy())
    for im in images:
        im.set_constraint(frozen)
    band = NEB(images, climb=True, method="improvedtangent")
    band.interpolate()
    for im in images:
        im.calc = calculator()  # ASE wants one calculator per image; they share the one model
    opt = FIRE(band, logfile=None)
    ok = opt.run(fmax=fmax, steps=max_steps)
    if not ok:
        raise ConfigFailed(f"climbing-image NEB did not reach fmax {fmax} eV/A in {max_steps} steps")
    energies = []
    for k, im in enumerate(images):
        energies.append(_finite(im.get_potential_energy(), f"NEB image {k}"))
        im.calc = None
    return images, np.asarray(energies), int(opt.nsteps)
