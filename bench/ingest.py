"""Ingest throughput from the portal stand-in, and the peak memory of a backfill, as JSON.

The stand-in (``python -m local.portal``) and the embedded S3/DynamoDB (``moto_server``)
run in processes of their own, so only the ingest's memory is measured. For each
``--years`` value the stand-in serves the 215,551 incidents of 2022 copied into that
many years (2022 back), and a backfill over the same years (one query per year) runs in
a fresh process twice: once timed, once under tracemalloc for its peak. A backfill holds
one year's aggregates at a time, so the peak should not grow with the number of rows.

Usage: python bench/ingest.py [--years 1,4] [--page-size 50000]
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from datetime import date
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Any
import uuid

from results import write

from crimecast.jobs import pipeline

REPO = Path(__file__).resolve().parents[1]
LAST_YEAR = 2022  # the stand-in's rows are of 2022; copies go back from there


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 120.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


@contextmanager
def process(argv: list[str], ready_url: str):
    child = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(ready_url)
        yield child
    finally:
        child.terminate()
        child.wait(10)


def measure(portal: str, endpoint: str, first_year: int, page_size: int, trace: bool) -> dict[str, Any]:
    """One backfill in this (fresh) process; run by the parent as ``--child``."""
    import resource
    import tracemalloc

    import boto3

    suffix = uuid.uuid4().hex[:8]
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "DATA_BUCKET": f"bench-{suffix}",
                       "SERIES_TABLE": f"bench-series-{suffix}", "RUNS_TABLE": f"bench-runs-{suffix}"})
    sys.path[:0] = [str(REPO / "shared"), str(REPO)]
    from local.aws.template import dynamodb_table_specs, load_template

    boto3.client("s3").create_bucket(Bucket=os.environ["DATA_BUCKET"])
    specs = dynamodb_table_specs(load_template(REPO / "template.yaml"))
    for logical_id, env in (("SeriesTable", "SERIES_TABLE"), ("RunsTable", "RUNS_TABLE")):
        boto3.client("dynamodb").create_table(TableName=os.environ[env], **specs[logical_id])
    import pandas  # noqa: F401 - imported before measuring: the Lambda's runtime has it loaded
    import requests  # noqa: F401

    from crimecast.adapters.stores import get_stores
    from crimecast.domain.series import levels_from_aggregates  # noqa: F401

    stores = get_stores()
    stores.blobs.list_keys("warm-up/")  # boto3 loads its service models once (~20 MB): not the ingest's working set
    stores.runs.get("warm-up")
    phases = {"fetch": 0, "publish": 0}  # peaks per phase, read at each progress message

    def progress(message: str) -> None:
        if trace:
            phase = "fetch" if message.startswith("[") else "publish" if message.startswith("published") else None
            if phase:
                phases[phase] = max(phases[phase], tracemalloc.get_traced_memory()[1])
            tracemalloc.reset_peak()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    view = pipeline.ingest_now(stores, "bench", progress=progress, mode="backfill", first_year=first_year, source_label=portal,
                          page_size=page_size, as_of=date(LAST_YEAR, 12, 10))
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    detail = view["detail"]
    if view["status"] != "succeeded":
        raise RuntimeError(detail.get("error"))
    return {"seconds": round(seconds, 2), "rows": detail["rows"], "incidents": detail["incidents"], "pages": detail["pages"],
            "queries": len(detail["chunks"]), "peak_traced_mib": round(max(phases.values()) / 2**20, 1) if trace else None,
            "peak_fetch_mib": round(phases["fetch"] / 2**20, 1) if trace else None,
            "peak_publish_mib": round(phases["publish"] / 2**20, 1) if trace else None,
            "max_rss_mib": round(rss_after / 1024, 1), "rss_growth_mib": round((rss_after - rss_before) / 1024, 1)}


def child(argv: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--years", default="1,4", help="comma-separated: years of copied rows per measurement")
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--child", nargs=5, metavar=("PORTAL", "ENDPOINT", "FIRST_YEAR", "PAGE_SIZE", "TRACE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        portal, endpoint, first_year, page_size, trace = args.child
        print(json.dumps(measure(portal, endpoint, int(first_year), int(page_size), trace == "1")))
        return
    years = [int(y) for y in args.years.split(",")]
    first_year = LAST_YEAR - max(years) + 1  # every measurement makes the same queries; only the rows differ
    bin_dir = Path(sys.executable).parent
    moto_port = free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    results = []
    with process([str(bin_dir / "moto_server"), "-p", str(moto_port)], f"{endpoint}/moto-api/"):
        for copies in years:
            port = free_port()
            portal = f"http://127.0.0.1:{port}"
            with process([sys.executable, "-m", "local.portal", "--port", str(port), "--replicate-years", str(copies)],
                         f"{portal}/resource/igwz-8jzy.geojson"):
                timed = child([portal, endpoint, str(first_year), str(args.page_size), "0"])
                traced = child([portal, endpoint, str(first_year), str(args.page_size), "1"])
            results.append({"years_of_rows": copies, **timed, "rows_per_s": round(timed["rows"] / timed["seconds"]),
                            "incidents_per_s": round(timed["incidents"] / timed["seconds"]),
                            **{k: traced[k] for k in ("peak_traced_mib", "peak_fetch_mib", "peak_publish_mib")}})
    smallest, largest = results[0], results[-1]
    write("ingest", {
        "page_size": args.page_size, "backfill_years": f"{first_year}..{LAST_YEAR}",
        "note": "rows = (month, area, type) groups the portal returned; incidents = the records they count. "
                "Timing includes the stand-in's own aggregation (pandas over every incident, per query). "
                "peak_fetch: the largest peak while fetching one year; peak_publish: boundaries GeoJSON + assembling the version.",
        "runs": results,
        "peak_memory_ratio": round(largest["peak_traced_mib"] / smallest["peak_traced_mib"], 2),
        "peak_fetch_ratio": round(largest["peak_fetch_mib"] / smallest["peak_fetch_mib"], 2),
        "rows_ratio": round(largest["rows"] / smallest["rows"], 2),
    })


if __name__ == "__main__":
    main()
