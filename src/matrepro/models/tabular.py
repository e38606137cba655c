"""Models for numeric + categorical tables (capnet).

Every model takes ``(x_num, x_cat)`` — standardised numeric features (n, F) and integer
categories (n, C) — and returns one regression output per row, shape (n,).

* ``capnet``: the Classified Branch–CapNet idea: one MLP branch for the numeric features, one
  embedding branch per categorical feature, late fusion (concatenation of branch outputs) and a head.
* ``dnn``: "naive integration": numeric features and category embeddings concatenated at the input.
* ``rnn``/``lstm``/``transformer``: each feature becomes a token (numeric: value x learned vector +
  bias, per feature; categorical: its embedding); a sequence model reads the tokens.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from . import register


def mlp(sizes: list[int], dropout: float = 0.0, final_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers += [nn.ReLU(), nn.Dropout(dropout)] if dropout else [nn.ReLU()]
    return nn.Sequential(*layers)


@register("capnet")
class ClassifiedBranchCapNet(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], hidden: int = 128, embed_dim: int = 16,
                 branch_dim: int = 32, depth: int = 2, dropout: float = 0.1):
        super().__init__()
        self.numeric_branch = mlp([n_numeric] + [hidden] * depth + [branch_dim], dropout)
        self.embeddings = nn.ModuleList(nn.Embedding(c, embed_dim) for c in cardinalities)
        self.cat_branches = nn.ModuleList(mlp([embed_dim, branch_dim, branch_dim], dropout)
                                          for _ in cardinalities)
        fused = branch_dim * (1 + len(cardinalities))
        self.head = mlp([fused, hidden, 1], dropout, final_activation=False)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = [self.numeric_branch(x_num)]
        parts += [br(emb(x_cat[:, j])) for j, (emb, br) in enumerate(zip(self.embeddings, self.cat_branches))]
        return self.head(torch.cat(parts, dim=1)).squeeze(-1)


@register("dnn")
class DNN(nn.Module):
    def __init__(self, n_numeric: int, cardinalities: list[int], hidden: int = 128, embed_dim: int = 16,
                 depth: int = 3, dropout: float = 0.1):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(c, embed_dim) for c in cardinalities)
        self.net = mlp([n_numeric + embed_dim * len(cardinalities)] + [hidden] * depth + [1], dropout,
                       final_activation=False)

    def forward(self, x_num, x_cat):
        parts = [x_num] + [emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)]
        return self.net(torch.cat(parts, dim=1)).squeeze(-1)


class FeatureTokenizer(nn.Module):
    """(x_num, x_cat) -> tokens (n, F + C, d)."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_numeric, d) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_numeric, d))
        self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c in cardinalities)

    def forward(self, x_num, x_cat):
        tokens = x_num.unsqueeze(-1) * self.weight + self.bias
        if self.embeddings:
            cats = torch.stack([emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)], dim=1)
            tokens = torch.cat([tokens, cats], dim=1)
        return tokens


class _Recurrent(nn.Module):
    cell: type[nn.Module] = nn.RNN

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int = 32, hidden: int = 64,
                 layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.tokens = FeatureTokenizer(n_numeric, cardinalities, d)
        self.rnn = self.cell(d, hidden, num_layers=layers, batch_first=True,
                             dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x_num, x_cat):
        out, _ = self.rnn(self.tokens(x_num, x_cat))
        return self.head(out[:, -1]).squeeze(-1)


@register("rnn")
class RNN(_Recurrent):
    cell = nn.RNN


@register("lstm")
class LSTM(_Recurrent):
    cell = nn.LSTM


@register("transformer")
class EncoderTransformer(nn.Module):
    """Encoder-only Transformer over feature tokens with a [CLS] token (FT-Transformer style)."""

    def __init__(self, n_numeric: int, cardinalities: list[int], d: int = 32, heads: int = 4,
                 layers: int = 2, ff: int = 64, dropout: float = 0.1):
        super().__init__()
        self.tokens = FeatureTokenizer(n_numeric, cardinalities, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))

    def forward(self, x_num, x_cat):
        t = self.tokens(x_num, x_cat)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1)
        return self.head(self.encoder(t)[:, 0]).squeeze(-1)
