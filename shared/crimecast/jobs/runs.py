"""Run records: one per ingest, retrain or evaluation, so every long job can be watched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from typing import Any
import uuid

from crimecast.adapters.stores import Stores
from crimecast.domain.errors import NotFoundError

KINDS = ("ingest", "retrain", "evaluate")
STATUSES = ("queued", "running", "succeeded", "failed")
KEEP_DAYS = 400  # run records expire (DynamoDB TTL) after about 13 months


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(kind: str, when: datetime | None = None) -> str:
    """A run id that sorts by time: ``<kind>-<UTC time>-<8 hex>``."""
    return f"{kind}-{(when or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def start_run(stores: Stores, kind: str, detail: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, Any]:
    """Record a new queued run and return its public view (``run_id`` when the caller
    needs the id first, e.g. to take a lease in its name)."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}")
    started = datetime.now(UTC)
    item = {
        "run_id": run_id or new_run_id(kind, started),
        "kind": kind,
        "status": "queued",
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": json.dumps(detail or {}),
        "expires_at": int((started + timedelta(days=KEEP_DAYS)).timestamp()),
    }
    stores.runs.put(item, only_if_new=True)
    return view(item)


def update_run(stores: Stores, run_id: str, status: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move a run on; a finished run gets its finish time. Detail keys are merged."""
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    item = _item(stores, run_id)
    merged = {**json.loads(item.get("detail") or "{}"), **(detail or {})}
    item.update(status=status, detail=json.dumps(merged))
    if status in ("succeeded", "failed"):
        item["finished_at"] = now_iso()
    stores.runs.put(item)
    return view(item)


def get_run(stores: Stores, run_id: str) -> dict[str, Any]:
    return view(_item(stores, run_id))


def recent_runs(stores: Stores, kind: str, limit: int = 20) -> list[dict[str, Any]]:
    return [view(item) for item in stores.runs.newest(kind, limit)]


def _item(stores: Stores, run_id: str) -> dict[str, Any]:
    item = stores.runs.get(run_id)
    if not item:
        raise NotFoundError(f"no run {run_id!r}")
    return item


def view(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": item["run_id"],
        "kind": item["kind"],
        "status": item["status"],
        "started_at": item["started_at"],
        "finished_at": item.get("finished_at"),
        "detail": json.loads(item.get("detail") or "{}"),
    }
