import json

import numpy as np
import pandas as pd
import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.domain.model import (
    MIN_TRAINING_MONTHS,
    CrimeForecaster,
    ModelSettings,
    seasonal_index,
    seasonal_naive,
    seed_prophet,
)
from tests.conftest import seasonal_series


def test_seasonal_naive_repeats_last_year() -> None:
    history = pd.Series(range(24), index=pd.period_range("2020-01", periods=24, freq="M"))
    assert seasonal_naive(history, 14).tolist() == [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 12, 13]


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
    assert '"format": "crimecast.forecaster/2"' in model.to_json()
    assert "prophet" in json.loads(model.to_json())


def test_without_a_prophet_member_nothing_of_prophet_is_fitted_or_saved() -> None:
    history = seasonal_series(months=60)
    model = CrimeForecaster(ModelSettings(prophet_weight=0.0)).fit(history)
    assert model.prophet is None and model.timings.fits == 0
    restored = CrimeForecaster.from_json(model.to_json())
    assert "prophet" not in json.loads(model.to_json())
    np.testing.assert_allclose(model.predict(6)["yhat"], restored.predict(6)["yhat"])


def test_a_model_saved_in_the_old_format_is_refused_with_a_reason() -> None:
    with pytest.raises(InvalidInputError, match="retrain"):
        CrimeForecaster.from_json(json.dumps({"format": "crimecast.forecaster/1", "history": {}}))


def test_prophet_member_is_fitted_once_without_sampling() -> None:
    model = CrimeForecaster().fit(seasonal_series(months=60))
    assert model.timings.fits == 1 and model.prophet.uncertainty_samples == 0


def test_80_percent_band_covers_about_80_percent_of_a_poisson_series() -> None:
    inside = []
    for seed in range(40):
        series = seasonal_series(months=108, level=60, seed=seed)
        train, test = series.iloc[:96], series.iloc[96:].to_numpy()
        forecast = CrimeForecaster().fit(train).predict(12)
        inside += list((test >= forecast["yhat_lower"]) & (test <= forecast["yhat_upper"]))
    assert 0.72 <= np.mean(inside) <= 0.95


def test_sparse_series_gets_a_count_sized_band() -> None:
    rng = np.random.default_rng(3)
    history = pd.Series(rng.poisson(2.0, 96), index=pd.period_range("2010-01", periods=96, freq="M"))
    forecast = CrimeForecaster().fit(history).predict(12)
    assert forecast["yhat"].between(1.0, 3.5).all()
    assert (forecast["yhat_lower"] >= 0).all() and (forecast["yhat_lower"] < 1.5).all()
    # Poisson(2): 90% of months at or below 4; the band reaches that but not absurdly far
    assert forecast["yhat_upper"].between(3.5, 9).all()


def test_all_zero_history_forecasts_zero_with_a_small_band() -> None:
    history = pd.Series(0, index=pd.period_range("2015-01", periods=48, freq="M"))
    forecast = CrimeForecaster().fit(history).predict(12)
    assert (forecast["yhat"] == 0).all() and (forecast["yhat_lower"] == 0).all()
    assert (forecast["yhat_upper"] > 0).all() and (forecast["yhat_upper"] < 1).all()


def test_wider_interval_width_gives_wider_bands_growing_with_horizon() -> None:
    history = seasonal_series(months=96, level=80)
    narrow = CrimeForecaster(ModelSettings(interval_width=0.8)).fit(history).predict(12)
    wide = CrimeForecaster(ModelSettings(interval_width=0.95)).fit(history).predict(12)
    assert ((wide["yhat_upper"] - wide["yhat_lower"]) > (narrow["yhat_upper"] - narrow["yhat_lower"])).all()
    width = np.sqrt(narrow["yhat_upper"]) - np.sqrt(narrow["yhat_lower"])
    assert width.iloc[-1] > width.iloc[0]


def test_seasonal_index_of_a_sparse_series_is_shrunk_towards_flat() -> None:
    shape = np.array([1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1], dtype=float)
    dense, _ = seasonal_index(np.tile(shape * 100, 8), years=8, prior_counts=30)
    sparse, _ = seasonal_index(np.tile(shape * 0.5, 8), years=8, prior_counts=30)
    assert dense[5] / dense[0] == pytest.approx(3, rel=0.05)
    assert 1 < sparse[5] / sparse[0] < 1.5


def test_too_short_history_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=str(MIN_TRAINING_MONTHS)):
        CrimeForecaster().fit(seasonal_series(months=MIN_TRAINING_MONTHS - 1))


def test_seed_reference_forecasts_the_next_months() -> None:
    history = seasonal_series(months=48)
    forecast = seed_prophet(history, 3)
    assert forecast["ds"].dt.to_period("M").tolist() == list(pd.period_range(history.index[-1] + 1, periods=3, freq="M"))


# --- a gap between two sources: unknown months, never zeros ---------------------------------

GAP = ("2018-11", "2023-12")


def _with_gap(before: float = 100.0, after: float = 160.0) -> pd.Series:
    """2010-01..2018-10 at ``before`` and 2024 at ``after`` (the same summer peak), NaN between."""
    old = seasonal_series("2010-01", 106, level=before, seed=3).astype(float)
    new = seasonal_series("2024-01", 12, level=after, seed=4).astype(float)
    months = pd.period_range("2010-01", "2024-12", freq="M")
    return pd.concat([old, new]).reindex(months).rename("25:ASSAULT")


def test_a_series_with_a_gap_forecasts_from_the_month_after_its_data_with_finite_bands() -> None:
    history = _with_gap()
    model = CrimeForecaster().fit(history)
    forecast = model.predict(24)
    assert str(forecast["month"].iloc[0]) == "2025-01" and str(forecast["month"].iloc[-1]) == "2026-12"
    values = forecast[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    assert (forecast["yhat_lower"] < forecast["yhat"]).all() and (forecast["yhat"] < forecast["yhat_upper"]).all()
    # the level is the one after the gap (160 a month), not a mean with 62 zero months nor the old 100
    assert 140 < forecast["yhat"].iloc[:12].mean() < 185
    july, january = forecast.set_index("month")["yhat"].loc[["2025-07", "2025-01"]]
    assert july > january * 1.2  # the season learnt from the whole years on both sides


def test_the_gap_is_missing_not_zero_and_absent_months_are_the_same_as_nan() -> None:
    history = _with_gap()
    gap = (history.index >= GAP[0]) & (history.index <= GAP[1])
    as_nan = CrimeForecaster().fit(history).predict(12)["yhat"]
    absent = CrimeForecaster().fit(history.dropna()).predict(12)["yhat"]
    np.testing.assert_allclose(as_nan, absent)
    as_zeros = CrimeForecaster().fit(history.where(~gap, 0.0)).predict(12)["yhat"]
    assert not np.allclose(as_nan, as_zeros)
    # Prophet, too, saw the known months only
    model = CrimeForecaster().fit(history)
    seen = model.prophet.history["ds"].dt.to_period("M")
    assert not ((seen >= GAP[0]) & (seen <= GAP[1])).any() and str(seen.max()) == "2024-12"


def test_a_model_with_a_gap_round_trips_through_json_with_nulls() -> None:
    model = CrimeForecaster().fit(_with_gap())
    text = model.to_json()
    doc = json.loads(text)  # strict JSON: no NaN literal
    assert "NaN" not in text and doc["history"]["values"].count(None) == 62
    again = CrimeForecaster.from_json(text)
    pd.testing.assert_frame_equal(again.predict(6), model.predict(6))


def test_a_gap_counts_only_its_known_months_towards_the_minimum() -> None:
    sparse = pd.Series([5.0] * 12 + [np.nan] * 30 + [5.0] * 11, index=pd.period_range("2015-01", periods=53, freq="M"))
    with pytest.raises(InvalidInputError, match="23 complete months"):
        CrimeForecaster().fit(sparse)


def test_seasonal_naive_across_a_gap_takes_the_latest_known_year_of_each_month() -> None:
    values = [float(m) for m in range(1, 13)] * 2 + [np.nan] * 7 + [100.0 + m for m in range(8, 13)]
    history = pd.Series(values, index=pd.period_range("2020-01", periods=36, freq="M"))
    assert seasonal_naive(history, 12).tolist() == [1, 2, 3, 4, 5, 6, 7, 108, 109, 110, 111, 112]


# --- after a break: the band widens with the recent yearly changes ----------------------------

def _half_widths(history: pd.Series, settings: ModelSettings | None = None) -> np.ndarray:
    """The band's half-width per month in sqrt-count space (where it is symmetric)."""
    forecast = CrimeForecaster(settings or ModelSettings(prophet_weight=0.0)).fit(history).predict(12)
    return np.sqrt(forecast["yhat_upper"].to_numpy()) - np.sqrt(forecast["yhat"].to_numpy())


def _long_run_only() -> ModelSettings:
    return ModelSettings(prophet_weight=0.0, interval_recent_months=())


def _stepped(months_after: int, drop: float = 0.5, seed: int = 7) -> pd.Series:
    """A calm series whose last ``months_after`` months fell to ``drop`` x the level (a break)."""
    series = seasonal_series(months=120, level=200, seed=seed).astype(float)
    series.iloc[-months_after:] *= drop
    return series


@pytest.mark.parametrize("months_after", [3, 6, 12, 24])
def test_after_a_step_the_band_widens_from_the_first_months_and_for_two_years(months_after: int) -> None:
    stepped = _stepped(months_after)
    assert (_half_widths(stepped) > 1.3 * _half_widths(stepped, _long_run_only())).all()


def test_long_after_a_step_the_band_is_the_long_run_one_again() -> None:
    settled = _stepped(months_after=40)  # the last 36 months (the recent windows) all after the step
    np.testing.assert_allclose(_half_widths(settled), _half_widths(settled, _long_run_only()), rtol=0.2)


def test_on_calm_series_the_recent_spreads_change_the_band_little() -> None:
    ratios = [(_half_widths(s) / _half_widths(s, _long_run_only())).mean()
              for s in (seasonal_series(months=120, level=level, seed=seed).astype(float)
                        for seed in range(12) for level in (3, 60, 400))]
    assert min(ratios) >= 1.0  # never narrower than the long-run band
    assert np.mean(ratios) < 1.15 and np.median(ratios) < 1.1


def test_a_model_saved_before_the_recent_spreads_keeps_its_band() -> None:
    stepped = _stepped(months_after=6)
    model = CrimeForecaster(ModelSettings(prophet_weight=0.0)).fit(stepped)
    doc = json.loads(model.to_json())
    assert doc["settings"]["interval_recent_months"] == [12, 24]
    restored = CrimeForecaster.from_json(model.to_json())
    assert restored.settings == model.settings  # the windows come back as a tuple
    pd.testing.assert_frame_equal(restored.predict(12), model.predict(12))
    del doc["settings"]["interval_recent_months"]  # as written by the code before them
    old = CrimeForecaster.from_json(json.dumps(doc))
    assert old.settings.interval_recent_months == ()
    np.testing.assert_allclose(old.predict(12)["yhat_upper"], CrimeForecaster(_long_run_only()).fit(stepped).predict(12)["yhat_upper"])
    assert (old.predict(12)["yhat_upper"] < model.predict(12)["yhat_upper"]).all()
