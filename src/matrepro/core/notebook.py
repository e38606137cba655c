"""Execute a notebook with papermill and export it to self-contained, offline HTML.

    python -m matrepro.core.notebook notebooks/capnet_train.ipynb notebooks/executed/capnet_train_dnn.ipynb \
        --html reports/capnet_train_dnn.html -p arch dnn
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from .paths import project_root

# The HTML must open offline: no script or stylesheet is fetched from a CDN.
_REMOTE_TAG = re.compile(r"<(script|link)[^>]+(src|href)=\"https?://[^\"]+\"[^>]*>(\s*</script>)?", re.I)


def to_html(ipynb: Path, html: Path) -> None:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(embed_images=True, mathjax_url="", require_js_url="", jquery_url="",
                            widget_renderer_url="", jupyter_widgets_base_url="")
    body, _ = exporter.from_filename(str(ipynb))
    body = _REMOTE_TAG.sub("", body)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")


def execute(src: Path, out: Path, parameters: dict, html: Path | None = None) -> None:
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(str(src), str(out), parameters=parameters, cwd=str(project_root()),
                        kernel_name="python3", progress_bar=False, log_output=True)
    if html:
        to_html(out, html)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--html", type=Path)
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="notebook parameter; VALUE is parsed as YAML (so 3 is an int)")
    args = ap.parse_args(argv)
    params = {k: yaml.safe_load(v) for k, v in args.parameter}
    execute(args.src, args.out, params, args.html)


if __name__ == "__main__":
    main()
