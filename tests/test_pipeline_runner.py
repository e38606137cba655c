"""matrepro.core.pipeline: the parallel DVC runner the smoke pipeline test uses."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from matrepro.core import pipeline

DVC = str(Path(sys.executable).with_name("dvc"))


def test_downstream_counts_and_ready_stages():
    deps = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"b", "c"}, "e": set()}
    assert pipeline.downstream_counts(deps) == {"a": 3, "b": 1, "c": 1, "d": 0, "e": 0}
    assert sorted(pipeline.schedule(deps, set())) == ["a", "e"]
    assert sorted(pipeline.schedule(deps, {"a", "e"})) == ["b", "c"]
    assert pipeline.schedule(deps, {"a", "b", "e"}) == ["c"]


def _project(tmp_path: Path, fail: bool = False) -> tuple[Path, dict]:
    """A DVC project: two independent stages that each sleep 2 s, and one that joins them."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    (tmp_path / ".dvc" / "config").write_text("[core]\n    analytics = false\n")
    (tmp_path / "dvc.yaml").write_text(textwrap.dedent(f"""\
        stages:
          left:
            cmd: python -c "import time; time.sleep(2); open('left.txt', 'w').write('L')"
            outs: [left.txt]
          right:
            cmd: python -c "import time; time.sleep(2); open('right.txt', 'w').write('R'); {'exit(3)' if fail else ''}"
            outs: [right.txt]
          join:
            cmd: python -c "open('both.txt', 'w').write(open('left.txt').read() + open('right.txt').read())"
            deps: [left.txt, right.txt]
            outs: [both.txt]
        """))
    return tmp_path, env


def test_runs_independent_stages_side_by_side_and_leaves_dvc_up_to_date(tmp_path, monkeypatch):
    root, env = _project(tmp_path)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    lines = []
    assert pipeline.run(root, jobs=2, dvc=DVC, echo=lines.append) == 0
    assert (root / "both.txt").read_text() == "LR"
    starts = [l.split()[-1] for l in lines if " start " in l]
    assert set(starts[:2]) == {"left", "right"} and starts[2] == "join"
    # both sleeping stages started before either had finished
    first_done = next(i for i, l in enumerate(lines) if " done " in l)
    assert sum(" start " in l for l in lines[:first_done]) == 2
    status = subprocess.run([DVC, "status"], cwd=root, env=env, capture_output=True, text=True).stdout
    assert "up to date" in status
    # a second run asks DVC about nothing; --force re-runs the named stage (its log shows the command
    # ran) and hands the stage downstream of it to DVC, which finds its inputs unchanged
    lines.clear()
    assert pipeline.run(root, jobs=2, dvc=DVC, echo=lines.append) == 0
    assert not any(" start " in l for l in lines) and "0 stages ran, 3 up to date" in lines[-1]
    lines.clear()
    assert pipeline.run(root, jobs=2, force=("left",), dvc=DVC, echo=lines.append) == 0
    assert [l.split()[-1] for l in lines if " start " in l] == ["left", "join"]
    assert "1 stages ran, 2 up to date" in lines[-1]
    status = subprocess.run([DVC, "status"], cwd=root, env=env, capture_output=True, text=True).stdout
    assert "up to date" in status and (root / "both.txt").read_text() == "LR"


def test_a_failing_stage_stops_the_run_and_names_the_stage(tmp_path, monkeypatch):
    root, _ = _project(tmp_path, fail=True)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    lines = []
    assert pipeline.run(root, jobs=2, dvc=DVC, echo=lines.append) == 1
    text = "\n".join(lines)
    assert "stage right failed (exit" in text and "1 failed, 1 not started" in text
    assert not (root / "both.txt").exists()


def test_unknown_forced_stage_is_an_error(tmp_path):
    root, _ = _project(tmp_path)
    lines = []
    assert pipeline.run(root, jobs=1, force=("nope",), dvc=DVC, echo=lines.append) == 2
    assert "unknown stage(s) ['nope']" in lines[0]


def test_jobs_must_be_positive():
    with pytest.raises(SystemExit):
        pipeline.main(["-j", "0"])
