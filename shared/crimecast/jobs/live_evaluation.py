"""Live accuracy: how the champion's forecasts did on the months that have since arrived.

Run after each ingest (and on demand) by :mod:`crimecast.jobs.pipeline`. Only complete
months count. The result is recorded per series (an item ``<version>#live`` beside the
forecast) and per run. When the drift alarm (:mod:`crimecast.domain.drift`) finds series
whose newest months moved beyond their bands more than chance allows, the result says which
and how far, in plain words; the pipeline then starts a retrain.
"""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

from crimecast.adapters.series_store import DRIFT_ERRORS, LIVE_SUMMARY, UNUSUAL
from crimecast.adapters.stores import Stores
from crimecast.domain import drift, metrics
from crimecast.domain.keys import SeriesKey
from crimecast.domain.months import month_range
from crimecast.jobs import forecasts
from crimecast.settings import LiveThreshold


def live_accuracy(payload: dict[str, Any], observed: dict[str, float]) -> dict[str, Any] | None:
    """Scores of one series' forecast on the complete months observed since (month -> count);
    None before any arrived. A month absent from ``observed``, or NaN there (a gap between
    sources), is unknown: never scored, and left out of the scale's lag-12 pairs."""
    known = {m: v for m, v in observed.items() if v == v}
    forecast = {f["month"]: f for f in payload["forecast"]}
    arrived = [(m, v) for m, v in known.items() if m in forecast]
    if not arrived:
        return None
    first = min(forecast)
    before = sorted(m for m in known if m < first)
    history = [known.get(m, math.nan) for m in month_range(before[0], before[-1])] if before else []
    actual = [v for _, v in arrived]
    rows = [forecast[m] for m, _ in arrived]
    scores = metrics.score(actual, [r["yhat"] for r in rows], history,
                           [r["yhat_lower"] for r in rows], [r["yhat_upper"] for r in rows])
    backtest = payload["metrics"].get("model", {}).get("mase")
    return {"months": [m for m, _ in arrived], **{k: (None if v != v else v) for k, v in scores.items()},  # NaN -> None
            "backtest_mase": backtest}


def score_champion(stores: Stores, version: str, counts: Any, threshold: LiveThreshold,
                   run_id: str) -> tuple[dict[str, Any], str | None]:
    """Score model ``version`` (the champion) on the months in ``counts`` since it was trained,
    record it per series, and let the drift alarm judge every series' newest months; the run's
    detail (with the alarm's evidence), and why to retrain when the alarm sounds (None otherwise)."""
    catalog = forecasts.version_catalog(stores, version)
    known = set(counts.keys())
    results, records, errors = {}, [], {}
    for crime_type in catalog["types"]:
        for item in stores.series.query_type_version(f"{crime_type}#{version}"):
            key = SeriesKey.parse(item["series"])
            if key not in known:
                continue
            payload = json.loads(item["payload"])
            observed = {str(m): float(v) for m, v in counts.series(key).dropna().items()}  # no month of a gap
            live = live_accuracy(payload, observed)
            if live is None:
                continue
            errors[key.label] = drift.band_errors(payload["forecast"], observed)
            results[key.label] = live
            records.append({"series": key.label, "version": version + forecasts.LIVE_SUFFIX, "run_id": run_id,
                            "payload": json.dumps(live)})
    stores.series.put_items(records)
    kept = _remember_errors(stores, errors, run_id)
    newest = max((max(e) for e in errors.values() if e), default=None)
    # Only the series this evaluation scored anew: one whose data ended earlier is not judged on its old months.
    current = {label: e for label, e in kept.items() if e and max(e) == newest}
    decision = drift.decide(current, threshold.rule())
    live_mases = [r["mase"] for r in results.values() if r["mase"] is not None]
    evidence = decision["evidence"]
    detail: dict[str, Any] = {
        "version": version, "series_evaluated": len(results),
        "median_live_mase": round(statistics.median(live_mases), 4) if live_mases else None,
        "alarm": decision["alarm"], "drift": evidence,
    }
    if results:
        stores.series.put_items([{"series": LIVE_SUMMARY, "version": version, "run_id": run_id, "payload": json.dumps({
            "series_evaluated": len(results), "median_live_mase": detail["median_live_mase"], "alarm": decision["alarm"],
            "newest_month": newest, "summary": evidence["summary"], "series_moved": evidence["series_moved"],
            "unusual": sorted(drift.unusual(current, threshold.rule()))})}])
    if newest is not None:
        _record_unusual(stores, newest, current, version, threshold.rule(), run_id)
    if decision["alarm"]:
        return detail, f"drift alarm: {evidence['summary']}"
    reason = "no months to score yet" if not results else " ".join(
        filter(None, [evidence["summary"], evidence.get("quiet_because") and f"No alarm: {evidence['quiet_because']}."]))
    detail["retrain"] = {"started": False, "reason": reason}
    return detail, None


def _record_unusual(stores: Stores, month: str, current: dict[str, dict[str, float]], version: str,
                    rule: drift.DriftRule, run_id: str) -> None:
    """The month's verdict for every series judged: the unusual ones with their z, for the page and /alerts.
    A later evaluation of the same month judges the same first-published errors, so rewriting it changes nothing."""
    z = {label: e[month] for label, e in current.items() if month in e}
    found = drift.unusual_in_month(z, rule)
    stores.series.put_items([{"series": UNUSUAL, "version": month, "run_id": run_id, "payload": json.dumps({
        "month": month, "judged_with": version, "false_discovery_rate": rule.q,
        "z": {label: round(value, 2) for label, value in sorted(z.items())}, "unusual": sorted(found)},
        separators=(",", ":"))}])


def _remember_errors(stores: Stores, errors: dict[str, dict[str, float]], run_id: str) -> dict[str, dict[str, float]]:
    """Every series' standardised errors of its newest months, kept across evaluations and
    models: a month keeps the error of the forecast published before it (see drift.merge_errors)."""
    item = stores.series.get(DRIFT_ERRORS, DRIFT_ERRORS)
    kept = drift.merge_errors(json.loads(item["payload"]) if item else {}, errors)
    rounded = {label: {m: round(z, 4) for m, z in e.items()} for label, e in kept.items()}
    stores.series.put_items([{"series": DRIFT_ERRORS, "version": DRIFT_ERRORS, "run_id": run_id,
                              "payload": json.dumps(rounded, separators=(",", ":"))}])
    return kept
