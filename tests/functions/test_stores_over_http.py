"""The stores module over HTTP against moto's server, through AWS_ENDPOINT_URL, the way
the local stack and AWS are reached (no in-process patching)."""

from __future__ import annotations

import socket

import boto3
from moto.server import ThreadedMotoServer
import pytest

from crimecast import settings
from crimecast.adapters import aws
from crimecast.adapters.aws import reset_clients
from crimecast.adapters.stores import Stores
from crimecast.domain.keys import SeriesKey
from crimecast.jobs import forecasts, runs
from local.aws.template import dynamodb_table_specs, load_template
from tests.conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch):
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    reset_clients()
    try:
        yield port
    finally:
        reset_clients()
        server.stop()


def test_storage_round_trips_over_http(moto_server: int) -> None:
    boto3.client("s3").create_bucket(Bucket="data")
    names = {}
    for logical_id, spec in dynamodb_table_specs(load_template(REPO / "template.yaml")).items():
        names[logical_id] = f"server-{logical_id}"
        boto3.client("dynamodb").create_table(TableName=names[logical_id], **spec)
    stores = Stores.from_settings(settings.read(settings.StoreSettings, {
        "DATA_BUCKET": "data", "SERIES_TABLE": names["SeriesTable"], "RUNS_TABLE": names["RunsTable"],
        "USERS_TABLE": names["UsersTable"]}))
    assert aws.client("s3").meta.endpoint_url == f"http://127.0.0.1:{moto_server}"

    stores.blobs.put_json("runs/x/batches.json", [{"series": ["25:THEFT"]}])
    assert stores.blobs.get_json("runs/x/batches.json") == [{"series": ["25:THEFT"]}]
    assert stores.blobs.get_json("missing.json") is None

    item = forecasts.series_item(SeriesKey(25, "THEFT"), "v1", "2026-01-01T00:00:00Z", [],
                                 [{"month": "2026-02", "yhat": 1.5, "yhat_lower": 0.0, "yhat_upper": 3.0}], {})
    forecasts.publish_version(stores, "v1", [item])
    assert stores.series.query_type_version("THEFT#v1")[0]["series"] == "25:THEFT"

    run = runs.start_run(stores, "retrain")
    assert runs.update_run(stores, run["run_id"], "succeeded", {"n": 1})["finished_at"]
