"""The lgdcnn per-dataset stages (dvc.yaml), one process each.

    python -m matrepro.papers.lgdcnn.run plan             # results/lgdcnn/plan/<task>.json for the 28 tasks
    python -m matrepro.papers.lgdcnn.run task <task>      # results/lgdcnn/tasks/<task>/
    python -m matrepro.papers.lgdcnn.run curve <task>     # results/lgdcnn/curves/<task>/
    python -m matrepro.papers.lgdcnn.run warm [<task> ...] # fill the run cache (start N of these, one thread each)
    python -m matrepro.papers.lgdcnn.run warm curve_<task>  # the same for a learning curve's runs

``warm`` trains the single runs (task, fold, model, seed; baselines) of the listed tasks into the
run cache (``benchmark.run_cache_dir()``), claiming each run with a file so that several processes
(or machines sharing the cache) split the work; the stages then gather from the cache in seconds.
A claim left by a killed process is cleared with ``--clear-stale`` when no worker is running.

``plan`` resolves params.yaml (profile, regime, folds, seeds, caps, recipe) into one small JSON per
task; each ``task`` stage depends on its own plan file only, not on params.yaml, so changing one
task's settings re-runs that task and no other. The stage reads nothing else from params.yaml.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from ...core.config import paper_config
from ...core.errors import MatreproError
from ...features.composition import MAX_SLOTS
from .tasks import all_tasks, task_config

PLAN_DIR = Path("results/lgdcnn/plan")
TASK_DIR = Path("results/lgdcnn/tasks")
CURVE_DIR = Path("results/lgdcnn/curves")
SUMMARY = Path("results/lgdcnn/data_summary.csv")
# the keys of the lgdcnn config that reach a benchmark run (everything else stays out of the plan)
PLAN_KEYS = ("profile", "task", "regime", "folds", "seeds", "caps", "split_seed", "matbench_val_fraction", "drop_unary",
             "element_table", "benchmark_models", "benchmark_peers", "peers", "train", "baselines")


def task_plan(cfg: dict, task: str, summary=None) -> dict:
    """The task's plan; with ``summary`` (data_summary.csv) it carries the task's element-slot count
    (the largest element count over all its rows, capped at 16), so the stage need not parse every row."""
    t = task_config(cfg, task)
    plan = {k: t[k] for k in PLAN_KEYS if k in t}
    plan["models"] = {m: t["models"].get(m, {}) for m in t["benchmark_models"]}
    if summary is not None:
        plan["n_slots"] = int(min(summary.set_index("task").loc[task, "max elements"], MAX_SLOTS))
    return plan


def curve_plan(cfg: dict, task: str, summary=None) -> dict:
    from .benchmark import curve_config

    t = curve_config(cfg, task)
    plan = {k: t[k] for k in PLAN_KEYS if k in t}
    if summary is not None:
        plan["n_slots"] = int(min(summary.set_index("task").loc[task, "max elements"], MAX_SLOTS))
    lc = t["learning_curves"]
    plan["models"] = {m: t["models"].get(m, {}) for m in lc["models"] if m in t["models"]}
    plan["learning_curves"] = lc
    return plan


def write_plans(cfg: dict, out: Path = PLAN_DIR, summary_csv: Path | None = SUMMARY) -> list[Path]:
    import pandas as pd

    summary = pd.read_csv(summary_csv) if summary_csv is not None and Path(summary_csv).is_file() else None
    out.mkdir(parents=True, exist_ok=True)
    for f in out.glob("*.json"):
        f.unlink()
    paths = []
    for task in all_tasks(cfg):
        paths.append(out / f"{task}.json")
        paths[-1].write_text(json.dumps(task_plan(cfg, task, summary), indent=1, sort_keys=True) + "\n")
    for task in cfg["learning_curves"]["datasets"]:
        paths.append(out / f"curve_{task}.json")
        paths[-1].write_text(json.dumps(curve_plan(cfg, task, summary), indent=1, sort_keys=True) + "\n")
    return paths


def read_plan(path: Path) -> dict:
    if not path.is_file():
        raise MatreproError(f"{path}: no plan; run `dvc repro lgdcnn_plan` first")
    return json.loads(path.read_text())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m matrepro.papers.lgdcnn.run", description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["plan", "task", "curve", "warm"])
    ap.add_argument("task", nargs="*")
    ap.add_argument("--clear-stale", action="store_true", help="warm: drop claims without a finished run first")
    ap.add_argument("--no-cache", action="store_true", help="retrain every run instead of reusing the run cache")
    a = ap.parse_intermixed_args(argv)  # options may follow the task names
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(int(os.environ.get("MATREPRO_THREADS", 2)))
    if a.what == "plan":
        for p in write_plans(paper_config("lgdcnn")):
            print(p)
        return 0
    from . import benchmark

    if a.what == "warm":
        names = a.task or all_tasks(paper_config("lgdcnn"))
        benchmark.warm(names, lambda t: read_plan(PLAN_DIR / f"{t}.json"), clear_stale=a.clear_stale)
        return 0
    if len(a.task) != 1:
        ap.error(f"{a.what} needs one task name")
    task = a.task[0]
    if a.what == "task":
        plan = read_plan(PLAN_DIR / f"{task}.json")
        print(f"lgdcnn {task}: profile {plan['profile']}, regime {plan['regime']}, folds {plan['folds']}, "
              f"seeds {plan['seeds']}, caps {plan['caps']}, at most {plan['train']['max_epochs']} epochs", flush=True)
        out = TASK_DIR / task
        for f in out.glob("*") if out.is_dir() else []:
            f.unlink()
        benchmark.run_task(task, plan, out, use_cache=not a.no_cache)
    else:
        plan = read_plan(PLAN_DIR / f"curve_{task}.json")
        benchmark.run_curve(task, plan, CURVE_DIR / task, use_cache=not a.no_cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
