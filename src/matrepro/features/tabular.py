"""Numeric + categorical tables to tensors. Fitted on the training rows only."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import OrdinalEncoder, StandardScaler


@dataclass
class TabularBatch:
    x_num: torch.Tensor  # (n, n_numeric) float32, standardised
    x_cat: torch.Tensor  # (n, n_categorical) int64; 0 = unseen or rare category
    y: torch.Tensor | None = None  # (n,) float32, standardised target

    def __len__(self) -> int:
        return self.x_num.shape[0]

    def subset(self, idx) -> "TabularBatch":
        return TabularBatch(self.x_num[idx], self.x_cat[idx], None if self.y is None else self.y[idx])

    def to(self, device) -> "TabularBatch":
        return TabularBatch(self.x_num.to(device), self.x_cat.to(device),
                            None if self.y is None else self.y.to(device))

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_num, self.x_cat


@dataclass
class TabularEncoder:
    """Standardises numeric columns and the target; maps each categorical column to integers.

    Index 0 of every categorical vocabulary is reserved for categories not seen in training (or
    seen fewer than ``min_count`` times), so a group split never crashes on a new category.
    """

    numeric: list[str]
    categorical: list[str]
    min_count: int = 1
    scaler: StandardScaler = field(default_factory=StandardScaler)
    ordinal: OrdinalEncoder | None = None
    y_mean: float = 0.0
    y_std: float = 1.0

    def fit(self, df: pd.DataFrame, y: np.ndarray) -> "TabularEncoder":
        self.scaler.fit(df[self.numeric].to_numpy(dtype=np.float64))
        if self.categorical:
            self.ordinal = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                          min_frequency=self.min_count if self.min_count > 1 else None,
                                          dtype=np.int64)
            self.ordinal.fit(df[self.categorical].astype(str))
        self.y_mean, self.y_std = float(np.mean(y)), float(np.std(y)) or 1.0
        return self

    @property
    def cardinalities(self) -> list[int]:
        if not self.categorical:
            return []
        # +1 for the reserved index 0 (sklearn codes infrequent categories below len(categories_)).
        return [len(c) + 1 for c in self.ordinal.categories_]

    def transform(self, df: pd.DataFrame, y: np.ndarray | None = None) -> TabularBatch:
        x_num = torch.tensor(self.scaler.transform(df[self.numeric].to_numpy(dtype=np.float64)),
                             dtype=torch.float32)
        if self.categorical:
            codes = self.ordinal.transform(df[self.categorical].astype(str))
            x_cat = torch.tensor(codes + 1, dtype=torch.int64)  # -1 (unknown) -> 0
        else:
            x_cat = torch.zeros((len(df), 0), dtype=torch.int64)
        yt = None if y is None else torch.tensor((np.asarray(y) - self.y_mean) / self.y_std, dtype=torch.float32)
        return TabularBatch(x_num, x_cat, yt)

    def inverse_target(self, y_scaled: np.ndarray) -> np.ndarray:
        return np.asarray(y_scaled) * self.y_std + self.y_mean
