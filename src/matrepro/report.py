"""Reported versus reproduced numbers, the deviations table and the README results block.

Reported numbers come only from ``data/reported.yaml``; reproduced numbers only from the
``metrics/<paper>.json`` files that executed notebooks write. Nothing here types a metric.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import yaml

from .errors import MatreproError
from .paths import data_dir, metrics_dir, project_root

METRIC_LABEL = {"mae": "MAE", "rmse": "RMSE", "r2": "R²"}
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def load_reported(path: str | Path | None = None) -> pd.DataFrame:
    """One row per reported number; derived numbers are computed here from the reported ones."""
    path = Path(path) if path else data_dir() / "reported.yaml"
    rep = yaml.safe_load(Path(path).read_text())
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


def load_metrics(paper: str, mdir: str | Path | None = None) -> dict:
    path = Path(mdir or metrics_dir()) / f"{paper}.json"
    if not path.is_file():
        raise MatreproError(f"{path}: no metrics yet; run `dvc repro`")
    return json.loads(path.read_text())


def reproduced_long(paper: str, mdir: str | Path | None = None) -> pd.DataFrame:
    """metrics/<paper>.json -> one row per model x feature set x split x metric."""
    m = load_metrics(paper, mdir)
    rows = []
    for model, by_fs in m["results"].items():
        for fs, by_split in by_fs.items():
            for split, by_metric in by_split.items():
                for metric, v in by_metric.items():
                    if metric in METRIC_LABEL:
                        rows.append({"paper": paper, "model": model, "feature_set": fs, "split": split,
                                     "metric": metric, "mean": v["mean"], "std": v["std"],
                                     "n_seeds": len(v["per_seed"]), "profile": m["profile"]})
    return pd.DataFrame(rows)


def comparison(papers: list[str], reported: pd.DataFrame | None = None, mdir=None) -> pd.DataFrame:
    """Reported vs reproduced (mean ± std over seeds), with ratio = reproduced / reported."""
    reported = reported if reported is not None else load_reported()
    out = []
    for paper in papers:
        rep = reported[reported.paper == paper]
        if rep.empty:  # e.g. lgdcnn: compared dataset by dataset in its own table
            continue
        rp = reproduced_long(paper, mdir)
        for _, r in rep.iterrows():
            hit = rp[(rp.model == r.model) & (rp.metric == r.metric) & (rp.feature_set == r.setting_feature_set)
                     & (rp.split == r.setting_split)]
            if hit.empty:
                raise MatreproError(f"metrics/{paper}.json has no {r.model}/{r.setting_feature_set}/"
                                    f"{r.setting_split}/{r.metric}")
            h = hit.iloc[0]
            out.append({"paper": paper, "model": r.model, "metric": METRIC_LABEL[r.metric],
                        "setting": f"{r.setting_feature_set}, {r.setting_split} split",
                        "reported": r.reported, "reported as": r.kind,
                        "reproduced": h["mean"], "± std": h["std"], "seeds": h["n_seeds"],
                        "ratio": h["mean"] / r.reported, "profile": h["profile"]})
    return pd.DataFrame(out)


def deviations(path: str | Path | None = None) -> pd.DataFrame:
    path = Path(path) if path else data_dir() / "deviations.yaml"
    dev = yaml.safe_load(Path(path).read_text())
    rows = [{"paper": p, **item} for p, items in dev.items() for item in items]
    for i, r in enumerate(rows):
        missing = {"topic", "paper_says", "ours", "kind", "why"} - set(r)
        if missing:
            raise MatreproError(f"{path}: entry {i + 1} lacks {sorted(missing)}")
    return (pd.DataFrame(rows)[["paper", "topic", "kind", "paper_says", "ours", "why"]]
            .rename(columns={"paper_says": "the paper says", "ours": "what we do"}))


def fmt(mean: float, std: float, metric: str) -> str:
    if metric == "r2":
        return f"{mean:.3f} ± {std:.3f}"
    if 0 < abs(mean) < 0.005:  # e.g. the analytic baseline's rounding error: do not print 0.00
        return f"{mean:.1e} ± {std:.1e}"
    return f"{mean:.2f} ± {std:.2f}"


def comparison_markdown(cmp: pd.DataFrame) -> str:
    """The comparison table with reported numbers as the paper prints them."""
    t = cmp.copy()
    t["reported"] = [f"{v:.5g}" for v in t["reported"]]
    t["reproduced"] = [fmt(a, b, "r2" if m == "R²" else "mae") for a, b, m in zip(t["reproduced"], t["± std"], t["metric"])]
    t["ratio"] = [f"{v:.2f}" for v in t["ratio"]]
    return t.drop(columns=["± std"]).rename(columns={"reproduced": "reproduced (mean ± std)"}).to_markdown(index=False, disable_numparse=True)


def results_markdown(papers: list[str], mdir=None) -> str:
    """The README results block: one table per paper, every model x feature set x split, in the
    order of the metrics file."""
    parts = []
    for paper in papers:
        if paper == "lgdcnn":  # 28 datasets, one MAE each: its own table
            from . import lgdcnn

            parts.append("**lgdcnn**: test MAE on the 28 datasets, from `metrics/lgdcnn/*.json`.\n\n"
                         + lgdcnn.report_markdown(mdir))
            continue
        if paper == "cgcnn":  # two protocols x two moduli x two structure subsets, plus screening
            from . import cgcnn_report

            parts.append("**cgcnn**: CGCNN log10 moduli, from `metrics/cgcnn/*.json`.\n\n" + cgcnn_report.report_markdown(mdir))
            continue
        m = load_metrics(paper, mdir)
        rows = []
        for model, by_fs in m["results"].items():
            for fs, by_split in by_fs.items():
                for split, v in by_split.items():
                    rows.append({"model": model, "feature set": fs, "split": split,
                                 **{METRIC_LABEL[k]: fmt(v[k]["mean"], v[k]["std"], k) for k in METRIC_LABEL}})
        parts.append(f"**{paper}**: profile `{m['profile']}`, mean ± std over seeds {m['seeds']}, "
                     f"{m.get('unit', '')}, from `metrics/{paper}.json`.\n\n"
                     + pd.DataFrame(rows).to_markdown(index=False))
    return "\n\n".join(parts)


def update_readme(papers: list[str], readme: str | Path | None = None, mdir=None) -> bool:
    """Rewrite the block between the results markers. Returns True when the file changed."""
    readme = Path(readme) if readme else project_root() / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise MatreproError(f"{readme}: results markers {README_START} / {README_END} not found")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{results_markdown(papers, mdir)}\n{README_END}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


def papers_with_metrics(mdir=None) -> list[str]:
    """Papers with a ``metrics/<paper>.json`` file or a ``metrics/<paper>/`` folder of them."""
    root = Path(mdir or metrics_dir())
    return sorted({p.stem for p in root.glob("*.json")} | {p.name for p in root.iterdir() if p.is_dir()})


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description="Regenerate the README results block from metrics/*.json").parse_args(argv)
    print("README.md updated" if update_readme(papers_with_metrics()) else "README.md already up to date")


if __name__ == "__main__":
    main()
