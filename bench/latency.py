"""GET /predict under 8 clients on the local stack against a bare DynamoDB GetItem on the same
moto server, in the same run (issue 13, item 8): p50 within 2x and p99 within 3x, 0 errors.

Starts ``python -m local.stack`` over a small synthetic snapshot (area 25 and the city, ALL
types, 60 months from 2019-01: the integration tests' snapshot), signs in, then runs the two
loads in alternating rounds (so a change in the machine's load falls on both): ``--requests``
(4,000) of each, ``--clients`` (8) threads, each with its own keep-alive connection / boto3
client. The authorizer's result is cached per token (the template's TTL) and the champion
pointer and catalog per warm container (30 s), as on AWS. Writes bench/results/latency.json.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import http.client
import json
import os
from pathlib import Path
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO)]

from bench.results import write  # noqa: E402
from local.stack import SNAPSHOT_FILES, free_port  # noqa: E402

PASSWORD = "bench-latency-password"
ROUNDS = 4


def _snapshot(folder: Path) -> None:
    from tests.conftest import seasonal_series, tidy_frame

    areas, types = (folder / name for name in SNAPSHOT_FILES)
    tidy_frame(seasonal_series("2019-01", 60, level=120), 25, "ALL").to_csv(areas, index=False)
    tidy_frame(seasonal_series("2019-01", 60, level=900), None, "ALL").to_csv(types, index=False)


def _start(folder: Path) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_SNAPSHOT": str(folder), "CRIMECAST_ADMIN_PASSWORD": PASSWORD,
           "CRIMECAST_MODEL_CACHE": str(folder / "model-cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO)])}
    env.pop("AWS_ENDPOINT_URL", None)
    log = folder / "stack.err"
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                   stderr=output, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the stack exited: {log.read_text()}")
        time.sleep(0.5)
    endpoint = re.search(r"embedded AWS at (\S+)", log.read_text())
    assert endpoint, log.read_text()
    return process, port, endpoint[1]


def _token(port: int) -> str:
    data = urllib.parse.urlencode({"grant_type": "password", "username": "admin", "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/token", data=data, timeout=30) as answer:
        return json.loads(answer.read())["access_token"]


def _predict_load(port: int, token: str, requests: int, clients: int) -> tuple[list[float], int]:
    paths = ["/predict?community_area=Austin&crime_type=ALL&months=6", "/predict?community_area=city&crime_type=ALL"]

    def client(n: int) -> tuple[list[float], int]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        timings, errors = [], 0
        for i in range(n):
            started = time.perf_counter()
            try:
                connection.request("GET", paths[i % 2], headers={"Authorization": f"Bearer {token}"})
                response = connection.getresponse()
                response.read()
                errors += response.status != 200
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            timings.append((time.perf_counter() - started) * 1000)
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.close()
        return timings, errors

    return _run(client, requests, clients)


def _getitem_load(endpoint: str, requests: int, clients: int) -> tuple[list[float], int]:
    import boto3
    from botocore.config import Config

    def client(n: int) -> tuple[list[float], int]:
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local",
                                aws_secret_access_key="local", config=Config(retries={"mode": "standard"}))
        key = {"series": {"S": "25:ALL"}, "version": {"S": "__probe__"}}
        timings, errors = [], 0
        for _ in range(n):
            started = time.perf_counter()
            try:
                dynamodb.get_item(TableName="crimecast-local-SeriesTable", Key=key)
            except Exception:  # noqa: BLE001 - counted
                errors += 1
            timings.append((time.perf_counter() - started) * 1000)
        return timings, errors

    return _run(client, requests, clients)


def _run(client, requests: int, clients: int) -> tuple[list[float], int]:  # noqa: ANN001 - a per-thread loop
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        outcomes = list(pool.map(client, shares))
    return [t for timings, _ in outcomes for t in timings], sum(errors for _, errors in outcomes)


def _summary(timings: list[float], errors: int) -> dict[str, float]:
    ordered = sorted(timings)
    return {"requests": len(ordered), "errors": errors, "p50_ms": round(statistics.median(ordered), 2),
            "p90_ms": round(ordered[int(0.90 * (len(ordered) - 1))], 2),
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2), "max_ms": round(ordered[-1], 2),
            "mean_ms": round(statistics.fmean(ordered), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        _snapshot(Path(folder))
        process, port, endpoint = _start(Path(folder))
        try:
            token = _token(port)
            _predict_load(port, token, 200, args.clients)  # warm: handlers imported, caches filled
            _getitem_load(endpoint, 200, args.clients)
            predict: tuple[list[float], int] = ([], 0)
            getitem: tuple[list[float], int] = ([], 0)
            for _ in range(ROUNDS):
                t, e = _getitem_load(endpoint, args.requests // ROUNDS, args.clients)
                getitem = (getitem[0] + t, getitem[1] + e)
                t, e = _predict_load(port, token, args.requests // ROUNDS, args.clients)
                predict = (predict[0] + t, predict[1] + e)
        finally:
            process.terminate()
            process.wait(30)
    p, g = _summary(*predict), _summary(*getitem)
    ratios = {"p50": round(p["p50_ms"] / g["p50_ms"], 2), "p99": round(p["p99_ms"] / g["p99_ms"], 2)}
    write("latency", {
        "snapshot": "synthetic: area 25 and the city, ALL types, 60 months from 2019-01 (the integration tests' snapshot)",
        "clients": args.clients, "rounds": ROUNDS,
        "predict": p, "getitem": g, "ratios": ratios,
        "targets": {"p50": 2.0, "p99": 3.0},
        "met": ratios["p50"] <= 2.0 and ratios["p99"] <= 3.0 and p["errors"] == 0 and g["errors"] == 0,
        "notes": "GET /predict with a bearer token through the local gateway (authorizer cached per token, champion "
                 "pointer and catalog cached 30 s) vs GetItem of one key on the stack's moto server",
    })


if __name__ == "__main__":
    main()
