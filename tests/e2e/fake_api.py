"""A fake crimecast API for developing and testing the web UI (standard library and the
pure-Python ``crimecast.domain`` modules areas, crime_types, keys and months, and
``crimecast.tools.data``; no AWS, no pandas).

It serves ``web/`` at "/" and answers the API's routes with canned but realistic data, in
the same shapes and error formats as the real service:

- history comes from the city's real monthly counts in ``$CRIMECAST_DATA_DIR`` (default
  ../shared/data beside the repository) when they are there, and is made up otherwise; area x type series are
  derived from the area totals and the citywide type shares;
- forecasts are a seasonal profile with a widening band, and the accuracy metrics are a real
  12-month backtest of that profile, of seasonal naive and of a trend model standing in for
  the seed's Prophet;
- the map reads ``community_areas.geojson`` when present, else draws a grid of squares;
- every answer carries the security headers (``crimecast.security_headers``), the CSP included,
  as the local stack and CloudFront send them, so the browser tests run under the policy.

Its routes (``ROUTES``) and answers are checked against the API's OpenAPI document, in the pytest
suite (tests/infra/test_fake_api_contract.py): a route the API does not have, a status it does not
document or a body that does not match its schema fails there, named.

Test hooks: ``POST /__expire`` expires every token issued so far (``?username=`` for one
user's), ``POST /__reset`` restores the initial users, runs and model version. Environment:
``FAKE_TOKEN_TTL`` (seconds, default 3600), ``FAKE_RUN_SECONDS`` (how long a run takes,
default 4), ``FAKE_LATENCY_MS`` (delay on every API answer, default 0).

    python tests/e2e/fake_api.py --port 8080     # then open http://127.0.0.1:8080/
"""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import math
import mimetypes
import os
from pathlib import Path
import random
import re
import secrets
import sys
import threading
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "shared"))  # run as a script, from any interpreter
from crimecast.domain import comparison, drift, passwords  # noqa: E402
from crimecast.domain.areas import AREAS  # noqa: E402 - after the path it is found on
from crimecast.domain.crime_types import RENAMED_TYPES  # noqa: E402
from crimecast.domain.errors import InvalidInputError, OutOfRangeError  # noqa: E402
from crimecast.domain.keys import parse_area as domain_parse_area  # noqa: E402
from crimecast.domain.months import add_months, month_range, parse_month  # noqa: E402
from crimecast.jobs.forecasts import rank_areas  # noqa: E402
from crimecast.security_headers import security_headers  # noqa: E402
from crimecast.tools.data import default_data_dir  # noqa: E402

WEB_DIR = HERE.parent.parent / "web"
DATA_DIR = default_data_dir()
SECURITY_HEADERS = security_headers()

TOKEN_TTL = int(os.environ.get("FAKE_TOKEN_TTL", "3600"))
RUN_SECONDS = float(os.environ.get("FAKE_RUN_SECONDS", "4"))
LATENCY = float(os.environ.get("FAKE_LATENCY_MS", "0")) / 1000

AREA_NAMES = tuple(area.name for area in AREAS)  # the domain's list: one source of the 77 names
HISTORY_MONTHS = 60
FORECAST_MONTHS = 24
# What the service reads as JSON (crimecast.api.bodies): application/json or a +json type.
JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9!#$&^_.-]+\+)?json")
NULL_SCORES_AREA = 9  # Edison Park: no MASE for either method (the service's answer when the past never changed year on year)
# Burglary in Austin as the area x type series are in `make demo`: the 2001-2018 history and the
# 2024 export, no data 2018-11..2023-12 between them, data through 2024-12, a forecast from 2025-01.
GAP_SERIES = (25, "BURGLARY")
GAP = {"from": "2018-11", "to": "2023-12"}


# --- data ------------------------------------------------------------------------------

def _read_counts(path: Path) -> dict[tuple[int | None, str], dict[str, int]]:
    out: dict[tuple[int | None, str], dict[str, int]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            area = int(row["community_area"]) if row["community_area"] else None
            kind = RENAMED_TYPES.get(row["primary_type"], row["primary_type"])
            series = out.setdefault((area, kind), {})
            series[row["month"]] = series.get(row["month"], 0) + int(float(row["count"]))
    return out


@cache
def raw_data() -> tuple[list[str], dict[str, dict[str, int]], dict[int, dict[str, int]]]:
    """(months, citywide counts by type, area totals), the last HISTORY_MONTHS months."""
    city_file = DATA_DIR / "citywide_monthly_by_type_2001_2026.csv"
    area_file = DATA_DIR / "area_monthly_all_types_2001_2026.csv"
    if city_file.is_file() and area_file.is_file():
        city, areas = _read_counts(city_file), _read_counts(area_file)
        last = max(city[(None, "ALL")])
        months = [add_months(last, -i) for i in range(HISTORY_MONTHS - 1, -1, -1)]
        by_type = {t: {m: s.get(m, 0) for m in months} for (_, t), s in city.items()
                   if sum(1 for m in months if m in s) >= 24}
        area_totals = {a: {m: s.get(m, 0) for m in months} for (a, t), s in areas.items() if a and t == "ALL"}
        if len(area_totals) == 77:
            return months, by_type, area_totals
    return _synthetic_data()


def _synthetic_data() -> tuple[list[str], dict[str, dict[str, int]], dict[int, dict[str, int]]]:
    rng = random.Random(7)
    months = [add_months("2026-05", -i) for i in range(HISTORY_MONTHS - 1, -1, -1)]
    shares = {"THEFT": 0.26, "CRIMINAL DAMAGE": 0.12, "ASSAULT": 0.10, "DECEPTIVE PRACTICE": 0.08, "BURGLARY": 0.04,
              "CRIMINAL TRESPASS": 0.03, "PUBLIC PEACE VIOLATION": 0.01, "CRIMINAL SEXUAL ASSAULT": 0.008, "STALKING": 0.003,
              "ARSON": 0.002, "PROSTITUTION": 0.001, "LIQUOR LAW VIOLATION": 0.001}

    def season(m: str) -> float:
        return 1 + 0.15 * math.sin(2 * math.pi * (int(m[5:7]) - 4) / 12)

    area_totals = {}
    for a in range(1, 78):
        base = rng.uniform(60, 900)
        area_totals[a] = {m: max(0, round(base * season(m) * rng.uniform(0.9, 1.1))) for m in months}
    all_city = {m: sum(area_totals[a][m] for a in area_totals) for m in months}
    by_type = {"ALL": all_city}
    for t, share in shares.items():
        by_type[t] = {m: round(all_city[m] * share * rng.uniform(0.92, 1.08)) for m in months}
    return months, by_type, area_totals


def _factor(area: int, crime_type: str) -> float:
    """A stable per (area, type) deviation from the citywide type share."""
    return 0.55 + (_stable_hash(f"{area}:{crime_type}") % 1000) / 1000


def _stable_hash(text: str) -> int:
    h = 2166136261
    for ch in text.encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h


@cache
def series_counts(area: int | None, crime_type: str) -> list[int] | None:
    months, by_type, area_totals = raw_data()
    if crime_type not in by_type:
        return None
    if area is None:
        return [by_type[crime_type][m] for m in months]
    totals = area_totals[area]
    if crime_type == "ALL":
        return [totals[m] for m in months]
    f = _factor(area, crime_type)
    counts = [round(totals[m] * by_type[crime_type][m] / max(1, by_type["ALL"][m]) * f) for m in months]
    return counts if sum(counts[-13:-1]) >= 6 else None  # too little history to model


def types() -> list[str]:
    return sorted(raw_data()[1])


def series_labels() -> list[str]:
    labels = []
    for t in types():
        labels.append(f"city:{t}")
        labels += [f"{a}:{t}" for a in range(1, 78) if series_counts(a, t) is not None]
    return labels


# --- the fake model --------------------------------------------------------------------

def _seasonal_index(months: list[str], counts: list[float]) -> dict[int, float]:
    recent = list(zip(months, counts))[-60:]
    mean = sum(c for _, c in recent) / len(recent) or 1.0
    by_month: dict[int, list[float]] = {}
    for m, c in recent:
        by_month.setdefault(int(m[5:7]), []).append(c)
    return {k: (sum(v) / len(v)) / mean if mean else 1.0 for k, v in by_month.items()}


def profile_forecast(months: list[str], counts: list[float], horizon: int) -> list[dict[str, Any]]:
    """Half the mean of the last 12 months times a seasonal index, half the same month last
    year, with an 80% band."""
    index = _seasonal_index(months, counts)
    level = sum(counts[-12:]) / 12
    fitted = [level * index.get(int(m[5:7]), 1.0) for m in months[-24:]]
    logs = [math.log1p(c) - math.log1p(f) for c, f in zip(counts[-24:], fitted)]
    spread = max(0.06, math.sqrt(sum(x * x for x in logs) / max(1, len(logs))))
    rows = []
    for h in range(1, horizon + 1):
        month = add_months(months[-1], h)
        last_year = counts[-12 + (h - 1) % 12]
        yhat = max(0.0, 0.5 * level * index.get(int(month[5:7]), 1.0) + 0.5 * last_year)
        width = 1.28 * spread * 1.75 * math.sqrt(1 + h / 12)
        rows.append({"month": month, "yhat": round(yhat, 2), "yhat_lower": round(max(0.0, math.expm1(math.log1p(yhat) - width)), 2),
                     "yhat_upper": round(math.expm1(math.log1p(yhat) + width), 2)})
    return rows


def _scores(actual: list[float], predicted: list[float], scale: float) -> dict[str, Any]:
    errors = [a - p for a, p in zip(actual, predicted)]
    mae = sum(abs(e) for e in errors) / len(errors)
    mse = sum(e * e for e in errors) / len(errors)
    mean = sum(actual) / len(actual)
    sst = sum((a - mean) ** 2 for a in actual)
    return {"mae": round(mae, 3), "mse": round(mse, 3), "rmse": round(math.sqrt(mse), 3),
            "r2": round(1 - sum(e * e for e in errors) / sst, 3) if sst else None,
            "mase": round(mae / scale, 3) if scale else None, "coverage": None}


def backtest(months: list[str], counts: list[float]) -> dict[str, Any]:
    """Train on everything up to 12 months before the end, score the last 12 months."""
    train_m, train_c, test = months[:-12], counts[:-12], counts[-12:]
    naive_scale = sum(abs(train_c[i] - train_c[i - 12]) for i in range(12, len(train_c))) / max(1, len(train_c) - 12)
    model = profile_forecast(train_m, train_c, 12)
    naive = [train_c[-12 + i] for i in range(12)]
    result: dict[str, Any] = {"origins": [train_m[-1]]}  # one origin; the service's retrain scores up to a few
    scores = _scores(test, [r["yhat"] for r in model], naive_scale)
    scores["coverage"] = round(sum(1 for a, r in zip(test, model) if r["yhat_lower"] <= a <= r["yhat_upper"]) / 12, 3)
    result["model"] = scores
    result["seasonal_naive"] = _scores(test, naive, naive_scale)
    result["beats_seasonal_naive"] = int(result["model"]["mae"] < result["seasonal_naive"]["mae"])
    return result


def data_note(through: str | None, gaps: list[dict[str, str]]) -> str | None:
    """As the service words it: "data through December 2024; no data 2018-11 to 2023-12"."""
    if not through:
        return None
    names = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")
    return f"data through {names[int(through[5:7]) - 1]} {through[:4]}" + "".join(
        f"; no data {g['from']} to {g['to']}" for g in gaps)


def _gap_payload(counts: list[int]) -> dict[str, Any]:
    """GAP_SERIES: the months to 2018-10 and the 12 of 2024 (the series' own complete counts, relabelled), no row between."""
    values = [float(c) for c in counts[:-1]]
    months = month_range(add_months("2018-10", 12 - len(values) + 1), "2018-10") + month_range("2024-01", "2024-12")
    history = [{"month": m, "count": int(c), "partial": False} for m, c in zip(months, values, strict=True)]
    metrics = backtest(months[:-12], values[:-12])  # scored before the gap, as the service does
    return {"history": history, "forecast": profile_forecast(months, values, FORECAST_MONTHS), "metrics": metrics,
            "data_through": "2024-12", "data_gaps": [GAP]}


@cache
def series_payload(area: int | None, crime_type: str) -> dict[str, Any] | None:
    counts = series_counts(area, crime_type)
    if counts is None:
        return None
    if (area, crime_type) == GAP_SERIES:
        return _gap_payload(counts)
    months = list(raw_data()[0])
    partial_count = round(counts[-1] * 0.42)  # the last month is still coming in
    complete_m, complete_c = months[:-1], [float(c) for c in counts[:-1]]
    metrics = backtest(complete_m, complete_c)
    if area == NULL_SCORES_AREA:
        metrics["model"]["mase"] = metrics["seasonal_naive"]["mase"] = None
    history = [{"month": m, "count": int(c), "partial": False} for m, c in zip(complete_m, counts[:-1])]
    history.append({"month": months[-1], "count": partial_count, "partial": True})
    # The model is trained on complete months; its first forecast month is the partial one.
    forecast = profile_forecast(complete_m, complete_c, FORECAST_MONTHS)
    return {"history": history, "forecast": forecast, "metrics": metrics, "data_through": complete_m[-1], "data_gaps": []}


def issued_band(area: int | None, crime_type: str, month: str) -> dict[str, Any] | None:
    """The forecast for ``month`` made from the months before it: the band the service issued beforehand."""
    counts = series_counts(area, crime_type)
    months = list(raw_data()[0])
    if counts is None or month not in months:
        return None
    i = months.index(month)
    return profile_forecast(months[:i], [float(c) for c in counts[:i]], 1)[0]


def unusual_months(area: int | None, crime_type: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last 12 complete months judged against the band forecast before each."""
    if (area, crime_type) == GAP_SERIES:
        return []  # its months are not the fake's calendar: nothing issued beforehand to judge them by
    found = []
    for row in [r for r in history if not r["partial"]][-12:]:
        band = issued_band(area, crime_type, row["month"])
        direction = comparison.outside_band(row["count"], band["yhat_lower"], band["yhat_upper"]) if band else None
        if direction:
            found.append({"month": row["month"], "z": drift.standardised_error(row["count"], band["yhat"], band["yhat_upper"]),
                          "count": row["count"], "yhat": band["yhat"], "yhat_lower": band["yhat_lower"],
                          "yhat_upper": band["yhat_upper"], "direction": direction, "issued_by": "v20260502T030000Z",
                          "distance": round(comparison.band_distance(row["count"], band["yhat_lower"], band["yhat_upper"]), 4)})
    return found


PREDICTION_CSV = ("month", "reported", "partial", "forecast", "lower", "upper", "model_version", "data_through", "no_data")
MAP_CSV = ("community_area", "name", "month", "expected", "lower", "upper", "rank", "same_month_last_year",
           "change_pct", "data_through", "no_data", "model_version", "no_forecast_reason")


def no_data(gaps: list[dict[str, str]]) -> str | None:
    return "; ".join(f"{g['from']} to {g['to']}" for g in gaps) or None


# --- geometry --------------------------------------------------------------------------

@cache
def boundaries() -> bytes:
    path = DATA_DIR / "community_areas.geojson"
    if path.is_file():
        return path.read_bytes()
    features = []
    for n, name in enumerate(AREA_NAMES, 1):  # a 7 x 11 grid of squares over the city
        row, col = divmod(n - 1, 7)
        lon, lat = -87.85 + col * 0.045, 42.02 - row * 0.03
        ring = [[lon, lat], [lon + 0.04, lat], [lon + 0.04, lat - 0.026], [lon, lat - 0.026], [lon, lat]]
        features.append({"type": "Feature", "properties": {"area_number": n, "name": name},
                         "geometry": {"type": "Polygon", "coordinates": [ring]}})
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


# --- state: users, tokens, runs, model version ----------------------------------------


# Promotion reasons as the service words them (crimecast.jobs.retrain.promotion_decision).
PROMOTED_NEWER = ("trained on data through 2026-05, newer than the champion's (2026-04);"
    " its backtest error is 0.79x the seasonal naive's on the same months")
REFUSED_SAME_DATA = ("on the same data as the champion, its backtest error is 0.84x the seasonal naive's on the same months,"
    " worse than the champion's 0.81x (limit 0.81x)")
PROMOTED_BY_RUN = ("trained on data through 2026-06, newer than the champion's (2026-05);"
    " its backtest error is 0.78x the seasonal naive's on the same months")


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.users = {
            "admin": {"password": "correct-horse-battery", "roles": ["admin", "viewer"]},
            "viewer": {"password": "viewer-password-1", "roles": ["viewer"]},
        }
        self.tokens: dict[str, dict[str, Any]] = {}
        self.model_version = "v20260602T030000Z"
        self.versions = {  # the model versions an admin can list and serve again
            "v20260602T030000Z": {"backtest": {"series": 900, "median_mase": 0.79, "median_mae": 11.2, "coverage": 0.81,
                                               "share_beating_seasonal_naive": 0.71}, "live": None},
            "v20260502T030000Z": {"backtest": {"series": 897, "median_mase": 0.84, "median_mae": 11.9, "coverage": 0.79,
                                               "share_beating_seasonal_naive": 0.66},
                                  "live": {"series_evaluated": 897, "series_moved": 0, "alarm": False,
                                           "median_live_mase": 0.88}},
            "v20260402T030000Z": {"backtest": None, "live": None, "problem": "it is incomplete: 310 of its 900 series are stored"},
        }
        self.promoted = {"v20260602T030000Z": {"promoted_at": "2026-06-02T03:41:12Z", "by": "retrain", "reason": None},
                         "v20260502T030000Z": {"promoted_at": "2026-05-02T03:39:50Z", "by": "retrain", "reason": None}}
        self.trained_at = "2026-06-02T03:41:12Z"
        self.runs: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[tuple[str, str], str] = {}
        for run in _seed_runs(self.model_version):
            self.runs[run["run_id"]] = run


def _seed_runs(current: str) -> list[dict[str, Any]]:
    series = len(series_labels())
    return [
        {"run_id": "retrain-20260602T030000Z-5c1d9e02", "kind": "retrain", "status": "succeeded",
         "started_at": "2026-06-02T03:00:00Z", "finished_at": "2026-06-02T03:41:12Z",
         "detail": {"trigger": "schedule", "version": current, "series_planned": series, "batches": math.ceil(series / 25),
                    "series_trained": series, "series_failed": 0, "failures": [],
                    "promotion": {"promoted": True, "reason": PROMOTED_NEWER}}},
        {"run_id": "evaluate-20260601T020700Z-3e5f0a19", "kind": "evaluate", "status": "succeeded",
         "started_at": "2026-06-01T02:07:00Z", "finished_at": "2026-06-01T02:07:09Z",
         "detail": {"trigger": "ingest", "version": "v20260502T030000Z", "series_evaluated": series, "median_live_mase": 1.42,
                    "alarm": True, "drift": {"series_tested": series, "series_moved": 42, "newest_month": "2026-05",
                                             "summary": "THEFT in 41 of 77 areas rose above their bands for 2 months running; "
                                                        "THEFT citywide rose above its band for 2 months running (42 of 97 series moved)."},
                    "retrain": {"started": True, "run_id": "retrain-20260602T030000Z-5c1d9e02",
                                "reason": "drift alarm: THEFT in 41 of 77 areas rose above their bands for 2 months running"}}},
        {"run_id": "ingest-20260601T020000Z-a41f07bb", "kind": "ingest", "status": "succeeded",
         "started_at": "2026-06-01T02:00:00Z", "finished_at": "2026-06-01T02:06:31Z",
         "detail": _ingest_detail("schedule", "incremental", "2026-06-01", done=True)},
        {"run_id": "retrain-20260502T030000Z-77e0a1c4", "kind": "retrain", "status": "succeeded",
         "started_at": "2026-05-02T03:00:00Z", "finished_at": "2026-05-02T03:39:50Z",
         "detail": {"trigger": "schedule", "version": "v20260502T030000Z", "series_planned": series, "batches": math.ceil(series / 25),
                    "series_trained": series - 3, "series_failed": 3,
                    "failures": [{"series": "9:ARSON", "error": "too little history to model"}],
                    "promotion": {"promoted": False, "reason": REFUSED_SAME_DATA}}},
        {"run_id": "ingest-20260501T020000Z-0b9e33d1", "kind": "ingest", "status": "failed",
         "started_at": "2026-05-01T02:00:00Z", "finished_at": "2026-05-01T02:00:04Z",
         "detail": {**_ingest_detail("schedule", "incremental", "2026-05-01"), "phase": "failed", "duration_s": 4.2,
                    "error": "the data portal answered 503 three times; the previous counts are kept"}},
    ]


def _ingest_detail(trigger: str, mode: str, as_of: str, *, window_months: int = 13, progress: float | None = None,
                   done: bool = False) -> dict[str, Any]:
    """An ingest run's detail as the service writes it: queued, fetching (``progress`` 0..1) or done."""
    detail: dict[str, Any] = {"trigger": trigger, "mode": mode, "window_months": window_months, "as_of": as_of,
                              "first_year": 2001, "source": "https://data.cityofchicago.org (ijzp-q8t2)"}
    if progress is None and not done:
        return detail
    last = add_months(as_of[:7], -1) if as_of[8:10] == "01" else as_of[:7]
    first = "2001-01" if mode == "backfill" else add_months(last, -(window_months - 1))
    chunks = month_range(first, last)[::3]
    share = 1.0 if done else progress or 0.0
    finished = chunks[:round(len(chunks) * share)]
    rows = 21000 * 3 * len(finished)
    detail.update(phase="done" if done else "fetching", window={"from": first, "to": last}, chunks=chunks, chunks_done=finished,
                  pages=len(finished) * 2, rows=rows, incidents=rows, retries=1 if finished else 0,
                  base_version="c20260501T020412Z")
    if done:
        detail.update(version=f"c{as_of.replace('-', '')}T020631Z",
                      months_replaced={"from": first, "to": last, "count": len(month_range(first, last))},
                      stored={"first_month": "2001-01", "last_month": last, "rows": 23486},
                      partial_month=last, changes={"cells_changed": 412, "incidents_before": 251904, "incidents_after": 252311},
                      versions_dropped=["c20260301T020518Z"], duration_s=391.4)
    return detail


STATE = State()


def for_reader(view: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
    """As the service (crimecast.jobs.runs.for_reader): a viewer reads no execution ARN and no admin's username."""
    if "admin" in who["roles"]:
        return view
    hidden = ("execution_arn", "by")
    return {**view, "detail": {k: v for k, v in view["detail"].items() if k not in hidden}}


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    """Move a fake run on by the time elapsed: queued, running, then finished."""
    if run["status"] in ("succeeded", "failed") or "_t0" not in run:
        return {k: v for k, v in run.items() if not k.startswith("_")}
    elapsed = time.monotonic() - run["_t0"]
    series = len(series_labels())
    if elapsed >= RUN_SECONDS:
        run["finished_at"] = now_iso()
        if run["kind"] == "retrain":
            run["status"] = "succeeded"
            run["detail"].update(series_trained=series - 2, series_failed=2,
                                 failures=[{"series": "9:ARSON", "error": "too little history to model"},
                                           {"series": "47:STALKING", "error": "too little history to model"}],
                                 promotion={"promoted": True, "reason": PROMOTED_BY_RUN})
            with STATE.lock:
                STATE.model_version, STATE.trained_at = run["detail"]["version"], run["finished_at"]
        else:
            run["status"] = "succeeded"
            d = run["detail"]
            d.update(_ingest_detail(d["trigger"], d["mode"], d["as_of"], window_months=d["window_months"], done=True),
                     duration_s=round(elapsed, 1))
    elif elapsed >= RUN_SECONDS / 4:
        run["status"] = "running"
        d = run["detail"]
        if run["kind"] == "retrain":
            d.update(series_planned=series, batches=math.ceil(series / 25))
        else:
            d.update(_ingest_detail(d["trigger"], d["mode"], d["as_of"], window_months=d["window_months"],
                                    progress=(elapsed - RUN_SECONDS / 4) / (RUN_SECONDS * 3 / 4)))
    return {k: v for k, v in run.items() if not k.startswith("_")}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- HTTP ------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answer in the service's shape; a conflict with a run in progress names it (``run_id``)."""

    def __init__(self, status: int, code: str, message: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.run_id = status, code, message, run_id


def parse_area(value: str | None) -> int | None:
    """The service's own rule (crimecast.domain.keys.parse_area), its errors as a 404 as the service sends them."""
    try:
        return domain_parse_area(value)
    except InvalidInputError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


def parse_type(value: str | None) -> str:
    name = " ".join((value or "ALL").upper().split())
    name = RENAMED_TYPES.get(name, name)
    if name not in types():
        raise ApiError(404, "not_found", f"unknown crime type {value!r}")
    return name


class Handler(BaseHTTPRequestHandler):
    server_version = "crimecast-fake/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("FAKE_API_VERBOSE"):
            super().log_message(format, *args)

    # plumbing

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in SECURITY_HEADERS.items():  # the local stack's and CloudFront's: the tests run under the CSP
            self.send_header(k, v)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> Any:
        """The body as the service reads it (crimecast.api.bodies.json_body): None when empty,
        a 415 unless sent as JSON, a 400 when it does not parse."""
        body = self._body()
        if not body:
            return None
        declared = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if not JSON_MEDIA_TYPE.fullmatch(declared):
            raise ApiError(415, "unsupported_media_type", "the body must be JSON, sent with Content-Type: application/json")
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "invalid_request", f"the body is not valid JSON: {exc}") from None

    def _identity(self, role: str | None = None) -> dict[str, Any]:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        with STATE.lock:
            entry = STATE.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if not entry or entry["expires"] <= time.time() or entry["username"] not in STATE.users:
                raise ApiError(401, "", "Unauthorized")
        if role and role not in entry["roles"]:
            raise ApiError(403, "forbidden", f"this action needs the {role} role")
        return entry

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        api = method != "GET" or route_of(method, path) is not None
        if not api:
            self._static(url.path)
            return
        if LATENCY:
            time.sleep(LATENCY)
        try:
            self._route(method, path, query)
        except ApiError as exc:
            if exc.status == 401 and not exc.code:
                self._json(401, {"message": "Unauthorized"})  # API Gateway's authorizer body
            else:
                named = {"run_id": exc.run_id} if exc.run_id else {}
                self._json(exc.status, {"error": {"code": exc.code, "message": exc.message, **named}})
        except Exception as exc:  # noqa: BLE001 - a fake server: log and answer like the real one
            print(f"fake_api: {exc!r}", file=sys.stderr)
            self._json(500, {"error": {"code": "internal_error", "message": "the service failed; the error is logged"}})

    def _static(self, raw_path: str) -> None:
        rel = unquote(raw_path).lstrip("/") or "index.html"
        target = (WEB_DIR / rel).resolve()
        if WEB_DIR.resolve() not in target.parents or not target.is_file():
            self._json(404, {"error": {"code": "not_found", "message": "no such route"}})
            return
        kind = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
                ".svg": "image/svg+xml"}.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/"):
            kind += "; charset=utf-8"
        self._send(200, target.read_bytes(), kind)

    # routes

    def _route(self, method: str, path: str, query: dict[str, str]) -> None:
        found = route_of(method, path)
        if found is None:
            raise ApiError(404, "not_found", "no such route")
        handler, params = found
        getattr(self, handler)(query, **params)

    # the API's routes (ROUTES), each with the query and its path's parameters

    def _expire(self, query: dict[str, str]) -> None:
        with STATE.lock:
            for entry in STATE.tokens.values():
                if not query.get("username") or entry["username"] == query["username"]:
                    entry["expires"] = 0
        self._json(200, {"expired": True})

    def _reset(self, query: dict[str, str]) -> None:
        with STATE.lock:
            STATE.reset()
        self._json(200, {"reset": True})

    def _health(self, query: dict[str, str]) -> None:
        self._json(200, {"status": "ok"})

    def _me(self, query: dict[str, str]) -> None:
        who = self._identity()
        self._json(200, {"username": who["username"], "roles": who["roles"]})

    def _logout(self, query: dict[str, str]) -> None:
        who = self._identity()
        with STATE.lock:  # as the service: every token of the user ends
            for entry in STATE.tokens.values():
                if entry["username"] == who["username"]:
                    entry["expires"] = 0
        self._json(200, {"username": who["username"], "logged_out": "every session"})

    def _delete_user(self, query: dict[str, str], name: str) -> None:
        self._identity("admin")
        with STATE.lock:
            if STATE.users.pop(name, None) is None:
                raise ApiError(404, "not_found", f"no user {name!r}")
        self._send(204, b"", "application/json")

    def _catalog(self, query: dict[str, str]) -> None:
        self._identity()
        self._json(200, {"model_version": STATE.model_version, "types": types(), "series": series_labels(), "skipped": []})

    def _boundaries(self, query: dict[str, str]) -> None:
        self._identity()
        self._send(200, boundaries(), "application/geo+json")

    def _models(self, query: dict[str, str]) -> None:
        self._identity("admin")
        with STATE.lock:
            self._json(200, {"champion": STATE.model_version, "versions": [
                {"version": v, "serving": v == STATE.model_version, "promoted": STATE.promoted.get(v), "series": 900, "types": 13,
                 "backtest": d["backtest"], "live": d["live"], "problem": d.get("problem")}
                for v, d in sorted(STATE.versions.items(), reverse=True)]})

    def _runs(self, query: dict[str, str]) -> None:
        who = self._identity()
        kind = query.get("kind", "retrain")  # like the service: one kind at a time, retrains by default
        if kind not in ("ingest", "retrain", "evaluate", "promote"):
            raise ApiError(422, "validation_error", "kind: String should match pattern '^(ingest|retrain|evaluate|promote)$'")
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else 20
        with STATE.lock:
            views = [for_reader(run_view(r), who) for r in STATE.runs.values() if r["kind"] == kind]
        views.sort(key=lambda r: r["started_at"], reverse=True)
        self._json(200, {"runs": views[:limit]})

    def _run(self, query: dict[str, str], run_id: str) -> None:
        who = self._identity()
        with STATE.lock:
            run = STATE.runs.get(run_id)
            if not run:
                raise ApiError(404, "not_found", f"no run {run_id!r}")
            self._json(200, for_reader(run_view(run), who))

    def _ingest(self, query: dict[str, str]) -> None:
        self._identity("admin")
        self._start_run("ingest")

    def _retrain(self, query: dict[str, str]) -> None:
        self._identity("admin")
        self._start_run("retrain")

    def _token(self, query: dict[str, str]) -> None:
        def oauth_error(status: int, error: str, description: str) -> None:
            self._send(status, json.dumps({"error": error, "error_description": description}).encode(), "application/json")

        form = {k: v[-1] for k, v in parse_qs(self._body().decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "password" or not form.get("username") or not form.get("password"):
            return oauth_error(400, "invalid_request", "grant_type, username and password are required")
        with STATE.lock:
            user = STATE.users.get(form["username"])
            if not user or not secrets.compare_digest(user["password"], form["password"]):
                return oauth_error(401, "invalid_grant", "invalid username or password")
            token = secrets.token_urlsafe(24)
            STATE.tokens[token] = {"username": form["username"], "roles": list(user["roles"]), "expires": time.time() + TOKEN_TTL}
        self._send(200, json.dumps({"access_token": token, "token_type": "bearer", "expires_in": TOKEN_TTL,
                                    "scope": " ".join(user["roles"])}).encode(), "application/json")

    def _add_user(self, query: dict[str, str]) -> None:
        self._identity("admin")
        data = self._json_body()
        if not isinstance(data, dict):
            raise ApiError(422, "validation_error", "request: Field required")
        problems = []
        username, password, role = data.get("username"), data.get("password"), data.get("role", "viewer")
        if not isinstance(username, str) or not re.fullmatch(r"[A-Za-z0-9._@-]{1,64}", username):
            problems.append("username: String should match pattern '^[A-Za-z0-9._@-]+$'")
        if not isinstance(password, str):
            problems.append("password: Input should be a valid string")
        if role not in ("viewer", "admin"):
            problems.append("role: Input should be 'viewer' or 'admin'")
        if problems:
            raise ApiError(422, "validation_error", "; ".join(problems))
        reason = passwords.problem(password)  # the service's own rule, a 400 as there
        if reason:
            raise ApiError(400, "invalid_request", reason)
        roles = sorted({role, "viewer"})
        with STATE.lock:
            if username in STATE.users:
                raise ApiError(409, "conflict", f"user {username!r} already exists")
            STATE.users[username] = {"password": password, "roles": roles}
        self._json(201, {"username": username, "roles": roles})

    def _predict(self, query: dict[str, str]) -> None:
        self._identity()
        area, crime_type = parse_area(query.get("community_area")), parse_type(query.get("crime_type"))
        try:
            months = int(query.get("months", "12"))
        except ValueError:
            raise ApiError(422, "validation_error", "months: Input should be a valid integer") from None
        if not 1 <= months <= FORECAST_MONTHS:
            raise ApiError(422, "out_of_range", f"months must be between 1 and {FORECAST_MONTHS}, got {months}")
        payload = series_payload(area, crime_type)
        label = f"{'city' if area is None else area}:{crime_type}"
        if payload is None:
            raise ApiError(404, "not_found", f"no forecast for {label} (too little history to model)")
        through = payload["data_through"]
        answer = {"community_area": area, "area_name": "City" if area is None else AREA_NAMES[area - 1],
                  "crime_type": crime_type, "model_version": STATE.model_version, "trained_at": STATE.trained_at,
                  "data_through": through, "data_gaps": payload["data_gaps"],
                  "data_note": data_note(through, payload["data_gaps"]), "metrics": payload["metrics"], "history": payload["history"],
                  "forecast": payload["forecast"][:months],
                  "comparison": comparison.year_comparison(payload["history"], payload["forecast"], through),
                  "unusual": unusual_months(area, crime_type, payload["history"])}
        if self._wants_csv(query):
            rows: dict[str, dict[str, Any]] = {}
            for r in answer["history"]:
                rows[r["month"]] = {"month": r["month"], "reported": r["count"], "partial": r["partial"]}
            for f in answer["forecast"]:
                rows.setdefault(f["month"], {"month": f["month"]}).update(
                    forecast=round(f["yhat"], 2), lower=round(f["yhat_lower"], 2), upper=round(f["yhat_upper"], 2))
            text = comparison.to_csv(PREDICTION_CSV, ({**rows[m], "model_version": STATE.model_version, "data_through": through,
                                                       "no_data": no_data(payload["data_gaps"])} for m in sorted(rows)))
            return self._csv(text, f"crimecast-{area or 'city'}-{crime_type}-{STATE.model_version}.csv")
        self._json(200, answer)

    def _wants_csv(self, query: dict[str, str]) -> bool:
        if "format" in query:
            if query["format"] not in ("csv", "json"):
                raise ApiError(400, "invalid_request", f"format must be csv or json, got {query['format']!r}")
            return query["format"] == "csv"
        return (self.headers.get("Accept") or "").split(",")[0].split(";")[0].strip().lower() == "text/csv"

    def _csv(self, text: str, filename: str) -> None:
        self._send(200, text.encode(), "text/csv; charset=utf-8",
                   {"Content-Disposition": f'attachment; filename="{filename.replace(" ", "_")}"'})

    def _alerts(self, query: dict[str, str]) -> None:
        self._identity()
        crime_type = parse_type(query.get("crime_type")) if query.get("crime_type") else None
        checked = []
        for t in [crime_type] if crime_type else types():
            for area in [None, *range(1, 78)]:
                payload = series_payload(area, t)
                if payload is None:
                    continue
                found = unusual_months(area, t, payload["history"][-2:])
                complete = [r for r in payload["history"] if not r["partial"]][-1]
                checked.append(1)
                for u in found:
                    if u["month"] == complete["month"]:
                        checked[-1] = {"series": f"{'city' if area is None else area}:{t}", "community_area": area,
                                       "area_name": "City" if area is None else AREA_NAMES[area - 1], "crime_type": t, **u}
        judged = comparison.rank_unusual([c for c in checked if isinstance(c, dict)])
        months = sorted({a["month"] for a in judged}) or [raw_data()[0][-2]]
        self._json(200, {"crime_type": crime_type, "month": query.get("month"), "model_version": STATE.model_version,
                         "months": months, "band_level": comparison.BAND_LEVEL, "note": comparison.UNUSUAL_NOTE,
                         "series_checked": len(checked), "expected_by_chance": round(len(checked) * 0.2, 1),
                         "outside_band": len(judged), "false_discovery_rate": 0.01,
                         "above": sum(a["direction"] == "above" for a in judged),
                         "below": sum(a["direction"] == "below" for a in judged),
                         "no_earlier_forecast": 0, "no_data": 0, "alerts": judged})

    def _promote(self, query: dict[str, str], version: str) -> None:
        who = self._identity("admin")["username"]
        request = self._json_body()
        if not isinstance(request, dict) or not isinstance(request.get("reason"), str) or not request["reason"]:
            raise ApiError(422, "validation_error", "reason: Field required")
        reason = request["reason"].strip()
        with STATE.lock:
            if not reason:
                raise ApiError(400, "invalid_request", "say why: a reason is required, and is kept with the run")
            if version not in STATE.versions:
                raise ApiError(404, "not_found", f"no model version {version!r}")
            if version == STATE.model_version:
                raise ApiError(409, "conflict", f"{version} is already serving")
            if STATE.versions[version].get("problem"):
                raise ApiError(409, "conflict", f"{version} cannot be served: {STATE.versions[version]['problem']}")
            started = datetime.now(UTC)
            run_id = f"promote-{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
            run = {"run_id": run_id, "kind": "promote", "status": "succeeded", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "finished_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "detail": {"trigger": "api", "version": version, "previous": STATE.model_version, "by": who, "reason": reason,
                              "promotion": {"promoted": True, "reason": f"rolled back by an admin: {reason}"}}}
            STATE.runs[run_id] = run
            STATE.model_version = version
            STATE.promoted[version] = {"promoted_at": run["started_at"], "by": who, "reason": reason}
        self._json(200, run_view(run))

    def _map(self, query: dict[str, str]) -> None:
        self._identity()
        crime_type, month = parse_type(query.get("crime_type")), query.get("month")
        try:
            month = parse_month(month) if month is not None else None
        except InvalidInputError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
        payloads = {a: p for a in range(1, 78) if (p := series_payload(a, crime_type)) is not None}
        try:  # ranked as the service ranks them
            month, rows, elsewhere = rank_areas(payloads, month)
        except OutOfRangeError as exc:
            raise ApiError(422, "out_of_range", str(exc)) from None
        chosen_month = month
        shown = {r["community_area"] for r in rows}
        missing = [{"community_area": a, "name": AREA_NAMES[a - 1],
                    "reason": elsewhere.get(a, "only 4 months with any report in the last year; too little history to model")}
                   for a in range(1, 78) if a not in shown]
        through = rows[0]["data_through"] if rows else None
        gaps = [{"from": a, "to": b} for a, b in sorted({(g["from"], g["to"]) for r in rows for g in r["data_gaps"]})]
        answer = {"crime_type": crime_type, "month": chosen_month, "model_version": STATE.model_version,
                  "data_through": through, "data_gaps": gaps, "data_note": data_note(through, gaps),
                  "areas": rows, "missing": missing}
        if self._wants_csv(query):
            table = [{"community_area": r["community_area"], "name": r["name"], "month": chosen_month, "expected": round(r["yhat"], 2),
                      "lower": round(r["yhat_lower"], 2), "upper": round(r["yhat_upper"], 2), "rank": r["rank"],
                      "same_month_last_year": r["last_year"], "change_pct": r["change_pct"], "data_through": r["data_through"],
                      "no_data": no_data(r["data_gaps"]), "model_version": STATE.model_version} for r in rows]
            table += [{"community_area": m["community_area"], "name": m["name"], "month": chosen_month,
                       "model_version": STATE.model_version, "no_forecast_reason": m["reason"]} for m in missing]
            return self._csv(comparison.to_csv(MAP_CSV, sorted(table, key=lambda r: r["community_area"])),
                             f"crimecast-map-{crime_type}-{chosen_month}.csv")
        self._json(200, answer)

    def _evaluate(self, query: dict[str, str]) -> None:
        self._identity()
        if "community_area" not in query and "crime_type" not in query:
            return self._json(200, {"model_version": STATE.model_version, "summary": {"series": len(series_labels()), "failed": 0}})
        area, crime_type = parse_area(query.get("community_area")), parse_type(query.get("crime_type"))
        payload = series_payload(area, crime_type)
        label = f"{'city' if area is None else area}:{crime_type}"
        if payload is None:
            raise ApiError(404, "not_found", f"no forecast for {label} (too little history to model)")
        self._json(200, {"model_version": STATE.model_version, "series": label, "community_area": area, "crime_type": crime_type,
                         "trained_at": STATE.trained_at, "data_through": payload["data_through"], "data_gaps": payload["data_gaps"],
                         "data_note": data_note(payload["data_through"], payload["data_gaps"]), "metrics": payload["metrics"],
                         "live": None})  # no live evaluation of the fake's versions

    def _start_run(self, kind: str) -> None:
        options = (self._json_body() or {}) if kind == "ingest" else {}  # retrain reads no body
        if not isinstance(options, dict) or set(options) - {"mode", "window_months"}:
            raise ApiError(422, "validation_error", "request: an object with mode and window_months only")
        mode, window = options.get("mode", "incremental"), options.get("window_months", 13)
        if mode not in ("incremental", "backfill") or not isinstance(window, int) or not 2 <= window <= 480:
            raise ApiError(422, "validation_error", "mode: Input should be 'incremental' or 'backfill'; window_months: 2..480")
        key = self.headers.get("Idempotency-Key")
        started = datetime.now(UTC)
        with STATE.lock:
            if key and (kind, key) in STATE.idempotency:
                return self._json(202, run_view(STATE.runs[STATE.idempotency[(kind, key)]]))
            running = [r for r in STATE.runs.values() if r["kind"] == kind and run_view(r)["status"] in ("queued", "running")]
            if running:  # as the service: one run of a kind at a time
                holder = running[0]["run_id"]
                raise ApiError(409, "conflict", f"{kind} run {holder} is in progress: follow it at GET /runs/{holder}",
                               run_id=holder)
            run_id = f"{kind}-{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
            if kind == "retrain":
                detail: dict[str, Any] = {"trigger": "api", "version": f"v{started:%Y%m%dT%H%M%SZ}",
                                          "execution_arn": f"arn:aws:states:us-east-1:000000000000:execution:crimecast-retrain:{run_id}"}
            else:
                detail = _ingest_detail("api", mode, started.date().isoformat(), window_months=window)
            run = {"run_id": run_id, "kind": kind, "status": "queued", "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "finished_at": None, "detail": detail, "_t0": time.monotonic()}
            STATE.runs[run_id] = run
            if key:
                STATE.idempotency[(kind, key)] = run_id
            view = run_view(run)
        self._json(202, view)


# The API's routes the fake answers, (method, path, handler), paths written as in the API's OpenAPI
# document: "{name}" is one path segment, passed to the handler by that name. Every route here
# is checked against the document (tests/infra/test_fake_api_contract.py), but TEST_HOOKS.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/auth/token", "_token"),
    ("GET", "/auth/me", "_me"),
    ("POST", "/auth/logout", "_logout"),
    ("POST", "/auth/users", "_add_user"),
    ("DELETE", "/auth/users/{name}", "_delete_user"),
    ("GET", "/health", "_health"),
    ("GET", "/catalog", "_catalog"),
    ("GET", "/boundaries", "_boundaries"),
    ("GET", "/predict", "_predict"),
    ("GET", "/predict/map", "_map"),
    ("GET", "/alerts", "_alerts"),
    ("GET", "/evaluate", "_evaluate"),
    ("GET", "/models", "_models"),
    ("POST", "/models/{version}/promote", "_promote"),
    ("POST", "/ingest", "_ingest"),
    ("POST", "/retrain", "_retrain"),
    ("GET", "/runs", "_runs"),
    ("GET", "/runs/{run_id}", "_run"),
    ("POST", "/__expire", "_expire"),
    ("POST", "/__reset", "_reset"),
)
TEST_HOOKS = {("POST", "/__expire"), ("POST", "/__reset")}


def _pattern(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


ROUTE_PATTERNS = [(method, _pattern(path), handler) for method, path, handler in ROUTES]


def route_of(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The handler of ``method path`` and its path parameters (decoded), or None."""
    for route_method, pattern, handler in ROUTE_PATTERNS:
        found = pattern.match(path)
        if found and route_method == method:
            return handler, {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    args = parser.parse_args(argv)
    series_labels()  # load the data before answering
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"fake crimecast API listening on http://{args.host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
