"""Run the DVC pipeline with several stages at a time: ``python -m matrepro.core.pipeline -j 2``.

``dvc repro`` runs one stage after another. Most of this pipeline's stages are independent (28
lgdcnn tasks, five papers), and in the ``smoke`` profile each is small: a process that imports
torch and trains for seconds leaves the second core idle. This runner reads the stage graph from
DVC and keeps ``-j`` stages running, each through ``dvc --wait-for-lock repro --single-item
<stage>``, so DVC itself decides whether a stage is stale, runs its command, checks and caches its
outputs and writes ``dvc.lock``. The result is the same as ``dvc repro``'s; a plain ``dvc repro``
afterwards finds nothing to do.

* One ``dvc status`` first lists the stale stages. A stage is handed to DVC when it is stale, forced,
  or downstream of a stage that ran in this session (DVC then decides whether its inputs changed);
  the others are up to date and cost nothing.
* A stage starts once every stage it depends on has finished; among the ready ones, the stage with
  the most stages downstream of it goes first.
* Threads: with ``-j N`` each stage gets ``OMP_NUM_THREADS`` = ``MATREPRO_THREADS`` = cores // N
  (at least 1) unless they are set already. The thread count can move the last bits of a float
  result, so compare runs made with the same setting.
* ``--force STAGE ...`` re-runs those stages even when they are up to date (``dvc repro --force
  --single-item``); the stages downstream of them run if their inputs changed, as with ``dvc repro``.
* Frozen stages are not run. Every stage's output goes to ``.dvc/tmp/pipeline/<stage>.log``; when a
  stage fails, no new stage starts, the running ones finish, the log's tail is printed and the exit
  code is 1.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

LOG_DIR = Path(".dvc") / "tmp" / "pipeline"


def stage_graph(root: Path) -> tuple[dict[str, set[str]], set[str]]:
    """({stage: the stages it depends on}, frozen stages) of the DVC project at ``root``."""
    from contextlib import chdir

    from dvc.repo import Repo

    with chdir(root), Repo(".") as repo:  # stage addresses are relative to the working directory
        g = repo.index.graph  # an edge a -> b: stage a depends on stage b
        deps = {s.addressing: {d.addressing for d in g.successors(s)} for s in g.nodes}
        frozen = {s.addressing for s in g.nodes if s.frozen}
    return deps, frozen


def downstream_counts(deps: dict[str, set[str]]) -> dict[str, int]:
    """How many stages depend, directly or not, on each stage."""
    users: dict[str, set[str]] = {s: set() for s in deps}
    for s, ds in deps.items():
        for d in ds:
            users[d].add(s)
    memo: dict[str, set[str]] = {}

    def below(s: str) -> set[str]:
        if s not in memo:
            out = set(users[s])
            for u in users[s]:
                out |= below(u)
            memo[s] = out
        return memo[s]

    return {s: len(below(s)) for s in deps}


def stale_stages(root: Path, dvc: str, env: dict) -> set[str]:
    """The stages ``dvc status`` reports as changed."""
    import json

    r = subprocess.run([dvc, "--wait-for-lock", "status", "--json"], cwd=root, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"dvc status failed in {root}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return set(json.loads(r.stdout or "{}"))


def schedule(deps: dict[str, set[str]], done: set[str]) -> list[str]:
    """The stages not in ``done`` whose dependencies are all in ``done``."""
    return [s for s, ds in deps.items() if s not in done and ds <= done]


def log_path(logs: Path, stage: str) -> Path:
    """The log file of ``stage`` (a stage in another dvc.yaml has '/' and ':' in its address)."""
    return logs / (stage.replace("/", "_").replace(":", "_") + ".log")


def run(root: Path, jobs: int = 2, force: tuple[str, ...] = (), dvc: str = "dvc", echo=None) -> int:
    """Run every stage of the project at ``root`` (see the module text); 0 when all succeeded."""
    echo = echo or (lambda msg: print(msg, flush=True))
    root = Path(root)
    deps, frozen = stage_graph(root)
    unknown = sorted(set(force) - set(deps))
    if unknown:
        echo(f"pipeline: --force names unknown stage(s) {unknown}")
        return 2
    rank = downstream_counts(deps)
    env = dict(os.environ)
    if jobs > 1:
        per = str(max(1, (os.cpu_count() or 1) // jobs))
        env.setdefault("OMP_NUM_THREADS", per)
        env.setdefault("MATREPRO_THREADS", per)
    logs = root / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    stale = stale_stages(root, dvc, env)
    done, failed, ran = set(frozen), [], set()
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    times: dict[str, float] = {}
    t_start = time.perf_counter()
    echo(f"pipeline: {len(deps)} stages ({len(frozen)} frozen), {jobs} at a time, "
         f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}")
    while len(done) + len(failed) < len(deps):
        if not failed:
            ready = sorted((s for s in schedule(deps, done) if s not in running), key=lambda s: (-rank[s], s))
            idle = [s for s in ready if s not in stale and s not in force and not deps[s] & ran]
            done.update(idle)  # up to date, and nothing upstream ran: no need to ask DVC
            if idle:
                continue
            for s in ready[:max(0, jobs - len(running))]:
                cmd = [dvc, "--wait-for-lock", "repro", "--single-item", s] + (["--force"] if s in force else [])
                fh = open(log_path(logs, s), "w")
                running[s] = (subprocess.Popen(cmd, cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT),
                              time.perf_counter(), fh)
                echo(f"{time.perf_counter() - t_start:7.1f} s  start {s}")
        if not running:
            break
        time.sleep(0.2)
        for s, (proc, t0, fh) in list(running.items()):
            if proc.poll() is None:
                continue
            fh.close()
            del running[s]
            times[s] = time.perf_counter() - t0
            if proc.returncode == 0:
                done.add(s)
                if "Running stage '" in log_path(logs, s).read_text(errors="replace"):
                    ran.add(s)
                echo(f"{time.perf_counter() - t_start:7.1f} s  done  {s} ({times[s]:.1f} s)")
            else:
                failed.append(s)
                tail = log_path(logs, s).read_text(errors="replace")[-4000:]
                echo(f"pipeline: stage {s} failed (exit {proc.returncode}); log {log_path(logs, s)}:\n{tail}")
    skipped = len(deps) - len(done) - len(failed)
    echo(f"pipeline: {len(ran)} stages ran, {len(done) - len(frozen) - len(ran)} up to date, {len(failed)} failed, "
         f"{skipped} not started, {time.perf_counter() - t_start:.0f} s; slowest: "
         + ", ".join(f"{s} {t:.0f} s" for s, t in sorted(times.items(), key=lambda x: -x[1])[:5]))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m matrepro.core.pipeline", description=__doc__.splitlines()[0])
    ap.add_argument("-j", "--jobs", type=int, default=2, help="stages at a time (default 2)")
    ap.add_argument("--force", nargs="+", default=[], metavar="STAGE", help="re-run these stages even if up to date")
    ap.add_argument("--root", default=".", help="the DVC project (default: the current directory)")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error("-j must be at least 1")
    beside = Path(sys.executable).with_name("dvc")  # the dvc of this environment, else the one on PATH
    return run(Path(a.root), a.jobs, tuple(a.force), dvc=str(beside) if beside.is_file() else "dvc")


if __name__ == "__main__":
    sys.exit(main())
