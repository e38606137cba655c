"""The two hand-written files of the report: ``data/reported.yaml`` (every number a paper reports,
with its source) and ``data/deviations.yaml`` (every assumption and deviation). Nothing here types
a number; derived reported numbers are computed from the stated ones by a named rule."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from .errors import MatreproError
from .paths import data_dir


def reported_sections(path: str | Path | None = None) -> dict:
    """``data/reported.yaml`` as it is: one section per paper."""
    path = Path(path) if path else data_dir() / "reported.yaml"
    return yaml.safe_load(Path(path).read_text())


def load_reported(path: str | Path | None = None) -> pd.DataFrame:
    """One row per reported number; derived numbers are computed here from the reported ones."""
    path = Path(path) if path else data_dir() / "reported.yaml"
    rep = reported_sections(path)
    rows = []
    for paper, sec in rep.items():
        stated = {(e["model"], e["metric"]): e["value"] for e in sec.get("entries", []) if "value" in e}
        for e in sec.get("entries", []):  # lgdcnn: numbers in registered files (source_files)
            if "value" in e:
                value, kind = float(e["value"]), "reported"
            elif e.get("derived", {}).get("rule") == "mae_from_improvement":
                d = e["derived"]
                value = stated[(d["of"], e["metric"])] / (1 - d["improvement_pct"] / 100)
                kind = f"implied by {d['improvement_pct']} % improvement"
            else:
                raise MatreproError(f"{path}: {paper}/{e.get('model')}: entry needs 'value' or a known 'derived' rule")
            rows.append({"paper": paper, "model": e["model"], "metric": e["metric"], "reported": value,
                         "kind": kind, "source": e["source"], "unit": sec.get("unit", ""),
                         **{f"setting_{k}": v for k, v in sec.get("setting", {}).items()}})
    return pd.DataFrame(rows)


def deviations(path: str | Path | None = None) -> pd.DataFrame:
    """``data/deviations.yaml`` as a table; an entry without one of the five fields is an error."""
    path = Path(path) if path else data_dir() / "deviations.yaml"
    dev = yaml.safe_load(Path(path).read_text())
    rows = [{"paper": p, **item} for p, items in dev.items() for item in items]
    for i, r in enumerate(rows):
        missing = {"topic", "paper_says", "ours", "kind", "why"} - set(r)
        if missing:
            raise MatreproError(f"{path}: entry {i + 1} lacks {sorted(missing)}")
    return (pd.DataFrame(rows)[["paper", "topic", "kind", "paper_says", "ours", "why"]]
            .rename(columns={"paper_says": "the paper says", "ours": "what we do"}))


def comparison_markdown(cmp: pd.DataFrame) -> str:
    """A reported-versus-reproduced table (columns: reported, reproduced, ± std, metric, ratio, ...)
    with reported numbers as the paper prints them."""
    from .show import fmt

    t = cmp.copy()
    t["reported"] = [f"{v:.5g}" for v in t["reported"]]
    t["reproduced"] = [fmt(a, b, "r2" if m == "R²" else "mae") for a, b, m in zip(t["reproduced"], t["± std"], t["metric"])]
    t["ratio"] = [f"{v:.2f}" for v in t["ratio"]]
    return t.drop(columns=["± std"]).rename(columns={"reproduced": "reproduced (mean ± std)"}).to_markdown(index=False, disable_numparse=True)
