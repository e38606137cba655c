"""Learning-curve extrapolation: fit MAE = A · N^(−α) on (training rows, MAE) points and carry it
to a larger N with an interval.

The fit is ordinary least squares of log MAE on log N (every seed's point enters, so the residual
scatter includes the seed spread). The interval at N is the 95 % confidence interval of the fitted
line at log N (Student t with n − 2 degrees of freedom), mapped back through exp: it states how
well the power law is pinned down by the points, not whether a power law holds that far out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .errors import MatreproError


@dataclass
class PowerLaw:
    alpha: float
    alpha_se: float
    log_a: float
    cov: np.ndarray  # covariance of (log_a, slope = -alpha)
    dof: int
    n_points: int
    n_range: tuple[float, float]

    def predict(self, n) -> np.ndarray:
        return np.exp(self.log_a - self.alpha * np.log(np.asarray(n, float)))

    def interval(self, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        x = np.log(np.asarray(n, float))
        var = self.cov[0, 0] + 2 * x * self.cov[0, 1] + x ** 2 * self.cov[1, 1]
        t = stats.t.ppf(0.5 + level / 2, self.dof) if self.dof > 0 else np.inf
        mid = self.log_a - self.alpha * x
        half = t * np.sqrt(np.maximum(var, 0))
        return np.exp(mid - half), np.exp(mid + half)


def fit_power_law(n, mae) -> PowerLaw:
    """Least-squares fit of log(mae) = log(A) − α·log(n). Needs ≥ 3 points at ≥ 2 distinct n."""
    n, mae = np.asarray(n, float), np.asarray(mae, float)
    if n.shape != mae.shape or n.ndim != 1:
        raise MatreproError("fit_power_law: n and mae must be 1-D arrays of the same length")
    if (n <= 0).any() or (mae <= 0).any() or not np.isfinite(mae).all():
        raise MatreproError("fit_power_law: n and mae must be positive and finite")
    if len(n) < 3 or len(np.unique(n)) < 2:
        raise MatreproError(f"fit_power_law: need >= 3 points at >= 2 sizes, got {len(n)} at {len(np.unique(n))}")
    X = np.column_stack([np.ones_like(n), np.log(n)])
    y = np.log(mae)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = len(n) - 2
    s2 = float(resid @ resid) / dof if dof > 0 else 0.0
    cov = s2 * np.linalg.inv(X.T @ X)
    return PowerLaw(alpha=float(-coef[1]), alpha_se=float(np.sqrt(cov[1, 1])), log_a=float(coef[0]), cov=cov,
                    dof=dof, n_points=len(n), n_range=(float(n.min()), float(n.max())))
