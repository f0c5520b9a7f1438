"""Starting the service's long jobs (ingest and retrain) and the counts they share.

The retrain steps themselves are in :mod:`crimecast.retrain`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import runs
from .errors import ConfigurationError
from .ingest import COUNTS_KEY, load_counts, store_counts  # noqa: F401 - where training and the stack find them
from .storage import Storage


def request_ingest(storage: Storage, trigger: str, *, idempotency_key: str | None = None, context: Any = None,
                   **options: Any) -> dict[str, Any]:
    """Start an ingest run and its worker (see :mod:`crimecast.ingest`); the queued run.

    With ``idempotency_key`` a repeated request gets the first one's run back instead of
    starting another (or a 409 while another run is in progress)."""
    from . import ingest

    function_name = getattr(context, "function_name", None)

    def start() -> dict[str, Any]:
        return ingest.request(storage, trigger, function_name=function_name, **options)

    if idempotency_key is None:
        return start()
    from .idempotency import run_once

    return run_once(storage, "ingest-start", {"trigger": trigger, "key": idempotency_key, **options}, start, context)


def request_retrain(storage: Storage, trigger: str, state_machine_arn: str | None = None,
                    reason: str | None = None) -> dict[str, Any]:
    """Record a retrain run and start the retrain workflow for it: the Step Functions state
    machine on AWS, or, with CRIMECAST_INLINE_RETRAIN=1 (the local stack), a background
    thread running the same steps."""
    detail = {"trigger": trigger, **({"reason": reason} if reason else {})}
    if os.environ.get("CRIMECAST_INLINE_RETRAIN") == "1":
        run = runs.start_run(storage, "retrain", detail)
        threading.Thread(target=_retrain_inline, args=(storage, run["run_id"]), daemon=True).start()
        return run
    arn = state_machine_arn or os.environ.get("RETRAIN_STATE_MACHINE_ARN")
    if not arn:
        raise ConfigurationError("environment variable RETRAIN_STATE_MACHINE_ARN is not set")
    run = runs.start_run(storage, "retrain", detail)
    execution = storage.start_workflow(arn, run["run_id"], {"run_id": run["run_id"]})
    return runs.update_run(storage, run["run_id"], "queued", {"execution_arn": execution})


def _retrain_inline(storage: Storage, run_id: str) -> None:
    from .retrain import run_locally

    workers = os.environ.get("CRIMECAST_RETRAIN_WORKERS")
    try:
        run_locally(storage, run_id, workers=int(workers) if workers else None)
    except Exception as exc:  # recorded on the run: a background thread has no caller to tell
        runs.update_run(storage, run_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
