"""Monthly counts per community area and crime type, at the four levels the service
forecasts: area x type, area x ALL, city x type and city x ALL.

Counts come from tidy files (``month, community_area, primary_type, count``) or from
raw incident rows (the portal's CSV export or Socrata JSON rows). Months with no
incident become zeros, and a trailing month that the data does not cover in full is
kept apart as *partial*: it is shown, but never trained on or scored. Months between two
files that give the same series (the area x type history to 2018-10 and the 2024 export)
are a *gap*: unknown, NaN in :meth:`MonthlyCounts.series`, never zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimecast.domain.areas import AREAS
from crimecast.domain.crime_types import ALL_TYPES, normalise_type
from crimecast.domain.errors import InvalidInputError, nearest
from crimecast.domain.keys import SeriesKey
from crimecast.domain.months import partial_month

# The portal leaves ``community_area`` blank for nearly every report of 2001 and early
# 2002; per-area counts are only whole from May 2002 on. Earlier area months are
# artefacts of that gap, not quiet months, so area series start here.
AREA_COUNTS_COMPLETE_FROM = pd.Period("2002-05", freq="M")

# A trailing month with less than this share of the usual monthly volume is an extract
# cut short (the portal withholds the last seven days), not a quiet month.
PARTIAL_MONTH_VOLUME_SHARE = 0.5
# ... judged only where the usual volume is large enough for the share to mean something.
PARTIAL_MONTH_MIN_VOLUME = 50

TIDY_COLUMNS = ("month", "community_area", "primary_type", "count")
PORTAL_CSV_COLUMNS = ("Date", "Primary Type", "Community Area")
SOCRATA_COLUMNS = ("date", "primary_type", "community_area")
PARTIAL_FLAG_COLUMNS = ("partial_month", "partial")


def normalise_types(values: pd.Series) -> pd.Series:
    """``normalise_type`` over a column, fast enough for the full 8-million-row history.

    The column has only a few dozen distinct values, so each distinct value is
    normalised once and the result is spread back by position.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if (codes < 0).any():
        missing = int((codes < 0).sum())
        raise InvalidInputError(
            f"empty crime type in {missing} row(s) of {values.name!r}"
        )
    canonical = pd.Index([normalise_type(u) for u in uniques])
    return pd.Series(canonical.take(codes), index=values.index, name=values.name)



@dataclass(frozen=True)
class MonthlyCounts:
    """Counts at every level present, one row per (month, area, type).

    ``frame`` columns: ``month`` (Period[M]), ``community_area`` (Int64, NA = whole
    city), ``primary_type`` (str, ALL = every type), ``count`` (int64) and ``derived``
    (summed from finer rows rather than read). Months with no row are zero.
    ``partial_month`` is the trailing month the data does not cover in full.
    ``ends`` holds the series whose data stop earlier than the others (a source that
    ends sooner, such as the 2001-2018 area x type history beside totals that run to
    today): their months after that end are unknown, not zero. ``starts`` likewise
    holds the series whose source begins later than the others. ``gaps`` holds, per
    series, the runs of months (first, last) that no source covers between two that do
    (2018-11..2023-12 between the 2001-2018 history and the 2024 export): unknown, not zero.
    """

    frame: pd.DataFrame
    first_month: pd.Period
    last_month: pd.Period
    partial_month: pd.Period | None = None
    ends: Mapping[SeriesKey, pd.Period] = field(default_factory=dict)
    starts: Mapping[SeriesKey, pd.Period] = field(default_factory=dict)
    gaps: Mapping[SeriesKey, tuple[tuple[pd.Period, pd.Period], ...]] = field(default_factory=dict)

    @property
    def last_complete_month(self) -> pd.Period:
        return self.last_month - 1 if self.partial_month == self.last_month else self.last_month

    def partial_if_last(self, month: str) -> str | None:
        """``month`` when it is these counts' partial month: what a publish of them asks of its last month."""
        return month if self.partial_month is not None and str(self.partial_month) == month else None

    def data_end(self, key: SeriesKey) -> pd.Period:
        """The last complete month of one series: what its forecast starts after."""
        return self.ends.get(key, self.last_complete_month)

    def data_gaps(self, key: SeriesKey) -> tuple[tuple[pd.Period, pd.Period], ...]:
        """The runs of unknown months (first, last) inside one series, oldest first (none for most)."""
        return tuple(self.gaps.get(key, ()))

    def with_spans(self, starts: Mapping[SeriesKey, pd.Period], ends: Mapping[SeriesKey, pd.Period],
                   gaps: Mapping[SeriesKey, Iterable[tuple[pd.Period, pd.Period]]] | None = None) -> MonthlyCounts:
        """The same counts, the series in ``starts`` and ``ends`` beginning and stopping at their
        own months, and those in ``gaps`` unknown over those runs of months."""
        known = self._rows_by_key
        runs = {k: tuple(sorted((a, b) for a, b in v if a <= b)) for k, v in (gaps or {}).items() if k in known}
        return replace(self, starts={k: m for k, m in starts.items() if k in known and m > self.first_month},
                       ends={k: m for k, m in ends.items() if k in known and m < self.last_complete_month},
                       gaps={k: v for k, v in runs.items() if v})

    def spans_by_label(self) -> dict[str, Any]:
        """``starts``, ``ends`` and ``gaps`` as JSON-ready text, for the stored counts' manifest."""
        def ordered(months: Mapping[SeriesKey, Any]) -> list[tuple[SeriesKey, Any]]:
            return sorted(months.items(), key=lambda i: SeriesKey.sort_key(i[0]))

        return {"series_starts": {k.label: str(m) for k, m in ordered(self.starts)},
                "series_ends": {k.label: str(m) for k, m in ordered(self.ends)},
                "series_gaps": {k.label: [[str(a), str(b)] for a, b in v] for k, v in ordered(self.gaps)}}

    @cached_property
    def _rows_by_key(self) -> dict[SeriesKey, np.ndarray]:
        """Row positions of each series, grouped once: thousands of series are read per run."""
        groups = self.frame.groupby(["community_area", "primary_type"], dropna=False, sort=False).indices
        return {SeriesKey(None if pd.isna(a) else int(a), str(t)): rows for (a, t), rows in groups.items()}

    def keys(self) -> list[SeriesKey]:
        return sorted(self._rows_by_key, key=SeriesKey.sort_key)

    def types(self) -> list[str]:
        return sorted(set(self.frame["primary_type"]))

    def series(self, key: SeriesKey, include_partial: bool = False, all_history: bool = False) -> pd.Series:
        """Monthly counts of one series, zero-filled, indexed by every month from its start to its end.

        The trailing partial month is left out unless ``include_partial``; a series that
        ends early (``ends``) stops at its own end. Area series start at
        :data:`AREA_COUNTS_COMPLETE_FROM` unless ``all_history`` (which only the seed's
        reference configuration asks for, to run as the seed did). The months of its
        ``gaps`` are NaN (unknown, not zero: the values are then floats); ``.dropna()``
        gives the known months only.
        """
        self._check_known(key)
        rows = self.frame.iloc[self._rows_by_key[key]]
        start = self.starts.get(key, self.first_month)
        if key.community_area is not None and not all_history:
            start = max(start, AREA_COUNTS_COMPLETE_FROM)
        if key in self.ends:
            end = self.ends[key]
        else:
            end = self.last_month if include_partial else self.last_complete_month
        months = pd.period_range(start, end, freq="M")
        values = rows.groupby("month")["count"].sum().reindex(months, fill_value=0)
        values.index.name = "month"
        values = values.astype("int64").rename(key.label)
        for first, last in self.gaps.get(key, ()):
            values = values.astype(float)
            values[(values.index >= first) & (values.index <= last)] = np.nan
        return values

    def _check_known(self, key: SeriesKey) -> None:
        if key in self._rows_by_key:
            return
        known = self.keys()
        if key.primary_type not in self.types():
            raise InvalidInputError(f"unknown crime type {key.primary_type!r} in these counts", nearest(key.primary_type, self.types()))
        raise InvalidInputError(
            f"no series {key.label} in these counts", [k.label for k in known if k.primary_type == key.primary_type][:3]
        )


def read_counts(path: str | Path, as_of: date | None = None) -> MonthlyCounts:
    """Load a tidy counts CSV or a portal CSV export (plain or gzipped)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"counts file not found: {path}")
    header = list(pd.read_csv(path, nrows=0).columns)
    wanted = [c for c in header if c in TIDY_COLUMNS + PARTIAL_FLAG_COLUMNS + PORTAL_CSV_COLUMNS]
    try:
        return counts_from_frame(pd.read_csv(path, usecols=wanted, dtype=str), as_of)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path.name}: {exc}") from None


def counts_from_frame(frame: pd.DataFrame, as_of: date | None = None) -> MonthlyCounts:
    """Counts from any of the three shapes: tidy counts, portal CSV export, Socrata rows."""
    columns = set(frame.columns)
    if set(TIDY_COLUMNS) <= columns:
        return counts_from_tidy(frame, as_of)
    if set(PORTAL_CSV_COLUMNS) <= columns:
        return counts_from_incidents(frame.rename(columns=dict(zip(PORTAL_CSV_COLUMNS, SOCRATA_COLUMNS))), as_of)
    if set(SOCRATA_COLUMNS) <= columns:
        return counts_from_incidents(frame, as_of)
    raise InvalidInputError(
        f"unknown columns {sorted(columns)[:8]}; expected tidy counts {list(TIDY_COLUMNS)}, "
        f"a portal export with {list(PORTAL_CSV_COLUMNS)} or Socrata rows with {list(SOCRATA_COLUMNS)}"
    )


def read_many(paths: Iterable[str | Path], as_of: date | None = None) -> MonthlyCounts:
    """Load several files into one table.

    Each series starts and ends where the files it comes from do: files that cover
    different months (the area x type history to 2018, the totals to today) keep them. A
    series two files give over overlapping months is taken whole from the first, never
    month by month; files that cover months apart from each other (the history to 2018-10
    and the 2024 export) are joined, and the months between them are a gap: unknown, not
    zero. Type names are normalised on reading, so an old name (``CRIM SEXUAL ASSAULT``)
    joins the new one's series.
    """
    tables = [read_counts(p, as_of) for p in paths]
    if not tables:
        raise InvalidInputError("no counts file given")
    if len(tables) == 1:
        return tables[0]
    frame = pd.concat([t.frame.assign(source=i) for i, t in enumerate(tables)], ignore_index=True)
    key = ["community_area", "primary_type"]
    # A series a file gives outright wins over the same series summed from another file.
    given = frame.loc[~frame["derived"], key].drop_duplicates()
    given_keys = pd.MultiIndex.from_frame(given)
    frame = frame[~(frame["derived"] & pd.MultiIndex.from_frame(frame[key]).isin(given_keys))]
    # ... and each series is taken from the first file that gives it and from later files
    # whose months lie apart from every file taken (a gap between), never month by month.
    pairs = frame[[*key, "source"]].drop_duplicates().sort_values("source", kind="stable")
    spans: dict[SeriesKey, list[tuple[int, pd.Period, pd.Period]]] = {}
    for area, crime_type, source in pairs.itertuples(index=False):
        taken = spans.setdefault(SeriesKey(None if pd.isna(area) else int(area), str(crime_type)), [])
        table = tables[source]
        if all(table.last_month < first or table.first_month > last for _, first, last in taken):
            taken.append((source, table.first_month, table.last_month))
    chosen = pd.DataFrame([(k.community_area, k.primary_type, s) for k, taken in spans.items() for s, _, _ in taken],
                          columns=[*key, "source"]).astype({"community_area": "Int64"})
    frame = frame[pd.MultiIndex.from_frame(frame[[*key, "source"]]).isin(pd.MultiIndex.from_frame(chosen))]
    frame = frame.drop_duplicates(["month", *key], keep="first").drop(columns="source").reset_index(drop=True)
    last = max(t.last_month for t in tables)
    partial = last if any(t.partial_month == last for t in tables) else None
    merged = MonthlyCounts(frame, min(t.first_month for t in tables), last, partial)
    starts, ends, gaps = {}, {}, {}
    for series_key, taken in spans.items():
        ordered = sorted(taken, key=lambda t: t[1])
        starts[series_key] = ordered[0][1]
        ends[series_key] = tables[ordered[-1][0]].last_complete_month
        between = [(tables[a[0]].last_complete_month + 1, b[1] - 1) for a, b in zip(ordered, ordered[1:], strict=False)]
        gaps[series_key] = [(first, last) for first, last in between if first <= last]
    return merged.with_spans(starts, ends, gaps)


def counts_from_records(rows: Iterable[Mapping[str, Any]], as_of: date | None = None) -> MonthlyCounts:
    """Counts from Socrata JSON rows (``date``, ``primary_type``, ``community_area``)."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(SOCRATA_COLUMNS))
    return counts_from_incidents(frame, as_of)


def counts_from_incidents(incidents: pd.DataFrame, as_of: date | None = None) -> MonthlyCounts:
    """Counts at the four levels from one row per incident.

    City levels count every incident, those without an area too; area levels count
    those with one. The month of the last report is partial unless that report falls
    on the month's last day.
    """
    if incidents.empty:
        raise InvalidInputError("no incident rows to count")
    stamps = _parse_dates(incidents["date"])
    cells = pd.DataFrame({
        "month": stamps.dt.to_period("M"),
        "community_area": _parse_area_column(incidents["community_area"]),
        "primary_type": normalise_types(incidents["primary_type"]),
    })
    cells = cells.groupby(["month", "community_area", "primary_type"], dropna=False, observed=True).size()
    cells = cells.rename("count").reset_index()
    frame = _all_levels_from_cells(cells)
    last = stamps.max()  # reports are in through that day
    partial = partial_month(str(last.to_period("M")), (last + pd.Timedelta(days=1)).date())
    return _build(frame, None if partial is None else pd.Period(partial, freq="M"), as_of)


def counts_from_tidy(tidy: pd.DataFrame, as_of: date | None = None) -> MonthlyCounts:
    """Counts from tidy rows; levels the file lacks are summed from finer ones."""
    missing = [c for c in TIDY_COLUMNS if c not in tidy.columns]
    if missing:
        raise InvalidInputError(f"tidy counts lack columns {missing}; expected {list(TIDY_COLUMNS)}")
    if tidy.empty:
        raise InvalidInputError("the counts file has no rows")
    try:
        months = pd.PeriodIndex(tidy["month"].astype(str).str.strip().str[:7], freq="M")
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"months must be YYYY-MM: {exc}") from None
    counts = pd.to_numeric(tidy["count"], errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        raise InvalidInputError("counts must be non-negative numbers")
    frame = pd.DataFrame({
        "month": months,
        "community_area": _parse_area_column(tidy["community_area"]),
        "primary_type": normalise_types(tidy["primary_type"]),
        "count": counts.round().astype("int64"),
    })
    # Merging renamed types can put two rows on one cell: add them up.
    keys = ["month", "community_area", "primary_type"]
    unplaced = _is_unplaced(tidy["community_area"])
    if unplaced.any() and frame["community_area"].notna()[~unplaced].all() and not (frame["primary_type"] == ALL_TYPES).any():
        # Area x type cells plus area 0 (reports no area holds), as the portal counts them:
        # every coarser level is their sum, the city's with the unplaced reports.
        cells = frame.groupby(keys, dropna=False, observed=True)["count"].sum().reset_index()
        frame = _all_levels_from_cells(cells)
        frame["derived"] = frame["community_area"].isna() | (frame["primary_type"] == ALL_TYPES)
    else:
        frame = frame.groupby(keys, dropna=False, observed=True)["count"].sum().reset_index()
        frame = _fill_missing_levels(frame)
    flagged = _flagged_partial(tidy, months)
    partial = flagged if flagged is not None else _partial_by_volume(frame)
    return _build(frame, partial, as_of)


def levels_from_aggregates(cells: pd.DataFrame) -> pd.DataFrame:
    """Every level of the months given, from incident counts per (month, area, type) as the
    portal's server-side aggregation returns them (text values; a blank or 0 area means
    none: counted citywide only). Renamed types are merged. The frame has the columns of
    :attr:`MonthlyCounts.frame`; no row for a month means no incident in it.
    """
    columns = ["month", "community_area", "primary_type", "count", "derived"]
    if cells.empty:
        return _concat([pd.DataFrame(columns=columns)])
    counts = pd.to_numeric(cells["count"], errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        raise InvalidInputError("aggregated counts must be non-negative numbers")
    try:
        months = pd.PeriodIndex(cells["month"].astype(str).str.strip().str[:7], freq="M")
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"months must start with YYYY-MM: {exc}") from None
    normalised = pd.DataFrame({
        "month": months,
        "community_area": _parse_area_column(cells["community_area"]),
        "primary_type": normalise_types(cells["primary_type"]),
        "count": counts.astype("int64"),
    })
    normalised = normalised.groupby(["month", "community_area", "primary_type"], dropna=False, observed=True)["count"].sum()
    normalised = normalised.reset_index()
    return _all_levels_from_cells(normalised[normalised["count"] > 0])


def _build(frame: pd.DataFrame, partial: pd.Period | None, as_of: date | None) -> MonthlyCounts:
    frame = frame[frame["count"] > 0].reset_index(drop=True)
    if frame.empty:
        raise InvalidInputError("the counts hold no incident at all")
    first, last = frame["month"].min(), frame["month"].max()
    if partial_month(str(last), as_of or date.today()):  # a month not over yet cannot be complete
        partial = last
    if partial is not None and partial != last:
        partial = None  # only the trailing month can be cut short
    return MonthlyCounts(frame, first, last, partial)


def _all_levels_from_cells(cells: pd.DataFrame) -> pd.DataFrame:
    by_area = cells[cells["community_area"].notna()]
    keys = ["month", "primary_type"]
    parts = [
        by_area,
        by_area.groupby(["month", "community_area"], observed=True)["count"].sum().reset_index().assign(primary_type=ALL_TYPES),
        cells.groupby(keys, observed=True)["count"].sum().reset_index().assign(community_area=pd.NA),
        cells.groupby("month", observed=True)["count"].sum().reset_index().assign(community_area=pd.NA, primary_type=ALL_TYPES),
    ]
    return _concat(parts)


def _fill_missing_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """Sum coarser levels from finer ones, where the finer ones can stand for the whole.

    A total over types needs several types, and a citywide total several areas: a file
    holding ASSAULT in Austin alone says nothing about all crime, nor about the city.
    """
    is_city = frame["community_area"].isna()
    is_all = frame["primary_type"] == ALL_TYPES
    area_type, area_all = frame[~is_city & ~is_all], frame[~is_city & is_all]
    city_type, city_all = frame[is_city & ~is_all], frame[is_city & is_all]
    many_types = area_type["primary_type"].nunique() > 1
    many_areas = frame["community_area"].nunique() > 1
    parts = [frame.assign(derived=False)]
    if area_all.empty and many_types:
        area_all = area_type.groupby(["month", "community_area"], observed=True)["count"].sum().reset_index().assign(primary_type=ALL_TYPES)
        parts.append(area_all.assign(derived=True))
    if city_type.empty and many_areas and not area_type.empty:
        city_type = area_type.groupby(["month", "primary_type"], observed=True)["count"].sum().reset_index().assign(community_area=pd.NA)
        parts.append(city_type.assign(derived=True))
    if city_all.empty and (city_type["primary_type"].nunique() > 1 or (many_areas and not area_all.empty)):
        finer = city_type if city_type["primary_type"].nunique() > 1 else area_all
        city_all = finer.groupby("month", observed=True)["count"].sum().reset_index()
        parts.append(city_all.assign(community_area=pd.NA, primary_type=ALL_TYPES, derived=True))
    return _concat(parts)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame of the given parts; ``derived`` marks rows summed here, not read."""
    parts = [p if "derived" in p.columns else p.assign(derived=False) for p in parts]
    frame = pd.concat([p[["month", "community_area", "primary_type", "count", "derived"]] for p in parts], ignore_index=True)
    frame["derived"] = frame["derived"].astype(bool)
    frame["community_area"] = frame["community_area"].astype("Int64")
    frame["primary_type"] = frame["primary_type"].astype(str)
    frame["count"] = frame["count"].astype("int64")
    return frame


def _parse_dates(values: pd.Series) -> pd.Series:
    """Incident timestamps; one unreadable date fails the load rather than be guessed."""
    stamps = pd.to_datetime(values, errors="coerce", format="mixed")
    unreadable = values[stamps.isna()]
    if not unreadable.empty:
        raise InvalidInputError(f"{len(unreadable)} incident dates are unreadable, the first is {unreadable.iloc[0]!r}")
    return stamps


def _is_unplaced(values: pd.Series) -> pd.Series:
    """Rows whose area is the portal's 0: reports no area holds, unlike a blank (a city total)."""
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").eq(0).fillna(False).astype(bool)


def _parse_area_column(values: pd.Series) -> pd.Series:
    """Area numbers as Int64; blank, or the portal's 0, means no area (citywide only)."""
    text = values.astype("string").str.strip().replace("", pd.NA)
    numbers = pd.to_numeric(text, errors="coerce")
    bad = text[numbers.isna() & text.notna()]
    if bad.empty:
        known = numbers.dropna()
        bad = text[numbers.notna()][~known.isin([0, *range(1, len(AREAS) + 1)])]
    if not bad.empty:
        raise InvalidInputError(f"community_area {bad.iloc[0]!r} is not a number 1..{len(AREAS)}")
    return numbers.where(numbers != 0).astype("Int64")


def _flagged_partial(tidy: pd.DataFrame, months: pd.PeriodIndex) -> pd.Period | None:
    for column in PARTIAL_FLAG_COLUMNS:
        if column in tidy.columns:
            flags = tidy[column].astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
            if flags.any():
                return months[flags.to_numpy()].max()
    return None


def _partial_by_volume(frame: pd.DataFrame) -> pd.Period | None:
    """The last month, when its volume collapses against the months before it."""
    totals = frame.groupby("month")["count"].sum().sort_index()
    if len(totals) < 4:
        return None
    usual = totals.iloc[-7:-1].median()
    if usual >= PARTIAL_MONTH_MIN_VOLUME and totals.iloc[-1] < PARTIAL_MONTH_VOLUME_SHARE * usual:
        return totals.index[-1]
    return None
