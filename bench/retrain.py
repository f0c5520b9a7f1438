"""A full-city retrain: every series of the `make demo` snapshot (area totals and citywide
types to 2026, every area x type to 2018 and in 2024), backtests included, on every core,
against moto's server; then the second `make demo` start, which reuses those models, and a
POST /retrain of the whole city through it (the state machine, its Map's batches in sandbox
processes), timed beside the plain training, while a client asks for forecasts. Prints JSON.

Figures: series per second; the cost per series (wall time x workers) against a bare
Prophet fit and predict on a sample of the same series; where the time goes (from a
one-process run on a sample); peak memory per worker; predict latency through the
handler; seconds until a second `python -m local.stack` answers /health; the seconds of
POST /retrain on it until the run ends, their ratio to the plain training (goal: at most
1.25), and GET /predict's latency meanwhile (goal: p99 under 1 s, no error).

Usage: python bench/retrain.py [--sample 40] [--predict-calls 300] [--skip-restart] [--skip-demo-retrain]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from typing import Any
import urllib.parse
import urllib.request

import prophet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's local/ (the one-machine stack)

from results import write

from bench.demo_stack import demo_stack
from crimecast.adapters.stores import Stores, get_stores
from crimecast.domain.model import SEED_PROPHET_ARGS, quiet_stan_logging
from crimecast.domain.parallel import StderrProgress
from crimecast.domain.series import read_many
from crimecast.jobs import retrain
from crimecast.jobs.counts import load_counts, store_counts
from crimecast.tools.data import real_data_dir
from local import model_cache
from local.aws.embedded import provision, start_moto
from local.aws.lambda_runtime import Functions, LocalContext
from local.aws.template import load_template
from local.replay import call
from local.stack import snapshot_files

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
TIMES = {"prophet_fit": 0.0, "prophet_predict": 0.0, "to_json": 0.0, "fits": 0}
ADMIN_PASSWORD = "bench-password-long-enough"


def _timed(owner: type, name: str, bucket: str) -> None:
    """Add the time spent inside ``owner.name`` to TIMES[bucket] (one-process runs only)."""
    original = getattr(owner, name)

    def wrapper(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            TIMES[bucket] += time.perf_counter() - started
            TIMES["fits"] += name == "fit"

    setattr(owner, name, wrapper)


def bare_prophet_seconds(counts, keys) -> float:
    """Mean seconds of a bare Prophet fit and 24-month predict (the seed's settings) per series."""
    quiet_stan_logging()
    import pandas as pd

    started = time.perf_counter()
    for key in keys:
        history = counts.series(key)
        frame = pd.DataFrame({"ds": history.index.to_timestamp(), "y": history.to_numpy(dtype=float)})
        model = prophet.Prophet(**SEED_PROPHET_ARGS)
        model.fit(frame)
        model.predict(model.make_future_dataframe(24, freq="MS", include_history=False))
    return (time.perf_counter() - started) / len(keys)


def where_the_time_goes(stores: Stores, counts, labels: list[str]) -> dict[str, float]:
    """One process, a sample of series: Prophet's share, serialisation, and the rest (ours, storage)."""
    from crimecast.domain.model import CrimeForecaster

    _timed(prophet.Prophet, "fit", "prophet_fit")
    _timed(prophet.Prophet, "predict", "prophet_predict")
    _timed(CrimeForecaster, "to_json", "to_json")
    started = time.perf_counter()
    retrain.train_batch(stores, {"run_id": "bench", "version": "vbench", "batch": 0, "series": labels}, counts)
    wall = time.perf_counter() - started
    n = len(labels)
    other = wall - TIMES["prophet_fit"] - TIMES["prophet_predict"] - TIMES["to_json"]
    return {"series": n, "seconds_per_series": round(wall / n, 4), "prophet_fits_per_series": round(TIMES["fits"] / n, 2),
            "prophet_fit": round(TIMES["prophet_fit"] / n, 4), "prophet_predict": round(TIMES["prophet_predict"] / n, 4),
            "serialise_model": round(TIMES["to_json"] / n, 4), "everything_else": round(other / n, 4)}


def _percentile(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[int(share * (len(ordered) - 1))], 1) if ordered else None


def demo_retrain(base: str, labels: list[Any], plain_seconds: float) -> dict[str, Any]:
    """POST /retrain of the whole city on the demo, timed from the request to the run's end (GET
    /runs/<id>), beside the plain training; meanwhile one client asks GET /predict over and over."""
    status, token = call(f"{base}/auth/token", form={"grant_type": "password", "username": "admin",
                                                      "password": ADMIN_PASSWORD})
    if status != 200:
        raise RuntimeError(f"login failed: {token}")
    bearer = token["access_token"]
    rng = random.Random(11)
    latencies: list[float] = []
    slowest = {"ms": 0.0, "at_seconds": 0.0}  # when, into the retrain, the slowest answer was asked for
    errors: list[str] = []
    done = threading.Event()

    def predict_meanwhile() -> None:
        while not done.is_set():
            key = rng.choice(labels)
            query = urllib.parse.urlencode({"community_area": str(key.community_area or "city"),
                                            "crime_type": key.primary_type, "months": 12})
            began = time.perf_counter()
            try:
                answer, _ = call(f"{base}/predict?{query}", bearer, timeout=10)
            except OSError as exc:  # no answer within 10 s
                errors.append(type(exc).__name__)
                continue
            latencies.append((time.perf_counter() - began) * 1000)
            if latencies[-1] > slowest["ms"]:
                slowest.update(ms=round(latencies[-1], 1), at_seconds=round(began - posted, 1))
            if answer not in (200, 404):
                errors.append(str(answer))
            time.sleep(0.05)

    started, posted = time.monotonic(), time.perf_counter()
    status, run = call(f"{base}/retrain", bearer, body={}, method="POST")
    if status != 202:
        raise RuntimeError(f"POST /retrain answered {status}: {run}")
    client = threading.Thread(target=predict_meanwhile, name="predict-client", daemon=True)
    client.start()
    try:
        while True:
            status, run = call(f"{base}/runs/{run['run_id']}", bearer)
            if status == 200 and run["status"] in ("succeeded", "failed"):
                break
            if time.monotonic() - started > 3600:
                raise TimeoutError("the demo's retrain did not end within an hour")
            time.sleep(0.5)
    finally:
        done.set()
        client.join(15)
    seconds = time.monotonic() - started
    detail = run["detail"]
    return {"status": run["status"], "seconds": round(seconds, 1), "series_trained": detail.get("series_trained"),
            "series_failed": detail.get("series_failed"), "batches": detail.get("batches"),
            "ratio_to_plain_training": round(seconds / plain_seconds, 3),
            "within_1_25x_plain_training": seconds <= 1.25 * plain_seconds,
            "predict_during_retrain_ms": {"calls": len(latencies), "p50": _percentile(latencies, 0.5),
                                          "p99": _percentile(latencies, 0.99), "max": _percentile(latencies, 1.0),
                                          "slowest_asked_at_seconds": slowest["at_seconds"], "errors": len(errors),
                                          "p99_under_1s": (_percentile(latencies, 0.99) or 0) < 1000
                                          and not errors}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=40, help="series timed one by one (phases, bare Prophet)")
    parser.add_argument("--predict-calls", type=int, default=300)
    parser.add_argument("--skip-restart", action="store_true",
                        help="do not time the second `make demo` start (nor a retrain through it)")
    parser.add_argument("--skip-demo-retrain", action="store_true",
                        help="do not time POST /retrain of the whole city on the second `make demo` start")
    args = parser.parse_args()
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "LOG_LEVEL": "ERROR",
                       "POWERTOOLS_SERVICE_NAME": "crimecast", "POWERTOOLS_METRICS_NAMESPACE": "Crimecast"})
    snapshot = real_data_dir()
    moto = start_moto()
    try:
        os.environ.update(provision(load_template(TEMPLATE)))
        stores = get_stores()
        store_counts(stores, read_many(snapshot_files(snapshot)))  # the series the demo loads
        counts = load_counts(stores)  # as training reads them
        started = time.monotonic()
        summary = retrain.run_locally(stores, progress=StderrProgress("retrain"), trigger="bench")
        wall = time.monotonic() - started
        workers = len(os.sched_getaffinity(0))
        worker_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        trained = summary["series_trained"]
        cache = Path(tempfile.mkdtemp(prefix="crimecast-bench-cache-"))
        os.environ[model_cache.CACHE_ENV] = str(cache)
        saved = time.monotonic()
        model_cache.save(stores, model_cache.fingerprint(stores), summary["version"])
        save_seconds = time.monotonic() - saved
        manifest = stores.blobs.get_json(f"runs/{summary['run_id']}/manifest.json")
        rng = random.Random(7)
        sample = rng.sample(manifest["planned"], min(args.sample, len(manifest["planned"])))
        from crimecast.domain.keys import SeriesKey

        bare = bare_prophet_seconds(counts, [SeriesKey.parse(label) for label in sample])
        phases = where_the_time_goes(stores, counts, sample)
        latency = predict_latency(stores, counts, args.predict_calls)
        figures = {
            "series_trained": trained, "series_skipped": summary["series_skipped"], "series_failed": summary["series_failed"],
            "workers": workers, "wall_seconds": round(wall, 1), "within_10_minutes": wall <= 600,
            "series_per_second": round(trained / wall, 2),
            "cost_per_series_core_seconds": round(wall * workers / trained, 3),
            "bare_prophet_fit_predict_seconds": round(bare, 3),
            "cost_vs_bare_prophet": round(wall * workers / trained / bare, 2),
            "one_process_sample": phases,
            "peak_memory_mb": {"largest_worker": round(worker_peak_mb, 1),
                               "parent": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
            "model_cache_save_seconds": round(save_seconds, 1),
            "predict_latency_ms": latency,
        }
        if not args.skip_restart:
            log = cache / "second-start.err"
            with demo_stack(snapshot, cache, ADMIN_PASSWORD, log, timeout=900) as (port, ready):
                base = f"http://127.0.0.1:{port}"
                figures["second_start"] = {"ready_seconds": round(ready, 1), "reused_models": "reused model" in log.read_text(),
                                           "within_60_seconds": ready <= 60}
                if not args.skip_demo_retrain:
                    figures["demo_retrain"] = demo_retrain(base, list(counts.keys()), wall)
        write("retrain", figures)
    finally:
        moto.stop()


def predict_latency(stores: Stores, counts, calls: int) -> dict[str, float]:
    from local.aws.template import api_routes

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
