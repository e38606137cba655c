"""A packed store of crystal graphs, keyed by structure hash, in one .npz file.

Graphs are built once per distinct structure (``features.crystal.structure_graph``) and saved with
their atomic numbers, local neighbour indices and distances; atom features are looked up again at
load from the atom table in use. The file is byte-identical for identical graphs, so that DVC sees
an unchanged output when a stage re-runs without changes.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..core.errors import DataError, MatreproError
from .crystal import CrystalGraph


def save_store(path: str | Path, graphs: dict[str, CrystalGraph]) -> None:
    """Graphs keyed by structure hash in one .npz: Z, local neighbour indices and distances,
    concatenated, with per-graph atom counts. Atom features are looked up again at load."""
    keys = list(graphs)
    gs = [graphs[k] for k in keys]
    if any(g.z is None for g in gs):
        raise MatreproError("save_store needs graphs built by structure_graph (with atomic numbers)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"keys": np.array(keys, dtype="U64"), "n_atoms": np.array([g.n_atoms for g in gs], np.int32),
              "z": np.concatenate([g.z for g in gs]).astype(np.int16) if gs else np.zeros(0, np.int16),
              "nbr_idx": np.concatenate([g.nbr_fea_idx for g in gs]).astype(np.int32) if gs else np.zeros((0, 12), np.int32),
              "nbr_dist": np.concatenate([g.nbr_dist for g in gs]).astype(np.float32) if gs else np.zeros((0, 12), np.float32)}
    write_npz(path, arrays)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez, but byte-identical for identical arrays (fixed zip timestamps), so that DVC
    sees an unchanged output when a stage re-runs without changes."""
    import zipfile

    tmp = Path(f"{path}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue())
    tmp.replace(path)


class GraphStore:
    """Read a store written by ``save_store``; ``get(key)`` rebuilds the graph (features from Z)."""

    def __init__(self, path: str | Path, atom_table: np.ndarray):
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "graph store not found (run the stage that builds it: dvc repro)")
        with np.load(path) as f:
            self.keys = [str(k) for k in f["keys"]]
            n = f["n_atoms"].astype(np.int64)
            self._z, self._idx, self._dist = f["z"].astype(np.int64), f["nbr_idx"].astype(np.int64), f["nbr_dist"]
        self._start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
        self._n = n
        self._pos = {k: i for i, k in enumerate(self.keys)}
        self.atom_table = atom_table

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, key) -> bool:
        return key in self._pos

    def get(self, key: str, id: str | None = None) -> CrystalGraph:
        i = self._pos[key]
        a, b = self._start[i], self._start[i] + self._n[i]
        z = self._z[a:b]
        return CrystalGraph(self.atom_table[z].astype(np.float32), self._idx[a:b], self._dist[a:b], id, z)

    def n_atoms(self, keys) -> np.ndarray:
        """Atoms in the cell of each stored structure, without rebuilding its graph."""
        return np.array([self._n[self._pos[k]] for k in keys])
