"""The cross-paper report: reported versus reproduced, every paper's results block, the
deviations table and the README results block.

Each paper has a report module, ``matrepro.papers.<paper>.report``, found here by name. It
provides ``results_markdown(mdir)`` and may provide ``comparison(reported, mdir)`` (rows of the
reported-versus-reproduced table), ``FIGURES`` (name, caption) and ``extra_markdown()``. Reported
numbers come only from ``data/reported.yaml``; reproduced numbers only from the ``metrics/``
files that executed notebooks write. Nothing here types a metric.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from types import ModuleType

import pandas as pd

from .core.errors import MatreproError
from .core.paths import metrics_dir, project_root
from .core.reported import comparison_markdown, deviations, load_reported  # noqa: F401  (the report's API)

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
PAPERS_DIR = Path(__file__).parent / "papers"


def papers() -> list[str]:
    """Every paper with a report module (``papers/<name>/report.py``)."""
    return sorted(p.parent.name for p in PAPERS_DIR.glob("*/report.py"))


def paper_report(paper: str) -> ModuleType:
    if paper not in papers():
        raise MatreproError(f"no report module for paper {paper!r} (src/matrepro/papers/{paper}/report.py); "
                            f"papers: {papers()}")
    return importlib.import_module(f"matrepro.papers.{paper}.report")


def comparison(names: list[str], reported: pd.DataFrame | None = None, mdir=None) -> pd.DataFrame:
    """Reported vs reproduced, for the papers whose report module compares number by number
    (lgdcnn and cgcnn compare in their own tables)."""
    reported = reported if reported is not None else load_reported()
    parts = [paper_report(p).comparison(reported, mdir) for p in names if hasattr(paper_report(p), "comparison")]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def results_markdown(names: list[str], mdir=None) -> str:
    """The README results block: one block per paper, from its report module."""
    return "\n\n".join(paper_report(p).results_markdown(mdir) for p in names)


def figures(names: list[str]) -> list[tuple[str, str]]:
    """The figures the project report shows, paper by paper: (name under figures/, caption)."""
    return [f for p in names for f in getattr(paper_report(p), "FIGURES", [])]


def extra_markdown(names: list[str]) -> list[str]:
    """Further report sections of the papers that have them (e.g. cgcnn's top candidates)."""
    return [paper_report(p).extra_markdown() for p in names if hasattr(paper_report(p), "extra_markdown")]


def update_readme(names: list[str], readme: str | Path | None = None, mdir=None) -> bool:
    """Rewrite the block between the results markers. Returns True when the file changed."""
    readme = Path(readme) if readme else project_root() / "README.md"
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise MatreproError(f"{readme}: results markers {README_START} / {README_END} not found")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{results_markdown(names, mdir)}\n{README_END}{tail}"
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
