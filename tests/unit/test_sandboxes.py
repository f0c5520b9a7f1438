"""The local stack's Lambda sandboxes (local.aws.lambda_runtime.Functions): a Distributed Map's item function
runs each invocation in a worker process kept warm for the next, and fails as Lambda does."""

from __future__ import annotations

from collections.abc import Iterator
import os
import time

import pytest

from crimecast.domain import parallel
from local.aws import lambda_async, lambda_runtime
from local.aws.lambda_runtime import Functions, FunctionTimeout, SandboxError, error_document
from tests.processes import wait_gone

ENTRY = ("tests/fixtures/lambda/", "sandboxed.handler")


@pytest.fixture
def functions() -> Iterator[Functions]:
    yield Functions(sandboxed={ENTRY})
    parallel.stop_workers()


def test_a_sandboxed_function_runs_in_a_warm_worker_process(functions: Functions) -> None:
    first = functions.invoke(*ENTRY, {}, name="crimecast-train-dev")
    second = functions.invoke(*ENTRY, {}, name="crimecast-train-dev")
    assert first["pid"] == second["pid"] != os.getpid()  # its own process, reused
    assert (first["invocations"], second["invocations"]) == (1, 2) and first["function"] == "crimecast-train-dev"


def test_its_failures_are_lambda_s(functions: Functions) -> None:
    with pytest.raises(SandboxError) as raised:
        functions.invoke(*ENTRY, {"do": "raise"})
    assert error_document(raised.value) == {"errorType": "LookupError", "errorMessage": "no such series"}
    warm = functions.invoke(*ENTRY, {})["pid"]  # a handler that raised leaves its sandbox warm
    with pytest.raises(SandboxError) as died:
        functions.invoke(*ENTRY, {"do": "exit"})
    assert died.value.error_type == "Runtime.ExitError" and "exit status 3" in str(died.value)
    with pytest.raises(FunctionTimeout):
        functions.invoke(*ENTRY, {"do": "sleep", "seconds": 30}, timeout=0.5)
    assert wait_gone({warm}, timeout=2) == set()  # the sandbox that died is gone
    assert functions.invoke(*ENTRY, {})["invocations"] == 1  # a new sandbox


def test_an_idle_sandbox_is_reclaimed(functions: Functions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_runtime, "SANDBOX_IDLE_S", 0.3)
    pid = functions.invoke(*ENTRY, {})["pid"]
    time.sleep(0.1)
    assert functions.invoke(*ENTRY, {})["pid"] == pid  # still warm
    assert wait_gone({pid}, timeout=3) == set()
    assert functions.invoke(*ENTRY, {})["pid"] != pid


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandbox", "in-process"])
def test_the_context_counts_down_from_the_function_s_timeout(sandboxed: bool) -> None:
    """As Lambda's: a handler reads how long it has left (the ingest worker chains its next leg
    before the timeout; an idempotency record in progress lapses with it)."""
    functions = Functions(sandboxed={ENTRY} if sandboxed else ())
    try:
        left = functions.invoke(*ENTRY, {"do": "sleep", "seconds": 0.3}, timeout=5)["remaining_ms"]
        assert 3500 <= left <= 4700
        assert functions.invoke(*ENTRY, {})["remaining_ms"] > 890_000  # no timeout given: Lambda's largest, 900 s
    finally:
        parallel.stop_workers()


@pytest.mark.parametrize("sandboxed", [True, False], ids=["sandbox", "in-process"])
def test_an_asynchronous_event_s_request_id_is_its_context_s(sandboxed: bool) -> None:
    """Every attempt of an asynchronous event has its request id (Powertools' idempotency and the
    logs key on it), in a sandbox as in this process."""
    functions = Functions(sandboxed={ENTRY} if sandboxed else ())
    try:
        answer = functions.invoke(*ENTRY, {}, timeout=5, start_by=time.monotonic() + 60, request_id="the-event-s-id")
        assert answer["request_id"] == "the-event-s-id"
        assert functions.invoke(*ENTRY, {})["request_id"] not in ("the-event-s-id", None)  # a new one otherwise
    finally:
        parallel.stop_workers()


def test_an_event_past_its_start_by_does_not_run(functions: Functions) -> None:
    warm = functions.invoke(*ENTRY, {})
    with pytest.raises(lambda_async.EventExpired):
        functions.invoke(*ENTRY, {}, timeout=5, start_by=time.monotonic() - 1)
    after = functions.invoke(*ENTRY, {})
    assert (after["pid"], after["invocations"]) == (warm["pid"], 2)  # the warm sandbox, which never ran the expired event
