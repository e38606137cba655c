"""The adversarial loop (WGAN-GP), beside ``core.train.fit``: the same seeding (``set_seed``), device
choice (``get_device``) and progress bar (tqdm, ``progress`` flag), but two models, two optimisers
and ``n_critic`` critic steps per generator step, which the supervised loop does not have.

Paper-agnostic: it takes float tensors (N, ...) of real samples and any generator / critic pair
(``generator.noise_dim`` noise in, samples out; critic: samples -> (B,) unbounded scores).

Losses (Gulrajani et al. 2017): critic loss = -W + gp_weight * GP with the Wasserstein estimate
W = mean D(real) - mean D(fake) and GP = mean (||grad D(x_hat)||_2 - 1)^2 on interpolates
x_hat = eps * real + (1 - eps) * fake, eps ~ U(0, 1) per sample; generator loss = -mean D(G(z)).
Every random draw (shuffles, noise, eps) comes from one seeded ``torch.Generator``, so the same seed
repeats a CPU run exactly.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from .errors import MatreproError
from .train import get_device, set_seed


@dataclass
class GANConfig:
    noise_dim: int = 128
    batch_size: int = 512
    epochs: int = 10
    n_critic: int = 1  # critic steps per generator step (MatGAN's disc_iters)
    lr_g: float = 1e-3
    lr_d: float = 1e-2
    betas: tuple[float, float] = (0.5, 0.9)
    gp_weight: float = 10.0
    holdout_rows: int | None = None  # evaluate held-out losses on at most this many rows

    @classmethod
    def from_dict(cls, d: dict) -> "GANConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise MatreproError(f"params.yaml: unknown GAN setting(s) {sorted(unknown)}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(float(b) for b in d["betas"])
        return cls(**d)


@dataclass
class GANHistory:
    """Per epoch (training values averaged over the epoch's steps; held-out values at its end)."""
    critic_loss: list[float] = field(default_factory=list)
    wasserstein: list[float] = field(default_factory=list)
    gp: list[float] = field(default_factory=list)
    generator_loss: list[float] = field(default_factory=list)
    holdout_critic_loss: list[float] = field(default_factory=list)
    holdout_wasserstein: list[float] = field(default_factory=list)
    holdout_gp: list[float] = field(default_factory=list)
    initial: dict = field(default_factory=dict)  # held-out values before the first step
    seconds: float = 0.0


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """mean (||grad_x D(x_hat)||_2 - 1)^2 at x_hat = eps real + (1 - eps) fake, eps ~ U(0, 1) per sample."""
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(shape, generator=generator).to(real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_losses(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float,
                  generator: torch.Generator | None = None) -> dict:
    """Wasserstein estimate, gradient penalty and critic loss (floats) on given real / fake samples."""
    gp = gradient_penalty(critic, real, fake, generator).detach()
    with torch.no_grad():
        w = critic(real).mean() - critic(fake).mean()
    return {"wasserstein": float(w), "gp": float(gp), "critic_loss": float(-w + gp_weight * gp)}


def _noise(n: int, dim: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randn(n, dim, generator=gen).to(device)


def _evaluate(generator, critic, holdout, noise, cfg, gen, device) -> dict:
    generator.eval()
    critic.eval()
    with torch.no_grad():
        fake = generator(noise)
    out = critic_losses(critic, holdout, fake, cfg.gp_weight, gen)
    return {f"holdout_{k}": v for k, v in out.items()}


def fit_wgan_gp(generator: nn.Module, critic: nn.Module, train: torch.Tensor, holdout: torch.Tensor | None,
                cfg: GANConfig, seed: int = 0, device=None, desc: str = "gan", progress: bool = True) -> GANHistory:
    """Train a WGAN-GP; returns the per-epoch history. Both models stay on ``device``, in eval mode."""
    device = device or get_device()
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    eval_gen = torch.Generator().manual_seed(seed + 1)
    generator.to(device)
    critic.to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr_d, betas=cfg.betas)
    hist = GANHistory()
    if holdout is not None and cfg.holdout_rows is not None and len(holdout) > cfg.holdout_rows:
        holdout = holdout[:cfg.holdout_rows]
    if holdout is not None:
        holdout = holdout.to(device)
        hold_noise = _noise(len(holdout), cfg.noise_dim, eval_gen, device)
        ev_state = eval_gen.get_state()
        hist.initial = _evaluate(generator, critic, holdout, hold_noise, cfg, eval_gen, device)
    t0 = time.perf_counter()
    n = len(train)
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False, mininterval=2)
    for _ in bar:
        generator.train()
        critic.train()
        perm = torch.randperm(n, generator=gen)
        sums = {"critic_loss": 0.0, "wasserstein": 0.0, "gp": 0.0}
        g_sum, d_steps, g_steps, pos = 0.0, 0, 0, 0
        while pos < n:
            for _ in range(cfg.n_critic):
                if pos >= n:
                    break
                real = train[perm[pos:pos + cfg.batch_size]].to(device)
                pos += cfg.batch_size
                with torch.no_grad():
                    fake = generator(_noise(len(real), cfg.noise_dim, gen, device))
                opt_d.zero_grad()
                w = critic(real).mean() - critic(fake).mean()
                gp = gradient_penalty(critic, real, fake, gen)
                loss_d = -w + cfg.gp_weight * gp
                loss_d.backward()
                opt_d.step()
                sums["critic_loss"] += loss_d.item()
                sums["wasserstein"] += w.item()
                sums["gp"] += gp.item()
                d_steps += 1
            opt_g.zero_grad()
            loss_g = -critic(generator(_noise(cfg.batch_size, cfg.noise_dim, gen, device))).mean()
            loss_g.backward()
            opt_g.step()
            g_sum += loss_g.item()
            g_steps += 1
        for k, v in sums.items():
            getattr(hist, k).append(v / max(d_steps, 1))
        hist.generator_loss.append(g_sum / max(g_steps, 1))
        if holdout is not None:
            eval_gen.set_state(ev_state)  # the same eps every epoch: epochs differ only by the models
            for k, v in _evaluate(generator, critic, holdout, hold_noise, cfg, eval_gen, device).items():
                getattr(hist, k).append(v)
        bar.set_postfix(critic=f"{hist.critic_loss[-1]:.4g}", W=f"{hist.wasserstein[-1]:.4g}", refresh=False)
    hist.seconds = time.perf_counter() - t0
    generator.eval()
    critic.eval()
    return hist


@torch.no_grad()
def sample(generator: nn.Module, n: int, noise_dim: int, seed: int, device=None, batch_size: int = 1024) -> np.ndarray:
    """n generated samples (numpy, batch axis first, channel axis dropped when it is 1), eval mode."""
    device = device or next(generator.parameters()).device
    generator.eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, n, batch_size):
        z = _noise(min(batch_size, n - i), noise_dim, gen, device)
        out.append(generator(z).cpu())
    x = torch.cat(out).numpy() if out else np.zeros((0, 85, 8), np.float32)
    return x[:, 0] if x.ndim == 4 and x.shape[1] == 1 else x
