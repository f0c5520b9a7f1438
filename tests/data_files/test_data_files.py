"""On the city's data files as they come (CRIMECAST_DATA_DIR, default ../shared/data; see SOURCES.md
there), or, where that folder is absent, on the cut of the same files in tests/fixtures.

The same behaviour is checked on the whole data and on the cut: the raw 2022 incidents recount to
the published table, the seed's class reads its files, Austin ASSAULT meets the seed's accuracy
target, and the 2024 export joins the 2001-2018 history across the gap. What a test can count from
the files it counts; what each folder holds is pinned besides (``Figures``), so that a truncated or
swapped file fails too. The cut holds no renamed type and no series without a 2024 report: those
two are tested on the real files here and on files of their own in tests/unit/test_series.py."""

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from crimecast.domain import backtest
from crimecast.domain.crime_types import normalise_type
from crimecast.domain.keys import SeriesKey
from crimecast.domain.series import read_counts, read_many
from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES
from crimecast.tools.predictor import ChicagoCrimePredictor
from local.stack import SNAPSHOT_FILES
from tests.conftest import FIXTURES

GAP = (pd.Period("2018-11", "M"), pd.Period("2023-12", "M"))


@dataclass(frozen=True)
class Figures:
    """What a data folder holds (SOURCES.md there; tests/fixtures/README.md for the cut)."""

    reports_2022: int  # raw incidents, 2022-01..11
    areas_2022: int
    census_areas: int  # rows besides the CHICAGO total
    seed_test_months: int  # of 2023, the partial December the last
    last_month: str  # of the 2026 monthly files
    joined: int  # area x type series of the 2024 export joined to their history across the gap
    joined_renamed: int  # of them, CRIMINAL SEXUAL ASSAULT ones the history calls CRIM SEXUAL ASSAULT
    untouched: int  # area x type series of the history with no 2024 report


REAL = Figures(215_551, 77, 77, 12, "2026-05", 1_766, 75, 482)
CUT = Figures(19_139, 3, 3, 6, "2024-12", 9, 0, 0)


@pytest.fixture
def figures(source_dir: Path) -> Figures:
    return CUT if source_dir == FIXTURES else REAL


def test_raw_incidents_recount_to_the_published_monthly_counts(source_dir: Path, figures: Figures) -> None:
    """Every series of the published table (areas, types, and the sums over them) is what the raw
    rows count to, month by month; the real table covers all 77 areas and 215,551 reports."""
    raw = read_counts(source_dir / "crimes_2022_jan_nov_slim.csv.gz")
    tidy = read_counts(source_dir / "monthly_counts_2022_jan_nov.csv")
    table = pd.read_csv(source_dir / "monthly_counts_2022_jan_nov.csv")
    assert raw.partial_month is None  # the extract runs to 2022-11-30 23:59
    assert set(raw.keys()) == set(tidy.keys())
    for key in tidy.keys():
        pd.testing.assert_series_equal(raw.series(key), tidy.series(key))
    assert raw.series(SeriesKey(None, "ALL")).sum() == table["count"].sum() == figures.reports_2022
    areas = {k.community_area for k in raw.keys() if k.community_area is not None and k.primary_type == "ALL"}
    assert areas == set(table["community_area"]) and len(areas) == figures.areas_2022


def test_the_seed_class_reads_its_showcase_files(source_dir: Path, figures: Figures) -> None:
    predictor = ChicagoCrimePredictor(months_pred=12, data_dir=source_dir, crimes_file="austin_assault_monthly_2023_reference_test.csv")
    counts = predictor.load_df_crimes()
    assert counts["month"].iloc[-1] == "2023-12" and counts["partial_month"].iloc[-1]  # kept as the seed had it
    assert len(counts) == figures.seed_test_months and counts["count"].iloc[-1] == 31
    socio = predictor.load_df_socio()
    assert "HARDSHIP INDEX" in socio.columns and socio["COMMUNITY AREA NAME"].iloc[-1] == "CHICAGO"
    areas = socio["Community Area Number"].iloc[:-1]
    assert pd.isna(socio["Community Area Number"].iloc[-1]) and areas.is_unique and areas.between(1, 77).all()
    assert len(areas) == figures.census_areas


def test_yearly_backtest_of_austin_assault_meets_the_target(source_dir: Path) -> None:
    counts = read_counts(source_dir / "austin_assault_monthly_2001_2023.csv")
    origins = backtest.parse_origins([f"{year}-12" for year in range(2015, 2022)])
    summary = backtest.run(backtest.plan(counts, [SeriesKey(25, "ASSAULT")], origins, 12))["summary"]
    assert summary["mae_ratio_model_to_seed_prophet"] <= 0.70
    assert summary["model"]["mae"] < summary["seasonal_naive"]["mae"]
    assert 0.7 <= summary["model"]["coverage"] <= 0.98


@pytest.mark.parametrize("name", SNAPSHOT_FILES)
def test_the_monthly_count_files_load_whole(source_dir: Path, figures: Figures, name: str) -> None:
    """To the table's last month (2026-05 in the real files), complete, the old type names merged."""
    counts = read_counts(source_dir / name)
    table = pd.read_csv(source_dir / name, dtype=str, keep_default_na=False)
    assert counts.last_month == pd.Period(table["month"].max(), "M") == pd.Period(figures.last_month, "M")
    assert counts.partial_month is None
    assert set(counts.types()) == {normalise_type(t) for t in table["primary_type"]}
    assert "CRIM SEXUAL ASSAULT" not in counts.types()


def _area_type_keys(frame: pd.DataFrame) -> set[SeriesKey]:
    return {SeriesKey(int(area), normalise_type(kind)) for area, kind in zip(frame["community_area"], frame["primary_type"])}


def test_the_2024_export_joins_the_2001_2018_history_with_a_gap_and_the_renamed_type(source_dir: Path,
                                                                                       figures: Figures) -> None:
    """As `make demo` loads them: every area x type series of the 2024 export with a history runs
    to 2024-12 with 2018-11..2023-12 unknown, whatever the old files called its type (CRIM SEXUAL
    ASSAULT, now CRIMINAL SEXUAL ASSAULT), and so do the city types summed from them that the
    citywide file does not hold; a series with no 2024 report keeps its 2018-10 end."""
    counts = read_many([source_dir / name for name in (*SNAPSHOT_FILES, AREA_TYPE_FILE, *AREA_TYPE_RECENT_FILES)])
    recent = pd.read_csv(source_dir / "area_type_monthly_2024.csv")
    history = pd.read_csv(source_dir / AREA_TYPE_FILE)
    citywide = set(read_counts(source_dir / "citywide_monthly_by_type_2001_2026.csv").types())
    both = _area_type_keys(recent) & _area_type_keys(history)
    expected = both | {SeriesKey(None, k.primary_type) for k in both if k.primary_type not in citywide}
    joined = {k for k in counts.keys() if counts.data_gaps(k)}
    assert joined == expected and len(both) == figures.joined
    renamed = {k for k in joined if k.community_area is not None and k.primary_type == "CRIMINAL SEXUAL ASSAULT"}
    # joined through the old name: the history never spells the new one
    assert len(renamed) == figures.joined_renamed and "CRIMINAL SEXUAL ASSAULT" not in set(history["primary_type"])
    assert all(counts.data_gaps(k) == (GAP,) and counts.data_end(k) == pd.Period("2024-12", "M") for k in joined)
    assert "CRIM SEXUAL ASSAULT" not in counts.types()
    assault = counts.series(SeriesKey(25, "ASSAULT"))
    assert assault.loc["2018-11":"2023-12"].isna().all() and assault["2018-10"] > 50 and assault["2024-12"] > 50
    austin = recent[(recent["community_area"] == 25) & (recent["primary_type"] == "ASSAULT")]
    assert assault.loc["2024-01":"2024-12"].sum() == austin["count"].sum()
    assert not counts.data_gaps(SeriesKey(25, "ALL")) and counts.data_end(SeriesKey(25, "ALL")) == pd.Period(figures.last_month, "M")
    untouched = {k for k in _area_type_keys(history) - both if k.community_area != 0}  # area 0: unplaced reports
    assert len(untouched) == figures.untouched and untouched <= set(counts.keys())
    assert all(not counts.data_gaps(k) and counts.data_end(k) == pd.Period("2018-10", "M") for k in untouched)
