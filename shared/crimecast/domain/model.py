"""The forecasting model: Theta and a seasonal profile, with Prophet as a minority member.

Point forecast (12 months and beyond), from complete months only:
  * 0.75 x the mean of two numpy forecasts on a multiplicative seasonal index (8 years of
    month / yearly-mean ratios, shrunk towards flat by 30 reports per calendar month, so a
    series at 2 a month does not chase noise):
      - Theta: exponential smoothing of the deseasonalised last 96 months (alpha chosen
        in-sample) plus half the linear drift;
      - the mean of the last 12 months x the index;
  * 0.2 x Prophet on log1p of the last 8 years (linear trend, yearly seasonality, fitted
    with LBFGS, no uncertainty sampling).
80% interval: symmetric in sqrt(count) space (the variance-stabilising scale for counts,
so a series at 2 a month gets a Poisson-sized band and a large one a relative band), with
half-width 1.10 x (1 + 0.04 (h - 1)) x the series' spread: the in-sample mean
|d_t - 0.35 mean(d)|, d_t = sqrt y_t - sqrt y_t-12, over the last 96 months (less a third
of the steady yearly change, which the point forecast carries forward: without it the
smooth, trending city total was covered 92% of months, with it 83%), or over the last 12
or the last 24 months when that is larger. After a break (2020, the 2022 rebound) the next
year resembles the recent yearly changes, not the 8-year mean: the band widens from the
first months after it and stays wide for two years, then returns to the long-run one; on a
calm series the recent spreads differ from the long-run one by noise only (k 1.15 -> 1.10
keeps its coverage). Across the break origins (2017-12, 2019-12, 2020-06, 2021-12,
2023-12) coverage on the 2026 files went from 0.70-0.76 to 0.77-0.80 per level, the calm origins staying
within 0.75-0.88 (``bench/accuracy.py``, ``breaks``). Global, scale-free factors chosen by
backtest across levels, not per-series residual quantiles; tried and not kept: conformal
widening on the model's last 6 or 12 out-of-sample months (as good at the breaks, but
widens a third of calm series by chance), a level re-set on a detected shift (the 2020 drop
half reverted: worse), a damped or no drift (no gain). Forecasts and bounds are never negative.

Why (``bench/accuracy.py``; yearly origins 2012-10..2016-10, 12 months ahead, every level
of the area x type file; mean MASE relative to the seasonal naive's, on a sample):
Theta + profile alone 0.80 (area x type), 0.79 (areas), 0.85 (city types); adding Prophet
at 0.25 gives 0.80 / 0.77 / 0.84. Prophet alone 0.85 / 0.81 / 0.90, and the former
0.5 Prophet + 0.5 profile 0.82 / 0.79 / 0.86; Prophet with flat growth or a stiff trend
(changepoint prior 0.005) is worse in every mix. Across the break origins the Prophet
member's 8-year linear trend is what carries a break furthest: at 0.2 rather than 0.25 the
city types go from 0.85 to 0.84 and the area totals from 0.82 to 0.815 there, the calm
origins unchanged within 0.003 (0 would gain more at the breaks, 0.82, but lose 0.02 on
the calm area totals). Prophet's own band (1000 samples) cost
~80 ms a predict; this band is free and covers 75-88% at every level and on sparse series.
A retrain pays ~3 x (Prophet fit ~35 ms + predict ~11 ms) per series.
Holidays are not modelled: at monthly resolution a holiday's effect is part of its
month's seasonality.

Unknown months (a gap between two sources, NaN in the history) are missing, never zeros:
Prophet fits the last 8 years' worth of known months; Theta's level is the run of known months
that ends the history (the months after the gap); the seasonal index uses the whole
12-month blocks with every month known; the band's spread uses the known lag-12 pairs.
A history without unknown months takes exactly the computations described above.

References it is measured against: :func:`seasonal_naive` (same month last year) and
:func:`seed_prophet` (the seed specification's configuration on all history).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import json
import logging
from statistics import NormalDist
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
    """Defaults chosen by rolling-origin backtests across levels (``bench/accuracy.py``)."""

    # Seasonal index: mean month/yearly-mean ratio over this many years, shrunk towards
    # flat by ``season_prior_counts`` reports per calendar month (sparse series).
    season_years: int = 8
    season_prior_counts: float = 30.0
    # Theta: simple exponential smoothing of the deseasonalised last ``theta_months``
    # months (smoothing chosen in-sample from THETA_ALPHAS) plus half the linear drift.
    theta_months: int = 96
    theta_drift: float = 0.5
    theta_weight: float = 0.5  # the rest: mean of the last 12 months x seasonal index
    # Prophet member (log1p, last ``window_years``, linear trend), weight taken from the others:
    # 0.25 on the calm origins 2012-2016, 0.2 once the break origins count too (its 8-year
    # linear trend carries a break furthest; ``bench/accuracy.py``, ``breaks``).
    prophet_weight: float = 0.2
    window_years: int = 8
    # Interval: symmetric in sqrt(count) space (variance-stabilising for counts), half-width
    # interval_k x (1 + interval_growth x (h - 1)) x the spread: the in-sample mean
    # |d_t - s x mean(d)|, d_t = sqrt y_t - sqrt y_t-12, s = interval_trend_share, over the
    # last interval_months, or over the last m of them for each m in interval_recent_months
    # when that is larger (a break: the band widens within months and for two years);
    # k for an 80% band, rescaled by the normal quantile for other widths.
    interval_width: float = 0.8
    interval_k: float = 1.10
    interval_growth: float = 0.04
    interval_months: int = 96
    interval_trend_share: float = 0.35
    interval_recent_months: tuple[int, ...] = (12, 24)


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
    known = int(history.count())
    if known < MIN_TRAINING_MONTHS:
        raise InvalidInputError(
            f"series {history.name or ''} has {known} complete months; "
            f"at least {MIN_TRAINING_MONTHS} are needed to train".replace("  ", " ")
        )


def calendar_history(history: pd.Series) -> pd.Series:
    """``history`` as floats on every month from its first known month to its last known one,
    months it lacks (or holds as NaN) NaN: the model's positions are calendar months."""
    history = history.astype(float)
    if history.isna().any():
        history = history.loc[history.first_valid_index():history.last_valid_index()]
    months = pd.period_range(history.index[0], history.index[-1], freq="M")
    return history if len(months) == len(history) else history.reindex(months)


def future_months(history: pd.Series, horizon: int) -> pd.PeriodIndex:
    return pd.period_range(history.index[-1] + 1, periods=horizon, freq="M")


def seasonal_naive(history: pd.Series, horizon: int) -> np.ndarray:
    """Same month last year, repeated for horizons beyond a year; a calendar month unknown
    last year (a gap) takes its latest known year."""
    values = calendar_history(history).to_numpy() if history.isna().any() else history.to_numpy(dtype=float)
    last_year = values[-SEASON:]
    if np.isnan(last_year).any():
        last_year = last_year.copy()
        for k in np.flatnonzero(np.isnan(last_year)):
            same_month = values[len(values) - SEASON + k::-SEASON]
            known = same_month[np.isfinite(same_month)]
            last_year[k] = known[0] if known.size else np.nan
    return np.array([last_year[i % SEASON] for i in range(horizon)])


def _frame(ds: pd.DatetimeIndex | pd.Series, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ds": pd.DatetimeIndex(ds), "y": values})


def seed_prophet(history: pd.Series, horizon: int) -> pd.DataFrame:
    """The seed's configuration on all the history it is given, as the seed ran it."""
    model = _prophet_class()(**SEED_PROPHET_ARGS)
    model.fit(_frame(history.index.to_timestamp(), history.to_numpy(dtype=float)))
    future = pd.DataFrame({"ds": future_months(history, horizon).to_timestamp()})
    return model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]


THETA_ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5)
FORMAT = "crimecast.forecaster/2"


def seasonal_index(values: np.ndarray, years: int, prior_counts: float = 0.0) -> tuple[np.ndarray, int]:
    """Monthly index (mean 1) from the last whole ``years`` years, and how many months it used.

    Each month is divided by the mean of its own 12-month block (no trend leaks in), the
    ratios are averaged per calendar month, then shrunk towards 1 by the weight
    n / (n + prior_counts), n = reports per calendar month slot: a series at 2 a month
    has a noisy shape and gets little of it. ``index[k]`` is the month ``k`` places after
    the first month used, modulo 12.
    """
    if np.isnan(values).any():  # a gap: the last ``years`` whole blocks with every month known
        n = len(values)
        ends = range(n, SEASON - 1, -SEASON)
        whole = [e for e in ends if not np.isnan(values[e - SEASON:e]).any()][:years]
        if not whole:
            return np.ones(SEASON), 0
        blocks = np.stack([values[e - SEASON:e] for e in reversed(whole)])
        return _index_of_blocks(blocks, prior_counts), n - (whole[-1] - SEASON)  # a whole number of years
    usable = (min(len(values), SEASON * years) // SEASON) * SEASON
    blocks = values[len(values) - usable:].reshape(-1, SEASON)
    return _index_of_blocks(blocks, prior_counts), usable


def _index_of_blocks(blocks: np.ndarray, prior_counts: float) -> np.ndarray:
    """Month / block-mean ratios averaged per calendar month, shrunk towards flat (see seasonal_index)."""
    means = blocks.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(means > 0, blocks / means, np.nan)
    index = np.nanmean(ratios, axis=0) if np.isfinite(ratios).any() else np.ones(SEASON)
    index = np.where(np.isfinite(index), index, 1.0)
    if prior_counts > 0:
        per_slot = blocks.sum() / SEASON
        index = 1 + (index / index.mean() - 1) * per_slot / (per_slot + prior_counts)
    return index / index.mean()


def theta_level(deseasonalised: np.ndarray, horizon: int, drift: float) -> np.ndarray:
    """Theta method: SES (alpha chosen by in-sample one-step error) plus ``drift`` x the
    linear trend's slope (0.5 is the classic theta-line weighting), never below zero."""
    best = (np.inf, THETA_ALPHAS[0], deseasonalised[-1])
    for alpha in THETA_ALPHAS:
        level, sse = deseasonalised[0], 0.0
        for value in deseasonalised[1:]:
            sse += (value - level) ** 2
            level = alpha * value + (1 - alpha) * level
        if sse < best[0]:
            best = (sse, alpha, level)
    _, alpha, level = best
    n = len(deseasonalised)
    slope = np.polyfit(np.arange(n), deseasonalised, 1)[0] if n > 1 else 0.0
    steps = np.arange(1, horizon + 1)
    return np.maximum(level + drift * slope * (steps - 1 + 1 / alpha - (1 - alpha) ** n / alpha), 0.0)


def interval_half_width(values: np.ndarray, horizon: int, settings: ModelSettings) -> np.ndarray:
    """Half-width in sqrt(count) space per horizon step (see ModelSettings); across a gap,
    from the last ``interval_months - 12`` lag-12 pairs with both months known."""
    if np.isnan(values).any():
        root = np.sqrt(np.maximum(values, 0.0))  # NaN stays NaN
        change = root[SEASON:] - root[:-SEASON]
        change = change[np.isfinite(change)][-max(settings.interval_months - SEASON, 1):]
        root = root[:SEASON + len(change)]  # more than a season exactly when there is a known pair
    else:
        root = np.sqrt(np.maximum(values[-settings.interval_months:], 0.0))
        change = root[SEASON:] - root[:-SEASON] if len(root) > SEASON else root[:0]
    if len(root) > SEASON:
        # the larger of the long-run spread and the recent ones (after a break the recent
        # yearly changes are the ones the next year resembles); each less the part of its
        # steady yearly change that the point forecast carries forward
        spread = max(_change_spread(change[-months:], settings.interval_trend_share)
                     for months in (len(change), *settings.interval_recent_months))
    else:
        spread = 0.5
    spread = max(spread, 0.25)  # a flat history still has Poisson noise ahead (sd 0.5 in sqrt space)
    z_ratio = NormalDist().inv_cdf(0.5 + settings.interval_width / 2) / NormalDist().inv_cdf(0.9)
    steps = np.arange(horizon)
    return settings.interval_k * z_ratio * (1 + settings.interval_growth * steps) * spread


def _change_spread(change: np.ndarray, trend_share: float) -> float:
    """Mean |d_t - trend_share x mean(d)| of lag-12 changes d in sqrt space."""
    return float(np.mean(np.abs(change - trend_share * change.mean())))


def core_forecast(values: np.ndarray, horizon: int, settings: ModelSettings) -> np.ndarray:
    """Theta and "last 12 months x seasonal index", averaged (weights from settings).

    After a gap (NaN), both read the level of the months after it: Theta smooths only
    them, and the profile's level is their deseasonalised mean when fewer than 12 are known.
    """
    index, usable = seasonal_index(values, settings.season_years, settings.season_prior_counts)
    future_index = np.array([index[i % SEASON] for i in range(horizon)])  # usable is whole years
    n = len(values)
    past_index = index[(np.arange(n) - (n - usable)) % SEASON]
    deseasonalised = values / np.where(past_index > 0, past_index, 1.0)
    last_year = values[-SEASON:]
    if np.isnan(last_year).any():
        profile = np.nanmean(deseasonalised[-SEASON:]) * future_index
    else:
        profile = last_year.mean() * future_index
    unknown = np.flatnonzero(np.isnan(values))
    if unknown.size:  # the level after the gap
        deseasonalised = deseasonalised[unknown[-1] + 1:]
    deseasonalised = deseasonalised[-settings.theta_months:]
    theta = theta_level(deseasonalised, horizon, settings.theta_drift) * future_index
    return settings.theta_weight * theta + (1 - settings.theta_weight) * profile


@dataclass
class CrimeForecaster:
    """One series' model: fit on complete months, then forecast any horizon."""

    settings: ModelSettings = field(default_factory=ModelSettings)
    prophet: Any = None
    history: pd.Series | None = None
    timings: FitTimings = field(default_factory=FitTimings)

    def fit(self, history: pd.Series) -> CrimeForecaster:
        """Fit on ``history``: complete months, unknown ones NaN or absent (a gap, not zeros)."""
        check_history(history)
        history = calendar_history(history)
        self.history, self.prophet = history, None
        if self.settings.prophet_weight > 0:
            # the last window_years x 12 known months (Prophet takes uneven dates): across a gap, the
            # years before it as well as the months after it (the calendar window alone would leave
            # a few dozen points for 25 changepoints, and LBFGS often stops short on them)
            recent = history.dropna().iloc[-SEASON * self.settings.window_years:]
            model = _prophet_class()(
                growth="linear",
                yearly_seasonality=True,
                weekly_seasonality=False,
                daily_seasonality=False,
                uncertainty_samples=0,  # the band is ours (interval_half_width)
            )
            started = time.perf_counter()
            # LBFGS: Prophet picks Newton below 100 points, ~10x slower on 96 months for the same fit
            model.fit(_frame(recent.index.to_timestamp(), np.log1p(recent.to_numpy())), algorithm="LBFGS")
            self.timings.prophet_fit_seconds += time.perf_counter() - started
            self.timings.fits += 1
            self.prophet = model
        return self

    def predict(self, horizon: int) -> pd.DataFrame:
        """Columns ``month`` (Period), ``yhat``, ``yhat_lower``, ``yhat_upper``, never negative."""
        if self.history is None:
            raise RuntimeError("fit the model before predicting")
        months = future_months(self.history, horizon)
        values = self.history.to_numpy(dtype=float)
        point = core_forecast(values, horizon, self.settings)
        weight = self.settings.prophet_weight
        if weight > 0:
            if self.prophet is None:
                raise RuntimeError("fit the model before predicting")
            started = time.perf_counter()
            raw = self.prophet.predict(pd.DataFrame({"ds": months.to_timestamp()}))
            self.timings.prophet_predict_seconds += time.perf_counter() - started
            point = weight * np.maximum(np.expm1(raw["yhat"].to_numpy()), 0) + (1 - weight) * point
        point = np.maximum(point, 0.0)
        half = interval_half_width(values, horizon, self.settings)
        root = np.sqrt(point)
        return pd.DataFrame({
            "month": months,
            "yhat": point,
            "yhat_lower": np.minimum(np.maximum(root - half, 0.0) ** 2, point),
            "yhat_upper": (root + half) ** 2,
        })

    def to_json(self) -> str:
        """Settings, the history the forecast is computed from, and the Prophet member if any."""
        if self.history is None:
            raise RuntimeError("fit the model before saving it")
        doc: dict[str, Any] = {
            "format": FORMAT,
            "settings": asdict(self.settings),
            "history": {"start": str(self.history.index[0]),  # an unknown month is null
                        "values": [None if v != v else v for v in self.history.tolist()]},
        }
        if self.prophet is not None:
            from prophet.serialize import model_to_json

            doc["prophet"] = model_to_json(self.prophet)
        return json.dumps(doc)

    @classmethod
    def from_json(cls, text: str) -> CrimeForecaster:
        doc = json.loads(text)
        if doc.get("format") != FORMAT:
            raise InvalidInputError(f"model format {doc.get('format')!r} is not {FORMAT!r}: retrain the series")
        values = doc["history"]["values"]
        index = pd.period_range(doc["history"]["start"], periods=len(values), freq="M")
        prophet = None
        if doc.get("prophet"):
            from prophet.serialize import model_from_json

            prophet = model_from_json(doc["prophet"])
        settings = dict(doc["settings"])
        # a model saved before the recent spreads existed keeps the band it was published with
        settings["interval_recent_months"] = tuple(settings.get("interval_recent_months", ()))
        return cls(
            settings=ModelSettings(**settings),
            prophet=prophet,
            history=pd.Series(values, index=index, dtype=float),
        )
