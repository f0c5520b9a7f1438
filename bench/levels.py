"""Rolling-origin backtests at every level the service forecasts, built from one file.

``area_type_monthly_2001_2018.csv.gz`` holds every area x type cell; area totals, city
types and the city total are summed from it (the city includes area 0, reports with no
area). Each series is forecast 12 months ahead from each origin with the model and the
seasonal naive, both seeing only the months up to the origin. Series-origins are grouped
by the mean monthly count of the 60 months before the origin: ``dense`` (>= 5 a month),
``sparse`` (0.5 to 5) and, below 0.5, only used for reconciliation.

Used by ``bench/accuracy.py``; light (no seed Prophet), so all ~7,000 series-origins run
in minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from crimecast.domain import metrics
from crimecast.domain.crime_types import ALL_TYPES, normalise_type
from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import CrimeForecaster, seasonal_naive
from crimecast.domain.parallel import StderrProgress, map_processes
from crimecast.domain.reconcile import Band, coherence_gaps, reconcile
from crimecast.domain.series import AREA_COUNTS_COMPLETE_FROM
from crimecast.jobs.retrain import shares_held, skip_reason
from crimecast.settings import RetrainOptions

DENSE = 5.0
SPARSE = 0.5
HORIZON = 12
YEARLY_ORIGINS = tuple(pd.Period(f"{y}-10", "M") for y in range(2012, 2017))  # accuracy.py's origins for these levels

# The targets.
MASE_RATIO_MAX = 0.90
WIN_SHARE_MIN = 0.65
COVERAGE_RANGE = (0.75, 0.88)
COHERENCE_MAX = 0.01


@dataclass(frozen=True)
class Series:
    key: SeriesKey
    start: pd.Period
    values: np.ndarray


def level_of(key: SeriesKey) -> str:
    if key.community_area is None:
        return "city_total" if key.primary_type == ALL_TYPES else "city_types"
    return "area_totals" if key.primary_type == ALL_TYPES else "area_x_type"


def _type_name(raw: str) -> str:
    try:
        return normalise_type(raw)
    except ValueError:
        return raw


def area_type_panel(path: Any) -> tuple[pd.PeriodIndex, list[str], np.ndarray]:
    """(months, types, counts[month, area 0..77, type]) with duplicate cells summed."""
    frame = pd.read_csv(path)
    frame["primary_type"] = frame["primary_type"].map(_type_name)
    frame = frame.groupby(["month", "community_area", "primary_type"], as_index=False)["count"].sum()
    months = pd.period_range(frame["month"].min(), frame["month"].max(), freq="M")
    types = sorted(frame["primary_type"].unique())
    month_pos = {str(m): i for i, m in enumerate(months)}
    type_pos = {t: i for i, t in enumerate(types)}
    panel = np.zeros((len(months), 78, len(types)))
    np.add.at(panel, (frame["month"].map(month_pos).to_numpy(), frame["community_area"].to_numpy(),
                      frame["primary_type"].map(type_pos).to_numpy()), frame["count"].to_numpy())
    return months, types, panel


def series_from_panel(months: pd.PeriodIndex, types: list[str], panel: np.ndarray, areas: Iterable[int] | None = None
                      ) -> tuple[list[Series], dict[str, np.ndarray]]:
    """Every level's series (area series from AREA_COUNTS_COMPLETE_FROM, as the service
    trains them) and, per type and ALL, the city's monthly count with no area (area 0)."""
    area_start = months.get_loc(AREA_COUNTS_COMPLETE_FROM)
    areas = list(areas) if areas is not None else list(range(1, 78))
    out: list[Series] = []
    for a in areas:
        for j, t in enumerate(types):
            values = panel[area_start:, a, j]
            if values.any():
                out.append(Series(SeriesKey(a, t), AREA_COUNTS_COMPLETE_FROM, values))
        out.append(Series(SeriesKey(a, ALL_TYPES), AREA_COUNTS_COMPLETE_FROM, panel[area_start:, a, :].sum(axis=1)))
    for j, t in enumerate(types):
        out.append(Series(SeriesKey(None, t), months[0], panel[:, :, j].sum(axis=1)))
    out.append(Series(SeriesKey(None, ALL_TYPES), months[0], panel.sum(axis=(1, 2))))
    unplaced = {t: panel[:, 0, j] for j, t in enumerate(types)} | {ALL_TYPES: panel[:, 0, :].sum(axis=1)}
    return out, unplaced


def series_from_tidy(frame: pd.DataFrame) -> list[Series]:
    """Series from a tidy file of one level (e.g. the 2026 area totals or city types)."""
    out = []
    # an old name and its new one (CRIM SEXUAL ASSAULT, CRIMINAL SEXUAL ASSAULT) are one series, as the service reads them
    frame = frame.assign(month=pd.PeriodIndex(frame["month"], freq="M"), primary_type=frame["primary_type"].map(_type_name))
    for (area, type_), rows in frame.groupby(["community_area", "primary_type"], dropna=False):
        area = None if pd.isna(area) else int(area)
        start = AREA_COUNTS_COMPLETE_FROM if area is not None else frame["month"].min()
        months = pd.period_range(start, frame["month"].max(), freq="M")
        values = rows.groupby("month")["count"].sum().reindex(months, fill_value=0).to_numpy(dtype=float)
        out.append(Series(SeriesKey(area, str(type_)), start, values))
    return out


@dataclass(frozen=True)
class Task:
    series: Series
    origin: pd.Period
    min_test: int = HORIZON  # fewer known months after the origin: not scored


def scorable_cut(s: Series, origin: pd.Period, min_test: int = HORIZON) -> int | None:
    """How many of the series' months run to ``origin``; None when fewer than 36 do (too short to
    backtest) or fewer than ``min_test`` known months follow it."""
    cut = (origin - s.start).n + 1
    return None if cut < 36 or cut + min_test > len(s.values) else cut


def _forecast(task: Task) -> dict[str, Any] | None:
    s, origin = task.series, task.origin
    cut = scorable_cut(s, origin, task.min_test)
    if cut is None:
        return None
    train = pd.Series(s.values[:cut], index=pd.period_range(s.start, periods=cut, freq="M"))
    forecast = CrimeForecaster().fit(train).predict(HORIZON)
    return {"yhat": forecast["yhat"].to_numpy(), "lower": forecast["yhat_lower"].to_numpy(),
            "upper": forecast["yhat_upper"].to_numpy()}


def forecast_all(series: Sequence[Series], origins: Sequence[pd.Period], workers: int | None, label: str,
                 min_test: int = HORIZON) -> dict[tuple[SeriesKey, pd.Period], dict[str, Any]]:
    """12-month forecasts per series-origin with at least ``min_test`` known months after the origin
    (scored on the months there are: the area x type file ends in 2018-10)."""
    tasks = [Task(s, o, min_test) for o in origins for s in series]
    results = map_processes(_forecast, tasks, workers, StderrProgress(label))
    return {(t.series.key, t.origin): r for t, r in zip(tasks, results, strict=True) if r is not None}


def _rows(series: Sequence[Series], forecasts: dict, origins: Sequence[pd.Period], horizon: int = HORIZON
          ) -> list[dict[str, Any]]:
    """One scored row per series-origin: model (as given) and seasonal naive, over the first
    ``horizon`` months after the origin (1: the month the live loop judges)."""
    by_key = {s.key: s for s in series}
    rows = []
    for (key, origin), f in forecasts.items():
        s = by_key[key]
        cut = (origin - s.start).n + 1
        history, actual = s.values[:cut], s.values[cut:cut + horizon]
        n = len(actual)
        mean = float(history[-60:].mean())
        density = "dense" if mean >= DENSE else "sparse" if mean >= SPARSE else "rare"
        naive = seasonal_naive(pd.Series(history), n)
        rows.append({
            "level": level_of(key), "density": density, "key": key.label, "origin": str(origin),
            "model": metrics.score(actual, f["yhat"][:n], history, f["lower"][:n], f["upper"][:n]),
            "naive": metrics.score(actual, naive, history),
        })
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean MASE ratio (model / naive), share of series-origins where the model's MAE is lower,
    80% band coverage (share of months inside), mean MAE of both."""
    if not rows:
        return {"series_origins": 0}
    usable = [r for r in rows if r["model"]["mase"] is not None and math.isfinite(r["model"]["mase"])]
    model_mase = float(np.mean([r["model"]["mase"] for r in usable])) if usable else math.nan
    naive_mase = float(np.mean([r["naive"]["mase"] for r in usable])) if usable else math.nan
    return {
        "series_origins": len(rows),
        "series": len({r["key"] for r in rows}),
        "mase_model": round(model_mase, 4),
        "mase_seasonal_naive": round(naive_mase, 4),
        "mase_ratio": round(model_mase / naive_mase, 4) if naive_mase else None,
        "beats_naive_share": round(float(np.mean([r["model"]["mae"] < r["naive"]["mae"] for r in rows])), 4),
        "coverage_80": round(float(np.mean([r["model"]["coverage"] for r in rows])), 4),
        "mae_model": round(float(np.mean([r["model"]["mae"] for r in rows])), 3),
        "mae_seasonal_naive": round(float(np.mean([r["naive"]["mae"] for r in rows])), 3),
    }


def dense_cells(series: Sequence[Series], forecasts: dict, origins: Sequence[pd.Period]) -> dict[str, Any]:
    """The dense area x type cells' mean MASE of ``forecasts`` (``mase_model``), the seasonal naive's and their ratio."""
    group = by_group(_rows(series, forecasts, origins))["area_x_type/dense"]
    return {k: group[k] for k in ("series_origins", "mase_model", "mase_seasonal_naive", "mase_ratio")}


def by_group(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list] = {}
    for r in rows:
        groups.setdefault(f"{r['level']}/{r['density']}", []).append(r)
    return {g: summary(v) for g, v in sorted(groups.items())}


def unplaced_shares(series: Sequence[Series], unplaced: dict[str, np.ndarray], origin: pd.Period) -> dict[str, float]:
    """Per type (and ALL): the share of the city's reports with no area over the 12 months
    to the origin, the share reconciliation leaves outside the areas."""
    shares = {}
    for s in series:
        if s.key.community_area is None and s.key.primary_type in unplaced:
            cut = (origin - s.start).n + 1
            total = s.values[:cut][-12:].sum()
            shares[s.key.primary_type] = float(unplaced[s.key.primary_type][:cut][-12:].sum() / total) if total else 0.0
    return shares


def history_at(s: Series, origin: pd.Period) -> pd.Series:
    """The series' months up to and including ``origin``."""
    cut = (origin - s.start).n + 1
    return pd.Series(s.values[:cut], index=pd.period_range(s.start, periods=cut, freq="M"))


def months_of(history: pd.Series) -> dict[str, float]:
    """A history as month (YYYY-MM) -> count."""
    return {str(m): float(v) for m, v in history.items()}


def reconciled(series: Sequence[Series], forecasts: dict, unplaced: dict[str, np.ndarray],
               origins: Sequence[pd.Period], anchor: str) -> tuple[dict, dict[str, float]]:
    """The forecasts reconciled per origin as the service's retrain reconciles its own: only the
    series it would give a model at that origin (``skip_reason``), each total's children adding up
    to the share of it they held over the 12 months to the origin (``shares_held``), the
    unplaced reports left out of the areas. Returns the reconciled forecasts (of those series
    only) and the worst incoherence before and after (``coherence_gaps``, with the same shares)."""
    options = RetrainOptions()
    by_key = {s.key: s for s in series}
    out, worst = {}, {"before": 0.0, "after": 0.0}
    for origin in origins:
        block = {k: Band(f["yhat"], f["lower"], f["upper"]) for (k, o), f in forecasts.items()
                 if o == origin and skip_reason(history_at(by_key[k], origin), options) is None}
        if not block:
            continue
        share = unplaced_shares(series, unplaced, origin)
        coverage = shares_held({k: months_of(history_at(by_key[k], origin).iloc[-12:]) for k in block})
        result = reconcile(block, share, anchor=anchor, coverage=coverage)
        for name, forecast in (("before", block), ("after", result)):
            gaps = [g for g in coherence_gaps(forecast, share, coverage).values() if g is not None]
            worst[name] = max(worst[name], *gaps) if gaps else worst[name]
        for k, b in result.items():
            out[(k, origin)] = {"yhat": b.yhat, "lower": b.lower, "upper": b.upper}
    return out, {k: round(v, 5) for k, v in worst.items()}


def seconds_per_series(series: Sequence[Series], sample: int = 40) -> dict[str, float]:
    """What a retrain spends per series on one core: 2 yearly backtest origins + a final fit,
    each a fit and a 12-month predict (as ``jobs/retrain.py`` does), over a sample."""
    picked = list(series)[:: max(1, len(series) // sample)][:sample]
    started = time.perf_counter()
    for s in picked:
        index = pd.period_range(s.start, periods=len(s.values), freq="M")
        history = pd.Series(s.values, index=index)
        for k in (2, 1):
            train = history.iloc[: len(history) - 12 * k]
            CrimeForecaster().fit(train).predict(12)
        CrimeForecaster().fit(history).predict(12)
    per = (time.perf_counter() - started) / len(picked)
    return {"series_timed": len(picked), "seconds_per_series": round(per, 4),
            "retrain_2300_series_minutes_on_2_cores": round(per * 2300 / 2 / 60, 2)}


def target(name: str, value: float | None, threshold: Any, holds: bool) -> dict[str, Any]:
    return {"target": name, "value": value, "threshold": threshold, "holds": bool(holds)}


def targets_for(label: str, s: dict[str, Any], coverage_only: bool = False, mase_ratio_max: float = MASE_RATIO_MAX,
                win_share_min: float = WIN_SHARE_MIN) -> list[dict[str, Any]]:
    out = []
    if not s.get("series_origins"):
        return out
    if not coverage_only:
        out.append(target(f"{label}: mean MASE model / seasonal naive", s["mase_ratio"], f"<= {mase_ratio_max}",
                          s["mase_ratio"] is not None and s["mase_ratio"] <= mase_ratio_max))
        out.append(target(f"{label}: share of series-origins with lower MAE than seasonal naive", s["beats_naive_share"],
                          f">= {win_share_min}", s["beats_naive_share"] >= win_share_min))
    lo, hi = COVERAGE_RANGE
    out.append(target(f"{label}: 80% interval coverage", s["coverage_80"], f"{lo}..{hi}", lo <= s["coverage_80"] <= hi))
    return out
