"""Starting and carrying out the service's long jobs: ingest and retrain.

Retraining runs as plan -> train batches (in parallel) -> promote. On AWS a Step
Functions Distributed Map drives the three handlers; the functions here are what each
step does, so any other driver (a local runner, a test) gets the same behaviour.
"""

from __future__ import annotations

from datetime import UTC, datetime
import io
import os
from typing import Any

from . import forecasts, runs
from .errors import ConfigurationError, InvalidInputError
from .keys import SeriesKey
from .storage import Storage

COUNTS_KEY = "counts/current/monthly_counts.csv.gz"  # written by ingest, read by training
FORECAST_MONTHS = 24
DEFAULT_BATCH_SIZE = 25


def request_ingest(storage: Storage, trigger: str) -> dict[str, Any]:
    """Record an ingest request. Fetching from the portal is the ingestion issue's work;
    until it lands the run says so instead of pretending to succeed."""
    run = runs.start_run(storage, "ingest", {"trigger": trigger})
    return runs.update_run(storage, run["run_id"], "failed",
                           {"error": "ingestion from the data portal is not built yet; upload counts to " + COUNTS_KEY})


def request_retrain(storage: Storage, trigger: str, state_machine_arn: str | None = None) -> dict[str, Any]:
    """Record a retrain run and start the retrain workflow for it."""
    arn = state_machine_arn or os.environ.get("RETRAIN_STATE_MACHINE_ARN")
    if not arn:
        raise ConfigurationError("environment variable RETRAIN_STATE_MACHINE_ARN is not set")
    run = runs.start_run(storage, "retrain", {"trigger": trigger})
    execution = storage.start_workflow(arn, run["run_id"], {"run_id": run["run_id"]})
    return runs.update_run(storage, run["run_id"], "queued", {"execution_arn": execution})


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


def plan(storage: Storage, run_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Any]:
    """List the series to train, in batches, and write them where the workflow reads them."""
    counts = load_counts(storage)
    version = f"v{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    labels = [k.label for k in counts.keys()]
    batches = [{"run_id": run_id, "version": version, "series": labels[i:i + batch_size]}
               for i in range(0, len(labels), batch_size)]
    batches_key = f"runs/{run_id}/batches.json"
    storage.put_json(batches_key, batches)
    runs.update_run(storage, run_id, "running", {"version": version, "series_planned": len(labels), "batches": len(batches)})
    return {"run_id": run_id, "version": version, "batches_key": batches_key, "batches": len(batches)}


def train_batch(storage: Storage, batch: dict[str, Any], counts: Any = None) -> dict[str, Any]:
    """Fit, forecast and score each series of one batch; a failing series is recorded, not fatal."""
    from .backtest import BacktestTask, run_task
    from .model import CrimeForecaster, ModelSettings

    counts = counts if counts is not None else load_counts(storage)
    trained_at = runs.now_iso()
    items, failed = [], []
    for label in batch["series"]:
        key = SeriesKey.parse(label)
        try:
            history = counts.series(key)
            model = CrimeForecaster().fit(history)
            origin = history.index[-13]
            backtest = run_task(BacktestTask(key, origin, 12, history, counts.series(key, all_history=True), ModelSettings()))
            storage.put_bytes(f"models/{batch['version']}/{label}.json", model.to_json().encode(), "application/json")
            items.append(forecasts.series_item(
                key, batch["version"], trained_at, _history_rows(counts, key), _forecast_rows(model.predict(FORECAST_MONTHS)),
                {"backtest_origin": backtest["origin"], **{m: backtest[m] for m in ("model", "seed_prophet", "seasonal_naive")}},
            ))
        except (InvalidInputError, ValueError, RuntimeError) as exc:
            failed.append({"series": label, "error": str(exc)})
    forecasts.publish_version(storage, batch["version"], items)
    return {"trained": [i["series"] for i in items], "failed": failed}


def _history_rows(counts: Any, key: SeriesKey) -> list[dict[str, Any]]:
    observed = counts.series(key, include_partial=True)
    return [{"month": str(m), "count": int(c), "partial": m == counts.partial_month} for m, c in observed.items()]


def _forecast_rows(frame: Any) -> list[dict[str, Any]]:
    return [{"month": str(r.month), "yhat": round(float(r.yhat), 2), "yhat_lower": round(float(r.yhat_lower), 2),
             "yhat_upper": round(float(r.yhat_upper), 2)} for r in frame.itertuples()]


def promote(storage: Storage, run_id: str, version: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Serve the candidate and close the run. The comparison against the champion is the
    lifecycle issue's; until then a candidate with at least one trained series is served."""
    results = [r for r in results if isinstance(r, dict)]  # a batch the Map tolerated as failed has no result
    trained = [s for r in results for s in r.get("trained", [])]
    failed = [f for r in results for f in r.get("failed", [])]
    detail: dict[str, Any] = {"version": version, "series_trained": len(trained), "series_failed": len(failed),
                              "failures": failed[:20]}
    if not trained:
        detail["promotion"] = {"promoted": False, "reason": "no series trained"}
        return runs.update_run(storage, run_id, "failed", detail)
    keys = [SeriesKey.parse(label) for label in trained]
    forecasts.write_catalog(storage, version, keys, {"series": len(trained), "failed": len(failed)})
    forecasts.promote(storage, version, runs.now_iso())
    detail["promotion"] = {"promoted": True, "reason": "no promotion rule yet: every trained candidate is served"}
    return runs.update_run(storage, run_id, "succeeded", detail)
