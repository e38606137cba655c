from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MATREPRO_ROOT", str(ROOT))


def mirror_dir() -> Path | None:
    env = os.environ.get("MATREPRO_DATA_MIRROR")
    p = Path(env) if env else ROOT.parent / "shared" / "data"
    return p.resolve() if p.is_dir() else None


@pytest.fixture
def battery_mirror_csv() -> Path:
    m = mirror_dir()
    if m is None or not (m / "mp_battery" / "mp_batteries.csv").is_file():
        pytest.skip("no data mirror (set MATREPRO_DATA_MIRROR)")
    return m / "mp_battery" / "mp_batteries.csv"


def battery_row(battery_id: str, charge: str, discharge: str, capacity: float, **over) -> dict:
    row = {"Battery ID": battery_id, "Battery Formula": f"Li0-1{charge}", "Working Ion": "Li",
           "Formula Charge": charge, "Formula Discharge": discharge, "Max Delta Volume": 0.07,
           "Average Voltage": 3.4, "Gravimetric Capacity": capacity, "Volumetric Capacity": 600.0,
           "Gravimetric Energy": capacity * 3.4, "Volumetric Energy": 2040.0,
           "Atomic Fraction Charge": 0.0, "Atomic Fraction Discharge": 1 / 7, "Stability Charge": 0.0,
           "Stability Discharge": 0.0, "Steps": 1, "Max Voltage Step": 0.0}
    row.update(over)
    return row


@pytest.fixture
def small_battery_df() -> pd.DataFrame:
    """Three hand-made electrodes with hand-computed capacities."""
    return pd.DataFrame([
        battery_row("mp-1_Li", "FePO4", "LiFePO4", 169.8906),
        battery_row("mp-2_Li", "CoO2", "LiCoO2", 273.8377),
        battery_row("mp-3_Li", "Mn2O4", "LiMn2O4", 148.2237),
    ])
