"""``bench/replay.py`` scores the service and the fixed policies on the same series each month
(a mean over different series is no comparison), and reconciles each policy's forecasts over the
series the service's retrain would plan at that policy's origin: one that is no longer worth a
model drops out, one that became worth one joins."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def replay_tool():
    return bench_module("replay")


def _forecast(yhat: float) -> dict[str, float]:
    return {"yhat": yhat, "yhat_lower": yhat - 1, "yhat_upper": yhat + 1}


def test_a_series_the_service_no_longer_forecasts_is_scored_for_no_one(replay_tool) -> None:
    month = "2017-03"
    results = [{"label": "8:THEFT", "scale": 10.0, "months": {month: {"actual": 100.0}}},
               {"label": "8:KIDNAPPING", "scale": 0.5, "months": {month: {"actual": 0.0}}}]
    published = {"8:THEFT": {month: _forecast(110.0)}}  # KIDNAPPING dropped by the service's retrain
    policies = {p: {"8:THEFT": {month: _forecast(105.0)}, "8:KIDNAPPING": {month: _forecast(2.0)}}
                for p in ("never", "schedule", "alarm")}
    live, scored = replay_tool.live_scores(month, results, published, policies)
    assert scored == 1
    assert live["service"]["mase"] == pytest.approx(1.0)  # |100 - 110| / 10
    assert all(live[p]["mase"] == pytest.approx(0.5) for p in ("never", "schedule", "alarm"))  # KIDNAPPING's 4.0 left out


def _tidy() -> pd.DataFrame:
    rows = [{"month": str(m), "community_area": area, "primary_type": crime, "count": count}
            for m in pd.period_range("2015-01", "2016-12", freq="M")
            for area, crime, count in ((0, "THEFT", 5), (1, "THEFT", 40), (1, "BATTERY", 20), (2, "THEFT", 30), (2, "BATTERY", 5))]
    return pd.DataFrame(rows)


def test_trained_through_is_when_each_policy_last_trained(replay_tool) -> None:
    as_of, month = pd.Period("2016-10", "M"), pd.Period("2016-12", "M")
    assert replay_tool.trained_through("never", month, as_of, ["2016-11"]) == as_of
    assert replay_tool.trained_through("schedule", month, as_of, []) == pd.Period("2016-11", "M")
    assert replay_tool.trained_through("alarm", month, as_of, ["2016-11", "2016-12"]) == pd.Period("2016-11", "M")
    assert replay_tool.trained_through("alarm", month, as_of, ["2016-12"]) == as_of  # an alarm after it is no help


def test_policies_are_reconciled_as_the_service_reconciles(replay_tool) -> None:
    month = "2016-12"
    raw = {"city:ALL": 110.0, "city:THEFT": 70.0, "city:BATTERY": 30.0, "1:ALL": 60.0, "2:ALL": 40.0,
           "1:THEFT": 30.0, "1:BATTERY": 10.0, "2:THEFT": 20.0, "2:BATTERY": 5.0}  # cells short of their areas
    forecasts = {p: {label: {month: _forecast(y)} for label, y in raw.items()} for p in ("never", "schedule")}
    out = replay_tool.reconciled_policies(forecasts, _tidy(), pd.Period("2016-10", "M"), [])
    for policy in ("never", "schedule"):
        got = {label: f[month]["yhat"] for label, f in out[policy].items()}
        assert got["1:THEFT"] + got["1:BATTERY"] == pytest.approx(got["1:ALL"], abs=0.01)  # served to the cent
        assert got["2:THEFT"] + got["2:BATTERY"] == pytest.approx(got["2:ALL"], abs=0.01)
        assert all(round(y, 2) == y for y in got.values())
        # the areas hold 95 of the city's 100 reports a month: 5 no area holds
        assert got["1:ALL"] + got["2:ALL"] == pytest.approx(got["city:ALL"] * 0.95, abs=0.01)
        assert got["city:THEFT"] + got["city:BATTERY"] == pytest.approx(got["city:ALL"], abs=0.01)
        assert out[policy]["1:THEFT"][month]["yhat_lower"] < got["1:THEFT"] < out[policy]["1:THEFT"][month]["yhat_upper"]
    assert forecasts["schedule"]["1:THEFT"][month]["yhat"] == 30.0  # the model's own forecasts are left as they were



def test_policies_reconcile_only_the_series_a_retrain_would_plan(replay_tool) -> None:
    """A cell the service's retrain no longer plans is not served, so it adds to no total: its area's
    other cells hold what they held of the area, as in the service's reconciliation."""
    month, as_of = "2016-12", pd.Period("2016-10", "M")
    raw = {"city:ALL": 110.0, "city:THEFT": 70.0, "city:BATTERY": 30.0, "1:ALL": 60.0, "2:ALL": 40.0,
           "1:THEFT": 30.0, "1:BATTERY": 10.0, "2:THEFT": 20.0, "2:BATTERY": 5.0}
    forecasts = {"schedule": {label: {month: _forecast(y)} for label, y in raw.items()}}
    planned = {pd.Period("2016-11", "M"): frozenset(raw) - {"2:BATTERY"}}
    out = replay_tool.reconciled_policies(forecasts, _tidy(), as_of, [], planned)["schedule"]
    assert month not in out["2:BATTERY"]
    assert out["2:THEFT"][month]["yhat"] == pytest.approx(out["2:ALL"][month]["yhat"] * 30 / 35, abs=0.01)  # 30 of 35 a month
    every = replay_tool.reconciled_policies(forecasts, _tidy(), as_of, [])["schedule"]
    assert every["2:THEFT"][month]["yhat"] + every["2:BATTERY"][month]["yhat"] == pytest.approx(every["2:ALL"][month]["yhat"], abs=0.01)


def _joining_tidy() -> pd.DataFrame:
    """Five years of two steady cells, and a third with reports from 2014-12 only: 23 months with a
    report by 2016-10, 24 (enough for a model) by 2016-11."""
    rows = [{"month": str(m), "community_area": 1, "primary_type": crime, "count": count + m.month % 3}
            for m in pd.period_range("2012-01", "2017-01", freq="M") for crime, count in (("THEFT", 40), ("BATTERY", 20))]
    rows += [{"month": str(m), "community_area": 1, "primary_type": "ARSON", "count": 2 + m.month % 2}
             for m in pd.period_range("2014-12", "2017-01", freq="M")]
    return pd.DataFrame(rows)


def test_a_series_that_becomes_worth_a_model_is_forecast_from_the_retrain_that_plans_it(replay_tool) -> None:
    counts = replay_tool.counts_from_tidy(_joining_tidy())
    origins = list(pd.period_range("2016-10", periods=2, freq="M"))
    planned = replay_tool.planned_series(counts, origins, None)
    assert "1:ARSON" not in planned[origins[0]] and "1:ARSON" in planned[origins[1]]
    assert {"1:THEFT", "1:BATTERY"} <= planned[origins[0]]
    months = tuple(pd.period_range("2016-11", periods=2, freq="M"))
    joining = replay_tool.joining_forecasts(counts, planned, planned[origins[0]], months, ["2016-11"], workers=1)
    assert set(joining["schedule"]) == set(joining["alarm"]) == {"1:ARSON"}  # the steady cells are the policies' own
    assert list(joining["schedule"]["1:ARSON"]) == list(joining["alarm"]["1:ARSON"]) == ["2016-12"]  # not 2016-11
    assert 1 < joining["schedule"]["1:ARSON"]["2016-12"]["yhat"] < 5
    assert replay_tool.joining_forecasts(counts, planned, planned[origins[0]], months, [], workers=1)["alarm"] == {}


def test_a_joining_series_is_forecast_by_the_alarm_policy_from_its_latest_alarm(replay_tool) -> None:
    """The alarm policy's forecast of a series that joined comes from the latest alarm's retrain
    before the month (a later one replaces an earlier one); the schedule's from the month before."""
    counts = replay_tool.counts_from_tidy(_joining_tidy())
    origins = list(pd.period_range("2016-10", periods=3, freq="M"))
    planned = replay_tool.planned_series(counts, origins, None)
    months = tuple(pd.period_range("2016-11", periods=3, freq="M"))
    both = replay_tool.joining_forecasts(counts, planned, planned[origins[0]], months, ["2016-11", "2016-12"], workers=1)
    assert list(both["schedule"]["1:ARSON"]) == list(both["alarm"]["1:ARSON"]) == ["2016-12", "2017-01"]
    assert both["alarm"]["1:ARSON"] == both["schedule"]["1:ARSON"]  # each month from the retrain just before it
    first = replay_tool.joining_forecasts(counts, planned, planned[origins[0]], months, ["2016-11"], workers=1)
    assert first["alarm"]["1:ARSON"]["2016-12"] == both["schedule"]["1:ARSON"]["2016-12"]
    assert first["alarm"]["1:ARSON"]["2017-01"] != both["schedule"]["1:ARSON"]["2017-01"]  # two months ahead of 2016-11
