"""Full retrain of every series in the local data, with 1 and 2 workers, and predict
latency through the handler, all on moto's server. Prints JSON.

Usage: python bench/retrain.py [--predict-calls 300]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import statistics
import sys
import time

import prophet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's local/ (the one-machine stack)

from results import write

from crimecast.adapters.stores import Stores, get_stores
from crimecast.domain.series import read_many
from crimecast.jobs import retrain
from crimecast.jobs.counts import store_counts
from crimecast.tools.data import real_data_dir
from local.stack import SNAPSHOT_FILES, Functions, LocalContext, provision, start_moto
from local.template import load_template

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
PROPHET_SECONDS = {"seconds": 0.0, "fits": 0}


def _timed(name: str) -> None:
    """Count the time spent inside Prophet's own fit/predict (1-worker run, same process)."""
    original = getattr(prophet.Prophet, name)

    def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            PROPHET_SECONDS["seconds"] += time.perf_counter() - started
            PROPHET_SECONDS["fits"] += name == "fit"

    setattr(prophet.Prophet, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predict-calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "LOG_LEVEL": "ERROR",
                       "POWERTOOLS_SERVICE_NAME": "crimecast", "POWERTOOLS_METRICS_NAMESPACE": "Crimecast"})
    moto = start_moto()
    try:
        os.environ.update(provision(load_template(TEMPLATE)))
        stores = get_stores()
        counts = read_many([real_data_dir() / name for name in SNAPSHOT_FILES])
        store_counts(stores, counts)
        _timed("fit")
        _timed("predict")
        runs = {}
        for workers in (1, 2):
            PROPHET_SECONDS.update(seconds=0.0, fits=0)
            summary = retrain.run_locally(stores, workers=workers)
            runs[workers] = {**summary, "prophet_seconds": round(PROPHET_SECONDS["seconds"], 2),
                             "prophet_fits": PROPHET_SECONDS["fits"]}
        one, two = runs[1], runs[2]
        series = one["series_trained"]
        latency = predict_latency(stores, counts, args.predict_calls)
        write("retrain", {
            "series_trained": series, "series_skipped": one["series_skipped"],
            "one_worker": {"wall_seconds": one["wall_seconds"], "series_per_second": one["series_per_second"]},
            "two_workers": {"wall_seconds": two["wall_seconds"], "series_per_second": two["series_per_second"]},
            "speedup_two_workers": round(one["wall_seconds"] / two["wall_seconds"], 2),
            "prophet_fits_per_series": round(one["prophet_fits"] / series, 2),
            "prophet_seconds_per_series": round(one["prophet_seconds"] / series, 4),
            "project_seconds_per_series": round(one["wall_seconds"] / series, 4),
            "cost_vs_bare_prophet": round(one["wall_seconds"] / one["prophet_seconds"], 2),
            "predict_latency_ms": latency,
        })
    finally:
        moto.stop()


def predict_latency(stores: Stores, counts, calls: int) -> dict[str, float]:
    from local.template import api_routes

    route = next(r for r in api_routes(load_template(TEMPLATE)) if r.path == "/predict")
    functions = Functions()
    labels = [k for k in counts.keys()]
    rng = random.Random(7)
    timings = []
    for _ in range(calls):
        key = rng.choice(labels)
        event = {"resource": "/predict", "path": "/predict", "httpMethod": "GET", "headers": {}, "body": None,
                 "queryStringParameters": {"community_area": str(key.community_area or "city"), "crime_type": key.primary_type},
                 "requestContext": {"authorizer": {"principalId": "bench", "roles": "viewer"}, "requestId": "bench"}}
        started = time.perf_counter()
        response = functions.handler(route.codeuri, route.handler)(event, LocalContext(function_name="predict"))
        timings.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] in (200, 404), response["body"]
    timings.sort()
    return {"calls": calls, "p50": round(statistics.median(timings), 2), "p99": round(timings[int(0.99 * (calls - 1))], 2)}


if __name__ == "__main__":
    main()
