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
