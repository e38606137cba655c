"""Materials Project insertion-electrode data (capnet): loading, the analytic capacity, the
composition-derived structural categories and the feature sets."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.constants as const
from pymatgen.core import Composition

from ...core.errors import DataError
from ...core.validate import FilterLog, read_csv, require_columns, require_finite, require_unique
from ...features.chem import ION_VALENCE, parse_formula

log = logging.getLogger(__name__)

ID, ION, F_CHARGE, F_DISCHARGE = "Battery ID", "Working Ion", "Formula Charge", "Formula Discharge"
TARGET = "Gravimetric Capacity"  # mAh/g, MP field capacity_grav
NUMERIC_COLUMNS = [  # every numeric battery-explorer column except the target
    "Max Delta Volume", "Average Voltage", "Volumetric Capacity", "Gravimetric Energy",
    "Volumetric Energy", "Atomic Fraction Charge", "Atomic Fraction Discharge",
    "Stability Charge", "Stability Discharge", "Steps", "Max Voltage Step",
]
# Columns from which the target follows exactly (energy_grav = capacity_grav * average_voltage;
# energy_vol = capacity_vol * average_voltage; capacity_vol = capacity_grav * density_discharge).
LEAKING_COLUMNS = ["Gravimetric Energy", "Volumetric Energy", "Volumetric Capacity"]
FEATURE_SETS = {
    "paper_like": NUMERIC_COLUMNS,
    "leak_free": [c for c in NUMERIC_COLUMNS if c not in LEAKING_COLUMNS],
}
REQUIRED_COLUMNS = [ID, "Battery Formula", ION, F_CHARGE, F_DISCHARGE, TARGET, *NUMERIC_COLUMNS]

# Faraday constant / 3.6 converts mol of electrons to mAh.
MAH_PER_MOL = const.physical_constants["Faraday constant"][0] / 3.6

PROXY_CATEGORIES = ["anion_family", "redox_metal", "host_prototype", "host_n_elements"]
SYMMETRY_CATEGORIES = ["crystal_system_charge", "spacegroup_number_charge",
                       "crystal_system_discharge", "spacegroup_number_discharge"]


def load_battery_table(path: str | Path) -> pd.DataFrame:
    """Read and validate the battery-explorer CSV (all ions)."""
    df = read_csv(path)
    require_columns(df, REQUIRED_COLUMNS, path)
    require_unique(df, ID, path)
    require_finite(df, [TARGET, *NUMERIC_COLUMNS], path)
    unknown = ~df[ION].isin(list(ION_VALENCE))
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(path, f"unknown working ion {df[ION].iloc[i]!r}", row=i + 1, field=ION)
    return df


def host(comp: Composition, ion: str) -> Composition:
    """The framework: the composition without the working ion."""
    return Composition({el: amt for el, amt in comp.items() if el.symbol != ion})


def analytic_capacity(charge: Composition, discharge: Composition, ion: str) -> float:
    """Gravimetric capacity (mAh/g) from the endpoint formulas and the ion alone.

    Both endpoints are put on the same amount of framework; the capacity is the ion uptake times
    its valence times F/3.6, over the molar mass of the discharged composition.
    """
    n_host_c = charge.num_atoms - charge[ion]
    n_host_d = discharge.num_atoms - discharge[ion]
    x_charge = charge[ion] * n_host_d / n_host_c  # ions per discharged-formula framework amount
    x_discharge = discharge[ion]
    return float((x_discharge - x_charge) * ION_VALENCE[ion] * MAH_PER_MOL / float(discharge.weight))


POLYANION_FORMERS = [("P", "phosphate"), ("S", "sulfate"), ("Si", "silicate"), ("B", "borate"),
                     ("C", "carbonate"), ("N", "nitrate"), ("As", "arsenate"), ("Se", "selenate")]
HALOGENS = {"F", "Cl", "Br", "I"}


def anion_family(h: Composition) -> str:
    """Anion or polyanion family of a framework composition (first matching rule wins)."""
    els = {e.symbol for e in h.elements}
    if "O" in els:
        for former, name in POLYANION_FORMERS:
            if former in els:
                return f"fluoro-{name}" if "F" in els else name
        return "oxyfluoride" if "F" in els else "oxide"
    if "F" in els:
        return "fluoride"
    if els & HALOGENS:
        return "halide"
    if "S" in els:
        return "sulfide"
    if els & {"Se", "Te"}:
        return "selenide/telluride"
    if "N" in els:
        return "nitride"
    if "P" in els:
        return "phosphide"
    return "intermetallic/other"


def redox_metal(h: Composition) -> str:
    """The most abundant transition metal of the framework (alphabetical on ties), else 'none'."""
    tms = [(amt, el.symbol) for el, amt in h.items() if el.is_transition_metal]
    if not tms:
        return "none"
    top = max(a for a, _ in tms)
    return sorted(s for a, s in tms if abs(a - top) < 1e-9)[0]


def composition_features(df: pd.DataFrame, file: str | Path) -> pd.DataFrame:
    """Parse both endpoint formulas of every row (pymatgen) and derive the analytic capacity and
    the four composition-derived structural categories of the framework."""
    rows = []
    for i, (ion, fc, fd) in enumerate(zip(df[ION], df[F_CHARGE], df[F_DISCHARGE])):
        c = parse_formula(fc, file=file, row=i + 1, field=F_CHARGE)
        d = parse_formula(fd, file=file, row=i + 1, field=F_DISCHARGE)
        h = host(d, ion)
        if h.num_atoms == 0 or (c.num_atoms - c[ion]) == 0:
            raise DataError(file, f"no framework left after removing {ion} from {fc!r}/{fd!r}",
                            row=i + 1, field=F_DISCHARGE)
        hr = h.reduced_composition
        rows.append({
            "capacity_analytic": analytic_capacity(c, d, ion),
            "anion_family": anion_family(h),
            "redox_metal": redox_metal(h),
            "host_prototype": hr.anonymized_formula,
            "host_n_elements": str(len(h.elements)),
        })
    return pd.DataFrame(rows, index=df.index)


def attach_symmetry(df: pd.DataFrame, refresh: pd.DataFrame, file, flog: FilterLog) -> pd.DataFrame:
    """Join the crystal system / space group of both endpoints from the frozen MP refresh.

    Electrodes absent from the refresh get the category 'unknown' (counted in the filter log)."""
    require_columns(refresh, [ID, *SYMMETRY_CATEGORIES], file)
    sym = refresh[[ID, *SYMMETRY_CATEGORIES]].copy()
    for col in SYMMETRY_CATEGORIES:
        sym[col] = sym[col].astype(str)
    out = df.merge(sym, on=ID, how="left")
    missing = int(out[SYMMETRY_CATEGORIES[0]].isna().sum())
    flog.note(len(out), f"symmetry labels from MP refresh; {missing} electrode(s) not in it -> 'unknown'")
    out[SYMMETRY_CATEGORIES] = out[SYMMETRY_CATEGORIES].fillna("unknown")
    return out


def select_rows(df: pd.DataFrame, cfg: dict, flog: FilterLog) -> pd.DataFrame:
    """Row selection: the working ion, then the optional 'cathode' filter."""
    df = flog.apply(df, df[ION] == cfg["working_ion"], f"working ion is not {cfg['working_ion']}")
    if cfg.get("row_filter", "all") == "cathode":
        v = df["Average Voltage"]
        df = flog.apply(df, (v > 0) & (v <= 5), "cathode filter: average voltage outside (0, 5] V")
        df = flog.apply(df, df["Stability Discharge"] <= 0.1,
                        "cathode filter: discharged endpoint > 0.1 eV/atom above hull")
    elif cfg.get("row_filter", "all") != "all":
        raise DataError("params.yaml", f"unknown row_filter {cfg['row_filter']!r}", field="capnet.row_filter")
    return df
