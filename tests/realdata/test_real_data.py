"""On the city's real data (CRIMECAST_DATA_DIR, default ../shared/data; see SOURCES.md there).

These need the whole folder (the published 2022 table against all 77 areas' rows, the Austin
reference series and its accuracy target, the census table, the full monthly files), not the
cut in tests/fixtures: they are marked ``realdata`` and skip, saying where they looked, without it."""

from pathlib import Path

import pandas as pd
import pytest

from crimecast.domain import backtest
from crimecast.domain.keys import SeriesKey
from crimecast.domain.series import read_counts
from crimecast.tools.predictor import ChicagoCrimePredictor

pytestmark = pytest.mark.realdata


def test_raw_incidents_recount_to_the_published_monthly_counts(data_dir: Path) -> None:
    raw = read_counts(data_dir / "crimes_2022_jan_nov_slim.csv.gz")
    tidy = read_counts(data_dir / "monthly_counts_2022_jan_nov.csv")
    assert raw.series(SeriesKey(None, "ALL")).sum() == 215_551
    assert raw.partial_month is None  # the extract runs to 2022-11-30 23:59
    for key in (SeriesKey(25, "ASSAULT"), SeriesKey(32, "THEFT"), SeriesKey(None, "BATTERY"), SeriesKey(8, "ALL")):
        pd.testing.assert_series_equal(raw.series(key), tidy.series(key))
    assert len([k for k in raw.keys() if k.community_area is not None and k.primary_type == "ALL"]) == 77


def test_seed_showcase_data_through_the_seed_class(data_dir: Path) -> None:
    predictor = ChicagoCrimePredictor(months_pred=12, data_dir=data_dir, crimes_file="austin_assault_monthly_2023_reference_test.csv")
    counts = predictor.load_df_crimes()
    assert counts["count"].tolist()[-1] == 31  # December 2023, a partial month
    socio = predictor.load_df_socio()
    assert len(socio) == 78 and "HARDSHIP INDEX" in socio.columns


def test_yearly_backtest_of_austin_assault_meets_the_target(data_dir: Path) -> None:
    counts = read_counts(data_dir / "austin_assault_monthly_2001_2023.csv")
    origins = backtest.parse_origins([f"{year}-12" for year in range(2015, 2022)])
    summary = backtest.run(backtest.plan(counts, [SeriesKey(25, "ASSAULT")], origins, 12))["summary"]
    assert summary["mae_ratio_model_to_seed_prophet"] <= 0.70
    assert summary["model"]["mae"] < summary["seasonal_naive"]["mae"]
    assert 0.7 <= summary["model"]["coverage"] <= 0.98


@pytest.mark.parametrize("name", ["area_monthly_all_types_2001_2026.csv", "citywide_monthly_by_type_2001_2026.csv"])
def test_real_count_files_load_whole(data_dir: Path, name: str) -> None:
    counts = read_counts(data_dir / name)
    assert counts.last_month == pd.Period("2026-05", "M") and counts.partial_month is None
    assert "CRIM SEXUAL ASSAULT" not in counts.types()


def test_the_2024_export_joins_the_2001_2018_history_with_a_gap_and_the_renamed_type(data_dir: Path) -> None:
    """As `make demo` loads them: every area x type series with 2024 data runs to 2024-12, with
    2018-11..2023-12 unknown; CRIM SEXUAL ASSAULT (2001-2018) and CRIMINAL SEXUAL ASSAULT (2024)
    are one series; a series with no 2024 report keeps its 2018-10 end."""
    from crimecast.domain.series import read_many
    from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES
    from local.stack import SNAPSHOT_FILES

    counts = read_many([data_dir / name for name in (*SNAPSHOT_FILES, AREA_TYPE_FILE, *AREA_TYPE_RECENT_FILES)])
    gap = (pd.Period("2018-11", "M"), pd.Period("2023-12", "M"))
    assault = counts.series(SeriesKey(25, "ASSAULT"))
    assert counts.data_end(SeriesKey(25, "ASSAULT")) == pd.Period("2024-12", "M") and counts.data_gaps(SeriesKey(25, "ASSAULT")) == (gap,)
    assert assault.loc["2018-11":"2023-12"].isna().all() and assault["2018-10"] > 50 and assault["2024-12"] > 50
    recent = pd.read_csv(data_dir / "area_type_monthly_2024.csv")
    austin = recent[(recent["community_area"] == 25) & (recent["primary_type"] == "ASSAULT")]
    assert assault.loc["2024-01":"2024-12"].sum() == austin["count"].sum()
    sexual = counts.series(SeriesKey(25, "CRIMINAL SEXUAL ASSAULT"))
    assert "CRIM SEXUAL ASSAULT" not in counts.types() and sexual.loc[:"2018-10"].sum() > 100 and sexual.loc["2024-01":].sum() > 0
    assert counts.data_gaps(SeriesKey(25, "CRIMINAL SEXUAL ASSAULT")) == (gap,)
    joined = [k for k in counts.keys() if counts.data_gaps(k)]
    # area x type series, and the city types summed from them (those the citywide file holds back)
    citywide = set(read_counts(data_dir / "citywide_monthly_by_type_2001_2026.csv").types())
    assert len(joined) > 1500 and all(k.primary_type != "ALL" for k in joined)
    assert {k.primary_type for k in joined if k.community_area is None} & citywide == set()
    assert SeriesKey(None, "BATTERY") in joined and SeriesKey(None, "ASSAULT") not in joined
    assert all(counts.data_end(k) == pd.Period("2024-12", "M") for k in joined)
    assert not counts.data_gaps(SeriesKey(25, "ALL")) and counts.data_end(SeriesKey(25, "ALL")) >= pd.Period("2026-04", "M")
    untouched = [k for k in counts.keys() if k.community_area is not None and k.primary_type != "ALL" and not counts.data_gaps(k)
                 and counts.series(k).index[0] < pd.Period("2018-01", "M")]
    assert untouched and all(counts.data_end(k) == pd.Period("2018-10", "M") for k in untouched)
