"""Every artefact a retrain writes, at 3,000 series, within the limit of the service that holds it.

The series are every community area and the city by 39 crime types (the portal's 35 and four
more), longest labels first; most are thin, skipped for the reasons the plan gives, some
fail with long errors. Training is stubbed (no Prophet): what is measured is what the steps
write and pass on, sized the way each service counts (``crimecast.adapters.limits``):
DynamoDB's item rules, JSON bytes for a Step Functions state and for a Lambda response.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pandas as pd
import pytest

from crimecast import settings
from crimecast.adapters.limits import (
    DYNAMODB_ITEM_BYTES,
    LAMBDA_RESPONSE_BYTES,
    STATE_PAYLOAD_BYTES,
    ItemTooLargeError,
    dynamodb_item_bytes,
    json_bytes,
)
from crimecast.adapters.series_store import CATALOG, SKIPPED, SUMMARY
from crimecast.domain.keys import SeriesKey
from crimecast.jobs import forecasts, retrain, runs
from local.aws.template import load_template
from tests.conftest import REPO
from tests.functions.conftest import FakeContext, body, invoke, load_event, load_function, write_map_results

SERIES = 3000
TYPES = ["ARSON", "ASSAULT", "BATTERY", "BURGLARY", "CONCEALED CARRY LICENSE VIOLATION", "CRIMINAL DAMAGE",
         "CRIMINAL SEXUAL ASSAULT", "CRIMINAL TRESPASS", "DECEPTIVE PRACTICE", "GAMBLING", "HOMICIDE",
         "HUMAN TRAFFICKING", "INTERFERENCE WITH PUBLIC OFFICER", "INTIMIDATION", "KIDNAPPING", "LIQUOR LAW VIOLATION",
         "MOTOR VEHICLE THEFT", "NARCOTICS", "NON-CRIMINAL", "OBSCENITY", "OFFENSE INVOLVING CHILDREN",
         "OTHER NARCOTIC VIOLATION", "OTHER OFFENSE", "PROSTITUTION", "PUBLIC INDECENCY", "PUBLIC PEACE VIOLATION",
         "RITUALISM", "ROBBERY", "SEX OFFENSE", "STALKING", "THEFT", "WEAPONS VIOLATION", "DOMESTIC VIOLENCE",
         "CRIMINAL ABORTION", "ALL",
         # four more, as a finer split of the portal's types might bring
         "CARJACKING", "RETAIL THEFT", "IDENTITY THEFT", "AGGRAVATED ASSAULT WITH FIREARM"]
LONG_ERROR = "the model could not be fitted: " + "Stan optimisation failed to converge; " * 60  # ~2.3 KB
RUN_ID = "retrain-20300101T000000Z-0a1b2c3d"
MONTHS = pd.period_range("2022-01", "2029-12", freq="M")


def labels() -> list[str]:
    every = [SeriesKey(area, t).label for t in TYPES for area in [*range(1, 78), None]]
    return sorted(every, key=lambda label: (-len(label), label))[:SERIES]


class SyntheticCounts:
    """Counts for 3,000 series: every ``modelled_every``-th worth a model, the rest thin in one
    of the two ways the plan skips (too short a history, or too few months with any report)."""

    last_complete_month = MONTHS[-1]
    partial_month = None

    def __init__(self, modelled_every: int = 5) -> None:
        self._keys = [SeriesKey.parse(label) for label in labels()]
        self._index = {key: n for n, key in enumerate(self._keys)}
        self.modelled_every = modelled_every

    def keys(self) -> list[SeriesKey]:
        return self._keys

    def data_end(self, key: SeriesKey) -> pd.Period:
        return self.last_complete_month

    def series(self, key: SeriesKey, include_partial: bool = False) -> pd.Series:
        n = self._index[key]
        if n % self.modelled_every == 0:  # worth a model
            return pd.Series(50, index=MONTHS)
        if n % 2:  # a short history: 12..35 months
            return pd.Series(3, index=MONTHS[-(12 + n % 24):])
        values = [0] * len(MONTHS)  # eight years, with reports in 0..23 of the last five
        for m in range(n % 24):
            values[-1 - 2 * m] = 1
        return pd.Series(values, index=MONTHS)


def stub_training(monkeypatch: pytest.MonkeyPatch, fail_every: int = 3) -> None:
    """A series item as train_series makes one (60 months of history, 24 forecast, the
    backtest's metrics), without Prophet; every ``fail_every``-th series fails at length."""
    metrics = {"model": {"mae": 12.3456, "rmse": 15.4321, "mase": 0.8123, "coverage": 0.8333},
               "seasonal_naive": {"mae": 14.1234, "rmse": 18.2345, "mase": 1.0123, "coverage": None}}
    calls = {"n": 0}

    def train_series(counts: Any, key: SeriesKey, version: str, trained_at: str, options: Any) -> tuple[dict, str]:
        calls["n"] += 1
        if calls["n"] % fail_every == 0:
            raise ValueError(LONG_ERROR)
        history = [{"month": str(m), "count": 50, "partial": False} for m in MONTHS[-60:]]
        forecast = [{"month": str(MONTHS[-1] + h), "yhat": 123.45, "yhat_lower": 98.76, "yhat_upper": 154.32}
                    for h in range(1, 25)]
        backtest = {"origins": ["2026-12", "2027-12", "2028-12"], "beats_seasonal_naive": 2, **metrics}
        return forecasts.series_item(key, version, trained_at, history, forecast, backtest), "{}"

    monkeypatch.setattr(retrain, "train_series", train_series)


def scan(table: str) -> list[dict[str, Any]]:
    """Every item of a table, as the low-level client returns it (numbers as numbers)."""
    resource = boto3.resource("dynamodb")
    items, start = [], None
    while True:
        page = resource.Table(table).scan(**({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def _path(doc: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        doc = doc[part] if part else doc
    return doc


def _parameters(template: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k.removesuffix(".$"): (_path(state, v) if k.endswith(".$") else fill(v)) for k, v in value.items()}
        return value

    return fill(template)


def map_state_output(definition: dict[str, Any], outputs: list[Any]) -> Any:
    """What the Train Map hands on, as Step Functions builds it: with a ResultWriter, where the
    results are; without one, every child execution's output in one array."""
    writer = definition["States"]["Train"].get("ResultWriter")
    if not writer:
        return outputs
    run = "7c9e1f4a-3b2d-3c1e-9f0a-5d6e7f8a9b0c"
    return {"MapRunArn": f"arn:aws:states:us-east-1:123456789012:mapRun:crimecast-retrain-prod/TrainBatches:{run}",
            "ResultWriterDetails": {"Bucket": "crimecast-prod-databucket-1a2b3c4d5e6f",
                                    "Key": f"{writer['Parameters']['Prefix']}/{run}/manifest.json"}}


@pytest.fixture
def synthetic(aws, monkeypatch: pytest.MonkeyPatch) -> SyntheticCounts:
    """The counts every step reads (in place of the bucket's), and the run they belong to."""
    counts = SyntheticCounts()
    monkeypatch.setattr(retrain, "load_counts", lambda stores, version=None: counts)
    runs.start_run(aws, "retrain", {"trigger": "test"}, run_id=RUN_ID)
    return counts


def test_every_state_of_the_workflow_stays_under_256_kb_at_3000_series(aws, synthetic, monkeypatch) -> None:
    """Plan's output, each batch (a child's input), a child's output at the largest batch with
    every series failing at length, and the Map's output and Promote's input with every series
    worth a model at one series a batch (3,000 children)."""
    definition = load_template(REPO / "template.yaml")["Resources"]["RetrainStateMachine"]["Properties"]["Definition"]
    parameters = load_template(REPO / "template.yaml")["Parameters"]
    largest, smallest = parameters["RetrainBatchSize"]["MaxValue"], parameters["RetrainBatchSize"]["MinValue"]
    sizes: dict[str, int] = {}

    planned = retrain.plan(aws, RUN_ID, batch_size=largest, counts=synthetic)
    sizes["plan output"] = json_bytes(planned)
    sizes["largest batch"] = max(json_bytes(b) for b in aws.blobs.get_json(planned["batches_key"]))

    stub_training(monkeypatch, fail_every=1)  # every series of the largest batch fails, at length
    batch = {"run_id": RUN_ID, "version": planned["version"], "batch": 0, "series": labels()[:largest]}
    steps = load_function("retrain", "steps")
    sizes["child output"] = json_bytes(steps.train_handler(batch, FakeContext()))
    assert len(aws.blobs.get_json(retrain.result_key(batch))["failed"]) == largest  # all of it, in S3

    one_each = retrain.plan(aws, RUN_ID, batch_size=smallest, counts=SyntheticCounts(modelled_every=1))
    assert one_each["batches"] == SERIES
    outputs = [{"result_keys": [retrain.result_key(b)], "trained": 1, "failed": 0}
               for b in aws.blobs.get_json(one_each["batches_key"])]
    after_map = {"plan": one_each, "max_concurrency": 40, "results": map_state_output(definition, outputs)}
    sizes["state after the Map"] = json_bytes(after_map)
    sizes["promote input"] = json_bytes(_parameters(definition["States"]["Promote"]["Parameters"]["Payload"], after_map))
    print(sizes)
    assert all(size <= STATE_PAYLOAD_BYTES for size in sizes.values()), sizes
    assert sizes["plan output"] < 1024 and sizes["child output"] < 1024 and sizes["promote input"] < 1024


def _run_at_scale(aws, synthetic, monkeypatch) -> dict[str, Any]:
    """Plan, train every batch (stubbed), the Map's results in S3, promote through its handler.
    A third of the series fail on purpose (the run's records at their largest): promote is
    told to serve the rest (test_retrain_failsafe.py holds it to the 1% default)."""
    monkeypatch.setenv("CRIMECAST_MISSING_SERIES_TOLERANCE", "0.5")
    settings.reset()
    stub_training(monkeypatch)
    planned = retrain.plan(aws, RUN_ID, counts=synthetic)
    steps = load_function("retrain", "steps")
    outputs = [steps.train_handler(batch, FakeContext()) for batch in aws.blobs.get_json(planned["batches_key"])]
    finished = steps.promote_handler({"run_id": RUN_ID, "version": planned["version"],
                                      "map_results": write_map_results(aws, outputs)}, FakeContext())
    return {"planned": planned, "manifest": aws.blobs.get_json(planned["manifest_key"]), "finished": finished}


def test_every_item_a_retrain_writes_fits_dynamodb_at_3000_series(aws, synthetic, monkeypatch) -> None:
    done = _run_at_scale(aws, synthetic, monkeypatch)
    manifest, version = done["manifest"], done["planned"]["version"]
    assert len(manifest["planned"]) + len(manifest["skipped"]) == SERIES and len(manifest["skipped"]) == 2400
    detail = done["finished"]["detail"]
    assert detail["series_trained"] + detail["series_failed"] == 600 and detail["series_failed"] == 200

    items = {(i["series"], i["version"]): i for i in scan(aws.series.table_name)}
    sizes = {key: dynamodb_item_bytes(item) for key, item in items.items()}
    catalog, summary = sizes[(CATALOG, version)], sizes[(SUMMARY, version)]
    parts = {key: size for key, size in sizes.items() if key[0] == SKIPPED}
    run = dynamodb_item_bytes(aws.runs.get(RUN_ID))
    print({"catalog": catalog, "summary": summary, "skipped parts": sorted(parts.values()), "run": run,
           "largest series item": max(s for k, s in sizes.items() if not k[0].startswith("__"))})
    assert max(sizes.values()) <= DYNAMODB_ITEM_BYTES and run <= DYNAMODB_ITEM_BYTES
    # Every /predict reads the catalog item: it holds the modelled series, not the 2,400 skipped
    # (with them it would be ~290 KB, 70 DynamoDB read units a request instead of ~3).
    assert catalog < 16 * 1024 and len(parts) >= 2 and max(parts.values()) <= forecasts.SKIPPED_PART_BYTES + 1024
    assert run < 64 * 1024 and summary < 8 * 1024  # the run shows 20 failures of 200, not all of them
    assert json_bytes(done["finished"]) <= STATE_PAYLOAD_BYTES  # promote's output is the state machine's


def test_the_catalog_lists_every_series_and_every_skipped_one_well_under_6_mb(aws, synthetic, monkeypatch) -> None:
    done = _run_at_scale(aws, synthetic, monkeypatch)
    event = load_event("predict-predict")
    event |= {"resource": "/catalog", "path": "/catalog", "queryStringParameters": None,
              "multiValueQueryStringParameters": None}
    event["requestContext"] |= {"resourcePath": "/catalog", "path": "/dev/catalog"}
    response = invoke("predict", event)
    catalog = body(response)
    assert len(catalog["series"]) == done["finished"]["detail"]["series_trained"]
    assert len(catalog["skipped"]) == 2400 and catalog["skipped"] == sorted(
        done["manifest"]["skipped"], key=lambda s: SeriesKey.parse(s["series"]).sort_key())
    assert all(set(s) == {"series", "reason"} and s["reason"].startswith("only ") for s in catalog["skipped"])
    size = json_bytes(response)
    print({"catalog response": size})
    assert size <= LAMBDA_RESPONSE_BYTES / 8  # ~0.3 MB: far below Lambda's 6 MB

    event = load_event("evaluate-run")  # the run record, as an admin reads it
    event |= {"path": f"/runs/{RUN_ID}", "pathParameters": {"run_id": RUN_ID}}
    event["requestContext"]["path"] = f"/dev/runs/{RUN_ID}"
    run = invoke("evaluate", event)
    assert body(run)["run_id"] == RUN_ID and json_bytes(run) <= LAMBDA_RESPONSE_BYTES / 64


def test_an_item_over_400_kb_is_refused_by_name_before_dynamodb_sees_it(aws) -> None:
    with pytest.raises(ItemTooLargeError, match=r"series='__catalog__', version='v1' is \d+ bytes"):
        aws.series.put_items([{"series": CATALOG, "version": "v1", "payload": json.dumps(labels() * 20)}])
    with pytest.raises(ItemTooLargeError, match="run_id='r1'"):
        aws.runs.put({"run_id": "r1", "kind": "retrain", "detail": "x" * DYNAMODB_ITEM_BYTES})


def test_item_sizes_are_counted_as_dynamodb_counts_them() -> None:
    # names and strings in UTF-8 bytes; a number 1 byte per two significant digits plus 1;
    # a list or map 3 bytes plus 1 per element; null and booleans 1 byte.
    assert dynamodb_item_bytes({"series": "city:ALL"}) == 6 + 8
    assert dynamodb_item_bytes({"n": 12345, "m": 0, "d": 1.5}) == (1 + 4) + (1 + 2) + (1 + 2)
    assert dynamodb_item_bytes({"é": "ü"}) == 2 + 2
    assert dynamodb_item_bytes({"l": ["ab", 1], "f": None, "b": True}) == (1 + 3 + (2 + 1) + (2 + 1)) + 2 + 2
