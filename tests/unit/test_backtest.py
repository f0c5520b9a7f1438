import pandas as pd
from prophet import Prophet
import pytest

from crimecast.domain import backtest
from crimecast.domain.errors import InvalidInputError
from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import CrimeForecaster
from crimecast.domain.series import counts_from_tidy
from tests.conftest import seasonal_series, tidy_frame

SENTINEL = 10**6  # a test-period value no honest fit can ever see


def _counts(months: int = 72):
    return counts_from_tidy(tidy_frame(seasonal_series("2015-01", months), 25, "THEFT"), as_of=pd.Timestamp("2030-01-01").date())


def test_no_fit_ever_sees_the_test_period(mocker) -> None:
    counts = _counts()
    tasks = backtest.plan(counts, [SeriesKey(25, "THEFT")], backtest.parse_origins("2019-06"), horizon=6)
    task = tasks[0]
    poisoned = task.history.copy()
    poisoned[poisoned.index > task.origin] = SENTINEL
    seed_poisoned = task.seed_history.copy()
    seed_poisoned[seed_poisoned.index > task.origin] = SENTINEL
    fit = mocker.spy(Prophet, "fit")
    model_fit = mocker.spy(CrimeForecaster, "fit")
    row = backtest.run_task(backtest.BacktestTask(task.key, task.origin, 6, poisoned, seed_poisoned, task.settings))
    assert fit.call_count == 2  # the model's Prophet member and the seed reference
    for call in fit.call_args_list:
        frame = call.args[1]
        assert frame["ds"].max() <= task.origin.to_timestamp()
        assert frame["y"].max() < 1000
    assert model_fit.call_count == 1
    seen = model_fit.call_args.args[1]
    assert seen.index.max() <= task.origin and seen.max() < 1000
    # and the scores are computed on the poisoned months, so they are huge
    assert row["model"]["mae"] > SENTINEL / 2 and row["n"] == 6


def test_backtest_scores_three_methods() -> None:
    result = backtest.run(backtest.plan(_counts(), None, backtest.parse_origins("2019-12"), horizon=6), workers=1)
    (row,) = result["series"]
    assert row["origin"] == "2019-12" and row["community_area"] == 25 and row["primary_type"] == "THEFT"
    assert set(backtest.METHODS) <= set(row)
    assert row["seasonal_naive"]["coverage"] is None and 0 <= row["model"]["coverage"] <= 1
    assert result["summary"]["rows"] == 1


def test_origin_outside_the_data_names_the_valid_range() -> None:
    with pytest.raises(InvalidInputError, match="valid origins run from 2016-12 to 2020-11"):
        backtest.plan(_counts(), None, backtest.parse_origins("2021-06"), 12)


def test_series_too_short_to_train_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="too short"):
        backtest.plan(_counts(months=20), None, backtest.parse_origins("2016-06"), 3)


@pytest.mark.parametrize("text", ["", "2019-13", "soon"])
def test_bad_origins_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError):
        backtest.parse_origins(text)


def _gap_counts():
    """Austin THEFT 2012-01..2018-10 and 2024, as read_many joins the two area x type files."""
    full = seasonal_series("2012-01", 156)
    frame = tidy_frame(full[(full.index <= "2018-10") | (full.index >= "2024-01")], 25, "THEFT")
    counts = counts_from_tidy(frame, as_of=pd.Timestamp("2030-01-01").date())
    gaps = {SeriesKey(25, "THEFT"): [(pd.Period("2018-11", "M"), pd.Period("2023-12", "M"))]}
    return counts.with_spans({}, {}, gaps)


def test_origins_inside_a_gap_are_skipped_and_a_window_across_it_scores_its_known_months() -> None:
    counts = _gap_counts()
    tasks = backtest.plan(counts, None, backtest.parse_origins("2017-12,2019-06,2023-06,2024-03"), horizon=12)
    assert [str(t.origin) for t in tasks] == ["2017-12", "2024-03"]  # 2019-06 and 2023-06 lie in the gap
    rows = backtest.run(tasks, workers=1)["series"]
    assert [r["n"] for r in rows] == [10, 9]  # 2018-01..10 (Nov, Dec unknown); 2024-04..12
    for row in rows:
        for method in backtest.METHODS:
            assert row[method]["mae"] is not None and row[method]["mase"] is not None
