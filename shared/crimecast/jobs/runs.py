"""Run records: one per ingest, retrain or evaluation, so every long job can be watched.

Any signed-in user may read a run, so a failed run says what went wrong in words safe for
everyone: ``detail.error`` (a short message) and ``detail.error_code`` (a stable
identifier: ``portal_unavailable``, ``portal_bad_data``, ``invalid_input``, ...,
``internal``). A domain error's message is written to be shown and is kept; any other
exception (whose text may name buckets, tables, account or role ARNs) is ``internal`` with
a generic message. The exception text itself is kept apart, in ``error_detail`` (and, for
series a retrain could not train, ``failure_details``), which only an admin's view shows, as
are the detail keys of ``ADMIN_ONLY_DETAIL`` (an execution's ARN names the AWS account; an
admin's username is no viewer's business).

Several writers may move one run on at once (a worker and the workflow's Catch, a request
and its retry): each change is a conditional write on the record's ``revision``, redone on a
fresh read when another writer got there first, so no writer's change is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
import random
import time
from typing import Any
import uuid

from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConfigurationError, ConflictError, CrimecastError, NotFoundError

KINDS = ("ingest", "retrain", "evaluate", "promote")  # promote: an admin serving a version again
STATUSES = ("queued", "running", "succeeded", "failed")
KEEP_DAYS = 400  # run records expire (DynamoDB TTL) after about 13 months
INTERNAL = "internal"
INTERNAL_MESSAGE = "the run failed on an internal error; an administrator can read its detail"
MAX_MESSAGE = 300  # characters of a safe message kept on the record
# Attributes of a run record kept out of its ``detail`` and shown to admins only.
ADMIN_ONLY = ("error_detail", "failure_details")
# Keys of a run's ``detail`` only an admin's view shows: a retrain's execution ARN (it names the
# AWS account) and the username of the admin who promoted a version.
ADMIN_ONLY_DETAIL = ("execution_arn", "by")
ENDED = ("succeeded", "failed")
WRITE_ATTEMPTS = 10  # conditional writes of one change before giving up on a record that keeps changing


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
        "revision": 0,
    }
    stores.runs.put(item, only_if_new=True)
    return view(item)


def describe_error(exc: BaseException) -> dict[str, str]:
    """``code`` and ``message`` safe for any reader, and the full ``detail`` for admins."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, CrimecastError) and not isinstance(exc, ConfigurationError):
        return {"code": exc.code, "message": str(exc)[:MAX_MESSAGE], "detail": detail}
    return {"code": INTERNAL, "message": INTERNAL_MESSAGE, "detail": detail}


def update_run(stores: Stores, run_id: str, status: str, detail: dict[str, Any] | None = None, *,
               admin_only: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move a run on; a finished run gets its finish time. Detail keys are merged into the
    record as it is when written (a conditional write, redone if another writer came first).
    ``admin_only``: attributes of ``ADMIN_ONLY`` to set (None removes one)."""
    if status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    for name in admin_only or {}:
        if name not in ADMIN_ONLY:
            raise ValueError(f"{name!r} is not an admin-only run attribute")
    for attempt in range(WRITE_ATTEMPTS):
        item = _item(stores, run_id)
        revision = item.pop("revision", None)
        merged = {**json.loads(item.get("detail") or "{}"), **(detail or {})}
        item.update(status=status, detail=json.dumps(merged))
        for name, value in (admin_only or {}).items():
            if value is None:
                item.pop(name, None)
            else:
                item[name] = value if isinstance(value, str) else json.dumps(value)
        if status in ENDED:
            item["finished_at"] = now_iso()
        if stores.runs.replace(item, None if revision is None else int(revision)):
            return view(item)
        time.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 5)))  # nosec B311  # jitter, not a secret
    raise ConflictError(f"run {run_id} kept changing: {WRITE_ATTEMPTS} writes in a row found it changed by another writer")


def fail_run(stores: Stores, run_id: str, error: BaseException | dict[str, str],
             detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """End a run ``failed`` with ``error``: an exception (see ``describe_error``), or a
    ``{"code", "message"}`` written to be shown (with an optional admin-only ``detail``)."""
    described = describe_error(error) if isinstance(error, BaseException) else error
    return update_run(stores, run_id, "failed",
                      {**(detail or {}), "error": described["message"], "error_code": described["code"]},
                      admin_only={"error_detail": described.get("detail")})


def clear_error(stores: Stores, run_id: str, status: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Move a failed run on again (a resume): its error goes, for every reader."""
    return update_run(stores, run_id, status, {**(detail or {}), "error": None, "error_code": None},
                      admin_only={"error_detail": None})


def get_run(stores: Stores, run_id: str, admin: bool = False) -> dict[str, Any]:
    """The run as a reader sees it (``admin``: with what only an admin sees; see ``for_reader``)."""
    return for_reader(view(_item(stores, run_id), admin), admin)


def recent_runs(stores: Stores, kind: str, limit: int = 20, admin: bool = False) -> list[dict[str, Any]]:
    """The newest runs of ``kind`` as a reader sees them (see ``get_run``)."""
    return [for_reader(view(item, admin), admin) for item in stores.runs.newest(kind, limit)]


def unfinished(stores: Stores, kind: str, limit: int = 100) -> list[dict[str, Any]]:
    """The runs of ``kind`` that have not ended (queued or running), among its newest ``limit``,
    with their whole detail (for the jobs, not for a reader)."""
    return [view(item) for item in stores.runs.newest(kind, limit) if item.get("status") not in ENDED]


def _item(stores: Stores, run_id: str) -> dict[str, Any]:
    item = stores.runs.get(run_id)
    if not item:
        raise NotFoundError(f"no run {run_id!r}")
    return item


def view(item: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    """The run with its whole detail, as the jobs return it to whoever started it (e.g. the 202
    of POST /retrain to an admin); ``admin`` adds the ``ADMIN_ONLY`` attributes it has. What
    anyone may read of it: ``for_reader``."""
    shown = {
        "run_id": item["run_id"],
        "kind": item["kind"],
        "status": item["status"],
        "started_at": item["started_at"],
        "finished_at": item.get("finished_at"),
        "detail": json.loads(item.get("detail") or "{}"),
    }
    if admin:
        if item.get("error_detail"):
            shown["error_detail"] = str(item["error_detail"])
        if item.get("failure_details"):
            shown["failure_details"] = json.loads(item["failure_details"])
    return shown


def for_reader(run: dict[str, Any], admin: bool) -> dict[str, Any]:
    """A run's view as ``admin`` or a viewer may read it: a viewer's has no ``ADMIN_ONLY``
    attribute and no ``ADMIN_ONLY_DETAIL`` key."""
    if admin:
        return run
    shown = {name: value for name, value in run.items() if name not in ADMIN_ONLY}
    shown["detail"] = {key: value for key, value in (run.get("detail") or {}).items() if key not in ADMIN_ONLY_DETAIL}
    return shown
