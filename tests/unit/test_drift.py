"""The drift alarm on constructed series: calm, a step, a slow drift, one outlier month.

Each constructed month is a count drawn around a forecast whose 80% band is calibrated
(sqrt scale, as the model's), so the errors are what the alarm sees in production.
"""

from __future__ import annotations

import math
import random

import pytest

from crimecast.domain import drift

MONTHS = [f"2019-{m:02d}" for m in range(1, 13)] + [f"2020-{m:02d}" for m in range(1, 13)]
SIGMA = 0.6  # sd of sqrt(count) around the forecast's sqrt: a band of +/- 0.77 on that scale


def forecast_row(month: str, level: float) -> dict[str, float | str]:
    root = math.sqrt(level)
    return {"month": month, "yhat": level, "yhat_upper": (root + drift.BAND_Z * SIGMA) ** 2}


def draw(rng: random.Random, level: float, shift_sd: float = 0.0) -> float:
    """A count whose sqrt is the forecast's, moved by ``shift_sd`` band sds, plus noise."""
    return max(0.0, math.sqrt(level) + SIGMA * (shift_sd + rng.gauss(0, 1))) ** 2


def city(rng: random.Random, shift: dict[str, float], series: int = 97, level: float = 400.0,
         moved: float = 1.0) -> list[dict[str, dict[str, float]]]:
    """Per evaluation month, every series' scored months so far (the newest three), as the
    live evaluation keeps them; ``shift`` (month -> band sds) moves a share ``moved`` of series."""
    kept: dict[str, dict[str, float]] = {}
    out = []
    for month in MONTHS:
        new = {}
        for s in range(series):
            label = f"{s + 1}:THEFT"
            sd = shift.get(month, 0.0) if s < moved * series else 0.0
            row = forecast_row(month, level)
            new[label] = drift.band_errors([row], {month: draw(rng, level, sd)})
        kept = drift.merge_errors(kept, new)
        out.append(kept)
    return out


def test_a_month_on_its_forecast_has_error_zero_and_the_band_edge_is_1_28():
    row = forecast_row("2020-01", 100.0)
    assert drift.standardised_error(100.0, 100.0, row["yhat_upper"]) == pytest.approx(0.0)
    assert drift.standardised_error(row["yhat_upper"], 100.0, row["yhat_upper"]) == pytest.approx(drift.BAND_Z)
    assert drift.standardised_error(5.0, 0.0, 0.0) is None  # a band with no width says nothing


def test_calm_months_raise_the_alarm_in_no_more_evaluations_than_the_rate_it_promises():
    """While the forecasts hold, at most q of the evaluations alarm (simulated: 200 cities of
    97 series x 24 months; the promise is 1%, measured with room for chance)."""
    rng = random.Random(7)
    rule = drift.DriftRule()
    evaluations = alarms = 0
    for _ in range(200):
        for errors in city(rng, {}):
            evaluations += 1
            alarms += drift.decide(errors, rule)["alarm"]
    assert evaluations == 4800
    assert alarms / evaluations <= rule.q * 1.5


def test_a_step_like_covid_sounds_in_its_first_month():
    rng = random.Random(1)
    history = city(rng, {m: -5.0 for m in MONTHS if m >= "2020-04"})
    decisions = {m: drift.decide(e) for m, e in zip(MONTHS, history)}
    assert not any(decisions[m]["alarm"] for m in MONTHS if m < "2020-04")
    april = decisions["2020-04"]
    assert april["alarm"]
    assert april["evidence"]["series_moved"] >= 90
    assert "fell below their bands" in april["evidence"]["summary"]


def test_a_slow_drift_is_found_once_it_has_lasted():
    """Half the series creep upwards, a third of a band sd more each month from 2020-01: the
    alarm stays quiet while the shift is within chance and sounds within six months."""
    rng = random.Random(3)
    shift = {m: 0.33 * (i + 1) for i, m in enumerate(m for m in MONTHS if m >= "2020-01")}
    history = city(rng, shift, moved=0.5)
    alarms = [m for m, e in zip(MONTHS, history) if drift.decide(e)["alarm"]]
    assert alarms and alarms[0] <= "2020-06"
    assert all(m >= "2020-01" for m in alarms)
    moved = drift.decide(history[MONTHS.index(alarms[0])])["evidence"]["moved"]
    assert all(int(r["series"].split(":")[0]) <= 49 for r in moved)  # only the drifting half
    assert all(r["direction"] == "above" for r in moved)


def test_one_outlier_month_in_one_series_is_unusual_but_no_alarm():
    rng = random.Random(5)
    history = city(rng, {})
    errors = {label: dict(e) for label, e in history[12].items()}
    errors["25:THEFT"][MONTHS[12]] = 3.2  # far outside the band, once
    decision = drift.decide(errors)
    assert not decision["alarm"]
    assert decision["evidence"]["series_moved"] == 0
    assert "No series moved" in decision["evidence"]["summary"]


def test_an_outlier_so_far_out_in_one_cell_is_unusual_and_moved_but_no_alarm():
    """One area's THEFT far out: found (unusual, moved, in the evidence), but a lone cell does
    not retrain the city; its area's total or its citywide type would."""
    rng = random.Random(5)
    errors = {label: dict(e) for label, e in city(rng, {})[12].items()} | {"city:THEFT": {MONTHS[12]: 0.3}}
    errors["25:THEFT"][MONTHS[12]] = 6.0
    decision = drift.decide(errors)
    assert not decision["alarm"] and [r["series"] for r in decision["evidence"]["moved"]] == ["25:THEFT"]
    assert decision["evidence"]["cells_moved"] == 1 and decision["evidence"]["min_cells"] == 3
    assert decision["evidence"]["quiet_because"].startswith("only 1 area x type cell moved")
    assert drift.unusual(errors) == {"25:THEFT"}
    assert decision["evidence"]["summary"].startswith("THEFT in 1 of 97 areas rose above its band in the newest month")


@pytest.mark.parametrize("aggregate", ["25:ALL", "city:THEFT", "city:ALL"])
def test_the_same_outlier_on_an_aggregate_sounds_the_alarm(aggregate: str):
    rng = random.Random(5)
    errors = {label: dict(e) for label, e in city(rng, {})[12].items()}
    errors[aggregate] = {MONTHS[12]: 6.0}
    decision = drift.decide(errors)
    assert decision["alarm"] and [r["series"] for r in decision["evidence"]["moved"]] == [aggregate]
    assert decision["evidence"]["cells_moved"] == 0


def test_cells_sound_the_alarm_together_from_min_cells():
    rng = random.Random(5)
    errors = {label: dict(e) for label, e in city(rng, {})[12].items()} | {"city:THEFT": {MONTHS[12]: 0.3}}
    for moved, label in enumerate(["25:THEFT", "8:THEFT", "32:THEFT"], 1):
        errors[label][MONTHS[12]] = 6.0
        decision = drift.decide(errors)
        assert decision["evidence"]["cells_moved"] == moved
        assert decision["alarm"] is (moved >= 3)
    assert drift.decide(errors, drift.DriftRule(min_cells=4))["alarm"] is False


def test_where_only_cells_are_judged_one_cell_sounds():
    """A deployment that forecasts a few cells and no aggregate (CRIMECAST_FORECAST_SERIES):
    nothing else could sound, so a moved cell does."""
    errors = {"25:ASSAULT": {"2020-01": 8.0, "2020-02": 8.0, "2020-03": 8.0}, "8:ASSAULT": {"2020-03": 0.1}}
    decision = drift.decide(errors)
    assert decision["alarm"] and decision["evidence"]["cells_moved"] == 1
    assert "quiet_because" not in decision["evidence"]


def test_only_an_area_and_a_type_make_a_cell():
    assert drift.is_cell("25:THEFT")
    assert not any(drift.is_cell(label) for label in ("25:ALL", "city:THEFT", "city:ALL"))


def test_a_month_keeps_the_error_of_the_forecast_made_before_it():
    before = {"1:THEFT": {"2020-01": 0.5, "2020-02": -1.0}}
    after = drift.merge_errors(before, {"1:THEFT": {"2020-02": 9.0, "2020-03": 1.0}, "2:THEFT": {"2020-03": 0.1}})
    assert after == {"1:THEFT": {"2020-01": 0.5, "2020-02": -1.0, "2020-03": 1.0}, "2:THEFT": {"2020-03": 0.1}}
    longer = drift.merge_errors(after, {"1:THEFT": {"2020-04": 0.0}})
    assert list(longer["1:THEFT"]) == ["2020-02", "2020-03", "2020-04"]


def test_windows_need_consecutive_months():
    test = drift.series_test({"2020-01": 2.0, "2020-03": 2.0})
    assert test["months"] == ["2020-03"]
    assert test["p"] == pytest.approx(min(1.0, 3 * math.erfc(2.0 / math.sqrt(2))))
    assert drift.series_test({}) is None


def test_benjamini_hochberg_rejects_the_step_up_set():
    p = {"a": 0.001, "b": 0.03, "c": 0.032, "d": 0.5}
    # b alone fails its step (0.03 > 2 x 0.05 / 4), but c passes its own (0.032 <= 3 x 0.05 / 4)
    assert drift.benjamini_hochberg(p, 0.05) == {"a", "b", "c"}
    assert drift.benjamini_hochberg(p, 0.01) == {"a"}
    assert drift.benjamini_hochberg({}, 0.05) == set()
