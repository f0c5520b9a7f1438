"""Accuracy metrics: the seed's MAE, MSE, RMSE and R2, plus MASE and interval coverage.

An unknown month (NaN, a gap between two sources: not a zero) is not scored: the metrics
read the months whose actual count is known, and the seasonal naive scale the lag-12
pairs with both months known.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

SEASON = 12  # months: the seasonal naive forecast repeats the same month last year

ArrayLike = Sequence[float] | np.ndarray


def _pair(actual: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The months with a known actual count, and their predictions."""
    y = np.asarray(actual, dtype=float)
    yhat = np.asarray(predicted, dtype=float)
    if y.shape != yhat.shape or y.size == 0:
        raise ValueError(f"need two non-empty arrays of one length, got {y.shape} and {yhat.shape}")
    known = ~np.isnan(y)
    if not known.all():
        if not known.any():
            raise ValueError("no month with a known actual count to score")
        y, yhat = y[known], yhat[known]
    return y, yhat


def mae(actual: ArrayLike, predicted: ArrayLike) -> float:
    y, yhat = _pair(actual, predicted)
    return float(np.mean(np.abs(y - yhat)))


def mse(actual: ArrayLike, predicted: ArrayLike) -> float:
    y, yhat = _pair(actual, predicted)
    return float(np.mean((y - yhat) ** 2))


def rmse(actual: ArrayLike, predicted: ArrayLike) -> float:
    return math.sqrt(mse(actual, predicted))


def r2(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Coefficient of determination; NaN when the actual values are constant."""
    y, yhat = _pair(actual, predicted)
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return math.nan
    return 1.0 - float(np.sum((y - yhat) ** 2)) / total


def seasonal_naive_scale(history: ArrayLike, season: int = SEASON) -> float:
    """Mean absolute error of 'same month last year' over the training history:
    the yardstick MASE divides by, so 1.0 means as good as that in-sample naive."""
    h = np.asarray(history, dtype=float)
    if h.size <= season:
        return math.nan
    change = h[season:] - h[:-season]
    if np.isnan(change).any():  # unknown months: the pairs with both months known
        change = change[~np.isnan(change)]
        if not change.size:
            return math.nan
    return float(np.mean(np.abs(change)))


def mase(actual: ArrayLike, predicted: ArrayLike, history: ArrayLike, season: int = SEASON) -> float:
    scale = seasonal_naive_scale(history, season)
    if not scale or math.isnan(scale):
        return math.nan
    return mae(actual, predicted) / scale


def coverage(actual: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Share of actual values inside [lower, upper]: an honest 80% interval covers ~0.8."""
    y, lo = _pair(actual, lower)
    _, hi = _pair(actual, upper)  # the same known months
    return float(np.mean((y >= lo) & (y <= hi)))


def score(
    actual: ArrayLike,
    predicted: ArrayLike,
    history: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
) -> dict[str, float | None]:
    """All metrics for one forecast; coverage is None for a method without interval."""
    return {
        "mae": mae(actual, predicted),
        "mse": mse(actual, predicted),
        "rmse": rmse(actual, predicted),
        "r2": r2(actual, predicted),
        "mase": mase(actual, predicted, history),
        "coverage": None if lower is None or upper is None else coverage(actual, lower, upper),
    }
