"""Precomputed forecasts and their accuracy, as the API serves them.

Pure Python on purpose: the predict Lambda imports this and the stores only, never
pandas or Prophet, so its cold start stays small. Training writes one item per series
per model version; a single pointer item names the version being served, so switching
to a new model is one atomic write.
"""

from __future__ import annotations

from collections.abc import Iterable
import json
from typing import Any

from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.series_store import CATALOG, SKIPPED, SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.domain.areas import area_name
from crimecast.domain.crime_types import ALL_TYPES, normalise_type
from crimecast.domain.errors import InvalidInputError, NotFoundError, OutOfRangeError, nearest
from crimecast.domain.keys import CITY, SeriesKey, parse_area

MAX_MONTHS = 24
HISTORY_MONTHS = 60  # observed months kept beside each forecast, for the chart
# JSON bytes of skipped series per item: at 3,000 series the whole list (~390 KB with long
# labels and reasons) would all but fill one 400 KB item, so it goes in parts of its own,
# and the catalog item, read by every /predict, stays the size of the trained series' labels.
SKIPPED_PART_BYTES = 150_000


def series_item(
    key: SeriesKey,
    version: str,
    trained_at: str,
    history: list[dict[str, Any]],
    forecast: list[dict[str, Any]],
    metrics: dict[str, Any],
    data_through: str | None = None,
) -> dict[str, Any]:
    """The stored form of one series' forecast; the payload is JSON text (no Decimals).

    ``data_through`` is the series' last complete month: series end at different
    months (a source that stops sooner), and every reader is told which.
    """
    item: dict[str, Any] = {
        "series": key.label,
        "version": version,
        "type_version": f"{key.primary_type}#{version}",
        "primary_type": key.primary_type,
        "trained_at": trained_at,
        "payload": json.dumps({"history": history[-HISTORY_MONTHS:], "forecast": forecast, "metrics": metrics,
                               "data_through": data_through or last_complete_month(history)}),
    }
    if key.community_area is not None:
        item["community_area"] = key.community_area
    return item


def _doc_item(series: str, version: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"series": series, "version": version, "payload": json.dumps(doc)}


def publish_version(stores: Stores, version: str, items: Iterable[dict[str, Any]]) -> None:
    """Write a candidate version's series; nothing is served from it until promoted."""
    stores.series.put_items(items)


def _parts(entries: list[dict[str, Any]], budget: int) -> list[list[dict[str, Any]]]:
    """``entries`` in order, cut into lists of at most ``budget`` bytes of JSON as _doc_item writes it."""
    parts: list[list[dict[str, Any]]] = []
    size = budget
    for entry in entries:
        cost = len(json.dumps(entry).encode()) + 2  # and ", " or the brackets
        if size + cost > budget:
            parts.append([])
            size = 2
        parts[-1].append(entry)
        size += cost
    return parts


def write_catalog(stores: Stores, version: str, keys: Iterable[SeriesKey], summary: dict[str, Any],
                  skipped: Iterable[dict[str, str]] = ()) -> None:
    """The version's types and series, its accuracy summary, and the series it has no
    model for (``{"series", "reason"}``), those in parts of their own."""
    keys = sorted(keys, key=SeriesKey.sort_key)
    skipped = sorted(skipped, key=lambda s: SeriesKey.sort_key(SeriesKey.parse(s["series"])))
    parts = _parts([{"series": s["series"], "reason": s["reason"]} for s in skipped], SKIPPED_PART_BYTES)
    catalog = {"types": sorted({k.primary_type for k in keys}), "series": [k.label for k in keys],
               "skipped_parts": len(parts)}
    stores.series.put_items([*(_doc_item(SKIPPED, f"{version}#{n}", part) for n, part in enumerate(parts)),
                             _doc_item(SUMMARY, version, summary), _doc_item(CATALOG, version, catalog)])


def promote(stores: Stores, version: str, trained_at: str, *, replaces: str | None) -> None:
    """Serve ``version`` from now on, in place of ``replaces`` (None: the first champion):
    one conditional write, so readers see the old or the new, never a mix, and a promotion
    based on a champion that has since been replaced fails (ConflictError) instead of winning."""
    stores.series.set_champion(version, trained_at, replaces)


def champion_version(stores: Stores) -> str:
    pointer = stores.series.champion()
    if not pointer:
        raise NotFoundError("no model has been trained yet: run a retrain first")
    return str(pointer["model_version"])


def version_catalog(stores: Stores, version: str) -> dict[str, Any]:
    """The types and series of model ``version`` (empty lists for an unknown version)."""
    item = stores.series.get(CATALOG, version)
    return json.loads(item["payload"]) if item else {"types": [], "series": []}


LIVE_SUFFIX = "#live"  # version suffix of the items holding a series' live accuracy


def skipped_series(stores: Stores, version: str, catalog: dict[str, Any]) -> list[dict[str, str]]:
    """The series of ``version`` with no model, and why (empty for a version written before
    the catalog listed them)."""
    skipped: list[dict[str, str]] = []
    for n in range(int(catalog.get("skipped_parts", 0))):
        item = stores.series.get(SKIPPED, f"{version}#{n}")
        if item is None:  # written with the catalog item: missing only if deleted by hand
            raise RuntimeError(f"part {n} of the skipped series of {version} is missing")
        skipped.extend(json.loads(item["payload"]))
    return skipped


def catalog(stores: Stores) -> dict[str, Any]:
    """The serving version's types and series, and every series it has no forecast for, with why."""
    version = champion_version(stores)
    found = version_catalog(stores, version)
    return {"model_version": version, "types": found["types"], "series": found["series"],
            "skipped": skipped_series(stores, version, found)}


def boundaries(stores: Stores) -> str:
    body = stores.blobs.get_bytes(BOUNDARIES_KEY)
    if body is None:
        raise NotFoundError("community area boundaries have not been ingested yet")
    return body.decode()


def _resolve_type(crime_type: str, catalog: dict[str, Any]) -> str:
    try:
        name = normalise_type(crime_type)
    except InvalidInputError as exc:
        raise NotFoundError(str(exc)) from None
    if name not in catalog["types"]:
        raise NotFoundError(f"unknown crime type {crime_type!r}", nearest(name, catalog["types"]))
    return name


def _resolve_area(community_area: str | None) -> int | None:
    try:
        return parse_area(community_area)
    except InvalidInputError as exc:
        raise NotFoundError(str(exc)) from None


def _series_payload(stores: Stores, key: SeriesKey, version: str, catalog: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    item = stores.series.get(key.label, version)
    if not item:
        same_type = [s for s in catalog["series"] if s.endswith(f":{key.primary_type}")]
        raise NotFoundError(f"no forecast for {key.label} (too little history to model)", nearest(key.label, same_type))
    return item, json.loads(item["payload"])


def prediction(stores: Stores, community_area: str | None, crime_type: str, months: int) -> dict[str, Any]:
    """History, forecast and accuracy of one series, from the serving version."""
    if not 1 <= months <= MAX_MONTHS:
        raise OutOfRangeError(f"months must be between 1 and {MAX_MONTHS}, got {months}")
    version = champion_version(stores)
    catalog = version_catalog(stores, version)
    key = SeriesKey(_resolve_area(community_area), _resolve_type(crime_type, catalog))
    item, payload = _series_payload(stores, key, version, catalog)
    return {
        "community_area": key.community_area,
        "area_name": CITY.title() if key.community_area is None else area_name(key.community_area),
        "crime_type": key.primary_type,
        "model_version": version,
        "trained_at": item["trained_at"],
        "data_through": data_through(payload),
        "metrics": payload["metrics"],
        "history": payload["history"],
        "forecast": payload["forecast"][:months],
    }


def area_map(stores: Stores, crime_type: str, month: str | None = None) -> dict[str, Any]:
    """Every area's forecast for one month, highest first (rank 1)."""
    version = champion_version(stores)
    name = _resolve_type(crime_type, version_catalog(stores, version))
    rows = []
    for item in stores.series.query_type_version(f"{name}#{version}"):
        if "community_area" not in item:
            continue
        payload = json.loads(item["payload"])
        forecast = payload["forecast"]
        chosen = forecast[0] if month is None else next((f for f in forecast if f["month"] == month), None)
        if chosen is None:
            available = [f["month"] for f in forecast]
            raise OutOfRangeError(f"month {month} is not forecast; forecast months run {available[0]}..{available[-1]}")
        area = int(item["community_area"])
        rows.append({"community_area": area, "name": area_name(area), "month": chosen["month"],
                     "yhat": chosen["yhat"], "yhat_lower": chosen["yhat_lower"], "yhat_upper": chosen["yhat_upper"],
                     "data_through": data_through(payload)})
    rows.sort(key=lambda r: -r["yhat"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    chosen_month = rows[0].pop("month") if rows else month
    for row in rows:
        row.pop("month", None)
    through = sorted({r["data_through"] for r in rows if r["data_through"]})
    return {"crime_type": name, "month": chosen_month, "model_version": version,
            "data_through": through[0] if through else None, "areas": rows}


def data_through(payload: dict[str, Any]) -> str | None:
    """A stored forecast's last complete month (older items lack it: their last complete history month)."""
    return payload.get("data_through") or last_complete_month(payload.get("history", []))


def last_complete_month(history: list[dict[str, Any]]) -> str | None:
    complete = [row["month"] for row in history if not row.get("partial")]
    return complete[-1] if complete else None


def accuracy(stores: Stores, community_area: str | None = None, crime_type: str | None = None,
               version: str | None = None) -> dict[str, Any]:
    """One series' backtest (next to seasonal naive's) and live accuracy when a series is
    named, else the summary over every series; of the champion unless ``version`` is given."""
    version = version or champion_version(stores)
    if crime_type is None and community_area is None:
        item = stores.series.get(SUMMARY, version)
        if not item:
            raise NotFoundError(f"no model version {version!r}")
        return {"model_version": version, "summary": json.loads(item["payload"])}
    catalog = version_catalog(stores, version)
    key = SeriesKey(_resolve_area(community_area), _resolve_type(crime_type or ALL_TYPES, catalog))
    item, payload = _series_payload(stores, key, version, catalog)
    live = stores.series.get(key.label, version + LIVE_SUFFIX)
    return {"model_version": version, "series": key.label, "community_area": key.community_area,
            "crime_type": key.primary_type, "trained_at": item["trained_at"], "data_through": data_through(payload),
            "metrics": payload["metrics"],
            "live": json.loads(live["payload"]) if live else None}
