"""MatGAN's generator and critic (models.gan) and the WGAN-GP loop (core.adversarial)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from matrepro.core.adversarial import GANConfig, critic_losses, fit_wgan_gp, gradient_penalty, sample
from matrepro.core.errors import MatreproError
from matrepro.models import build_model, count_parameters
from matrepro.models.gan import MatGANCritic, MatGANGenerator, MatGANRegressor


def test_shapes_follow_matgan_same_padding():
    g, c = MatGANGenerator(), MatGANCritic()
    g.eval()
    x = g(torch.randn(3, 128))
    assert x.shape == (3, 1, 85, 8) and float(x.min()) >= 0 and float(x.max()) <= 1
    sizes, h = [], x
    for m in c.body.net:
        h = m(h)
        if isinstance(m, torch.nn.Conv2d):
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(32, 85, 8), (32, 43, 8), (64, 43, 8), (64, 22, 8), (128, 22, 8), (128, 11, 8), (256, 6, 4)]
    assert c(x).shape == (3,) and c.features(x).shape == (3, 6144) and c.n_features == 6144


def test_parameter_counts_at_full_width():
    assert count_parameters(MatGANGenerator()) == 1_911_393
    assert count_parameters(MatGANCritic()) == 1_113_377
    assert count_parameters(MatGANCritic(norm="batch")) == 1_113_377
    assert count_parameters(MatGANCritic(norm="none")) == 1_112_033
    assert isinstance(build_model("matgan_critic", width=0.125), MatGANCritic)
    with pytest.raises(MatreproError, match="norm"):
        MatGANCritic(norm="weird")


def test_gradient_penalty_of_a_linear_critic_is_known():
    """D(x) = w . x has gradient w everywhere, so GP = (||w|| - 1)^2 for any real and fake."""
    w = torch.full((85 * 8,), 0.1)

    def critic(x):
        return x.flatten(1) @ w

    real, fake = torch.rand(5, 1, 85, 8), torch.rand(5, 1, 85, 8)
    expected = (0.1 * (85 * 8) ** 0.5 - 1) ** 2
    assert float(gradient_penalty(critic, real, fake)) == pytest.approx(expected, rel=1e-5)
    out = critic_losses(critic, real, fake, gp_weight=10.0)
    assert out["wasserstein"] == pytest.approx(float(critic(real).mean() - critic(fake).mean()), rel=1e-5)
    assert out["critic_loss"] == pytest.approx(-out["wasserstein"] + 10 * expected, rel=1e-5)


def test_penalty_is_taken_on_interpolates():
    seen = []

    def critic(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.ones(4, 1, 85, 8), torch.zeros(4, 1, 85, 8)
    gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    x_hat = seen[0]
    eps = x_hat[:, 0, 0, 0]
    assert ((eps > 0) & (eps < 1)).all()  # strictly between the two samples, one eps per sample
    assert torch.allclose(x_hat, eps.view(-1, 1, 1, 1).expand_as(x_hat))


def _tables(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 85, 8), np.float32)
    for i in range(n):  # structured: 2-3 light elements with small counts
        for e in rng.choice(20, rng.integers(2, 4), replace=False):
            x[i, 0, e, rng.integers(0, 3)] = 1
    return torch.tensor(x)


def _run(seed):
    torch.manual_seed(123)  # the models' initial weights; fit_wgan_gp seeds everything else
    g, c = MatGANGenerator(width=0.125), MatGANCritic(width=0.125)
    x = _tables()
    cfg = GANConfig(batch_size=32, epochs=3, n_critic=2, lr_d=1e-3, lr_g=1e-3)
    return fit_wgan_gp(g, c, x[:96], x[96:], cfg, seed=seed, progress=False), g, c


def test_short_run_learns_and_repeats_exactly():
    h1, g1, c1 = _run(0)
    h2, g2, _ = _run(0)
    h3, _, _ = _run(1)
    assert len(h1.critic_loss) == 3 and len(h1.holdout_wasserstein) == 3
    # the critic learns to tell real from generated tables: the held-out Wasserstein estimate grows
    # from its value before training, and the penalised training loss falls from the first epoch
    assert h1.holdout_wasserstein[-1] > h1.initial["holdout_wasserstein"]
    assert h1.critic_loss[-1] < h1.critic_loss[0]
    assert h1.critic_loss == h2.critic_loss and h1.holdout_critic_loss == h2.holdout_critic_loss
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values()))
    assert h3.critic_loss != h1.critic_loss
    s = sample(g1, 10, 128, seed=0)
    assert s.shape == (10, 85, 8) and np.array_equal(s, sample(g1, 10, 128, seed=0))


def test_finetune_regressor_loads_the_critic_body():
    c = MatGANCritic(width=0.125)
    r = MatGANRegressor(width=0.125)
    r.load_critic(c.state_dict())
    for k, v in c.body.state_dict().items():
        assert torch.equal(r.body.state_dict()[k], v)
    assert r(torch.zeros(2, 1, 85, 8)).shape == (2,)
    with pytest.raises(MatreproError, match="does not match"):
        MatGANRegressor(width=0.25).load_critic(c.state_dict())


def test_gan_config_rejects_unknown_keys():
    assert GANConfig.from_dict({"epochs": 2, "betas": [0.5, 0.9]}).betas == (0.5, 0.9)
    with pytest.raises(MatreproError, match="unknown GAN setting"):
        GANConfig.from_dict({"epochz": 2})


def test_generator_init_density_sets_the_starting_table():
    torch.manual_seed(0)
    g = build_model("matgan_generator", noise_dim=16, width=0.125, init_density=0.005).eval()
    with torch.no_grad():
        x = g(torch.randn(32, 16))
    # BatchNorm + ReLU feed the last layer small inputs: every cell starts near the density, far below 0.5
    assert x.shape == (32, 1, 85, 8) and abs(float(x.mean()) - 0.005) < 0.004 and float(x.max()) < 0.5
    plain = build_model("matgan_generator", noise_dim=16, width=0.125).eval()
    with torch.no_grad():
        assert abs(float(plain(torch.randn(32, 16)).mean()) - 0.5) < 0.1  # torch's default: about 0.5
    assert count_parameters(g) == count_parameters(plain)
    with pytest.raises(MatreproError, match="init_density"):
        build_model("matgan_generator", init_density=1.0)
