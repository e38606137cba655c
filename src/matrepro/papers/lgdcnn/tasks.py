"""lgdcnn tasks: the 28 datasets of the CrabNet/matbench suite, their files, labels and units,
and the rows a profile keeps.

A task is either one of the 18 "extended" CrabNet datasets (given train/val/test files) or one
fold of a matbench task (official test fold; a seeded 12.5 % of the outer training rows as
validation, i.e. 10 % of the whole set). Each profile caps the rows per split (random, seeded,
logged in a FilterLog); the caps in force are stored with every result.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import DataError, MatreproError
from ...core.paths import raw_dir
from ...core.validate import FilterLog, read_csv, require_columns
from ...features.composition import MAX_SLOTS, element_table, encode_formulas, load_split_csv

BENCH = "crabnet_benchmark/benchmark_data"
MATBENCH_FULL = "crabnet_benchmark/matbench_full"
FOLDS = "matbench_official_folds"
ELEMENTS = "element_properties"

# Paper label, unit (the CrabNet files carry none; units as in the paper card) for every task.
EXTENDED = {
    "aflow__ael_bulk_modulus_vrh": ("AFLOW bulk modulus", "GPa"),
    "aflow__ael_debye_temperature": ("AFLOW Debye temperature", "K"),
    "aflow__ael_shear_modulus_vrh": ("AFLOW shear modulus", "GPa"),
    "aflow__agl_thermal_conductivity_300K": ("AFLOW thermal conductivity", "W/(m·K)"),
    "aflow__agl_thermal_expansion_300K": ("AFLOW thermal expansion", "1/K"),
    "aflow__Egap": ("AFLOW band gap", "eV"),
    "aflow__energy_atom": ("AFLOW energy per atom", "eV/atom"),
    "CritExam__Ed": ("Bartel decomposition enthalpy", "eV/atom"),
    "CritExam__Ef": ("Bartel formation enthalpy", "eV/atom"),
    "mp_bulk_modulus": ("MP bulk modulus", "GPa"),
    "mp_e_hull": ("MP energy above hull", "eV/atom"),
    "mp_elastic_anisotropy": ("MP elastic anisotropy", "–"),
    "mp_mu_b": ("MP magnetisation", "μB"),
    "mp_shear_modulus": ("MP shear modulus", "GPa"),
    "OQMD_Bandgap": ("OQMD band gap", "eV"),
    "OQMD_Energy_per_atom": ("OQMD energy per atom", "eV/atom"),
    "OQMD_Formation_Enthalpy": ("OQMD formation enthalpy", "eV/atom"),
    "OQMD_Volume_per_atom": ("OQMD volume per atom", "Å³/atom"),
}
# matbench task -> (file in matbench_full/, paper label, unit)
MATBENCH = {
    "dielectric": ("dielectric.csv", "Dielectric", "–"),
    "expt_gap": ("expt_gap.csv", "Exp band gap", "eV"),
    "jdft2d": ("jdft2d.csv", "Jdft2d", "meV/atom"),
    "log_gvrh": ("elasticity_log10(G_VRH).csv", "Log gvrh", "log10(GPa)"),
    "log_kvrh": ("elasticity_log10(K_VRH).csv", "Log kvrh", "log10(GPa)"),
    "mp_e_form": ("mp_e_form.csv", "MP formation enthalpy", "eV/atom"),
    "mp_gap": ("mp_gap.csv", "MP band gap", "eV"),
    "perovskites": ("castelli.csv", "Perovskites", "eV/unit cell"),
    "phonons": ("phonons.csv", "Phonons", "cm⁻¹"),
    "steels": ("steels_yield.csv", "Yield strength", "MPa"),
}
SPLITS = ("train", "val", "test")


def task_label(task: str) -> str:
    return EXTENDED[task][0] if task in EXTENDED else MATBENCH[task][1]


def task_unit(task: str) -> str:
    return EXTENDED[task][1] if task in EXTENDED else MATBENCH[task][2]


def _cap(df: pd.DataFrame, n: int | None, seed: int, flog: FilterLog, what: str) -> pd.DataFrame:
    """Keep a seeded random ``n`` rows (order kept); logged. ``None`` keeps all."""
    if n is None or len(df) <= n:
        return df
    keep = np.zeros(len(df), bool)
    keep[np.random.default_rng(seed).choice(len(df), n, replace=False)] = True
    return flog.apply(df, keep, f"profile cap: random {n} of {len(df)} {what} rows (seed {seed})")


def load_task(task: str, fold: int | None, cfg: dict, root: Path | None = None) -> tuple[dict, FilterLog]:
    """{'train','val','test'} DataFrames (columns row, formula, target) after the profile's caps."""
    root = Path(root) if root else raw_dir()
    seed = cfg["split_seed"]
    flog = FilterLog(f"lgdcnn/{task}" + ("" if fold is None else f"/fold{fold}"))
    if task in EXTENDED:
        parts = {}
        for s in SPLITS:
            path = root / BENCH / task / f"{s}.csv"
            df = load_split_csv(path)
            parts[s] = df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]
    elif task in MATBENCH:
        path = root / MATBENCH_FULL / MATBENCH[task][0]
        df = load_split_csv(path)
        df = df.assign(row=np.arange(1, len(df) + 1))[["row", "formula", "target"]]
        folds_path = root / FOLDS / f"matbench_{task}.csv"
        folds = read_csv(folds_path)
        require_columns(folds, ["row_index", "test_fold"], folds_path)
        if len(folds) != len(df) or set(folds.row_index) != set(range(len(df))):
            raise DataError(folds_path, f"fold table does not cover the {len(df)} rows of {path.name}")
        test_fold = folds.set_index("row_index").test_fold.reindex(range(len(df))).to_numpy()
        is_test = test_fold == fold
        outer = df[~is_test]
        val_mask = np.zeros(len(outer), bool)
        n_val = int(round(cfg["matbench_val_fraction"] * len(outer)))
        val_mask[np.random.default_rng(seed + fold).choice(len(outer), n_val, replace=False)] = True
        parts = {"train": outer[~val_mask], "val": outer[val_mask], "test": df[is_test]}
    else:
        raise MatreproError(f"params.yaml: unknown lgdcnn task {task!r}")
    # Slots = the largest element count in the whole task (all rows, before any cap), so a capped
    # run pads exactly as a full run would (padding is not masked inside the network).
    n_slots = max(encode_formulas(parts[s].formula.tolist())[0].shape[1] for s in SPLITS)
    caps = cfg.get("caps", {})
    for s in SPLITS:
        parts[s] = _cap(parts[s].reset_index(drop=True), caps.get(s), seed, flog, s)
    parts["train"].attrs["n_slots"] = int(n_slots)
    if cfg.get("drop_unary", False):
        for s in SPLITS:
            n_el = np.array([len(encode_formulas([f])[0][0].nonzero()[0]) for f in parts[s].formula])
            parts[s] = flog.apply(parts[s], n_el > 1, f"single-element formulas ({s})")
    return parts, flog


def tasks(cfg: dict, family: str) -> list[tuple[str, int | None]]:
    """(task, fold) pairs of one family ('extended' or 'matbench') in the profile."""
    if family == "extended":
        return [(t, None) for t in cfg["extended"]]
    out = []
    for t in cfg["matbench"]:
        folds = cfg.get("matbench_folds_small", cfg["matbench_folds"]) if t in cfg.get("matbench_small", []) \
            else cfg["matbench_folds"]
        out += [(t, int(k)) for k in folds]
    return out


_TABLES: dict[str, np.ndarray] = {}


def get_element_table(name: str, root: Path | None = None) -> np.ndarray:
    root = Path(root) if root else raw_dir()
    if name not in _TABLES:
        _TABLES[name] = element_table(root / ELEMENTS / f"{name}.csv")
    return _TABLES[name]


def data_summary(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Every file of the suite parsed in full; sizes, unary formulas, elements, duplicates, and the
    rows the profile keeps (first fold for matbench)."""
    root = Path(root) if root else raw_dir()
    rows = []
    for task in list(EXTENDED) + list(MATBENCH):
        if task in EXTENDED:
            files = [root / BENCH / task / f"{s}.csv" for s in SPLITS]
        else:
            files = [root / MATBENCH_FULL / MATBENCH[task][0]]
        dfs = [load_split_csv(f) for f in files]
        n_el = np.concatenate([(encode_formulas(d.formula.tolist(), MAX_SLOTS, file=f)[0] > 0).sum(axis=1)
                               for d, f in zip(dfs, files)])
        allf = pd.concat(dfs)
        fold = None if task in EXTENDED else int(cfg["matbench_folds"][0])
        kept, _ = load_task(task, fold, cfg, root)
        rows.append({"task": task, "label": task_label(task), "unit": task_unit(task),
                     "benchmark": "extended" if task in EXTENDED else "matbench",
                     "rows": len(allf), "split": "/".join(str(len(d)) for d in dfs) if task in EXTENDED else "5 folds",
                     "unary": int((n_el == 1).sum()), "max elements": int(n_el.max()),
                     "duplicate formulas": int(allf.formula.duplicated().sum()),
                     "target min": float(allf.target.min()), "target max": float(allf.target.max()),
                     "rows_kept": int(sum(len(v) for v in kept.values())),
                     "kept train/val/test": "/".join(str(len(kept[s])) for s in SPLITS)})
    return pd.DataFrame(rows)
