"""The best forecast of the dense area x type cells measured so far, against issue 20's 0.75 target.

Not the service's model: a ridge regression of next year's growth learned across cells, the idea
that came closest. At each yearly origin of ``bench/accuracy.py`` (2012-10..2016-10) it is
fitted on every dense cell (>= 5 reports a month over the last 60) at every month from the 60th
of the area counts whose next 12 months were known at the origin: the log ratio of the cell's next 12 months to its last 12, on
the year-on-year changes over the last 12, 6 and 3 months of the cell, its area, its type
citywide and the city, and the ratio of the last 12 months' mean to the last 60's of the cell,
its area and its type. A cell's forecast is the mean of its last 12 months times the predicted
growth, times a seasonal index. Scored as accuracy.py scores the model (mean MASE over the
seasonal naive's, the same series-origins; ``mase_model`` is the forecast's own, named as
``levels.summary`` names it). The settings (the penalty, the season's weight, the regressors)
were chosen on these same origins, so the figures flatter the ridge if anything:

- ``last_year_level``: no growth, the cell's own season (the model's seasonal index);
- ``ridge_own_season``: the growth, the cell's own season;
- ``ridge_type_season``: the growth, an index 0.3 the cell's own and 0.7 its type's citywide.

``--with-model`` also forecasts every series with the model (Prophet fits: about 5 minutes on 2
cores) and scores ``ridge_type_season`` averaged with the model's forecast of the cell (weights
0.5 and 0.8 the ridge's), and ``ridge_type_season`` itself reconciled top-down as the service reconciles
(``levels.reconciled``) with the model's forecasts of the other levels. Pure numpy otherwise,
seconds.

Usage: python bench/cell_growth.py [--with-model]
"""

from __future__ import annotations

import argparse

import levels
import numpy as np
import pandas as pd
from results import write

from crimecast.domain.model import SEASON, ModelSettings, seasonal_index
from crimecast.tools.data import AREA_TYPE_FILE, real_data_dir

ORIGINS = levels.YEARLY_ORIGINS
RIDGE_PENALTY = 100.0
TYPE_SEASON_WEIGHT = 0.7
MIX_WEIGHTS = (0.5, 0.8)  # the ridge's
LONG_RUN = 60  # months: the dense rule's window, and the long-run level's


class Panel:
    """The area x type counts from the first month of complete area counts: cells[month, area 1..77,
    type], their area totals, the city's type totals (reports with no area included) and the city."""

    def __init__(self, months: pd.PeriodIndex, types: list[str], counts: np.ndarray) -> None:
        first = months.get_loc(levels.AREA_COUNTS_COMPLETE_FROM)
        self.types = types
        self.cells = counts[first:, 1:, :]
        self.areas = self.cells.sum(axis=2)
        self.type_totals = counts[first:].sum(axis=1)
        self.city = self.type_totals.sum(axis=1)

    def features(self, t: int) -> np.ndarray:
        """Per cell (area, type) at month index ``t``: the growth regressors (see the module)."""
        shape = self.cells.shape[1:]
        columns = []
        for window in (12, 6, 3):
            columns += [_change(self.cells, t, window), _change(self.areas, t, window)[:, None],
                        _change(self.type_totals, t, window)[None, :], _change(self.city, t, window)]
        columns += [_long_run(self.cells, t), _long_run(self.areas, t)[:, None], _long_run(self.type_totals, t)[None, :]]
        return np.stack([np.broadcast_to(c, shape) for c in columns], axis=-1)

    def growth(self, t: int) -> np.ndarray:
        """The log ratio of each cell's 12 months after ``t`` to its 12 months to ``t``."""
        return np.log((self.cells[t + 1:t + 1 + SEASON].sum(axis=0) + 1) / (_sum(self.cells, t, SEASON) + 1))

    def dense(self, t: int) -> np.ndarray:
        return self.cells[t + 1 - LONG_RUN:t + 1].mean(axis=0) >= levels.DENSE


def _sum(x: np.ndarray, t: int, window: int, lag: int = 0) -> np.ndarray:
    """The sum of the ``window`` months ending ``lag`` months before month index ``t``."""
    end = t + 1 - lag
    return x[end - window:end].sum(axis=0)


def _change(x: np.ndarray, t: int, window: int) -> np.ndarray:
    """The log year-on-year change of the last ``window`` months (+1: cells with none)."""
    return np.log((_sum(x, t, window) + 1) / (_sum(x, t, window, SEASON) + 1))


def _long_run(x: np.ndarray, t: int) -> np.ndarray:
    """The log ratio of the last 12 months' mean to the last 60's."""
    return np.log((_sum(x, t, SEASON) / SEASON + 0.1) / (_sum(x, t, LONG_RUN) / LONG_RUN + 0.1))


def fitted_growth(panel: Panel, origin_t: int) -> np.ndarray:
    """Each cell's predicted growth at ``origin_t``, from a ridge fitted on the dense cells at every
    month from the 60th whose next 12 months were known at the origin."""
    xs, ys = [], []
    for t in range(LONG_RUN - 1, origin_t - SEASON + 1):
        dense = panel.dense(t)
        xs.append(panel.features(t)[dense])
        ys.append(panel.growth(t)[dense])
    x, y = np.vstack(xs), np.concatenate(ys)
    x = np.hstack([x, np.ones((len(x), 1))])
    beta = np.linalg.solve(x.T @ x + RIDGE_PENALTY * np.eye(x.shape[1]), x.T @ y)
    return panel.features(origin_t) @ beta[:-1] + beta[-1]


def forecasts(panel: Panel, cells: list[levels.Series], growth: bool, type_season: float) -> dict:
    """12-month point forecasts per cell-origin: last year's mean, grown (or not), times the season."""
    settings, out = ModelSettings(), {}
    for origin in ORIGINS:
        t = (origin - levels.AREA_COUNTS_COMPLETE_FROM).n
        predicted = fitted_growth(panel, t) if growth else np.zeros(panel.cells.shape[1:])
        type_index = [seasonal_index(panel.type_totals[:t + 1, j], settings.season_years)[0]
                      for j in range(len(panel.types))]
        for s in cells:
            cut = levels.scorable_cut(s, origin)
            if cut is None:
                continue
            area, kind = s.key.community_area - 1, panel.types.index(s.key.primary_type)
            history = s.values[:cut]
            own = seasonal_index(history, settings.season_years, settings.season_prior_counts)[0]
            index = (1 - type_season) * own + type_season * type_index[kind]
            level = history[-SEASON:].mean() * np.exp(predicted[area, kind])
            point = level * np.array([index[h % SEASON] for h in range(levels.HORIZON)])
            out[(s.key, origin)] = {"yhat": point, "lower": point, "upper": point}
    return out


def with_model(series: list[levels.Series], unplaced: dict, ridge: dict) -> dict:
    """The dense cells' ratio with the ridge averaged with the model, and reconciled with the model's
    forecasts of the other levels (before and after)."""
    model = levels.forecast_all(series, ORIGINS, None, "model forecasts")
    out = {}
    for weight in MIX_WEIGHTS:
        mixed = {k: {name: weight * f[name] + (1 - weight) * model[k][name] for name in f} for k, f in ridge.items()}
        out[f"mixed_{weight}"] = levels.dense_cells(series, mixed, ORIGINS)
    combined = model | ridge
    adjusted = levels.reconciled(series, combined, unplaced, ORIGINS, "top")[0]
    cells = [k for k in adjusted if levels.level_of(k[0]) == "area_x_type"]
    out["reconciled"] = {name: levels.dense_cells(series, {k: source[k] for k in cells}, ORIGINS)
                         for name, source in (("before", combined), ("after", adjusted))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-model", action="store_true",
                        help="also score the ridge mixed with the model and reconciled (Prophet fits, minutes)")
    args = parser.parse_args()
    months, types, counts = levels.area_type_panel(real_data_dir() / AREA_TYPE_FILE)
    series, unplaced = levels.series_from_panel(months, types, counts)
    cells = [s for s in series if levels.level_of(s.key) == "area_x_type"]
    panel = Panel(months, types, counts)
    figures: dict = {"origins": [str(o) for o in ORIGINS], "ridge_penalty": RIDGE_PENALTY,
                     "type_season_weight": TYPE_SEASON_WEIGHT}
    for name, growth, type_season in (("last_year_level", False, 0.0), ("ridge_own_season", True, 0.0),
                                      ("ridge_type_season", True, TYPE_SEASON_WEIGHT)):
        ridge = forecasts(panel, cells, growth, type_season)
        figures[name] = levels.dense_cells(cells, ridge, ORIGINS)  # the last, ridge_type_season, is the one reconciled
    if args.with_model:
        figures["ridge_type_season_with_model"] = with_model(series, unplaced, ridge)
    write("cell_growth", figures)


if __name__ == "__main__":
    main()
