"""Throughput of L-G-DCNN training on this machine, fp32 against bf16 autocast, per thread count,
and against the peers trained here (CrabNet, Roost) at the same batch size (a benchmark, not a test).

Trains the paper-size L-G-DCNN with the authors' recipe (batch by CrabNet's rule unless --batch) for
a few epochs on one training-set size of one dataset (no SWA, no early stop) and prints seconds per
epoch and training rows per second; the first epoch is a warm-up and is not counted. Needs the
snapshot (``dvc repro snapshot@crabnet_benchmark snapshot@element_properties``) and, for the peers,
``make install`` (crabnet, aviary-models).

    python benchmarks/lgdcnn_throughput.py                        # aflow bulk modulus, all 3,428 train rows
    python benchmarks/lgdcnn_throughput.py --dataset OQMD_Bandgap --n 10000 --threads 1 2 --precision fp32 bf16
    python benchmarks/lgdcnn_throughput.py --peers crabnet roost --epochs 3
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from matrepro.core.config import paper_config
from matrepro.core.train import crabnet_batch_size, get_device
from matrepro.papers.lgdcnn import experiments as lg_exp
from matrepro.papers.lgdcnn import tasks as lg_tasks


def _cfg(base: dict, n: int | None, epochs: int, batch: int | None, precision: str) -> dict:
    return dict(base, caps={"train": n, "val": 500, "test": 500},
                train={**base["train"], "max_epochs": epochs, "epochs_step": 1, "swa": False, "swa_start": 1,
                       "batch_size": batch or "auto", "precision": precision})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="aflow__ael_bulk_modulus_vrh")
    ap.add_argument("--n", type=int, default=None, help="training rows (default: all)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is warm-up")
    ap.add_argument("--threads", type=int, nargs="+", default=[2])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: CrabNet's rule)")
    ap.add_argument("--peers", nargs="*", default=[], help="also time these peers (crabnet, roost), fp32")
    args = ap.parse_args(argv)
    base = paper_config("lgdcnn", "paper")
    parts, _ = lg_tasks.load_task(args.dataset, None if args.dataset in lg_tasks.EXTENDED else 0,
                                  dict(base, caps={"train": args.n, "val": 500, "test": 500}))
    n = len(parts["train"])
    batch = args.batch or crabnet_batch_size(n)
    print(f"device {get_device()}, torch {torch.__version__}, {platform.processor() or platform.machine()}; "
          f"dataset {args.dataset}, {n} training rows, batch {batch}, {args.epochs} epochs (first = warm-up)")
    print(f"{'model':>8} {'precision':>9} {'threads':>7} {'s/epoch':>8} {'rows/s':>8}")
    results = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for prec in args.precision:
            cfg = _cfg(base, args.n, args.epochs, batch, prec)
            # measure: run 1 warm-up epoch, then `epochs` epochs, and take the difference
            sec = []
            for e in (1, args.epochs):
                c = dict(cfg, train={**cfg["train"], "max_epochs": e})
                t0 = time.perf_counter()
                lg_exp.train_network(parts, "lgdcnn", c, seed=42, desc=f"{prec} t{threads} {e}ep")
                sec.append(time.perf_counter() - t0)
            per = (sec[1] - sec[0]) / (args.epochs - 1)
            results[("lgdcnn", prec, threads)] = per
            print(f"{'lgdcnn':>8} {prec:>9} {threads:>7} {per:>8.2f} {n / per:>8.0f}", flush=True)
        for p in args.peers:
            from matrepro.papers.lgdcnn import peers

            sec = []
            for e in (2, 2 + 2 * max(1, (args.epochs - 1) // 2)):  # CrabNet runs epochs in multiples of 2*epochs_step
                c = dict(base, train={**base["train"], "max_epochs": e, "epochs_step": 1, "batch_size": batch})
                pr = peers.train_peer(p, parts, c, seed=42, desc=f"{p} t{threads}")
                sec.append((pr.seconds, pr.epochs))
            per = (sec[1][0] - sec[0][0]) / max(1, sec[1][1] - sec[0][1])
            results[(p, "fp32", threads)] = per
            print(f"{p:>8} {'fp32':>9} {threads:>7} {per:>8.2f} {n / per:>8.0f}", flush=True)
    for threads in args.threads:
        f32 = results.get(("lgdcnn", "fp32", threads))
        if f32 and ("lgdcnn", "bf16", threads) in results:
            print(f"threads {threads}: bf16 speed-up over fp32 x{f32 / results[('lgdcnn', 'bf16', threads)]:.2f}")
        for p in args.peers:
            if f32 and (p, "fp32", threads) in results:
                print(f"threads {threads}: throughput ours/{p} at batch {batch} (fp32) = "
                      f"{results[(p, 'fp32', threads)] / f32:.2f}")
    print("s/epoch = (time of E epochs - time of 1 epoch) / (E - 1): model set-up and the warm-up epoch are excluded; "
          "it includes the per-epoch validation pass on 500 rows.")


if __name__ == "__main__":
    main()
