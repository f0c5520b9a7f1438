"""The ingest Lambda on moto: POST /ingest and the schedule answer at once with a queued
run and invoke the worker asynchronously; the worker does the work; repeats are idempotent."""

from __future__ import annotations

import copy
from dataclasses import dataclass
import json

import pytest

from crimecast import settings
from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.launcher import AwsLauncher
from crimecast.adapters.stores import use_stores
from crimecast.jobs import ingest, runs
from crimecast.jobs.counts import current_manifest
from tests.functions.conftest import ASYNC_INVOCATIONS, FakeContext, body, invoke, load_event, load_function
from tests.ingest.conftest import assert_same_counts, recount, stored


@pytest.fixture
def lambda_env(aws, portal, monkeypatch):
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", portal.url)
    monkeypatch.setenv("CRIMECAST_SOCRATA_PAGE_SIZE", "5000")
    settings.reset()
    return aws


def _post(request_id: str, payload: dict | None = None, headers: dict | None = None) -> dict:
    event = copy.deepcopy(load_event("ingest-api"))
    event["requestContext"]["requestId"] = request_id
    event["headers"].update(headers or {})
    if payload is not None:
        event["body"] = json.dumps(payload)
    return invoke("ingest", event)


def _run_worker(index: int = -1, context: object | None = None) -> dict:
    return load_function("ingest").lambda_handler(ASYNC_INVOCATIONS[index]["payload"], context or FakeContext())


def test_post_answers_202_then_the_worker_succeeds_and_a_second_post_is_refused(lambda_env, portal) -> None:
    response = _post("req-1")
    assert response["statusCode"] == 202
    run = body(response)
    assert run["status"] == "queued" and run["detail"]["source"] == portal.url
    assert ASYNC_INVOCATIONS[-1]["payload"] == ingest.worker_event(run["run_id"])
    refused = _post("req-2")  # another request while the first run is in progress
    assert refused["statusCode"] == 409 and run["run_id"] in body(refused)["error"]["message"]
    done = _run_worker()
    assert done["status"] == "succeeded" and done["detail"]["mode"] == "backfill"  # nothing stored yet: a backfill
    assert_same_counts(stored(lambda_env), recount(portal))
    event = copy.deepcopy(load_event("evaluate-run"))
    event["path"], event["pathParameters"] = f"/runs/{run['run_id']}", {"run_id": run["run_id"]}
    assert body(invoke("evaluate", event))["status"] == "succeeded"
    assert _post("req-3")["statusCode"] == 202  # free again


def test_a_repeated_request_gets_the_same_run(lambda_env) -> None:
    first = body(_post("req-1"))
    again = _post("req-1")  # the same request delivered twice
    assert again["statusCode"] == 202 and body(again)["run_id"] == first["run_id"]
    keyed = [_post(f"req-{n}", headers={"idempotency-key": "client-retry-7"}) for n in (2, 3)]
    assert keyed[0]["statusCode"] == 409  # a new request, but the first run still runs
    assert len(ASYNC_INVOCATIONS) == 1
    _run_worker()
    a, b = (body(_post(f"req-{n}", headers={"Idempotency-Key": "after"})) for n in (4, 5))
    assert a["run_id"] == b["run_id"] != first["run_id"] and len(ASYNC_INVOCATIONS) == 2


@pytest.mark.parametrize("portal", ["soda3"], indirect=True)  # the grants do not depend on the protocol
def test_a_portal_backfill_runs_as_the_ingest_function(lambda_env, portal, iam_roles) -> None:
    """POST /ingest and its worker with the ingest function's role, as on AWS: the counts and the
    community areas' boundaries are stored, the staged chunks deleted."""
    roles = iam_roles()
    event = copy.deepcopy(load_event("ingest-api"))
    event["requestContext"]["requestId"] = "req-as-the-function"
    response = roles.invoke("IngestFunction", event)
    assert response["statusCode"] == 202, response["body"]
    done = roles.invoke("IngestFunction", ASYNC_INVOCATIONS[-1]["payload"])
    assert done["status"] == "succeeded" and done["detail"]["mode"] == "backfill", done
    assert_same_counts(stored(lambda_env), recount(portal))
    assert lambda_env.blobs.get_bytes(BOUNDARIES_KEY)
    assert lambda_env.blobs.list_keys("counts/staging/") == []


def test_a_duplicated_worker_event_does_the_work_once(lambda_env) -> None:
    _post("req-1")
    first = _run_worker()
    version = current_manifest(lambda_env)["version"]
    assert _run_worker() == first  # Lambda's retry or a duplicate: the recorded answer
    assert current_manifest(lambda_env)["version"] == version


def test_the_body_chooses_the_mode_and_is_validated(lambda_env) -> None:
    run = body(_post("req-1", {"mode": "backfill"}))
    assert run["detail"]["mode"] == "backfill"
    _run_worker()
    run = body(_post("req-2", {"window_months": 3}))
    assert run["detail"]["mode"] == "incremental" and run["detail"]["window_months"] == 3
    for payload in ({"window_months": 1}, {"mode": "sideways"}, {"surprise": True}):
        assert _post(f"bad-{payload}", payload)["statusCode"] == 422


def test_the_schedule_starts_a_run_once_per_event_and_skips_while_one_runs(lambda_env) -> None:
    event = load_event("ingest-schedule")
    run = invoke("ingest", event)
    assert run["status"] == "queued" and run["detail"]["trigger"] == "schedule"
    assert invoke("ingest", event)["run_id"] == run["run_id"]  # EventBridge delivered it twice
    skipped = invoke("ingest", {**event, "id": "another-day"})
    assert skipped["status"] == "skipped" and run["run_id"] in skipped["reason"]
    assert len(ASYNC_INVOCATIONS) == 1
    assert _run_worker()["status"] == "succeeded"


@dataclass
class ShortContext(FakeContext):
    """A Lambda context with little time left after the first query."""

    calls: int = 0

    def get_remaining_time_in_millis(self) -> int:
        self.calls += 1
        return 800_000 if self.calls <= 3 else 60_000


def test_a_worker_short_of_time_hands_over_to_a_new_invocation(lambda_env, portal) -> None:
    _post("req-1", {"mode": "backfill"})
    paused = _run_worker(context=ShortContext())
    assert paused["status"] == "running" and 0 < len(paused["detail"]["chunks_done"]) < len(paused["detail"]["chunks"])
    assert ASYNC_INVOCATIONS[-1]["payload"] == ingest.worker_event(paused["run_id"], leg=1)
    done = _run_worker()
    assert done["status"] == "succeeded" and done["detail"]["legs"] == 2
    assert_same_counts(stored(lambda_env), recount(portal))


class DeniedLauncher(AwsLauncher):
    def invoke_async(self, function_name: str, payload: dict) -> None:
        raise RuntimeError("AccessDenied: lambda:InvokeFunction")


def test_a_worker_that_cannot_be_started_fails_the_run_and_frees_the_lease(lambda_env) -> None:
    use_stores(lambda_env.with_launcher(DeniedLauncher()))
    assert _post("req-1")["statusCode"] == 500
    (failed,) = runs.recent_runs(lambda_env, "ingest")
    assert failed["status"] == "failed" and "could not start the ingest worker" in failed["detail"]["error"]
    assert failed["detail"]["error_code"] == "worker_not_started" and "AccessDenied" not in str(failed)
    assert "AccessDenied: lambda:InvokeFunction" in runs.get_run(lambda_env, failed["run_id"], admin=True)["error_detail"]
    assert ingest.open_run(lambda_env, "test")["status"] == "queued"  # the lease was given back
