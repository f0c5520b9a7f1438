"""Promotion that survives retries and races: a retried promote (the workflow's step, or an
admin's POST /models/{version}/promote) after its switch gives one promoted run; a promotion
that loses the race to another ends its run; a version is recorded as served only once the
conditional switch to it succeeded."""

from __future__ import annotations

import copy
from datetime import date
import json
from typing import Any

import pandas as pd
import pytest

from crimecast.adapters.series_store import PROMOTED, SeriesStore
from crimecast.domain.errors import ConflictError
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, models, retrain, runs
from crimecast.jobs.counts import store_counts
from local.aws import lambda_service
from local.workflow.machine import wait_for_execution
from tests.conftest import seasonal_series, tidy_frame
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function
from tests.functions.test_page_routes import _publish

SERVING, OLD, OLDER = "v20260601T000000Z", "v20260401T000000Z", "v20260301T000000Z"


class Crash(Exception):
    """The function dies here (a timeout, the container killed): nothing after this line runs."""


def _two_series(stores) -> None:
    store_counts(stores, counts_from_tidy(pd.concat([
        tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"),
        tidy_frame(seasonal_series("2018-01", 72, level=90, seed=2), 8, "THEFT")]), as_of=date(2030, 1, 1)))


def _trained_run(stores) -> tuple[str, str, list[dict[str, Any]]]:
    """A retrain run planned and trained, its promote step next: (run_id, version, train outputs)."""
    _two_series(stores)
    run_id = body(invoke("retrain", load_event("retrain-api")))["run_id"]
    planned = retrain.plan(stores, run_id)
    outputs = [retrain.train_batch(stores, b) for b in stores.blobs.get_json(planned["batches_key"])]
    return run_id, planned["version"], outputs


def _promote_request(version: str, reason: str = "the new one over-forecasts") -> dict[str, Any]:
    event = copy.deepcopy(load_event("evaluate-promote"))
    event.update(path=f"/models/{version}/promote", pathParameters={"version": version}, body=json.dumps({"reason": reason}))
    event["requestContext"]["authorizer"] = {"principalId": "ana", "username": "ana", "roles": "admin,viewer"}
    return invoke("evaluate", event)


def _die_once(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """The first call of ``module.name`` kills the invocation; later ones (the retry's) work."""
    real = getattr(module, name)
    calls = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise Crash(f"the invocation died in {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, dying)


def _die_writing_the_record(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """The first ``times`` writes of a promotion record beside its version (after the switch)
    kill the invocation."""
    real = SeriesStore.put_items
    left = [times]

    def put_items(self: SeriesStore, items: Any) -> None:
        items = list(items)
        if left[0] and any(item["series"] == PROMOTED for item in items):
            left[0] -= 1
            raise Crash("the invocation died writing the promotion record")
        real(self, items)

    monkeypatch.setattr(SeriesStore, "put_items", put_items)


# --- the retrain's promote step ----------------------------------------------------------------


@pytest.mark.parametrize("dies_in", ["the record", "update_run"])
def test_a_promote_step_retried_after_its_switch_records_one_promoted_run(aws, monkeypatch, dies_in: str) -> None:
    run_id, version, outputs = _trained_run(aws)
    steps = load_function("retrain", "steps")
    if dies_in == "the record":
        _die_writing_the_record(monkeypatch)
    else:
        _die_once(monkeypatch, runs, "update_run")
    with pytest.raises(Crash):  # the switch happened; the invocation died before the run said so
        steps.promote_handler({"run_id": run_id, "version": version, "results": outputs}, FakeContext())
    assert forecasts.champion_version(aws) == version and runs.get_run(aws, run_id)["status"] == "running"

    retried = steps.promote_handler({"run_id": run_id, "version": version, "results": outputs}, FakeContext())
    assert retried["status"] == "succeeded" and retried["detail"]["promotion"]["promoted"] is True, retried
    assert "superseded_by" not in retried["detail"]["promotion"]
    assert retried["detail"]["promotion"]["reason"] == "no champion yet"  # the first attempt's decision, kept
    assert [r["run_id"] for r in runs.recent_runs(aws, "retrain")] == [run_id]
    record = forecasts.promotion_record(aws, version)
    assert record["run_id"] == run_id and record["by"] == "retrain" and record["reason"] == "no champion yet"
    assert json.loads(aws.series.get(PROMOTED, version)["payload"]) == record  # written beside the version

    again = steps.promote_handler({"run_id": run_id, "version": version, "results": outputs}, FakeContext())
    assert again == runs.get_run(aws, run_id) and again["status"] == "succeeded"  # an ended run is returned as it is
    assert forecasts.promotion_record(aws, version) == record  # and recorded once


def test_a_promote_step_that_fails_after_its_switch_is_caught_as_promoted(aws, iam_roles, monkeypatch) -> None:
    """The step fails for good after the switch (no retry left): the Catch, with only its own
    grants, ends the run as what happened, promoted, not failed while its version serves."""
    run_id, version, outputs = _trained_run(aws)
    _die_writing_the_record(monkeypatch)
    with pytest.raises(Crash):
        retrain.promote(aws, run_id, version, outputs)
    roles = iam_roles()
    caught = roles.invoke("RetrainFailFunction", {"run_id": run_id, "error": {"Error": "Crash", "Cause": "died"}})
    assert caught["status"] == "succeeded" and caught["detail"]["promotion"] == {"promoted": True,
                                                                                  "reason": "no champion yet"}, caught
    assert "summary was not recorded" in caught["detail"]["note"]
    assert forecasts.champion_version(aws) == version and forecasts.promoted_by_run(aws, version, run_id)
    assert aws.leases.get(retrain.LEASE_NAME) is None  # the lease went with the run


def test_a_catch_for_a_run_that_switched_nothing_still_ends_it_failed(aws, iam_roles) -> None:
    run_id, version, _ = _trained_run(aws)
    roles = iam_roles()
    failed = roles.invoke("RetrainFailFunction", {"run_id": run_id, "error": {"Error": "States.TaskFailed", "Cause": "x"}})
    assert failed["status"] == "failed" and failed["detail"]["error_code"] == "workflow_failed"
    assert aws.series.champion() is None


def test_a_served_version_whose_record_was_never_written_gets_it_when_replaced(aws, monkeypatch) -> None:
    _publish(aws, OLD, "2026-03", promote=False)
    _publish(aws, SERVING, "2026-04", promote=False)
    _die_writing_the_record(monkeypatch)
    with pytest.raises(Crash):  # switched, then died: no retry ever comes
        forecasts.promote(aws, OLD, "2026-01-01T00:00:00Z", replaces=None, by="ana", reason="first", run_id="promote-1")
    assert aws.series.get(PROMOTED, OLD) is None and forecasts.promoted_versions(aws)[OLD]["run_id"] == "promote-1"
    forecasts.promote(aws, SERVING, "2026-01-01T00:00:00Z", replaces=OLD, by="retrain", reason="better", run_id="retrain-2")
    kept = json.loads(aws.series.get(PROMOTED, OLD)["payload"])
    assert kept["run_id"] == "promote-1" and kept["reason"] == "first"  # OLD's forecasts were issued: it keeps its record
    assert set(forecasts.promoted_versions(aws)) == {OLD, SERVING}


def test_a_promote_step_that_loses_the_race_ends_its_run_and_records_no_promotion(aws) -> None:
    run_id, version, outputs = _trained_run(aws)  # based on no champion
    aws.series.set_champion("v-newer", "2030-01-01T00:00:00Z", None)  # another promotion won meanwhile
    finished = retrain.promote(aws, run_id, version, outputs)
    assert finished["status"] == "succeeded" and finished["detail"]["promotion"]["promoted"] is False
    assert finished["detail"]["promotion"]["superseded_by"] == "v-newer"
    assert forecasts.champion_version(aws) == "v-newer"
    assert forecasts.promotion_record(aws, version) is None  # the switch failed: never recorded as served
    assert version not in forecasts.promoted_versions(aws)


class _LostAnswer:
    """moto's Lambda answers the first invoke of ``function`` with a 500 ServiceException after
    its handler ran: the call did its work and the answer was lost, which Step Functions
    retries (``Lambda.ServiceException`` in the Promote state's Retry)."""

    def __init__(self, function: str) -> None:
        self.function, self.lost = function, 0

    def wrap(self, invoke: Any) -> Any:
        from moto.core.exceptions import JsonRESTError

        def answered(fn: Any, body: str, request_headers: Any, response_headers: Any) -> Any:
            result = invoke(fn, body, request_headers, response_headers)
            if fn.function_name == self.function and not self.lost:
                self.lost += 1
                raise JsonRESTError("ServiceException", "the service failed after the function ran", code=500)
            return result

        return answered


@pytest.mark.workflow
def test_the_state_machine_retrying_promote_after_its_switch_gives_one_promoted_run(aws, monkeypatch) -> None:
    from moto.awslambda.models import LambdaFunction

    monkeypatch.setenv("RETRAIN_BATCH_SIZE", "1")
    _two_series(aws)
    lost = _LostAnswer(lambda_service.function_name("RetrainPromoteFunction"))
    monkeypatch.setattr(LambdaFunction, "invoke", lost.wrap(LambdaFunction.invoke))
    started = body(invoke("retrain", load_event("retrain-api")))
    described = wait_for_execution(started["detail"]["execution_arn"])
    assert lost.lost == 1
    from crimecast.jobs import pipeline

    run = pipeline.run_with_workflow(aws, runs.get_run(aws, started["run_id"], admin=True))
    assert described["status"] == "SUCCEEDED", described
    (promote,) = [s for s in run["detail"]["workflow"]["states"] if s["state"] == "Promote"]
    assert promote["attempts"] == 2 and promote["outcome"] == "succeeded"  # the retry happened
    assert run["status"] == "succeeded" and run["detail"]["promotion"] == {"promoted": True, "reason": "no champion yet"}
    assert forecasts.champion_version(aws) == run["detail"]["version"]
    assert [r["run_id"] for r in runs.recent_runs(aws, "retrain")] == [started["run_id"]]


# --- an admin's rollback -----------------------------------------------------------------------


def test_a_rollback_retried_after_its_switch_records_the_first_run_as_promoted(aws, monkeypatch) -> None:
    _publish(aws, OLD, "2026-03")
    _publish(aws, SERVING, "2026-04")
    _die_writing_the_record(monkeypatch, times=2)  # the first request's every attempt at it
    first = _promote_request(OLD)
    assert first["statusCode"] == 500 and forecasts.champion_version(aws) == OLD
    (pending,) = runs.recent_runs(aws, "promote")
    assert pending["status"] == "queued"

    retried = _promote_request(OLD)
    assert retried["statusCode"] == 200, retried["body"]
    run = body(retried)
    assert run["run_id"] == pending["run_id"] and run["status"] == "succeeded"
    assert run["detail"]["promotion"]["promoted"] is True and run["detail"]["previous"] == SERVING
    assert [r["run_id"] for r in runs.recent_runs(aws, "promote")] == [run["run_id"]]  # one run, promoted
    assert forecasts.promotion_record(aws, OLD)["run_id"] == run["run_id"]

    again = _promote_request(OLD)  # now it is simply serving
    assert again["statusCode"] == 409 and body(again)["error"]["run_id"] == run["run_id"]
    assert len(runs.recent_runs(aws, "promote")) == 1


def test_a_rollback_that_loses_the_race_ends_its_run_failed_and_is_not_recorded(aws, monkeypatch) -> None:
    _publish(aws, OLDER, "2026-02", promote=False)
    _publish(aws, OLD, "2026-03", promote=False)
    _publish(aws, SERVING, "2026-04")
    real_start = runs.start_run
    raced: list[dict[str, Any]] = []

    def start_then_lose_the_race(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run = real_start(*args, **kwargs)
        if not raced:  # between this request's read of the champion and its switch, another request wins
            raced.append({})
            raced[0] = _promote_request(OLDER, "the other admin's rollback")
        return run

    monkeypatch.setattr(runs, "start_run", start_then_lose_the_race)
    lost = _promote_request(OLD)
    assert raced[0]["statusCode"] == 200 and forecasts.champion_version(aws) == OLDER
    assert lost["statusCode"] == 409, lost["body"]
    error = body(lost)["error"]
    assert "not promoted" in error["message"] and OLDER in error["message"]
    run = runs.get_run(aws, error["run_id"])
    assert run["status"] == "failed" and run["detail"]["error_code"] == "superseded"  # not left queued
    assert OLDER in run["detail"]["error"]
    assert forecasts.promotion_record(aws, OLD) is None  # the switch failed: not recorded as served
    assert OLD not in forecasts.promoted_versions(aws) and OLDER in forecasts.promoted_versions(aws)


def test_the_promotion_record_is_written_only_with_the_switch(aws) -> None:
    _publish(aws, OLD, "2026-03", promote=False)
    _publish(aws, SERVING, "2026-04")
    with pytest.raises(ConflictError):
        forecasts.promote(aws, OLD, "2026-01-01T00:00:00Z", replaces="v-not-serving", by="ana", reason="x", run_id="r1")
    assert aws.series.get(PROMOTED, OLD) is None and forecasts.promotion_record(aws, OLD) is None
    assert forecasts.champion_version(aws) == SERVING and OLD not in forecasts.promoted_versions(aws)
    forecasts.promote(aws, OLD, "2026-01-01T00:00:00Z", replaces=SERVING, by="ana", reason="x", run_id="r1")
    assert forecasts.promotion_record(aws, OLD)["run_id"] == "r1" and forecasts.promoted_by_run(aws, OLD, "r1")
    assert json.loads(aws.series.get(PROMOTED, OLD)["payload"])["run_id"] == "r1"
    assert not forecasts.promoted_by_run(aws, OLD, "r2")


def test_the_rollback_reason_names_no_admin(aws) -> None:
    _publish(aws, OLD, "2026-03")
    _publish(aws, SERVING, "2026-04")
    run = models.promote_version(aws, OLD, "too high", "ana")
    assert run["detail"]["promotion"]["reason"] == "rolled back by an admin: too high"
    assert run["detail"]["by"] == "ana"  # kept for admins (runs.ADMIN_ONLY_DETAIL)
