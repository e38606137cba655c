"""Does bf16 autocast change L-G-DCNN's test MAE? (a benchmark, not a test)

Trains L-G-DCNN with the task's cpu plan (all rows, the authors' recipe, fold 0, its seeds) in fp32
and with bf16 autocast, and prints the MAE of each precision, mean ± standard deviation over seeds,
and whether the difference stays inside the larger seed spread (the rule for adopting bf16 in the
cpu profile). Runs go through the lgdcnn run cache, so the fp32 runs are the benchmark's own.

    OMP_NUM_THREADS=1 python benchmarks/lgdcnn_bf16_mae.py steels jdft2d          # both precisions
    OMP_NUM_THREADS=1 python benchmarks/lgdcnn_bf16_mae.py --precision bf16 steels  # one (run two side by side)
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from matrepro.core.config import paper_config
from matrepro.papers.lgdcnn import benchmark, run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = paper_config("lgdcnn", "cpu")
    for task in a.tasks:
        out = {}
        for prec in a.precision:
            plan = json.loads(json.dumps(run.task_plan(cfg, task)))
            plan["train"]["precision"] = prec
            res, _ = benchmark.run_fold(task, plan["folds"][0], plan, {}, peers=[], baselines=False)
            maes = [s["mae"] for s in res["models"]["lgdcnn"]["per_seed"]]
            out[prec] = maes
            print(f"{task} {prec}: MAE {np.mean(maes):.4g} ± {np.std(maes, ddof=1) if len(maes) > 1 else float('nan'):.2g} "
                  f"(seeds {plan['seeds']}: {', '.join(f'{m:.4g}' for m in maes)}; epochs "
                  f"{[s['epochs'] for s in res['models']['lgdcnn']['per_seed']]}, CPU s "
                  f"{[s['cpu_seconds'] for s in res['models']['lgdcnn']['per_seed']]})", flush=True)
        if {"fp32", "bf16"} <= set(out) and len(out["fp32"]) > 1:
            d = abs(np.mean(out["bf16"]) - np.mean(out["fp32"]))
            spread = max(np.std(out["fp32"], ddof=1), np.std(out["bf16"], ddof=1))
            print(f"{task}: |bf16 - fp32| = {d:.3g}, larger seed std {spread:.3g} -> "
                  f"{'within' if d <= spread else 'OUTSIDE'} the seed spread")


if __name__ == "__main__":
    main()
