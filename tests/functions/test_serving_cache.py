"""The read routes keep the champion pointer and its version's catalog for
``SERVING_CACHE_S`` (30 s) per warm container: a promotion made by another container (the
retrain's promote step) is served once that time has passed, and not before; one made in
the same process is served at once."""

from __future__ import annotations

from dataclasses import replace
import json
from types import SimpleNamespace

import pytest

from crimecast.adapters import series_store
from crimecast.adapters.series_store import SeriesStore
from crimecast.domain.keys import SeriesKey
from crimecast.jobs import forecasts
from tests.functions.conftest import body, invoke, load_event

KEY = SeriesKey(25, "ASSAULT")


def _publish(stores, version: str, level: float, promote: bool = True) -> None:
    history = [{"month": "2026-04", "count": int(level), "partial": False}]
    forecast = [{"month": "2026-05", "yhat": level, "yhat_lower": level - 5, "yhat_upper": level + 5}]
    forecasts.publish_version(stores, version, [forecasts.series_item(KEY, version, "2026-05-01T00:00:00Z", history, forecast, {})])
    forecasts.write_catalog(stores, version, [KEY], {"series": 1, "failed": 0})
    if promote:
        forecasts.promote(stores, version, "2026-05-01T00:00:00Z", replaces=(stores.series.champion() or {}).get("model_version"))


def _served() -> str:
    event = load_event("predict-predict")
    event["queryStringParameters"] = {"community_area": "25", "crime_type": "ASSAULT"}
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in event["queryStringParameters"].items()}
    response = invoke("predict", event)
    assert response["statusCode"] == 200, response["body"]
    return body(response)["model_version"]


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    """The stores' read cache's clock, moved by hand: a loaded machine must not age a read past the
    cache time between two lines of a test."""
    now = [1_000_000.0]
    monkeypatch.setattr(series_store, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_the_stated_time_is_30_seconds() -> None:
    assert forecasts.SERVING_CACHE_S == 30.0


def test_a_promotion_elsewhere_is_served_after_the_cache_time_and_not_before(aws, monkeypatch, clock) -> None:
    monkeypatch.setattr(forecasts, "SERVING_CACHE_S", 1.0)
    _publish(aws, "v1", 10)
    assert _served() == "v1"
    elsewhere = replace(aws, series=SeriesStore(aws.series.table_name))  # another container's store
    _publish(elsewhere, "v2", 20)
    assert _served() == "v1"  # the pointer and catalog this container read are still fresh

    clock[0] += 1.1
    assert _served() == "v2"


def test_a_promotion_in_this_process_is_served_at_once(aws) -> None:
    _publish(aws, "v1", 10)
    assert _served() == "v1"
    _publish(aws, "v2", 20)
    assert _served() == "v2"


def test_the_reads_kept_per_container_are_bounded_whatever_versions_callers_ask_for(aws, monkeypatch) -> None:
    from crimecast.adapters import series_store

    monkeypatch.setattr(series_store, "MAX_CACHED_READS", 8)
    _publish(aws, "v1", 10)
    assert _served() == "v1"
    for n in range(30):  # a caller trying version after version, none of them real
        event = load_event("evaluate-series")
        event["queryStringParameters"] = {"community_area": "25", "crime_type": "ASSAULT", "version": f"v{n}T"}
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in event["queryStringParameters"].items()}
        assert invoke("evaluate", event)["statusCode"] in (404, 422)
        assert aws.series.cached_reads() <= 8
    assert aws.series.cached_reads() == 8
    assert _served() == "v1"  # the serving reads still work, read again when evicted


def _item_reads(stores) -> list[str]:
    """The series table's GetItem keys requested from now on (DynamoDB's own calls, counted)."""
    reads: list[str] = []

    def count(params, **_kwargs) -> None:
        reads.append(params["Key"]["series"])

    stores.series._table.meta.client.meta.events.register("provide-client-params.dynamodb.GetItem", count)
    return reads


def test_a_served_series_is_read_once_per_container_and_the_next_champions_at_once(aws) -> None:
    _publish(aws, "v1", 10)
    reads = _item_reads(aws)
    for _ in range(3):
        assert _served() == "v1"
    assert reads.count(KEY.label) == 1  # the served version's item never changes: read once

    _publish(aws, "v2", 20)
    response = invoke("predict", {**load_event("predict-predict"), "queryStringParameters": {
        "community_area": "25", "crime_type": "ASSAULT"}, "multiValueQueryStringParameters": {
        "community_area": ["25"], "crime_type": ["ASSAULT"]}})
    served = body(response)
    assert served["model_version"] == "v2"
    assert served["forecast"][0]["yhat"] == 20  # the new champion's own item, not the old one's
    assert reads.count(KEY.label) == 2


def test_a_verdict_recorded_elsewhere_is_read_after_the_cache_time_and_one_made_here_at_once(aws, monkeypatch, clock) -> None:
    from crimecast.adapters.series_store import UNUSUAL

    monkeypatch.setattr(forecasts, "SERVING_CACHE_S", 1.0)
    verdict = {"z": {KEY.label: 3.1}, "unusual": [KEY.label]}
    assert forecasts.judged_months(aws, forecasts.SERVING_CACHE_S) == {}
    elsewhere = SeriesStore(aws.series.table_name)  # the ingest's evaluation, in another container
    elsewhere.put_items([{"series": UNUSUAL, "version": "2026-04", "payload": json.dumps(verdict)}])
    assert forecasts.judged_months(aws, forecasts.SERVING_CACHE_S) == {}  # read 0 s ago: still fresh
    clock[0] += 1.1
    assert forecasts.judged_months(aws, forecasts.SERVING_CACHE_S) == {"2026-04": verdict}

    aws.series.put_items([{"series": UNUSUAL, "version": "2026-05", "payload": json.dumps(verdict)}])
    assert set(forecasts.judged_months(aws, forecasts.SERVING_CACHE_S)) == {"2026-04", "2026-05"}


def test_the_versions_served_follow_a_promotion_elsewhere_with_the_pointer(aws, monkeypatch, clock) -> None:
    monkeypatch.setattr(forecasts, "SERVING_CACHE_S", 1.0)
    _publish(aws, "v1", 10)
    assert set(forecasts.promoted_versions(aws, forecasts.SERVING_CACHE_S)) == {"v1"}
    elsewhere = replace(aws, series=SeriesStore(aws.series.table_name))
    _publish(elsewhere, "v2", 20)
    assert set(forecasts.promoted_versions(aws, forecasts.SERVING_CACHE_S)) == {"v1"}
    clock[0] += 1.1
    assert set(forecasts.promoted_versions(aws, forecasts.SERVING_CACHE_S)) == {"v1", "v2"}
    assert forecasts.champion_version(aws, forecasts.SERVING_CACHE_S) == "v2"
