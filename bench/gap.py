"""How the model forecasts after a gap, measured where the months after are known: the series
that run to 2026 (citywide types, area totals) cut as ``make demo``'s area x type series are
(months to 2018-10, none 2018-11..2023-12, all of 2024), forecast for 2025 and scored on the
real 2025. Writes bench/results/gap.json.

Compared on the same series and months (mean MASE, its ratio to the seasonal naive's, the
share of series where the model's MAE is lower, the 80% band's coverage):
  * ``model``: the model as it treats a gap (unknown months: Prophet on the last 8 years' worth
    of known months, Theta on the months after the gap, season and band from known months);
  * ``prophet_calendar_window``: Prophet on the known months of the last 8 calendar years
    only (a few dozen points across a gap: on the sparse real area x type series LBFGS stops
    short on some and Prophet refits with Newton, ``lbfgs_fallbacks_on_joined_area_type_series``);
  * ``no_prophet``: Theta and the profile alone;
  * ``gap_as_zeros``: the gap's months taken as zero reports, what joining the files would do
    if unknown months were zeros;
  * ``no_gap``: the model on every month (what it would do with the data of 2019-2023);
  * ``seasonal_naive``: 2025 = 2024 month by month.
A second cut (to 2012-10, none 2012-11..2017-12, all of 2018, scored on 2019) is on the
citywide types only: the area totals of the 2026 file are mostly blank before 2012.

Usage: python bench/gap.py [--workers 2]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import io
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from results import write

from crimecast.domain import metrics
from crimecast.domain import model as model_module
from crimecast.domain.model import CrimeForecaster, ModelSettings, seasonal_naive
from crimecast.domain.parallel import StderrProgress, map_processes
from crimecast.domain.series import read_counts
from crimecast.tools.data import real_data_dir as data_dir

CUTS = {  # name: (last month before the gap, first month after it, last month known, levels)
    "2018-11..2023-12": ("2018-10", "2024-01", "2024-12", ("city", "area")),
    "2012-11..2017-12": ("2012-10", "2018-01", "2018-12", ("city",)),
}
HORIZON = 12
METHODS = ("model", "prophet_calendar_window", "no_prophet", "gap_as_zeros", "no_gap", "seasonal_naive")


class CalendarWindowForecaster(CrimeForecaster):
    """The Prophet member on the known months of the last window_years x 12 calendar months."""

    def fit(self, history: pd.Series) -> CalendarWindowForecaster:
        model_module.check_history(history)
        history = model_module.calendar_history(history)
        self.history = history
        recent = history.iloc[-12 * self.settings.window_years:].dropna()
        self.prophet = model_module._prophet_class()(growth="linear", yearly_seasonality=True, weekly_seasonality=False,
                                                     daily_seasonality=False, uncertainty_samples=0)
        self.prophet.fit(model_module._frame(recent.index.to_timestamp(), np.log1p(recent.to_numpy())), algorithm="LBFGS")
        return self


def _score(task: tuple[str, str, str, pd.Series]) -> dict[str, Any]:
    cut, level, label, series = task
    before, after, last, _ = CUTS[cut]
    full = series.astype(float).loc[:last]
    gap = (full.index > pd.Period(before, "M")) & (full.index < pd.Period(after, "M"))
    train = full.where(~gap)
    actual = series.astype(float).loc[pd.Period(last, "M") + 1:].iloc[:HORIZON].to_numpy()
    scale_history = train.to_numpy()
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("prophet").addHandler(handler)
    fits = {
        "model": lambda: CrimeForecaster().fit(train),
        "prophet_calendar_window": lambda: CalendarWindowForecaster().fit(train),
        "no_prophet": lambda: CrimeForecaster(replace(ModelSettings(), prophet_weight=0.0)).fit(train),
        "gap_as_zeros": lambda: CrimeForecaster().fit(full.where(~gap, 0.0)),
        "no_gap": lambda: CrimeForecaster().fit(full),
    }
    row: dict[str, Any] = {"cut": cut, "level": level, "series": label, "fallbacks": {}}
    for name, fit in fits.items():
        start = log.getvalue().count("Falling back")
        forecast = fit().predict(len(actual))
        row[name] = metrics.score(actual, forecast["yhat"], scale_history, forecast["yhat_lower"], forecast["yhat_upper"])
        row["fallbacks"][name] = log.getvalue().count("Falling back") - start
    logging.getLogger("prophet").removeHandler(handler)
    row["seasonal_naive"] = metrics.score(actual, seasonal_naive(train, len(actual)), scale_history)
    return row


def _tasks() -> list[tuple[str, str, str, pd.Series]]:
    data = data_dir()
    sources = {"city": read_counts(data / "citywide_monthly_by_type_2001_2026.csv"),
               "area": read_counts(data / "area_monthly_all_types_2001_2026.csv")}
    tasks = []
    for cut, (before, after, last, levels) in CUTS.items():
        for level in levels:
            counts = sources[level]
            for key in counts.keys():
                if (key.community_area is None) != (level == "city"):
                    continue
                series = counts.series(key)
                if (series.loc[:before] > 0).sum() < 60 or series.loc[after:last].sum() < 24 or len(series.loc[last:]) <= HORIZON:
                    continue
                tasks.append((cut, level, key.label, series))
    return tasks


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    naive = float(np.nanmean([r["seasonal_naive"]["mase"] for r in rows]))
    out: dict[str, Any] = {"series": len(rows)}
    for method in METHODS:
        mase = float(np.nanmean([r[method]["mase"] for r in rows]))
        coverages = [r[method]["coverage"] for r in rows if r[method]["coverage"] is not None]
        median = float(np.nanmedian([r[method]["mase"] for r in rows]))
        out[method] = {
            "mean_mase": round(mase, 4), "mase_ratio_to_seasonal_naive": round(mase / naive, 4), "median_mase": round(median, 4),
            "better_than_seasonal_naive": round(float(np.mean([r[method]["mae"] < r["seasonal_naive"]["mae"] for r in rows])), 3)
            if method != "seasonal_naive" else None,
            "coverage_80": round(float(np.mean(coverages)), 3) if coverages else None,
            "lbfgs_fallbacks": sum(r["fallbacks"].get(method, 0) for r in rows) if method != "seasonal_naive" else None,
        }
    return out


def _fallbacks(series: pd.Series) -> dict[str, int]:
    """LBFGS stopping short (Prophet then refits with Newton) on one real area x type series with a gap."""
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("prophet").addHandler(handler)
    counts = {}
    for name, forecaster in (("model", CrimeForecaster), ("prophet_calendar_window", CalendarWindowForecaster)):
        start = log.getvalue().count("Falling back")
        forecaster().fit(series)
        counts[name] = log.getvalue().count("Falling back") - start
    logging.getLogger("prophet").removeHandler(handler)
    return counts


def _joined_sample(step: int = 12) -> list[pd.Series]:
    """Every ``step``-th of make demo's area x type series with a gap that a retrain trains."""
    from crimecast.domain.series import read_many
    from crimecast.jobs.retrain import skip_reason
    from crimecast.settings import RetrainOptions
    from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES

    data = data_dir()
    counts = read_many([data / AREA_TYPE_FILE, *(data / name for name in AREA_TYPE_RECENT_FILES)])
    series = [counts.series(k) for k in counts.keys() if counts.data_gaps(k) and k.community_area is not None][::step]
    return [s for s in series if skip_reason(s, RetrainOptions()) is None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    tasks = _tasks()
    rows = map_processes(_score, tasks, args.workers, StderrProgress("gap"))
    figures: dict[str, Any] = {"horizon": HORIZON, "cuts": {}}
    for cut, (before, after, last, levels) in CUTS.items():
        mine = [r for r in rows if r["cut"] == cut]
        figures["cuts"][cut] = {"train": f"..{before} and {after}..{last}", "scored": f"the {HORIZON} months after {last}",
                                **{level: _summary([r for r in mine if r["level"] == level]) for level in levels}}
    sample = _joined_sample()
    fallbacks = map_processes(_fallbacks, sample, args.workers, StderrProgress("fits on joined series"))
    figures["lbfgs_fallbacks_on_joined_area_type_series"] = {
        "series": len(sample), **{name: sum(f[name] for f in fallbacks) for name in ("model", "prophet_calendar_window")}}
    figures["seconds"] = round(time.monotonic() - started, 1)
    write("gap", figures)


if __name__ == "__main__":
    main()
