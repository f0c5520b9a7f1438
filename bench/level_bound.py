"""How far the area x type cells' 12-month accuracy can go when next year's level is known.

A clairvoyant forecast of each dense cell (>= 5 reports a month) at the yearly origins of
``bench/accuracy.py`` (2012-10..2016-10): the mean of the 12 months that follow, which no
forecast can know, times the cell's own seasonal index (as the model computes it), and the same
mean flat. Its mean MASE relative to the seasonal naive's is a floor for any forecast that gets
the season from the cell's history: what is left is the months' own noise around their level.
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
from crimecast.tools.data import real_data_dir

ORIGINS = [pd.Period(f"{y}-10", "M") for y in range(2012, 2017)]


def clairvoyant(series: list[levels.Series], seasonal: bool) -> dict:
    """Forecasts that know the mean of the next 12 months, per series-origin."""
    settings, out = ModelSettings(), {}
    for s in series:
        for origin in ORIGINS:
            cut = levels.scorable_cut(s, origin)
            if cut is None:
                continue
            history, ahead = s.values[:cut], s.values[cut:cut + levels.HORIZON]
            index = seasonal_index(history, settings.season_years, settings.season_prior_counts)[0] if seasonal \
                else np.ones(SEASON)
            point = ahead.mean() * np.array([index[i % SEASON] for i in range(levels.HORIZON)])
            out[(s.key, origin)] = {"yhat": point, "lower": point, "upper": point}
    return out


def main() -> None:
    months, types, panel = levels.area_type_panel(real_data_dir() / "area_type_monthly_2001_2018.csv.gz")
    cells = [s for s in levels.series_from_panel(months, types, panel)[0] if levels.level_of(s.key) == "area_x_type"]
    figures = {"origins": [str(o) for o in ORIGINS]}
    for name, seasonal in (("known_level_own_season", True), ("known_level_flat", False)):
        group = levels.by_group(levels._rows(cells, clairvoyant(cells, seasonal), ORIGINS))["area_x_type/dense"]
        figures[name] = {k: group[k] for k in ("series_origins", "mase_model", "mase_seasonal_naive", "mase_ratio")}
    write("level_bound", figures)


if __name__ == "__main__":
    main()
