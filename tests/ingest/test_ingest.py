"""Ingest from the portal stand-in into moto's S3: counts equal a recount, reruns change
nothing, revisions are applied once, faults are survived or fail cleanly, runs resume."""

from __future__ import annotations

from datetime import datetime
import gzip
import json

import pandas as pd
import pytest

from crimecast.adapters.aws import table as aws_table
from crimecast.adapters.socrata import SocrataClient
from crimecast.domain.errors import ConflictError, InvalidInputError
from crimecast.jobs import counts, forecasts, ingest, pipeline, runs
from crimecast.jobs.counts import STAGING_PREFIX, VERSIONS_PREFIX, current_manifest, load_counts, store_counts
from local.portal.server import StandInPortal
from tests.ingest.conftest import (
    AS_OF,
    READ_TIMEOUT_S,
    Sleeps,
    assert_same_counts,
    cells,
    csv_path,
    file_recount,
    groups,
    incidents,
    page_size,
    pages,
    portal_source,
    recount,
    run,
    stored,
)

# --- correctness -------------------------------------------------------------------------------


def test_backfill_stores_exactly_a_recount_of_the_source_rows(aws, portal) -> None:
    view = run(aws, portal_source(portal), mode="backfill")
    assert view["status"] == "succeeded", view["detail"].get("error")
    from_the_file = file_recount()  # the portal's CSV export, counted row by row
    assert_same_counts(stored(aws), from_the_file)
    detail = view["detail"]
    assert detail["incidents"] == incidents() and detail["window"] == {"from": "2001-01", "to": "2022-12"}
    assert len(detail["chunks"]) == 22 and detail["chunks_done"] == detail["chunks"]  # a year per query
    assert pages(page_size()) > 1  # 2022 took several pages (7 of 2,000 groups on the whole extract)
    assert detail["pages"] >= 21 + pages(page_size()) and detail["rows"] == groups()
    assert detail["months_replaced"] == {"from": "2001-01", "to": "2022-12", "count": 264}
    assert detail["partial_month"] is None and detail["duration_s"] >= 0 and detail["retries"] == 0
    assert detail["protocol"] == portal.protocol  # SODA 3, or 2.1 where the portal has no SODA 3
    counts = load_counts(aws)
    assert (str(counts.first_month), str(counts.last_month), counts.partial_month) == ("2022-01", "2022-11", None)


def test_every_page_request_sets_order_limit_and_offset(aws, portal) -> None:
    """Paged by $limit/$offset in SODA 2.1, by page number and size in SODA 3 (the stand-in logs both as offsets)."""
    run(aws, portal_source(portal), mode="backfill", first_year=2022)
    size, n = page_size(), pages(page_size())
    asked = [r["params"] for r in portal.requests if "$offset" in r["params"]]
    assert {r["protocol"] for r in portal.requests if "$offset" in r["params"]} == {portal.protocol}
    assert n > 1 and len(asked) == n and all(p["$order"] == "month, community_area, primary_type" for p in asked)
    assert [int(p["$offset"]) for p in asked] == list(range(0, n * size, size)) and {p["$limit"] for p in asked} == {str(size)}
    assert all("count(*) AS n" in p["$select"] and p["$group"] for p in asked)


def test_a_record_shaped_like_the_api_s_own_counts_the_same(aws, source_dir) -> None:
    """The 1,000 rows exactly as the API returned them (strings, null keys left out)."""
    from crimecast.domain.series import counts_from_records

    with StandInPortal("api-sample", source_dir) as sample:
        view = run(aws, portal_source(sample, as_of=datetime(2022, 4, 10).date()), mode="backfill", first_year=2022)
    assert view["status"] == "succeeded", view["detail"].get("error")
    rows = json.loads((source_dir / "raw_api_sample.json").read_text())
    assert_same_counts(stored(aws), cells(counts_from_records(rows)))
    assert view["detail"]["incidents"] == 1000


def test_a_rerun_changes_nothing(aws, portal) -> None:
    first = run(aws, portal_source(portal), mode="backfill", first_year=2021)
    before, manifest = stored(aws), current_manifest(aws)
    second = run(aws, portal_source(portal))  # the daily incremental run
    assert second["status"] == "succeeded" and second["detail"]["mode"] == "incremental"
    assert second["detail"]["window"] == {"from": "2021-12", "to": "2022-12"}  # 13 months
    assert second["detail"]["changes"] == {"cells_changed": 0, "incidents_before": incidents(), "incidents_after": incidents()}
    assert_same_counts(stored(aws), before)
    after = current_manifest(aws)
    assert after["version"] != manifest["version"] and after["previous_version"] == manifest["version"]
    assert aws.blobs.get_bytes(after["counts_key"]) == aws.blobs.get_bytes(manifest["counts_key"])  # byte for byte
    assert first["detail"]["version"] == manifest["version"]


def test_a_revision_between_runs_is_applied_exactly_once(aws, portal) -> None:
    run(aws, portal_source(portal), mode="backfill", first_year=2022)
    frame = portal.state.frame
    march_theft = frame[(frame["date"].dt.month == 3) & (frame["primary_type"] == "THEFT") & (frame["community_area"] == "25")]
    change = portal.revise(record_id=march_theft["id"].iloc[0], primary_type="BATTERY", date="2022-05-02T10:00:00")
    view = run(aws, portal_source(portal))
    assert view["status"] == "succeeded"
    assert_same_counts(stored(aws), recount(portal))
    # -1 in March (THEFT, area 25: the type, the area's ALL, the city's THEFT and ALL), +1 in May (BATTERY likewise)
    assert view["detail"]["changes"] == {"cells_changed": 8, "incidents_before": incidents(), "incidents_after": incidents()}
    counts = load_counts(aws)
    from crimecast.domain.keys import SeriesKey

    assert change["before"]["primary_type"] == "THEFT"
    theft, battery = counts.series(SeriesKey(25, "THEFT")), counts.series(SeriesKey(25, "BATTERY"))
    original = file_recount()
    assert theft[pd.Period("2022-03")] == original[("2022-03", 25, "THEFT")] - 1
    assert battery[pd.Period("2022-05")] == original[("2022-05", 25, "BATTERY")] + 1
    again = run(aws, portal_source(portal))  # applied once: the next run finds nothing new
    assert again["detail"]["changes"]["cells_changed"] == 0
    assert_same_counts(stored(aws), recount(portal))


def test_the_current_month_is_stored_but_marked_partial(aws, portal) -> None:
    portal.state.set_now(datetime(2022, 11, 20))  # the portal withholds the 7 days before its clock
    view = run(aws, portal_source(portal, as_of=datetime(2022, 11, 20).date()), mode="backfill", first_year=2022)
    assert view["detail"]["partial_month"] == "2022-11"
    counts = load_counts(aws)
    assert str(counts.partial_month) == "2022-11" and str(counts.last_complete_month) == "2022-10"
    assert_same_counts(stored(aws), recount(portal))
    from crimecast.domain.keys import SeriesKey

    assert counts.series(SeriesKey(None, "ALL")).index[-1] == pd.Period("2022-10")  # not trained on
    portal.state.set_now(datetime(2022, 12, 10))  # three weeks on, November is whole
    view = run(aws, portal_source(portal))
    assert view["detail"]["partial_month"] is None and load_counts(aws).partial_month is None
    assert_same_counts(stored(aws), recount(portal))


def test_the_previous_month_stays_partial_during_the_portal_lag(aws, portal) -> None:
    portal.state.set_now(datetime(2022, 12, 3))  # December 3rd: November 26..30 still withheld
    view = run(aws, portal_source(portal, as_of=datetime(2022, 12, 3).date()), mode="backfill", first_year=2022)
    assert view["detail"]["partial_month"] == "2022-11"


# --- faults --------------------------------------------------------------------------------------

FAULTS = [
    ("429", {"times": 2, "retry_after": 1}),
    ("500", {"times": 3}),
    ("503", {"times": 1}),
    ("slow", {"times": 1, "delay": READ_TIMEOUT_S + 0.5}),  # past the client's read timeout
    ("truncate", {"times": 2}),  # Content-Length promises more than is sent
    ("garbage", {"times": 2}),  # a 200 whose body is not JSON
    ("reset", {"times": 2}),  # the connection closes without an answer
]


@pytest.mark.parametrize(("kind", "options"), FAULTS, ids=[f[0] for f in FAULTS])
def test_every_injected_fault_is_survived_with_identical_counts(aws, portal, kind: str, options: dict) -> None:
    sleeps = Sleeps()
    portal.add_fault(kind, match="date >= '2022", **options)  # the 2022 pages and their count
    view = run(aws, portal_source(portal, sleeps=sleeps), mode="backfill", first_year=2021)
    assert view["status"] == "succeeded", view["detail"].get("error")
    assert view["detail"]["retries"] == options["times"] == len(sleeps)
    assert_same_counts(stored(aws), file_recount())
    if kind == "429":
        assert all(wait >= 1.0 for wait in sleeps)  # Retry-After honoured


def test_a_portal_that_keeps_failing_fails_the_run_cleanly_and_keeps_the_old_data(aws, portal) -> None:
    run(aws, portal_source(portal), mode="backfill", first_year=2022)
    before, version = stored(aws), current_manifest(aws)["version"]
    portal.add_fault("500", times=-1, match="date >= '2022")
    view = run(aws, portal_source(portal))
    assert view["status"] == "failed" and view["finished_at"]
    assert "failed 4 times" in view["detail"]["error"] and "HTTP 500" in view["detail"]["error"]
    assert view["detail"]["error_code"] == "portal_unavailable"
    assert current_manifest(aws)["version"] == version
    assert_same_counts(stored(aws), before)
    portal.state.faults.clear()
    assert run(aws, portal_source(portal))["status"] == "succeeded"  # the lease was given back


def test_a_retry_after_beyond_the_limit_fails_without_waiting(aws, portal) -> None:
    sleeps = Sleeps()
    portal.add_fault("429", times=-1, retry_after=3600)
    view = run(aws, portal_source(portal, sleeps=sleeps), mode="backfill", first_year=2022)
    assert view["status"] == "failed" and "asked to wait 3600 s" in view["detail"]["error"] and sleeps == []
    assert view["detail"]["error_code"] == "portal_unavailable"


def test_pages_that_do_not_add_up_are_read_again(aws, portal, monkeypatch) -> None:
    real = SocrataClient.incident_total
    calls: list[int] = []

    def drifting(self, start, end):  # the data changed while the pages were read, once
        calls.append(1)
        return real(self, start, end) + (1 if len(calls) == 1 else 0)

    monkeypatch.setattr(SocrataClient, "incident_total", drifting)
    messages: list[str] = []
    view = run(aws, portal_source(portal), mode="backfill", first_year=2022, progress=messages.append)
    assert view["status"] == "succeeded" and view["detail"]["pages"] == 2 * pages(page_size())  # 2022 read twice
    assert any("changed while paging" in m for m in messages)
    monkeypatch.setattr(SocrataClient, "incident_total", lambda self, start, end: -1)
    view = run(aws, portal_source(portal), mode="backfill", first_year=2022)
    assert view["status"] == "failed" and "never added up" in view["detail"]["error"]
    assert view["detail"]["error_code"] == "portal_bad_data"


def test_an_empty_window_does_not_erase_stored_months(aws, portal) -> None:
    run(aws, portal_source(portal), mode="backfill", first_year=2022)
    before = stored(aws)
    portal.state.set_now(datetime(2021, 6, 1))  # the portal suddenly shows nothing for 2022
    view = run(aws, portal_source(portal))
    assert view["status"] == "failed" and "refusing to erase" in view["detail"]["error"]
    assert view["detail"]["error_code"] == "invalid_input"
    assert_same_counts(stored(aws), before)


# --- resuming -------------------------------------------------------------------------------------


def test_a_failed_backfill_resumes_from_its_checkpoint(aws, portal) -> None:
    portal.add_fault("500", times=-1, match="date >= '2022")
    view = run(aws, portal_source(portal), mode="backfill", first_year=2019)
    assert view["status"] == "failed"
    assert view["detail"]["chunks_done"] == ["2019-01..2019-12", "2020-01..2020-12", "2021-01..2021-12"]
    assert len(aws.blobs.list_keys(f"counts/staging/{view['run_id']}/")) == 3
    with pytest.raises(InvalidInputError, match="run an ingest first"):
        load_counts(aws)  # nothing was published
    portal.state.faults.clear()
    seen = len(portal.requests)
    resumed = pipeline.ingest_now(aws, "test", portal_source(portal), resume_run=view["run_id"])
    assert resumed["status"] == "succeeded" and resumed["detail"]["legs"] == 2 and resumed["detail"]["error"] is None
    assert resumed["detail"]["error_code"] is None and "error_detail" not in runs.get_run(aws, view["run_id"], admin=True)
    asked = [r["params"].get("$where", "") for r in portal.requests[seen:]]
    assert asked and not any("2019" in w or "2020" in w or "'2021-01" in w for w in asked)  # only 2022 again
    assert_same_counts(stored(aws), file_recount())
    assert aws.blobs.list_keys(f"counts/staging/{view['run_id']}/") == []


class Crash(BaseException):
    """The process dies: nothing is recorded, the lease stays taken."""


def crash_at(step: str):
    def progress(message: str) -> None:
        if message.startswith(step):
            raise Crash

    return progress


def test_a_crashed_backfill_holds_the_lease_and_resumes(aws, portal) -> None:
    with pytest.raises(Crash):
        run(aws, portal_source(portal), mode="backfill", first_year=2020, progress=crash_at("[2/"))
    (crashed,) = runs.recent_runs(aws, "ingest")
    assert crashed["status"] == "running" and len(crashed["detail"]["chunks_done"]) == 2
    with pytest.raises(ConflictError, match=crashed["run_id"]):
        ingest.open_run(aws, "test")  # it may still be alive: its lease has not lapsed
    resumed = pipeline.ingest_now(aws, "test", portal_source(portal), resume_run=crashed["run_id"])
    assert resumed["status"] == "succeeded"
    assert_same_counts(stored(aws), file_recount())


def test_a_lapsed_lease_is_taken_over_and_its_run_marked_abandoned(aws, portal) -> None:
    with pytest.raises(Crash):
        run(aws, portal_source(portal), mode="backfill", first_year=2022, progress=crash_at("[1/"))
    (crashed,) = runs.recent_runs(aws, "ingest")
    aws_table(aws.runs.table_name).update_item(Key={"run_id": ingest.LEASE_NAME}, UpdateExpression="SET lease_until = :t",
                                          ExpressionAttributeValues={":t": 0})
    fresh = ingest.open_run(aws, "test")
    assert runs.get_run(aws, crashed["run_id"])["status"] == "failed"
    assert "abandoned" in runs.get_run(aws, crashed["run_id"])["detail"]["error"]
    assert runs.get_run(aws, crashed["run_id"])["detail"]["error_code"] == "abandoned"
    assert ingest.execute(aws, fresh["run_id"], portal_source(portal))["status"] == "succeeded"


def test_a_worker_out_of_time_hands_over_and_the_next_one_finishes(aws, portal) -> None:
    left = iter([900.0, 900.0, 30.0])
    start = ingest.open_run(aws, "test", mode="backfill", first_year=2019, as_of=AS_OF)
    paused = ingest.execute(aws, start["run_id"], portal_source(portal), deadline=lambda: next(left))
    assert paused["status"] == "running" and len(paused["detail"]["chunks_done"]) == 2
    done = ingest.execute(aws, start["run_id"], portal_source(portal))
    assert done["status"] == "succeeded" and done["detail"]["legs"] == 2
    assert_same_counts(stored(aws), file_recount())


# --- one run at a time ---------------------------------------------------------------------------


def test_a_second_run_is_refused_while_one_is_in_progress(aws, portal) -> None:
    first = ingest.open_run(aws, "test", as_of=AS_OF)
    with pytest.raises(ConflictError, match=first["run_id"]):
        ingest.open_run(aws, "test")
    assert ingest.execute(aws, first["run_id"], portal_source(portal))["status"] == "succeeded"
    assert ingest.open_run(aws, "test")["status"] == "queued"


def test_a_finished_run_never_runs_twice(aws, portal) -> None:
    view = run(aws, portal_source(portal), mode="backfill", first_year=2022)
    seen = len(portal.requests)
    assert ingest.execute(aws, view["run_id"], portal_source(portal)) == runs.get_run(aws, view["run_id"])
    assert len(portal.requests) == seen


@pytest.mark.parametrize(("mode", "window"), [("sideways", 13), ("incremental", 1), ("incremental", 999)])
def test_options_are_checked(aws, mode: str, window: int) -> None:
    with pytest.raises(InvalidInputError):
        ingest.open_run(aws, "test", mode=mode, window_months=window)


# --- stores -------------------------------------------------------------------------------------


def test_versions_are_kept_apart_and_old_ones_dropped(aws, portal, monkeypatch) -> None:
    monkeypatch.setattr("crimecast.jobs.counts.KEEP_VERSIONS", 2)
    for _ in range(2 + 2):
        assert run(aws, portal_source(portal), mode="backfill", first_year=2022)["status"] == "succeeded"
    versions = {k.split("/")[2] for k in aws.blobs.list_keys(VERSIONS_PREFIX)}
    assert len(versions) == 2 and current_manifest(aws)["version"] in versions
    manifest = current_manifest(aws)
    assert manifest == aws.blobs.get_json(f"{VERSIONS_PREFIX}{manifest['version']}/manifest.json")
    header = gzip.decompress(aws.blobs.get_bytes(manifest["counts_key"])).split(b"\n", 1)[0]
    assert header == b"month,community_area,primary_type,count"
    assert manifest["rows"] == sum(p["rows"] for p in manifest["parts"].values())


def test_store_and_load_counts_round_trip_with_the_partial_month(aws) -> None:
    from crimecast.domain.series import counts_from_tidy
    from tests.conftest import seasonal_series, tidy_frame

    frame = pd.concat([tidy_frame(seasonal_series("2019-01", 30), 25, "ASSAULT"), tidy_frame(seasonal_series("2019-01", 30), 8, "THEFT")])
    frame["partial_month"] = frame["month"] == "2021-06"
    counts = counts_from_tidy(frame)
    store_counts(aws, counts)
    loaded = load_counts(aws)
    assert str(loaded.partial_month) == "2021-06" and str(loaded.last_complete_month) == "2021-05"
    assert_same_counts(cells(loaded), cells(counts))
    assert aws.blobs.list_keys(STAGING_PREFIX) == []


def test_a_file_import_goes_through_the_same_path(aws, portal, tmp_path) -> None:
    file_run = pipeline.ingest_now(aws, "test", ingest.FileSource(csv_path()), mode="backfill")
    assert file_run["status"] == "succeeded" and file_run["detail"]["source"] == "file:crimes_2022_jan_nov_slim.csv.gz"
    from_file = stored(aws)
    assert run(aws, portal_source(portal), mode="backfill", first_year=2022)["status"] == "succeeded"
    assert_same_counts(stored(aws), from_file)
    # a file covering March only replaces March, as a whole
    march = from_file.reset_index()
    march = march[march["month"] == "2022-03"].assign(count=lambda f: f["count"] * 2)
    march.to_csv(tmp_path / "march.csv", index=False)
    view = pipeline.ingest_now(aws, "test", ingest.FileSource(tmp_path / "march.csv"))
    assert view["status"] == "succeeded" and view["detail"]["window"] == {"from": "2022-03", "to": "2022-03"}
    after = stored(aws)
    in_march = after.index.get_level_values("month") == "2022-03"
    assert_same_counts(after[~in_march], from_file[from_file.index.get_level_values("month") != "2022-03"])
    assert_same_counts(after[in_march], from_file[from_file.index.get_level_values("month") == "2022-03"] * 2)


# --- boundaries ----------------------------------------------------------------------------------


def test_boundaries_are_fetched_once_and_normalised(aws, portal) -> None:
    view = run(aws, portal_source(portal), mode="backfill", first_year=2022)
    assert view["detail"]["boundaries"] == "stored (77 areas)"
    stored_doc = json.loads(forecasts.boundaries(aws))
    assert [f["properties"]["area_number"] for f in stored_doc["features"]] == list(range(1, 78))
    assert stored_doc["features"][75]["properties"]["name"] == "O'Hare"
    view = run(aws, portal_source(portal))
    assert view["detail"]["boundaries"] == "kept (already stored)"
    assert not [r for r in portal.requests[-3:] if "igwz" in r["path"]]


def test_the_portal_s_own_boundary_properties_are_understood() -> None:
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"community": name.upper(), "area_numbe": str(n), "area_num_1": str(n)},
         "geometry": {"type": "Point", "coordinates": [0, 0]}} for n, name in enumerate(["x"] * 77, start=1)]}
    normalised = ingest.normalise_boundaries(document)
    assert normalised["features"][0]["properties"] == {"area_number": 1, "name": "Rogers Park"}
    document["features"].pop()
    with pytest.raises(InvalidInputError, match="76 features"):
        ingest.normalise_boundaries(document)


def test_a_boundaries_failure_does_not_hold_back_the_counts(aws, portal) -> None:
    portal.add_fault("500", times=-1, match="$limit=1000")  # only the boundaries request asks for 1000
    view = run(aws, portal_source(portal), mode="backfill", first_year=2022)
    assert view["status"] == "succeeded" and view["detail"]["boundaries"].startswith("not stored: the portal at")
    portal.state.faults.clear()
    assert run(aws, portal_source(portal))["detail"]["boundaries"] == "stored (77 areas)"  # missing: fetched again


def test_a_run_that_died_after_publishing_is_finished_by_its_retry_without_publishing_again(aws, portal,
                                                                                            monkeypatch) -> None:
    """Lambda's retry of a worker killed between the publish and the run's last record (its
    staged chunks already deleted) finishes the run on the version it published: one version."""
    drop = counts.drop_old_versions

    def die(stores: object, *args: object) -> int:
        raise Crash

    monkeypatch.setattr(counts, "drop_old_versions", die)
    with pytest.raises(Crash):
        run(aws, portal_source(portal), mode="backfill", first_year=2022)
    (crashed,) = runs.recent_runs(aws, "ingest")
    assert crashed["status"] == "running" and aws.blobs.list_keys(f"counts/staging/{crashed['run_id']}/") == []
    monkeypatch.setattr(counts, "drop_old_versions", drop)
    retried = pipeline.ingest_worker(aws, crashed["run_id"], source=portal_source(portal))
    assert retried["status"] == "succeeded", retried
    versions = {key.split("/")[2] for key in aws.blobs.list_keys(VERSIONS_PREFIX)}
    assert versions == {retried["detail"]["version"]} == {current_manifest(aws)["version"]}
    assert_same_counts(stored(aws), file_recount())
