"""The stand-in's state: the rows it shows (its clock, a replay's "today"), the faults and
revisions asked for, the requests seen, and its answer to a query."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
import threading
from typing import Any

import numpy as np
import pandas as pd

from local.portal.soql import SoqlError, aggregate, apply_where, order, parse_select, records, stamp

DEFAULT_LIMIT = 1000
MAX_LIMIT = 50_000
FAULT_KINDS = ("429", "500", "503", "slow", "truncate", "garbage", "reset")


@dataclass
class Fault:
    kind: str
    times: int = 1  # -1: every matching request until reset
    retry_after: int = 1
    delay: float = 2.0
    match: str | None = None  # only requests whose decoded query string contains this


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

    # the requests seen
    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.log.append(entry)
            del self.log[:-10_000]

    def recent_requests(self, count: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.log[-count:]

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
            before = {"primary_type": frame.at[position, "primary_type"], "date": stamp(frame.at[position, "date"])}
            if primary_type is not None:
                frame.at[position, "primary_type"] = primary_type
            if date is not None:
                frame.at[position, "date"] = pd.Timestamp(date)
            self.frame = frame
            change = {"id": frame.at[position, "id"], "community_area": frame.at[position, "community_area"], "before": before,
                      "after": {"primary_type": frame.at[position, "primary_type"], "date": stamp(frame.at[position, "date"])}}
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
            return records(frame)
        if selected:
            return records(frame[selected])
        if self.raw is not None:  # the API sample: the rows as they came, revised fields overlaid
            rows = []
            for record in frame.to_dict("records"):
                row = dict(self.raw[int(record["_row"])])
                row.update({"date": stamp(record["date"]), "primary_type": record["primary_type"]})
                rows.append(row)
            return rows
        shown = frame.drop(columns=["_row"])
        return records(shown.assign(year=shown["date"].dt.year.astype(str)))


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
