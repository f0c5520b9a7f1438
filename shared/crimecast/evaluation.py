"""Live accuracy: how the champion's forecasts did on the months that have since arrived.

Run after each ingest (and on demand). Only complete months count. The result is
recorded per series (an item ``<version>#live`` beside the forecast) and per run. When
too many series do clearly worse live than in their backtest, a retrain starts, and the
run records why.
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import os
import statistics
from typing import Any

from . import forecasts, metrics, runs
from .keys import SeriesKey
from .storage import Storage

LIVE_SUFFIX = forecasts.LIVE_SUFFIX



@dataclass(frozen=True)
class LiveThreshold:
    """Retrain when live MASE exceeds the backtest MASE by ``mase_ratio`` on more than
    ``share`` of the series (CRIMECAST_LIVE_MASE_RATIO, CRIMECAST_LIVE_DEGRADED_SHARE)."""

    mase_ratio: float = 1.25
    share: float = 0.2

    @classmethod
    def from_env(cls) -> LiveThreshold:
        return cls(float(os.environ.get("CRIMECAST_LIVE_MASE_RATIO", cls.mase_ratio)),
                   float(os.environ.get("CRIMECAST_LIVE_DEGRADED_SHARE", cls.share)))


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


def evaluate_live(storage: Storage, counts: Any = None, threshold: LiveThreshold | None = None,
                  trigger: str = "api") -> dict[str, Any]:
    """Score the champion on what has arrived, record it, and start a retrain if it degraded."""
    from .lifecycle import load_counts, request_retrain

    threshold = threshold or LiveThreshold.from_env()
    run = runs.start_run(storage, "evaluate", {"trigger": trigger})
    counts = counts if counts is not None else load_counts(storage)
    version = forecasts.champion_version(storage)
    catalog = forecasts.catalog(storage)
    known = set(counts.keys())
    results, records = {}, []
    for crime_type in catalog["types"]:
        for item in storage.query_type_version(f"{crime_type}#{version}"):
            key = SeriesKey.parse(item["series"])
            if key not in known:
                continue
            live = live_accuracy(json.loads(item["payload"]), counts.series(key))
            if live is None:
                continue
            results[key.label] = live
            records.append({"series": key.label, "version": version + LIVE_SUFFIX, "run_id": run["run_id"],
                            "payload": json.dumps(live)})
    storage.put_series_items(records)
    degraded = [s for s, r in results.items()
                if r["mase"] is not None and r["backtest_mase"] and r["mase"] > threshold.mase_ratio * r["backtest_mase"]]
    share = len(degraded) / len(results) if results else 0.0
    live_mases = [r["mase"] for r in results.values() if r["mase"] is not None]
    detail: dict[str, Any] = {
        "version": version, "series_evaluated": len(results), "series_degraded": len(degraded),
        "share_degraded": round(share, 4), "median_live_mase": round(statistics.median(live_mases), 4) if live_mases else None,
        "degraded_examples": degraded[:10], "threshold": {"mase_ratio": threshold.mase_ratio, "share": threshold.share},
    }
    if results and share > threshold.share:
        reason = (f"live MASE above {threshold.mase_ratio:g}x the backtest on {share:.0%} of series "
                  f"(more than {threshold.share:.0%})")
        retrain_run = request_retrain(storage, trigger="evaluate", reason=reason)
        detail["retrain"] = {"started": True, "reason": reason, "run_id": retrain_run["run_id"]}
    else:
        detail["retrain"] = {"started": False, "reason": "no months to score yet" if not results else
                             f"{share:.0%} of series degraded, threshold {threshold.share:.0%}"}
    return runs.update_run(storage, run["run_id"], "succeeded", detail)
