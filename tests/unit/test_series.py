from datetime import date

import pandas as pd
import pytest

from crimecast.domain.errors import InvalidInputError
from crimecast.domain.keys import SeriesKey
from crimecast.domain.series import (
    AREA_COUNTS_COMPLETE_FROM,
    counts_from_frame,
    counts_from_incidents,
    counts_from_records,
    counts_from_tidy,
    read_counts,
    read_many,
)

PAST = date(2030, 1, 1)  # 'today' for tests: every month in them is over


def _tidy(rows: list[tuple[str, str, str, int]], **extra: list) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["month", "community_area", "primary_type", "count"])
    return frame.assign(**extra)


def test_missing_months_are_zeros() -> None:
    counts = counts_from_tidy(_tidy([("2020-01", "25", "THEFT", 5), ("2020-04", "25", "THEFT", 7)]), PAST)
    series = counts.series(SeriesKey(25, "THEFT"))
    assert series.index.astype(str).tolist() == ["2020-01", "2020-02", "2020-03", "2020-04"]
    assert series.tolist() == [5, 0, 0, 7]


def test_renamed_types_are_merged_into_one_series() -> None:
    counts = counts_from_tidy(
        _tidy([
            ("2020-01", "", "CRIM SEXUAL ASSAULT", 3),
            ("2020-01", "", "CRIMINAL SEXUAL ASSAULT", 4),
            ("2020-02", "", "crim sexual assault ", 1),
        ]),
        PAST,
    )
    assert counts.series(SeriesKey(None, "CRIMINAL SEXUAL ASSAULT")).tolist() == [7, 1]
    assert "CRIM SEXUAL ASSAULT" not in counts.types()


def test_flagged_partial_month_is_left_out_but_can_be_shown() -> None:
    frame = _tidy([("2023-10", "25", "ASSAULT", 106), ("2023-11", "25", "ASSAULT", 96), ("2023-12", "25", "ASSAULT", 31)],
                  partial_month=[False, False, True])
    counts = counts_from_tidy(frame, PAST)
    assert counts.partial_month == pd.Period("2023-12", "M")
    assert counts.series(SeriesKey(25, "ASSAULT")).tolist() == [106, 96]
    assert counts.series(SeriesKey(25, "ASSAULT"), include_partial=True).tolist() == [106, 96, 31]


def test_a_month_not_over_yet_is_partial() -> None:
    counts = counts_from_tidy(_tidy([("2020-01", "", "THEFT", 500), ("2020-02", "", "THEFT", 480)]), as_of=date(2020, 2, 15))
    assert counts.partial_month == pd.Period("2020-02", "M")


def test_a_collapsed_last_month_is_partial() -> None:
    rows = [(f"2021-{m:02d}", "", "THEFT", 900) for m in range(1, 12)] + [("2021-12", "", "THEFT", 200)]
    assert counts_from_tidy(_tidy(rows), PAST).partial_month == pd.Period("2021-12", "M")
    rows[-1] = ("2021-12", "", "THEFT", 800)
    assert counts_from_tidy(_tidy(rows), PAST).partial_month is None


INCIDENTS = pd.DataFrame({
    "Date": [
        "01/03/2021 10:00:00 PM", "01/20/2021 01:00:00 AM", "01/31/2021 11:00:00 AM", "02/02/2021 09:00:00 AM", "02/10/2021 09:00:00 AM",
    ],
    "Primary Type": ["THEFT", "BATTERY", "THEFT", "THEFT", "CRIM SEXUAL ASSAULT"],
    "Community Area": ["25", "25", "", "8", "25.0"],
})


def test_raw_rows_give_the_four_levels() -> None:
    counts = counts_from_frame(INCIDENTS, PAST)
    assert counts.series(SeriesKey(25, "THEFT"), include_partial=True).tolist() == [1, 0]
    assert counts.series(SeriesKey(25, "ALL"), include_partial=True).tolist() == [2, 1]
    # city levels count the report without an area too
    assert counts.series(SeriesKey(None, "THEFT"), include_partial=True).tolist() == [2, 1]
    assert counts.series(SeriesKey(None, "ALL"), include_partial=True).tolist() == [3, 2]
    assert counts.series(SeriesKey(25, "CRIMINAL SEXUAL ASSAULT"), include_partial=True).tolist() == [0, 1]


def test_raw_rows_ending_mid_month_make_that_month_partial() -> None:
    counts = counts_from_frame(INCIDENTS, PAST)
    assert counts.partial_month == pd.Period("2021-02", "M")
    assert counts.series(SeriesKey(None, "ALL")).tolist() == [3]
    socrata = INCIDENTS.rename(columns={"Date": "date", "Primary Type": "primary_type", "Community Area": "community_area"})
    whole = counts_from_incidents(socrata.iloc[:3], PAST)
    assert whole.partial_month is None  # the last report is on January 31st


def test_socrata_json_rows_are_read() -> None:
    rows = [
        {"date": "2022-03-26T01:02:00.000", "primary_type": "THEFT", "community_area": "33"},
        {"date": "2022-03-27T23:55:00.000", "primary_type": "BATTERY"},  # keys with null values are omitted
    ]
    counts = counts_from_records(rows, PAST)
    assert counts.series(SeriesKey(33, "THEFT"), include_partial=True).tolist() == [1]
    assert counts.series(SeriesKey(None, "ALL"), include_partial=True).tolist() == [2]


def test_tidy_levels_are_summed_only_when_the_file_covers_them() -> None:
    rows = [("2020-01", "1", "THEFT", 2), ("2020-01", "1", "BATTERY", 3), ("2020-01", "2", "THEFT", 4)]
    counts = counts_from_tidy(_tidy(rows), PAST)
    assert counts.series(SeriesKey(1, "ALL")).tolist() == [5]
    assert counts.series(SeriesKey(None, "THEFT")).tolist() == [6]
    assert counts.series(SeriesKey(None, "ALL")).tolist() == [9]
    single = counts_from_tidy(_tidy(rows[:1]), PAST)
    assert single.keys() == [SeriesKey(1, "THEFT")]


def test_a_series_given_outright_beats_one_summed_from_another_file(tmp_path) -> None:
    areas = tmp_path / "areas.csv"
    _tidy([("2020-01", "1", "ALL", 10), ("2020-01", "2", "ALL", 20)]).to_csv(areas, index=False)
    city = tmp_path / "city.csv"
    _tidy([("2020-01", "", "ALL", 35), ("2020-01", "", "THEFT", 12), ("2020-01", "", "BATTERY", 23)]).to_csv(city, index=False)
    counts = read_many([areas, city], PAST)
    assert counts.series(SeriesKey(None, "ALL")).tolist() == [35]  # not 30, the sum of two areas


def _monthly(first: str, last: str, area: str, crime_type: str, count: int) -> list[tuple[str, str, str, int]]:
    return [(str(m), area, crime_type, count) for m in pd.period_range(first, last, freq="M")]


def test_each_series_ends_where_its_file_ends(tmp_path) -> None:
    """Totals to 2026 beside an area x type history to 2018: the finer series stop in 2018,
    their later months unknown rather than zero, and a partial month is only the totals'."""
    totals = tmp_path / "totals.csv"
    _tidy(_monthly("2017-01", "2026-05", "25", "ALL", 900) + _monthly("2017-01", "2026-05", "", "ALL", 9000),
          partial_month=([False] * 112 + [True]) * 2).to_csv(totals, index=False)
    finer = tmp_path / "area_type.csv"
    _tidy(_monthly("2017-01", "2018-10", "25", "ASSAULT", 100) + _monthly("2017-01", "2018-09", "25", "THEFT", 50)
          ).to_csv(finer, index=False)
    counts = read_many([totals, finer], PAST)
    assault, theft, area = SeriesKey(25, "ASSAULT"), SeriesKey(25, "THEFT"), SeriesKey(25, "ALL")
    assert counts.data_end(assault) == counts.data_end(theft) == pd.Period("2018-10", "M")  # theft's October: zero
    assert counts.series(theft).iloc[-1] == 0 and counts.series(assault, include_partial=True).index[-1] == pd.Period("2018-10", "M")
    assert counts.data_end(area) == pd.Period("2026-04", "M")
    assert counts.series(area, include_partial=True).index[-1] == pd.Period("2026-05", "M")
    assert counts.spans_by_label() == {"series_starts": {}, "series_ends": {"25:ASSAULT": "2018-10", "25:THEFT": "2018-10"},
                                       "series_gaps": {}}
    assert counts.with_spans({}, {}).data_end(assault) == pd.Period("2026-04", "M")


def test_a_series_two_files_give_is_taken_whole_from_the_first(tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _tidy(_monthly("2020-01", "2020-06", "25", "ALL", 10)).to_csv(first, index=False)
    _tidy(_monthly("2019-01", "2020-12", "25", "ALL", 99)).to_csv(second, index=False)
    counts = read_many([first, second], PAST)
    assert counts.series(SeriesKey(25, "ALL")).tolist() == [10] * 6  # no month of the second file, before or after


def test_area_series_start_when_area_data_is_whole() -> None:
    rows = [("2001-06", "25", "ALL", 1), ("2002-04", "25", "ALL", 50), ("2002-05", "25", "ALL", 180), ("2002-05", "", "ALL", 9000)]
    counts = counts_from_tidy(_tidy(rows), PAST)
    assert counts.series(SeriesKey(25, "ALL")).index[0] == AREA_COUNTS_COMPLETE_FROM
    assert counts.series(SeriesKey(25, "ALL"), all_history=True).index[0] == pd.Period("2001-06", "M")


def test_series_key_parsing() -> None:
    assert SeriesKey.parse("Austin:assault") == SeriesKey(25, "ASSAULT")
    assert SeriesKey.parse("city:ALL") == SeriesKey(None, "ALL")
    assert SeriesKey.parse("lakeview:THEFT").label == "6:THEFT"
    with pytest.raises(InvalidInputError):
        SeriesKey.parse("Austin")
    with pytest.raises(InvalidInputError, match="Gotham"):
        SeriesKey.parse("Gotham:THEFT")


def test_unknown_series_suggests_what_exists() -> None:
    counts = counts_from_tidy(_tidy([("2020-01", "25", "THEFT", 5)]), PAST)
    with pytest.raises(InvalidInputError, match="THEFT"):
        counts.series(SeriesKey(25, "THEFTS"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b\n1,2\n", "unknown columns"),
        ("month,community_area,primary_type,count\n2020-13,1,THEFT,3\n", "YYYY-MM"),
        ("month,community_area,primary_type,count\n2020-01,99,THEFT,3\n", "99"),
        ("month,community_area,primary_type,count\n2020-01,1,THEFT,-3\n", "non-negative"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        read_counts(path, PAST)


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="nope.csv"):
        read_counts(tmp_path / "nope.csv")


def test_an_unreadable_incident_date_fails_the_load() -> None:
    broken = INCIDENTS.assign(Date=["01/03/2021 10:00:00 PM", "yesterday", "01/31/2021", "02/02/2021", "02/10/2021"])
    with pytest.raises(InvalidInputError, match="'yesterday'"):
        counts_from_frame(broken, PAST)


def test_area_zero_counts_citywide_only() -> None:
    counts = counts_from_frame(INCIDENTS.assign(**{"Community Area": ["0", "25", "25", "8", "25"]}), PAST)
    assert counts.series(SeriesKey(None, "ALL"), include_partial=True).tolist() == [3, 2]
    assert SeriesKey(0, "ALL") not in counts.keys()


def test_area_zero_in_an_area_x_type_file_counts_in_the_city_totals_only() -> None:
    """The area x type history lists reports with no area under area 0: the city's totals are
    every cell plus those, not the area-0 rows alone (a blank area would be a city total)."""
    counts = counts_from_tidy(_tidy([("2016-01", "25", "THEFT", 10), ("2016-01", "8", "THEFT", 20),
                                     ("2016-01", "0", "THEFT", 3), ("2016-01", "25", "BATTERY", 5)]), PAST)
    assert counts.series(SeriesKey(None, "THEFT")).tolist() == [33]
    assert counts.series(SeriesKey(None, "ALL")).tolist() == [38]
    assert counts.series(SeriesKey(25, "ALL")).tolist() == [15]
    derived = counts.frame.set_index(["community_area", "primary_type"])["derived"]
    assert not derived.loc[(25, "THEFT")] and derived.loc[(25, "ALL")] and derived.loc[(pd.NA, "THEFT")].all()


def _gap_files(tmp_path, old_type: str = "ASSAULT", new_type: str = "ASSAULT") -> list:
    """Totals to 2026, an area x type history 2015-01..2018-10 (one month with no report) and a 2024 export."""
    totals, history, recent = tmp_path / "totals.csv", tmp_path / "history.csv", tmp_path / "recent.csv"
    _tidy(_monthly("2015-01", "2026-04", "25", "ALL", 900) + _monthly("2015-01", "2026-04", "", "ALL", 9000)).to_csv(totals, index=False)
    rows = [r for r in _monthly("2015-01", "2018-10", "25", old_type, 100) if r[0] != "2017-03"]
    _tidy(rows + _monthly("2015-01", "2018-10", "8", "THEFT", 40)).to_csv(history, index=False)
    _tidy(_monthly("2024-01", "2024-12", "25", new_type, 120) + _monthly("2024-01", "2024-12", "25", "STALKING", 2)
          ).to_csv(recent, index=False)
    return [totals, history, recent]


def test_files_months_apart_join_with_a_gap_that_is_unknown_not_zero(tmp_path) -> None:
    counts = read_many(_gap_files(tmp_path), PAST)
    assault = SeriesKey(25, "ASSAULT")
    series = counts.series(assault)
    assert (str(series.index[0]), str(series.index[-1])) == ("2015-01", "2024-12")
    assert counts.data_end(assault) == pd.Period("2024-12", "M")
    assert counts.data_gaps(assault) == ((pd.Period("2018-11", "M"), pd.Period("2023-12", "M")),)
    gap = series.loc["2018-11":"2023-12"]
    assert len(gap) == 62 and gap.isna().all()  # unknown, not zeros
    assert series["2017-03"] == 0  # a month missing inside a file's own span is a zero, as ever
    assert series.dropna().tolist() == [100] * 26 + [0] + [100] * 19 + [120] * 12
    # a series only the first file gives keeps its end; one only the second gives, its start
    assert counts.data_end(SeriesKey(8, "THEFT")) == pd.Period("2018-10", "M") and not counts.data_gaps(SeriesKey(8, "THEFT"))
    assert str(counts.series(SeriesKey(25, "STALKING")).index[0]) == "2024-01"
    assert counts.series(SeriesKey(25, "ALL")).notna().all()  # the totals file gives it outright: no gap
    spans = counts.spans_by_label()
    assert spans["series_gaps"] == {"25:ASSAULT": [["2018-11", "2023-12"]]}
    assert spans["series_ends"]["25:ASSAULT"] == "2024-12"


def test_the_old_type_name_joins_the_new_one_across_the_gap(tmp_path) -> None:
    """The 2001-2018 file spells CRIM SEXUAL ASSAULT, the 2024 export CRIMINAL SEXUAL ASSAULT: one series."""
    counts = read_many(_gap_files(tmp_path, "CRIM SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT"), PAST)
    assert "CRIM SEXUAL ASSAULT" not in counts.types()
    series = counts.series(SeriesKey(25, "CRIMINAL SEXUAL ASSAULT"))
    assert (str(series.index[0]), str(series.index[-1])) == ("2015-01", "2024-12")
    assert series["2018-10"] == 100 and series["2024-01"] == 120 and series.loc["2018-11":"2023-12"].isna().all()


def test_gaps_survive_with_spans_and_overlapping_files_still_do_not_mix(tmp_path) -> None:
    counts = read_many(_gap_files(tmp_path), PAST)
    again = counts.with_spans(counts.starts, counts.ends, counts.gaps)
    assert again.data_gaps(SeriesKey(25, "ASSAULT")) == counts.data_gaps(SeriesKey(25, "ASSAULT"))
    assert not counts.with_spans(counts.starts, counts.ends).gaps
    overlapping = tmp_path / "overlap.csv"
    _tidy(_monthly("2018-06", "2019-06", "25", "ASSAULT", 7)).to_csv(overlapping, index=False)
    mixed = read_many([*_gap_files(tmp_path), overlapping], PAST)
    assert 7 not in mixed.series(SeriesKey(25, "ASSAULT")).tolist()  # it overlaps the first file: not taken
