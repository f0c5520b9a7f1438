"""Lambda's asynchronous contract on the embedded AWS, with IAM on: the ingest worker invoked
as the ingest function invokes itself (``AwsLauncher.invoke_async``, InvocationType Event) is
retried and dropped as template.yaml's EventInvokeConfig says, what Lambda gives up on lands in
the OnFailure queue as Lambda's invocation record (sent with the function's role), and the
function's AsyncFailures event reads it back: the run ends failed, with the reason, in GET /runs.

Lambda's clock is shortened (``lambda_async.set_time_scale``): two retries take three minutes
on AWS. The template's values themselves are read, never restated."""

from __future__ import annotations

import copy
from datetime import date
import json
import logging
import os
import re
import time
from typing import Any

import boto3
from botocore.exceptions import ClientError
import pytest

from crimecast.adapters.launcher import AwsLauncher
from crimecast.jobs import counts, ingest, pipeline, runs
from local.aws import enforcement, lambda_async, lambda_service
from local.aws.template import async_invoke_config, entry_points, load_template
from local.portal.server import StandInPortal
from tests.conftest import REPO, data_source_dir
from tests.functions.conftest import body, invoke, load_event
from tests.functions.test_iam_enforced import _without

INGEST = "IngestFunction"
QUEUE = "AsyncFailureQueue"
# Lambda's clock for the retry tests: the waits 0.12 s and 0.24 s, the template's hour of age 7.2 s,
# room for three attempts on a loaded machine.
FAST = 0.002


@pytest.fixture(scope="module")
def portal():
    with StandInPortal("csv", data_source_dir()) as stand_in:
        yield stand_in


@pytest.fixture
def clock():
    """``clock(scale)``: Lambda's asynchronous clock for the test; AWS's again after it."""
    yield lambda_async.set_time_scale
    lambda_async.set_time_scale(1.0)


@pytest.fixture
def roles(aws, iam_roles, monkeypatch, portal):
    """IAM on: each registered function runs with its own role's session, as the stack runs them."""
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", portal.url)
    granted = iam_roles()
    _, runner = lambda_service.registered(INGEST)
    runner.sessions = {entry: granted.sessions[name] for name, entry in entry_points(granted.template).items()
                       if name in granted.sessions}
    runner.handler(*entry_points(granted.template)[INGEST])  # loaded (a cold start is not what is timed here)
    return granted


def _invoke_worker(roles: Any, run_id: str) -> dict[str, Any]:
    """The worker's invocation as the ingest function makes it (InvocationType Event)."""
    event = ingest.worker_event(run_id)
    with roles.as_function(INGEST):
        AwsLauncher().invoke_async(lambda_service.function_name(INGEST), event)
    return event


def _records(expected: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The invocation records in the OnFailure queue (read as an admin, then deleted), once
    ``expected`` have come or the timeout has passed."""
    sqs, url, found = boto3.client("sqs"), lambda_service.queue_url(QUEUE), []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        time.sleep(0.02)
    return found


def _queue_is_empty() -> bool:
    return not boto3.client("sqs").receive_message(QueueUrl=lambda_service.queue_url(QUEUE)).get("Messages")


def test_the_failure_queue_is_created_with_the_template_s_attributes(roles) -> None:
    """Its VisibilityTimeout is when a batch the ingest function failed on is read again: 90 minutes, not SQS's 30 s."""
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=lambda_service.queue_url(QUEUE),
                                                          AttributeNames=["All"])["Attributes"]
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("5400", "1209600")


def _failed_attempts(text: str) -> int:
    return text.count(f"async {lambda_service.function_name(INGEST)} failed")


def _function_arn() -> str:
    """The function's ARN on the embedded AWS (moto's account and region)."""
    return f"arn:aws:lambda:us-east-1:123456789012:function:{lambda_service.function_name(INGEST)}"


def _hold_the_lease(stores: Any, holder_of: str, seconds: int) -> str:
    """Another live ingest run takes the ingest lease from ``holder_of`` for ``seconds``."""
    other = runs.start_run(stores, "ingest", {"trigger": "test"})["run_id"]
    now = int(time.time())
    assert stores.leases.take(ingest.LEASE_NAME, other, now + seconds, now, steal_from=holder_of) is None
    return other


def _open_run(roles: Any, stores: Any, portal: StandInPortal) -> str:
    """A queued one-year backfill from the stand-in portal, opened as POST /ingest opens it."""
    with roles.as_function(INGEST):
        return ingest.open_run(stores, "test", mode="backfill", as_of=date(2022, 12, 10), first_year=2022,
                               source_label=portal.url)["run_id"]


def test_a_failing_async_invocation_is_retried_then_its_record_lands_in_the_queue(roles, aws, clock, capsys) -> None:
    clock(FAST)
    config = async_invoke_config(roles.template, INGEST)
    started = time.monotonic()
    event = _invoke_worker(roles, "ingest-20220101T000000Z-deadbeef")  # no such run: every attempt fails
    (record,) = _records()
    waited = time.monotonic() - started
    assert _failed_attempts(capsys.readouterr().err) == config.max_retry_attempts + 1
    assert waited >= sum(lambda_async.RETRY_WAITS_S) * FAST  # a minute, then two, before the retries
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record.pop("timestamp"))
    request_id = record["requestContext"].pop("requestId")
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id)
    assert record == {
        "version": "1.0",
        "requestContext": {"functionArn": f"{_function_arn()}:$LATEST", "condition": "RetriesExhausted",
                           "approximateInvokeCount": config.max_retry_attempts + 1},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "NotFoundError", "errorMessage": "no run 'ingest-20220101T000000Z-deadbeef'"},
    }


def test_an_event_past_its_maximum_age_is_dropped_with_event_age_exceeded(roles, aws, clock, capsys) -> None:
    """A copy of the template whose events live 150 s: the first attempt, the retry a minute later,
    and the second retry, due two minutes after that, would come after the event's age."""
    template = copy.deepcopy(roles.template)
    template["Resources"][INGEST]["Properties"]["EventInvokeConfig"]["MaximumEventAgeInSeconds"] = 150
    _, runner = lambda_service.registered(INGEST)
    with enforcement.paused():  # the test's own set-up (moto refuses the admin's signature on Lambda's paths)
        for logical_id in entry_points(template):
            boto3.client("lambda").delete_function(FunctionName=lambda_service.function_name(logical_id))
        lambda_service.unregister_all()
        lambda_service.register_functions(template, runner)
    assert async_invoke_config(template, INGEST).max_retry_attempts == 2  # a third attempt would be allowed
    # 7.5 s of age: the second attempt is due a minute (3 s) after the first ends, so the first may
    # take up to 4.5 s (it loads the handler; on a loaded machine 1.8 s, at a scale of 0.02, was once too little)
    scale = 0.05
    clock(scale)
    started = time.monotonic()
    _invoke_worker(roles, "ingest-20220101T000000Z-deadbeef")
    (record,) = _records()
    assert time.monotonic() - started >= 150 * scale
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2 == _failed_attempts(capsys.readouterr().err)
    assert record["responsePayload"]["errorType"] == "NotFoundError"  # the last attempt's


def test_the_age_limit_drops_an_event_still_queued_without_any_attempt(clock) -> None:
    """An event whose attempt could not start before its age (queued behind others) is dropped
    with no response: AWS documents none for an event that never ran."""
    clock(0.001)
    config = lambda_async.AsyncInvokeConfig(max_retry_attempts=2, max_event_age_s=60, on_failure=None)

    def queued(start_by: float, request_id: str) -> None:
        time.sleep(max(0.0, start_by - time.monotonic()))
        raise lambda_async.EventExpired()

    record = lambda_async.run_attempts(queued, config, "arn:aws:lambda:us-east-1:123456789012:function:f", {"a": 1},
                                       lambda exc: {"errorType": type(exc).__name__})
    assert record is not None and record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record


def test_a_retried_ingest_that_succeeds_on_its_second_attempt_counts_once(roles, aws, clock, capsys, portal) -> None:
    """Another live run holds the lease: the worker's first attempt is refused (ConflictError,
    a function error); the other run then ends, and Lambda's retry runs the whole ingest."""
    clock(0.035)  # the retry 2.1 s after the refusal
    run_id = _open_run(roles, aws, portal)
    other = _hold_the_lease(aws, run_id, seconds=600)
    _invoke_worker(roles, run_id)
    errors, deadline = "", time.monotonic() + 60
    while not _failed_attempts(errors) and time.monotonic() < deadline:  # released once refused, however slow the start
        time.sleep(0.05)
        errors += capsys.readouterr().err
    aws.leases.release(ingest.LEASE_NAME, other)
    while runs.get_run(aws, run_id)["status"] not in runs.ENDED and time.monotonic() < deadline:
        time.sleep(0.05)
    run = runs.get_run(aws, run_id)
    assert run["status"] == "succeeded", run
    assert _failed_attempts(errors + capsys.readouterr().err) == 1
    stored = counts.load_counts(aws).frame
    city = stored[stored["community_area"].isna() & (stored["primary_type"] == "ALL")]
    assert run["detail"]["incidents"] == int(city["count"].sum()) > 0  # each month's incidents counted once
    assert run["detail"]["chunks_done"] == run["detail"]["chunks"] == ["2022-01..2022-12"]
    versions = {key.split("/")[2] for key in aws.blobs.list_keys(counts.VERSIONS_PREFIX)}
    assert versions == {run["detail"]["version"]}  # published once
    assert [r["run_id"] for r in runs.recent_runs(aws, "ingest") if r["status"] == "succeeded"] == [run_id]
    assert _queue_is_empty()  # it succeeded in the end: no record


def test_runs_shows_the_run_of_a_worker_lambda_gave_up_on_with_the_reason(roles, aws, clock, capsys, portal) -> None:
    clock(FAST)
    run_id = _open_run(roles, aws, portal)
    _hold_the_lease(aws, run_id, seconds=3600)  # every attempt is refused
    _invoke_worker(roles, run_id)
    deadline = time.monotonic() + 20
    handled = 0
    while not handled and time.monotonic() < deadline:  # the AsyncFailures event, as the stack's poller runs it
        handled = lambda_service.poll_queue_events(roles.template)
        time.sleep(0.02)
    assert handled == 1 and _queue_is_empty()
    assert _failed_attempts(capsys.readouterr().err) == async_invoke_config(roles.template, INGEST).max_retry_attempts + 1
    listing = copy.deepcopy(load_event("evaluate-run"))
    listing.update(path="/runs", resource="/runs", pathParameters=None, queryStringParameters={"kind": "ingest"},
                   multiValueQueryStringParameters={"kind": ["ingest"]})
    listing["requestContext"]["authorizer"] = {"principalId": "viewer", "username": "viewer", "roles": "viewer"}
    answer = roles.invoke("EvaluateFunction", listing)
    assert answer["statusCode"] == 200, answer
    (shown,) = [r for r in body(answer)["runs"] if r["run_id"] == run_id]
    assert shown["status"] == "failed" and shown["detail"]["error_code"] == pipeline.WORKER_FAILED
    assert shown["detail"]["error"] == ("the ingest worker (leg 0) failed: Lambda ran it 3 times and gave up; "
                                        "its last error: ConflictError")
    assert "error_detail" not in shown  # the error's text is an admin's to read
    assert lambda_service.poll_queue_events(roles.template) == 0


def test_a_record_read_again_changes_nothing(aws) -> None:
    run_id = ingest.open_run(aws, "test", mode="backfill", source_label="file:x.csv")["run_id"]
    record = {"requestContext": {"condition": "EventAgeExceeded", "approximateInvokeCount": 1},
              "requestPayload": ingest.worker_event(run_id), "responsePayload": {"errorType": "Sandbox.Timedout"}}
    failed = pipeline.record_async_failure(aws, record)
    assert failed is not None and failed["status"] == "failed"
    assert "waited past its maximum age" in failed["detail"]["error"]
    assert aws.leases.get(ingest.LEASE_NAME) is None  # its lease let go: the next run may start
    assert pipeline.record_async_failure(aws, record) is None
    assert runs.get_run(aws, run_id)["finished_at"] == failed["finished_at"]
    schedule = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": load_event("ingest-schedule")}
    assert pipeline.record_async_failure(aws, schedule) is None  # no run to end: logged by the handler


def test_without_its_poller_grant_the_function_cannot_read_the_queue(aws, iam_roles, clock) -> None:
    """The AsyncFailures event reads the queue with the function's role (Lambda's event source
    mapping uses the execution role): without the grant the record stays where it is. (The
    record itself is sent with the role too; SAM grants that from the OnFailure destination.)"""
    template = _without(load_template(REPO / "template.yaml"), INGEST, "SQSPollerPolicy", QUEUE)
    denied = iam_roles(template)
    _, runner = lambda_service.registered(INGEST)
    runner.sessions = {entry: denied.sessions[name] for name, entry in entry_points(template).items() if name in denied.sessions}
    clock(0.001)
    _invoke_worker(denied, "ingest-20220101T000000Z-deadbeef")
    sqs, url = boto3.client("sqs"), lambda_service.queue_url(QUEUE)
    deadline = time.monotonic() + 20
    while sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"] == "0" and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(ClientError, match="AccessDenied"):
        lambda_service.poll_queue_events(template)
    assert len(_records()) == 1  # still there


class _Kept(logging.Handler):
    """Keeps the records of a logger (Powertools' loggers do not propagate to pytest's)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_schedule_event_eventbridge_could_not_deliver_is_logged_as_an_error(aws) -> None:
    """The queue is also the Daily schedule's dead-letter queue: that message is the event itself,
    why in its attributes. It names no run; it is logged, and handled (not read again)."""
    scheduled = load_event("ingest-schedule")
    message = {"messageId": "m-1", "receiptHandle": "r-1", "body": json.dumps(scheduled), "attributes": {},
               "messageAttributes": {"ERROR_CODE": {"stringValue": "SDK_CLIENT_ERROR", "dataType": "String",
                                                    "stringListValues": [], "binaryListValues": []}},
               "md5OfBody": "", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:crimecast-async-failures-dev"}
    kept, service = _Kept(), logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])  # the ingest function's logger
    service.addHandler(kept)
    try:
        assert invoke("ingest", {"Records": [message]}) == {"batchItemFailures": []}
    finally:
        service.removeHandler(kept)
    (logged,) = [r for r in kept.records if r.getMessage() == "asynchronous work failed for good"]
    assert logged.levelno == logging.ERROR and logged.error_code == "SDK_CLIENT_ERROR"
    assert logged.undelivered_event["id"] == scheduled["id"] and logged.run_failed is None
