"""The routes behind the page's comparisons, unusual months, downloads and rollback, on moto."""

from __future__ import annotations

import copy
import csv
from datetime import date
import io
import json
from typing import Any

import pandas as pd

from crimecast.domain import comparison
from crimecast.domain.keys import SeriesKey
from crimecast.domain.months import add_months, month_range
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, live_evaluation, runs
from crimecast.settings import LiveThreshold
from tests.functions.conftest import body, invoke, load_event

OLD, NEW = "v20260401T000000Z", "v20260601T000000Z"
HISTORY = month_range("2023-01", "2026-05")  # complete through 2026-04, 2026-05 partial


def _count(area: int, month: str) -> int:
    return 100 + area + (int(month[:4]) - 2023) * 12 + int(month[5:7])  # +12 a year: every figure is known


def _item(key: SeriesKey, version: str, through: str) -> dict[str, Any]:
    history = [{"month": m, "count": _count(key.community_area or 0, m), "partial": m > through}
               for m in HISTORY if m <= add_months(through, 1)]
    first = add_months(through, 1)
    forecast = [{"month": add_months(first, i), "yhat": 150.0, "yhat_lower": 140.0, "yhat_upper": 160.0} for i in range(24)]
    metrics = {"model": {"mae": 5.0, "mase": 0.8, "coverage": 0.8}, "seasonal_naive": {"mae": 6.0}}
    return forecasts.series_item(key, version, f"{version[1:5]}-01-01T00:00:00Z", history, forecast, metrics)


def _publish(stores, version: str, through: str, areas=(25, 8), promote=True) -> None:
    keys = [SeriesKey(a, "THEFT") for a in areas]
    items = [_item(k, version, through) for k in keys]
    forecasts.publish_version(stores, version, items)
    forecasts.write_catalog(stores, version, keys, {"series": len(keys), "mase": {"median": 0.8}},
                            [{"series": "47:THEFT", "reason": "too few reports"}])
    if promote:
        forecasts.promote(stores, version, "2026-01-01T00:00:00Z", replaces=(stores.series.champion() or {}).get("model_version"))


def _get(path: str, query: dict[str, str] | None = None, function: str = "predict", headers: dict | None = None) -> dict:
    event = copy.deepcopy(load_event("predict-health"))
    event.update(path=path, resource=path, httpMethod="GET", queryStringParameters=query,
                 multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None)
    event["headers"] = {**(event.get("headers") or {}), **(headers or {})}
    if function == "evaluate":
        event["requestContext"]["authorizer"] = {"principalId": "admin", "username": "admin", "roles": "admin,viewer"}
    return invoke(function, event)


def _promote(version: str, reason: str | None, roles: str = "admin,viewer") -> dict:
    event = copy.deepcopy(load_event("evaluate-promote"))
    event.update(path=f"/models/{version}/promote", pathParameters={"version": version},
                 body=json.dumps({"reason": reason} if reason is not None else {}))
    event["requestContext"]["authorizer"] = {"principalId": "ana", "username": "ana", "roles": roles}
    return invoke("evaluate", event)


def test_year_comparison_counts_complete_months_only() -> None:
    history = [{"month": m, "count": _count(25, m), "partial": m == "2026-05"} for m in HISTORY]
    forecast = [{"month": add_months("2026-05", i), "yhat": 150.0} for i in range(24)]
    found = comparison.year_comparison(history, forecast, "2026-04")
    last = sum(_count(25, add_months("2026-04", -i)) for i in range(12))
    before = sum(_count(25, add_months("2025-04", -i)) for i in range(12))
    assert found["last_12"]["now"] == last and found["last_12"]["before"] == before
    assert found["last_12"]["change"] == last - before == 144
    assert found["year_to_date"]["now"] == sum(_count(25, f"2026-0{m}") for m in range(1, 5))
    assert found["year_to_date"]["change"] == 48 and found["year_to_date"]["from"] == "2026-01"
    assert found["next_12"] == {"from": "2026-05", "to": "2027-04", **comparison.change(1800.0, last)}
    assert comparison.year_comparison(history[-5:], forecast, "2026-04")["last_12"]["now"] is None


def test_csv_quotes_formulas_and_leaves_none_empty() -> None:
    text = comparison.to_csv(["a", "b", "c"], [{"a": "=cmd()", "b": None, "c": -3}])
    assert text.splitlines() == ["a,b,c", "'=cmd(),,-3"]


def test_csv_neutralises_every_formula_start_owasp_lists_and_keeps_signed_numbers() -> None:
    """OWASP's CSV injection list: = + - @ TAB CR. A TAB or CR before a number is not a number's
    start (Python's float() would skip it), so it is neutralised too."""
    risky = ["=1+1", "+cmd|' /C calc'!A0", "-2+3+cmd()", "@SUM(1+1)", "\t=1+1", "\r=1+1", "\t-1", "\r+1", "\t", "-", "+"]
    kept = ["-3", "+4.5", "-1e3", "plain", " =1+1", "a=1", ""]
    rows = list(csv.reader(io.StringIO(comparison.to_csv(["v"], [{"v": v} for v in risky + kept]))))[1:]
    assert [r[0] for r in rows] == ["'" + v for v in risky] + kept


def test_predict_serves_the_comparison_and_csv(aws) -> None:
    _publish(aws, NEW, "2026-04")
    answer = body(_get("/predict", {"community_area": "25", "crime_type": "THEFT"}))
    assert answer["comparison"]["last_12"]["change"] == 144
    response = _get("/predict", {"community_area": "25", "crime_type": "THEFT", "format": "csv"})
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Content-Type"][0].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response["body"])))
    assert list(rows[0]) == list(forecasts.PREDICTION_CSV)
    by_month = {r["month"]: r for r in rows}
    assert by_month["2026-04"]["reported"] == str(_count(25, "2026-04")) and by_month["2026-04"]["forecast"] == ""
    assert by_month["2026-05"]["partial"] == "true" and by_month["2026-05"]["forecast"] == "150.0"
    assert {r["model_version"] for r in rows} == {NEW} and {r["data_through"] for r in rows} == {"2026-04"}
    by_accept = _get("/predict", {"community_area": "25", "crime_type": "THEFT"}, headers={"Accept": "text/csv"})
    assert by_accept["body"] == response["body"]
    assert _get("/predict", {"format": "xml"})["statusCode"] == 400


def test_map_lists_every_area_and_the_change_from_last_year(aws) -> None:
    _publish(aws, NEW, "2026-04")
    answer = body(_get("/predict/map", {"crime_type": "THEFT"}))
    row = next(r for r in answer["areas"] if r["community_area"] == 25)
    assert row["last_year"] == _count(25, "2025-05") and row["change_pct"] == round(100 * (150 - row["last_year"]) / row["last_year"], 1)
    missing = {m["community_area"]: m["reason"] for m in answer["missing"]}
    assert len(missing) == 75 and missing[47] == "too few reports"
    rows = list(csv.DictReader(io.StringIO(_get("/predict/map", {"crime_type": "THEFT", "format": "csv"})["body"])))
    assert [int(r["community_area"]) for r in rows] == list(range(1, 78))
    assert rows[46]["no_forecast_reason"] == "too few reports" and rows[24]["expected"] == "150.0"


JUDGED_AREAS = (25, 8, 24, 32, 6, 28, 43, 71, 1, 2, 3, 4)


def _judge_april(stores, april: dict[int, int]) -> None:
    """OLD (data through 2026-03, 2026-04 forecast at 150, band 140..160) is the champion when
    2026-04 arrives: the live evaluation judges it, then NEW is trained on it."""
    _publish(stores, OLD, "2026-03", areas=JUDGED_AREAS)
    rows = [{"month": m, "community_area": a, "primary_type": "THEFT", "count": april.get(a, 150) if m == "2026-04" else 150}
            for a in JUDGED_AREAS for m in month_range("2023-01", "2026-04")]
    counts = counts_from_tidy(pd.DataFrame(rows), as_of=date(2030, 1, 1))
    detail, _ = live_evaluation.score_champion(stores, OLD, counts, LiveThreshold(), "run-test")
    assert detail["series_evaluated"] == len(JUDGED_AREAS)
    _publish(stores, NEW, "2026-04", areas=JUDGED_AREAS)


def test_alerts_list_the_months_the_loop_found_unusual_not_every_month_outside_its_band(aws) -> None:
    # Area 25 reported 400 (far above 140..160); area 8 165: outside its band, as 1 month in 5 is by chance.
    _judge_april(aws, {25: 400, 8: 165})
    answer = body(_get("/alerts", {"crime_type": "THEFT"}))
    assert answer["series_checked"] == len(JUDGED_AREAS) and answer["outside_band"] == 2
    assert answer["above"] == 1 and answer["below"] == 0 and answer["false_discovery_rate"] == LiveThreshold().q
    assert answer["no_earlier_forecast"] == 0 and len(answer["alerts"]) == 1
    first = answer["alerts"][0]
    assert first["issued_by"] == OLD and first["month"] == "2026-04" and first["direction"] == "above"
    assert first["series"] == "25:THEFT" and first["rank"] == 1 and first["z"] > 10
    assert "1 month in 5" in answer["note"] and "retraining alarm" in answer["note"]
    unusual = body(_get("/predict", {"community_area": "25", "crime_type": "THEFT"}))["unusual"]
    assert [(u["month"], u["direction"]) for u in unusual] == [("2026-04", "above")]
    assert body(_get("/predict", {"community_area": "8", "crime_type": "THEFT"}))["unusual"] == []


def test_a_calm_month_has_no_unusual_series(aws) -> None:
    _judge_april(aws, {8: 165})
    answer = body(_get("/alerts", {}))
    assert answer["series_checked"] == len(JUDGED_AREAS) and answer["outside_band"] == 1 and answer["alerts"] == []


def test_alerts_without_an_earlier_forecast_judge_nothing(aws) -> None:
    _publish(aws, NEW, "2026-04")
    answer = body(_get("/alerts", {}))
    assert answer["alerts"] == [] and answer["no_earlier_forecast"] == 2 and answer["series_checked"] == 0
    malformed = _get("/alerts", {"month": "2026-13"})  # malformed: a 400, as on /predict/map (was a 422)
    assert malformed["statusCode"] == 400 and "YYYY-MM" in body(malformed)["error"]["message"]


def test_rollback_serves_the_previous_version_and_is_recorded(aws) -> None:
    _publish(aws, OLD, "2026-03")
    _publish(aws, NEW, "2026-04")
    listed = body(_get("/models", function="evaluate"))
    assert listed["champion"] == NEW and [v["version"] for v in listed["versions"]] == [NEW, OLD]
    assert listed["versions"][1]["backtest"]["median_mase"] == 0.8 and listed["versions"][1]["promoted"]["by"] == "retrain"
    assert _promote(OLD, "x", roles="viewer")["statusCode"] == 403
    assert _promote(OLD, "   ")["statusCode"] == 400
    assert _promote("v20200101T000000Z", "why")["statusCode"] == 404
    assert _promote(NEW, "why")["statusCode"] == 409
    response = _promote(OLD, "the new one over-forecasts")
    assert response["statusCode"] == 200, response["body"]
    run = body(response)
    assert run["kind"] == "promote" and run["status"] == "succeeded"
    assert run["detail"]["by"] == "ana" and run["detail"]["reason"] == "the new one over-forecasts"
    assert run["detail"]["previous"] == NEW
    assert body(_get("/predict", {"community_area": "25", "crime_type": "THEFT"}))["model_version"] == OLD
    assert runs.recent_runs(aws, "promote")[0]["run_id"] == run["run_id"]


def test_an_incomplete_version_is_refused(aws) -> None:
    _publish(aws, NEW, "2026-04")
    _publish(aws, OLD, "2026-03", promote=False)
    forecasts.write_catalog(aws, OLD, [SeriesKey(a, "THEFT") for a in (25, 8, 32)], {"series": 3})
    response = _promote(OLD, "try it")
    assert response["statusCode"] == 409 and "incomplete" in body(response)["error"]["message"]
