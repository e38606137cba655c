"""The ``matrepro`` command (also ``python -m matrepro``): apply the reproduced models.

    matrepro models [PAPER] [--json]
    matrepro predict PAPER [--dataset NAME | --target NAME] --input FILE_OR_DIR --out FILE [--errors FILE]

Each paper that can be applied has a module ``matrepro.papers.<paper>.predict``, found here by
name, with ``INPUT`` (what the input looks like), ``DEFAULT`` (the model used when no name is
given, or None), ``STAGE`` (the DVC stage that writes ``models/<paper>/<name>/``, with ``{name}``)
and ``predict_file(folder, path) -> (predictions, errors)``, and may have ``canonical_name(name)``
(aliases such as matbench's dataset names).

Good rows are predicted; each bad row goes to the errors file (file, row, field, reason) and is
not guessed. Exit status: 0 every row predicted, 1 some rows failed (see the errors file), 2 the
input or the model could not be used at all (one message saying what to do).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

from .core.batch_input import InputError
from .core.cards import ModelMissing, list_cards, models_dir
from .core.errors import MatreproError

PAPERS_DIR = Path(__file__).parent / "papers"
OK, SOME_FAILED, UNUSABLE = 0, 1, 2


def predictable() -> list[str]:
    """Papers with a predict module (``papers/<name>/predict.py``)."""
    return sorted(p.parent.name for p in PAPERS_DIR.glob("*/predict.py"))


def paper_predictor(paper: str) -> ModuleType:
    if paper not in predictable():
        raise MatreproError(f"paper {paper!r} has no trained model to apply; choose one of {predictable()}")
    return importlib.import_module(f"matrepro.papers.{paper}.predict")


def model_folder(paper: str, name: str | None, root: Path | None = None) -> Path:
    mod = paper_predictor(paper)
    root = Path(root) if root else models_dir()
    name = name or mod.DEFAULT
    if name and hasattr(mod, "canonical_name"):
        name = mod.canonical_name(name)
    if not name:
        have = sorted(p.parent.name for p in (root / paper).glob("*/card.json"))
        raise MatreproError(f"{paper}: say which model with --dataset/--target; trained here: {have or 'none'}")
    folder = root / paper / name
    if not (folder / "card.json").is_file():
        have = sorted(p.parent.name for p in (root / paper).glob("*/card.json"))
        stage = mod.STAGE.format(name=name)
        raise ModelMissing(f"no trained {paper} model {name!r} in {folder}: run `dvc repro {stage}` (or `dvc pull` "
                           f"if a remote holds it). Trained here: {have or 'none'}")
    return folder


def cmd_predict(a) -> int:
    mod = paper_predictor(a.paper)
    folder = model_folder(a.paper, a.dataset or a.target, a.models)
    preds, errors = mod.predict_file(folder, Path(a.input))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    preds.to_csv(out, index=False, float_format="%.6g")
    err_path = Path(a.errors) if a.errors else out.with_name(out.stem + ".errors.csv")
    if len(errors):
        errors.to_csv(err_path, index=False)
    elif err_path.exists() and not a.errors:
        err_path.unlink()  # a stale errors file from an earlier run would mislead
    msg = f"{a.paper} {folder.name}: {len(preds)} row(s) predicted -> {out}"
    if len(errors):
        msg += f"; {len(errors)} row(s) failed -> {err_path}"
    print(msg)
    return SOME_FAILED if len(errors) else OK


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested metrics as dotted keys (lists left out)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def cmd_models(a) -> int:
    cards = list_cards(a.models, a.paper)
    if a.json:
        print(json.dumps(cards, indent=1, sort_keys=True))
        return OK
    if not cards:
        print(f"no trained models under {Path(a.models) if a.models else models_dir()}: run `dvc repro` "
              f"(the training stages write models/<paper>/<name>/card.json)")
        return OK
    for c in cards:
        rows = c["training"].get("rows")
        metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in _flat(c["metrics"]).items()
                            if k.split(".")[-1] in ("mae", "mae_std", "split", "fold") or k.endswith(".mae.mean"))
        print(f"{c['paper']} {c['name']}: {c['target']} [{c['unit']}], profile {c['profile']}, "
              f"{len(c['members'])} member(s), training rows {rows}; test: {metrics}\n"
              f"    input: {c['input']}\n    folder: {c['folder']} (stage {c['stage']})")
    return OK


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="matrepro", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("predict", help="apply a trained model to your own inputs")
    p.add_argument("paper", help=f"one of {predictable()}")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--dataset", help="lgdcnn: the dataset the model was trained on (e.g. matbench_expt_gap)")
    g.add_argument("--target", help="the target/model name where a paper has several (see `matrepro models`)")
    p.add_argument("--input", required=True, help="CSV of formulas, battery-table CSV, or CIF/POSCAR file or folder")
    p.add_argument("--out", required=True, help="output CSV, one row per predicted input")
    p.add_argument("--errors", help="CSV of the rows that failed (default: <out>.errors.csv)")
    p.add_argument("--models", help="models folder (default: <repo>/models)")
    m = sub.add_parser("models", help="list the trained models that can be applied, with their cards")
    m.add_argument("paper", nargs="?")
    m.add_argument("--json", action="store_true", help="print the full cards")
    m.add_argument("--models", help="models folder (default: <repo>/models)")
    a = ap.parse_args(argv)
    try:
        return cmd_predict(a) if a.cmd == "predict" else cmd_models(a)
    except (InputError, ModelMissing, MatreproError) as exc:
        print(f"matrepro {a.cmd}: {exc}", file=sys.stderr)
        return UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
