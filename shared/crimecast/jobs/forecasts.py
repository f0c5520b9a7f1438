"""Precomputed forecasts and their accuracy, as the API serves them.

Pure Python on purpose: the predict Lambda imports this and the stores only, never
pandas or Prophet, so its cold start stays small. Training writes one item per series
per model version; a single pointer item names the version being served, so switching
to a new model is one atomic write.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import UTC, datetime
import json
import re
from typing import Any

from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.series_store import CATALOG, PROMOTED, SKIPPED, SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.domain import comparison
from crimecast.domain.areas import AREAS, area_name
from crimecast.domain.crime_types import ALL_TYPES, normalise_type
from crimecast.domain.errors import InvalidInputError, NotFoundError, OutOfRangeError, nearest
from crimecast.domain.keys import CITY, SeriesKey, parse_area

MAX_MONTHS = 24
HISTORY_MONTHS = 60  # observed months kept beside each forecast, for the chart
# JSON bytes of skipped series per item: at 3,000 series the whole list (~390 KB with long
# labels and reasons) would all but fill one 400 KB item, so it goes in parts of its own,
# and the catalog item, read by every /predict, stays the size of the trained series' labels.
SKIPPED_PART_BYTES = 150_000
# The read routes (predict, map, catalog, accuracy) keep the champion pointer, and the catalog
# item of that version, for this long in a warm container: a promotion made elsewhere (the
# retrain's promote step) is served by every container at most this many seconds later. A
# promotion made in this process is seen at once (the store forgets its reads on a write).
SERVING_CACHE_S = 30.0


def series_item(
    key: SeriesKey,
    version: str,
    trained_at: str,
    history: list[dict[str, Any]],
    forecast: list[dict[str, Any]],
    metrics: dict[str, Any],
    data_through: str | None = None,
    data_gaps: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The stored form of one series' forecast; the payload is JSON text (no Decimals).

    ``data_through`` is the series' last complete month: series end at different
    months (a source that stops sooner), and every reader is told which. ``data_gaps``:
    the runs of months (first, last) with no data inside the series (between two
    sources); ``history`` has no row for them.
    """
    doc: dict[str, Any] = {"history": history[-HISTORY_MONTHS:], "forecast": forecast, "metrics": metrics,
                           "data_through": data_through or last_complete_month(history)}
    gaps = [{"from": first, "to": last} for first, last in data_gaps]
    if gaps:
        doc["data_gaps"] = gaps
    item: dict[str, Any] = {
        "series": key.label,
        "version": version,
        "type_version": f"{key.primary_type}#{version}",
        "primary_type": key.primary_type,
        "trained_at": trained_at,
        "payload": json.dumps(doc),
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


def promote(stores: Stores, version: str, trained_at: str, *, replaces: str | None, by: str = "retrain",
            reason: str | None = None) -> None:
    """Serve ``version`` from now on, in place of ``replaces`` (None: the first champion):
    one conditional write, so readers see the old or the new, never a mix, and a promotion
    based on a champion that has since been replaced fails (ConflictError) instead of winning.

    First recorded as promoted (when, by whom, why): the versions ever served are the ones whose
    forecasts were issued, which is what a month is judged against (``issued_bands``)."""
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stores.series.put_items([_doc_item(PROMOTED, version, {"promoted_at": when, "by": by, "reason": reason})])
    stores.series.set_champion(version, trained_at, replaces)


def promoted_versions(stores: Stores) -> dict[str, dict[str, Any]]:
    """Every version ever served, newest version first: when, by whom and why it was last promoted."""
    return {str(item["version"]): json.loads(item["payload"]) for item in stores.series.versions(PROMOTED)}


def champion_version(stores: Stores, max_age: float = 0.0) -> str:
    """The serving version, read now (or, with ``max_age``, as read at most that long ago)."""
    pointer = stores.series.champion(max_age)
    if not pointer:
        raise NotFoundError("no model has been trained yet: run a retrain first")
    return str(pointer["model_version"])


def serving_version(stores: Stores) -> str:
    """The serving version for the read routes: the champion pointer, kept ``SERVING_CACHE_S``."""
    return champion_version(stores, SERVING_CACHE_S)


def version_catalog(stores: Stores, version: str, max_age: float = 0.0) -> dict[str, Any]:
    """The types and series of model ``version`` (empty lists for an unknown version)."""
    item = stores.series.get(CATALOG, version, max_age)
    return json.loads(item["payload"]) if item else {"types": [], "series": []}


def _serving_catalog(stores: Stores, version: str) -> dict[str, Any]:
    return version_catalog(stores, version, SERVING_CACHE_S)


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
    version = serving_version(stores)
    found = _serving_catalog(stores, version)
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
    version = serving_version(stores)
    catalog = _serving_catalog(stores, version)
    key = SeriesKey(_resolve_area(community_area), _resolve_type(crime_type, catalog))
    item, payload = _series_payload(stores, key, version, catalog)
    return {
        "community_area": key.community_area,
        "area_name": CITY.title() if key.community_area is None else area_name(key.community_area),
        "crime_type": key.primary_type,
        "model_version": version,
        "trained_at": item["trained_at"],
        "data_through": data_through(payload),
        "data_gaps": data_gaps(payload),
        "data_note": data_note(data_through(payload), data_gaps(payload)),
        "metrics": payload["metrics"],
        "history": payload["history"],
        "forecast": payload["forecast"][:months],
        "comparison": comparison.year_comparison(payload["history"], payload["forecast"], data_through(payload)),
        "unusual": unusual_months(stores, key, version, payload),
    }


def area_map(stores: Stores, crime_type: str, month: str | None = None) -> dict[str, Any]:
    """Every area's forecast for one month, highest first (rank 1): ``month``, else the newest
    first forecast month of the type's areas. Only forecasts made from data to the same month
    are ranked together (the newest such among those of ``month``): an area whose data end
    sooner (its forecast starts earlier, or does not reach ``month``) is listed under
    ``missing``, with why, never shown beside the others."""
    version = serving_version(stores)
    found = _serving_catalog(stores, version)
    name = _resolve_type(crime_type, found)
    payloads = {int(item["community_area"]): json.loads(item["payload"])
                for item in stores.series.query_type_version(f"{name}#{version}") if "community_area" in item}
    payloads = {area: payload for area, payload in payloads.items() if payload["forecast"]}
    months = {m for p in payloads.values() for m in (f["month"] for f in p["forecast"])}
    if month is None:
        month = max((p["forecast"][0]["month"] for p in payloads.values()), default=None)
    elif payloads and month not in months:
        raise OutOfRangeError(f"month {month} is not forecast; forecast months run {min(months)}..{max(months)}")
    covering = {a: p for a, p in payloads.items() if any(f["month"] == month for f in p["forecast"])}
    start = max((p["forecast"][0]["month"] for p in covering.values()), default=None)
    newest = max((data_through(p) or "" for a, p in covering.items() if p["forecast"][0]["month"] == start), default=None)
    rows, elsewhere = [], {}
    for area, payload in payloads.items():
        forecast = payload["forecast"]
        if area not in covering or forecast[0]["month"] != start:
            elsewhere[area] = (f"its data end in {data_through(payload)}, the other areas' in {newest}: its forecast "
                               f"({forecast[0]['month']}..{forecast[-1]['month']}) is not ranked with theirs")
            continue
        chosen = next(f for f in forecast if f["month"] == month)
        last_year = comparison.same_month_last_year(payload["history"], chosen["month"])
        rows.append({"community_area": area, "name": area_name(area),
                     "yhat": chosen["yhat"], "yhat_lower": chosen["yhat_lower"], "yhat_upper": chosen["yhat_upper"],
                     "last_year": last_year, "change_pct": comparison.change(chosen["yhat"], last_year)["pct"],
                     "data_through": data_through(payload), "data_gaps": data_gaps(payload)})
    rows.sort(key=lambda r: -r["yhat"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    through = sorted({r["data_through"] for r in rows if r["data_through"]})
    gaps = sorted({(g["from"], g["to"]) for r in rows for g in r["data_gaps"]})
    shown_gaps = [{"from": a, "to": b} for a, b in gaps]
    return {"crime_type": name, "month": month, "model_version": version,
            "data_through": through[0] if through else None, "data_gaps": shown_gaps,
            "data_note": data_note(through[0] if through else None, shown_gaps), "areas": rows,
            "missing": _missing_areas(stores, version, found, name, {r["community_area"] for r in rows}, elsewhere)}


def _missing_areas(stores: Stores, version: str, found: dict[str, Any], crime_type: str, shown: set[int],
                   elsewhere: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """The areas with no forecast of ``crime_type`` for the month shown, each with why (from the
    catalog's skipped series, or ``elsewhere``: a forecast of other months)."""
    reasons = {s["series"]: s["reason"] for s in skipped_series(stores, version, found) if s["series"].endswith(f":{crime_type}")}
    reasons.update({f"{area}:{crime_type}": why for area, why in (elsewhere or {}).items()})
    return [{"community_area": a.number, "name": a.name,
             "reason": reasons.get(f"{a.number}:{crime_type}", "no series of this type for this area in the data")}
            for a in AREAS if a.number not in shown]


def data_through(payload: dict[str, Any]) -> str | None:
    """A stored forecast's last complete month (older items lack it: their last complete history month)."""
    return payload.get("data_through") or last_complete_month(payload.get("history", []))


def data_gaps(payload: dict[str, Any]) -> list[dict[str, str]]:
    """The runs of months with no data inside a stored forecast's series (``{"from", "to"}``), oldest first."""
    return list(payload.get("data_gaps") or [])


def data_note(through: str | None, gaps: Iterable[dict[str, str]] = ()) -> str | None:
    """In words, how far a series' data run and where they have none: "data through December
    2024; no data 2018-11 to 2023-12"."""
    if not through:
        return None
    note = f"data through {calendar.month_name[int(through[5:7])]} {through[:4]}"
    for gap in gaps:
        note += f"; no data {gap['from']} to {gap['to']}" if gap["from"] != gap["to"] else f"; no data {gap['from']}"
    return note


def last_complete_month(history: list[dict[str, Any]]) -> str | None:
    complete = [row["month"] for row in history if not row.get("partial")]
    return complete[-1] if complete else None


def accuracy(stores: Stores, community_area: str | None = None, crime_type: str | None = None,
               version: str | None = None) -> dict[str, Any]:
    """One series' backtest (next to seasonal naive's) and live accuracy when a series is
    named, else the summary over every series; of the champion unless ``version`` is given."""
    version = version or serving_version(stores)
    if crime_type is None and community_area is None:
        item = stores.series.get(SUMMARY, version)
        if not item:
            raise NotFoundError(f"no model version {version!r}")
        return {"model_version": version, "summary": json.loads(item["payload"])}
    catalog = _serving_catalog(stores, version)
    key = SeriesKey(_resolve_area(community_area), _resolve_type(crime_type or ALL_TYPES, catalog))
    item, payload = _series_payload(stores, key, version, catalog)
    live = stores.series.get(key.label, version + LIVE_SUFFIX)
    return {"model_version": version, "series": key.label, "community_area": key.community_area,
            "crime_type": key.primary_type, "trained_at": item["trained_at"], "data_through": data_through(payload),
            "data_gaps": data_gaps(payload), "data_note": data_note(data_through(payload), data_gaps(payload)),
            "metrics": payload["metrics"],
            "live": json.loads(live["payload"]) if live else None}


# --- months outside their band ------------------------------------------------------------

MONTH_PATTERN = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
UNUSUAL_MONTHS_SHOWN = 36  # the months of history the chart marks
VERSIONS_LOOKED_BACK = 24  # served versions searched for the forecast issued before a month


def _issued_before(payload: dict[str, Any], month: str) -> dict[str, Any] | None:
    """The forecast row for ``month`` of a stored forecast made before ``month`` (its data end earlier)."""
    through = data_through(payload)
    if not through or through >= month:
        return None
    return next((f for f in payload["forecast"] if f["month"] == month), None)


def _served_versions(stores: Stores, champion: str) -> list[str]:
    """The versions whose forecasts were issued (ever promoted), newest first, the champion among them."""
    versions = set(promoted_versions(stores)) | {champion}
    return sorted(versions, reverse=True)[:VERSIONS_LOOKED_BACK]


def _verdict(count: float, band: dict[str, Any], version: str) -> dict[str, Any]:
    lower, upper = float(band["yhat_lower"]), float(band["yhat_upper"])
    return {"count": count, "yhat": band["yhat"], "yhat_lower": lower, "yhat_upper": upper,
            "direction": comparison.outside_band(count, lower, upper),
            "distance": round(comparison.band_distance(count, lower, upper), 4), "issued_by": version}


def unusual_months(stores: Stores, key: SeriesKey, version: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The complete months of the chart (the last 36) whose count fell outside the 80% band the
    newest served version forecast for them before they happened; months no served version
    forecast beforehand are not judged."""
    history = [r for r in payload["history"] if not r.get("partial")][-UNUSUAL_MONTHS_SHOWN:]
    waiting = {r["month"]: float(r["count"]) for r in history}
    found: list[dict[str, Any]] = []
    for served in _served_versions(stores, version):
        if not waiting:
            break
        item = payload if served == version else stores.series.get(key.label, served)
        if item is None:
            continue
        older = item if served == version else json.loads(item["payload"])
        for month in sorted(waiting):
            band = _issued_before(older, month)
            if band is not None:
                verdict = _verdict(waiting.pop(month), band, served)
                if verdict["direction"]:
                    found.append({"month": month, **verdict})
    return sorted(found, key=lambda r: r["month"])


def alerts(stores: Stores, crime_type: str | None = None, month: str | None = None) -> dict[str, Any]:
    """For every series of ``crime_type`` (every series when None): whether its latest complete
    month (or ``month``) fell outside the 80% band forecast for it before it happened, the
    series outside ranked furthest first.

    The band is the forecast row for that month of the newest served (promoted) version whose
    data ended before the month: what the service showed while the month was under way. A
    series no served version forecast beforehand (e.g. the only model was trained on that
    month) is counted in ``no_earlier_forecast``, not judged.
    """
    if month is not None and not MONTH_PATTERN.match(month):
        raise OutOfRangeError(f"month must be YYYY-MM, got {month!r}")
    version = serving_version(stores)
    found = _serving_catalog(stores, version)
    types = [_resolve_type(crime_type, found)] if crime_type else list(found["types"])
    served = _served_versions(stores, version)
    checked: list[dict[str, Any]] = []
    no_data = no_earlier = 0
    for name in types:
        waiting: dict[str, tuple[str, float, dict[str, Any]]] = {}
        for item in stores.series.query_type_version(f"{name}#{version}"):
            payload = json.loads(item["payload"])
            wanted = month or data_through(payload)
            count = next((float(r["count"]) for r in payload["history"] if r["month"] == wanted and not r.get("partial")), None)
            if wanted is None or count is None:
                no_data += 1
                continue
            waiting[item["series"]] = (wanted, count, item)
        for older in served:
            if not waiting:
                break
            items = {i["series"]: i for i in stores.series.query_type_version(f"{name}#{older}")}
            for label in list(waiting):
                if label not in items:
                    continue
                wanted, count, item = waiting[label]
                band = _issued_before(json.loads(items[label]["payload"]), wanted)
                if band is None:
                    continue
                del waiting[label]
                key = SeriesKey.parse(label)
                checked.append({"series": label, "community_area": key.community_area,
                                "area_name": CITY.title() if key.community_area is None else area_name(key.community_area),
                                "crime_type": key.primary_type, "month": wanted, **_verdict(count, band, older)})
        no_earlier += len(waiting)
    ranked = comparison.rank_unusual(checked)
    return {"crime_type": types[0] if crime_type else None, "month": month, "model_version": version,
            "months": sorted({r["month"] for r in checked}), "band_level": comparison.BAND_LEVEL,
            "note": comparison.CHANCE_NOTE, "series_checked": len(checked),
            "expected_by_chance": round(len(checked) * (1 - comparison.BAND_LEVEL), 1),
            "above": sum(r["direction"] == "above" for r in ranked), "below": sum(r["direction"] == "below" for r in ranked),
            "no_earlier_forecast": no_earlier, "no_data": no_data, "alerts": ranked}


# --- CSV ------------------------------------------------------------------------------------

PREDICTION_CSV = ("month", "reported", "partial", "forecast", "lower", "upper", "model_version", "data_through", "no_data")
MAP_CSV = ("community_area", "name", "month", "expected", "lower", "upper", "rank", "same_month_last_year",
           "change_pct", "data_through", "no_data", "model_version", "no_forecast_reason")


def _no_data(gaps: Iterable[dict[str, str]]) -> str | None:
    """The runs of months with no data, as one CSV cell ("2018-11 to 2023-12"), None when there are none."""
    text = "; ".join(f"{g['from']} to {g['to']}" for g in gaps)
    return text or None


def prediction_csv(answer: dict[str, Any]) -> str:
    """A /predict answer as CSV: one row per month, history then forecast (a partial month has both)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in answer["history"]:
        rows[r["month"]] = {"month": r["month"], "reported": r["count"], "partial": bool(r.get("partial"))}
    for f in answer["forecast"]:
        rows.setdefault(f["month"], {"month": f["month"]}).update(
            forecast=round(f["yhat"], 2), lower=round(f["yhat_lower"], 2), upper=round(f["yhat_upper"], 2))
    shared = {"model_version": answer["model_version"], "data_through": answer["data_through"],
              "no_data": _no_data(answer.get("data_gaps", []))}
    return comparison.to_csv(PREDICTION_CSV, ({**rows[m], **shared} for m in sorted(rows)))


def map_csv(answer: dict[str, Any]) -> str:
    """A /predict/map answer as CSV: every area, those without a forecast with why."""
    rows = [{"community_area": r["community_area"], "name": r["name"], "month": answer["month"], "expected": round(r["yhat"], 2),
             "lower": round(r["yhat_lower"], 2), "upper": round(r["yhat_upper"], 2), "rank": r["rank"],
             "same_month_last_year": r.get("last_year"), "change_pct": r.get("change_pct"), "data_through": r["data_through"],
             "no_data": _no_data(r.get("data_gaps", [])), "model_version": answer["model_version"]} for r in answer["areas"]]
    rows += [{"community_area": m["community_area"], "name": m["name"], "month": answer["month"],
              "model_version": answer["model_version"], "no_forecast_reason": m["reason"]} for m in answer.get("missing", [])]
    return comparison.to_csv(MAP_CSV, sorted(rows, key=lambda r: r["community_area"]))
