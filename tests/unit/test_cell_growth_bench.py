"""``bench/cell_growth.py`` measures a growth learned across cells at yearly origins: its ridge
must learn only from what was known at the origin, or the figure it publishes is foresight."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import bench_module


@pytest.fixture(scope="module")
def cell_growth():
    return bench_module("cell_growth")


def _panel(cell_growth, counts: np.ndarray):
    months = pd.period_range("2001-01", periods=counts.shape[0], freq="M")
    return cell_growth.Panel(months, ["ASSAULT", "THEFT"], counts)


def _counts(seed: int = 3) -> np.ndarray:
    """Poisson counts for 18 years, areas 0..77, two types, each cell at its own level."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(2, 30, size=(78, 2))
    return rng.poisson(np.broadcast_to(levels, (216, 78, 2))).astype(float)


def test_the_growth_at_an_origin_does_not_change_with_the_months_after_it(cell_growth):
    counts = _counts()
    panel = _panel(cell_growth, counts)
    origin_t = (pd.Period("2016-10", "M") - cell_growth.levels.AREA_COUNTS_COMPLETE_FROM).n
    before = cell_growth.fitted_growth(panel, origin_t)
    first = len(counts) - panel.cells.shape[0]  # the panel starts at the area counts' first month
    counts[first + origin_t + 1:] *= 5  # every month after the origin five times what it was
    after = cell_growth.fitted_growth(_panel(cell_growth, counts), origin_t)
    np.testing.assert_allclose(after, before)


def test_a_cell_that_grew_every_year_is_forecast_to_go_on_growing(cell_growth):
    counts = _counts()
    years = np.arange(counts.shape[0]) / 12
    counts[:, 1:, 0] *= np.exp(0.2 * years)[:, None]  # every area's ASSAULT grows 20% a year
    panel = _panel(cell_growth, counts)
    origin_t = (pd.Period("2016-10", "M") - cell_growth.levels.AREA_COUNTS_COMPLETE_FROM).n
    growth = cell_growth.fitted_growth(panel, origin_t)
    assert np.median(growth[:, 0]) == pytest.approx(0.2, abs=0.05)
    assert np.median(np.abs(growth[:, 1])) < 0.05  # THEFT, flat, is not
