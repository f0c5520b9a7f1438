"""Run records: concurrent changes to one run lose nothing (conditional writes on its
revision), and a viewer reads no execution ARN (it names the AWS account) and no admin's
username, which an admin still reads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import copy
from dataclasses import dataclass, replace
import json
import threading
from typing import Any

import pytest

from crimecast.adapters.run_store import RunStore
from crimecast.adapters.stores import Stores, use_stores
from crimecast.domain.errors import ConflictError
from crimecast.jobs import runs
from tests.functions.conftest import body, invoke, load_event
from tests.functions.test_page_routes import _promote, _publish

OLD, SERVING = "v20260401T000000Z", "v20260601T000000Z"


class _OneRequestAtATime:
    """A boto3 Table whose requests run one at a time, as DynamoDB applies each request to an
    item atomically (moto in-process checks a condition and writes in two steps, so parallel
    conditional writes could both pass). A read-then-write still races: that is the test."""

    lock = threading.Lock()

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._table, name)
        if not callable(attribute):
            return attribute

        def request(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return attribute(*args, **kwargs)
        return request


@dataclass(frozen=True)
class AtomicRunStore(RunStore):
    @property
    def _table(self) -> Any:
        return _OneRequestAtATime(super()._table)


@dataclass(frozen=True)
class InterleavedRunStore(RunStore):
    """Runs ``between`` once, right after the first read of a run: another writer changes the
    record between this writer's read and its write."""

    between: list[Any] = None  # type: ignore[assignment]

    def get(self, run_id: str) -> dict[str, Any] | None:
        item = super().get(run_id)
        if self.between:
            self.between.pop()()
        return item


def test_a_change_made_between_a_read_and_a_write_is_kept(aws) -> None:
    run_id = runs.start_run(aws, "ingest", {"trigger": "test"})["run_id"]
    other = [lambda: runs.update_run(aws, run_id, "running", {"phase": "fetching", "pages": 3})]
    interleaved = use_stores(replace(aws, runs=InterleavedRunStore(aws.runs.table_name, between=other)))
    runs.update_run(interleaved, run_id, "running", {"live_evaluation": {"skipped": "no model"}})
    detail = runs.get_run(aws, run_id)["detail"]
    assert detail == {"trigger": "test", "phase": "fetching", "pages": 3, "live_evaluation": {"skipped": "no model"}}
    assert aws.runs.get(run_id)["revision"] == 2  # created at 0, then two changes (ours written on a fresh read)


def test_two_threads_updating_one_run_lose_nothing(aws) -> None:
    stores: Stores = use_stores(replace(aws, runs=AtomicRunStore(aws.runs.table_name)))
    run_id = runs.start_run(stores, "retrain", {"trigger": "test"})["run_id"]
    per_thread = 15

    def writer(name: str) -> None:
        for n in range(per_thread):
            runs.update_run(stores, run_id, "running", {f"{name}-{n}": n})

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(writer, ["a", "b"]))
    detail = runs.get_run(stores, run_id)["detail"]
    assert {f"{name}-{n}" for name in "ab" for n in range(per_thread)} <= set(detail)
    assert stores.runs.get(run_id)["revision"] == 2 * per_thread  # every change written once


def test_a_record_written_before_revisions_is_changed_once_then_kept_by_revision(aws) -> None:
    aws.runs.put({"run_id": "ingest-old", "kind": "ingest", "status": "queued", "started_at": "2026-01-01T00:00:00Z",
                  "detail": json.dumps({"trigger": "schedule"})})
    assert aws.runs.replace({**aws.runs.get("ingest-old"), "status": "running"}, None)
    assert not aws.runs.replace({**aws.runs.get("ingest-old"), "status": "failed"}, None)  # a stale writer
    assert runs.update_run(aws, "ingest-old", "succeeded", {"phase": "done"})["detail"] == {"trigger": "schedule", "phase": "done"}
    assert aws.runs.get("ingest-old")["revision"] == 2
    assert not aws.runs.replace({"run_id": "ingest-gone", "kind": "ingest"}, None)  # never recreates a missing record


def test_a_run_that_keeps_changing_is_a_conflict_not_a_lost_write(aws, monkeypatch) -> None:
    run_id = runs.start_run(aws, "ingest")["run_id"]
    monkeypatch.setattr(runs.time, "sleep", lambda _: None)
    monkeypatch.setattr(RunStore, "replace", lambda self, run, revision: False)
    with pytest.raises(ConflictError, match="kept changing"):
        runs.update_run(aws, run_id, "running", {"phase": "x"})


# --- what a viewer reads -------------------------------------------------------------------------


def _get(path: str, role: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("evaluate-run"))
    event["path"], event["resource"] = path, "/runs/{run_id}" if path.count("/") == 2 else "/runs"
    event["pathParameters"] = {"run_id": path.rsplit("/", 1)[1]} if path.count("/") == 2 else None
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    roles = "admin,viewer" if role == "admin" else "viewer"
    event["requestContext"]["authorizer"] = {"principalId": "ben", "username": "ben", "roles": roles}
    response = invoke("evaluate", event)
    assert response["statusCode"] == 200, response["body"]
    return body(response)


def test_a_viewer_reads_no_execution_arn_and_no_admin_username(aws) -> None:
    retrain = body(invoke("retrain", load_event("retrain-api")))
    arn = retrain["detail"]["execution_arn"]  # the admin who started it is told
    assert ":123456789012:" in arn
    _publish(aws, OLD, "2026-03")
    _publish(aws, SERVING, "2026-04")
    promote = body(_promote(OLD, "the new one over-forecasts"))
    assert promote["detail"]["by"] == "ana"

    for kind, run_id in (("retrain", retrain["run_id"]), ("promote", promote["run_id"])):
        one, listed = _get(f"/runs/{run_id}", "viewer"), _get("/runs", "viewer", {"kind": kind})
        for seen in (one, listed):
            text = json.dumps(seen)
            assert "arn:" not in text and "123456789012" not in text and "ana" not in text, seen
        admin_one, admin_listed = _get(f"/runs/{run_id}", "admin"), _get("/runs", "admin", {"kind": kind})
        assert ("arn:" in json.dumps(admin_one)) == (kind == "retrain") == ("arn:" in json.dumps(admin_listed))
        assert ('"ana"' in json.dumps(admin_one)) == (kind == "promote") == ('"ana"' in json.dumps(admin_listed))

    viewer = _get(f"/runs/{retrain['run_id']}", "viewer")
    assert viewer["detail"]["workflow"]["status"] == "RUNNING"  # the execution is still followed for a viewer
    assert _get(f"/runs/{retrain['run_id']}", "admin")["detail"]["execution_arn"] == arn
    assert _get(f"/runs/{promote['run_id']}", "viewer")["detail"]["promotion"] == {
        "promoted": True, "reason": "rolled back by an admin: the new one over-forecasts"}


def test_the_newest_runs_are_all_there_when_they_fill_more_than_a_page(aws) -> None:
    """DynamoDB (and moto) return at most 1 MB a page: 12 runs of 150 KB take two pages or more."""
    started = [runs.start_run(aws, "retrain", {"trigger": "test", "note": "x" * 150_000})["run_id"] for _ in range(12)]
    for minute, run_id in enumerate(started):  # a minute apart, in the order started
        aws.runs._table.update_item(Key={"run_id": run_id}, UpdateExpression="SET started_at = :at",
                                    ExpressionAttributeValues={":at": f"2026-12-01T10:{minute:02d}:00Z"})
    assert [item["run_id"] for item in aws.runs.newest("retrain", 10)] == started[::-1][:10]
    assert [item["run_id"] for item in aws.runs.newest("retrain", 50)] == started[::-1]
