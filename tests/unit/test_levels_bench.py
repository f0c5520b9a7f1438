"""``bench/levels.py`` reconciles its backtest forecasts as the service's retrain reconciles its own:
only the series the service would give a model, each total's children adding up to the share of
it they hold, so the backtests measure what the service serves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def levels():
    return bench_module("levels")


ORIGIN = pd.Period("2012-12", "M")


def _panel() -> tuple[pd.PeriodIndex, list[str], np.ndarray]:
    """2001-01..2013-12; area 1: THEFT 40 and BATTERY 20 a month, area 2: THEFT 30 and a KIDNAPPING
    in 6 months of the last five years (no model: fewer than 24 months with a report), area 0
    (no area): THEFT 5."""
    months = pd.period_range("2001-01", "2013-12", freq="M")
    types = ["BATTERY", "KIDNAPPING", "THEFT"]
    panel = np.zeros((len(months), 78, len(types)))
    panel[:, 1, 2], panel[:, 1, 0], panel[:, 2, 2], panel[:, 0, 2] = 40, 20, 30, 5
    panel[months.get_loc(ORIGIN) - np.arange(0, 60, 10), 2, 1] = 1
    return months, types, panel


def test_backtests_reconcile_the_series_the_service_models_to_the_share_they_hold(levels) -> None:
    series, unplaced = levels.series_from_panel(*_panel())
    # every forecast 10% under its history's level, so nothing adds up before reconciling
    forecasts = {(s.key, ORIGIN): {"yhat": np.full(12, 0.9 * s.values[:-12].mean()), "lower": np.zeros(12),
                                   "upper": np.full(12, 99.0)} for s in series}
    out, worst = levels.reconciled(series, forecasts, unplaced, [ORIGIN], "top")
    got = {key.label: f["yhat"][0] for (key, _), f in out.items()}
    assert "2:KIDNAPPING" not in got  # the service gives it no model, so it is not reconciled either
    assert got["1:THEFT"] + got["1:BATTERY"] == pytest.approx(got["1:ALL"])
    # area 2's THEFT holds all its reports of the last 12 months but 2 KIDNAPPINGs: not scaled up to stand for them
    assert got["2:THEFT"] == pytest.approx(got["2:ALL"] * 30 * 12 / (30 * 12 + 2), rel=1e-6)
    assert got["1:ALL"] + got["2:ALL"] == pytest.approx(got["city:ALL"] * (1 - 5 / 96), rel=1e-3)  # 5 of ~96 have no area
    assert worst["after"] < 1e-4 < worst["before"]


def test_backtests_score_the_month_the_live_loop_judges(levels) -> None:
    series, _ = levels.series_from_panel(*_panel())
    theft = next(s for s in series if s.key.label == "1:THEFT")
    forecast = {"yhat": np.r_[40.0, np.full(11, 80.0)], "lower": np.zeros(12), "upper": np.full(12, 99.0)}
    month_1 = levels._rows([theft], {(theft.key, ORIGIN): forecast}, [ORIGIN], horizon=1)[0]
    year = levels._rows([theft], {(theft.key, ORIGIN): forecast}, [ORIGIN])[0]
    assert month_1["model"]["mae"] == 0.0 and year["model"]["mae"] == pytest.approx(40 * 11 / 12)
