"""Counts versions under concurrency: a version a running retrain pinned is never dropped, and
the pointer flips only over the version it was built on (two publishes at once lose neither's
months)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from crimecast.domain.errors import ConflictError
from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import counts, pipeline, retrain
from crimecast.jobs.counts import COUNTS_KEY, VERSIONS_PREFIX, current_manifest, load_counts
from crimecast.jobs.ingest import FileSource
from tests.conftest import seasonal_series, tidy_frame
from tests.functions.conftest import body, invoke, load_event

PAST = date(2030, 1, 1)


def _ingest(stores, tmp_path, level: int) -> str:
    """A backfill ingest through the real job (it drops old versions after publishing); its version."""
    source = tmp_path / f"counts-{level}.csv"
    tidy_frame(seasonal_series("2018-01", 72, level=level), 25, "THEFT").to_csv(source, index=False)
    view = pipeline.ingest_now(stores, "test", FileSource(source), mode="backfill")
    assert view["status"] == "succeeded", view
    return view["detail"]["version"]


def _stored_versions(stores) -> set[str]:
    return {key[len(VERSIONS_PREFIX):].split("/", 1)[0] for key in stores.blobs.list_keys(VERSIONS_PREFIX)}


def test_a_version_a_running_retrain_pinned_survives_drop_old_versions(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(counts, "KEEP_VERSIONS", 2)
    pinned = _ingest(aws, tmp_path, 80)
    run_id = body(invoke("retrain", load_event("retrain-api")))["run_id"]
    planned = retrain.plan(aws, run_id)  # the run's batches read this counts version, however long they take
    newer = [_ingest(aws, tmp_path, level) for level in (90, 100, 110)]
    assert _stored_versions(aws) == {pinned, *newer[-2:]}  # the newest two, and the pinned one
    (batch,) = aws.blobs.get_json(planned["batches_key"])
    assert batch["counts_version"] == pinned
    ref = retrain.train_batch(aws, batch)
    assert ref["failed"] == 0 and ref["trained"] == len(batch["series"])

    retrain.promote(aws, run_id, planned["version"], [ref])  # the run ends: its pin goes
    assert counts.drop_old_versions(aws) == 1
    assert _stored_versions(aws) == set(newer[-2:])


def test_the_ingest_function_may_read_the_pins(aws, iam_roles, tmp_path) -> None:
    """drop_old_versions runs in the ingest function, and deletes nothing when it cannot read the
    pins: its role must allow reading them (else old versions would quietly pile up)."""
    pinned = _ingest(aws, tmp_path, 80)
    run_id = body(invoke("retrain", load_event("retrain-api")))["run_id"]
    retrain.plan(aws, run_id)
    roles = iam_roles()
    with roles.as_function("IngestFunction"):
        assert counts.pinned_versions(aws) == {pinned}


def test_the_ingest_function_drops_old_versions_with_its_grants(aws, iam_roles, tmp_path, monkeypatch) -> None:
    old = _ingest(aws, tmp_path, 80)
    with monkeypatch.context() as patched:
        patched.setattr(counts, "drop_old_versions", lambda stores, keep=None: 0)  # the publish keeps both
        newest = _ingest(aws, tmp_path, 90)
    assert _stored_versions(aws) == {old, newest}
    with iam_roles().as_function("IngestFunction"):
        assert counts.drop_old_versions(aws, keep=1) == 1  # lists and deletes counts/versions/<old>/
    assert _stored_versions(aws) == {newest}


def test_nothing_is_dropped_when_the_pins_cannot_be_read(aws, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(counts, "KEEP_VERSIONS", 1)
    versions = {_ingest(aws, tmp_path, 80)}
    monkeypatch.setattr(counts, "pinned_versions", lambda stores: (_ for _ in ()).throw(RuntimeError("AccessDenied")))
    versions |= {_ingest(aws, tmp_path, 90), _ingest(aws, tmp_path, 100)}
    assert _stored_versions(aws) == versions


def _window_parts(stores, key: str, months: tuple[str, str], count: int) -> dict[int, list[str]]:
    """Staged rows of an ingest over ``months`` (one year): every level, ``count`` a month."""
    index = pd.period_range(months[0], months[1], freq="M")
    frame = tidy_frame(pd.Series(count, index=index), 25, "THEFT")
    stores.blobs.put_bytes(key, counts.part_bytes(counts_from_tidy(frame, as_of=PAST).frame), "application/gzip")
    return {int(months[0][:4]): [key]}


def test_two_publishes_at_once_lose_neither_s_months(aws, monkeypatch) -> None:
    counts.store_counts(aws, counts_from_tidy(tidy_frame(seasonal_series("2018-01", 72, level=80), 25, "THEFT"), as_of=PAST))
    base = current_manifest(aws)["version"]
    first = _window_parts(aws, "staging-test/first.csv.gz", ("2023-01", "2023-03"), 1000)
    second = _window_parts(aws, "staging-test/second.csv.gz", ("2023-04", "2023-06"), 2000)
    write_version = counts._write_version
    other: list[dict[str, Any]] = []

    def built_then_overtaken(stores, version, pointer, *args: Any) -> dict[str, Any]:
        manifest = write_version(stores, version, pointer, *args)
        if not other:  # the first publish has built its version on the pointer it read; another flips it first
            other.append({})
            other[0] = counts.publish(aws, counts.new_version(), second, ("2023-04", "2023-06"), lambda m: None,
                                      {"source": "second"})
        return manifest

    monkeypatch.setattr(counts, "_write_version", built_then_overtaken)
    abandoned = counts.new_version()
    published = counts.publish(aws, abandoned, first, ("2023-01", "2023-03"), lambda m: None, {"source": "first"})

    assert published["previous_version"] == other[0]["version"] and other[0]["previous_version"] == base
    assert current_manifest(aws) == published and published["version"] != abandoned
    assert abandoned not in _stored_versions(aws)  # built on a stale pointer, never served: deleted
    served = load_counts(aws).frame
    area = served[(served["community_area"] == 25) & (served["primary_type"] == "THEFT")]
    by_month = dict(zip(area["month"].astype(str), area["count"].astype(int), strict=True))
    assert [by_month[m] for m in ("2023-01", "2023-03", "2023-04", "2023-06")] == [1000, 1000, 2000, 2000]
    assert by_month["2022-12"] == int(seasonal_series("2018-01", 72, level=80)["2022-12"])  # the rest as it was


def test_a_flip_over_a_pointer_that_moved_is_refused(aws) -> None:
    aws.blobs.put_json(COUNTS_KEY, {"version": "v1"})
    _, tag = aws.blobs.get_tagged(COUNTS_KEY)
    aws.blobs.put_json(COUNTS_KEY, {"version": "v2"}, if_match=tag)
    with pytest.raises(ConflictError):
        aws.blobs.put_json(COUNTS_KEY, {"version": "v3"}, if_match=tag)  # built on v1: stale
    with pytest.raises(ConflictError):
        aws.blobs.put_json(COUNTS_KEY, {"version": "v3"}, if_absent=True)
    assert current_manifest(aws) == {"version": "v2"}
