import numpy as np
import pandas as pd
import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.domain.model import MIN_TRAINING_MONTHS, CrimeForecaster, seasonal_naive, seasonal_profile, seed_prophet
from tests.conftest import seasonal_series


def test_seasonal_naive_repeats_last_year() -> None:
    history = pd.Series(range(24), index=pd.period_range("2020-01", periods=24, freq="M"))
    assert seasonal_naive(history, 14).tolist() == [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 12, 13]


def test_seasonal_profile_follows_level_and_shape() -> None:
    shape = np.array([1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1], dtype=float)
    history = pd.Series(np.concatenate([shape * 10, shape * 10, shape * 20]), index=pd.period_range("2019-01", periods=36, freq="M"))
    forecast = seasonal_profile(history, 12, years=3)
    # level = last year's mean (20 * 14 / 12); June and July twice the other months
    assert forecast[5] == pytest.approx(2 * forecast[0])
    assert forecast.mean() == pytest.approx(20 * 14 / 12)


def test_forecast_is_non_negative_with_an_interval_around_it() -> None:
    history = seasonal_series(months=96, level=3)  # a rare crime: many zero months
    forecast = CrimeForecaster().fit(history).predict(12)
    assert len(forecast) == 12 and forecast["month"].iloc[0] == history.index[-1] + 1
    assert (forecast["yhat_lower"] >= 0).all()
    assert (forecast["yhat_lower"] <= forecast["yhat"]).all() and (forecast["yhat"] <= forecast["yhat_upper"]).all()


def test_forecast_tracks_the_seasonal_shape() -> None:
    history = seasonal_series(months=96, level=200)
    forecast = CrimeForecaster().fit(history).predict(12).set_index("month")["yhat"]
    july, january = forecast[forecast.index.month == 7].iloc[0], forecast[forecast.index.month == 1].iloc[0]
    assert july > january * 1.3  # the synthetic summer peak is ~1.6x the winter low


def test_model_round_trips_through_json() -> None:
    history = seasonal_series(months=60)
    model = CrimeForecaster().fit(history)
    restored = CrimeForecaster.from_json(model.to_json())
    before, after = model.predict(6), restored.predict(6)
    np.testing.assert_allclose(before["yhat"], after["yhat"])
    assert '"format": "crimecast.forecaster/1"' in model.to_json()


def test_too_short_history_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=str(MIN_TRAINING_MONTHS)):
        CrimeForecaster().fit(seasonal_series(months=MIN_TRAINING_MONTHS - 1))


def test_seed_reference_forecasts_the_next_months() -> None:
    history = seasonal_series(months=48)
    forecast = seed_prophet(history, 3)
    assert forecast["ds"].dt.to_period("M").tolist() == list(pd.period_range(history.index[-1] + 1, periods=3, freq="M"))
