"""lgdcnn tasks: the 28 datasets of the CrabNet/matbench suite, their files, labels and units,
and the rows a profile keeps.

A task is either one of the 18 "extended" CrabNet datasets (given train/val/test files) or one
fold of a matbench task (official test fold; a seeded 12.5 % of the outer training rows as
validation, i.e. 10 % of the whole set). Each profile caps the rows per split (random, seeded,
logged in a FilterLog); the caps in force are stored with every result. :func:`task_config` gives
each task its plan: all rows with the authors' recipe (``full_rows``) or the profile's caps, and its
folds and seeds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.config import deep_merge
from ...core.errors import MatreproError
from ...core.paths import raw_dir
from ...core.validate import FilterLog
from ...features.composition import MAX_SLOTS, element_table, encode_formulas, load_split_csv
from ...features.suites import SPLITS, cap_rows, matbench_parts, with_rows

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


def task_label(task: str) -> str:
    return EXTENDED[task][0] if task in EXTENDED else MATBENCH[task][1]


def task_unit(task: str) -> str:
    return EXTENDED[task][1] if task in EXTENDED else MATBENCH[task][2]


def load_task(task: str, fold: int | None, cfg: dict, root: Path | None = None) -> tuple[dict, FilterLog]:
    """{'train','val','test'} DataFrames (columns row, formula, target) after the caps in ``cfg``
    (pass :func:`task_config`'s result to get the task's own plan)."""
    root = Path(root) if root else raw_dir()
    seed = cfg["split_seed"]
    flog = FilterLog(f"lgdcnn/{task}" + ("" if fold is None else f"/fold{fold}"))
    if task in EXTENDED:
        parts = {s: with_rows(load_split_csv(root / BENCH / task / f"{s}.csv")) for s in SPLITS}
    elif task in MATBENCH:
        if fold is None:
            raise MatreproError(f"lgdcnn task {task!r} is a matbench task: it needs a fold (0-4)")
        parts = matbench_parts(root / MATBENCH_FULL / MATBENCH[task][0], root / FOLDS / f"matbench_{task}.csv",
                               fold, cfg["matbench_val_fraction"], seed)
    else:
        raise MatreproError(f"params.yaml: unknown lgdcnn task {task!r}")
    # Slots = the largest element count in the whole task (all rows, before any cap), so a capped
    # run pads exactly as a full run would (padding is not masked inside the network).
    # (the plan carries it from data_summary.csv, which parsed every row with the same parser)
    n_slots = cfg.get("n_slots") or max(encode_formulas(parts[s].formula.tolist())[0].shape[1] for s in SPLITS)
    caps = cfg.get("caps") or {}
    for s in SPLITS:
        parts[s] = cap_rows(parts[s].reset_index(drop=True), caps.get(s), seed, flog, s)
    parts["train"].attrs["n_slots"] = int(n_slots)
    if cfg.get("drop_unary", False):
        for s in SPLITS:
            n_el = np.array([len(encode_formulas([f])[0][0].nonzero()[0]) for f in parts[s].formula])
            parts[s] = flog.apply(parts[s], n_el > 1, f"single-element formulas ({s})")
    return parts, flog


def all_tasks(cfg: dict) -> list[str]:
    """The 28 tasks in params order: the extended datasets, then the matbench tasks."""
    return list(cfg["extended"]) + list(cfg["matbench"])


def task_config(cfg: dict, task: str) -> dict:
    """The configuration one task runs with: ``cfg`` plus its regime and its own overrides.

    Regime ``full`` (the task is listed in ``full_rows.tasks``): every row, with the training
    settings of ``full_rows`` (the authors' recipe unchanged). Regime ``capped``: the profile's
    ``caps`` and ``train``. Then ``task_overrides[task]`` (folds, seeds, ...) is merged on top.
    The result carries ``task``, ``regime`` and ``folds`` (``[None]`` for a given split)."""
    if task not in all_tasks(cfg):
        raise MatreproError(f"params.yaml: lgdcnn task {task!r} is not in lgdcnn.extended or lgdcnn.matbench")
    full = cfg.get("full_rows") or {}
    unknown = set(full.get("tasks", [])) - set(all_tasks(cfg))
    if unknown:
        raise MatreproError(f"params.yaml: field 'lgdcnn.full_rows.tasks': unknown task(s) {sorted(unknown)}")
    out = {k: v for k, v in cfg.items() if k not in ("full_rows", "task_overrides")}
    caps = out.get("caps") or {}
    regime = "all rows" if not any(v for v in caps.values()) else "capped"
    if task in full.get("tasks", []):
        out = deep_merge(out, {k: v for k, v in full.items() if k not in ("tasks", "max_train")})
        regime = "full"
    over = (cfg.get("task_overrides") or {}).get(task) or {}
    out = deep_merge(out, over)
    out["task"], out["regime"] = task, regime
    out["folds"] = [None] if task in EXTENDED else [int(k) for k in out["matbench_folds"]]
    return out


_TABLES: dict[str, np.ndarray] = {}


def get_element_table(name: str, root: Path | None = None) -> np.ndarray:
    root = Path(root) if root else raw_dir()
    if name not in _TABLES:
        _TABLES[name] = element_table(root / ELEMENTS / f"{name}.csv")
    return _TABLES[name]


def data_summary(cfg: dict, root: Path | None = None) -> pd.DataFrame:
    """Every file of the suite parsed in full; sizes, unary formulas, elements, duplicates, and the
    rows the task's plan keeps (its first fold for matbench)."""
    root = Path(root) if root else raw_dir()
    rows = []
    for task in all_tasks(cfg):
        if task in EXTENDED:
            files = [root / BENCH / task / f"{s}.csv" for s in SPLITS]
        else:
            files = [root / MATBENCH_FULL / MATBENCH[task][0]]
        dfs = [load_split_csv(f) for f in files]
        n_el = np.concatenate([(encode_formulas(d.formula.tolist(), MAX_SLOTS, file=f)[0] > 0).sum(axis=1)
                               for d, f in zip(dfs, files)])
        allf = pd.concat(dfs)
        tcfg = task_config(cfg, task)
        kept, _ = load_task(task, tcfg["folds"][0], tcfg, root)
        rows.append({"task": task, "label": task_label(task), "unit": task_unit(task),
                     "benchmark": "extended" if task in EXTENDED else "matbench", "regime": tcfg["regime"],
                     "rows": len(allf), "split": "/".join(str(len(d)) for d in dfs) if task in EXTENDED else "5 folds",
                     "unary": int((n_el == 1).sum()), "max elements": int(n_el.max()),
                     "duplicate formulas": int(allf.formula.duplicated().sum()),
                     "target min": float(allf.target.min()), "target max": float(allf.target.max()),
                     "rows_kept": int(sum(len(v) for v in kept.values())),
                     "kept train/val/test": "/".join(str(len(kept[s])) for s in SPLITS)})
    return pd.DataFrame(rows)
