"""The retrain workflow's three handlers, driven the way the state machine drives them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

import boto3
import pandas as pd
import pytest

from crimecast.adapters.stores import Stores, use_stores
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import pipeline, retrain, runs
from crimecast.jobs.counts import store_counts
from local.aws.template import granted_resources, load_template
from local.workflow.machine import wait_for_execution
from tests.conftest import REPO, seasonal_series, tidy_frame
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function, write_map_results

STORE_OF = {"DataBucket": ("blobs",), "SeriesTable": ("series",), "RunsTable": ("runs", "leases")}


class Denied:
    """A store the function has no grant for in template.yaml: any use fails the test."""

    def __init__(self, function: str, resource: str) -> None:
        self.function, self.resource = function, resource

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{self.function} used {self.resource} ({name}) without a grant in template.yaml")


@contextmanager
def granted(stores: Stores, function: str) -> Iterator[None]:
    """Serve only the stores ``function``'s policies in template.yaml name."""
    grants = granted_resources(load_template(REPO / "template.yaml"), function)
    use_stores(replace(stores, **{name: Denied(function, resource) for resource, names in STORE_OF.items()
                                  if resource not in grants for name in names}))
    try:
        yield
    finally:
        use_stores(stores)


def test_plan_train_promote_serves_the_new_forecasts(aws) -> None:
    frame = tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT")
    store_counts(aws, counts_from_tidy(frame, as_of=date(2030, 1, 1)))
    steps = load_function("retrain", "steps")
    run = body(invoke("retrain", load_event("retrain-api")))

    with granted(aws, "RetrainPlanFunction"):  # each step with only what the template grants it
        planned = steps.plan_handler({"run_id": run["run_id"]}, FakeContext())
    batches = aws.blobs.get_json(planned["batches_key"])
    assert planned["batches"] == len(batches) == 1 and batches[0]["series"] == ["25:THEFT"]

    with granted(aws, "RetrainTrainFunction"):
        result = steps.train_handler({"Items": batches}, FakeContext())
    key = f"runs/{run['run_id']}/results/00000.json"
    assert result == {"result_keys": [key], "trained": 1, "failed": 0}  # the result itself is in S3
    stored = aws.blobs.get_json(key)
    assert stored["trained"] == ["25:THEFT"] and stored["failed"] == [] and [i["series"] for i in stored["items"]] == ["25:THEFT"]
    assert aws.series.query_type_version(f"THEFT#{planned['version']}") == []  # promote writes the forecasts
    assert aws.blobs.get_bytes(f"models/{planned['version']}/25:THEFT.json")

    map_results = write_map_results(aws, [result])  # what the Map's ResultWriter leaves in S3
    with granted(aws, "RetrainPromoteFunction"):
        finished = steps.promote_handler({"run_id": run["run_id"], "version": planned["version"],
                                          "map_results": map_results}, FakeContext())
    assert finished["status"] == "succeeded" and finished["detail"]["promotion"]["promoted"] is True

    event = load_event("predict-predict")
    event["queryStringParameters"] = event["multiValueQueryStringParameters"] = None
    event["queryStringParameters"] = {"community_area": "Austin", "crime_type": "THEFT", "months": "24"}
    prediction = body(invoke("predict", event))
    assert prediction["model_version"] == planned["version"] and len(prediction["forecast"]) == 24
    assert prediction["forecast"][0]["month"] == "2024-01" and all(f["yhat_lower"] >= 0 for f in prediction["forecast"])
    assert prediction["metrics"]["model"]["mae"] > 0


def test_a_failing_series_is_recorded_and_the_batch_goes_on(aws) -> None:
    frame = tidy_frame(seasonal_series("2018-01", 72), 25, "THEFT")
    store_counts(aws, counts_from_tidy(frame, as_of=date(2030, 1, 1)))
    ref = retrain.train_batch(aws, {"run_id": "r", "version": "v1", "batch": 3, "series": ["25:THEFT", "24:THEFT"]})
    assert ref == {"result_key": "runs/r/results/00003.json", "trained": 1, "failed": 1}
    result = aws.blobs.get_json(ref["result_key"])
    assert result["trained"] == ["25:THEFT"]
    assert result["failed"][0]["series"] == "24:THEFT" and "no series" in result["failed"][0]["error"]


def test_promote_counts_the_series_of_a_batch_that_never_finished_as_failed(aws) -> None:
    frame = tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT")
    store_counts(aws, counts_from_tidy(pd.concat([frame, tidy_frame(seasonal_series("2018-01", 72, level=90, seed=2),
                                                                    8, "THEFT")]), as_of=date(2030, 1, 1)))
    run = body(invoke("retrain", load_event("retrain-api")))
    planned = retrain.plan(aws, run["run_id"], batch_size=1)
    first, *lost = aws.blobs.get_json(planned["batches_key"])  # the other batches' children failed for good
    outputs = [retrain.train_batch(aws, first)]
    finished = retrain.promote(aws, run["run_id"], planned["version"], retrain.map_run_outputs(
        aws, write_map_results(aws, outputs, failed=lost)))
    assert finished["detail"]["series_trained"] == 1 and finished["detail"]["series_failed"] == len(lost) == 2
    assert finished["status"] == "failed" and finished["detail"]["error_code"] == "series_missing"  # 2 of 3 missing
    assert finished["detail"]["failures"] == [{"series": b["series"][0], "code": "internal",
                                               "error": retrain.UNFINISHED["error"]} for b in lost]


def test_training_without_counts_is_a_clear_error(aws) -> None:
    run = body(invoke("retrain", load_event("retrain-api")))
    with pytest.raises(InvalidInputError, match="no monthly counts in the bucket yet"):
        retrain.plan(aws, run["run_id"])


# --- the template's own state machine, run by moto's interpreter ------------------------------


def _two_series(aws) -> None:
    store_counts(aws, counts_from_tidy(pd.concat([
        tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"),
        tidy_frame(seasonal_series("2018-01", 72, level=90, seed=2), 8, "THEFT")]), as_of=date(2030, 1, 1)))


def _retrain_to_the_end(aws, roles) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /retrain (as the retrain function), then the execution's end and the run as GET
    /runs/<id> shows it."""
    started = body(roles.invoke("RetrainFunction", load_event("retrain-api")))
    described = wait_for_execution(started["detail"]["execution_arn"])
    return described, pipeline.run_with_workflow(aws, runs.get_run(aws, started["run_id"], admin=True))


def _outcomes(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["state"], s["outcome"]) for s in run["detail"]["workflow"]["states"]]


@pytest.mark.workflow
def test_post_retrain_runs_the_template_s_state_machine_to_a_served_version(aws, iam_workflow, monkeypatch) -> None:
    """Every role enforced, as on the stack: the retrain function's, each step's, the machine's own."""
    monkeypatch.setenv("RETRAIN_BATCH_SIZE", "1")  # three Map items: two areas and the city
    _two_series(aws)
    described, run = _retrain_to_the_end(aws, iam_workflow)
    assert described["status"] == "SUCCEEDED", described
    assert run["status"] == "succeeded" and run["detail"]["series_trained"] == run["detail"]["series_planned"] == 3, run
    assert run["detail"]["workflow"]["status"] == "SUCCEEDED"
    assert _outcomes(run) == [("Plan", "succeeded"), ("Train", "succeeded"), ("Promote", "succeeded"),
                              ("Outcome", "succeeded"), ("Done", "succeeded")]
    event = load_event("predict-predict")
    event["queryStringParameters"] = {"community_area": "Austin", "crime_type": "THEFT", "months": "12"}
    event["multiValueQueryStringParameters"] = None
    assert body(invoke("predict", event))["model_version"] == run["detail"]["version"]


@pytest.mark.workflow
def test_a_failing_step_is_caught_the_run_ends_failed_and_the_lease_goes(aws, iam_workflow) -> None:
    described, run = _retrain_to_the_end(aws, iam_workflow)  # no counts: Plan fails
    assert described["status"] == "FAILED" and described["error"] == "RetrainFailed"
    assert run["status"] == "failed" and run["detail"]["error_code"] == "workflow_failed"
    assert "InvalidInputError" in run["error_detail"]
    assert _outcomes(run) == [("Plan", "failed"), ("RecordFailure", "succeeded"), ("RunFailed", "failed")]
    assert run["detail"]["workflow"]["states"][0]["error"] == "InvalidInputError"
    assert invoke("retrain", load_event("retrain-api"))["statusCode"] == 202  # the lease went with the run


@pytest.mark.workflow
def test_more_failed_batches_than_tolerated_fail_the_map_and_the_run(aws, iam_workflow, monkeypatch) -> None:
    monkeypatch.setenv("RETRAIN_BATCH_SIZE", "1")
    _two_series(aws)
    train_batch = retrain.train_batch

    def flaky(stores: Stores, batch: dict[str, Any]) -> dict[str, Any]:
        if batch["series"] == ["8:THEFT"]:
            raise RuntimeError("the batch's Lambda crashed")
        return train_batch(stores, batch)

    monkeypatch.setattr(retrain, "train_batch", flaky)
    described, run = _retrain_to_the_end(aws, iam_workflow)
    assert described["status"] == "FAILED"
    assert _outcomes(run) == [("Plan", "succeeded"), ("Train", "failed"), ("RecordFailure", "succeeded"),
                              ("RunFailed", "failed")]
    assert run["detail"]["workflow"]["states"][1]["error"] == "States.ExceedToleratedFailureThreshold"
    assert run["status"] == "failed" and "States.ExceedToleratedFailureThreshold" in run["detail"]["error"]
    assert aws.series.champion() is None  # nothing was promoted


def test_a_lease_whose_execution_ended_unrecorded_is_taken_over(aws) -> None:
    first = body(invoke("retrain", load_event("retrain-api")))  # recorded, not run: its execution stays RUNNING
    assert invoke("retrain", load_event("retrain-api"))["statusCode"] == 409  # a live execution holds the lease
    boto3.client("stepfunctions").stop_execution(executionArn=first["detail"]["execution_arn"])  # e.g. aborted by hand
    assert invoke("retrain", load_event("retrain-api"))["statusCode"] == 202
    stale = runs.get_run(aws, first["run_id"], admin=True)
    assert stale["status"] == "failed" and stale["detail"]["error_code"] == "workflow_failed"
    assert "ABORTED" in stale["error_detail"]
