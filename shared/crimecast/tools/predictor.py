"""The seed's ``ChicagoCrimePredictor``, kept as a thin face over the package.

Its API is the seed specification's (section 2.5 and the tests of section 4); the work
is done by :mod:`crimecast.domain.series`, :mod:`crimecast.domain.model` and :mod:`crimecast.domain.metrics`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple
import warnings

import numpy as np
import pandas as pd

from crimecast.domain import metrics
from crimecast.domain.crime_types import normalise_type
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.keys import SeriesKey, parse_area
from crimecast.domain.model import MIN_TRAINING_MONTHS, SEED_PROPHET_ARGS, CrimeForecaster, interval_half_width
from crimecast.domain.series import MonthlyCounts, counts_from_frame
from crimecast.tools.data import default_data_dir

DATA_DIR = default_data_dir()
DEFAULT_CRIMES_FILE = "austin_assault_monthly_2001_2023.csv"  # the seed's showcase series
SOCIO_FILE = "census_socioeconomic_2008_2012.csv"


class Evaluation(NamedTuple):
    """The seed's three figures; unpacks as ``mae, rmse, r2``."""

    mae: float
    rmse: float
    r2: float


class ChicagoCrimePredictor:
    """Train on a crime series, forecast ``months_pred`` months, score the forecast."""

    def __init__(self, months_pred: int = 12, data_dir: str | Path = DATA_DIR, crimes_file: str = DEFAULT_CRIMES_FILE) -> None:
        self._month_pred = months_pred
        self.data_dir = Path(data_dir)
        self.crimes_file = crimes_file
        self.model: Any = None  # the fitted Prophet model, as in the seed
        self.forecaster: CrimeForecaster | None = None

    def load_df_crimes(self) -> pd.DataFrame:
        """Crime data: tidy monthly counts or raw incident rows."""
        return pd.read_csv(self.data_dir / self.crimes_file)

    def load_df_socio(self) -> pd.DataFrame:
        """The 2008-2012 socio-economic indicators per community area."""
        return pd.read_csv(self.data_dir / SOCIO_FILE)

    def return_data(self, type_incident: str, community_area: int | str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(train, test)`` with columns ``ds``, ``y``; test is the last ``months_pred``
        complete months, and a trailing partial month is in neither. Data with no row of that
        type (and area) gives two empty frames, as the seed's did, with a warning naming the
        types there are."""
        counts: MonthlyCounts = counts_from_frame(self.load_df_crimes())
        key = SeriesKey(parse_area(community_area), normalise_type(type_incident))
        if key not in set(counts.keys()):
            warnings.warn(f"no {key.label} rows in {self.crimes_file}; types there: {', '.join(counts.types())}",
                          stacklevel=2)
            empty = pd.DataFrame({"ds": pd.Series(dtype="datetime64[ns]"), "y": pd.Series(dtype=float)})
            return empty, empty.copy()
        series = counts.series(key)
        if len(series) <= self._month_pred:
            raise InvalidInputError(f"{key.label} has {len(series)} complete months, fewer than months_pred + 1")
        frame = pd.DataFrame({"ds": series.index.to_timestamp(), "y": series.to_numpy(dtype=float)})
        return frame.iloc[: -self._month_pred].reset_index(drop=True), frame.iloc[-self._month_pred:].reset_index(drop=True)

    def model_train(self, train: pd.DataFrame) -> None:
        """Fit on ``train`` (``ds``, ``y``). Consecutive months, at least MIN_TRAINING_MONTHS of
        them, get the project's model; anything else goes to Prophet's ``fit`` as it is, with
        the seed's configuration, as the seed did (Prophet says what is wrong with it)."""
        history = _monthly(train)
        if history is not None and len(history) >= MIN_TRAINING_MONTHS:
            self.forecaster = CrimeForecaster().fit(history)
            self.model = self.forecaster.prophet
            return
        from prophet import Prophet  # heavy: imported only to fit

        self.forecaster = None
        self.model = Prophet(**SEED_PROPHET_ARGS)
        self.model.fit(train)

    def model_predict(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(forecast, predictions)``: the fit over history and future, and the
        ``months_pred`` months after the training data (``ds``, ``yhat``, bounds)."""
        if self.model is None:
            raise RuntimeError("train the model (model_train) or assign one before predicting")
        if self.forecaster is not None and self.forecaster.prophet is self.model:
            future = self.forecaster.predict(self._month_pred)
            predictions = future.assign(ds=future["month"].dt.to_timestamp()).drop(columns="month")
            # in-sample: the Prophet member's fit, with the model's one-month-ahead band
            fitted = self.model.predict(self.model.history[["ds"]])
            yhat = np.maximum(np.expm1(fitted["yhat"].to_numpy()), 0.0)
            history = self.forecaster.history
            half = interval_half_width(history.to_numpy(dtype=float), 1, self.forecaster.settings)[0]
            in_sample = pd.DataFrame({"ds": fitted["ds"], "yhat": yhat,
                                      "yhat_lower": np.maximum(np.sqrt(yhat) - half, 0.0) ** 2,
                                      "yhat_upper": (np.sqrt(yhat) + half) ** 2})
        else:  # a plain Prophet model assigned from outside, as the seed's tests do
            future = self.model.make_future_dataframe(periods=self._month_pred, freq="MS", include_history=True)
            in_sample = self.model.predict(future)[["ds", "yhat", "yhat_lower", "yhat_upper"]]
            predictions = in_sample.iloc[-self._month_pred:]
            in_sample = in_sample.iloc[: -self._month_pred]
        columns = ["ds", "yhat", "yhat_lower", "yhat_upper"]
        forecast = pd.concat([in_sample[columns], predictions[columns]], ignore_index=True)
        return forecast, predictions[columns].reset_index(drop=True)

    def model_evaluation(self, test: pd.DataFrame, predictions: pd.DataFrame) -> Evaluation:
        actual, predicted = test["y"].to_numpy(dtype=float), predictions["yhat"].to_numpy(dtype=float)[: len(test)]
        return Evaluation(metrics.mae(actual, predicted), metrics.rmse(actual, predicted), metrics.r2(actual, predicted))


def _monthly(frame: pd.DataFrame) -> pd.Series | None:
    """``y`` indexed by month when ``ds`` is a run of consecutive months, else None."""
    try:
        months = pd.PeriodIndex(pd.to_datetime(frame["ds"]), freq="M")
        values = frame["y"].to_numpy(dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    if len(months) == 0 or not (months == pd.period_range(months[0], periods=len(months), freq="M")).all():
        return None
    return pd.Series(values, index=months)
