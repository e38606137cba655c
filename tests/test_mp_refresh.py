"""Offline tests of the frozen Materials Project refresh stage (fake client, no mp-api)."""
from __future__ import annotations

import copy
import enum
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from matrepro.core.errors import DataError, MatreproError, MissingAPIKeyError
from matrepro.papers.capnet import mp_refresh

FIXTURE = Path(__file__).parent / "fixtures" / "mp_refresh_response.json"


@pytest.fixture
def response() -> dict:
    return json.loads(FIXTURE.read_text())


class FakeClient:
    """Mimics ``MPRester``: ``.materials.{insertion_electrodes,summary}.search`` + version."""

    def __init__(self, response: dict):
        self.response = response
        self.electrode_calls: list[dict] = []
        self.summary_calls: list[dict] = []
        self.materials = SimpleNamespace(
            insertion_electrodes=SimpleNamespace(search=self._electrodes),
            summary=SimpleNamespace(search=self._summary))

    def _electrodes(self, **kwargs):
        self.electrode_calls.append(kwargs)
        return copy.deepcopy(self.response["electrodes"])

    def _summary(self, **kwargs):
        self.summary_calls.append(kwargs)
        wanted = set(kwargs["material_ids"])
        return [copy.deepcopy(d) for d in self.response["summary"] if d["material_id"] in wanted]

    def get_database_version(self):
        return self.response["database_version"]


def endpoint_ids(response: dict) -> set[str]:
    return {d[k] for d in response["electrodes"] for k in ("id_charge", "id_discharge")}


def test_fetch_queries_li_electrodes_and_exact_endpoint_ids(response):
    client = FakeClient(response)
    electrodes, summary, version = mp_refresh.fetch(client)
    assert client.electrode_calls == [{"working_ion": "Li",
                                       "fields": mp_refresh.ELECTRODE_FIELDS}]
    assert {"battery_id", "id_charge", "id_discharge", "capacity_grav"} <= set(
        mp_refresh.ELECTRODE_FIELDS)
    assert len(client.summary_calls) == 1
    call = client.summary_calls[0]
    assert call["fields"] == ["material_id", "symmetry"]
    assert sorted(call["material_ids"]) == call["material_ids"]
    assert set(call["material_ids"]) == endpoint_ids(response)
    assert len(call["material_ids"]) == 6
    assert version == "2025.01.09"
    assert len(electrodes) == 3 and len(summary) == 6


def test_fetch_chunks_summary_requests(response):
    client = FakeClient(response)
    _, summary, _ = mp_refresh.fetch(client, chunk_size=1)
    assert len(client.summary_calls) == 6
    assert all(len(c["material_ids"]) == 1 for c in client.summary_calls)
    assert {c["material_ids"][0] for c in client.summary_calls} == endpoint_ids(response)
    assert len(summary) == 6
    client = FakeClient(response)
    mp_refresh.fetch(client, chunk_size=4)
    assert [len(c["material_ids"]) for c in client.summary_calls] == [4, 2]


class CrystalSystem(enum.Enum):
    ortho = "Orthorhombic"


class MPID:
    def __init__(self, s):
        self.s = s

    def __str__(self):
        return self.s


class Model:
    """A stand-in for a pydantic doc: only ``model_dump`` is used."""

    def __init__(self, data):
        self.data = data

    def model_dump(self):
        return self.data


def test_to_dict_handles_models_enums_and_mpids():
    doc = Model({"material_id": MPID("mp-10001"),
                 "symmetry": Model({"crystal_system": CrystalSystem.ortho, "symbol": "Pnma",
                                    "number": 62})})
    plain = mp_refresh.to_dict(doc)
    assert plain == {"material_id": "mp-10001",
                     "symmetry": {"crystal_system": "Orthorhombic", "symbol": "Pnma",
                                  "number": 62}}
    assert mp_refresh.to_dict({"battery_id": "x"}) == {"battery_id": "x"}


def test_build_table_columns_and_values(response):
    table = mp_refresh.build_table(response["electrodes"], response["summary"])
    expected = list(mp_refresh.COLUMN_MAP.values()) + [
        f"{c}_{e}" for e in ("charge", "discharge")
        for c in ("id", "crystal_system", "spacegroup_symbol", "spacegroup_number")]
    assert set(table.columns) == set(expected)
    assert table.columns[0] == "Battery ID"
    assert list(table["Battery ID"]) == ["mp-10001_Li", "mp-20001_Li", "mp-30001_Li"]
    lfp = table.set_index("Battery ID").loc["mp-10001_Li"]
    assert lfp["Formula Discharge"] == "LiFePO4" and lfp["Formula Charge"] == "FePO4"
    assert lfp["Gravimetric Capacity"] == pytest.approx(169.9)
    assert lfp["Working Ion"] == "Li"
    assert lfp["id_charge"] == "mp-10002" and lfp["id_discharge"] == "mp-10001"
    for end in ("charge", "discharge"):
        assert lfp[f"crystal_system_{end}"] == "orthorhombic"
        assert lfp[f"spacegroup_symbol_{end}"] == "Pnma"
        assert lfp[f"spacegroup_number_{end}"] == 62
        assert pd.api.types.is_integer_dtype(table[f"spacegroup_number_{end}"])
    assert list(table["crystal_system_discharge"]) == ["orthorhombic", "trigonal", "cubic"]
    assert list(table["spacegroup_number_charge"]) == [62, 166, 227]
    assert list(table["spacegroup_symbol_charge"]) == ["Pnma", "R-3m", "Fd-3m"]


def test_build_table_is_sorted_by_battery_id(response):
    table = mp_refresh.build_table(response["electrodes"][::-1], response["summary"])
    assert list(table["Battery ID"]) == sorted(table["Battery ID"])


@pytest.mark.parametrize("field", ["id_charge", "id_discharge"])
def test_missing_summary_doc_raises_data_error(response, field):
    missing = response["electrodes"][1][field]
    summary = [d for d in response["summary"] if d["material_id"] != missing]
    with pytest.raises(DataError) as info:
        mp_refresh.build_table(response["electrodes"], summary)
    assert info.value.field == field
    assert "mp-20001_Li" in str(info.value) and field in str(info.value)
    assert missing in str(info.value)


def test_duplicate_battery_id_raises_data_error(response):
    electrodes = response["electrodes"] + [copy.deepcopy(response["electrodes"][0])]
    with pytest.raises(DataError, match="duplicate battery_id 'mp-10001_Li'") as info:
        mp_refresh.build_table(electrodes, response["summary"])
    assert info.value.field == "battery_id" and info.value.row == 4


def test_missing_api_key_raises(monkeypatch, tmp_path):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError) as info:
        mp_refresh.refresh(tmp_path / "out.csv")
    msg = str(info.value)
    assert "export MP_API_KEY=" in msg and "materialsproject.org/api" in msg and "CI" in msg
    assert not (tmp_path / "out.csv").exists()


def test_missing_mp_api_gives_install_hint(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_mp_api(name, *args, **kwargs):
        if name.startswith("mp_api"):
            raise ImportError("No module named 'mp_api'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mp_api)
    with pytest.raises(MatreproError, match=r"pip install -e '\.\[mp\]'"):
        mp_refresh.refresh(tmp_path / "out.csv", api_key="dummy-key")


def test_refresh_writes_csv_and_meta(response, tmp_path, monkeypatch):
    monkeypatch.delenv("MP_API_KEY", raising=False)  # an injected client needs no key
    out = tmp_path / "mp_refresh" / "li_electrodes_symmetry.csv"
    client = FakeClient(response)
    assert mp_refresh.refresh(out, client=client) == out
    table = pd.read_csv(out)
    assert len(table) == 3
    assert list(table["spacegroup_number_discharge"]) == [62, 166, 227]
    assert list(table["crystal_system_charge"]) == ["orthorhombic", "trigonal", "cubic"]
    meta = json.loads((tmp_path / "mp_refresh" / "li_electrodes_symmetry.meta.json").read_text())
    assert meta["database_version"] == "2025.01.09"
    assert meta["working_ion"] == "Li" and meta["n_electrodes"] == 3
    assert meta["retrieved_at"].endswith("+00:00")
    assert meta["mp_api_version"]
    assert meta["query"]["insertion_electrodes.search"]["fields"] == mp_refresh.ELECTRODE_FIELDS
    assert client.electrode_calls[0]["working_ion"] == "Li"


def test_main_uses_default_out_path_and_cli(monkeypatch, tmp_path):
    seen = {}

    def fake_refresh(out, *, working_ion):
        seen.update(out=out, working_ion=working_ion)
        return out

    monkeypatch.setattr(mp_refresh, "refresh", fake_refresh)
    mp_refresh.main([])
    assert seen["out"] == Path("data/mp_refresh/li_electrodes_symmetry.csv")
    mp_refresh.main(["--out", str(tmp_path / "x.csv")])
    assert seen == {"out": tmp_path / "x.csv", "working_ion": "Li"}
