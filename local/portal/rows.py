"""The portal's rows: the 2022 incidents (CSV export or API sample), or a replay's monthly
cells as weighted rows (``_n`` incidents each), with any tidy counts files of totals only served
as a made-up cross-tabulation whose margins are the files'."""

from __future__ import annotations

from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimecast.tools.data import default_data_dir

CSV_FILE = "crimes_2022_jan_nov_slim.csv.gz"
API_FILE = "raw_api_sample.json"
BOUNDARIES_FILE = "community_areas.geojson"


def data_dir() -> Path:
    """CRIMECAST_DATA_DIR, else ../shared/data beside the repository (crimecast.tools.data)."""
    return default_data_dir()


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
    raw = pd.read_csv(path, dtype={"month": str, "community_area": int, "primary_type": str, "count": int},
                      usecols=["month", "community_area", "primary_type", "count"])
    raw = _cut(raw, areas, types, path.name)
    return weighted_rows(raw.groupby(["month", "community_area", "primary_type"], as_index=False, sort=True)["count"].sum())


def _cut(cells: pd.DataFrame, areas: list[int] | None, types: list[str] | None, source: str) -> pd.DataFrame:
    """Only the cells of ``areas`` and ``types`` (a type under either spelling of a renamed type);
    ValueError when no incident is left."""
    from crimecast.domain.series import normalise_type, normalise_types

    if areas is not None:
        cells = cells[cells["community_area"].isin(areas)]
    if types is not None:
        cells = cells[normalise_types(cells["primary_type"]).isin({normalise_type(t) for t in types}).to_numpy()]
    if cells[cells["count"] > 0].empty:
        raise ValueError(f"no incident left in {source} for areas {areas} and types {types}")
    return cells


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
    from crimecast.domain.series import read_many

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
    served = _cut(served[["month", "community_area", "primary_type", "count"]], areas, types, ", ".join(p.name for p in paths))
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
