"""A function's ReservedConcurrentExecutions on the local stack, as Lambda keeps it: no more of
its invocations at once; one more is throttled (429 TooManyRequestsException, nothing run), and
an asynchronous event that is throttled goes back to the queue, tried again without using its
retries, until it runs or reaches its age."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
import pytest

from crimecast.domain import parallel
from local.aws import lambda_async, lambda_service
from local.aws.lambda_runtime import (
    ACCOUNT_CONCURRENCY,
    ACCOUNT_CONCURRENCY_ENV,
    Concurrency,
    Functions,
    IntegrationTimeout,
    ReservationRefused,
    SandboxError,
    account_concurrency,
)
from local.aws.template import (
    LAMBDA_ASYNC_DEFAULTS,
    SERVERLESS_FUNCTION,
    AsyncInvokeConfig,
    load_template,
    reserved_concurrency,
)
from tests.conftest import REPO

ENTRY = ("tests/fixtures/lambda/", "sandboxed.handler")
NAME = "crimecast-train-dev"


@pytest.fixture
def functions() -> Iterator[Functions]:
    yield Functions(sandboxed={ENTRY})
    parallel.stop_workers()


def _running(invoke: Any, marker: Path) -> threading.Thread:
    """An invocation that runs for about a second, started on a thread; returned once its handler runs."""
    thread = threading.Thread(target=invoke, args=({"do": "count", "steps": 50, "to": str(marker)},), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the first invocation never started"
        time.sleep(0.01)
    return thread


def test_the_template_s_reserved_concurrency_is_read_with_the_deploy_s_parameters() -> None:
    template = load_template(REPO / "template.yaml")
    assert reserved_concurrency(template, "IngestFunction") == 5
    default = int(template["Parameters"]["RetrainMaxConcurrency"]["Default"])
    assert reserved_concurrency(template, "RetrainTrainFunction") == default
    assert reserved_concurrency(template, "RetrainTrainFunction", {"RetrainMaxConcurrency": "2"}) == 2
    assert reserved_concurrency(template, "PredictFunction") is None
    template["Resources"]["PredictFunction"]["Properties"]["ReservedConcurrentExecutions"] = {"Fn::GetAtt": ["X", "Y"]}
    with pytest.raises(ValueError, match="PredictFunction"):
        reserved_concurrency(template, "PredictFunction")


def test_the_template_s_reservations_leave_the_account_its_unreserved_hundred() -> None:
    """At RetrainMaxConcurrency's largest allowed value, on Lambda's default quota: what CloudFormation
    would create. On a new account's quota of 50 no function may reserve any: the deploy fails."""
    template = load_template(REPO / "template.yaml")
    largest = {"RetrainMaxConcurrency": str(template["Parameters"]["RetrainMaxConcurrency"]["MaxValue"])}
    functions = [logical_id for logical_id, resource in template["Resources"].items() if resource["Type"] == SERVERLESS_FUNCTION]
    account = Concurrency(ACCOUNT_CONCURRENCY)
    reserved = {f: reserved_concurrency(template, f, largest) for f in functions}
    for logical_id, executions in reserved.items():
        account.reserve(logical_id, executions)
    assert ACCOUNT_CONCURRENCY - sum(e for e in reserved.values() if e) >= 100
    with pytest.raises(ReservationRefused, match=r"below its minimum value of \[50\]"):
        Concurrency(50).reserve("IngestFunction", reserved["IngestFunction"])


def _take(account: Concurrency, name: str | None, times: int) -> None:
    for _ in range(times):
        account.take(name)


def test_a_reservation_the_account_cannot_give_is_refused_and_changes_nothing() -> None:
    account = Concurrency(1000)
    account.reserve("train", 890)
    account.reserve("ingest", 10)  # 100 left unreserved: the least Lambda allows
    with pytest.raises(ReservationRefused, match=r"UnreservedConcurrentExecution below its minimum value of \[100\]"):
        account.reserve("plan", 1)
    _take(account, "plan", 100)  # plan reserves none: it has the unreserved hundred, not one execution
    with pytest.raises(lambda_async.Throttled, match="unreserved") as throttled:
        account.take("plan")
    assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"
    account.reserve("train", 880)  # a function's own reservation is replaced, not added to
    with pytest.raises(ReservationRefused):
        Concurrency(10).reserve("ingest", 1)  # a quota of 10 keeps all of it unreserved


def test_the_unreserved_pool_is_what_the_reservations_leave_of_the_quota() -> None:
    account = Concurrency(101)
    account.reserve("ingest", 1)
    _take(account, None, 60)
    _take(account, "predict", 40)
    with pytest.raises(lambda_async.Throttled, match="100 of 100"):
        account.take("evaluate")
    account.take("ingest")  # its own execution, apart from the pool


def test_running_executions_count_in_a_reservation_made_or_removed_while_they_run() -> None:
    """On Lambda a function's reservation covers every execution it has, started before it or not."""
    account = Concurrency(200)
    _take(account, "train", 10)
    account.reserve("train", 5)
    assert account.in_use("train") == 10
    with pytest.raises(lambda_async.Throttled, match="5 of 5 reserved"):
        account.take("train")
    _take(account, "predict", 195)  # the ten running train executions are the reservation's now
    with pytest.raises(lambda_async.Throttled):
        account.take("predict")
    account = Concurrency(200)
    account.reserve("train", 100)
    _take(account, "train", 100)
    account.reserve("train", None)
    _take(account, "predict", 100)  # 200 in all: the hundred train executions count in the pool again
    with pytest.raises(lambda_async.Throttled, match="200 of 200"):
        account.take("predict")


def test_an_execution_given_back_twice_is_counted_once() -> None:
    account = Concurrency(100)
    give_back = account.take("predict")
    _take(account, "predict", 99)
    give_back()
    give_back()
    account.take("predict")
    with pytest.raises(lambda_async.Throttled):
        account.take("predict")


def test_a_function_that_reserves_none_is_throttled_when_the_unreserved_pool_is_in_use(tmp_path: Path) -> None:
    functions = Functions(sandboxed={ENTRY})
    functions.concurrency = Concurrency(account_limit=1)
    try:
        first = _running(lambda event: functions.invoke(*ENTRY, event, timeout=30, name="crimecast-plan-dev"),
                         tmp_path / "first")
        with pytest.raises(lambda_async.Throttled, match="1 of 1 of the account's unreserved executions") as throttled:
            functions.invoke(*ENTRY, {}, timeout=30, name="crimecast-predict-dev")
        assert throttled.value.reason == "ConcurrentInvocationLimitExceeded"
        first.join(30)
        assert functions.invoke(*ENTRY, {}, timeout=30, name="crimecast-predict-dev")["function"] == "crimecast-predict-dev"
    finally:
        parallel.stop_workers()


def test_the_account_s_quota_is_lambda_s_default_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ACCOUNT_CONCURRENCY_ENV, raising=False)
    assert account_concurrency() == ACCOUNT_CONCURRENCY == 1000
    monkeypatch.setenv(ACCOUNT_CONCURRENCY_ENV, "50")
    assert Functions().concurrency.account_limit == 50
    for bad in ("0", "-5", "ten"):
        monkeypatch.setenv(ACCOUNT_CONCURRENCY_ENV, bad)
        with pytest.raises(ValueError, match=ACCOUNT_CONCURRENCY_ENV):
            account_concurrency()


def test_an_invocation_past_the_reserved_concurrency_is_throttled(functions: Functions, tmp_path: Path) -> None:
    functions.concurrency.reserve(NAME, 1)
    first = _running(lambda event: functions.invoke(*ENTRY, event, timeout=30, name=NAME), tmp_path / "first")
    with pytest.raises(lambda_async.Throttled, match="1 of 1"):
        functions.invoke(*ENTRY, {}, timeout=30, name=NAME)
    assert functions.invoke(*ENTRY, {}, timeout=30, name="crimecast-plan-dev")["function"] == "crimecast-plan-dev"
    first.join(30)
    assert functions.invoke(*ENTRY, {}, timeout=30, name=NAME)["function"] == NAME  # its execution is free again


def test_a_failed_or_timed_out_invocation_gives_its_execution_back(functions: Functions) -> None:
    functions.concurrency.reserve(NAME, 1)
    with pytest.raises(Exception, match="no such series"):
        functions.invoke(*ENTRY, {"do": "raise"}, timeout=30, name=NAME)
    with pytest.raises(Exception, match="timed out"):
        functions.invoke(*ENTRY, {"do": "sleep", "seconds": 30}, timeout=0.5, name=NAME)
    with pytest.raises(SandboxError, match="exit status 3"):
        functions.invoke(*ENTRY, {"do": "exit"}, timeout=30, name=NAME)
    with pytest.raises(lambda_async.EventExpired):
        functions.invoke(*ENTRY, {}, timeout=30, name=NAME, start_by=time.monotonic() - 1)
    assert functions.invoke(*ENTRY, {}, timeout=30, name=NAME)["function"] == NAME


def test_in_this_process_an_execution_is_held_until_its_handler_ends() -> None:
    """An API handler runs on after API Gateway stops waiting, and keeps its execution; one queued
    behind another that never starts gives its execution back."""
    functions = Functions()
    functions.concurrency.reserve(NAME, 2)
    with pytest.raises(IntegrationTimeout):
        functions.invoke(*ENTRY, {"do": "sleep", "seconds": 1.5}, timeout=30, give_up_at=time.monotonic() + 0.2, name=NAME)
    holding = threading.Thread(target=functions.invoke, args=(*ENTRY, {"do": "sleep", "seconds": 1.0}),
                               kwargs={"timeout": 30, "name": NAME}, daemon=True)
    holding.start()  # in a new container (the first's was given up): two of two in use
    time.sleep(0.2)
    with pytest.raises(lambda_async.Throttled):
        functions.invoke(*ENTRY, {}, timeout=30, name=NAME)
    holding.join(30)
    time.sleep(0.5)  # the first handler ends 1.5 s after it started
    assert functions.invoke(*ENTRY, {}, timeout=30, name=NAME)["function"] == NAME


def test_a_throttled_event_is_tried_again_without_using_its_retries() -> None:
    no_retries = AsyncInvokeConfig(0, LAMBDA_ASYNC_DEFAULTS.max_event_age_s, None)
    outcomes: list[Exception | None] = [lambda_async.Throttled(NAME, 1)] * 3 + [None]
    waits: list[float] = []

    def attempt(start_by: float, request_id: str) -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    record = lambda_async.run_attempts(attempt, no_retries, "arn:fn", {}, lambda e: {"errorMessage": str(e)},
                                       sleep=waits.append)
    assert record is None and not outcomes  # it ran, on its fourth try, though it may not be retried
    assert waits == [1.0, 2.0, 4.0]  # the wait doubles from a second


def test_an_event_throttled_until_its_age_is_dropped_without_an_attempt() -> None:
    config = AsyncInvokeConfig(2, 1, None)  # an age of one second
    throttled = lambda_async.Throttled(NAME, 1)

    def attempt(start_by: float, request_id: str) -> None:
        raise throttled

    record = lambda_async.run_attempts(attempt, config, "arn:fn", {"n": 1}, lambda e: {"errorMessage": str(e)})
    assert record is not None
    context = record["requestContext"]
    assert (context["condition"], context["approximateInvokeCount"]) == (lambda_async.EVENT_AGE_EXCEEDED, 0)
    assert "responsePayload" not in record  # the function never ran


@pytest.fixture
def lambda_api(monkeypatch: pytest.MonkeyPatch, functions: Functions) -> Iterator[Any]:
    """moto's Lambda with one function of a template, reserving one execution, run by ``functions``."""
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambda_service.register_functions(TEMPLATE, functions)
        yield boto3.client("lambda", config=Config(retries={"total_max_attempts": 1}))
        lambda_service.unregister_all()


# One function reserving one execution, and a queue it reads (its SQS event).
TEMPLATE = {"Resources": {
    "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "jobs"}},
    "Train": {"Type": SERVERLESS_FUNCTION, "Properties": {
        "FunctionName": NAME, "CodeUri": ENTRY[0], "Handler": ENTRY[1], "Timeout": 30, "ReservedConcurrentExecutions": 1,
        "Events": {"Jobs": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 1}}}}}}}


def test_the_reservation_is_the_lambda_api_s(lambda_api: Any, tmp_path: Path) -> None:
    """GetFunction shows it; PutFunctionConcurrency changes it (0: the function is stopped, as on AWS)."""
    assert lambda_api.get_function(FunctionName=NAME)["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    lambda_api.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        lambda_api.invoke(FunctionName=NAME, Payload=b"{}")
    lambda_api.delete_function_concurrency(FunctionName=NAME)
    first = _running(lambda event: lambda_api.invoke(FunctionName=NAME, Payload=json.dumps(event).encode()),
                     tmp_path / "first")
    assert json.loads(lambda_api.invoke(FunctionName=NAME, Payload=b"{}")["Payload"].read())["function"] == NAME
    first.join(30)


def test_the_lambda_api_refuses_a_reservation_past_the_account_s(lambda_api: Any) -> None:
    """As Lambda answers PutFunctionConcurrency (400), the function's reservation unchanged."""
    with pytest.raises(ClientError) as refused:
        lambda_api.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=901)
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidParameterValueException", 400)
    assert "below its minimum value of [100]" in error["Error"]["Message"]
    assert lambda_api.get_function(FunctionName=NAME)["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    lambda_api.put_function_concurrency(FunctionName=NAME, ReservedConcurrentExecutions=900)


def test_a_throttled_queue_batch_is_tried_again_at_the_next_pass(lambda_api: Any, functions: Functions,
                                                                 tmp_path: Path) -> None:
    boto3.client("sqs").send_message(QueueUrl=lambda_service.queue_url("Jobs"), MessageBody="{}")
    first = _running(lambda event: functions.invoke(*ENTRY, event, timeout=30, name=NAME), tmp_path / "first")
    assert lambda_service.poll_queue_events(TEMPLATE) == 0  # throttled: nothing handled
    first.join(30)
    assert lambda_service.poll_queue_events(TEMPLATE) == 1  # at once, not after the queue's visibility timeout


def test_the_lambda_api_answers_429_and_runs_a_throttled_event_later(lambda_api: Any, tmp_path: Path, capsys: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_async, "_time_scale", 0.1)  # the throttled event's waits: 0.1 s, 0.2 s ...

    def invoke(event: dict[str, Any]) -> Any:
        return lambda_api.invoke(FunctionName=NAME, Payload=json.dumps(event).encode())

    first = _running(invoke, tmp_path / "first")
    with pytest.raises(ClientError) as refused:
        invoke({})
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("TooManyRequestsException", 429)
    assert (error["Reason"], error["Type"]) == ("ReservedFunctionConcurrentInvocationLimitExceeded", "User")
    later = tmp_path / "later"
    accepted = lambda_api.invoke(FunctionName=NAME, InvocationType="Event",
                                 Payload=json.dumps({"do": "count", "steps": 1, "to": str(later)}).encode())
    assert accepted["StatusCode"] == 202  # accepted while every execution is in use
    first.join(30)
    deadline = time.monotonic() + 30
    while not later.exists():
        assert time.monotonic() < deadline, "the throttled event never ran"
        time.sleep(0.05)
    assert f"async {NAME} throttled, back to the queue" in capsys.readouterr().err  # not run while the first ran


def test_a_state_machine_s_retry_takes_the_throttle_as_lambda_s(lambda_api: Any, tmp_path: Path) -> None:
    """The error Step Functions names (Lambda.TooManyRequestsException), which the template's Retry lists."""
    arn = lambda_api.get_function(FunctionName=NAME)["Configuration"]["FunctionArn"]
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": arn, "Payload": {}},
            "Retry": [{"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 30,
                       "BackoffRate": 1}], "End": True}
    states = boto3.client("stepfunctions")
    machine = states.create_state_machine(name="throttled", roleArn="arn:aws:iam::123456789012:role/states",
                                          definition=json.dumps({"StartAt": "Train", "States": {"Train": task}}))
    first = _running(lambda event: lambda_api.invoke(FunctionName=NAME, Payload=json.dumps(event).encode()),
                     tmp_path / "first")
    execution = states.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
    first.join(30)
    deadline = time.monotonic() + 60
    while (status := states.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution never ended"
        time.sleep(0.1)
    assert status == "SUCCEEDED"
    events = states.get_execution_history(executionArn=execution)["events"]
    failed = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failed and set(failed) == {"Lambda.TooManyRequestsException"}  # throttled while the first ran, then run
