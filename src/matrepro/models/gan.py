"""MatGAN's generator and critic on the 85 x 8 composition table, re-implemented in torch.

Template: Dan et al., npj Comput. Mater. 6, 84 (2020), originofmatter/MatGAN
``gan_model/WGANGP_OQMD.py`` @ e36c7449 (read, not copied). Tables are (B, 1, 85, 8), NCHW: element
x count 1..8 (``features.atom_table``).

Padding is TF's "SAME" exactly, not only in shape: ``SameConv2d`` pads total = max((ceil(n/s) - 1) s
+ k - n, 0) with the odd cell on the far (bottom / right) side, as TF does, and
``SameConvTranspose2d`` is the exact adjoint of that convolution for a given output size, which is
what TF's ``conv2d_transpose(padding="SAME", output_shape=...)`` computes (the gradient of conv2d).
Two of the generator's layers pad asymmetrically (width 4 -> 8 with a 5 x 5 kernel and stride 2;
height 11 -> 22 with a 3 x 3 kernel and stride 2), where a symmetric ``padding`` + ``output_padding``
would give the right shape but shift the output by one cell.

Shapes (H, W), channels at width 1:

* critic: (85, 8) 1 -> (85, 8) 32 -> (43, 8) 32 -> (43, 8) 64 -> (22, 8) 64 -> (22, 8) 128
  -> (11, 8) 128 -> (6, 4) 256 -> flatten 6,144 -> Linear -> 1;
* generator: noise 128 -> Linear 6,144 -> (6, 4) 256 -> (11, 8) 128 -> (11, 8) 128 -> (22, 8) 64
  -> (22, 8) 64 -> (43, 8) 32 -> (43, 8) 32 -> (85, 8) 1 -> sigmoid.

``width`` scales every channel count (``max(1, round(c * width))``; 1.0 = MatGAN) so that the smoke
profile can run a slim model; the generator's output keeps one channel.

Parameter counts at width 1 (``count_parameters``; asserted in tests/test_gan_models.py):

* ``matgan_generator`` (noise 128): 1,911,393;
* ``matgan_critic``: 1,113,377 with norm "layer" or "batch" (both have a per-channel scale and shift;
  batch norm's running statistics are buffers), 1,112,033 with norm "none";
* ``matgan_finetune`` (hidden 256): 2,680,609 (the critic body, 1,107,232, plus a 6,144 -> 256 -> 1 head).

Weights use torch's default initialisation. MatGAN draws every weight from N(0, 1) and sets biases to
zero; ``matgan_normal_init_`` reproduces that (it is what makes a critic's first losses astronomically
large, as the 4.1e13 of the Symmetry abstract).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import MatreproError
from . import register

H, W = 85, 8
# (out channels, kernel, stride) of MatGAN's seven critic convolutions
CRITIC_LAYERS = [(32, 3, (1, 1)), (32, 3, (2, 1)), (64, 3, (1, 1)), (64, 3, (2, 1)), (128, 3, (1, 1)),
                 (128, 3, (2, 1)), (256, 5, (2, 2))]
CRITIC_SHAPES = [(85, 8), (43, 8), (43, 8), (22, 8), (22, 8), (11, 8), (6, 4)]  # after each convolution
# (out channels, kernel, stride, output size) of the generator's transposed convolutions, from (256, 6, 4)
GENERATOR_LAYERS = [(128, 5, (2, 2), (11, 8)), (128, 3, (1, 1), (11, 8)), (64, 3, (2, 1), (22, 8)),
                    (64, 3, (1, 1), (22, 8)), (32, 3, (2, 1), (43, 8)), (32, 3, (1, 1), (43, 8)),
                    (1, 3, (2, 1), (85, 8))]
SEED_SHAPE = (256, 6, 4)  # the generator's first map (channels at width 1, H, W)


def _ch(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding (before, after) of one axis: output ceil(size / stride); the odd cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "SAME" padding (asymmetric where TF pads asymmetrically)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride=(1, 1)):
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        (t, b), (l, r) = same_padding(x.shape[-2], kh, sh), same_padding(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (l, r, t, b)))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """TF's ``conv2d_transpose(padding="SAME")`` to a fixed ``out_size``: the adjoint of
    ``SameConv2d`` on an ``out_size`` input. The full transposed output is cut by the "SAME" padding
    before (``padding``) and after (the slice), so odd paddings keep TF's alignment."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride, out_size: tuple[int, int]):
        pads = tuple(same_padding(n, kernel, s)[0] for n, s in zip(out_size, stride))
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=pads)
        self.out_size = tuple(out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expect = tuple(-(-n // s) for n, s in zip(self.out_size, self.stride))
        if tuple(x.shape[-2:]) != expect:
            raise MatreproError(f"SameConvTranspose2d to {self.out_size} expects input {expect}, "
                                f"got {tuple(x.shape[-2:])}")
        y = super().forward(x)
        return y[..., : self.out_size[0], : self.out_size[1]]


def _norm(kind: str, c: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, c)  # per sample, over (C, H, W); per-channel scale and shift
    if kind == "batch":
        return nn.BatchNorm2d(c)
    if kind == "none":
        return nn.Identity()
    raise MatreproError(f"params.yaml: unknown critic norm {kind!r} (layer | batch | none)")


class CriticBody(nn.Module):
    """MatGAN's seven critic convolutions, each followed by a norm (none after the first, as in
    MatGAN) and LeakyReLU(0.2); ``forward`` returns the flattened map (B, n_features)."""

    def __init__(self, width: float = 1.0, norm: str = "layer"):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i, (c, k, s) in enumerate(CRITIC_LAYERS):
            c = _ch(c, width)
            layers.append(SameConv2d(c_in, c, k, stride=s))
            if i > 0:
                layers.append(_norm(norm, c))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c
        self.net = nn.Sequential(*layers)
        self.n_features = c_in * CRITIC_SHAPES[-1][0] * CRITIC_SHAPES[-1][1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


@register("matgan_critic")
class MatGANCritic(nn.Module):
    """MatGAN's discriminator as a Wasserstein critic: 7 convolutions -> flatten -> LeakyReLU ->
    Linear -> 1, with an unbounded output (no sigmoid).

    ``forward(x)`` (B, 1, 85, 8) -> (B,). ``features(x)`` -> (B, n_features): the flattened, activated
    penultimate vector (the input of the final Linear), the GAN representation. ``n_features`` (also
    ``feature_dim``) = 6 x 4 x round(256 width) = 6,144 at width 1.

    ``norm``: "batch" is MatGAN's batch norm; "layer" (default) is per-sample layer norm over
    (C, H, W) (``GroupNorm(1, C)``); "none" has no normalisation. Because the WGAN-GP gradient
    penalty is per sample, batch norm in the critic is discouraged by Gulrajani et al. (2017) —
    "layer" is therefore a documented deviation from MatGAN.

    Parameters at width 1: 1,113,377 ("layer" or "batch"), 1,112,033 ("none").
    """

    def __init__(self, width: float = 1.0, norm: str = "layer"):
        super().__init__()
        self.body = CriticBody(width, norm)
        self.n_features = self.body.n_features
        self.out = nn.Linear(self.n_features, 1)

    @property
    def feature_dim(self) -> int:
        return self.n_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x)).squeeze(-1)


@register("matgan_generator")
class MatGANGenerator(nn.Module):
    """MatGAN's generator: noise (B, noise_dim) -> Linear 6 x 4 x 256 (BatchNorm1d, ReLU) -> reshape
    (256, 6, 4) -> 7 transposed convolutions (BatchNorm2d + ReLU after all but the last) -> sigmoid
    table (B, 1, 85, 8) in [0, 1].

    (MatGAN reshapes the Linear output channels-last, here channels-first: the two differ by a fixed
    permutation of the Linear's outputs, so they describe the same family of functions.)

    ``init_density`` (optional, in (0, 1)): the last layer's bias starts at logit(init_density), so
    that every cell of a fresh generator's table starts near that value instead of 0.5. With the
    training tables' density (~3 filled cells of 680, 0.005) the generator starts from the sparse
    regime of real compositions rather than from "every element present" (the prior-probability
    bias initialisation of Lin et al. 2017, RetinaNet); None keeps torch's default.

    Parameters at width 1 (noise 128): 1,911,393.
    """

    def __init__(self, noise_dim: int = 128, width: float = 1.0, init_density: float | None = None):
        super().__init__()
        self.noise_dim = int(noise_dim)
        c0 = _ch(SEED_SHAPE[0], width)
        self.seed_shape = (c0,) + SEED_SHAPE[1:]
        n0 = c0 * SEED_SHAPE[1] * SEED_SHAPE[2]
        self.fc = nn.Sequential(nn.Linear(self.noise_dim, n0), nn.BatchNorm1d(n0), nn.ReLU())
        layers: list[nn.Module] = []
        c_in = c0
        last = len(GENERATOR_LAYERS) - 1
        for i, (c, k, s, size) in enumerate(GENERATOR_LAYERS):
            c = 1 if i == last else _ch(c, width)
            layers.append(SameConvTranspose2d(c_in, c, k, s, size))
            layers += [nn.Sigmoid()] if i == last else [nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        if init_density is not None:
            p = float(init_density)
            if not 0.0 < p < 1.0:
                raise MatreproError(f"params.yaml: generator init_density must lie in (0, 1), got {init_density!r}")
            with torch.no_grad():
                layers[-2].bias.fill_(math.log(p / (1.0 - p)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, *self.seed_shape))


@register("matgan_finetune")
class MatGANRegressor(nn.Module):
    """The "fine-tuned critic" representation: the critic body (every layer up to
    ``MatGANCritic.features``), optionally initialised from a trained critic, + a regression head
    Linear(n_features, hidden) -> ReLU -> Dropout -> Linear(hidden, 1). ``forward(x)`` -> (B,).

    Parameters at width 1, hidden 256: 2,680,609.
    """

    def __init__(self, critic_state: dict | None = None, width: float = 1.0, norm: str = "layer",
                 hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.body = CriticBody(width, norm)
        self.n_features = self.body.n_features
        self.head = nn.Sequential(nn.Linear(self.n_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))
        if critic_state is not None:
            self.load_critic(critic_state)

    def load_critic(self, state_dict: dict) -> None:
        """Copy a trained ``MatGANCritic``'s body weights (its ``body.*`` entries; the critic's output
        layer is ignored). Strict: every body key present, no extra body key, the same shapes —
        otherwise ``MatreproError`` (e.g. another width or norm)."""
        body = {k[len("body."):]: v for k, v in state_dict.items() if k.startswith("body.")}
        if not body:
            raise MatreproError("critic state has no 'body.*' entries: not a matgan_critic state dict")
        try:
            self.body.load_state_dict(body, strict=True)
        except RuntimeError as exc:
            raise MatreproError(f"critic state does not match the fine-tuning body: {exc}") from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).squeeze(-1)


@torch.no_grad()
def matgan_normal_init_(module: nn.Module, std: float = 1.0) -> nn.Module:
    """MatGAN's initialisation, in place: every convolution and Linear weight ~ N(0, std), biases 0;
    norm scales 1 and shifts 0 (as torch's default). Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            m.weight.normal_(0.0, std)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()
    return module
