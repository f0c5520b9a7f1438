"""Rolling-origin backtests: the project's model against the references, honestly.

For each series and origin, every method sees only the complete months up to the
origin, and is scored on the complete months after it (up to ``horizon``). The model
makes all its choices inside ``fit``, from that training slice alone. Unknown months (a
gap between two sources) are never scored: an origin inside a gap, or whose test window
lies wholly in one, is skipped; a test window that crosses one is scored on its known months.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
import pandas as pd

from crimecast.domain import metrics
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import MIN_TRAINING_MONTHS, CrimeForecaster, ModelSettings, seasonal_naive, seed_prophet
from crimecast.domain.parallel import ProgressFn, map_processes
from crimecast.domain.series import MonthlyCounts

METHODS = ("model", "seed_prophet", "seasonal_naive")
METRICS = ("mae", "mse", "rmse", "r2", "mase", "coverage")


@dataclass(frozen=True)
class BacktestTask:
    """One series at one origin; carries its own data so workers need nothing else."""

    key: SeriesKey
    origin: pd.Period
    horizon: int
    history: pd.Series  # complete months, area series from when area data is whole
    seed_history: pd.Series  # complete months from the first month of data, as the seed trained
    settings: ModelSettings


def parse_origins(text: str | Sequence[str]) -> list[pd.Period]:
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        origins = sorted({pd.Period(i.strip(), freq="M") for i in items if i.strip()})
    except (ValueError, TypeError):
        raise InvalidInputError(f"origins must be YYYY-MM months separated by commas, got {text!r}") from None
    if not origins:
        raise InvalidInputError("give at least one origin (YYYY-MM)")
    return origins


def plan(
    counts: MonthlyCounts,
    keys: Iterable[SeriesKey] | None,
    origins: Sequence[pd.Period],
    horizon: int,
    settings: ModelSettings | None = None,
) -> list[BacktestTask]:
    """Check every input before any fit, so bad input fails fast and clearly."""
    if horizon < 1:
        raise InvalidInputError(f"horizon must be at least 1 month, got {horizon}")
    keys = list(keys) if keys else counts.keys()
    settings = settings or ModelSettings()
    tasks = []
    for key in keys:
        history = counts.series(key)
        seed_history = counts.series(key, all_history=True)
        for origin in origins:
            _check_origin(key, history, origin)
            if scorable_origin(history, origin, horizon):
                tasks.append(BacktestTask(key, origin, horizon, history, seed_history, settings))
    return tasks


def scorable_origin(history: pd.Series, origin: pd.Period, horizon: int) -> bool:
    """Whether ``origin`` can be scored on ``history`` (unknown months NaN): its own month is
    known (not inside a gap), at least MIN_TRAINING_MONTHS known months lead up to it, and
    the ``horizon`` months after it hold a known one."""
    if origin not in history.index or np.isnan(history[origin]):
        return False
    train, test = history[history.index <= origin], history[history.index > origin].iloc[:horizon]
    return int(train.count()) >= MIN_TRAINING_MONTHS and int(test.count()) > 0


def _check_origin(key: SeriesKey, history: pd.Series, origin: pd.Period) -> None:
    earliest = history.index[0] + MIN_TRAINING_MONTHS - 1
    latest = history.index[-1] - 1
    if latest < earliest:
        raise InvalidInputError(
            f"series {key.label} is too short to train: {len(history)} complete months, "
            f"{MIN_TRAINING_MONTHS + 1} needed to train and score"
        )
    if not earliest <= origin <= latest:
        raise InvalidInputError(
            f"origin {origin} is outside the data of {key.label}: valid origins run from "
            f"{earliest} to {latest} (complete months {history.index[0]}..{history.index[-1]})"
        )


def run_task(task: BacktestTask) -> dict[str, Any]:
    """Score the three methods on one series at one origin."""
    train = task.history[task.history.index <= task.origin]
    test = task.history[task.history.index > task.origin].iloc[: task.horizon]
    actual = test.to_numpy(dtype=float)
    n = len(actual)
    model = CrimeForecaster(task.settings).fit(train).predict(n)
    seed = seed_prophet(task.seed_history[task.seed_history.index <= task.origin], n)
    naive = seasonal_naive(train, n)
    history = train.to_numpy(dtype=float)
    return {
        "community_area": task.key.community_area,
        "primary_type": task.key.primary_type,
        "origin": str(task.origin),
        "horizon": task.horizon,
        "n": int(np.isfinite(actual).sum()),  # the known months scored
        "model": metrics.score(actual, model["yhat"], history, model["yhat_lower"], model["yhat_upper"]),
        "seed_prophet": metrics.score(actual, seed["yhat"], history, seed["yhat_lower"], seed["yhat_upper"]),
        "seasonal_naive": metrics.score(actual, naive, history),
    }


def run(tasks: Sequence[BacktestTask], workers: int | None = None, progress: ProgressFn | None = None) -> dict[str, Any]:
    rows = map_processes(run_task, tasks, workers, progress)
    return {"series": [_json_safe(r) for r in rows], "summary": summarise(rows)}


def _finite(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _mean(values: Iterable[float | None]) -> float | None:
    finite = _finite(values)
    return float(np.mean(finite)) if finite else None


def _median(values: Iterable[float | None]) -> float | None:
    finite = _finite(values)
    return float(np.median(finite)) if finite else None


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each metric per method, and how often the model wins."""
    summary: dict[str, Any] = {"rows": len(rows), "series": len({(r["community_area"], r["primary_type"]) for r in rows})}
    for method in METHODS:
        summary[method] = {m: _mean(r[method][m] for r in rows) for m in METRICS}
        summary[method]["median_mase"] = _median(r[method]["mase"] for r in rows)
    for reference in METHODS[1:]:
        wins = [r["model"]["mae"] < r[reference]["mae"] for r in rows]
        summary[f"model_beats_{reference}_share"] = float(np.mean(wins)) if wins else None
        ref_mae = summary[reference]["mae"]
        summary[f"mae_ratio_model_to_{reference}"] = summary["model"]["mae"] / ref_mae if ref_mae else None
    return summary


def _json_safe(value: Any) -> Any:
    """NaN is not JSON: write null where a metric is undefined (e.g. R2 on a flat test)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
