"""Live accuracy: how the champion's forecasts did on the months that have since arrived.

Run after each ingest (and on demand) by :mod:`crimecast.jobs.pipeline`. Only complete
months count. The result is recorded per series (an item ``<version>#live`` beside the
forecast) and per run. When too many series do clearly worse live than in their
backtest, the result says so and why; the pipeline then starts a retrain.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from crimecast.adapters.series_store import LIVE_SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.domain import metrics
from crimecast.domain.keys import SeriesKey
from crimecast.jobs import forecasts
from crimecast.settings import LiveThreshold


def live_accuracy(payload: dict[str, Any], observed: Any) -> dict[str, Any] | None:
    """Scores of one series' forecast on the complete months observed since; None before any arrived."""
    forecast = {f["month"]: f for f in payload["forecast"]}
    arrived = [(str(m), float(v)) for m, v in observed.items() if str(m) in forecast]
    if not arrived:
        return None
    first = min(forecast)
    history = [float(v) for m, v in observed.items() if str(m) < first]
    actual = [v for _, v in arrived]
    rows = [forecast[m] for m, _ in arrived]
    scores = metrics.score(actual, [r["yhat"] for r in rows], history,
                           [r["yhat_lower"] for r in rows], [r["yhat_upper"] for r in rows])
    backtest = payload["metrics"].get("model", {}).get("mase")
    return {"months": [m for m, _ in arrived], **{k: (None if v != v else v) for k, v in scores.items()},  # NaN -> None
            "backtest_mase": backtest}


def score_champion(stores: Stores, version: str, counts: Any, threshold: LiveThreshold,
                   run_id: str) -> tuple[dict[str, Any], str | None]:
    """Score model ``version`` (the champion) on the months in ``counts`` since it was trained
    and record it per series; the run's detail, and why to retrain when it degraded past
    ``threshold`` (None otherwise)."""
    catalog = forecasts.version_catalog(stores, version)
    known = set(counts.keys())
    results, records = {}, []
    for crime_type in catalog["types"]:
        for item in stores.series.query_type_version(f"{crime_type}#{version}"):
            key = SeriesKey.parse(item["series"])
            if key not in known:
                continue
            live = live_accuracy(json.loads(item["payload"]), counts.series(key))
            if live is None:
                continue
            results[key.label] = live
            records.append({"series": key.label, "version": version + forecasts.LIVE_SUFFIX, "run_id": run_id,
                            "payload": json.dumps(live)})
    stores.series.put_items(records)
    degraded = [s for s, r in results.items()
                if r["mase"] is not None and r["backtest_mase"] and r["mase"] > threshold.mase_ratio * r["backtest_mase"]]
    share = len(degraded) / len(results) if results else 0.0
    live_mases = [r["mase"] for r in results.values() if r["mase"] is not None]
    detail: dict[str, Any] = {
        "version": version, "series_evaluated": len(results), "series_degraded": len(degraded),
        "share_degraded": round(share, 4), "median_live_mase": round(statistics.median(live_mases), 4) if live_mases else None,
        "degraded_examples": degraded[:10], "threshold": {"mase_ratio": threshold.mase_ratio, "share": threshold.share},
    }
    if results:
        stores.series.put_items([{"series": LIVE_SUMMARY, "version": version, "run_id": run_id,
                                  "payload": json.dumps({k: detail[k] for k in ("series_evaluated", "series_degraded",
                                                                               "share_degraded", "median_live_mase")})}])
    if results and share > threshold.share:
        return detail, (f"live MASE above {threshold.mase_ratio:g}x the backtest on {share:.0%} of series "
                        f"(more than {threshold.share:.0%})")
    detail["retrain"] = {"started": False, "reason": "no months to score yet" if not results else
                         f"{share:.0%} of series degraded, threshold {threshold.share:.0%}"}
    return detail, None
