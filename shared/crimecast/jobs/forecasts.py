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
import math
from typing import Any

from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.series_store import CATALOG, PROMOTED, SKIPPED, SUMMARY, UNUSUAL
from crimecast.adapters.stores import Stores
from crimecast.domain import comparison, drift
from crimecast.domain.areas import AREAS, area_name
from crimecast.domain.crime_types import ALL_TYPES, normalise_type
from crimecast.domain.errors import InvalidInputError, NotFoundError, OutOfRangeError, nearest
from crimecast.domain.keys import CITY, SeriesKey, parse_area
from crimecast.domain.months import complete_counts, parse_month

MAX_MONTHS = 24
HISTORY_MONTHS = 60  # observed months kept beside each forecast, for the chart
# JSON bytes of skipped series per item: at 3,000 series the whole list (~390 KB with long
# labels and reasons) would all but fill one 400 KB item, so it goes in parts of its own,
# and the catalog item, read by every /predict, stays the size of the trained series' labels.
SKIPPED_PART_BYTES = 150_000
# The read routes (predict, map, catalog, accuracy, alerts) keep the champion pointer, the catalog
# item of that version, the versions ever served and the live evaluation's verdicts for this long
# in a warm container: a promotion or an evaluation made elsewhere (the retrain's promote step,
# the ingest's evaluation) is served by every container at most this many seconds later. One
# made in this process is seen at once (the store forgets its reads on a write).
SERVING_CACHE_S = 30.0
# A served version's series items never change (a candidate's are reconciled before its promotion;
# live accuracy and verdicts are items of their own): the read routes keep each one they read for
# good, as long as the store's bounded cache holds it.
SERVED_ITEM_KEPT_S = math.inf


def served_row(month: str, yhat: float, lower: float, upper: float) -> dict[str, Any]:
    """A forecast month as stored and served: 2 decimals, the band rounded inwards (the lower bound
    up, the upper down), so a count is inside the served band exactly when it is inside the
    model's: a lower bound of 0.004 is served as 0.01, not 0, and a month with no report stays
    outside it. The point stays within its band (a band narrower than a cent keeps the point)."""
    point = round(float(yhat), 2)
    return {"month": month, "yhat": point,
            "yhat_lower": min(math.ceil(round(float(lower) * 100, 6)) / 100, point),
            "yhat_upper": max(math.floor(round(float(upper) * 100, 6)) / 100, point)}


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
    """Write a candidate version's series, each forecast as served (:func:`served_item`); nothing
    is served from it until promoted."""
    stores.series.put_items(served_item(item) for item in items)


def served_item(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with its forecast rounded as served (:func:`served_row`). Training and reconciliation
    keep the model's numbers whole until here, so a forecast is rounded once: reconciling rounded
    forecasts and rounding again moved a point by a cent (a cent is 4% of a month's error on a
    series that rarely sees a report). Rounding a served forecast again changes nothing."""
    payload = json.loads(item["payload"])
    if not payload.get("forecast"):
        return item
    payload["forecast"] = [{**row, **served_row(row["month"], row["yhat"], row["yhat_lower"], row["yhat_upper"])}
                           for row in payload["forecast"]]
    return {**item, "payload": json.dumps(payload)}


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
            reason: str | None = None, run_id: str | None = None) -> None:
    """Serve ``version`` from now on, in place of ``replaces`` (None: the first champion):
    one conditional write, so readers see the old or the new, never a mix, and a promotion
    based on a champion that has since been replaced fails (ConflictError) instead of winning.

    The versions ever served are the ones whose forecasts were issued, which is what a month is
    judged against (``issued_bands``): each keeps a record of its promotion (when, by whom, why,
    by which run). The switch carries it on the pointer, so a version is recorded as served
    exactly when it is; it is then written beside the version's items, where it stays once the
    pointer moves on. A crash between the two leaves it on the pointer alone, until the run's
    retry writes it (``write_promotion_record``) or, at the latest, the next promotion does.
    """
    record = {"promoted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "by": by, "reason": reason,
              **({"run_id": run_id} if run_id else {})}
    before = stores.series.champion() if replaces is not None else None
    stores.series.set_champion(version, trained_at, replaces, record)
    stores.series.put_items([_doc_item(PROMOTED, version, record)])
    if before is not None and before.get("model_version") == replaces:
        _keep_record(stores, replaces, before)


def _pointer_record(pointer: dict[str, Any] | None) -> dict[str, Any] | None:
    return json.loads(pointer["promotion"]) if pointer and pointer.get("promotion") else None


def _keep_record(stores: Stores, version: str, pointer: dict[str, Any]) -> None:
    """The promotion record ``pointer`` carried for ``version``, written if its run never wrote it."""
    record = _pointer_record(pointer)
    stored = stores.series.get(PROMOTED, version)
    if record is not None and (stored is None or json.loads(stored["payload"]) != record):
        stores.series.put_items([_doc_item(PROMOTED, version, record)])


def write_promotion_record(stores: Stores, version: str) -> None:
    """Write the record of ``version``'s promotion the pointer carries, if its run died before
    writing it (the run's retry, or its workflow's Catch, calls this)."""
    pointer = stores.series.champion()
    if pointer is not None and pointer.get("model_version") == version:
        _keep_record(stores, version, pointer)


def promotion_record(stores: Stores, version: str) -> dict[str, Any] | None:
    """When, by whom, why and by which run ``version`` was last promoted (None: never): the
    pointer's record while it serves, else the one written beside it."""
    pointer = stores.series.champion()
    if pointer is not None and pointer.get("model_version") == version and pointer.get("promotion"):
        return _pointer_record(pointer)
    item = stores.series.get(PROMOTED, version)
    return json.loads(item["payload"]) if item else None


def promoted_by_run(stores: Stores, version: str, run_id: str) -> bool:
    """Whether run ``run_id`` has already made ``version`` the champion (a step or request retried
    after its switch): the version's latest promotion record names the run."""
    return (promotion_record(stores, version) or {}).get("run_id") == run_id


def promoted_versions(stores: Stores, max_age: float = 0.0) -> dict[str, dict[str, Any]]:
    """Every version ever served, newest version first: when, by whom and why it was last promoted
    (with ``max_age``: as this process read them at most that many seconds ago)."""
    found = {str(item["version"]): json.loads(item["payload"]) for item in stores.series.versions(PROMOTED, max_age)}
    pointer = stores.series.champion(max_age)
    serving = _pointer_record(pointer)
    if pointer is not None and serving is not None:  # the latest, written beside it or not yet
        found[str(pointer["model_version"])] = serving
    return dict(sorted(found.items(), reverse=True))


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


def _series_payload(stores: Stores, key: SeriesKey, version: str, catalog: dict[str, Any],
                    max_age: float = 0.0) -> tuple[dict[str, Any], dict]:
    item = stores.series.get(key.label, version, max_age)
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
    item, payload = _series_payload(stores, key, version, catalog, SERVED_ITEM_KEPT_S)
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
    """Every area's forecast for one month, highest first (rank 1): ``month`` (a malformed month
    is a 400, one not forecast a 422), else the newest first forecast month of the type's areas.
    Only forecasts made from data to the same month are ranked together (the newest such among
    those of ``month``): an area whose data end sooner (its forecast starts earlier, or does not
    reach ``month``) is listed under ``missing``, with why, never shown beside the others."""
    month = parse_month(month) if month is not None else None
    version = serving_version(stores)
    found = _serving_catalog(stores, version)
    name = _resolve_type(crime_type, found)
    payloads = {int(item["community_area"]): json.loads(item["payload"])
                for item in stores.series.query_type_version(f"{name}#{version}") if "community_area" in item}
    payloads = {area: payload for area, payload in payloads.items() if payload["forecast"]}
    month, rows, elsewhere = rank_areas(payloads, month)
    through = sorted({r["data_through"] for r in rows if r["data_through"]})
    gaps = sorted({(g["from"], g["to"]) for r in rows for g in r["data_gaps"]})
    shown_gaps = [{"from": a, "to": b} for a, b in gaps]
    return {"crime_type": name, "month": month, "model_version": version,
            "data_through": through[0] if through else None, "data_gaps": shown_gaps,
            "data_note": data_note(through[0] if through else None, shown_gaps), "areas": rows,
            "missing": _missing_areas(stores, version, found, name, {r["community_area"] for r in rows}, elsewhere)}


def rank_areas(payloads: dict[int, dict[str, Any]], month: str | None) -> tuple[str | None, list[dict[str, Any]], dict[int, str]]:
    """The areas' forecasts of ``month`` (else the newest first forecast month), highest first,
    each with its rank: only forecasts made from data to the same month are ranked together;
    the others are returned apart with why. A month no area forecasts is a 422 (OutOfRangeError)."""
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
    return month, rows, elsewhere


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
    return max(complete_counts(history), default=None)


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

UNUSUAL_MONTHS_SHOWN = 36  # the months of history the chart marks
VERSIONS_LOOKED_BACK = 24  # served versions searched for the forecast issued before a month


def _issued_before(payload: dict[str, Any], month: str) -> dict[str, Any] | None:
    """The forecast row for ``month`` of a stored forecast made before ``month`` (its data end earlier)."""
    through = data_through(payload)
    if not through or through >= month:
        return None
    return next((f for f in payload["forecast"] if f["month"] == month), None)


def _served_versions(stores: Stores, champion: str) -> list[str]:
    """The versions whose forecasts were issued (ever promoted), newest first, the champion among
    them (as read at most ``SERVING_CACHE_S`` ago, with the pointer that names it)."""
    versions = set(promoted_versions(stores, SERVING_CACHE_S)) | {champion}
    return sorted(versions, reverse=True)[:VERSIONS_LOOKED_BACK]


def _verdict(count: float, band: dict[str, Any], version: str) -> dict[str, Any]:
    lower, upper = float(band["yhat_lower"]), float(band["yhat_upper"])
    return {"count": count, "yhat": band["yhat"], "yhat_lower": lower, "yhat_upper": upper,
            "direction": comparison.outside_band(count, lower, upper),
            "distance": round(comparison.band_distance(count, lower, upper), 4), "issued_by": version}


def judged_months(stores: Stores, max_age: float = 0.0) -> dict[str, dict[str, Any]]:
    """month -> the live evaluation's verdict on it: every series judged (``z``) and the unusual
    ones (``unusual``, by :func:`crimecast.domain.drift.unusual_in_month`); with ``max_age``, as
    this process read them at most that many seconds ago."""
    return {item["version"]: json.loads(item["payload"]) for item in stores.series.versions(UNUSUAL, max_age)}


def _band_issued_before(stores: Stores, label: str, month: str, served: list[str],
                        current: tuple[str, dict[str, Any]] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The newest served version's forecast row for ``month`` issued before it, and that version."""
    for older in served:
        if current is not None and older == current[0]:
            payload = current[1]
        else:
            item = stores.series.get(label, older, SERVED_ITEM_KEPT_S)  # served: ``older`` is a promoted version
            if item is None:
                continue
            payload = json.loads(item["payload"])
        band = _issued_before(payload, month)
        if band is not None:
            return older, band
    return None


def unusual_months(stores: Stores, key: SeriesKey, version: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The complete months of the chart (the last 36) the live evaluation found unusual for this
    series: outside the 80% band forecast before them, by more than chance across the city's
    series explains (the drift alarm's test). Months it has not judged are not marked."""
    judged = judged_months(stores, SERVING_CACHE_S)
    history = list(complete_counts(payload["history"]).items())[-UNUSUAL_MONTHS_SHOWN:]
    served = _served_versions(stores, version)
    found: list[dict[str, Any]] = []
    for month, count in history:
        verdict = judged.get(month, {})
        if key.label not in verdict.get("unusual", ()):
            continue
        issued = _band_issued_before(stores, key.label, month, served, (version, payload))
        if issued is not None:
            found.append({"month": month, "z": verdict["z"].get(key.label), **_verdict(count, issued[1], issued[0])})
    return found


def alerts(stores: Stores, crime_type: str | None = None, month: str | None = None) -> dict[str, Any]:
    """For every series of ``crime_type`` (every series when None): whether the live evaluation
    found its latest complete month (or ``month``) unusual, the unusual ones ranked furthest first.

    Unusual is the drift alarm's test on that month (:func:`crimecast.domain.drift.unusual_in_month`):
    outside the 80% band forecast before the month, by more than chance across every series judged
    explains. The band shown is that forecast's: the newest served version whose data ended before
    the month. A series the live evaluation has not judged in that month (no forecast was issued
    before it, or no evaluation has run since it arrived) is counted in ``no_earlier_forecast``.
    """
    month = parse_month(month) if month is not None else None
    version = serving_version(stores)
    found = _serving_catalog(stores, version)
    types = [_resolve_type(crime_type, found)] if crime_type else list(found["types"])
    served = _served_versions(stores, version)
    judged = judged_months(stores, SERVING_CACHE_S)
    unusual: list[dict[str, Any]] = []
    months: set[str] = set()
    checked = outside = no_data = no_earlier = 0
    for name in types:
        for item in stores.series.query_type_version(f"{name}#{version}"):
            payload = json.loads(item["payload"])
            wanted = month or data_through(payload)
            count = complete_counts(payload["history"]).get(wanted) if wanted else None
            if wanted is None or count is None:
                no_data += 1
                continue
            label = item["series"]
            verdict = judged.get(wanted, {})
            if label not in verdict.get("z", {}):
                no_earlier += 1
                continue
            checked += 1
            months.add(wanted)
            outside += abs(verdict["z"][label]) > drift.BAND_Z
            if label not in verdict["unusual"]:
                continue
            issued = _band_issued_before(stores, label, wanted, served, (version, payload))
            if issued is None:
                continue
            key = SeriesKey.parse(label)
            unusual.append({"series": label, "community_area": key.community_area,
                            "area_name": CITY.title() if key.community_area is None else area_name(key.community_area),
                            "crime_type": key.primary_type, "month": wanted, "z": verdict["z"][label],
                            **_verdict(count, issued[1], issued[0])})
    ranked = comparison.rank_unusual(unusual)
    q = max((judged[m].get("false_discovery_rate", 0.0) for m in months), default=None)
    return {"crime_type": types[0] if crime_type else None, "month": month, "model_version": version,
            "months": sorted(months), "band_level": comparison.BAND_LEVEL, "note": comparison.UNUSUAL_NOTE,
            "series_checked": checked, "outside_band": outside,
            "expected_by_chance": round(checked * (1 - comparison.BAND_LEVEL), 1), "false_discovery_rate": q,
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
