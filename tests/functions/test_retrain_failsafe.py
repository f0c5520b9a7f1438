"""Failure semantics of the retrain that lose nothing: promote refuses a version missing
series, the workflow's Catch ends the run, one retrain at a time (a lease), the champion
write is conditional on the version it replaces, and the plan pins the counts version."""

from __future__ import annotations

from datetime import date
import time
from types import SimpleNamespace

import pandas as pd
import pytest

from crimecast import settings
from crimecast.domain.errors import ConflictError, NotFoundError
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, live_evaluation, pipeline, retrain, runs
from crimecast.jobs.counts import current_manifest, store_counts
from tests.conftest import seasonal_series, tidy_frame
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function, write_map_results

PAST = date(2030, 1, 1)


def _store(stores, *areas: int, level: float = 80) -> None:
    frames = [tidy_frame(seasonal_series("2018-01", 72, level=level + 10 * n, seed=n + 1), area, "THEFT")
              for n, area in enumerate(areas)]
    store_counts(stores, counts_from_tidy(pd.concat(frames, ignore_index=True), as_of=PAST))


def _start(stores) -> dict:
    """POST /retrain as an admin (the test state machine is a stub: the run stays queued)."""
    response = invoke("retrain", load_event("retrain-api"))
    return {**body(response), "http": response["statusCode"]}


# --- promote refuses a version missing series ----------------------------------------------


def test_promote_refuses_a_version_missing_series_beyond_the_tolerance(aws) -> None:
    _store(aws, 25, 8)
    run = _start(aws)
    planned = retrain.plan(aws, run["run_id"], batch_size=1)
    first, *lost = aws.blobs.get_json(planned["batches_key"])
    finished = retrain.promote(aws, run["run_id"], planned["version"], retrain.map_run_outputs(
        aws, write_map_results(aws, [retrain.train_batch(aws, first)], failed=lost)))
    missing = [b["series"][0] for b in lost]
    assert finished["status"] == "failed" and finished["detail"]["error_code"] == "series_missing"
    assert finished["detail"]["missing_series"] == missing and finished["detail"]["series_missing"] == 2
    assert all(label in finished["detail"]["error"] for label in missing)
    assert finished["detail"]["promotion"]["promoted"] is False
    with pytest.raises(NotFoundError):  # nothing was promoted: no champion (or the old one) serves
        forecasts.champion_version(aws)
    assert _start(aws)["http"] == 202  # the run ended: its lease went with it


def test_a_version_within_the_tolerance_is_promoted(aws, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_MISSING_SERIES_TOLERANCE", "0.5")
    settings.reset()
    _store(aws, 25, 8)  # three series planned; one of them lost
    run = _start(aws)
    planned = retrain.plan(aws, run["run_id"], batch_size=1)
    *done, lost = aws.blobs.get_json(planned["batches_key"])
    finished = retrain.promote(aws, run["run_id"], planned["version"], [retrain.train_batch(aws, b) for b in done])
    assert finished["status"] == "succeeded" and finished["detail"]["promotion"]["promoted"] is True
    assert finished["detail"]["missing_series"] == lost["series"]  # still said
    assert forecasts.champion_version(aws) == planned["version"]


# --- the Catch ---------------------------------------------------------------------------------


def test_the_catch_ends_the_run_failed_with_the_error_and_releases_the_lease(aws) -> None:
    run = _start(aws)
    assert _start(aws)["http"] == 409
    steps = load_function("retrain", "steps")
    cause = "arn:aws:lambda:us-east-1:123456789012:function:train timed out after 900.00 seconds"
    failed = steps.fail_handler({"run_id": run["run_id"], "error": {"Error": "States.ExceedToleratedFailureThreshold",
                                                                   "Cause": cause}}, FakeContext())
    assert failed["status"] == "failed" and failed["detail"]["error_code"] == "workflow_failed"
    assert "States.ExceedToleratedFailureThreshold" in failed["detail"]["error"]
    assert cause not in failed["detail"]["error"]  # an ARN is for admins only
    assert cause in runs.get_run(aws, run["run_id"], admin=True)["error_detail"]
    assert _start(aws)["http"] == 202


def test_the_catch_keeps_the_outcome_of_a_run_that_already_ended(aws) -> None:
    run = _start(aws)
    runs.fail_run(aws, run["run_id"], {"code": "series_missing", "message": "3 of 4 missing"})
    ended = retrain.record_failure(aws, run["run_id"], "RetrainFailed", "")
    assert ended["detail"]["error_code"] == "series_missing"


# --- one retrain at a time ---------------------------------------------------------------------


def test_a_second_start_answers_409_with_the_running_run(aws) -> None:
    first = _start(aws)
    assert first["http"] == 202
    second = _start(aws)
    assert second["http"] == 409 and second["error"]["run_id"] == first["run_id"]
    assert first["run_id"] in second["error"]["message"]
    assert [r["run_id"] for r in runs.recent_runs(aws, "retrain")] == [first["run_id"]]  # no second run recorded


def test_the_schedule_records_that_one_is_running(aws) -> None:
    first = _start(aws)
    assert invoke("retrain", load_event("retrain-schedule")) == {"started": False, "already_running": first["run_id"]}


def test_the_lease_lapses_when_its_holder_died(aws, monkeypatch) -> None:
    monkeypatch.setenv("CRIMECAST_RETRAIN_LEASE_SECONDS", "60")
    settings.reset()
    clock = [1_800_000_000.0]  # the lease's clock, moved by hand: a loaded machine must not lapse it early
    monkeypatch.setattr(retrain, "time", SimpleNamespace(time=lambda: clock[0], monotonic=time.monotonic, sleep=time.sleep))
    first = _start(aws)  # its workflow dies without a Catch: the run stays queued
    clock[0] += 59
    assert _start(aws)["http"] == 409
    clock[0] += 2
    assert _start(aws)["http"] == 202
    assert runs.get_run(aws, first["run_id"])["status"] == "queued"


def test_the_retrain_after_an_ingest_says_one_is_already_running(aws, monkeypatch) -> None:
    aws.series.set_champion("v0", "2030-01-01T00:00:00Z", None)
    monkeypatch.setattr(live_evaluation, "score_champion",
                        lambda *args: ({"series_evaluated": 3}, "live MASE degraded on 50% of the series"))
    running = _start(aws)
    evaluated = pipeline.evaluate_live(aws, counts=object(), trigger="after ingest test")
    assert evaluated["status"] == "succeeded"
    assert evaluated["detail"]["retrain"] == {"started": False, "reason": "live MASE degraded on 50% of the series",
                                              "already_running": running["run_id"]}
    assert len(runs.recent_runs(aws, "retrain")) == 1


# --- the champion write is conditional -----------------------------------------------------------


def test_the_champion_pointer_only_replaces_the_version_named(aws) -> None:
    aws.series.set_champion("v1", "t", None)
    with pytest.raises(ConflictError, match="the champion is v1"):
        aws.series.set_champion("v2", "t", None)
    with pytest.raises(ConflictError):
        aws.series.set_champion("v2", "t", "v0")
    aws.series.set_champion("v2", "t", "v1")
    assert forecasts.champion_version(aws) == "v2"


def test_a_promote_based_on_an_older_champion_does_not_overwrite_a_newer_one(aws) -> None:
    _store(aws, 25)
    run = _start(aws)
    planned = retrain.plan(aws, run["run_id"])  # based on no champion
    aws.series.set_champion("v-newer", "2030-01-01T00:00:00Z", None)  # another promotion meanwhile
    outputs = [retrain.train_batch(aws, b) for b in aws.blobs.get_json(planned["batches_key"])]
    finished = retrain.promote(aws, run["run_id"], planned["version"], outputs)
    promotion = finished["detail"]["promotion"]
    assert promotion["promoted"] is False and promotion["superseded_by"] == "v-newer"
    assert "not overwritten" in promotion["reason"]
    assert forecasts.champion_version(aws) == "v-newer"


# --- the plan pins the counts version ------------------------------------------------------------


def test_every_batch_reads_the_counts_version_its_plan_pinned(aws) -> None:
    _store(aws, 25)
    pinned = current_manifest(aws)["version"]
    run = _start(aws)
    planned = retrain.plan(aws, run["run_id"])
    (batch,) = [b for b in aws.blobs.get_json(planned["batches_key"]) if "25:THEFT" in b["series"]]
    assert batch["counts_version"] == pinned
    assert runs.get_run(aws, run["run_id"])["detail"]["counts_version"] == pinned
    _store(aws, 8)  # an ingest publishes meanwhile: 25:THEFT is not in the new version
    assert current_manifest(aws)["version"] != pinned
    ref = retrain.train_batch(aws, batch)
    assert ref["failed"] == 0 and "25:THEFT" in aws.blobs.get_json(ref["result_key"])["trained"]


# --- the monthly schedule does not train the alarm's counts again --------------------------------


def test_the_schedule_does_not_retrain_counts_a_retrain_already_trained_on(aws) -> None:
    _store(aws, 25, 8)
    alarm = retrain.run_locally(aws, workers=1, trigger="evaluate")  # the alarm's, after the same ingest
    skipped = invoke("retrain", load_event("retrain-schedule"))
    assert skipped["status"] == "succeeded" and skipped["detail"]["skipped"] is True
    assert skipped["detail"]["trained_by"] == alarm["run_id"] and alarm["run_id"] in skipped["detail"]["reason"]
    assert skipped["detail"]["counts_version"] == current_manifest(aws)["version"]
    assert forecasts.champion_version(aws) == alarm["version"]  # nothing trained, nothing promoted
    assert _start(aws)["http"] == 202  # it took no lease: an admin's retrain still starts


def test_the_schedule_retrains_once_new_counts_are_in(aws) -> None:
    _store(aws, 25, 8)
    retrain.run_locally(aws, workers=1)
    _store(aws, 25, 8, level=90)  # the next ingest publishes a new counts version
    started = invoke("retrain", load_event("retrain-schedule"))
    assert started["status"] == "queued" and started["detail"]["trigger"] == "schedule"
    assert "skipped" not in started["detail"]
