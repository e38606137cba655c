"""gan throughput on this machine (a benchmark, not a test).

Prints WGAN-GP training compositions per second (MatGAN's generator and critic at the given
width, batch and critic steps) and featurisation rows per second: the trained-critic features of
the 85 x 8 table (table encoding included) against matminer's Magpie preset, on the same OQMD
formulas from the data mirror.

    python benchmarks/gan_throughput.py --rows 4096 --width 1.0 --n-critic 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from matrepro.core.adversarial import GANConfig, fit_wgan_gp  # noqa: E402
from matrepro.features.atom_table import encode_formulas  # noqa: E402
from matrepro.features.composition import magpie_features  # noqa: E402
from matrepro.models.gan import MatGANCritic, MatGANGenerator  # noqa: E402
from matrepro.papers.gan.represent import gan_features  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--n-critic", type=int, default=1)
    ap.add_argument("--magpie-rows", type=int, default=2000)
    a = ap.parse_args(argv)
    mirror = Path(os.environ.get("MATREPRO_DATA_MIRROR", ROOT.parent / "shared" / "data"))
    formulas = pd.read_csv(mirror / "crabnet_benchmark/benchmark_data/OQMD_Formation_Enthalpy/train.csv").formula
    formulas = formulas.sample(a.rows, random_state=0).tolist()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, width {a.width}, batch {a.batch}, "
          f"n_critic {a.n_critic}, {a.rows} OQMD formulas")

    t0 = time.perf_counter()
    tables, status = encode_formulas(formulas)
    t_enc = time.perf_counter() - t0
    x = torch.as_tensor(tables[(status.status != "unencodable").to_numpy()], dtype=torch.float32).unsqueeze(1)
    torch.manual_seed(0)
    g, c = MatGANGenerator(width=a.width), MatGANCritic(width=a.width)
    cfg = GANConfig(batch_size=a.batch, epochs=1, n_critic=a.n_critic)
    h = fit_wgan_gp(g, c, x, None, cfg, seed=0, progress=False)
    print(f"WGAN-GP training: {len(x) / h.seconds:,.0f} compositions/s (one epoch, {h.seconds:.1f} s)")

    t0 = time.perf_counter()
    gan_features(c, tables)
    t_feat = time.perf_counter() - t0
    print(f"GAN features: {len(formulas) / (t_enc + t_feat):,.0f} rows/s (table encoding {t_enc:.2f} s + "
          f"critic {t_feat:.2f} s, {c.n_features} features)")
    m = formulas[:a.magpie_rows]
    t0 = time.perf_counter()
    magpie_features(m)
    t_mag = time.perf_counter() - t0
    print(f"Magpie (matminer): {len(m) / t_mag:,.0f} rows/s ({t_mag:.1f} s for {len(m)} rows, 132 features)")


if __name__ == "__main__":
    main()
