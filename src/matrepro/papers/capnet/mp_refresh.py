"""Frozen stage: refresh the Li insertion-electrode table from the Materials Project.

This stage needs network access and an API key (``MP_API_KEY``), so it never runs in CI
or in ``dvc repro``. Its output (a CSV plus a ``.meta.json`` sidecar that records the
database version and retrieval date) is committed and frozen. The query and parsing
code is tested offline with a fake client against ``tests/fixtures/mp_refresh_response.json``.

Usage::

    export MP_API_KEY=...            # keys at https://materialsproject.org/api
    pip install -e '.[mp]'
    python -m matrepro.papers.capnet.mp_refresh --out data/mp_refresh/li_electrodes_symmetry.csv
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from datetime import datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ...core.errors import DataError, MissingAPIKeyError, MatreproError

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("data/mp_refresh/li_electrodes_symmetry.csv")

ELECTRODE_FIELDS = [
    "battery_id", "battery_formula", "working_ion", "formula_charge", "formula_discharge",
    "id_charge", "id_discharge", "max_delta_volume", "average_voltage", "capacity_grav",
    "capacity_vol", "energy_grav", "energy_vol", "fracA_charge", "fracA_discharge",
    "stability_charge", "stability_discharge", "num_steps", "max_voltage_step",
    "framework_formula", "nelements", "formula_anonymous",
]
SUMMARY_FIELDS = ["material_id", "symmetry"]

#: InsertionElectrodeDoc field -> column of the battery-explorer CSV used elsewhere.
COLUMN_MAP = {
    "battery_id": "Battery ID", "battery_formula": "Battery Formula",
    "working_ion": "Working Ion", "formula_charge": "Formula Charge",
    "formula_discharge": "Formula Discharge", "max_delta_volume": "Max Delta Volume",
    "average_voltage": "Average Voltage", "capacity_grav": "Gravimetric Capacity",
    "capacity_vol": "Volumetric Capacity", "energy_grav": "Gravimetric Energy",
    "energy_vol": "Volumetric Energy", "fracA_charge": "Atomic Fraction Charge",
    "fracA_discharge": "Atomic Fraction Discharge", "stability_charge": "Stability Charge",
    "stability_discharge": "Stability Discharge", "num_steps": "Steps",
    "max_voltage_step": "Max Voltage Step",
}
ENDPOINTS = ("charge", "discharge")


def _plain(value: Any) -> Any:
    """Turn an MP doc value into plain Python: enums -> value, MPID -> str, models -> dict."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value  # e.g. CrystalSystem.ortho -> "Orthorhombic"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # MPID, Element, ...


def to_dict(doc: Any) -> dict:
    """Convert one returned doc (pydantic model or mapping) to a plain dict."""
    raw = doc.model_dump() if hasattr(doc, "model_dump") else dict(doc)
    return _plain(raw)


def fetch(client: Any, working_ion: str = "Li",
          chunk_size: int = 1000) -> tuple[list[dict], list[dict], str]:
    """Query electrodes for ``working_ion``, then the summary docs of all their endpoints.

    Returns ``(electrode_docs, summary_docs, database_version)`` as plain dicts. Summary
    docs are requested for the sorted union of ``id_charge``/``id_discharge`` in chunks.
    """
    electrodes = [to_dict(d) for d in client.materials.insertion_electrodes.search(
        working_ion=working_ion, fields=list(ELECTRODE_FIELDS))]
    ids = sorted({str(d[f"id_{e}"]) for d in electrodes for e in ENDPOINTS})
    log.info("%d %s electrodes, %d endpoint materials", len(electrodes), working_ion, len(ids))
    summary: list[dict] = []
    for i in range(0, len(ids), chunk_size):
        summary += [to_dict(d) for d in client.materials.summary.search(
            material_ids=ids[i:i + chunk_size], fields=list(SUMMARY_FIELDS))]
    return electrodes, summary, str(client.get_database_version())


def _symmetry(doc: dict) -> dict:
    """Crystal system (lower case), space-group symbol and number of one summary doc."""
    sym = doc.get("symmetry") or {}
    system = sym.get("crystal_system")
    number = sym.get("number")
    return {"crystal_system": str(system).lower() if system is not None else None,
            "spacegroup_symbol": sym.get("symbol"),
            "spacegroup_number": int(number) if number is not None else None}


def build_table(electrode_docs: list[dict], summary_docs: list[dict],
                source: str = "MP API") -> pd.DataFrame:
    """One row per electrode with battery-explorer columns plus endpoint symmetry.

    Raises DataError on a duplicate ``battery_id`` or an endpoint without a summary doc
    (``row`` is the 1-based position of the electrode doc, the message names its id).
    """
    by_id = {str(d["material_id"]): _symmetry(d) for d in summary_docs}
    rows, seen = [], set()
    for n, doc in enumerate(electrode_docs, start=1):
        bid = doc["battery_id"]
        if bid in seen:
            raise DataError(source, f"duplicate battery_id {bid!r}", row=n, field="battery_id")
        seen.add(bid)
        row = {col: doc.get(key) for key, col in COLUMN_MAP.items()}
        for end in ENDPOINTS:
            mid = str(doc[f"id_{end}"])
            if mid not in by_id:
                raise DataError(source, f"battery {bid!r}: no summary doc for {end} endpoint "
                                f"{mid!r}", row=n, field=f"id_{end}")
            row[f"id_{end}"] = mid
            row.update({f"{k}_{end}": v for k, v in by_id[mid].items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    for end in ENDPOINTS:
        if not table.empty:
            table[f"spacegroup_number_{end}"] = table[f"spacegroup_number_{end}"].astype("Int64")
    return table.sort_values("Battery ID", ignore_index=True) if not table.empty else table


def _mp_api_version() -> str:
    try:
        return metadata.version("mp-api")
    except metadata.PackageNotFoundError:
        return "unknown"


def _make_client(api_key: str) -> Any:
    """Build the real ``MPRester``; mp-api is imported here so the module imports without it."""
    try:
        from mp_api.client import MPRester
    except ImportError as exc:
        raise MatreproError("mp-api is not installed; install the optional extra with "
                            "pip install -e '.[mp]'") from exc
    return MPRester(api_key)


def refresh(out_csv: str | Path, *, api_key: str | None = None, client: Any = None,
            working_ion: str = "Li") -> Path:
    """Fetch, build and write the table plus ``<stem>.meta.json``; return the CSV path.

    A real client is built only when ``client`` is None, which needs an API key
    (argument, else env ``MP_API_KEY``).
    """
    out_csv = Path(out_csv)
    if client is None:
        api_key = api_key or os.environ.get("MP_API_KEY")
        if not api_key:
            raise MissingAPIKeyError(
                "MP_API_KEY is not set: run `export MP_API_KEY=...` (get a key at "
                "https://materialsproject.org/api) or pass api_key=. This frozen stage "
                "needs the network and never runs in CI.")
        client = _make_client(api_key)
    electrodes, summary, db_version = fetch(client, working_ion=working_ion)
    table = build_table(electrodes, summary)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_csv, index=False)
    meta = {
        "database_version": db_version,
        "retrieved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mp_api_version": _mp_api_version(),
        "client": f"{type(client).__module__}.{type(client).__qualname__}",
        "working_ion": working_ion,
        "n_electrodes": int(len(table)),
        "query": {
            "insertion_electrodes.search": {"working_ion": working_ion,
                                            "fields": ELECTRODE_FIELDS},
            "summary.search": {"material_ids": "union of id_charge and id_discharge",
                               "fields": SUMMARY_FIELDS},
        },
    }
    meta_path = out_csv.with_name(f"{out_csv.stem}.meta.json")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log.info("wrote %d electrodes to %s (database %s), metadata %s",
             len(table), out_csv, db_version, meta_path)
    return out_csv


def main(argv: list[str] | None = None) -> Path:
    """CLI entry point: ``python -m matrepro.papers.capnet.mp_refresh --out PATH``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output CSV path")
    parser.add_argument("--working-ion", default="Li")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    log.info("refreshing %s insertion electrodes from the Materials Project", args.working_ion)
    try:
        return refresh(args.out, working_ion=args.working_ion)
    except MatreproError as exc:  # missing key / mp-api: a message, not a traceback
        parser.exit(1, f"error: {exc}\n")


if __name__ == "__main__":
    main()
