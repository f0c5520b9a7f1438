"""The portal stand-in's replay mode, over the fixture cut of area_type_monthly_2001_2018.csv.gz:
the months up to its "today" only, the file's counts as the ingest reads them, "today" moved on
over HTTP and from the command line."""

from __future__ import annotations

from collections.abc import Iterator
import json

import pandas as pd
import pytest

from crimecast.adapters.socrata import CRIMES_DATASET, SocrataClient
from crimecast.domain.keys import SeriesKey
from crimecast.jobs.counts import load_counts
from crimecast.tools.data import AREA_TYPE_FILE
from local.portal import cli, rows
from local.portal.server import StandInPortal, advance
from tests.conftest import FIXTURES
from tests.ingest.conftest import assert_same_counts, portal_source, recount, run, stored

TODAY = "2018-08"


@pytest.fixture
def replaying() -> Iterator[StandInPortal]:
    with StandInPortal("replay", FIXTURES, replay_from=TODAY) as portal:
        yield portal


def _file() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / AREA_TYPE_FILE, dtype={"month": str})


def test_the_ingest_stores_the_file_s_counts_up_to_today(aws, replaying) -> None:
    view = run(aws, portal_source(replaying), mode="backfill", first_year=2010)
    assert view["status"] == "succeeded" and view["detail"]["stored"]["last_month"] == TODAY
    assert_same_counts(stored(aws), recount(replaying))  # one row per incident, counted by the domain
    raw = _file()
    raw = raw[raw["month"] <= TODAY]
    counts = load_counts(aws)
    # a cell listed twice (area_source portal and derived) counts once, summed
    both = raw[raw["community_area"] > 0].groupby(["month", "community_area", "primary_type"])["count"].agg(["size", "sum"])
    (month, area, crime), row = next((k, r) for k, r in both.iterrows() if r["size"] == 2)
    assert counts.series(SeriesKey(int(area), crime))[pd.Period(month, freq="M")] == row["sum"]
    # area 0, the unplaced reports: in the city's totals only
    assert {k.community_area for k in counts.keys()} == {None, 8, 25, 32}
    city = counts.series(SeriesKey(None, "ALL"))
    assert int(city.sum()) == int(raw["count"].sum())


def test_only_months_up_to_today_are_served_and_advance_publishes_the_next(replaying) -> None:
    client = SocrataClient(replaying.url)
    monthly = {"$select": "date_trunc_ym(date) AS month, count(*) AS n", "$group": "month", "$order": "month DESC", "$limit": 1}
    assert client.get_json(f"/resource/{CRIMES_DATASET}.json", monthly)[0]["month"].startswith(TODAY)
    assert advance(replaying.url) == {"today": "2018-09", "last_month": "2018-10", "months_left": 1}
    assert client.get_json(f"/resource/{CRIMES_DATASET}.json", monthly)[0]["month"].startswith("2018-09")
    raw = _file()
    expected = int(raw.loc[raw["month"] == "2018-09", "count"].sum())
    where = "date >= '2018-09-01T00:00:00.000' AND date < '2018-10-01T00:00:00.000'"
    assert client.incident_total(pd.Timestamp("2018-09-01"), pd.Timestamp("2018-10-01")) == expected
    # a plain row query gives that many incidents, ids unique and in order across pages
    rows = [row for offset in range(0, expected, 700) for row in client.get_json(
        f"/resource/{CRIMES_DATASET}.json", {"$where": where, "$order": ":id", "$limit": 700, "$offset": offset})]
    ids = [int(r["id"]) for r in rows]
    assert len(rows) == expected and ids == sorted(set(ids))
    unplaced = raw[(raw["month"] == "2018-09") & (raw["community_area"] == 0)]["count"].sum()
    assert sum("community_area" not in r for r in rows) == unplaced


def test_advancing_past_the_data_is_refused(replaying) -> None:
    replaying.advance(2)
    with pytest.raises(ValueError, match="the data ends in 2018-10"):
        advance(replaying.url)


def test_the_command_line_advances_a_replaying_portal(replaying, capsys) -> None:
    assert cli.main(["advance", "--url", replaying.url]) == 0
    assert json.loads(capsys.readouterr().out)["today"] == "2018-09"
    with StandInPortal("csv", FIXTURES) as not_replaying:
        assert cli.main(["advance", "--url", not_replaying.url]) == 2
    assert "not replaying" in capsys.readouterr().err


def test_a_cut_to_areas_and_types_leaves_the_unplaced_out_unless_listed() -> None:
    frame = rows.load_area_type(FIXTURES / AREA_TYPE_FILE, areas=[25], types=["THEFT"])
    assert set(frame["community_area"]) == {"25"} and set(frame["primary_type"]) == {"THEFT"}
    with_unplaced = rows.load_area_type(FIXTURES / AREA_TYPE_FILE, areas=[0, 25])
    assert with_unplaced["community_area"].isna().any()
    with pytest.raises(ValueError, match="outside the data"):
        StandInPortal("replay", FIXTURES, replay_from="2019-01")


TOTALS_FILES = ("area_monthly_all_types_2001_2026.csv", "citywide_monthly_by_type_2001_2026.csv")


def _totals_with_new_type_names(folder) -> list:
    """The fixture's area totals and citywide types, the types renamed to names no code knows."""
    from pathlib import Path

    areas, city = (FIXTURES / name for name in TOTALS_FILES)
    renamed = pd.read_csv(city, dtype=str, keep_default_na=False)
    renamed["primary_type"] = renamed["primary_type"].replace({"ASSAULT": "Moonlight Mischief", "THEFT": "TIME-TRAVEL FRAUD"})
    target = Path(folder) / "city_types_renamed.csv"
    renamed.to_csv(target, index=False)
    return [areas, target]


def test_files_of_totals_travel_through_the_portal_and_the_ingest_exactly(aws, tmp_path) -> None:
    """Area totals and citywide types (any type names) have no incidents: the stand-in serves a
    made-up cross-tabulation whose margins are theirs, and the real ingest then stores every
    series the files give exactly as they give it; those series are the ones it names."""
    from crimecast.domain.series import read_many

    files = _totals_with_new_type_names(tmp_path)
    with StandInPortal("replay", FIXTURES, replay_from="2021-12", replay_files=files) as replaying:
        assert replaying.given_series == ["25:ALL", "32:ALL", "8:ALL", "city:ALL", "city:MOONLIGHT MISCHIEF",
                                          "city:TIME-TRAVEL FRAUD"]
        view = run(aws, portal_source(replaying), mode="backfill", first_year=2017)
    assert view["status"] == "succeeded" and view["detail"]["stored"]["last_month"] == "2021-12"
    counts, given = load_counts(aws), read_many(files)
    for label in replaying.given_series:
        key = SeriesKey.parse(label)
        expected = given.series(key).loc[:"2021-12"]
        assert counts.series(key).loc[expected.index[0]:].equals(expected), label
    made_up = rows.OTHER_TYPES
    assert SeriesKey(None, made_up) in set(counts.keys())  # the city's other types: stored, never forecast


def test_integer_table_has_exactly_the_margins() -> None:
    table = rows.integer_table(pd.Series([7, 0, 13, 1]).to_numpy(), pd.Series([10, 6, 5]).to_numpy())
    assert table.min() >= 0 and table.sum(axis=1).tolist() == [7, 0, 13, 1] and table.sum(axis=0).tolist() == [10, 6, 5]
    with pytest.raises(ValueError, match="different totals"):
        rows.integer_table(pd.Series([1]).to_numpy(), pd.Series([2]).to_numpy())


def test_cells_and_totals_together_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="both area x type cells and totals"):
        rows.load_replay_files([FIXTURES / AREA_TYPE_FILE, FIXTURES / TOTALS_FILES[0]])
