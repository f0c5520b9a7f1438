"""The part of SoQL (Socrata's query language) that crimecast's client uses, over a frame of rows.

SODA 2.1's ``$`` parameters (``$select``, ``$where``, ``$group``, ``$order``) and SODA 3's query
text (:func:`soql_params` reads it into them); values written as the API writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from typing import Any

import numpy as np
import pandas as pd


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


API_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.000"  # a floating timestamp as the API writes it


def stamp(value: Any) -> str:
    return pd.Timestamp(value).strftime(API_TIME_FORMAT)


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


def comma_separated(text: str) -> list[str]:
    """The items of a comma-separated list, stripped, the empty ones left out."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_select(text: str, columns: set[str]) -> list[SelectItem]:
    items = []
    for part in comma_separated(text):
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
    grouped_names = {g.lower() for g in comma_separated(group or "")}
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
            stamps = {p: stamp(p.start_time) for p in result[item.name].dropna().unique()}
            result[item.name] = result[item.name].map(stamps).astype(object)
    for c in counts:
        result[c.name] = result["__n"]
    return result[[i.name for i in items]]


def order(frame: pd.DataFrame, text: str | None) -> pd.DataFrame:
    if not text:  # undefined order: a new one each time
        return frame.iloc[np.random.default_rng().permutation(len(frame))]
    names, ascending = [], []
    for part in comma_separated(text):
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
        text = values.dt.strftime(API_TIME_FORMAT)
        return [None if pd.isna(v) else v for v in text]
    missing = values.isna().to_numpy()
    return [None if gone else str(v) for v, gone in zip(values.to_numpy(dtype=object), missing)]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the API writes them: strings (booleans kept), null keys left out."""
    names = list(frame.columns)
    columns = [_column_values(frame[name]) for name in names]
    return [{k: v for k, v in zip(names, row) if v is not None} for row in zip(*columns)]
