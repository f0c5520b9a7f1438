"""``make demo``'s data: ingested from a portal when one is configured and answers,
else the snapshot, said in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from crimecast.jobs.counts import current_manifest, load_counts
from local import stack
from local.aws.embedded import free_port
from local.stack import SNAPSHOT_FILES
from tests.conftest import seasonal_series, tidy_frame
from tests.ingest.conftest import assert_same_counts, recount, stored


@pytest.fixture
def snapshot(tmp_path):
    areas, types = (tmp_path / name for name in SNAPSHOT_FILES)
    tidy_frame(seasonal_series("2019-01", 36, level=120), 25, "ALL").to_csv(areas, index=False)
    tidy_frame(seasonal_series("2019-01", 36, level=900), None, "ALL").to_csv(types, index=False)
    return tmp_path


def test_the_stack_ingests_from_the_configured_portal(aws, portal, snapshot, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", portal.url)
    stack.load_data(snapshot)
    assert f"data: ingesting from the portal at {portal.url}" in capsys.readouterr().err
    assert_same_counts(stored(aws), recount(portal))
    assert current_manifest(aws)["mode"] == "backfill"


def test_the_stack_falls_back_to_the_snapshot_and_says_why(aws, snapshot, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", f"http://127.0.0.1:{free_port()}")
    stack.load_data(snapshot)
    lines = [line for line in capsys.readouterr().err.splitlines() if "data:" in line]
    assert len(lines) == 1 and "loading the snapshot" in lines[0] and "did not answer within 3 s" in lines[0]
    counts = load_counts(aws)
    assert str(counts.first_month) == "2019-01" and current_manifest(aws)["source"] == "store_counts"


def test_a_snapshot_with_area_x_type_history_keeps_each_series_end(aws, snapshot, monkeypatch) -> None:
    """The area x type file ends sooner than the totals: stored and read back, its series still end there."""
    from crimecast.domain.keys import SeriesKey

    tidy_frame(seasonal_series("2019-01", 24, level=30), 25, "ASSAULT").to_csv(snapshot / stack.AREA_TYPE_FILE, index=False)
    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", f"http://127.0.0.1:{free_port()}")
    stack.load_data(snapshot)
    counts = load_counts(aws)
    assert str(counts.data_end(SeriesKey(25, "ASSAULT"))) == "2020-12"
    assert str(counts.data_end(SeriesKey(25, "ALL"))) == "2021-12"
    assert current_manifest(aws)["series_ends"] == {"25:ASSAULT": "2020-12"}
    assert counts.series(SeriesKey(25, "ASSAULT")).index[0] == counts.series(SeriesKey(25, "ALL")).index[0]


def test_the_fixture_snapshot_loads_with_the_77_boundaries(aws, monkeypatch, capsys) -> None:
    """tests/fixtures is a snapshot `make demo` can start from: totals for eight years, area x type
    to 2018-10 and in 2024 with the real files' gap between (unknown months, not zeros), the map's 77 areas."""
    import json

    from crimecast.domain.keys import SeriesKey
    from crimecast.jobs import forecasts
    from tests.conftest import FIXTURES

    monkeypatch.setenv("CRIMECAST_SOCRATA_URL", f"http://127.0.0.1:{free_port()}")
    stack.load_data(FIXTURES)
    counts = load_counts(aws)
    assert (str(counts.first_month), str(counts.last_month)) == ("2010-01", "2024-12")
    assert {k.community_area for k in counts.keys()} == {None, 8, 25, 32}
    assert len(counts.series(SeriesKey(25, "ALL"))) == 96 and counts.series(SeriesKey(None, "THEFT")).min() > 0
    assault = counts.series(SeriesKey(25, "ASSAULT"))
    assert (str(assault.index[0]), str(assault.index[-1])) == ("2010-01", "2024-12") and assault.min() > 0
    assert assault.loc["2018-11":"2023-12"].isna().all() and assault.count() == 106 + 12
    assert counts.data_end(SeriesKey(25, "ASSAULT")) == pd.Period("2024-12", "M")
    assert current_manifest(aws)["series_gaps"]["25:ASSAULT"] == [["2018-11", "2023-12"]]
    document = json.loads(forecasts.boundaries(aws))
    assert [f["properties"]["area_number"] for f in document["features"]] == list(range(1, 78))
