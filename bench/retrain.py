"""A full-city retrain: every series of the `make demo` snapshot (area totals and citywide
types to 2026, every area x type to 2018), backtests included, on every core, against
moto's server; then the second `make demo` start, which reuses those models. Prints JSON.

Figures: series per second; the cost per series (wall time x workers) against a bare
Prophet fit and predict on a sample of the same series; where the time goes (from a
one-process run on a sample); peak memory per worker; predict latency through the
handler; seconds until a second `python -m local.stack` answers /health.

Usage: python bench/retrain.py [--sample 40] [--predict-calls 300] [--skip-restart]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import prophet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's local/ (the one-machine stack)

from results import write

from crimecast.adapters.stores import Stores, get_stores
from crimecast.domain.model import SEED_PROPHET_ARGS, quiet_stan_logging
from crimecast.domain.parallel import StderrProgress
from crimecast.domain.series import read_many
from crimecast.jobs import retrain
from crimecast.jobs.counts import load_counts, store_counts
from crimecast.tools.data import real_data_dir
from local import model_cache
from local.stack import AREA_TYPE_FILE, SNAPSHOT_FILES, Functions, LocalContext, free_port, provision, start_moto
from local.template import load_template

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
TIMES = {"prophet_fit": 0.0, "prophet_predict": 0.0, "to_json": 0.0, "fits": 0}


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


def second_start_seconds(snapshot: Path, cache: Path) -> dict[str, float]:
    """`python -m local.stack` as `make demo` runs it, with the models this run cached: seconds until ready."""
    port = free_port()
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_SNAPSHOT": str(snapshot), "CRIMECAST_MODEL_CACHE": str(cache),
           "CRIMECAST_ADMIN_PASSWORD": "bench-password-long-enough", "PYTHONPATH": f"{REPO / 'shared'}{os.pathsep}{REPO}"}
    env.pop("AWS_ENDPOINT_URL", None)
    started = time.monotonic()
    log = cache / "second-start.err"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                   stderr=output)
    try:
        while time.monotonic() - started < 900:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        ready = time.monotonic() - started
    finally:
        process.terminate()
        process.wait(30)
    text = log.read_text()
    return {"ready_seconds": round(ready, 1), "reused_models": "reused model" in text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=40, help="series timed one by one (phases, bare Prophet)")
    parser.add_argument("--predict-calls", type=int, default=300)
    parser.add_argument("--skip-restart", action="store_true", help="do not time the second `make demo` start")
    args = parser.parse_args()
    os.environ.update({"POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_METRICS_DISABLED": "true", "LOG_LEVEL": "ERROR",
                       "POWERTOOLS_SERVICE_NAME": "crimecast", "POWERTOOLS_METRICS_NAMESPACE": "Crimecast"})
    snapshot = real_data_dir()
    moto = start_moto()
    try:
        os.environ.update(provision(load_template(TEMPLATE)))
        stores = get_stores()
        store_counts(stores, read_many([snapshot / name for name in (*SNAPSHOT_FILES, AREA_TYPE_FILE)]))
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
            figures["second_start"] = second_start_seconds(snapshot, cache)
            figures["second_start"]["within_60_seconds"] = figures["second_start"]["ready_seconds"] <= 60
        write("retrain", figures)
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
