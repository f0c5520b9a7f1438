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
    return cell_growth.Panel(panel_months(counts.shape[0]), ["ASSAULT", "THEFT"], counts)


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


@pytest.mark.parametrize("type_season", [0.0, 1.0])
def test_a_steady_seasonal_cell_is_forecast_as_its_next_year(cell_growth, type_season: float) -> None:
    """Cells with one seasonal shape and no noise: whether the season is the cell's own or its
    type's, and with the growth (none to find), each forecast is the year that followed."""
    months = 216
    shape = 1 + 0.3 * np.sin(2 * np.pi * np.arange(months) / 12)
    levels_by_cell = np.random.default_rng(5).uniform(200, 400, size=(78, 2))
    counts = levels_by_cell[None, :, :] * shape[:, None, None]
    panel = _panel(cell_growth, counts)
    series = cell_growth.levels.series_from_panel(panel_months(months), ["ASSAULT", "THEFT"], counts)[0]
    cells = [s for s in series if cell_growth.levels.level_of(s.key) == "area_x_type"][:10]
    forecasts = cell_growth.forecasts(panel, cells, True, type_season)
    assert len(forecasts) == len(cells) * len(cell_growth.ORIGINS)
    for (key, origin), forecast in forecasts.items():
        s = next(c for c in cells if c.key == key)
        cut = (origin - s.start).n + 1
        np.testing.assert_allclose(forecast["yhat"], s.values[cut:cut + 12], rtol=0.02)


def panel_months(count: int) -> pd.PeriodIndex:
    return pd.period_range("2001-01", periods=count, freq="M")
