"""Throughput of L-G-DCNN training on this machine (a benchmark, not a test).

Trains the paper-size L-G-DCNN (8.64 M parameters) with the CrabNet recipe of params.yaml
(profile in force, batch size as that profile sets it) for a few epochs on two training-set sizes
of one dataset, and prints seconds per epoch and training samples per second. Needs the snapshot
(``dvc repro snapshot@crabnet_benchmark snapshot@element_properties``).

    python benchmarks/lgdcnn_throughput.py                       # OQMD band gap, 1,000 and 10,000 rows
    python benchmarks/lgdcnn_throughput.py --sizes 2500 20000 --epochs 3 --threads 2
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from matrepro.core.config import paper_config
from matrepro.core.train import get_device
from matrepro.papers.lgdcnn import experiments as lg_exp
from matrepro.papers.lgdcnn import tasks as lg_tasks


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="OQMD_Bandgap")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--profile", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = paper_config("lgdcnn", args.profile)
    print(f"device {get_device()}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{platform.processor() or platform.machine()}; profile {base['profile']}; dataset {args.dataset}")
    print(f"{'train rows':>10} {'batch':>6} {'slots':>5} {'s/epoch':>8} {'samples/s':>10}")
    for n in args.sizes:
        cfg = dict(base, caps={"train": n, "val": 500, "test": 500},
                   train={**base["train"], "max_epochs": args.epochs, "swa": False, "patience": 10 ** 9})
        parts, _ = lg_tasks.load_task(args.dataset, None, cfg)
        t0 = time.perf_counter()
        tr = lg_exp.train_network(parts, "lgdcnn", cfg, seed=42, desc=f"n={n}")
        sec = (time.perf_counter() - t0) / tr.history.epochs
        print(f"{len(parts['train']):>10} {tr.batch_size:>6} {tr.n_slots:>5} {sec:>8.2f} {len(parts['train']) / sec:>10.0f}")
    print("s/epoch includes the per-epoch validation pass on 500 rows.")


if __name__ == "__main__":
    main()
