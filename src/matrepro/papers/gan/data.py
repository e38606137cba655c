"""gan data: the five downstream targets, the SuperCon table, and the GAN's OQMD training set.

Raw files (under ``data/raw``, :func:`core.paths.raw_dir`, or ``root``):

* OQMD (CrabNet suite, given 70/15/15 splits, columns ``formula,target``):
  ``crabnet_benchmark/benchmark_data/OQMD_<name>/{train,val,test}.csv`` for the four names
  Bandgap, Formation_Enthalpy, Energy_per_atom, Volume_per_atom;
* Materials Project (matbench v0.1 full tables, official folds ``row_index,test_fold``):
  ``crabnet_benchmark/matbench_full/{mp_gap,mp_e_form}.csv`` and
  ``matbench_official_folds/matbench_{mp_gap,mp_e_form}.csv``;
* SuperCon (Stanev et al. 2018, verbatim, columns ``name,Tc``): ``supercon/Supercon_data_Stanev2018.csv``.

Targets (:data:`TARGETS`): ``oqmd_gap`` and ``oqmd_eform`` (the given CrabNet splits), ``mp_gap``
and ``mp_e_form`` (test = the official fold ``cfg["matbench_fold"]``; validation = a seeded
``matbench_val_fraction`` of the remaining rows, rng ``split_seed + fold``), ``supercon_tc``
(:func:`load_supercon`, then an 80/10/10 split grouped by composition, :func:`supercon_split`).
Every part has columns ``row`` (1-based data row of the source file), ``formula``, ``target``.

The GAN trains on OQMD compositions of the four OQMD **training** files only, minus every
composition (:func:`features.atom_table.composition_key`) of any downstream test set
(:func:`gan_training_compositions`; :func:`leaking_compositions` re-checks).

``cfg`` is the ``gan`` section of params.yaml resolved for a profile (a plain dict):

``split_seed`` (int)
    seeds the matbench inner split (``split_seed + fold``), the SuperCon split, the GAN hold-out
    and every profile cap.
``matbench_fold`` (int 0..4)
    the official matbench test fold in use.
``matbench_val_fraction`` (float)
    share of the non-test matbench rows used for validation.
``caps`` ({train, val, test: int | None})
    rows kept per part of each target (seeded random subsample, logged; None keeps all).
``gan_holdout`` (int)
    GAN compositions held out (seeded) for the GAN's own held-out losses.
``gan_rows`` (int | None)
    cap on the GAN training compositions (after the hold-out; None keeps all).
``table`` ({mapping, tol})
    the 85 x 8 table mapping (:mod:`features.atom_table`); not used here, read by the callers.
``supercon_duplicates`` ("error" | "mean"; optional, default "error")
    what :func:`load_supercon` does with one composition listed with different Tc values (the
    verbatim file has such rows, see :func:`load_supercon`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError, MatreproError
from ...core.paths import raw_dir
from ...core.splits import group_split
from ...core.validate import FilterLog, read_csv, require_columns, require_finite
from ...features.atom_table import composition_keys, encode_formulas
from ...features.chem import parse_formula
from ...features.composition import load_split_csv
from ...features.suites import cap_rows, matbench_parts, matbench_test_mask, with_rows
from .store import table_args

BENCH = "crabnet_benchmark/benchmark_data"
MATBENCH_FULL = "crabnet_benchmark/matbench_full"
FOLDS = "matbench_official_folds"
SUPERCON = "supercon/Supercon_data_Stanev2018.csv"
SPLITS = ("train", "val", "test")
# The four OQMD datasets of the CrabNet suite (all feed the GAN's training compositions and the
# leak exclusion; two of them are downstream targets).
OQMD_DATASETS = ("OQMD_Bandgap", "OQMD_Formation_Enthalpy", "OQMD_Energy_per_atom", "OQMD_Volume_per_atom")
OQMD_TARGETS = {"oqmd_gap": "OQMD_Bandgap", "oqmd_eform": "OQMD_Formation_Enthalpy"}
MATBENCH_TARGETS = {"mp_gap": "mp_gap", "mp_e_form": "mp_e_form"}  # target -> matbench task (file stem)
TARGETS = ("oqmd_gap", "oqmd_eform", "mp_gap", "mp_e_form", "supercon_tc")
SUPERCON_FRACTIONS = (0.8, 0.1, 0.1)

# A SuperCon name must be a plain formula: element symbols, each with an optional (decimal) amount.
FORMULA_RE = re.compile(r"^([A-Z][a-z]?(\d+(\.\d+)?)?)+$")


def oqmd_path(root: Path, dataset: str, split: str) -> Path:
    return Path(root) / BENCH / dataset / f"{split}.csv"


def matbench_paths(root: Path, task: str) -> tuple[Path, Path]:
    return Path(root) / MATBENCH_FULL / f"{task}.csv", Path(root) / FOLDS / f"matbench_{task}.csv"


def _root(root) -> Path:
    return Path(root) if root else raw_dir()


def load_supercon(path: str | Path, flog: FilterLog, duplicates: str = "error") -> pd.DataFrame:
    """The verbatim Stanev SuperCon table, validated here (not the cleaned copy), as columns
    ``row`` (1-based row of the file), ``formula`` (the name), ``target`` (Tc in K).

    In order: a NaN/empty or infinite Tc anywhere raises DataError (row, field 'Tc'), as does a
    negative Tc; names that are not plain formulas (:data:`FORMULA_RE`) or that pymatgen cannot
    parse are removed ("malformed chemical name", logged; 10 in the real file); rows with Tc = 0
    are removed ("no reported Tc (Tc = 0)", logged). Then rows of the same composition
    (``composition_key``): with equal Tc the first row is kept (logged); with different Tc,
    ``duplicates="error"`` raises DataError naming both rows, ``duplicates="mean"`` keeps the first
    row with the mean Tc of its composition (logged). The Tc = 0 rows are removed before the
    duplicate check, since Tc = 0 means "no reported Tc", not a measurement.
    """
    if duplicates not in ("error", "mean"):
        raise MatreproError(f"params.yaml: gan supercon_duplicates must be 'error' or 'mean', got {duplicates!r}")
    path = Path(path)
    df = read_csv(path, dtype={"name": str}, keep_default_na=False,
                  na_values={"Tc": ["", "NaN", "nan", "NA", "N/A", "null"]})
    require_columns(df, ["name", "Tc"], path)
    require_finite(df, ["Tc"], path)
    tc = pd.to_numeric(df["Tc"]).to_numpy(np.float64)
    if (tc < 0).any():
        i = int(np.flatnonzero(tc < 0)[0])
        raise DataError(path, f"negative Tc {tc[i]!r}", row=i + 1, field="Tc")
    df = pd.DataFrame({"row": np.arange(1, len(df) + 1), "formula": df["name"].astype(str).to_numpy(),
                       "target": tc})

    def well_formed(name: str) -> bool:
        if not FORMULA_RE.match(name):
            return False
        try:
            parse_formula(name)
        except DataError:
            return False
        return True

    df = flog.apply(df, [well_formed(n) for n in df.formula], "malformed chemical name")
    df = flog.apply(df, df.target.to_numpy() > 0, "no reported Tc (Tc = 0)")
    keys = pd.Series(composition_keys(df.formula.tolist(), file=path, field="name"))
    first = ~keys.duplicated(keep="first").to_numpy()
    if first.all():
        return df
    by_key = df.assign(key=keys.to_numpy()).groupby("key", sort=False)
    n_tc = by_key.target.transform("nunique").to_numpy()
    conflict = n_tc > 1
    if conflict.any():
        n_groups = int(keys[conflict].nunique())
        if duplicates == "error":
            i = int(np.flatnonzero(conflict & ~first)[0])
            j = int(np.flatnonzero((keys == keys.iloc[i]).to_numpy())[0])
            a, b = df.iloc[j], df.iloc[i]
            raise DataError(path, f"composition {keys.iloc[i]} listed twice with different Tc: row {a.row} "
                            f"({a.formula}, Tc {a.target:g}) and row {b.row} ({b.formula}, Tc {b.target:g}); "
                            f"{n_groups} such composition(s) in all (set gan supercon_duplicates: mean to "
                            f"average them)", row=int(b.row), field="Tc")
        df = df.assign(target=by_key.target.transform("mean").to_numpy())
        return flog.apply(df, first, f"duplicate composition: rows merged into the first row of their "
                                     f"composition with the mean Tc ({n_groups} composition(s) had different Tc)")
    return flog.apply(df, first, "duplicate composition with the same Tc (first row kept)")


def supercon_split(df: pd.DataFrame, seed: int, fractions=SUPERCON_FRACTIONS) -> np.ndarray:
    """train/val/test label per row, grouped by composition (``composition_key``) so that no
    composition is on two sides (``core.splits.group_split``; fractions are of compositions)."""
    return group_split(composition_keys(df.formula.tolist()), fractions, seed)


def _supercon(cfg: dict, root: Path, flog: FilterLog) -> tuple[pd.DataFrame, np.ndarray]:
    df = load_supercon(root / SUPERCON, flog, cfg.get("supercon_duplicates", "error"))
    return df, supercon_split(df, int(cfg["split_seed"]))


# --------------------------------------------------------------------------------------- targets
def load_target(name: str, cfg: dict, root: Path | None = None) -> tuple[dict[str, pd.DataFrame], FilterLog]:
    """{'train','val','test'} DataFrames (columns row, formula, target) of one target after the
    profile caps, and the FilterLog of every row removed."""
    root = _root(root)
    seed = int(cfg["split_seed"])
    flog = FilterLog(f"gan/{name}")
    if name in OQMD_TARGETS:
        parts = {s: with_rows(load_split_csv(oqmd_path(root, OQMD_TARGETS[name], s))) for s in SPLITS}
    elif name in MATBENCH_TARGETS:
        path, folds_path = matbench_paths(root, MATBENCH_TARGETS[name])
        parts = matbench_parts(path, folds_path, int(cfg["matbench_fold"]), cfg["matbench_val_fraction"], seed)
    elif name == "supercon_tc":
        df, labels = _supercon(cfg, root, flog)
        parts = {s: df[labels == s] for s in SPLITS}
    else:
        raise MatreproError(f"params.yaml: unknown gan target {name!r}; known: {TARGETS}")
    caps = cfg.get("caps") or {}
    for s in SPLITS:
        parts[s] = cap_rows(parts[s].reset_index(drop=True), caps.get(s), seed, flog, s)
    return parts, flog


# ------------------------------------------------------------------------- GAN training compositions
def _test_sets(cfg: dict, root: Path, cache: dict) -> list[tuple[str, set[str]]]:
    """(description, composition keys) of every downstream test set, in a fixed order."""
    out = []
    for ds in OQMD_DATASETS:
        path = oqmd_path(root, ds, "test")
        out.append((f"{ds} test split", set(composition_keys(load_split_csv(path).formula, file=path, cache=cache))))
    fold = int(cfg["matbench_fold"])
    for task in MATBENCH_TARGETS.values():
        df, is_test = matbench_test_mask(*matbench_paths(root, task), fold)
        path = matbench_paths(root, task)[0]
        keys = composition_keys(df.formula, file=path, cache=cache)
        out.append((f"matbench {task} test fold {fold}", {k for k, t in zip(keys, is_test) if t}))
    sc, labels = _supercon(cfg, root, FilterLog("gan/supercon (leak check)"))
    keys = composition_keys(sc.formula, file=root / SUPERCON, cache=cache)
    out.append((f"SuperCon test split (seed {cfg['split_seed']})", {k for k, s in zip(keys, labels) if s == "test"}))
    return out


def gan_training_compositions(cfg: dict, root: Path | None = None) -> tuple[list[str], list[str], FilterLog]:
    """(training formulas, held-out formulas, FilterLog) of the GAN.

    The union of the distinct compositions of the four OQMD ``train.csv`` files (first formula
    string of each composition kept, sorted by composition key), minus every composition of any
    downstream test set (the four OQMD test splits, the matbench mp_gap / mp_e_form test fold in
    use, the SuperCon test split; one logged step each); then ``gan_holdout`` compositions drawn
    at random (``split_seed``) as the held-out set; then the ``gan_rows`` cap on the rest."""
    root = _root(root)
    seed = int(cfg["split_seed"])
    flog = FilterLog("gan/compositions")
    cache: dict[str, str] = {}
    frames = []
    for ds in OQMD_DATASETS:
        path = oqmd_path(root, ds, "train")
        f = load_split_csv(path).formula.tolist()
        frames.append(pd.DataFrame({"formula": f, "key": composition_keys(f, file=path, cache=cache)}))
    df = pd.concat(frames, ignore_index=True)
    df = flog.apply(df, ~df.key.duplicated(keep="first").to_numpy(),
                    f"repeated composition in the {len(OQMD_DATASETS)} OQMD train files (first formula kept)")
    df = df.sort_values("key", kind="stable").reset_index(drop=True)
    for what, keys in _test_sets(cfg, root, cache):
        df = flog.apply(df, ~df.key.isin(keys).to_numpy(), f"composition in a downstream test set: {what}")
    n_hold = min(int(cfg["gan_holdout"]), len(df))
    hold = np.zeros(len(df), bool)
    hold[np.random.default_rng(seed).choice(len(df), n_hold, replace=False)] = True
    holdout = df.formula[hold].tolist()
    df = flog.apply(df, ~hold, f"held out for the GAN's held-out losses: random {n_hold} compositions (seed {seed})")
    df = cap_rows(df, cfg.get("gan_rows"), seed, flog, "GAN training")
    return df.formula.tolist(), holdout, flog


def leaking_compositions(train_formulas, cfg: dict, root: Path | None = None) -> set[str]:
    """Composition keys of ``train_formulas`` that occur in any downstream test set (should be empty)."""
    root = _root(root)
    cache: dict[str, str] = {}
    train = set(composition_keys(list(train_formulas), file="GAN training compositions", cache=cache))
    leaks: set[str] = set()
    for _, keys in _test_sets(cfg, root, cache):
        leaks |= train & keys
    return leaks


# ----------------------------------------------------------------------------- the 85 x 8 tables
def encode_parts(parts: dict[str, pd.DataFrame], cfg: dict, what: str) -> tuple[dict, dict]:
    """({part: (N, 85, 8) tables}, {part: status frame}) of every part's formulas."""
    tables, status = {}, {}
    for part, df in parts.items():
        tables[part], status[part] = encode_formulas(df.formula.tolist(), file=f"{what} {part}", **table_args(cfg))
    return tables, status
