"""The retrain workflow's three handlers, driven the way the state machine drives them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from crimecast.adapters.stores import Stores, use_stores
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import retrain
from crimecast.jobs.counts import store_counts
from local.template import granted_resources, load_template
from tests.conftest import REPO, seasonal_series, tidy_frame
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function

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
    assert result == {"trained": ["25:THEFT"], "failed": []}
    assert aws.blobs.get_bytes(f"models/{planned['version']}/25:THEFT.json")

    with granted(aws, "RetrainPromoteFunction"):
        finished = steps.promote_handler({"run_id": run["run_id"], "version": planned["version"], "results": [result]},
                                           FakeContext())
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
    result = retrain.train_batch(aws, {"run_id": "r", "version": "v1", "series": ["25:THEFT", "24:THEFT"]})
    assert result["trained"] == ["25:THEFT"]
    assert result["failed"][0]["series"] == "24:THEFT" and "no series" in result["failed"][0]["error"]


def test_training_without_counts_is_a_clear_error(aws) -> None:
    run = body(invoke("retrain", load_event("retrain-api")))
    with pytest.raises(InvalidInputError, match="no monthly counts in the bucket yet"):
        retrain.plan(aws, run["run_id"])
