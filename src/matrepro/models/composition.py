"""Composition models of L-G-DCNN (Du et al., JCTC 20, 6756 (2024)), re-implemented from the
paper's description (its code is GPL-3.0 and is not copied).

Input: element slots ``z`` (B, L) with 0 = padding and atomic fractions ``frac`` (B, L).
Every model maps them to per-element features (B, L, d) (``element_features``: the layer the CECV
analysis hooks), then a per-element Linear(d -> 3), a mean over the real elements, and returns
(B, 2) = [prediction * sigmoid(logit), log-std] as CrabNet does. ``predict`` uses column 0; the
RobustL1 loss uses both.

Faithful by default to the authors' code, with each quirk a switch (see data/deviations.yaml):
``sin_only`` fraction tables, fraction ``resolution`` 2000 / 5000, padded slots not masked inside
the network (``mask_padding=False``), one attention MLP shared by the LSTM and GRU stages, and
``blocks=2`` meaning three residual double-conv blocks (the kernel-1 max-pool between blocks is an
identity and is omitted).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register

FRACTION_NOISE = 0.02  # train-time multiplicative fraction noise (CrabNet's "fudge")


class FractionEncoder(nn.Module):
    """Fixed sinusoidal lookup of a fraction (linear or log transform) into ``dim`` values."""

    def __init__(self, dim: int = 256, resolution: int = 2000, log: bool = False, sin_only: bool = True):
        super().__init__()
        self.resolution, self.log = resolution, log
        x = torch.arange(resolution, dtype=torch.float32).unsqueeze(1)
        i = torch.arange(dim, dtype=torch.float32).unsqueeze(0)
        arg = x / torch.pow(50.0, 2 * i / dim)
        pe = torch.sin(arg)
        if not sin_only:  # CrabNet: cos in the odd dimensions
            pe[:, 1::2] = torch.cos(arg[:, 1::2])
        self.register_buffer("pe", pe, persistent=False)

    def index(self, frac: torch.Tensor) -> torch.Tensor:
        x = frac
        if self.log:
            x = torch.clamp(0.0025 * torch.log2(x) ** 2, max=1.0)
        x = torch.clamp(x, min=1.0 / self.resolution)
        return torch.round(x * self.resolution).long() - 1

    def forward(self, frac: torch.Tensor) -> torch.Tensor:
        return self.pe[self.index(frac)]


class CompositionEmbedding(nn.Module):
    """Frozen element table -> Linear(d_el -> d_model) * 2^s, plus the two fraction encodings
    (linear in dims [0, d/2), log in [d/2, d)), each scaled by 2^((1 - s_k)^2)."""

    def __init__(self, element_table: np.ndarray, d_model: int = 512, resolution: int = 2000,
                 sin_only: bool = True, fraction_noise: float = FRACTION_NOISE):
        super().__init__()
        table = torch.as_tensor(np.asarray(element_table, np.float32))
        self.table = nn.Embedding.from_pretrained(table, freeze=True)
        self.proj = nn.Linear(table.shape[1], d_model)
        self.emb_scaler = nn.Parameter(torch.tensor(1.0))
        self.pos_scaler = nn.Parameter(torch.tensor(1.0))
        self.pos_scaler_log = nn.Parameter(torch.tensor(1.0))
        half = d_model // 2
        self.frac_lin = FractionEncoder(half, resolution, log=False, sin_only=sin_only)
        self.frac_log = FractionEncoder(half, resolution, log=True, sin_only=sin_only)
        self.d_model, self.fraction_noise = d_model, fraction_noise

    def noisy(self, z: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        """Train-time augmentation: frac * (1 + N(0, 0.02)), clamped to [0, 1], padding zeroed,
        renormalised."""
        frac = frac * (1 + torch.randn_like(frac) * self.fraction_noise)
        frac = torch.clamp(frac, 0, 1).masked_fill(z == 0, 0)
        return frac / frac.sum(dim=1, keepdim=True)

    def forward(self, z: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        if self.training and self.fraction_noise > 0:
            frac = self.noisy(z, frac)
        x = self.proj(self.table(z)) * 2 ** self.emb_scaler
        pe = self.frac_lin(frac) * 2 ** ((1 - self.pos_scaler) ** 2)
        ple = self.frac_log(frac) * 2 ** ((1 - self.pos_scaler_log) ** 2)
        return x + torch.cat([pe, ple], dim=-1)


class SoftAttention(nn.Module):
    """a = softmax over slots of MLP(h); returns h + h * a. Padded slots take part in the softmax
    unless a mask is given."""

    def __init__(self, d: int = 512):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))

    def weights(self, h: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        s = self.mlp(h)
        if pad is not None:
            s = s.masked_fill(pad.unsqueeze(-1), float("-inf"))
        return torch.softmax(s, dim=1)

    def forward(self, h: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        return h + h * self.weights(h, pad)


class DCNN(nn.Module):
    """Region-embedding conv, then ``blocks + 1`` residual double-conv blocks along the slot axis
    (no down-sampling). Works on (B, L, d_in) and returns (B, L, d_out)."""

    def __init__(self, d_in: int = 512, d: int = 512, kernel: int = 3, blocks: int = 2,
                 residual: bool = True, region_residual: bool = True):
        super().__init__()
        pad = kernel // 2
        self.region = nn.Conv1d(d_in, d, kernel, padding=pad)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.Conv1d(d, d, kernel, padding=pad), nn.ReLU(), nn.Conv1d(d, d, kernel, padding=pad))
            for _ in range(blocks + 1))
        self.residual, self.region_residual = residual, region_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.region(x.transpose(1, 2))
        for k, conv in enumerate(self.convs):
            keep = self.region_residual if k == 0 else self.residual
            c = c + conv(c) if keep else conv(c)
        return c.transpose(1, 2)


class CompositionModel(nn.Module):
    """Shared parts: embedding, per-element 3-output head, masked mean, CrabNet output rule."""

    d_out: int = 512

    def __init__(self, element_table: np.ndarray, d_model: int = 512, resolution: int = 2000,
                 sin_only: bool = True, mask_padding: bool = False):
        super().__init__()
        self.embed = CompositionEmbedding(element_table, d_model, resolution, sin_only)
        self.mask_padding = mask_padding

    def build_head(self, d: int) -> None:
        self.head = nn.Linear(d, 3)

    def element_features(self, z: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, frac: torch.Tensor) -> torch.Tensor:
        out = self.head(self.element_features(z, frac))  # (B, L, 3)
        real = (z != 0).unsqueeze(-1)
        out = (out * real).sum(dim=1) / real.sum(dim=1)
        value, log_std, logit = out[:, 0], out[:, 1], out[:, 2]
        return torch.stack([value * torch.sigmoid(logit), log_std], dim=1)

    def pad(self, z: torch.Tensor) -> torch.Tensor | None:
        return (z == 0) if self.mask_padding else None


def _bilstm(d: int, rnn=nn.LSTM) -> nn.Module:
    return rnn(d, d // 2, num_layers=1, batch_first=True, bidirectional=True)


@register("lgdcnn")
class LGDCNN(CompositionModel):
    """L-G-DCNN: BiLSTM -> soft attention (+res) -> BiGRU -> same attention (+res) -> DCNN."""

    def __init__(self, element_table, d_model: int = 512, resolution: int = 2000, blocks: int = 2,
                 kernel: int = 3, sin_only: bool = True, mask_padding: bool = False,
                 residual: bool = True, region_residual: bool = True, variant: str = "default"):
        super().__init__(element_table, d_model, resolution, sin_only, mask_padding)
        self.lstm, self.gru = _bilstm(d_model), _bilstm(d_model, nn.GRU)
        self.attention = SoftAttention(d_model)
        self.dcnn = DCNN(d_model, d_model, kernel, blocks, residual, region_residual)
        self.variant = variant
        self.build_head(d_model)

    def global_block(self, x, pad):
        h1, _ = self.lstm(x)
        o1 = self.attention(h1, pad)
        h2, _ = self.gru(o1)
        return o1, self.attention(h2, pad)

    def element_features(self, z, frac):
        x = self.embed(z, frac)
        o1, o2 = self.global_block(x, self.pad(z))
        c = self.dcnn(o2)
        if self.variant == "v1":  # c = o1 + o2 + c, then max-pool (3, stride 1, pad 1) over features
            c = F.max_pool1d(o1 + o2 + c, kernel_size=3, stride=1, padding=1)
        return c


@register("lgdcnn_v1")
class LGDCNNV1(LGDCNN):
    def __init__(self, element_table, **kw):
        kw.setdefault("variant", "v1")
        super().__init__(element_table, **kw)


@register("ldcnn")
class LDCNN(CompositionModel):
    """BiLSTM -> DCNN (ablation M6); ``attention=True`` adds soft attention + residual on the LSTM
    output (the paper's intermediate L-ATT-RES-DCNN, reconstructed from its description)."""

    def __init__(self, element_table, d_model: int = 512, resolution: int = 2000, blocks: int = 2,
                 kernel: int = 3, sin_only: bool = True, mask_padding: bool = False, attention: bool = False):
        super().__init__(element_table, d_model, resolution, sin_only, mask_padding)
        self.lstm = _bilstm(d_model)
        self.attention = SoftAttention(d_model) if attention else None
        self.dcnn = DCNN(d_model, d_model, kernel, blocks)
        self.build_head(d_model)

    def element_features(self, z, frac):
        h, _ = self.lstm(self.embed(z, frac))
        if self.attention is not None:
            h = self.attention(h, self.pad(z))
        return self.dcnn(h)


@register("lstm_ref")
class LSTMRef(CompositionModel):
    """The CECV 'global' reference: BiLSTM only (fraction resolution 5000)."""

    def __init__(self, element_table, d_model: int = 512, resolution: int = 5000, sin_only: bool = True,
                 mask_padding: bool = False):
        super().__init__(element_table, d_model, resolution, sin_only, mask_padding)
        self.lstm = _bilstm(d_model)
        self.build_head(d_model)

    def element_features(self, z, frac):
        return self.lstm(self.embed(z, frac))[0]


@register("dcnn")
class DCNNRef(CompositionModel):
    """The conv stack on the raw embedding (resolution 5000). ``kernel=1, d=256`` is DCNN-K1, the
    CECV 'local' reference."""

    def __init__(self, element_table, d_model: int = 512, resolution: int = 5000, blocks: int = 2,
                 kernel: int = 3, d: int = 512, sin_only: bool = True, mask_padding: bool = False):
        super().__init__(element_table, d_model, resolution, sin_only, mask_padding)
        self.dcnn = DCNN(d_model, d, kernel, blocks)
        self.build_head(d)

    def element_features(self, z, frac):
        return self.dcnn(self.embed(z, frac))


@register("dcnn_k1")
class DCNNK1(DCNNRef):
    def __init__(self, element_table, **kw):
        kw.setdefault("kernel", 1)
        kw.setdefault("d", 256)
        super().__init__(element_table, **kw)


@register("mlp")
class MLP(nn.Module):
    """A plain MLP on a fixed feature vector (the Magpie baseline): Linear-ReLU-Dropout blocks."""

    def __init__(self, n_features: int, hidden: tuple[int, ...] = (256, 128, 64), dropout: float = 0.1):
        super().__init__()
        layers, d = [], n_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(dropout)]
            d = h
        self.net = nn.Sequential(*layers, nn.Linear(d, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
