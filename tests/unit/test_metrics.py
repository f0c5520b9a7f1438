import math

import numpy as np
import pytest

from crimecast.domain import metrics

ACTUAL = [10.0, 20.0, 30.0, 40.0]
PREDICTED = [12.0, 18.0, 33.0, 40.0]  # errors 2, -2, 3, 0


def test_mae_mse_rmse_match_hand_computed_values() -> None:
    assert metrics.mae(ACTUAL, PREDICTED) == pytest.approx(7 / 4)
    assert metrics.mse(ACTUAL, PREDICTED) == pytest.approx((4 + 4 + 9 + 0) / 4)
    assert metrics.rmse(ACTUAL, PREDICTED) == pytest.approx(math.sqrt(17 / 4))


def test_r2_matches_hand_computed_value() -> None:
    # mean 25: total sum of squares 225 + 25 + 25 + 225 = 500; residual 17
    assert metrics.r2(ACTUAL, PREDICTED) == pytest.approx(1 - 17 / 500)
    assert math.isnan(metrics.r2([5.0, 5.0], [4.0, 6.0]))


def test_mase_divides_by_in_sample_seasonal_naive_error() -> None:
    history = [float(i) for i in range(24)]  # same month last year is always 12 lower
    assert metrics.seasonal_naive_scale(history) == pytest.approx(12.0)
    assert metrics.mase(ACTUAL, PREDICTED, history) == pytest.approx((7 / 4) / 12)
    assert math.isnan(metrics.mase(ACTUAL, PREDICTED, history[:12]))


def test_coverage_counts_values_inside_the_interval() -> None:
    assert metrics.coverage(ACTUAL, [9, 21, 25, 40], [11, 25, 35, 41]) == pytest.approx(3 / 4)


def test_score_has_every_metric_and_no_coverage_without_interval() -> None:
    result = metrics.score(ACTUAL, PREDICTED, list(range(24)))
    assert set(result) == {"mae", "mse", "rmse", "r2", "mase", "coverage"}
    assert result["coverage"] is None


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        metrics.mae([1.0, 2.0], [1.0])


def test_unknown_months_are_not_scored_nor_in_the_scale() -> None:
    """A gap (NaN) is skipped: MASE's scale reads the lag-12 pairs with both months known, and
    the errors the months whose count is known; with zeros in their place both would change."""
    history = np.array([10.0] * 12 + [14.0] * 12 + [np.nan] * 12 + [20.0] * 12)
    assert metrics.seasonal_naive_scale(history) == 4.0  # 2nd year vs 1st only: no pair touches the gap
    assert metrics.seasonal_naive_scale(np.nan_to_num(history)) != 4.0
    assert math.isnan(metrics.seasonal_naive_scale(np.array([1.0] * 12 + [np.nan] * 12 + [2.0] * 6)))
    actual = [22.0, np.nan, 18.0]
    scores = metrics.score(actual, [20.0, 99.0, 20.0], history, [19.0, 0.0, 19.0], [21.0, 1.0, 21.0])
    assert scores["mae"] == 2.0 and scores["mase"] == 0.5 and scores["coverage"] == 0.0
    with pytest.raises(ValueError, match="no month with a known actual"):
        metrics.mae([np.nan, np.nan], [1.0, 2.0])
