"""The forecasting model: Prophet at the core, steadied by a seasonal profile.

Measured on the real series (README, ``bench/accuracy.py``): Prophet's extrapolated
trend is its main source of error on monthly crime counts, and a plain "recent level x
seasonal profile" forecast is hard to beat. The project's model therefore averages
  * Prophet fitted on log1p counts of the last ``window_years`` years (multiplicative
    yearly seasonality, no trend from a distant past), and
  * the mean of the last 12 months x a ``profile_years``-year seasonal index,
and takes its uncertainty interval from Prophet's, centred on that average.
Holidays are not modelled: at monthly resolution a holiday's effect is part of its
month's seasonality, which the yearly terms already fit.

References it is measured against: :func:`seasonal_naive` (same month last year) and
:func:`seed_prophet` (the seed specification's configuration on all history).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from crimecast.domain.errors import InvalidInputError

MIN_TRAINING_MONTHS = 24
SEASON = 12

SEED_PROPHET_ARGS: dict[str, Any] = {
    "yearly_seasonality": True,
    "daily_seasonality": False,
    "seasonality_prior_scale": 10,
    "changepoint_prior_scale": 0.05,
}


def quiet_stan_logging() -> None:
    """cmdstanpy logs every fit at INFO; the service's logs should not drown in it."""
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("prophet.plot").disabled = True  # "Importing plotly failed" on every import


quiet_stan_logging()


@dataclass(frozen=True)
class ModelSettings:
    """Defaults chosen by rolling-origin backtests on the real series (see README)."""

    window_years: int = 8
    profile_years: int = 5
    interval_width: float = 0.8
    uncertainty_samples: int = 1000
    prophet_weight: float = 0.5
    # Prophet's own 80% band covered only 55% of later months on the real series (it
    # ignores the error of the trend itself); widened 1.75x in log space it covers 79%.
    interval_scale: float = 1.75


@dataclass
class FitTimings:
    """Where the time goes, so the benchmark can compare our overhead with Prophet's work."""

    prophet_fit_seconds: float = 0.0
    prophet_predict_seconds: float = 0.0
    fits: int = 0


def _prophet_class() -> type:
    from prophet import Prophet  # heavy: imported only where a model is fitted

    return Prophet


def check_history(history: pd.Series) -> None:
    """Refuse what no model can learn from, with a message that says why."""
    if len(history) < MIN_TRAINING_MONTHS:
        raise InvalidInputError(
            f"series {history.name or ''} has {len(history)} complete months; "
            f"at least {MIN_TRAINING_MONTHS} are needed to train".replace("  ", " ")
        )


def future_months(history: pd.Series, horizon: int) -> pd.PeriodIndex:
    return pd.period_range(history.index[-1] + 1, periods=horizon, freq="M")


def seasonal_naive(history: pd.Series, horizon: int) -> np.ndarray:
    """Same month last year, repeated for horizons beyond a year."""
    last_year = history.to_numpy(dtype=float)[-SEASON:]
    return np.array([last_year[i % SEASON] for i in range(horizon)])


def seasonal_profile(history: pd.Series, horizon: int, years: int = 5) -> np.ndarray:
    """Mean of the last 12 months x the average monthly index of the last ``years`` years.

    The index divides each month by the mean of its own 12-month block, so a trend
    across years does not leak into the seasonal shape.
    """
    values = history.to_numpy(dtype=float)
    usable = (min(len(values), SEASON * years) // SEASON) * SEASON
    blocks = values[len(values) - usable:].reshape(-1, SEASON)
    means = blocks.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(means > 0, blocks / means, np.nan)
    index = np.nanmean(ratios, axis=0) if np.isfinite(ratios).any() else np.ones(SEASON)
    index = np.where(np.isfinite(index), index, 1.0)
    index = index / index.mean()
    first_block_month = history.index[len(values) - usable].month
    months = future_months(history, horizon).month
    level = values[-SEASON:].mean()
    return np.array([level * index[(m - first_block_month) % SEASON] for m in months])


def _frame(ds: pd.DatetimeIndex | pd.Series, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.DatetimeIndex(ds), "y": values})


def seed_prophet(history: pd.Series, horizon: int) -> pd.DataFrame:
    """The seed's configuration on all the history it is given, as the seed ran it."""
    model = _prophet_class()(**SEED_PROPHET_ARGS)
    model.fit(_frame(history.index.to_timestamp(), history.to_numpy(dtype=float)))
    future = pd.DataFrame({"ds": future_months(history, horizon).to_timestamp()})
    return model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]


@dataclass
class CrimeForecaster:
    """One series' model: fit on complete months, then forecast any horizon."""

    settings: ModelSettings = field(default_factory=ModelSettings)
    prophet: Any = None
    history: pd.Series | None = None
    timings: FitTimings = field(default_factory=FitTimings)

    def fit(self, history: pd.Series) -> CrimeForecaster:
        check_history(history)
        history = history.astype(float)
        recent = history.iloc[-SEASON * self.settings.window_years:]
        model = _prophet_class()(
            growth="linear",
            yearly_seasonality=True,
            weekly_seasonality=False,
            daily_seasonality=False,
            interval_width=self.settings.interval_width,
            uncertainty_samples=self.settings.uncertainty_samples,
        )
        started = time.perf_counter()
        model.fit(_frame(recent.index.to_timestamp(), np.log1p(recent.to_numpy())))
        self.timings.prophet_fit_seconds += time.perf_counter() - started
        self.timings.fits += 1
        self.prophet, self.history = model, history
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        """Columns ``month`` (Period), ``yhat``, ``yhat_lower``, ``yhat_upper``, never negative."""
        if self.prophet is None or self.history is None:
            raise RuntimeError("fit the model before predicting")
        months = future_months(self.history, horizon)
        started = time.perf_counter()
        raw = self.prophet.predict(pd.DataFrame({"ds": months.to_timestamp()}))
        self.timings.prophet_predict_seconds += time.perf_counter() - started
        log_yhat = raw["yhat"].to_numpy()
        profile = seasonal_profile(self.history, horizon, self.settings.profile_years)
        weight = self.settings.prophet_weight
        point = weight * np.maximum(np.expm1(log_yhat), 0) + (1 - weight) * profile
        log_point = np.log1p(point)
        scale = self.settings.interval_scale
        lower = np.expm1(log_point - scale * (log_yhat - raw["yhat_lower"].to_numpy()))
        upper = np.expm1(log_point + scale * (raw["yhat_upper"].to_numpy() - log_yhat))
        return pd.DataFrame({
            "month": months,
            "yhat": point,
            "yhat_lower": np.maximum(lower, 0.0),
            "yhat_upper": np.maximum(upper, point),
        })

    def to_json(self) -> str:
        """The Prophet model (``prophet.serialize`` JSON) plus what the profile needs."""
        from prophet.serialize import model_to_json

        if self.prophet is None or self.history is None:
            raise RuntimeError("fit the model before saving it")
        return json.dumps({
            "format": "crimecast.forecaster/1",
            "settings": asdict(self.settings),
            "history": {"start": str(self.history.index[0]), "values": self.history.tolist()},
            "prophet": model_to_json(self.prophet),
        })

    @classmethod
    def from_json(cls, text: str) -> CrimeForecaster:
        from prophet.serialize import model_from_json

        doc = json.loads(text)
        values = doc["history"]["values"]
        index = pd.period_range(doc["history"]["start"], periods=len(values), freq="M")
        return cls(
            settings=ModelSettings(**doc["settings"]),
            prophet=model_from_json(doc["prophet"]),
            history=pd.Series(values, index=index, dtype=float),
        )
