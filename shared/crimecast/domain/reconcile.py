"""Coherent forecasts across levels: area x type cells add up to their area totals, area
totals (plus the reports no area holds) to the city total, and city types to the city.

Pure numpy: :func:`reconcile` takes the point forecasts (and optionally bands) of one
horizon block, keyed by :class:`SeriesKey`, and returns them adjusted so that

  1. city types sum to the city total (types scaled proportionally to it);
  2. area totals sum to the city total minus the share of reports that carry no area
     (``unplaced_share``; area 0 in the portal's data);
  3. the area x type matrix matches both margins (iterative proportional fitting: rows to
     the area totals, columns to the city types, each margin the share its cells hold), rows
     exact.

The anchor is the most aggregated forecast (``anchor="top"``) or, with ``anchor="mean"``,
the average of each parent's own forecast and the sum of its children's. Bands are scaled
by the same factor as their point, so a band keeps its width relative to its point.
Series missing from the input are left alone; a margin with no forecast is not enforced;
finer forecasts that hold only part of their total (``coverage``: three types of thirty)
add up to that part of it.
Only forecasts that start in the same month add up: bands with a ``start`` are
reconciled within the group of that start, never against a forecast of other months
(an area x type series whose data end in 2024-12 beside area totals that run to 2026).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from crimecast.domain.crime_types import ALL_TYPES
from crimecast.domain.keys import SeriesKey

ANCHORS = ("top", "mean")


@dataclass(frozen=True)
class Band:
    """One series' forecast over the horizon block: point, lower and upper."""

    yhat: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    start: str | None = None  # the first forecast month (YYYY-MM); None: taken to start with the others


def by_start(forecasts: Mapping[SeriesKey, Band]) -> dict[str | None, dict[SeriesKey, Band]]:
    """The forecasts grouped by the month they start (bands without a ``start`` together)."""
    groups: dict[str | None, dict[SeriesKey, Band]] = {}
    for key, band in forecasts.items():
        groups.setdefault(band.start, {})[key] = band
    return groups


def _scaled(band: Band, target: np.ndarray) -> Band:
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(band.yhat > 0, target / band.yhat, 1.0)
    lower = None if band.lower is None else np.where(band.yhat > 0, band.lower * factor, band.lower)
    upper = None if band.upper is None else np.where(band.yhat > 0, band.upper * factor, np.maximum(band.upper, target))
    return Band(np.asarray(target, dtype=float), lower, upper, band.start)


def _scale_to(values: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (n x H) scaled so each column sums to ``total`` (H); zeros stay zero
    unless every value is zero, when the total is shared out equally."""
    sums = values.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(sums > 0, values * (total / sums), total / len(values))
    return scaled


def _anchor(own: np.ndarray, children_sum: np.ndarray, anchor: str) -> np.ndarray:
    return own if anchor == "top" else (own + children_sum) / 2


def ipf(cells: np.ndarray, rows: np.ndarray, cols: np.ndarray, iterations: int = 50, tol: float = 1e-6) -> np.ndarray:
    """Iterative proportional fitting of ``cells`` (R x C x H) to row sums ``rows`` (R x H)
    and column sums ``cols`` (C x H); columns are first rescaled to the rows' total. Ends on
    a row step, so the rows hold exactly; the columns hold within ``tol`` when they can."""
    x = np.array(cells, dtype=float)
    cols = _scale_to(cols, rows.sum(axis=0)) if cols.size else cols
    for _ in range(iterations):
        col_sums = x.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = x * np.where(col_sums > 0, cols / col_sums, 1.0)[None, :, :]
        row_sums = x.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = x * np.where(row_sums > 0, rows / row_sums, 1.0)[:, None, :]
        col_sums = x.sum(axis=0)
        if np.all(np.abs(col_sums - cols) <= tol * np.maximum(cols, 1.0)):
            break
    return x


def reconcile(
    forecasts: Mapping[SeriesKey, Band],
    unplaced_share: float | Mapping[str, float] = 0.0,
    anchor: str = "top",
    coverage: Mapping[SeriesKey, float] | None = None,
) -> dict[SeriesKey, Band]:
    """Coherent copies of ``forecasts`` (one horizon block, all of one length).

    ``unplaced_share``: the share of the city's reports that no area holds, one number or
    one per type (``ALL`` for the total); e.g. its share over the last 12 months.
    ``coverage``: for a total (the city's ``ALL``, an area's ``ALL``, a city type), the share of
    its reports that the finer forecasts given here cover (the city types given, the area's
    area x type cells given, the type's cells given), e.g. over the last 12 months; 1 (all of
    it; for a type, its placed reports) where not given. Those finer forecasts then add up to
    that share of it, not to all of it: 3 of 30 types are not scaled up to every crime, and
    the few areas of a sparse type that have a forecast (STALKING: 4% of its reports) are not
    scaled up to the whole type.
    Forecasts that start in different months (``Band.start``) are reconciled apart, each
    group on its own: months that differ are never added up.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    groups = by_start(forecasts)
    if len(groups) > 1:
        out: dict[SeriesKey, Band] = {}
        for group in groups.values():
            out.update(reconcile(group, unplaced_share, anchor, coverage))
        return out
    out = dict(forecasts)
    if not forecasts:
        return out

    def share(type_name: str) -> float:
        if isinstance(unplaced_share, Mapping):
            return float(unplaced_share.get(type_name, unplaced_share.get(ALL_TYPES, 0.0)))
        return float(unplaced_share)

    def covered(key: SeriesKey) -> float:
        return float((coverage or {}).get(key, 1.0))

    city_key = SeriesKey(None, ALL_TYPES)
    type_keys = sorted(k for k in forecasts if k.community_area is None and k.primary_type != ALL_TYPES)
    area_keys = sorted((k for k in forecasts if k.community_area is not None and k.primary_type == ALL_TYPES),
                       key=SeriesKey.sort_key)
    cell_keys = [k for k in forecasts if k.community_area is not None and k.primary_type != ALL_TYPES]

    # 1. city types to the city total (the share of it they cover)
    if city_key in forecasts and type_keys and covered(city_key) > 0:
        types = np.array([forecasts[k].yhat for k in type_keys], dtype=float)
        total = _anchor(forecasts[city_key].yhat * covered(city_key), types.sum(axis=0), anchor)
        out[city_key] = _scaled(forecasts[city_key], total / covered(city_key))
        for k, v in zip(type_keys, _scale_to(types, total), strict=True):
            out[k] = _scaled(forecasts[k], v)

    # 2. area totals to the city total less its unplaced share
    if city_key in out and area_keys:
        areas = np.array([forecasts[k].yhat for k in area_keys], dtype=float)
        placed_total = out[city_key].yhat * (1 - share(ALL_TYPES))
        if anchor == "mean" and not type_keys:
            placed_total = (placed_total + areas.sum(axis=0)) / 2
            out[city_key] = _scaled(out[city_key], placed_total / (1 - share(ALL_TYPES)))
        for k, v in zip(area_keys, _scale_to(areas, placed_total), strict=True):
            out[k] = _scaled(forecasts[k], v)

    # 3. the area x type matrix to its margins
    if cell_keys and area_keys:
        area_index = {k.community_area: i for i, k in enumerate(area_keys)}
        placed = [k for k in cell_keys if k.community_area in area_index]
        cell_types = sorted({k.primary_type for k in placed})
        type_index = {t: j for j, t in enumerate(cell_types)}
        horizon = len(next(iter(forecasts.values())).yhat)
        cells = np.zeros((len(area_keys), len(cell_types), horizon))
        for k in placed:
            cells[area_index[k.community_area], type_index[k.primary_type]] = forecasts[k].yhat
        shares = np.array([covered(k) for k in area_keys], dtype=float)[:, None]
        rows = np.array([out[k].yhat for k in area_keys], dtype=float) * shares
        if anchor == "mean" and city_key not in forecasts:
            rows = (rows + cells.sum(axis=1)) / 2
            for k, v, c in zip(area_keys, rows, shares, strict=True):
                out[k] = _scaled(forecasts[k], v / np.where(c > 0, c, 1.0))
        cols = cells.sum(axis=0)
        for t, j in type_index.items():
            key = SeriesKey(None, t)
            if key not in out:
                continue
            held = (coverage or {}).get(key)  # the part of the type its cells hold
            if held is None:  # not told: all its placed reports
                cols[j] = out[key].yhat * (1 - share(t))
            elif held > 0:
                cols[j] = out[key].yhat * held
            # a share of 0 (no recent report in its cells) says nothing of their size: left to the rows
        fitted = ipf(cells, rows, cols)
        for k in placed:
            out[k] = _scaled(forecasts[k], fitted[area_index[k.community_area], type_index[k.primary_type]])
    return out


def coherence_gaps(forecasts: Mapping[SeriesKey, Band], unplaced_share: float | Mapping[str, float] = 0.0,
                   coverage: Mapping[SeriesKey, float] | None = None) -> dict[str, float | None]:
    """How far from adding up ``forecasts`` are, as the largest relative gap over the horizon:
    area x type cells against (the share they cover of) their area total, areas (plus the
    unplaced share) and types against the city. None where a relation has no members.
    Forecasts that start in different months are not expected to add up: pass one start's
    group (:func:`by_start`)."""
    if len(by_start(forecasts)) > 1:
        raise ValueError("these forecasts start in different months and do not add up: measure each start's group apart")

    def share(type_name: str) -> float:
        if isinstance(unplaced_share, Mapping):
            return float(unplaced_share.get(type_name, unplaced_share.get(ALL_TYPES, 0.0)))
        return float(unplaced_share)

    def gap(parts: list[np.ndarray], whole: np.ndarray) -> float:
        total = np.sum(parts, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(whole > 0, np.abs(total - whole) / whole, 0.0)
        return round(float(np.max(relative)), 6)

    city = forecasts.get(SeriesKey(None, ALL_TYPES))
    areas = {k.community_area: b for k, b in forecasts.items() if k.community_area is not None and k.primary_type == ALL_TYPES}
    types = [b.yhat for k, b in forecasts.items() if k.community_area is None and k.primary_type != ALL_TYPES]
    cells: dict[int, list[np.ndarray]] = {}
    for k, b in forecasts.items():
        if k.community_area in areas and k.primary_type != ALL_TYPES:
            cells.setdefault(k.community_area, []).append(b.yhat)
    def covered(key: SeriesKey) -> float:
        return float((coverage or {}).get(key, 1.0))

    return {
        "types_to_city": gap(types, city.yhat * covered(SeriesKey(None, ALL_TYPES))) if city is not None and types else None,
        "areas_to_city": gap(list(b.yhat for b in areas.values()), city.yhat * (1 - share(ALL_TYPES)))
        if city is not None and areas else None,
        "area_types_to_areas": max((gap(v, areas[a].yhat * covered(SeriesKey(a, ALL_TYPES))) for a, v in cells.items()),
                                   default=None),
    }
