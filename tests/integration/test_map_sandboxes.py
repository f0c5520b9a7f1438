"""The retrain's Distributed Map on the local stack's embedded AWS (moto's server, its Step
Functions interpreter running the template's definition): the train function's invocations
run in sandbox processes, as many at once as the Map's MaxConcurrency, each sandbox kept warm
for the next batch; a sandbox that dies fails its batch, which counts against the Map's
ToleratedFailurePercentage. Every other invocation through the embedded Lambda service (the
plan, the promotion, the schedules', the ingest worker) runs in a sandbox too.

The stack's own start-up (``local.stack``: provision, invoked_functions, start_workflows) in this
process, without the gateway and without IAM (tests/integration/test_iam_stack.py runs a
retrain through the state machine with IAM on)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
import json
import os
from pathlib import Path
import threading
import time
from typing import Any

import pandas as pd
import pytest

from crimecast import settings
from crimecast.adapters.aws import client as aws_client
from crimecast.adapters.aws import reset_clients
from crimecast.adapters.stores import Stores, get_stores, use_stores
from crimecast.domain import parallel
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import pipeline, retrain, runs
from crimecast.jobs.counts import store_counts
from local.aws import lambda_service
from local.aws.embedded import provision, start_moto
from local.aws.lambda_runtime import Functions
from local.aws.template import entry_points, load_template
from local.stack import invoked_functions, start_workflows
from local.workflow import machine
from tests.conftest import REPO, seasonal_series, tidy_frame

AREAS = (8, 24, 25)  # with the city: four series, four batches of one
MAX_CONCURRENCY = 2


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Functions, Stores]]:
    """The embedded AWS with the template's functions and state machine (MaxConcurrency 2), the
    Lambda service as the stack makes it, and four series of counts; everything undone after."""
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MOTO_PORT"):
        monkeypatch.setenv(name, "")  # start_moto and enable_execution set them: restored afterwards
    for name, value in {"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "LOG_LEVEL": "ERROR",
                        "POWERTOOLS_SERVICE_NAME": "crimecast", "POWERTOOLS_METRICS_NAMESPACE": "Crimecast",
                        "RETRAIN_BATCH_SIZE": "1"}.items():
        monkeypatch.setenv(name, value)
    moto = start_moto()
    functions = None
    try:
        import urllib.request

        with urllib.request.urlopen(urllib.request.Request(f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/reset",
                                                           method="POST"), timeout=10):
            pass  # another test's resources (this process's moto) are gone
        template = load_template(REPO / "template.yaml")
        for name, value in provision(template).items():
            monkeypatch.setenv(name, value)
        functions = invoked_functions(template)
        for name, value in start_workflows(template, functions, MAX_CONCURRENCY).items():
            monkeypatch.setenv(name, value)
        reset_clients()
        settings.reset()
        use_stores(None)
        stores = get_stores()
        frames = [tidy_frame(seasonal_series("2018-01", 72, level=80 + 10 * n, seed=n), area, "THEFT")
                  for n, area in enumerate(AREAS)]
        store_counts(stores, counts_from_tidy(pd.concat([*frames, tidy_frame(seasonal_series("2018-01", 72, level=600),
                                                                              None, "THEFT")]), as_of=date(2030, 1, 1)))
        yield functions, stores
    finally:
        parallel.stop_workers()  # the warm sandboxes
        lambda_service.unregister_all()
        moto.stop()
        reset_clients()
        settings.reset()
        use_stores(None)


def _retrain_to_the_end(functions: Functions, stores: Stores) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /retrain (the retrain function's handler), then the execution's end and the run."""
    codeuri, handler = entry_points(load_template(REPO / "template.yaml"))["RetrainFunction"]
    event = json.loads((REPO / "events" / "retrain-api.json").read_text())
    answer = functions.invoke(codeuri, handler, event, name=lambda_service.function_name("RetrainFunction"))
    assert answer["statusCode"] == 202, answer
    started = json.loads(answer["body"])
    described = machine.wait_for_execution(started["detail"]["execution_arn"], timeout=600)
    return described, pipeline.run_with_workflow(stores, runs.get_run(stores, started["run_id"], admin=True))


def _most_at_once(calls: list[tuple[int | None, float, float]]) -> int:
    """The most calls in progress at one moment (an end before a start at the same instant)."""
    edges = sorted([(start, 1) for _, start, _ in calls] + [(end, -1) for _, _, end in calls], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.fixture
def sandbox_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, float, float]]:
    """Each train invocation (a call into a sandbox with a batch): the sandbox's pid, when it began and ended."""
    calls: list[tuple[int | None, float, float]] = []
    call = parallel.Worker.call

    def recorded(self: parallel.Worker, arg: Any, timeout: float | None = None) -> Any:
        began = time.monotonic()
        try:
            return call(self, arg, timeout)
        finally:
            if "batch" in arg[0]:  # not the plan's nor the promotion's invocation
                calls.append((self.pid, began, time.monotonic()))

    monkeypatch.setattr(parallel.Worker, "call", recorded)
    return calls


def test_the_map_s_batches_run_at_once_in_warm_sandboxes_up_to_its_max_concurrency(embedded, sandbox_calls) -> None:
    functions, stores = embedded
    described, run = _retrain_to_the_end(functions, stores)
    assert described["status"] == "SUCCEEDED", described
    assert run["status"] == "succeeded" and run["detail"]["series_trained"] == len(AREAS) + 1, run
    assert run["detail"]["batches"] == len(sandbox_calls) == len(AREAS) + 1  # every train invocation in a sandbox
    assert _most_at_once(sandbox_calls) == MAX_CONCURRENCY, sandbox_calls  # overlapping, and never more
    sandboxes = {pid for pid, _, _ in sandbox_calls}
    assert len(sandboxes) == MAX_CONCURRENCY and os.getpid() not in sandboxes  # kept warm: one per concurrent batch
    assert stores.series.champion()["model_version"] == run["detail"]["version"]
    train = aws_client("lambda").get_function(FunctionName=lambda_service.function_name("RetrainTrainFunction"))
    assert train["Concurrency"] == {"ReservedConcurrentExecutions": MAX_CONCURRENCY}  # as many as the Map runs, no more


def test_a_batch_whose_sandbox_dies_counts_against_the_tolerated_failures(embedded, sandbox_calls, monkeypatch) -> None:
    functions, stores = embedded
    train_batch = retrain.train_batch

    def dies_on_area_8(stores: Stores, batch: dict[str, Any]) -> dict[str, Any]:
        if batch["series"] == ["8:THEFT"]:
            os._exit(3)  # the sandbox's process ends in the middle of the invocation (e.g. out of memory)
        return train_batch(stores, batch)

    monkeypatch.setattr(retrain, "train_batch", dies_on_area_8)  # in this process: the sandboxes fork from it
    described, run = _retrain_to_the_end(functions, stores)
    assert described["status"] == "FAILED", described
    states = run["detail"]["workflow"]["states"]
    assert [(s["state"], s["outcome"]) for s in states][:2] == [("Plan", "succeeded"), ("Train", "failed")], states
    assert states[1]["error"] == "States.ExceedToleratedFailureThreshold"  # 1 of 4 batches: past 5 %
    assert "1 of 4 child executions failed" in run["error_detail"], run  # the Map run's cause
    assert len(sandbox_calls) == len(AREAS) + 1  # the other batches still ran, in the sandboxes left
    assert stores.series.champion() is None


def _recording_pid(where: Path, step: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, first writing "<step> <pid>" to ``where``: which process ran it."""
    def run(*args: Any, **kwargs: Any) -> Any:
        with where.open("a", encoding="ascii") as out:
            out.write(f"{step} {os.getpid()}\n")
        return original(*args, **kwargs)
    return run

def test_the_plan_and_the_promotion_run_in_sandboxes_too(embedded, monkeypatch, tmp_path) -> None:
    """As Lambda runs each function in environments of its own: the plan's work does not hold up this
    process (the gateway's handlers)."""
    functions, stores = embedded
    where = tmp_path / "pids"
    # in this process: the sandboxes fork from it
    monkeypatch.setattr(retrain, "plan", _recording_pid(where, "plan", retrain.plan))
    monkeypatch.setattr(retrain, "promote", _recording_pid(where, "promote", retrain.promote))
    described, run = _retrain_to_the_end(functions, stores)
    assert described["status"] == "SUCCEEDED" and run["status"] == "succeeded", run
    steps = dict(line.split() for line in where.read_text(encoding="ascii").splitlines())
    assert set(steps) == {"plan", "promote"} and str(os.getpid()) not in steps.values(), steps


def test_the_schedule_s_ingest_and_its_worker_run_in_sandboxes(embedded, monkeypatch, tmp_path) -> None:
    """Every invocation through the embedded Lambda service runs in a process of its own: the daily
    schedule's and the ingest worker it starts (with the live evaluation after a published ingest),
    whose CPU work in this process would hold up the gateway's handlers."""
    where = tmp_path / "pids"

    def worked(stores: Stores, run_id: str, **_: Any) -> dict[str, Any]:  # no portal here: the run's work is not the point
        return {"run_id": run_id, "status": "succeeded", "detail": {}}

    monkeypatch.setattr(pipeline, "request_ingest", _recording_pid(where, "schedule", pipeline.request_ingest))  # forked from here
    monkeypatch.setattr(pipeline, "ingest_worker", _recording_pid(where, "worker", worked))
    event = (REPO / "events" / "ingest-schedule.json").read_bytes()
    answer = aws_client("lambda").invoke(FunctionName=lambda_service.function_name("IngestFunction"),
                                          InvocationType="Event", Payload=event)
    assert answer["StatusCode"] == 202
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (where.exists() and "worker" in where.read_text(encoding="ascii")):
        time.sleep(0.2)
    for thread in threading.enumerate():  # both invocations ended: none is retried in a later test
        if thread.name.startswith("event-"):
            thread.join(timeout=60)
            assert not thread.is_alive(), thread.name
    steps = dict(line.split() for line in where.read_text(encoding="ascii").splitlines())
    assert set(steps) == {"schedule", "worker"} and str(os.getpid()) not in steps.values(), steps
