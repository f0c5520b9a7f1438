"""How far the area x type cells' 12-month accuracy can go when next year's level is known.

A clairvoyant forecast of each dense cell (>= 5 reports a month) at the yearly origins of
``bench/accuracy.py`` (2012-10..2016-10): the mean of the 12 months that follow, which no
forecast can know, times the cell's own seasonal index (as the model computes it), and the same
mean flat. Its mean MASE relative to the seasonal naive's is a floor for any forecast that gets
the season from the cell's history: what is left is the months' own noise around their level.
A third knows less: the citywide total of the cell's type over the next 12 months (reports with no
area included), shared out by the cell's share of that total over the last 12 (its own season
again): how far a forecast gets whose only error is each cell's share drifting, had it foreseen
every type's year exactly.
The model's ratio on the same series-origins is ``bench/accuracy.py``'s
(``targets``: area_x_type/dense). Pure numpy, seconds.

Usage: python bench/level_bound.py
"""

from __future__ import annotations

import levels
import numpy as np
import pandas as pd
from results import write

from crimecast.domain.model import SEASON, ModelSettings, seasonal_index
from crimecast.tools.data import AREA_TYPE_FILE, real_data_dir

ORIGINS = levels.YEARLY_ORIGINS


def clairvoyant(series: list[levels.Series], seasonal: bool, types: dict[str, levels.Series] | None = None) -> dict:
    """Forecasts that know the mean of the next 12 months, per series-origin; given ``types``
    (the city type series by name), the type's next 12 months instead, times the cell's share."""
    settings, out = ModelSettings(), {}
    for s in series:
        for origin in ORIGINS:
            cut = levels.scorable_cut(s, origin)
            if cut is None:
                continue
            history, ahead = s.values[:cut], s.values[cut:cut + levels.HORIZON]
            level = ahead.mean() if types is None else _known_type_level(history, types[s.key.primary_type], origin)
            index = seasonal_index(history, settings.season_years, settings.season_prior_counts)[0] if seasonal \
                else np.ones(SEASON)
            point = level * np.array([index[i % SEASON] for i in range(levels.HORIZON)])
            out[(s.key, origin)] = {"yhat": point, "lower": point, "upper": point}
    return out


def _known_type_level(history: np.ndarray, type_series: levels.Series, origin: pd.Period) -> float:
    """The cell's share of its type over the last 12 months times the type's next 12-month mean."""
    cut = (origin - type_series.start).n + 1
    past, ahead = type_series.values[cut - SEASON:cut], type_series.values[cut:cut + levels.HORIZON]
    return float(history[-SEASON:].sum() / past.sum() * ahead.mean()) if past.sum() > 0 else 0.0  # no report: no share


def main() -> None:
    months, types, panel = levels.area_type_panel(real_data_dir() / AREA_TYPE_FILE)
    series = levels.series_from_panel(months, types, panel)[0]
    cells = [s for s in series if levels.level_of(s.key) == "area_x_type"]
    city_types = {s.key.primary_type: s for s in series if levels.level_of(s.key) == "city_types"}
    figures = {"origins": [str(o) for o in ORIGINS]}
    for name, seasonal, known_types in (("known_level_own_season", True, None), ("known_level_flat", False, None),
                                         ("known_type_total_own_season", True, city_types)):
        figures[name] = levels.dense_cells(cells, clairvoyant(cells, seasonal, known_types), ORIGINS)
    write("level_bound", figures)


if __name__ == "__main__":
    main()
