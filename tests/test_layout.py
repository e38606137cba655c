"""The package layout and the DVC dependency lists, checked statically (``ast``; nothing is imported).

Guards three things:

* import direction: ``core`` <- ``features`` <- ``models`` <- ``papers.<p>``; a paper never imports
  another paper, ``matrepro.report`` or ``matrepro.registry``; ``registry`` uses only ``core``; the
  module graph has no cycles; only ``__init__``, ``__main__``, ``cli``, ``registry`` and ``report``
  sit directly in ``src/matrepro/``;
* every import of a ``matrepro`` name resolves to a file (a half-done move fails loudly here);
* every DVC stage lists exactly the ``src/`` files its entry points reach (``python -m ...`` modules
  and the source notebook's imports, closed over the import graph): a missing dep means a stage
  does not re-run when its code changes, an extra one means it re-runs for nothing.

``matrepro.report`` imports ``matrepro.papers.<p>.report`` by name (``importlib``), and
``matrepro.cli`` imports ``matrepro.papers.<p>.predict``; the graph adds those edges by hand. The graph builders take the source root and package name, so the self-test
can run them on a fake tree.
"""
from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PKG = "matrepro"
TOP_LEVEL_FILES = {"__init__.py", "__main__.py", "cli.py", "registry.py", "report.py"}


# --------------------------------------------------------------------------- graph builders

@dataclass
class ImportGraph:
    modules: dict[str, Path]  # module name -> file (a package -> its __init__.py)
    edges: dict[str, set[str]] = field(default_factory=dict)  # module -> existing modules it imports
    unresolved: dict[str, set[str]] = field(default_factory=dict)  # module -> names that are no file


def find_modules(src_root: Path, package: str) -> dict[str, Path]:
    """Every module and package under ``src_root/package``, by dotted name."""
    modules = {}
    for path in sorted((Path(src_root) / package).rglob("*.py")):
        parts = path.relative_to(src_root).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def has_code(path: Path) -> bool:
    """True if the file has any statement besides a docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return bool(body)


def top_level_names(path: Path) -> set[str] | None:
    """Names a module binds at top level (None if it star-imports, so anything may be defined)."""
    names: set[str] = set()
    todo = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return None
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            todo += node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", [])
            todo += [s for h in getattr(node, "handlers", []) for s in h.body]
    return names


def raw_imports(tree: ast.AST, current_package: str | None) -> list[tuple[str, str | None]]:
    """Every import at any depth as (absolute base, imported name or None); relative imports are
    made absolute against ``current_package`` (skipped when it is None, e.g. in a notebook)."""
    out: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if current_package is None:
                    continue
                parts = current_package.split(".")
                if node.level - 1 >= len(parts):
                    out.append((f"<{'.' * node.level}{node.module or ''} beyond {current_package}>", None))
                    continue
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            out += [(base, None if a.name == "*" else a.name) for a in node.names]
    return out


def resolve(base: str, name: str | None, modules: dict[str, Path], package: str) -> tuple[set[str], str | None]:
    """(modules an import executes, missing name or None); names outside ``package`` give (set(), None).

    ``from P import N`` goes to ``P.N`` if that is a module, else to ``P`` (N must then be defined in P
    when P is a package). Parent packages are added when their ``__init__.py`` has code."""
    if base != package and not base.startswith(package + "."):
        return set(), None
    if name is not None and f"{base}.{name}" in modules:
        target = f"{base}.{name}"
    elif base in modules:
        target = base
        if name is not None and modules[base].name == "__init__.py":
            defined = top_level_names(modules[base])
            if defined is not None and name not in defined:
                target = None
    else:
        target = None
    full = target or (f"{base}.{name}" if base in modules else base)
    parts = full.split(".")
    parents = {".".join(parts[:i]) for i in range(1, len(parts))}
    executed = {p for p in parents if p in modules and has_code(modules[p])}
    return executed | ({target} if target else set()), None if target else full


def build_graph(src_root: Path, package: str) -> ImportGraph:
    graph = ImportGraph(find_modules(src_root, package))
    for mod, path in graph.modules.items():
        current = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        graph.edges[mod], graph.unresolved[mod] = set(), set()
        for base, name in raw_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), current):
            targets, missing = resolve(base, name, graph.modules, package)
            graph.edges[mod] |= targets - {mod}
            if missing or base.startswith("<"):
                graph.unresolved[mod].add(missing or base)
    return graph


@lru_cache(maxsize=None)
def matrepro_graph() -> ImportGraph:
    """The real graph, plus matrepro.report -> every matrepro.papers.<p>.report and matrepro.cli ->
    every matrepro.papers.<p>.predict (dynamic imports)."""
    graph = build_graph(SRC, PKG)
    for top, leaf in (("report", "report"), ("cli", "predict")):
        if f"{PKG}.{top}" in graph.edges:
            for mod in [m for m in graph.modules if re.fullmatch(rf"{PKG}\.papers\.\w+\.{leaf}", m)]:
                graph.edges[f"{PKG}.{top}"] |= resolve(mod, None, graph.modules, PKG)[0]
    return graph


def closure(graph: ImportGraph, seeds: set[str]) -> set[str]:
    seen, todo = set(), list(seeds)
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo += graph.edges.get(mod, ())
    return seen


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, grey/black marking)."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(mod: str) -> list[str] | None:
        state[mod] = 1
        stack.append(mod)
        for nxt in sorted(edges.get(mod, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[mod] = 2
        return None

    for mod in sorted(edges):
        if mod not in state and (cycle := visit(mod)):
            return cycle
    return None


def notebook_imports(path: Path, modules: dict[str, Path], package: str) -> tuple[set[str], set[str]]:
    """(modules, missing names) that a notebook's code cells import from ``package`` (absolute only)."""
    found, missing = set(), set()
    for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        for base, name in raw_imports(ast.parse(src, f"{path.name}[cell {i}]"), None):
            targets, miss = resolve(base, name, modules, package)
            found |= targets
            missing |= {miss} if miss else set()
    return found, missing


# --------------------------------------------------------------------------- dvc.yaml

def load_stages(root: Path) -> dict[str, dict]:
    """stage -> {"cmd": str, "deps": [str]}, ``${var}`` expanded from top-level vars; ``foreach``
    stages give their ``do`` template once (``${item}`` left as is: src deps never use it)."""
    path = root / "dvc.yaml"
    if not path.is_file():
        return {}
    dvc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    var_list = dvc.get("vars", [])
    variables = {k: v for d in (var_list if isinstance(var_list, list) else [var_list]) if isinstance(d, dict)
                 for k, v in d.items()}
    expand = lambda s: re.sub(r"\$\{([\w.]+)\}", lambda m: str(variables.get(m[1], m[0])), s)  # noqa: E731
    stages = {}
    for name, stage in (dvc.get("stages") or {}).items():
        body = stage.get("do", stage) if "foreach" in stage else stage
        cmd = body.get("cmd", "")
        cmd = " && ".join(cmd) if isinstance(cmd, list) else cmd
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
        stages[name] = {"cmd": expand(cmd), "deps": [expand(d) for d in deps], "runner": expand("${nb}")}
    return stages


def entry_points(cmd: str, runner_cmd: str) -> tuple[set[str], set[str]]:
    """(``python -m`` modules in the package, source notebooks given to the notebook runner)."""
    runner = shlex.split(runner_cmd)[-1] if runner_cmd.startswith("python -m ") else f"{PKG}.core.notebook"
    tokens = shlex.split(cmd)
    mods, notebooks = set(), set()
    for i, tok in enumerate(tokens[:-1]):
        if tok == "-m" and (tokens[i + 1] == PKG or tokens[i + 1].startswith(PKG + ".")):
            mods.add(tokens[i + 1])
            if tokens[i + 1] == runner and i + 2 < len(tokens) and tokens[i + 2].endswith(".ipynb"):
                notebooks.add(tokens[i + 2])
    return mods, notebooks


STAGES = load_stages(ROOT)


# --------------------------------------------------------------------------- tests: resolver

def test_resolver_on_a_fake_tree(tmp_path: Path):
    files = {
        "pkg/__init__.py": '"""Only a docstring."""\n',
        "pkg/a.py": "import os\n\ndef f():\n    from .b import x\n    from . import sub\n    import pkg.full.e\n",
        "pkg/b.py": "x = y = 1\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from ..a import f\nfrom pkg.b import y\nfrom .nothere import z\nfrom .. import gone\n",
        "pkg/full/__init__.py": "from .e import thing\n",
        "pkg/full/e.py": "thing = 1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    g = build_graph(tmp_path, "pkg")
    assert set(g.modules) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.full", "pkg.full.e"}
    assert g.edges == {"pkg": set(), "pkg.a": {"pkg.b", "pkg.sub", "pkg.full", "pkg.full.e"}, "pkg.b": set(),
                       "pkg.sub": set(), "pkg.sub.c": {"pkg.a", "pkg.b"}, "pkg.full": {"pkg.full.e"},
                       "pkg.full.e": set()}
    assert g.unresolved["pkg.sub.c"] == {"pkg.sub.nothere", "pkg.gone"}
    assert closure(g, {"pkg.sub.c"}) == {"pkg.sub.c", "pkg.a", "pkg.b", "pkg.sub", "pkg.full", "pkg.full.e"}
    assert find_cycle(g.edges) is None
    assert find_cycle({**g.edges, "pkg.full.e": {"pkg.sub.c"}}) == ["pkg.a", "pkg.full", "pkg.full.e", "pkg.sub.c", "pkg.a"]


def test_real_graph_is_not_trivial():
    g = matrepro_graph()
    assert len(g.modules) >= 20, sorted(g.modules)
    exp = f"{PKG}.papers.cgcnn.experiments"
    if exp in g.modules:
        assert f"{PKG}.core.train" in closure(g, {exp}), f"{exp} does not reach {PKG}.core.train"


def test_every_import_resolves():
    bad = [f"{m} -> {n}" for m, names in sorted(matrepro_graph().unresolved.items()) for n in sorted(names)]
    assert not bad, "imports of names that are no module or package attribute:\n  " + "\n  ".join(bad)


# --------------------------------------------------------------------------- tests: import direction

def _within(mod: str, layers: list[str]) -> bool:
    return any(mod == f"{PKG}.{l}" or mod.startswith(f"{PKG}.{l}.") for l in layers)


def _offending(source_layer: str, allowed) -> list[str]:
    """Edges out of ``source_layer`` to modules not in ``allowed(src)``; a module's own parent
    packages always run before it, so importing them is never an offence."""
    g = matrepro_graph()
    return [f"{src} -> {dst}" for src in sorted(g.edges) if _within(src, [source_layer])
            for dst in sorted(g.edges[src])
            if not _within(dst, allowed(src)) and not src.startswith(dst + ".")]


@pytest.mark.parametrize("layer, allowed", [
    ("core", ["core"]),
    ("features", ["core", "features"]),
    ("models", ["core", "features", "models"]),
    ("registry", ["core"]),
], ids=["core", "features", "models", "registry"])
def test_layer_imports_only_below(layer: str, allowed: list[str]):
    bad = _offending(layer, lambda src: allowed)
    assert not bad, f"{PKG}.{layer} may import only {allowed} of {PKG}:\n  " + "\n  ".join(bad)


def test_papers_import_only_shared_layers_and_themselves():
    def allowed(src: str) -> list[str]:
        parts = src.split(".")
        return ["core", "features", "models"] + ([f"papers.{parts[2]}"] if len(parts) > 2 else [])

    bad = _offending("papers", allowed)
    assert not bad, ("a paper imports only core, features, models and itself (no other paper, no "
                     f"{PKG}.report or {PKG}.registry):\n  " + "\n  ".join(bad))


def test_no_import_cycles():
    cycle = find_cycle(matrepro_graph().edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_nothing_loose_in_the_package_root():
    loose = sorted(p.name for p in (SRC / PKG).glob("*.py") if p.name not in TOP_LEVEL_FILES)
    assert not loose, f"src/{PKG}/ holds only {sorted(TOP_LEVEL_FILES)}; move into a layer folder: {loose}"


# --------------------------------------------------------------------------- tests: DVC deps

def stage_problems(spec: dict, g: ImportGraph) -> tuple[list[str], set[str]]:
    """(what is wrong with one stage's src deps, its entry points)."""
    mods, notebooks = entry_points(spec["cmd"], spec["runner"])
    seeds, missing = set(), set()
    for mod in mods:
        targets, miss = resolve(mod, None, g.modules, PKG)
        seeds |= targets
        missing |= {miss} if miss else set()
    problems = [f"notebook {nb} is not in deps" for nb in sorted(notebooks) if nb not in spec["deps"]]
    for nb in sorted(notebooks):
        if not (ROOT / nb).is_file():
            problems.append(f"notebook {nb} does not exist")
            continue
        targets, miss = notebook_imports(ROOT / nb, g.modules, PKG)
        seeds, missing = seeds | targets, missing | miss
    reached = closure(g, seeds)
    missing |= {f"{m} -> {n}" for m in sorted(reached) for n in g.unresolved.get(m, ())}
    required = {g.modules[m].relative_to(ROOT).as_posix() for m in reached
                if g.modules[m].name != "__init__.py" or has_code(g.modules[m])}
    listed = {d.rstrip("/") for d in spec["deps"] if d.startswith("src/")}
    if missing:
        problems.append("entry points import names that are no file: " + ", ".join(sorted(missing)))
    if required - listed:
        problems.append("missing deps (code the stage runs): " + ", ".join(sorted(required - listed)))
    if listed - required:
        problems.append("extra deps (the stage never imports them): " + ", ".join(sorted(listed - required)))
    return problems, mods | notebooks


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_lists_exactly_the_source_it_runs(stage: str):
    problems, entry = stage_problems(STAGES[stage], matrepro_graph())
    assert not problems, f"stage {stage} (entry: {sorted(entry)}):\n  " + "\n  ".join(problems)


def test_the_dep_check_catches_a_missing_and_an_extra_dep():
    spec = STAGES["cgcnn_train"]
    dropped = {**spec, "deps": [d for d in spec["deps"] if d != "src/matrepro/core/train.py"]}
    problems, _ = stage_problems(dropped, matrepro_graph())
    assert any("missing deps" in p and "core/train.py" in p for p in problems), problems
    extra = {**spec, "deps": spec["deps"] + ["src/matrepro/papers/capnet/data.py"]}
    problems, _ = stage_problems(extra, matrepro_graph())
    assert any("extra deps" in p and "capnet/data.py" in p for p in problems), problems


def test_report_stage_lists_every_figure_it_embeds():
    # the project report embeds each paper's FIGURES (base64 in reports/report.html): a figure that is
    # no dep leaves the report stale, unseen by dvc, when its stage re-runs
    from matrepro import report

    papers = [p.name for p in (ROOT / "src" / PKG / "papers").iterdir() if (p / "report.py").is_file()]
    embedded = {f"figures/{name}.png" for name, _ in report.figures(sorted(papers))}
    missing = embedded - set(STAGES["report"]["deps"])
    assert embedded and not missing, f"report stage misses figure deps: {sorted(missing)}"
