"""Notebook display helpers: Markdown text and tables (so notebooks define no functions)."""
from __future__ import annotations

import pandas as pd


def md(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(df: pd.DataFrame, floatfmt: str = ".4g") -> None:
    md(df.to_markdown(index=False, floatfmt=floatfmt))
