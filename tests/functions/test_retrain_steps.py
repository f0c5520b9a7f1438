"""Retrain end to end on moto: skips with reasons, the promotion rule, crash safety, the local runner."""

from __future__ import annotations

from datetime import date
import json

import pandas as pd
import pytest

from crimecast import settings
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


def test_a_worse_candidate_is_not_promoted(aws) -> None:
    _healthy(aws)
    first = retrain.run_locally(aws, workers=1)
    noisy = [tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"),
             tidy_frame(seasonal_series("2018-01", 72, level=300, seed=3), 8, "THEFT")]
    rng = __import__("numpy").random.default_rng(1)
    for frame in noisy:  # the same series, with the last two years made erratic
        frame.loc[frame.index[-24:], "count"] = rng.integers(0, 600, 24)
    _store(aws, noisy)
    second = retrain.run_locally(aws, workers=1)
    assert second["promoted"] is False and "worse than the champion" in second["reason"]
    assert forecasts.champion_version(aws) == first["version"]
    kept = json.loads(aws.series.get("__summary__", second["version"])["payload"])
    assert kept["series"] == second["series_trained"]  # the candidate's metrics stay queryable by version


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




def test_promotion_rule() -> None:
    summary = {"series": 3, "mase": {"median": 0.8}}
    assert retrain.promotion_decision(summary, None, 0.0) == (True, "no champion yet")
    assert retrain.promotion_decision(summary, {"mase": {"median": 0.8}}, 0.0)[0] is True
    assert retrain.promotion_decision(summary, {"mase": {"median": 0.7}}, 0.0)[0] is False
    assert retrain.promotion_decision(summary, {"mase": {"median": 0.7}}, 0.2)[0] is True
    assert retrain.promotion_decision({"series": 0, "mase": {"median": None}}, None, 0.0)[0] is False


def test_a_champion_that_degraded_live_is_judged_by_its_live_accuracy() -> None:
    """Its backtest covered older months than the candidate's: the replay showed retrain after
    retrain refused against a backtest the champion no longer matched."""
    summary = {"series": 3, "mase": {"median": 0.9}}
    degraded = {"mase": {"median": 0.7}, "live": {"median_live_mase": 1.1}}
    promoted, reason = retrain.promotion_decision(summary, degraded, 0.0)
    assert promoted is True and "1.100 (live since training)" in reason
    steady = {"mase": {"median": 0.7}, "live": {"median_live_mase": 0.6}}
    assert retrain.promotion_decision(summary, steady, 0.0) == (False, "median MASE 0.900 is worse than the champion's 0.700 "
                                                                       "(backtest; limit 0.700)")


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
