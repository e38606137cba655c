"""Which weight-averaging rule does L-G-DCNN's test MAE need? (a benchmark, not a test)

CrabNet's SWA wrapper, which the L-G-DCNN authors use unchanged, measures the validation MAE after
every batch of a check epoch and averages only the latest near-best weights (``swa_rule: crabnet``,
core/swa.py). Until 2026-12-06 this repository averaged, uniformly, every check that beat the
previous best since epoch 19 (``swa_rule: uniform``), so the weights of early, poor cycles stayed
in the final model while CrabNet-here used its own rule. This trains L-G-DCNN with the task's cpu
plan (all rows, the authors' recipe otherwise, fold 0, its seeds) under each rule and prints the
test MAE, mean ± standard deviation over seeds, beside CrabNet-here's on the same rows. Runs go
through the lgdcnn run cache: the ``crabnet`` runs are the task stage's own.

    OMP_NUM_THREADS=1 python benchmarks/lgdcnn_swa_rule.py steels phonons
    OMP_NUM_THREADS=1 python benchmarks/lgdcnn_swa_rule.py --rule uniform steels   # one rule
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from matrepro.core.config import paper_config
from matrepro.papers.lgdcnn import benchmark, run


def _stats(maes: list[float]) -> str:
    sd = np.std(maes, ddof=1) if len(maes) > 1 else float("nan")
    return f"{np.mean(maes):.4g} ± {sd:.2g} (n={len(maes)}: {', '.join(f'{m:.4g}' for m in maes)})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+")
    ap.add_argument("--rule", nargs="+", default=["crabnet", "uniform"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = paper_config("lgdcnn", "cpu")
    for task in a.tasks:
        for rule in a.rule:
            plan = json.loads(json.dumps(run.task_plan(cfg, task)))
            plan["train"]["swa_rule"] = rule
            peers = ["crabnet"] if rule == a.rule[0] else []  # CrabNet-here is the same under either rule
            res, _ = benchmark.run_fold(task, plan["folds"][0], plan, {}, peers=peers, baselines=False)
            ours = res["models"]["lgdcnn"]["per_seed"]
            print(f"{task} L-G-DCNN swa_rule={rule}: MAE {_stats([s['mae'] for s in ours])}; epochs "
                  f"{[s['epochs'] for s in ours]}", flush=True)
            if peers and "crabnet" in res["models"]:
                print(f"{task} CrabNet-here: MAE {_stats([s['mae'] for s in res['models']['crabnet']['per_seed']])}",
                      flush=True)


if __name__ == "__main__":
    main()
