"""The live loop replayed on the real city: the local stack started as
``CRIMECAST_AS_OF=2016-10 make demo`` (its portal stand-in over
``area_type_monthly_2001_2018.csv.gz``, a backfill through the ingest, every series trained),
then one step per month to 2018-10: publish the month, ``POST /ingest``, read the live
evaluation that followed, wait for the retrain it started, if any (``local/replay.py``).

Writes bench/results/replay.json (``--name`` for another): per month the live median MASE
over the series scored (as the live evaluation computes it: the champion's forecasts against
every month that arrived since it was trained), the share of series degraded, whether a
retrain started and why, whether it was promoted, and how long the step took.

Usage:
    python bench/replay.py                          # the whole city, 2016-10 + 24 months (long)
    python bench/replay.py --areas 8,25,32 --types ASSAULT,BATTERY,THEFT --steps 6 --name replay_quick
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import secrets
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO)]  # this checkout's package and local/ first

from results import write  # noqa: E402 - after the path

from crimecast.tools.data import default_data_dir  # noqa: E402
from local.replay import Replay, call  # noqa: E402
from local.stack import free_port  # noqa: E402


def start_stack(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, Replay]:
    port, portal_port, password = free_port(), free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_AS_OF": args.as_of, "CRIMECAST_REPLAY_PORT": str(portal_port),
           "CRIMECAST_DATA_DIR": str(args.data_dir), "CRIMECAST_ADMIN_PASSWORD": password,
           "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("AWS_ENDPOINT_URL", None)
    for name, value in (("CRIMECAST_REPLAY_AREAS", args.areas), ("CRIMECAST_REPLAY_TYPES", args.types)):
        if value:
            env[name] = value
    command = [sys.executable, "-m", "local.stack", *(["--workers", str(args.workers)] if args.workers else [])]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=output)
    return process, Replay(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{portal_port}", password)


def wait_ready(process: subprocess.Popen, replay: Replay, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited: {log.read_text()[-3000:]}")
        try:
            if call(f"{replay.base}/health", timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(2)
    raise TimeoutError(f"the stack was not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", default="2016-10", help="the month the city starts from (default 2016-10)")
    parser.add_argument("--steps", type=int, default=24, help="months replayed after it (default 24: to 2018-10)")
    parser.add_argument("--areas", default=None, help="only these areas, e.g. 8,25,32 (0: the unplaced reports)")
    parser.add_argument("--types", default=None, help="only these types, e.g. ASSAULT,THEFT")
    parser.add_argument("--workers", type=int, default=None, help="training processes (default: every core)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--name", default="replay", help="bench/results/<name>.json")
    parser.add_argument("--start-timeout", type=float, default=4 * 3600)
    args = parser.parse_args(argv)
    log = Path(tempfile.mkdtemp(prefix="crimecast-replay-")) / "stack.err"
    print(f"stack output: {log}", file=sys.stderr)
    started = time.monotonic()
    process, replay = start_stack(args, log)
    steps: list[dict[str, Any]] = []
    try:
        wait_ready(process, replay, log, args.start_timeout)
        start_s = round(time.monotonic() - started, 1)
        series = replay.get("/evaluate")["summary"].get("series")
        print(f"ready in {start_s} s ({series} series trained)", file=sys.stderr)
        for _ in range(args.steps):
            step = replay.step()
            steps.append(step)
            print(f"{step['month']}: live median MASE {step['median_live_mase']}, alarm {step['alarm']}, "
                  f"retrain {'started' if step['retrain_started'] else 'not started'} ({step['retrain_reason']}), "
                  f"{step['step_s']} s", file=sys.stderr)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    retrains = [s for s in steps if s["retrain_started"]]
    write(args.name, {
        "as_of": args.as_of, "areas": args.areas or "all", "types": args.types or "all", "workers": args.workers,
        "cores": os.cpu_count(), "data": str(args.data_dir / "area_type_monthly_2001_2018.csv.gz"),
        "series": series, "start_s": start_s, "steps_s": round(sum(s["step_s"] for s in steps), 1),
        "retrains_started": len(retrains),
        "retrains_promoted": sum(bool(((s["retrain"] or {}).get("promotion") or {}).get("promoted")) for s in retrains),
        "mean_retrain_s": round(sum(s["retrain"]["duration_s"] for s in retrains) / len(retrains), 1) if retrains else None,
        "months": [{
            "month": s["month"], "champion": s["champion"], "series_evaluated": s["series_evaluated"],
            "live_median_mase": s["median_live_mase"], "alarm": s["alarm"], "evidence": s["drift"],
            "retrain_started": s["retrain_started"], "reason": s["retrain_reason"],
            "retrain": s["retrain"], "ingest_s": s["ingest_s"], "step_s": s["step_s"],
        } for s in steps],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
