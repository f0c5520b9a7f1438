"""A stand-in for the City of Chicago's data portal, over real rows, with faults on demand.

It answers the part of Socrata's SODA API that crimecast's client uses:

* ``GET /resource/ijzp-q8t2.json`` with ``$select`` (columns, ``date_trunc_ym(col)``,
  ``date_trunc_y(col)``, ``count(*)``, each with an optional ``AS alias``), ``$where``
  (comparisons with quoted literals joined by ``AND``), ``$group``, ``$order`` (``ASC`` /
  ``DESC``; without it the rows come in a new random order each time, as "undefined"
  means), ``$limit`` (default 1000, at most 50,000) and ``$offset``. Values are strings
  except booleans, and keys with null values are left out, as the real API does.
* ``GET /resource/igwz-8jzy.geojson``: the community area boundaries.
* SODA 3: ``POST /api/v3/views/ijzp-q8t2/query.json`` with a JSON body ``{"query": "SELECT ...
  WHERE ... GROUP BY ... ORDER BY ... [LIMIT n] [OFFSET n]", "page": {"pageNumber": 1,
  "pageSize": 1000}, "includeSynthetic": false}``: the same SoQL, the same answer (a JSON
  array of row objects). Like the real portal it refuses a request without ``X-App-Token``
  (403). ``POST /__control/soda3`` ``{"enabled": false}`` makes it a portal without SODA 3
  (404 on that path), as one that has not moved yet.

The rows are real (``CRIMECAST_DATA_DIR``, default ``../shared/data``): the 215,551
incidents of ``crimes_2022_jan_nov_slim.csv.gz`` (``--dataset csv``, optionally copied
into earlier years with ``--replicate-years``), or the 1,000 rows of
``raw_api_sample.json`` exactly as the API returned them (``--dataset api-sample``).
Any folder with those file names will do (``--data-dir``, ``StandInPortal(dataset, folder)``):
the tests use ``tests/fixtures``, three areas of the 2022 rows, where ../shared/data is absent.

Faults and changes on demand, from Python (:class:`StandInPortal`) or over HTTP:

* ``POST /__control/fault`` ``{"kind": "429"|"500"|"503"|"slow"|"truncate"|"garbage"|"reset",
  "times": 1 (-1: until reset), "retry_after": 1, "delay": 2.0, "match": "substring of the query"}``
* ``POST /__control/revise`` ``{"id": "...", "primary_type": "...", "date": "2022-05-02T10:00:00"}``:
  a record revised after publication (reclassified, re-dated).
* ``POST /__control/now`` ``{"now": "2022-11-20T00:00:00"}``: the portal's clock; the last
  7 days before it are withheld, as the real portal withholds them.
* ``POST /__control/reset``; ``GET /__control/log`` (the requests seen).

``python -m local.portal --port 8089`` serves it; point crimecast at it with
``CRIMECAST_SOCRATA_URL=http://127.0.0.1:8089``.

**Replay** (``--replay-from YYYY-MM``, ``StandInPortal("replay", ..., replay_from="2016-10")``):
the city as it was at the end of that month. The rows come from any tidy counts files
(``--replay-data FILE``, repeatable; :func:`load_replay_files` says how files of totals only
are served), by default from
``area_type_monthly_2001_2018.csv.gz`` (every area x type, monthly, 2001-01..2018-10; area 0,
unplaced reports, is served with no ``community_area``; the two rows a cell may have, one
per ``area_source``, are summed), optionally cut to a few areas (``--areas 8,25,32``; area 0
is then left out unless listed) and types (``--types``). Each cell is one weighted row dated
the 1st of its month, so aggregations (``count(*)``) add the weights, and a plain row query
returns that many incidents, each dated the 1st (a ``$where`` on ``date`` should fall on
month starts, as the ingest's do). Only the months up to the portal's "today" are served:

* ``POST /__control/advance`` ``{"months": 1}`` moves "today" on (409 past the data's last
  month); ``GET /__control/replay`` tells today and the last month;
* ``python -m local.portal advance [--url http://127.0.0.1:8089] [--months 1]`` does the same
  from a shell.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import os
from pathlib import Path
import re
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import numpy as np
import pandas as pd

from crimecast.tools.data import AREA_TYPE_FILE, default_data_dir

CRIMES = "ijzp-q8t2"
BOUNDARIES = "igwz-8jzy"
CSV_FILE = "crimes_2022_jan_nov_slim.csv.gz"
API_FILE = "raw_api_sample.json"
BOUNDARIES_FILE = "community_areas.geojson"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000
FAULT_KINDS = ("429", "500", "503", "slow", "truncate", "garbage", "reset")
TEXT_COLUMNS = ("id", "primary_type", "community_area", "block", "description", "location_description")


def data_dir() -> Path:
    """CRIMECAST_DATA_DIR, else ../shared/data beside the repository (crimecast.tools.data)."""
    return default_data_dir()


class SoqlError(ValueError):
    """A query outside the subset answered here, or malformed: 400, as the portal answers."""


_CLAUSES = ("SELECT", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "OFFSET")
_CLAUSE_PARAMS = {"SELECT": "$select", "WHERE": "$where", "GROUP BY": "$group", "ORDER BY": "$order",
                  "LIMIT": "$limit", "OFFSET": "$offset"}


def soql_params(query: str) -> dict[str, str]:
    """A SODA 3 SoQL query as SODA 2.1's ``$`` parameters (keywords outside quoted literals)."""
    found: list[tuple[int, int, str]] = []
    quoted = False
    i = 0
    while i < len(query):
        if query[i] == "'":
            quoted = not quoted
        elif not quoted and (i == 0 or query[i - 1].isspace()):
            for clause in _CLAUSES:
                pattern = r"\s+".join(clause.split())
                match = re.match(pattern + r"(\s|$)", query[i:], re.IGNORECASE)
                if match:
                    found.append((i, i + len(match.group(0)), clause))
                    i += len(match.group(0)) - 1
                    break
        i += 1
    if not found or found[0][0] != 0 and query[:found[0][0]].strip():
        raise SoqlError(f"cannot read the SoQL query {query[:80]!r}")
    params = {}
    for n, (_, end, clause) in enumerate(found):
        stop = found[n + 1][0] if n + 1 < len(found) else len(query)
        params[_CLAUSE_PARAMS[clause]] = query[end:stop].strip()
    if params.get("$select") == "*":
        del params["$select"]
    return params


@dataclass
class Fault:
    kind: str
    times: int = 1  # -1: every matching request until reset
    retry_after: int = 1
    delay: float = 2.0
    match: str | None = None  # only requests whose decoded query string contains this


# --- the rows ---------------------------------------------------------------------------


def load_csv(path: Path, replicate_years: int = 1) -> pd.DataFrame:
    """The portal's CSV export as API columns; copies shifted 1..n-1 years back if asked."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    base = pd.DataFrame({
        "date": pd.to_datetime(raw["Date"], format="%Y-%m-%d %H:%M:%S"),
        "primary_type": raw["Primary Type"],
        "community_area": raw["Community Area"].replace("", None),
        "block": raw["Block"], "description": raw["Description"], "location_description": raw["Location Description"],
        "arrest": raw["Arrest"].str.lower() == "true", "domestic": raw["Domestic"].str.lower() == "true",
    })
    copies = [base.assign(date=base["date"] - pd.DateOffset(years=k)) for k in range(max(1, replicate_years))]
    frame = pd.concat(copies, ignore_index=True)
    frame.insert(0, "id", (10_000_000 + np.arange(len(frame))).astype(str))
    frame["_row"] = -1
    return frame


def load_api_sample(path: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    rows = json.loads(path.read_text())
    frame = pd.DataFrame({
        "id": [r["id"] for r in rows],
        "date": pd.to_datetime([r["date"] for r in rows], format="%Y-%m-%dT%H:%M:%S.%f"),
        "primary_type": [r.get("primary_type") for r in rows],
        "community_area": [r.get("community_area") for r in rows],
        "_row": np.arange(len(rows)),
    })
    return frame, rows


def load_area_type(path: Path, areas: list[int] | None = None, types: list[str] | None = None) -> pd.DataFrame:
    """The area x type monthly counts as weighted rows (``_n`` incidents each, dated the 1st
    of the month): area 0 (unplaced) has no community_area; a cell's two rows (``area_source``
    portal and derived) become one. ``areas``/``types`` cut it (area 0 only when listed; a
    type matches under either spelling of a renamed type)."""
    from crimecast.domain.series import normalise_type

    raw = pd.read_csv(path, dtype={"month": str, "community_area": int, "primary_type": str, "count": int},
                      usecols=["month", "community_area", "primary_type", "count"])
    if areas is not None:
        raw = raw[raw["community_area"].isin(areas)]
    if types is not None:
        wanted = {normalise_type(t) for t in types}
        raw = raw[raw["primary_type"].map(lambda t: normalise_type(t) in wanted)]
    cells = raw.groupby(["month", "community_area", "primary_type"], as_index=False, sort=True)["count"].sum()
    if cells[cells["count"] > 0].empty:
        raise ValueError(f"no rows left in {path.name} for areas {areas} and types {types}")
    return weighted_rows(cells)


def weighted_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells (``month`` YYYY-MM, ``community_area`` 0 for none, ``primary_type``, ``count``) as
    the portal's weighted rows: each non-zero cell one row of ``_n`` incidents dated the 1st."""
    cells = cells[cells["count"] > 0].sort_values(["month", "community_area", "primary_type"], kind="stable")
    cells = cells.reset_index(drop=True)
    weights = cells["count"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({
        "id": (10_000_000 + np.cumsum(weights) - weights).astype(str),  # the cell's first incident; ids stay 8 digits
        "date": pd.to_datetime(cells["month"], format="%Y-%m"),
        "primary_type": cells["primary_type"],
        "community_area": cells["community_area"].astype(str).where(cells["community_area"] > 0, None),
    })
    frame["_row"] = -1
    frame["_n"] = weights
    return frame


# The files' types that do not add up to their city total, served together under this name.
OTHER_TYPES = "OTHER TYPES (NOT IN THE DATA)"


@dataclass(frozen=True)
class ReplayData:
    """What a replaying portal serves (weighted rows), and when it had to make up the
    area x type cross-tabulation (files of totals only), the series the files do give."""

    frame: pd.DataFrame
    given_series: list[str] | None  # None: every level served is the files' own


def load_replay_files(paths: list[Path], areas: list[int] | None = None, types: list[str] | None = None) -> ReplayData:
    """Any tidy counts files (``month,community_area,primary_type,count``, any type names;
    several are joined as ``crimecast.domain.series.read_many`` joins them) as incidents.

    The portal publishes incidents, each with an area (or none) and a type; the ingest
    counts every level from them. Files of area x type cells are served as they are: every
    level the ingest counts is theirs (the city's reports no area holds are the city's count of
    a type less its areas'). Files of totals only (area totals, citywide types, the city: no
    cross-tabulation, as the 2019-2026 files) have no incidents to serve: each month is
    served as a made-up cross-tabulation whose margins are exactly the files' (areas and types
    paired off in order, :func:`integer_table`; reports of no area are the city total less the
    areas', and of types the files lack ``OTHER_TYPES``). The ingest then stores area totals, citywide types and the city total as
    the files give them, and the made-up area x type cells beside: ``given_series`` names the
    series the files give, the only ones the replayed service may forecast
    (``CRIMECAST_FORECAST_SERIES``)."""
    from crimecast.domain.crime_types import ALL_TYPES
    from crimecast.domain.series import normalise_type, read_many

    frame = read_many(paths).frame
    frame = frame.assign(month=frame["month"].astype(str), community_area=frame["community_area"].fillna(0).astype(int))
    given = frame[~frame["derived"]]
    has_cells = ((given["community_area"] > 0) & (given["primary_type"] != ALL_TYPES)).any()
    totals = given[(given["community_area"] == 0) | (given["primary_type"] == ALL_TYPES)]
    if has_cells and not totals.empty:
        raise ValueError("the files hold both area x type cells and totals (e.g. "
                         f"{'city' if totals['community_area'].iloc[0] == 0 else totals['community_area'].iloc[0]}:"
                         f"{totals['primary_type'].iloc[0]}): a portal serves incidents, from which every total follows; "
                         "replay the cells or the totals, not both")
    if has_cells:
        cells = frame[(frame["community_area"] > 0) & (frame["primary_type"] != ALL_TYPES)]
        city = frame[(frame["community_area"] == 0) & (frame["primary_type"] != ALL_TYPES)].set_index(["month", "primary_type"])["count"]
        placed = cells.groupby(["month", "primary_type"])["count"].sum()
        unplaced = city.sub(placed, fill_value=0).clip(lower=0).rename("count").reset_index().assign(community_area=0)
        served, given_series = pd.concat([cells, unplaced], ignore_index=True), None
    else:
        served = _cross_tabulation(frame)
        pairs = frame[["community_area", "primary_type"]].drop_duplicates().itertuples(index=False)
        given_series = sorted(f"{'city' if area == 0 else area}:{crime_type}" for area, crime_type in pairs)
    served = served[["month", "community_area", "primary_type", "count"]]
    if areas is not None:
        served = served[served["community_area"].isin(areas)]
    if types is not None:
        wanted = {normalise_type(t) for t in types}
        served = served[served["primary_type"].isin(wanted)]
    if served[served["count"] > 0].empty:
        raise ValueError(f"no incident left in {', '.join(p.name for p in paths)} for areas {areas} and types {types}")
    return ReplayData(weighted_rows(served), given_series)


def _cross_tabulation(frame: pd.DataFrame) -> pd.DataFrame:
    """Per month, integer cells whose area totals and type totals are the files' (see load_replay_files)."""
    from crimecast.domain.crime_types import ALL_TYPES

    rows = []
    for month, part in frame.groupby("month", sort=True):
        area_totals = part[(part["community_area"] > 0) & (part["primary_type"] == ALL_TYPES)].set_index("community_area")["count"]
        type_totals = part[(part["community_area"] == 0) & (part["primary_type"] != ALL_TYPES)].set_index("primary_type")["count"]
        city = part[(part["community_area"] == 0) & (part["primary_type"] == ALL_TYPES)]["count"]
        total = int(city.iloc[0]) if len(city) else int(max(area_totals.sum(), type_totals.sum()))
        unplaced, other = total - int(area_totals.sum()), total - int(type_totals.sum())
        if unplaced < 0 or other < 0:
            raise ValueError(f"{month}: the areas ({int(area_totals.sum()):,}) or the types ({int(type_totals.sum()):,}) "
                             f"add up to more than the city total ({total:,})")
        row_labels = [*area_totals.index, 0]
        col_labels = [*type_totals.index, OTHER_TYPES]
        table = integer_table(np.array([*area_totals.to_numpy(), unplaced], dtype=np.int64),
                              np.array([*type_totals.to_numpy(), other], dtype=np.int64))
        r, c = np.nonzero(table)
        rows.append(pd.DataFrame({"month": month, "community_area": np.asarray(row_labels)[r],
                                  "primary_type": np.asarray(col_labels, dtype=object)[c], "count": table[r, c]}))
    return pd.concat(rows, ignore_index=True)


def integer_table(row_sums: np.ndarray, col_sums: np.ndarray) -> np.ndarray:
    """A non-negative integer table with exactly these margins (equal totals), filled row by
    row, column by column (the north-west corner rule): at most rows + columns - 1 non-zero
    cells, so a made-up cross-tabulation adds as few cells as it can to what the ingest stores."""
    total = int(row_sums.sum())
    if total != int(col_sums.sum()):
        raise ValueError(f"margins of different totals: {total} and {int(col_sums.sum())}")
    table = np.zeros((len(row_sums), len(col_sums)), dtype=np.int64)
    rows_left, cols_left = row_sums.astype(np.int64).copy(), col_sums.astype(np.int64).copy()
    i = j = 0
    while i < len(rows_left) and j < len(cols_left):
        step = min(rows_left[i], cols_left[j])
        table[i, j] += step
        rows_left[i] -= step
        cols_left[j] -= step
        if rows_left[i] == 0:
            i += 1
        if j < len(cols_left) and cols_left[j] == 0:
            j += 1
    return table


def _stamp(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.000")


# --- SoQL, the subset ------------------------------------------------------------------------

_ITEM = re.compile(r"^(?P<expr>.+?)(?:\s+as\s+(?P<alias>[A-Za-z_]\w*))?$", re.IGNORECASE)
_CALL = re.compile(r"^(?P<fn>[A-Za-z_]\w*)\s*\(\s*(?P<arg>[^)]*?)\s*\)$")
_TERM = re.compile(r"^(?P<col>:?[A-Za-z_]\w*)\s*(?P<op>>=|<=|!=|=|>|<)\s*'(?P<value>[^']*)'$")
_ORDER = re.compile(r"^(?P<name>:?[A-Za-z_][\w()*]*)(?:\s+(?P<dir>asc|desc))?$", re.IGNORECASE)
_OPS = {">=": "__ge__", "<=": "__le__", ">": "__gt__", "<": "__lt__", "=": "__eq__", "!=": "__ne__"}


@dataclass(frozen=True)
class SelectItem:
    fn: str | None  # None: a plain column; date_trunc_ym, date_trunc_y, count
    column: str
    name: str  # the output key

    @property
    def aggregate(self) -> bool:
        return self.fn == "count"


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_select(text: str, columns: set[str]) -> list[SelectItem]:
    items = []
    for part in _split(text):
        found = _ITEM.match(part)
        if not found:
            raise SoqlError(f"cannot read $select item {part!r}")
        expr, alias = found["expr"].strip(), found["alias"]
        call = _CALL.match(expr)
        if call:
            fn, arg = call["fn"].lower(), call["arg"]
            if fn not in ("date_trunc_ym", "date_trunc_y", "count"):
                raise SoqlError(f"function {fn} is not supported here")
            if fn == "count" and arg not in ("*", *columns):
                raise SoqlError(f"no such column: {arg}")
            if fn != "count" and arg != "date":
                raise SoqlError(f"{fn} needs a date column, not {arg!r}")
            default = "count" if arg == "*" else f"{fn}_{arg}"  # Socrata's names for unaliased calls
            items.append(SelectItem(fn, arg, alias or default))
        elif expr in columns:
            items.append(SelectItem(None, expr, alias or expr))
        else:
            raise SoqlError(f"no such column: {expr}")
    return items


def apply_where(frame: pd.DataFrame, text: str) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for term in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        found = _TERM.match(term.strip().strip("()").strip())
        if not found:
            raise SoqlError(f"cannot read $where term {term!r} (this stand-in takes column op 'literal' AND ...)")
        column, op, value = found["col"], found["op"], found["value"]
        if column == ":id":
            column = "id"
        if column not in frame.columns:
            raise SoqlError(f"no such column: {column}")
        if column == "date":
            try:
                literal: Any = pd.Timestamp(value)
            except ValueError:
                raise SoqlError(f"not a floating timestamp: {value!r}") from None
            mask &= getattr(frame["date"], _OPS[op])(literal).to_numpy()
        else:
            mask &= getattr(frame[column].astype("string"), _OPS[op])(value).fillna(False).to_numpy(dtype=bool)
    return frame[mask]


def _key_values(frame: pd.DataFrame, item: SelectItem) -> pd.Series:
    if item.fn == "date_trunc_ym":
        return frame["date"].dt.to_period("M")
    if item.fn == "date_trunc_y":
        return frame["date"].dt.to_period("Y")
    return frame[item.column]


def aggregate(frame: pd.DataFrame, items: list[SelectItem], group: str | None) -> pd.DataFrame:
    keys = [i for i in items if not i.aggregate]
    grouped_names = {g.lower() for g in _split(group or "")}
    for item in keys:
        spellings = {item.name.lower(), item.column.lower(), f"{item.fn}({item.column})".lower()}
        if not spellings & grouped_names:
            raise SoqlError(f"{item.name} must appear in $group or in an aggregate function")
    counts = [i for i in items if i.aggregate]
    weights = frame["_n"] if "_n" in frame.columns else pd.Series(1, index=frame.index)  # replay rows are weighted
    if not keys:
        return pd.DataFrame({c.name: [int(weights.sum() if c.column == "*" else weights[frame[c.column].notna()].sum())]
                             for c in counts})
    key_frame = pd.DataFrame({item.name: _key_values(frame, item) for item in keys})
    key_frame["__n"] = weights
    sizes = key_frame.groupby([i.name for i in keys], dropna=False, sort=False, observed=True)["__n"].sum()
    result = sizes.reset_index(name="__n")
    for item in keys:
        if item.fn:  # each distinct period formatted once
            stamps = {p: _stamp(p.start_time) for p in result[item.name].dropna().unique()}
            result[item.name] = result[item.name].map(stamps).astype(object)
    for c in counts:
        result[c.name] = result["__n"]
    return result[[i.name for i in items]]


def order(frame: pd.DataFrame, text: str | None) -> pd.DataFrame:
    if not text:  # undefined order: a new one each time
        return frame.iloc[np.random.default_rng().permutation(len(frame))]
    names, ascending = [], []
    for part in _split(text):
        found = _ORDER.match(part)
        if not found:
            raise SoqlError(f"cannot read $order item {part!r}")
        name = "id" if found["name"] == ":id" else found["name"]
        if name not in frame.columns:
            raise SoqlError(f"$order on {name!r}, which is not selected")
        names.append(name)
        ascending.append((found["dir"] or "asc").lower() == "asc")
    return frame.sort_values(names, ascending=ascending, na_position="last", kind="stable")


def _column_values(values: pd.Series) -> list[Any]:
    """A column as the API writes it: strings, booleans kept, None where null."""
    if pd.api.types.is_bool_dtype(values):
        return [bool(v) for v in values]
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.000")
        return [None if pd.isna(v) else v for v in text]
    missing = values.isna().to_numpy()
    return [None if gone else str(v) for v, gone in zip(values.to_numpy(dtype=object), missing)]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API writes them: strings (booleans kept), null keys left out."""
    names = list(frame.columns)
    columns = [_column_values(frame[name]) for name in names]
    return [{k: v for k, v in zip(names, row) if v is not None} for row in zip(*columns)]


# --- the portal's state ------------------------------------------------------------------------


class ReplayEnded(ValueError):
    """Advancing past the last month of the data: 409."""


class PortalState:
    def __init__(self, frame: pd.DataFrame, raw: list[dict[str, Any]] | None, boundaries: Path,
                 now: datetime | None = None, lag_days: int = 7, today: str | None = None) -> None:
        self.original = frame
        self.frame = frame
        self.raw = raw
        self.boundaries = boundaries
        self.now = now
        self.lag_days = lag_days
        self.faults: list[Fault] = []
        self.soda3 = True  # serves SODA 3 too (off: a portal that has not moved yet)
        self.log: list[dict[str, Any]] = []
        self.revisions: list[dict[str, Any]] = []
        self.version = 0
        # replay: the last month served ("today" is its end), and the data's last month
        self.today = pd.Period(today, freq="M") if today else None
        self.last_month = pd.Period(frame["date"].max(), freq="M") if today else None
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()

    # what the portal shows
    def visible(self) -> pd.DataFrame:
        frame = self.frame
        if self.now is not None:
            frame = frame[frame["date"] < pd.Timestamp(self.now) - timedelta(days=self.lag_days)]
        if self.today is not None:
            frame = frame[frame["date"] < (self.today + 1).start_time]
        return frame

    def source_frame(self) -> pd.DataFrame:
        """The visible incidents in Socrata's columns, for recounting in tests."""
        frame = self.visible()
        if "_n" in frame.columns:  # replay: each weighted row is that many incidents
            frame = frame.loc[frame.index.repeat(frame["_n"])]
        return pd.DataFrame({"date": frame["date"], "primary_type": frame["primary_type"], "community_area": frame["community_area"]})

    # replay
    def replay_state(self) -> dict[str, Any]:
        if self.today is None:
            raise ValueError("the portal is not replaying (start it with --replay-from YYYY-MM)")
        return {"today": str(self.today), "last_month": str(self.last_month),
                "months_left": (self.last_month - self.today).n}

    def advance(self, months: int = 1) -> dict[str, Any]:
        """Move "today" on by ``months``: the next month(s) are published."""
        with self._lock:
            state = self.replay_state()
            if months < 1:
                raise ValueError("months must be 1 or more")
            if self.today + months > self.last_month:
                raise ReplayEnded(f"the data ends in {state['last_month']}: today is {state['today']}, "
                                  f"{state['months_left']} month(s) left")
            self.today += months
            self._changed()
        return self.replay_state()

    # changes and faults
    def set_now(self, now: datetime | None) -> None:
        with self._lock:
            self.now = now
            self._changed()

    def revise(self, record_id: str | None = None, index: int | None = None, primary_type: str | None = None,
               date: str | None = None) -> dict[str, Any]:
        if "_n" in self.frame.columns:
            raise ValueError("revisions are not supported in replay mode (its rows are monthly cells)")
        with self._lock:
            frame = self.frame.copy()
            position = int(np.flatnonzero(frame["id"].to_numpy() == record_id)[0]) if record_id is not None else int(index or 0)
            before = {"primary_type": frame.at[position, "primary_type"], "date": _stamp(frame.at[position, "date"])}
            if primary_type is not None:
                frame.at[position, "primary_type"] = primary_type
            if date is not None:
                frame.at[position, "date"] = pd.Timestamp(date)
            self.frame = frame
            change = {"id": frame.at[position, "id"], "community_area": frame.at[position, "community_area"], "before": before,
                      "after": {"primary_type": frame.at[position, "primary_type"], "date": _stamp(frame.at[position, "date"])}}
            self.revisions.append(change)
            self._changed()
            return change

    def add_fault(self, kind: str, times: int = 1, retry_after: int = 1, delay: float = 2.0, match: str | None = None) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, times, retry_after, delay, match)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, query: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times != 0 and (fault.match is None or fault.match in query):
                    if fault.times > 0:
                        fault.times -= 1
                    return fault
        return None

    def reset(self) -> None:
        with self._lock:
            self.frame, self.faults, self.revisions, self.log = self.original, [], [], []
            self.soda3 = True
            self._changed()

    def _changed(self) -> None:
        self.version += 1
        self._cache.clear()

    # answering
    def answer(self, params: dict[str, str]) -> list[dict[str, Any]]:
        limit = int(params.get("$limit", DEFAULT_LIMIT))
        offset = int(params.get("$offset", 0))
        if not 0 <= limit <= MAX_LIMIT or offset < 0:
            raise SoqlError(f"$limit must be 0..{MAX_LIMIT} and $offset >= 0")
        key = (self.version, params.get("$select"), params.get("$where"), params.get("$group"), params.get("$order"))
        with self._lock:
            cached = self._cache.get(key) if params.get("$order") else None
        if cached is None:
            cached = self._evaluate(params)
            if params.get("$order"):
                with self._lock:
                    self._cache[key] = cached
                    while len(self._cache) > 16:
                        self._cache.popitem(last=False)
        result, selected = cached
        if "_n" in result.columns:  # replay: weighted rows, spread into incidents for the page asked
            return self._shape(_incidents(result, offset, limit), selected)
        return self._shape(result.iloc[offset:offset + limit], selected)

    def _evaluate(self, params: dict[str, str]) -> tuple[pd.DataFrame, list[str] | None]:
        """The whole ordered result, and the selected columns of a plain (not aggregated) query."""
        frame = self.visible()
        columns = set(frame.columns) - {"_row", "_n"}
        if params.get("$where"):
            frame = apply_where(frame, params["$where"])
        items = parse_select(params["$select"], columns) if params.get("$select") else None
        if items and any(i.aggregate for i in items):
            return order(aggregate(frame, items, params.get("$group")), params.get("$order")), None
        if params.get("$group"):
            raise SoqlError("$group without an aggregate function")
        if not items:
            return order(frame, params.get("$order")), None
        if any(i.fn for i in items):
            raise SoqlError("date functions outside an aggregation are not supported here")
        shown = pd.DataFrame({i.name: frame[i.column].to_numpy() for i in items})
        for column in ("_row", "id", "_n"):
            if column not in shown.columns and column in frame.columns:
                shown[column] = frame[column].to_numpy()
        return order(shown, params.get("$order")), [i.name for i in items]

    def _shape(self, frame: pd.DataFrame, selected: list[str] | None) -> list[dict[str, Any]]:
        frame = frame.drop(columns=["_n"], errors="ignore")
        if "_row" not in frame.columns:  # aggregated
            return _records(frame)
        if selected:
            return _records(frame[selected])
        if self.raw is not None:  # the API sample: the rows as they came, revised fields overlaid
            rows = []
            for record in frame.to_dict("records"):
                row = dict(self.raw[int(record["_row"])])
                row.update({"date": _stamp(record["date"]), "primary_type": record["primary_type"]})
                rows.append(row)
            return rows
        shown = frame.drop(columns=["_row"])
        return _records(shown.assign(year=shown["date"].dt.year.astype(str)))


def _incidents(cells: pd.DataFrame, offset: int, limit: int) -> pd.DataFrame:
    """Incidents ``offset``..``offset + limit`` of ordered weighted rows (``_n`` each): each cell's
    k-th incident has the id of its first plus k, so ids stay unique and in order."""
    weights = cells["_n"].to_numpy(dtype=np.int64)
    ends = np.cumsum(weights)
    starts = ends - weights
    chosen = (ends > offset) & (starts < offset + limit)
    first = np.maximum(starts[chosen], offset) - starts[chosen]  # the first incident taken of each chosen cell
    taken = np.minimum(ends[chosen], offset + limit) - starts[chosen] - first
    part = cells[chosen]
    spread = part.iloc[np.repeat(np.arange(len(part)), taken)].copy()
    within = np.arange(int(taken.sum())) - np.repeat(np.cumsum(taken) - taken, taken) + np.repeat(first, taken)
    if "id" in spread.columns:
        spread["id"] = (spread["id"].astype(np.int64).to_numpy() + within).astype(str)
    return spread


# --- HTTP -----------------------------------------------------------------------------------------


def make_handler(state: PortalState, quiet: bool = True) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "crimecast-portal-stand-in"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            if not quiet:
                super().log_message(format, *args)

        def _send(self, status: int, body: bytes, content_type: str = "application/json; charset=utf-8",
                  headers: dict[str, str] | None = None, cut: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.wfile.flush()
                self.close_connection = True

        def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps({"code": "query.soql.error", "error": True, "message": message}).encode(),
                       headers=headers)

        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            url = urlsplit(self.path)
            if url.path.startswith("/__control/"):
                return self._control_get(url.path.removeprefix("/__control/"))
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            entry: dict[str, Any] = {"path": url.path, "params": params, "app_token": bool(self.headers.get("X-App-Token")),
                                     "protocol": "soda2.1"}
            self._log(entry)
            self._serve(url.path, params, unquote_plus(url.query) if url.path.startswith("/resource/") else None, entry)

        def _log(self, entry: dict[str, Any]) -> None:
            with state._lock:
                state.log.append(entry)
                del state.log[:-10_000]

        def _soda3(self, path: str) -> None:
            """SODA 3's query.json: the SoQL from the body, answered as SODA 2.1 answers it."""
            length = int(self.headers.get("Content-Length") or 0)
            entry: dict[str, Any] = {"path": path, "params": {}, "app_token": bool(self.headers.get("X-App-Token")),
                                     "protocol": "soda3"}
            self._log(entry)
            raw = self.rfile.read(length)
            if not state.soda3:
                entry["status"] = 404
                return self._error(404, f"no such path {path}")
            if not entry["app_token"]:
                entry["status"] = 403
                return self._send(403, json.dumps({"code": "forbidden", "error": True,
                                                   "message": "SODA 3 requests need an app token (X-App-Token)"}).encode())
            try:
                body = json.loads(raw or b"{}")
                query = str(body["query"])
                params = soql_params(query)
                page = body.get("page")
                if page:
                    size, number = int(page["pageSize"]), int(page["pageNumber"])
                    if number < 1 or size < 1:
                        raise SoqlError("page.pageNumber and page.pageSize start at 1")
                    params |= {"$limit": str(size), "$offset": str((number - 1) * size)}
            except (ValueError, KeyError, TypeError) as exc:
                entry["status"] = 400
                return self._error(400, f"bad SODA 3 request: {exc}")
            entry["params"] = params
            dataset = path.removeprefix("/api/v3/views/").removesuffix("/query.json")
            self._serve(f"/resource/{dataset}.json", params, query, entry)

        def _serve(self, path: str, params: dict[str, str], query: str | None, entry: dict[str, Any]) -> None:
            """A query on a dataset (faults first); ``query``: the text faults match, None for none."""
            url = urlsplit(path)
            fault = state.take_fault(query) if query is not None else None
            entry["fault"] = fault.kind if fault else None
            if fault and fault.kind == "reset":
                self.close_connection = True
                return
            if fault and fault.kind in ("429", "500", "503"):
                headers = {"Retry-After": str(fault.retry_after)} if fault.kind == "429" else None
                entry["status"] = int(fault.kind)
                return self._error(int(fault.kind), "injected fault", headers)
            if fault and fault.kind == "slow":
                time.sleep(fault.delay)
            try:
                if url.path == f"/resource/{CRIMES}.json":
                    body = json.dumps(state.answer(params), separators=(",", ":")).encode()
                elif url.path == f"/resource/{BOUNDARIES}.geojson":
                    body = state.boundaries.read_bytes()
                else:
                    entry["status"] = 404
                    return self._error(404, f"no dataset at {url.path}")
            except (SoqlError, ValueError) as exc:
                entry["status"] = 400
                return self._error(400, str(exc))
            entry["status"] = 200
            if fault and fault.kind == "garbage":
                return self._send(200, body[: len(body) // 2])
            self._send(200, body, "application/json; charset=utf-8", cut=bool(fault and fault.kind == "truncate"))

        def _control_get(self, action: str) -> None:
            if action == "log":
                with state._lock:
                    return self._send(200, json.dumps(state.log[-1000:]).encode())
            if action == "revisions":
                return self._send(200, json.dumps(state.revisions).encode())
            if action == "replay":
                try:
                    return self._send(200, json.dumps(state.replay_state()).encode())
                except ValueError as exc:
                    return self._error(400, str(exc))
            self._error(404, f"no control action {action}")

        def do_POST(self) -> None:  # noqa: N802 - the base class's name
            path = urlsplit(self.path).path
            if re.fullmatch(r"/api/v3/views/[a-z0-9]{4}-[a-z0-9]{4}/query\.json", path):
                return self._soda3(path)
            if not path.startswith("/__control/"):
                return self._error(405 if path.startswith("/resource/") else 404, f"no POST on {path}")
            action = path.removeprefix("/__control/")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if action == "soda3":
                    state.soda3 = bool(body.get("enabled", True))
                    result: Any = {"soda3": state.soda3}
                elif action == "fault":
                    result = asdict(state.add_fault(**body))
                elif action == "revise":
                    result = state.revise(body.get("id"), body.get("index"), body.get("primary_type"), body.get("date"))
                elif action == "now":
                    state.set_now(datetime.fromisoformat(body["now"]) if body.get("now") else None)
                    result = {"now": body.get("now")}
                elif action == "reset":
                    state.reset()
                    result = {"reset": True}
                elif action == "advance":
                    result = state.advance(int(body.get("months", 1)))
                else:
                    return self._error(404, f"no control action {action}")
            except ReplayEnded as exc:
                return self._error(409, str(exc))
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                return self._error(400, f"{type(exc).__name__}: {exc}")
            self._send(200, json.dumps(result, default=str).encode())

    return Handler


class StandInPortal:
    """The stand-in on a background thread: ``with StandInPortal() as portal: portal.url``."""

    def __init__(self, dataset: str = "csv", data: Path | None = None, port: int = 0, host: str = "127.0.0.1",
                 replicate_years: int = 1, now: datetime | None = None, quiet: bool = True, *,
                 replay_from: str | None = None, areas: list[int] | None = None, types: list[str] | None = None,
                 replay_files: list[Path] | None = None) -> None:
        folder = data or data_dir()
        raw = None
        self.given_series: list[str] | None = None  # replay of totals only: the series the files give
        if dataset == "csv":
            frame = load_csv(folder / CSV_FILE, replicate_years)
        elif dataset == "api-sample":
            frame, raw = load_api_sample(folder / API_FILE)
        elif dataset == "replay":
            if not replay_from:
                raise ValueError("the replay dataset needs replay_from (YYYY-MM): the month the city is shown as of")
            if replay_files:
                replayed = load_replay_files(replay_files, areas, types)
                frame, self.given_series = replayed.frame, replayed.given_series
            else:
                frame = load_area_type(folder / AREA_TYPE_FILE, areas, types)
        else:
            raise ValueError(f"unknown dataset {dataset!r}: csv, api-sample or replay")
        self.state = PortalState(frame, raw, folder / BOUNDARIES_FILE, now, today=replay_from if dataset == "replay" else None)
        if self.state.today is not None:
            first = pd.Period(frame["date"].min(), freq="M")
            if not first <= self.state.today <= self.state.last_month:
                raise ValueError(f"replay month {replay_from} is outside the data ({first}..{self.state.last_month})")
        self.server = ThreadingHTTPServer((host, port), make_handler(self.state, quiet))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandInPortal:
        self._thread = threading.Thread(target=self.server.serve_forever, name="portal-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandInPortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # shortcuts for tests
    def add_fault(self, kind: str, **options: Any) -> Fault:
        return self.state.add_fault(kind, **options)

    def revise(self, **change: Any) -> dict[str, Any]:
        return self.state.revise(**change)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.state.log)

    def advance(self, months: int = 1) -> dict[str, Any]:
        return self.state.advance(months)

    def serve_soda3(self, enabled: bool = True) -> None:
        """Serve SODA 3 too (the city's portal today), or only SODA 2.1 (404 on SODA 3's path)."""
        self.state.soda3 = enabled


def advance(url: str, months: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """Move a replaying portal's "today" on, over HTTP: its new state (ValueError when it refuses)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url.rstrip('/')}/__control/advance", data=json.dumps({"months": months}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310  # a portal URL its operator gave
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ValueError(json.loads(error.read() or b"{}").get("message") or f"HTTP {error.code}") from None


def _advance_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.portal advance",
                                     description="Move a replaying portal's today on by a month (or --months).")
    parser.add_argument("--url", default=os.environ.get("CRIMECAST_SOCRATA_URL") or "http://127.0.0.1:8089",
                        help="the portal (default: CRIMECAST_SOCRATA_URL, else http://127.0.0.1:8089)")
    parser.add_argument("--months", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        state = advance(args.url, args.months)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(state))
    return 0


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _text_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["advance"]:
        return _advance_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m local.portal", description="A stand-in for the Chicago data portal. "
                                     "`python -m local.portal advance [--url URL]` moves a replaying portal on a month.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: CRIMECAST_DATA_DIR or ../shared/data")
    parser.add_argument("--dataset", choices=["csv", "api-sample", "replay"], default=None,
                        help="default: replay with --replay-from, else csv")
    parser.add_argument("--replay-from", metavar="YYYY-MM", default=None,
                        help=f"replay {AREA_TYPE_FILE}: the city as of the end of this month")
    parser.add_argument("--replay-data", type=Path, action="append", default=None, metavar="FILE",
                        help=f"replay these tidy counts files (repeatable) instead of {AREA_TYPE_FILE}")
    parser.add_argument("--areas", type=_int_list, default=None, help="replay: only these areas, e.g. 8,25,32 (0: unplaced)")
    parser.add_argument("--types", type=_text_list, default=None, help="replay: only these types, e.g. ASSAULT,THEFT")
    parser.add_argument("--replicate-years", type=int, default=1, help="copy the 2022 rows into this many years (benchmarks)")
    parser.add_argument("--now", type=datetime.fromisoformat, default=None,
                        help="the portal's clock, e.g. 2022-11-20T00:00:00: the 7 days before it are withheld")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    dataset = args.dataset or ("replay" if args.replay_from else "csv")
    portal = StandInPortal(dataset, args.data_dir, args.port, args.host, args.replicate_years, args.now, quiet=not args.verbose,
                           replay_from=args.replay_from, areas=args.areas, types=args.types, replay_files=args.replay_data)
    frame = portal.state.frame
    incidents = int(frame["_n"].sum()) if "_n" in frame.columns else len(frame)
    replay = f", replaying: today {portal.state.today}" if portal.state.today is not None else ""
    print(f"portal stand-in at {portal.url} ({dataset}, {incidents:,} incidents{replay}); "
          f"CRIMECAST_SOCRATA_URL={portal.url}", file=sys.stderr, flush=True)
    try:
        portal.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        portal.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
