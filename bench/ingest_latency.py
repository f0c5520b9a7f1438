"""GET /predict while the daily ingest brings a whole month of the city, on a replaying stack.

The stack starts as ``bench/replay.py`` starts it (``--as-of``; by default the whole city's area
x type file, every series worth a model trained). A load of ``--clients`` threads (each its own
keep-alive connection, over ``latency.series_mix`` of the catalog) then runs throughout: a
``--warmup-s`` warm-up (each client reads its first series), ``--quiet-s`` seconds with nothing
else running, then one month as deployed (``Replay.step``: the
portal publishes the month, the daily ingest and its live evaluation run in their Lambda
sandboxes, then the monthly retrain). Each request counts in the phase it started in: ``warmup``,
``quiet``, ``ingest`` (from the portal publishing the month until the ingest noted its live
evaluation) or ``retrain`` (the rest of the step). On AWS those functions have CPUs of their
own; here they share the machine's 2 cores and the embedded moto server (threads of the stack's
process) with the API, so this is the local stack's worst case, not Lambda's.

Usage: python bench/ingest_latency.py [--as-of 2016-10] [--clients 4] [--warmup-s 20] [--quiet-s 60]
Writes bench/results/ingest_latency.json.
"""

from __future__ import annotations

import argparse
import http.client
from pathlib import Path
import sys
import tempfile
import threading
import time
from typing import Any

from latency import _summary, series_mix, timed_get
from replay import start_stack, stop, wait_ready
from results import write

from crimecast.tools.data import AREA_TYPE_FILE, default_data_dir


def _client(port: int, token: str, paths: list[str], stop_at: threading.Event, out: list[tuple[float, float, bool]]) -> None:
    """Requests ``paths`` in turn until ``stop_at`` is set: (start, milliseconds, answered 200) each."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    index = 0
    while not stop_at.is_set():
        started = time.monotonic()
        connection, ms, ok = timed_get(connection, port, token, paths[index % len(paths)])
        out.append((started, ms, ok))
        index += 1
    connection.close()


def by_phase(timings: list[tuple[float, float, bool]], bounds: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Each phase's latency summary, from the requests that started within its bounds."""
    out = {}
    for phase, (start, end) in bounds.items():
        mine = [(ms, ok) for started, ms, ok in timings if start <= started < end]
        if mine:
            out[phase] = _summary([ms for ms, _ in mine], sum(not ok for _, ok in mine)) | {"seconds": round(end - start, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", default="2016-10")
    parser.add_argument("--data", type=Path, action="append", default=None)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--quiet-s", type=float, default=60.0)
    parser.add_argument("--start-timeout", type=float, default=3600.0)
    args = parser.parse_args()
    args.data = args.data or [args.data_dir / AREA_TYPE_FILE]
    args.areas = args.types = args.workers = None  # the whole file, every core, as bench/replay.py by default
    log = Path(tempfile.mkdtemp(prefix="crimecast-ingest-latency-")) / "stack.err"
    print(f"stack output: {log}", file=sys.stderr)
    started = time.monotonic()
    process, stack = start_stack(args, log)
    try:
        wait_ready(process, stack, log, args.start_timeout)
        start_s = round(time.monotonic() - started, 1)
        port = int(stack.base.rsplit(":", 1)[1])
        catalog = stack.get("/catalog")
        token = stack.token()
        timings: list[tuple[float, float, bool]] = []
        done = threading.Event()
        clients = [threading.Thread(target=_client, args=(port, token, series_mix(catalog, 2000, seed), done, timings))
                   for seed in range(args.clients)]
        warmup_start = time.monotonic()
        for thread in clients:
            thread.start()
        time.sleep(args.warmup_s)
        quiet_start = time.monotonic()
        time.sleep(args.quiet_s)
        step_start = time.monotonic()
        step = stack.step()
        step_end = time.monotonic()
        done.set()
        for thread in clients:
            thread.join()
    finally:
        stop(process)
    ingest_end = step_start + step["ingest_s"]
    phases = by_phase(timings, {"warmup": (warmup_start, quiet_start), "quiet": (quiet_start, step_start),
                                "ingest": (step_start, ingest_end),
                                "retrain": (ingest_end, step_end)})
    write("ingest_latency", {
        "data": [str(p) for p in args.data], "as_of": args.as_of, "month": step["month"], "start_s": start_s,
        "series_served": len(catalog["series"]), "series_evaluated": step["series_evaluated"],
        "clients": args.clients, "ingest_s": step["ingest_s"], "step_s": step["step_s"],
        "retrains": [r["trigger"] for r in step["retrains"]], "phases": phases,
        "ratios_to_quiet": {phase: {q: round(phases[phase][q] / phases["quiet"][q], 2) for q in ("p50_ms", "p99_ms")}
                            for phase in ("ingest", "retrain") if phase in phases and "quiet" in phases},
    })


if __name__ == "__main__":
    main()
