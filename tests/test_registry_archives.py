"""The L-G-DCNN raw data in the registry: archive members (the crabnet / matbench wheels), the
matbench fold derivation, and mirror-only files. No network: pooch.retrieve is replaced by a fake
that reads a local zip."""
import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml

from matrepro import registry
from matrepro.core.errors import RegistryError
from matrepro.registry import RawFile

LGDCNN_DATASETS = ["crabnet_benchmark", "element_properties", "matbench_official_folds", "reference_results"]


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def reg():
    return registry.load_registry()


@pytest.mark.parametrize("dataset", LGDCNN_DATASETS)
def test_lgdcnn_datasets_have_path_hash_origin(reg, dataset):
    files = registry.dataset_files(dataset, reg)
    assert files
    paths = [f.path for f in files]
    assert len(set(paths)) == len(paths)
    for f in files:
        assert f.path.startswith(dataset + "/")
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        assert f.origin
        assert f.licence and f.citation


def test_crabnet_benchmark_origins_are_wheel_members(reg):
    for f in registry.dataset_files("crabnet_benchmark", reg):
        assert isinstance(f.origin, dict)
        assert f.origin["archive"] == "crabnet_wheel"
        assert f.origin["member"].startswith("crabnet/data/")
        assert f.origin["archive_url"].startswith("https://")
        assert re.fullmatch(r"[0-9a-f]{64}", f.origin["archive_sha256"])


def test_element_tables_and_folds_come_from_wheels(reg):
    for f in registry.dataset_files("element_properties", reg):
        assert f.origin["archive"] == "crabnet_wheel"
        assert f.origin["member"] == "crabnet/data/element_properties/" + Path(f.path).name
    for f in registry.dataset_files("matbench_official_folds", reg):
        assert f.origin["archive"] == "matbench_wheel"
        assert f.origin["derive"] in registry.DERIVATIONS
        assert f.path == f"matbench_official_folds/matbench_{f.origin['task']}.csv"


def test_reference_results_are_mirror_only(reg):
    for f in registry.dataset_files("reference_results", reg):
        assert isinstance(f.origin, dict) and "unavailable" in f.origin


def test_unknown_archive_is_an_error(tmp_path):
    p = tmp_path / "registry.yaml"
    p.write_text(yaml.safe_dump({"archives": {}, "datasets": {"x": {
        "licence": "l", "citation": "c",
        "files": [{"path": "x/a.csv", "origin": {"archive": "nope", "member": "a.csv"}, "sha256": "0" * 64}]}}}))
    with pytest.raises(RegistryError, match="unknown archive 'nope'"):
        registry.dataset_files("x", registry.load_registry(p))


def test_mirror_only_file_without_mirror(reg, tmp_path):
    rf = registry.dataset_files("reference_results", reg)[0]
    with pytest.raises(RegistryError, match="no public origin"):
        registry.fetch(rf, tmp_path / "raw", mirror=None)
    empty = tmp_path / "mirror"
    empty.mkdir()
    with pytest.raises(RegistryError, match=r"no public origin.*mirror .*\(missing\)"):
        registry.fetch(rf, tmp_path / "raw", mirror=empty)


def test_derive_matbench_folds(tmp_path):
    src = tmp_path / "validation.json"
    src.write_text(json.dumps({"splits": {
        "matbench_x": {"fold_0": {"test": ["mb-x-0002", "mb-x-0004"], "train": ["mb-x-0001", "mb-x-0003"]},
                       "fold_1": {"test": ["mb-x-0003", "mb-x-0001"], "train": ["mb-x-0002", "mb-x-0004"]}},
        "matbench_y": {"fold_0": {"test": ["mb-y-0001"], "train": []}}}}))
    dest = tmp_path / "matbench_x.csv"
    registry.derive_matbench_folds(src, dest, task="x")
    assert dest.read_bytes() == b"row_index,test_fold\r\n0,1\r\n1,0\r\n2,1\r\n3,0\r\n"


# --------------------------------------------------------------------------------------------------
# archive members, with pooch.retrieve replaced by a local fake


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def fake_retrieve(tmp_path, monkeypatch):
    """pooch.retrieve(url, known_hash, path, processor=Unzip(members)) -> extracted member paths,
    reading the archive registered in ``archives`` (url -> local zip); records every call."""
    archives, calls = {}, []
    out = tmp_path / "extracted"

    def retrieve(url, known_hash=None, fname=None, path=None, processor=None, progressbar=False, **kw):
        calls.append({"url": url, "known_hash": known_hash, "members": list(processor.members)})
        got = []
        with zipfile.ZipFile(archives[url]) as zf:
            for m in processor.members:
                got.append(zf.extract(m, out))
        return got

    monkeypatch.setattr(registry.pooch, "retrieve", retrieve)
    return archives, calls


def _archive_rf(member, sha, url="https://example.invalid/pkg-1.0-py3-none-any.whl", **extra):
    origin = {"archive": "pkg_wheel", "member": member, "archive_url": url, "archive_sha256": "a" * 64, **extra}
    return RawFile("demo", "demo/a.csv", origin, sha, "MIT", "nobody")


def test_fetch_archive_member(tmp_path, fake_retrieve):
    archives, calls = fake_retrieve
    payload = b"formula,target\nAl2O3,1.0\n"
    url = "https://example.invalid/pkg-1.0-py3-none-any.whl"
    archives[url] = _zip(tmp_path / "pkg.whl", {"pkg/data/a.csv": payload, "pkg/data/b.csv": b"other\n"})
    got = registry.fetch(_archive_rf("pkg/data/a.csv", _sha(payload)), tmp_path / "raw", mirror=None)
    assert got == tmp_path / "raw" / "demo" / "a.csv"
    assert got.read_bytes() == payload
    assert calls == [{"url": url, "known_hash": "sha256:" + "a" * 64, "members": ["pkg/data/a.csv"]}]


def test_fetch_archive_member_wrong_hash(tmp_path, fake_retrieve):
    archives, _ = fake_retrieve
    archives["https://example.invalid/pkg-1.0-py3-none-any.whl"] = _zip(tmp_path / "pkg.whl",
                                                                        {"pkg/data/a.csv": b"tampered\n"})
    with pytest.raises(RegistryError, match=r"a\.csv: sha256 mismatch"):
        registry.fetch(_archive_rf("pkg/data/a.csv", _sha(b"original\n")), tmp_path / "raw", mirror=None)


def test_fetch_archive_member_with_derivation(tmp_path, fake_retrieve):
    archives, _ = fake_retrieve
    validation = json.dumps({"splits": {"matbench_x": {"fold_0": {"test": ["mb-x-0002"]},
                                                       "fold_1": {"test": ["mb-x-0001"]}}}}).encode()
    archives["https://example.invalid/pkg-1.0-py3-none-any.whl"] = _zip(
        tmp_path / "pkg.whl", {"matbench/matbench_v0.1_validation.json": validation})
    expected = b"row_index,test_fold\r\n0,1\r\n1,0\r\n"
    rf = _archive_rf("matbench/matbench_v0.1_validation.json", _sha(expected), derive="matbench_folds", task="x")
    got = registry.fetch(rf, tmp_path / "raw", mirror=None)
    assert got.read_bytes() == expected


def test_archive_hash_mismatch_and_network_errors(tmp_path, monkeypatch):
    rf = _archive_rf("pkg/data/a.csv", "0" * 64)

    def mismatch(*a, **kw):
        raise ValueError("SHA256 hash of downloaded file does not match the known hash")

    monkeypatch.setattr(registry.pooch, "retrieve", mismatch)
    with pytest.raises(RegistryError, match=r"sha256 mismatch on download of https://example\.invalid"):
        registry.fetch(rf, tmp_path / "raw", mirror=None)

    def offline(*a, **kw):
        raise ConnectionError("no network")

    monkeypatch.setattr(registry.pooch, "retrieve", offline)
    with pytest.raises(RegistryError, match=r"demo/a\.csv \(dataset demo\): unreachable: tried mirror .*"
                                            r"origin https://example\.invalid.*ConnectionError: no network"):
        registry.fetch(rf, tmp_path / "raw", mirror=None)


def test_mirror_copy_wins_over_archive(tmp_path, fake_retrieve):
    _, calls = fake_retrieve
    payload = b"formula,target\nFe,2.0\n"
    (tmp_path / "mirror" / "demo").mkdir(parents=True)
    (tmp_path / "mirror" / "demo" / "a.csv").write_bytes(payload)
    got = registry.fetch(_archive_rf("pkg/data/a.csv", _sha(payload)), tmp_path / "raw", mirror=tmp_path / "mirror")
    assert got.read_bytes() == payload and calls == []
