"""Retrain end to end on moto: skips with reasons, the promotion rule, crash safety, the local runner."""

from __future__ import annotations

from datetime import date
import json

import pandas as pd
import pytest

from crimecast import settings
from crimecast.domain.keys import SeriesKey
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, retrain, runs
from crimecast.jobs.counts import store_counts
from tests.conftest import seasonal_series, tidy_frame

PAST = date(2030, 1, 1)


def _store(stores, frames: list[pd.DataFrame]) -> None:
    store_counts(stores, counts_from_tidy(pd.concat(frames, ignore_index=True), as_of=PAST))


def _healthy(stores) -> None:
    sparse = tidy_frame(seasonal_series("2018-01", 72, level=80), 24, "ARSON")
    sparse.loc[sparse.index[:-10], "count"] = 0  # ten non-zero months only
    _store(stores, [tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"),
                     tidy_frame(seasonal_series("2018-01", 72, level=300, seed=3), 8, "THEFT"), sparse])


def test_plan_skips_thin_series_and_says_why(aws) -> None:
    _healthy(aws)
    run = runs.start_run(aws, "retrain")
    planned = retrain.plan(aws, run["run_id"])
    manifest = aws.blobs.get_json(planned["manifest_key"])
    assert {"8:THEFT", "25:THEFT", "city:THEFT"} <= set(manifest["planned"])
    reasons = {s["series"]: s["reason"] for s in manifest["skipped"]}
    assert "24:ARSON" not in manifest["planned"] and "10 months with any report" in reasons["24:ARSON"]


def test_plan_forecasts_only_the_series_a_deployment_names(aws, monkeypatch) -> None:
    """CRIMECAST_FORECAST_SERIES (a replay over files of totals only sets it): other series,
    however long their history, are skipped with that reason."""
    _healthy(aws)
    monkeypatch.setenv("CRIMECAST_FORECAST_SERIES", "city:THEFT, 25:THEFT")
    settings.reset()
    run = runs.start_run(aws, "retrain")
    manifest = aws.blobs.get_json(retrain.plan(aws, run["run_id"])["manifest_key"])
    assert sorted(manifest["planned"]) == ["25:THEFT", "city:THEFT"]
    reasons = {s["series"]: s["reason"] for s in manifest["skipped"]}
    assert "CRIMECAST_FORECAST_SERIES" in reasons["8:THEFT"]
    monkeypatch.delenv("CRIMECAST_FORECAST_SERIES")
    settings.reset()


def test_first_run_promotes_and_reports(aws) -> None:
    _healthy(aws)
    summary = retrain.run_locally(aws, workers=1)  # in-process moto: forked workers would write to copies
    assert summary["series_trained"] == summary["series_planned"] >= 3 and summary["series_failed"] == 0
    assert summary["series_skipped"] >= 1
    assert summary["promoted"] is True and summary["reason"] == "no champion yet"
    assert forecasts.champion_version(aws) == summary["version"]
    catalog = forecasts.catalog(aws)  # every series the plan skipped is listed, with why
    assert len(catalog["skipped"]) == summary["series_skipped"] and "24:ARSON" not in catalog["series"]
    assert {"series": "24:ARSON", "reason": "only 10 months with any report in the last five years; 24 needed"} in \
        catalog["skipped"]
    evaluation = forecasts.accuracy(aws)
    assert evaluation["summary"]["series"] == summary["series_trained"]
    assert set(evaluation["summary"]) >= {"mae", "mase", "share_beating_seasonal_naive", "coverage", "worst"}
    one = forecasts.accuracy(aws, "Austin", "theft")["metrics"]
    assert len(one["origins"]) == 2 and one["model"]["mase"] is not None and one["seasonal_naive"]["mae"] is not None


def _erratic(months: int, last: int) -> list[pd.DataFrame]:
    """The two healthy THEFT series over ``months`` months, their last ``last`` months made erratic."""
    frames = [tidy_frame(seasonal_series("2018-01", months, level=80), 25, "THEFT"),
              tidy_frame(seasonal_series("2018-01", months, level=300, seed=3), 8, "THEFT")]
    rng = __import__("numpy").random.default_rng(1)
    for frame in frames:
        frame.loc[frame.index[-last:], "count"] = rng.integers(0, 600, last)
    return frames


def test_a_candidate_worse_on_the_same_data_is_not_promoted(aws) -> None:
    """Counts revised without a new month (the last two years made erratic): the candidate knows
    the same months as the champion, and its skill against the seasonal naive is worse."""
    _healthy(aws)
    first = retrain.run_locally(aws, workers=1)
    _store(aws, _erratic(72, 24))
    second = retrain.run_locally(aws, workers=1)
    assert second["promoted"] is False and "on the same data as the champion" in second["reason"]
    assert "worse than the champion's" in second["reason"]
    assert forecasts.champion_version(aws) == first["version"]
    kept = json.loads(aws.series.get("__summary__", second["version"])["payload"])
    assert kept["series"] == second["series_trained"]  # the candidate's metrics stay queryable by version


def test_a_candidate_on_newer_data_is_promoted_though_its_backtest_error_is_higher(aws) -> None:
    """Six erratic months more (a break): the candidate's backtest covers them, the champion's
    does not, so their errors are not compared; the candidate, not broken, serves."""
    _healthy(aws)
    first = retrain.run_locally(aws, workers=1)
    _store(aws, _erratic(78, 6))
    second = retrain.run_locally(aws, workers=1)
    old = json.loads(aws.series.get("__summary__", first["version"])["payload"])
    new = json.loads(aws.series.get("__summary__", second["version"])["payload"])
    assert new["mase"]["median"] > old["mase"]["median"] and new["data_through"] > old["data_through"]
    assert second["promoted"] is True and second["reason"].startswith(
        f"trained on data through {new['data_through']}, newer than the champion's ({old['data_through']})")
    assert forecasts.champion_version(aws) == second["version"]


def test_a_crash_mid_run_leaves_the_champion_serving_and_a_rerun_starts_clean(aws) -> None:
    _healthy(aws)
    champion = retrain.run_locally(aws, workers=1)["version"]
    crashed = runs.start_run(aws, "retrain")
    planned = retrain.plan(aws, crashed["run_id"], batch_size=1)
    retrain.train_batch(aws, aws.blobs.get_json(planned["batches_key"])[0])  # one batch, then the machine dies
    assert forecasts.champion_version(aws) == champion
    assert runs.get_run(aws, crashed["run_id"])["status"] == "running"
    rerun = retrain.run_locally(aws, workers=1)
    assert rerun["version"] not in (champion, planned["version"]) and rerun["series_failed"] == 0




def _version(relative_mase: float | None, data_through: str | None = "2024-06", series: int = 3) -> dict:
    return {"series": series, "relative_mase": relative_mase, "data_through": data_through}


def test_a_retrain_on_newer_data_is_promoted_unless_broken() -> None:
    """The champion's backtest covered older years: after a break the replay showed retrain
    after retrain refused against it, and a stale champion serving. Newer data wins."""
    champion = _version(0.60, "2024-05")
    promoted, reason = retrain.promotion_decision(_version(0.95), champion, 0.0)
    assert promoted is True
    assert reason == ("trained on data through 2024-06, newer than the champion's (2024-05); "
                      "its backtest error is 0.95x the seasonal naive's on the same months")
    assert retrain.promotion_decision(_version(0.95), {"mase": {"median": 0.7}}, 0.0)[0] is True  # a summary of old
    broken, why = retrain.promotion_decision(_version(2.4), champion, 0.0)
    assert broken is False and why.endswith("2.40x the seasonal naive's on the same months, more than 2x: the candidate is broken")


def test_on_the_same_data_the_candidate_must_match_the_champions_skill() -> None:
    champion = _version(0.80)
    assert retrain.promotion_decision(_version(0.80), champion, 0.0)[0] is True
    refused = retrain.promotion_decision(_version(0.90), champion, 0.0)
    assert refused == (False, "on the same data as the champion, its backtest error is 0.90x the seasonal naive's on the "
                              "same months, worse than the champion's 0.80x (limit 0.80x)")
    assert retrain.promotion_decision(_version(0.90), champion, 0.2)[0] is True
    assert retrain.promotion_decision(_version(0.90), {**champion, "data_through": "2024-07"}, 0.0)[0] is False


def test_a_candidate_without_a_comparable_backtest_is_refused() -> None:
    assert retrain.promotion_decision(_version(0.5), None, 0.0) == (True, "no champion yet")
    assert retrain.promotion_decision(_version(None, series=0), None, 0.0) == (False, "the candidate has no trained series")
    for missing in (None, float("nan"), float("inf")):
        assert retrain.promotion_decision(_version(missing), None, 0.0)[0] is False


@pytest.mark.parametrize(("name", "value", "expected"),
                         [("CRIMECAST_BACKTEST_ORIGINS", "3", 3), ("CRIMECAST_PROMOTION_TOLERANCE", "0.1", 0.1)])
def test_settings_come_from_the_environment(monkeypatch, name: str, value: str, expected: float) -> None:
    monkeypatch.setenv(name, value)
    options = settings.read(settings.RetrainOptions)
    assert expected in (options.backtest_origins, options.promotion_tolerance)


def test_forecasts_of_levels_ending_together_add_up(aws) -> None:
    """Area x type forecasts sum to their area's, areas (less the reports no area holds) and
    types to the city's, within 1%, though every series was fitted on its own."""
    frames = [tidy_frame(seasonal_series("2018-01", 72, level=level, seed=seed), area, crime_type)
              for seed, (area, crime_type, level) in enumerate([(25, "THEFT", 80), (25, "BATTERY", 140), (8, "THEFT", 300),
                                                                 (8, "BATTERY", 60), (32, "THEFT", 200), (32, "BATTERY", 35)])]
    unplaced = tidy_frame(seasonal_series("2018-01", 72, level=12, seed=9), None, "THEFT")  # reports with no area
    frames.append(unplaced.assign(community_area="0"))
    _store(aws, frames)
    summary = retrain.run_locally(aws, workers=1)
    run = runs.get_run(aws, summary["run_id"])
    coherence = run["detail"]["coherence"]
    assert coherence["series_adjusted"] >= 9
    gaps = next(iter(coherence["max_relative_gap"].values()))
    assert all(gap is not None and gap <= 0.01 for gap in gaps.values()), gaps

    def first_month(area: str, crime_type: str) -> float:
        return forecasts.prediction(aws, area, crime_type, 1)["forecast"][0]["yhat"]

    for area in ("25", "8", "32"):
        cells = first_month(area, "THEFT") + first_month(area, "BATTERY")
        assert cells == pytest.approx(first_month(area, "ALL"), rel=0.01)
    areas = sum(first_month(area, "ALL") for area in ("25", "8", "32"))
    share = aws.blobs.get_json(retrain.manifest_key(summary["run_id"]))["unplaced_share"]["ALL"]
    assert 0.01 < share < 0.05 and areas == pytest.approx(first_month("city", "ALL") * (1 - share), rel=0.01)
    assert first_month("city", "THEFT") + first_month("city", "BATTERY") == pytest.approx(first_month("city", "ALL"), rel=0.01)


def test_a_type_without_its_siblings_is_not_scaled_up_to_its_areas_total(aws) -> None:
    """Austin's THEFT is a third of Austin's reports and the only type forecast there (the file
    has no other): reconciled, it keeps to a third of Austin's total rather than becoming all of it."""
    _store(aws, [tidy_frame(seasonal_series("2018-01", 72, level=300, seed=1), 25, "ALL"),
                 tidy_frame(seasonal_series("2018-01", 72, level=100, seed=2), 25, "THEFT"),
                 tidy_frame(seasonal_series("2018-01", 72, level=3000, seed=3), None, "ALL"),
                 tidy_frame(seasonal_series("2018-01", 72, level=1000, seed=4), None, "THEFT")])
    summary = retrain.run_locally(aws, workers=1)
    run = runs.get_run(aws, summary["run_id"])
    gaps = next(iter(run["detail"]["coherence"]["max_relative_gap"].values()))
    assert all(gap is not None and gap <= 0.01 for gap in gaps.values()), gaps

    def first_month(area: str, crime_type: str) -> float:
        return forecasts.prediction(aws, area, crime_type, 1)["forecast"][0]["yhat"]

    assert 0.25 < first_month("25", "THEFT") / first_month("25", "ALL") < 0.42
    assert 0.25 < first_month("city", "THEFT") / first_month("city", "ALL") < 0.42
    assert retrain.covered_shares({}) == {}


def test_a_type_s_coverage_is_the_share_its_cells_hold() -> None:
    """What reconciliation adds a type's cells up to: the areas with a forecast hold 5% of the
    city's STALKING over the last 12 months; the city's ALL is held by its types."""
    from crimecast.domain.keys import SeriesKey

    def payload(count: float) -> dict:
        return {"history": [{"month": f"2016-{m:02d}", "count": count} for m in range(1, 13)]
                + [{"month": "2017-01", "count": 999, "partial": True}]}

    shares = retrain.covered_shares({SeriesKey(None, "STALKING"): payload(40), SeriesKey(1, "STALKING"): payload(2),
                                     SeriesKey(1, "ALL"): payload(150), SeriesKey(None, "ALL"): payload(400),
                                     SeriesKey(3, "STALKING"): payload(9)})  # no area total: not reconciled, not counted
    assert shares == {SeriesKey(None, "STALKING"): 0.05, SeriesKey(1, "ALL"): round(2 / 150, 6), SeriesKey(None, "ALL"): 0.1}


def test_a_retrain_writes_each_forecast_once(aws, monkeypatch) -> None:
    """Every series' forecast is put once per retrain, reconciled, by promote's batch writes
    (25 items a request): the train batches write theirs to S3 only."""
    from botocore.client import BaseClient

    requests: list[tuple[str, dict]] = []
    real = BaseClient._make_api_call

    def counting(self, operation: str, params: dict) -> dict:
        if self.meta.service_model.service_name == "dynamodb":
            requests.append((operation, params))
        return real(self, operation, params)

    _store(aws, [tidy_frame(seasonal_series("2018-01", 72, level=level, seed=seed), area, crime_type)
                 for seed, (area, crime_type, level) in enumerate([(25, "THEFT", 80), (25, "BATTERY", 140),
                                                                    (8, "THEFT", 300), (8, "BATTERY", 60)])])
    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    summary = retrain.run_locally(aws, workers=1, batch_size=2)  # five batches
    forecast_writes = [[r["PutRequest"]["Item"] for r in rs if "type_version" in r["PutRequest"]["Item"]]
                       for op, p in requests if op == "BatchWriteItem" for rs in p["RequestItems"].values()]
    written = [item for request in forecast_writes for item in request]
    assert summary["series_trained"] == 9 and len([w for w in forecast_writes if w]) == 1
    assert sorted(i["series"] for i in written) == sorted(forecasts.catalog(aws)["series"])  # each once
    assert all(json.loads(i["payload"]).get("reconciled") for i in written)
    assert not [op for op, _ in requests if op in ("PutItem", "UpdateItem") and "type_version" in str(_)]


def test_a_forecast_is_rounded_once_after_reconciliation(aws) -> None:
    """The batches keep the model's numbers whole; what is served is those reconciled, then
    rounded to the cent once: within half a cent of the reconciled point (rounding before
    reconciling and again after moved points by a whole cent)."""
    _store(aws, [tidy_frame(seasonal_series("2018-01", 72, level=level, seed=seed), area, crime_type)
                 for seed, (area, crime_type, level) in enumerate([(25, "THEFT", 80.3), (25, "BATTERY", 14.1),
                                                                    (8, "THEFT", 30.7), (8, "BATTERY", 6.2)])])
    summary = retrain.run_locally(aws, workers=1, batch_size=3)
    batches = runs.get_run(aws, summary["run_id"])["detail"]["batches"]
    results = retrain.batch_results(aws, [{"result_key": retrain.result_key({"run_id": summary["run_id"], "batch": n})}
                                          for n in range(batches)])
    items = [item for result in results for item in result.get("items", [])]
    model = [row[c] for item in items for row in json.loads(item["payload"])["forecast"] for c in ("yhat", "yhat_lower")]
    assert len(items) == 9 and any(round(value, 2) != value for value in model)  # unrounded until published
    retrain.reconcile_items(items, aws.blobs.get_json(retrain.manifest_key(summary["run_id"]))["unplaced_share"])
    for item in items:
        key = SeriesKey.parse(item["series"])
        served = forecasts.prediction(aws, str(key.community_area or "city"), key.primary_type, 6)["forecast"]
        exact = json.loads(item["payload"])["forecast"][:6]
        assert [abs(s["yhat"] - e["yhat"]) <= 0.005 + 1e-9 for s, e in zip(served, exact, strict=True)] == [True] * 6
        assert served == [s | forecasts.served_row(e["month"], e["yhat"], e["yhat_lower"], e["yhat_upper"])
                          for s, e in zip(served, exact, strict=True)]


@pytest.mark.parametrize(("lower", "upper", "count", "inside"), [
    (0.004, 5.4, 0, False),  # rounded to the nearest cent the band would start at 0 and hold the month with no report
    (0.0, 5.4, 0, True),
    (2.996, 7.0, 3, True),
    (3.004, 7.0, 3, False),
    (1.0, 6.996, 7, False),  # rounded to the nearest cent it would end at 7.00 and hold 7
    (1.0, 7.0, 7, True),
])
def test_a_served_band_holds_a_count_exactly_when_the_model_s_band_does(lower, upper, count, inside) -> None:
    row = forecasts.served_row("2017-03", 5.0, lower, upper)
    assert (row["yhat_lower"] <= count <= row["yhat_upper"]) is inside is (lower <= count <= upper)
    assert row["yhat_lower"] <= row["yhat"] == 5.0 <= row["yhat_upper"]
    assert all(round(row[c], 2) == row[c] for c in ("yhat", "yhat_lower", "yhat_upper"))


def test_a_band_narrower_than_a_cent_keeps_its_point() -> None:
    row = forecasts.served_row("2017-03", 0.004, 0.003, 0.0045)
    assert row["yhat_lower"] <= row["yhat"] <= row["yhat_upper"]
