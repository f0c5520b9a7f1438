"""Starting the service's long jobs (ingest and retrain) and the counts they share.

The retrain steps themselves are in :mod:`crimecast.retrain`.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

from . import runs
from .errors import ConfigurationError, InvalidInputError
from .storage import Storage

COUNTS_KEY = "counts/current/monthly_counts.csv.gz"  # written by ingest, read by training


def request_ingest(storage: Storage, trigger: str) -> dict[str, Any]:
    """Record an ingest request. Fetching from the portal is the ingestion issue's work;
    until it lands the run says so instead of pretending to succeed."""
    run = runs.start_run(storage, "ingest", {"trigger": trigger})
    return runs.update_run(storage, run["run_id"], "failed",
                           {"error": "ingestion from the data portal is not built yet; upload counts to " + COUNTS_KEY})


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


def store_counts(storage: Storage, counts: Any) -> None:
    """Save monthly counts where training reads them (tidy CSV, gzipped, partial month flagged)."""
    frame = counts.frame
    tidy = frame.assign(month=frame["month"].astype(str), partial_month=frame["month"] == counts.partial_month)
    buffer = io.BytesIO()
    tidy[["month", "community_area", "primary_type", "count", "partial_month"]].to_csv(buffer, index=False, compression="gzip")
    storage.put_bytes(COUNTS_KEY, buffer.getvalue(), "application/gzip")


def load_counts(storage: Storage) -> Any:
    import pandas as pd

    from .series import counts_from_frame

    body = storage.get_bytes(COUNTS_KEY)
    if body is None:
        raise InvalidInputError(f"no monthly counts in the bucket yet ({COUNTS_KEY}): run an ingest first")
    return counts_from_frame(pd.read_csv(io.BytesIO(body), compression="gzip", dtype=str))
