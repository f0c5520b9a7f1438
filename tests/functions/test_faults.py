"""Fault injection (local/aws/faults.py): with a share of DynamoDB, S3 and Lambda calls failing as
AWS fails them, an ingest and a retrain (the template's state machine) end with exactly the
data of a clean run."""

from __future__ import annotations

import json
from typing import Any

from moto.moto_api._internal.models import moto_api_backend
import pandas as pd
import pytest

from crimecast.adapters.stores import Stores, get_stores, use_stores
from crimecast.jobs import counts, forecasts, ingest, pipeline, runs
from local.aws import faults, lambda_service
from local.workflow.machine import wait_for_execution
from tests.conftest import seasonal_series, tidy_frame
from tests.functions.conftest import RecordingLauncher, body, invoke, load_event, provision

VOLATILE = {"model_version", "version", "trained_at", "run_id", "promoted_at", "created_at", "started_at",
            "finished_at", "counts_version", "batches_key", "ingested_at"}


def _stable(value: Any) -> Any:
    """``value`` without what differs between two runs of the same work (ids, times)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and value.startswith("{"):
        try:
            return _stable(json.loads(value))
        except ValueError:
            return value
    return value


def _ingest_and_retrain(stores: Stores, tmp_path) -> dict[str, Any]:
    """A backfill from a file, then POST /retrain run to its end by the state machine; the data both left."""
    source = tmp_path / "counts.csv"
    pd.concat([tidy_frame(seasonal_series("2018-01", 72, level=level, seed=area), area, "THEFT")
               for area, level in {25: 80, 8: 300}.items()], ignore_index=True).to_csv(source, index=False)
    ingested = pipeline.ingest_now(stores, "test", ingest.FileSource(source), mode="backfill")
    started = body(invoke("retrain", load_event("retrain-api")))
    described = wait_for_execution(started["detail"]["execution_arn"])
    run = runs.get_run(stores, started["run_id"])
    manifest = counts.current_manifest(stores)
    version = (stores.series.champion() or {}).get("model_version")
    catalog = forecasts.version_catalog(stores, version) if version else {"types": []}
    items = sorted((i for t in catalog["types"] for i in stores.series.query_type_version(f"{t}#{version}")),
                   key=lambda i: i["series"])
    return {"ingest": ingested["status"], "execution": described["status"], "retrain": run["status"],
            "trained": run["detail"].get("series_trained"),
            "counts": stores.blobs.get_bytes(manifest["counts_key"]) if manifest else None,
            "series": _stable(json.loads(json.dumps(items, default=str).replace(str(version), "<version>")))}


@pytest.mark.workflow
def test_with_faults_an_ingest_and_a_retrain_end_with_the_data_of_a_clean_run(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RETRAIN_BATCH_SIZE", "1")
    clean = _ingest_and_retrain(aws, tmp_path)
    assert clean["execution"] == "SUCCEEDED" and clean["retrain"] == "succeeded" and clean["trained"] == 3  # and the city
    assert clean["counts"] and len(clean["series"]) == 3

    moto_api_backend.reset()  # the same world again, from nothing
    lambda_service.unregister_all()
    provision(monkeypatch)
    stores = use_stores(get_stores().with_launcher(RecordingLauncher()))
    injected = faults.install(faults.Faults.parse("dynamodb:0.1,s3:0.1,lambda:0.3", seed=1))
    try:
        faulted = _ingest_and_retrain(stores, tmp_path)
    finally:
        faults.install(None)
    assert injected is not None
    failed = {key.split(":")[0] for key in injected.injected}
    assert failed == {"dynamodb", "s3", "lambda"}, injected.injected  # every kind was hit
    assert faulted == clean


def test_a_fault_is_the_error_aws_answers_and_botocore_retries_it(aws) -> None:
    injected = faults.install(faults.Faults({"dynamodb": 0.3, "s3": 0.3}, seed=1))
    try:
        for n in range(8):
            aws.blobs.put_json(f"probe/{n}.json", {"n": n})
            assert aws.blobs.get_json(f"probe/{n}.json") == {"n": n}
            aws.runs.put({"run_id": f"probe-{n}", "kind": "ingest", "status": "queued", "started_at": "x", "detail": "{}"})
            assert aws.runs.get(f"probe-{n}")["status"] == "queued"
        assert injected.injected["s3:SlowDown"] + injected.injected["s3:InternalError"] >= 2, injected.injected
        assert sum(n for k, n in injected.injected.items() if k.startswith("dynamodb:")) >= 2, injected.injected
    finally:
        faults.install(None)
    without = faults.install(faults.Faults({"s3": 0.999}, seed=1))
    try:
        with pytest.raises(Exception, match="SlowDown|InternalError"):  # past botocore's retries: the error itself
            get_stores().blobs.put_json("probe/lost.json", {})
    finally:
        faults.install(None)
    assert without.injected
