import hashlib

import pytest
import yaml

from matrepro import registry
from matrepro.core.errors import RegistryError
from matrepro.registry import RawFile


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _rf(path="demo/a.csv", sha="0" * 64, origin="http://127.0.0.1:9/a.csv"):
    return RawFile("demo", path, origin, sha, "CC0", "nobody")


def test_registry_lists_origin_hash_licence_citation():
    reg = registry.load_registry()
    assert reg["datasets"], "registry is empty"
    for name, ds in reg["datasets"].items():
        for f in registry.dataset_files(name, reg):
            if isinstance(f.origin, dict):  # a member of a published archive, or no public origin
                assert f.origin.get("archive_url", "https://").startswith("https://") or "unavailable" in f.origin
                assert "member" in f.origin or "unavailable" in f.origin
            else:
                assert f.origin.startswith("https://")
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
            assert f.licence and f.citation


def test_registry_rejects_entry_without_hash(tmp_path):
    p = tmp_path / "registry.yaml"
    p.write_text(yaml.safe_dump({"datasets": {"x": {"licence": "l", "citation": "c",
                                                    "files": [{"path": "x/a.csv", "origin": "https://e/a"}]}}}))
    with pytest.raises(RegistryError, match="sha256"):
        registry.load_registry(p)


def test_fetch_from_mirror_verifies_hash(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "demo").mkdir(parents=True)
    payload = b"formula,target\nLiFePO4,169.9\n"
    (mirror / "demo" / "a.csv").write_bytes(payload)
    got = registry.fetch(_rf(sha=_sha(payload)), tmp_path / "raw", mirror=mirror)
    assert got.read_bytes() == payload


def test_hash_mismatch_is_an_error_naming_the_file(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "demo").mkdir(parents=True)
    (mirror / "demo" / "a.csv").write_bytes(b"tampered\n")
    with pytest.raises(RegistryError, match=r"a\.csv: sha256 mismatch"):
        registry.fetch(_rf(sha=_sha(b"original\n")), tmp_path / "raw", mirror=mirror)


def test_missing_mirror_and_unreachable_origin(tmp_path):
    # the mirror lacks the file and the origin (a closed loopback port) refuses the connection
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(RegistryError, match=r"demo/a\.csv .*unreachable: tried mirror .*missing.*origin http://127\.0\.0\.1:9"):
        registry.fetch(_rf(), tmp_path / "raw", mirror=mirror)


def test_mirror_env_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.MIRROR_ENV, str(tmp_path / "nope"))
    with pytest.raises(RegistryError, match="MATREPRO_DATA_MIRROR=.*does not exist"):
        registry.mirror_root()


def test_unknown_dataset():
    with pytest.raises(RegistryError, match="no dataset 'nope'"):
        registry.dataset_files("nope")


def test_real_mirror_file_matches_registry(battery_mirror_csv):
    (rf,) = registry.dataset_files("mp_battery")
    registry.verify(battery_mirror_csv, rf.sha256)
