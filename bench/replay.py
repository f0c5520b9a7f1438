"""The service replayed month by month as deployed, through the real local stack, on any data.

The stack starts as ``CRIMECAST_AS_OF=<--as-of> make demo`` does, its portal stand-in over
``--data`` (any tidy counts files ``month,community_area,primary_type,count``, any type names;
default the whole city's area x type file): a backfill through the ingest, every series
trained. Then one step per month (``local/replay.py``): the portal publishes the month, the
daily ingest runs as EventBridge starts it, its live evaluation and drift alarm judge the
month (an alarm starts a retrain at once), the monthly scheduled retrain runs as EventBridge
starts it, and each retrain is waited for and promoted or not. After each step the tool reads
the forecast the service then serves for the next month (the champion's stored items, as
``GET /predict`` serves them, in one query per type), so each month is scored against the
forecast published before it.

On the same months and series (those worth a model at ``--as-of``), the model alone replays
three fixed policies (``bench/drift_replay.py``): never retrain, the monthly schedule alone,
the alarm alone. Each policy's forecasts are then made to add up across levels as the service
makes its own (``reconcile_items``: the same shares of unplaced reports and of coverage, from
the data through the month the policy's model was trained to), among the series a retrain at
that month would plan (``worth_a_model``: a series that became too sparse drops out, one that
became worth a model joins, forecast from that month), so the policies differ from the
service in when they retrain and in nothing else; the monthly schedule's forecasts as the
model made them, before reconciliation, are scored too (``schedule_unreconciled``: what
reconciliation costs or gains). All are scored as the service serves its own, to the cent.
Each month the service and the policies are scored on the same series: those worth a model at
``--as-of`` that the service published a forecast for (a month's MASE: absolute error over the
series' in-sample seasonal-naive error up to ``--as-of``; band coverage). A series that joins
later moves its area's and type's reconciled forecasts but is not scored itself: never
retraining has no forecast of it, and every policy is scored on the same series.

Writes bench/results/<name>.json: ``figures.months`` (per month: the alarm and its evidence,
the retrains started and why, what was promoted, the live error of the service and of the
three policies, the step's seconds) and ``figures.summary`` (the issue's targets checked).

Usage:
    python bench/replay.py                                   # whole city, area x type, 2016-10 + 24 months (~2 h)
    python bench/replay.py --data ../shared/data/area_monthly_all_types_2001_2026.csv \\
        --data ../shared/data/citywide_monthly_by_type_2001_2026.csv --as-of 2018-12 --steps 89 --name replay_97
    python bench/replay.py --data my.csv --as-of 2019-06 --steps 3 --name replay_mine
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
import os
from pathlib import Path
import secrets
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO), str(REPO / "bench")]  # this checkout's package and local/ first

from drift_replay import BREAKS, CALM, POLICIES, SeriesTask, fit_at, month_scores, replay, tasks_of  # noqa: E402
from levels import months_of  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from results import write  # noqa: E402

from crimecast.domain import drift  # noqa: E402
from crimecast.domain.keys import SeriesKey  # noqa: E402
from crimecast.domain.parallel import map_processes  # noqa: E402
from crimecast.domain.reconcile import Band, reconcile  # noqa: E402
from crimecast.domain.series import MonthlyCounts, counts_from_tidy  # noqa: E402
from crimecast.jobs.forecasts import served_row  # noqa: E402
from crimecast.jobs.retrain import series_histories, shares_held, unplaced_shares, worth_a_model  # noqa: E402
from crimecast.settings import RetrainOptions  # noqa: E402
from crimecast.tools.data import AREA_TYPE_FILE, default_data_dir  # noqa: E402
from local.aws.embedded import free_port  # noqa: E402
from local.portal.rows import load_replay_files  # noqa: E402
from local.replay import Replay, call, embedded_aws  # noqa: E402

SERVICE = "service"
UNRECONCILED = "schedule_unreconciled"  # the monthly schedule's forecasts as the model made them


def start_stack(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen, Replay]:
    port, portal_port, password = free_port(), free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, "CRIMECAST_PORT": str(port), "CRIMECAST_AS_OF": args.as_of, "CRIMECAST_REPLAY_PORT": str(portal_port),
           "CRIMECAST_REPLAY_DATA": os.pathsep.join(str(p.resolve()) for p in args.data),
           "CRIMECAST_DATA_DIR": str(args.data_dir), "CRIMECAST_ADMIN_PASSWORD": password,
           "CRIMECAST_MODEL_CACHE": str(log.parent / "model-cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "shared"), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for name in ("AWS_ENDPOINT_URL", "CRIMECAST_FORECAST_SERIES"):
        env.pop(name, None)
    for name, value in (("CRIMECAST_REPLAY_AREAS", args.areas), ("CRIMECAST_REPLAY_TYPES", args.types)):
        if value:
            env[name] = value
    command = [sys.executable, "-m", "local.stack", "--fresh", *(["--workers", str(args.workers)] if args.workers else [])]
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
                replay.aws = embedded_aws(log.read_text())
                return
        except OSError:
            pass
        time.sleep(2)
    raise TimeoutError(f"the stack was not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def month_record(step: dict[str, Any]) -> dict[str, Any]:
    """What the issue asks of a month: the alarm, its evidence, the retrains (those that trained; the
    schedule's is skipped after an alarm's retrain on the same counts), the promotion, the time."""
    return {
        "month": step["month"], "alarm": bool(step["alarm"]), "evidence": step["drift"],
        "retrains": [r["trigger"] for r in step["retrains"] if not r["skipped"]],
        "skipped_retrains": [r["trigger"] for r in step["retrains"] if r["skipped"]], "promoted": step["promoted"],
        "retrain_runs": step["retrains"], "champion_scored": step["champion"],
        "series_evaluated": step["series_evaluated"], "live_median_mase": step["median_live_mase"],
        "ingest_s": step["ingest_s"], "step_s": step["step_s"],
    }


def live_scores(month: str, results: list[dict[str, Any]], published: dict[str, dict[str, dict[str, float]]],
                policies: dict[str, dict[str, dict[str, dict[str, float]]]]) -> tuple[dict[str, Any], int]:
    """The month's live error of the service and of each policy given, all on the same series: those
    among ``results`` (the series worth a model at the start) the service published a forecast for
    (it stops forecasting a series no longer worth a model, as the reconciled schedule and alarm
    policies do; never retraining and the unreconciled schedule keep every one), and how many."""
    served = [r for r in results if month in r["months"] and month in published.get(r["label"], {})]
    scores = {SERVICE: month_scores(month, served, published)}
    return scores | {p: month_scores(month, served, forecasts) for p, forecasts in policies.items()}, len(served)


def trained_through(policy: str, month: pd.Period, as_of: pd.Period, alarm_months: list[str]) -> pd.Period:
    """The last month a policy's model had seen when it forecast ``month``: the start (never), the
    month before (the monthly schedule), the latest alarm before it (the alarm alone)."""
    if policy == "schedule":
        return month - 1
    if policy == "alarm":
        return max((pd.Period(a, "M") for a in alarm_months if pd.Period(a, "M") < month), default=as_of)
    return as_of


def planned_series(counts: MonthlyCounts, origins: list[pd.Period], only: Collection[str] | None
                   ) -> dict[pd.Period, frozenset[str]]:
    """The series a retrain on the data through each origin plans (``worth_a_model``, as the service's)."""
    histories = series_histories(counts, only)
    return {origin: frozenset(key.label for key in worth_a_model(histories, RetrainOptions(), through=origin)[0])
            for origin in origins}


def joining_forecasts(counts: MonthlyCounts, planned: dict[pd.Period, frozenset[str]], start: frozenset[str],
                      months: tuple[pd.Period, ...], alarm_months: list[str], workers: int | None
                      ) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """The schedule's and the alarm policy's forecasts of the series that became worth a model after
    the start, from each retrain that plans them: the schedule's one month ahead, the alarm's until
    its next retrain. Never retraining never adds one."""
    alarm_origins = [pd.Period(a, "M") for a in alarm_months]
    # every origin is a month's scheduled retrain; the alarm policy's are among them
    jobs = sorted({(label, origin) for origin, labels in planned.items() for label in labels - start})
    histories = {key.label: h for key, h in series_histories(counts, {label for label, _ in jobs}).items()}
    fits = map_processes(fit_at, [(SeriesTask(label, histories[label], months[0] - 1, months), origin)
                                  for label, origin in jobs], workers)
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {"schedule": {}, "alarm": {}}
    for (label, origin), forecast in zip(jobs, fits, strict=True):  # in order of origin: a later retrain replaces
        if str(origin + 1) in forecast:
            out["schedule"].setdefault(label, {})[str(origin + 1)] = forecast[str(origin + 1)]
        if origin in alarm_origins:
            out["alarm"].setdefault(label, {}).update(forecast)
    return out


def reconciled_policies(forecasts: dict[str, dict[str, dict[str, dict[str, float]]]], tidy: pd.DataFrame,
                        as_of: pd.Period, alarm_months: list[str], planned: dict[pd.Period, frozenset[str]] | None = None
                        ) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Each policy's forecasts made to add up as the service's retrain makes its own: among the
    series a retrain on the data through the month the policy's model was trained through plans
    (``planned``, by origin; every series given when None), with the shares of unplaced reports
    (``unplaced_shares``) and of coverage (``shares_held``) over the 12 months to it, then
    ``reconcile``. Every step of the horizon is reconciled on its own, so reconciling one month
    at a time is reconciling the block."""
    context: dict[pd.Period, tuple[Any, dict[str, float]]] = {}
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for policy, by_label in forecasts.items():
        out[policy] = {label: {} for label in by_label}
        for month in sorted({m for f in by_label.values() for m in f}):
            origin = trained_through(policy, pd.Period(month, "M"), as_of, alarm_months)
            if origin not in context:
                counts = counts_from_tidy(tidy[tidy["month"] <= str(origin)])
                context[origin] = (counts, unplaced_shares(counts))
            counts, unplaced = context[origin]
            bands = {SeriesKey.parse(label): Band(*(np.array([f[month][c]]) for c in ("yhat", "yhat_lower", "yhat_upper")),
                                                  start=month)
                     for label, f in by_label.items() if month in f and (planned is None or label in planned[origin])}
            held = shares_held({key: months_of(counts.series(key).iloc[-12:]) for key in bands})
            for key, band in reconcile(bands, unplaced, coverage=held).items():
                out[policy].setdefault(key.label, {})[month] = served_row(month, band.yhat[0], band.lower[0], band.upper[0])
    return out


def mean_live(rows: list[dict[str, Any]], policy: str) -> float | None:
    values = [r["live"][policy]["mase"] for r in rows if r["live"][policy]["mase"] is not None]
    return round(float(np.mean(values)), 4) if values else None


def summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets on these months (None where the replay does not cover what one is about)."""
    months = [r["month"] for r in records]
    calm = [r for r in records if CALM[0] <= r["month"] <= CALM[1]]
    policies = (SERVICE, *POLICIES, UNRECONCILED)
    after = {name: [r for r in records if start <= r["month"] < str(pd.Period(start, "M") + 12)] for name, start in BREAKS.items()}
    live = {p: mean_live(records, p) for p in policies}
    live_after = {name: {p: mean_live(rows, p) for p in policies} for name, rows in after.items() if rows}
    first_alarm = next((r["month"] for r in records if r["month"] >= BREAKS["covid"] and r["alarm"]), None)
    alarms = [r["month"] for r in records if r["alarm"]]

    def not_worse(figures: dict[str, float | None]) -> bool | None:
        if figures[SERVICE] is None or figures["schedule"] is None:
            return None
        return figures[SERVICE] <= figures["schedule"]

    return {
        "months": len(records), "from": months[0], "to": months[-1],
        "alarm_months": alarms, "alarm_share": round(len(alarms) / len(records), 3),
        "calm_alarms": sum(r["alarm"] for r in calm), "calm_months": len(calm),
        "first_alarm_from_covid": first_alarm,
        "retrains": {trigger: sum(trigger in r["retrains"] for r in records) for trigger in ("schedule", "alarm")},
        "promotions": sum(r["promoted"] is not None for r in records),
        "live_mase": live, "live_mase_12_months_after": live_after,
        "coverage": {p: round(float(np.mean(values)), 4) if (values := [r["live"][p]["coverage"] for r in records
                                                                         if r["live"][p]["coverage"] is not None]) else None
                     for p in policies},
        "targets": {
            "alarm_in_at_most_a_quarter_of_months": len(alarms) <= len(records) / 4,
            "at_most_1_alarm_in_the_calm_months": sum(r["alarm"] for r in calm) <= 1 if len(calm) == 14 else None,
            "first_alarm_by_2020_04": (first_alarm is not None and first_alarm <= "2020-04") if "2020-04" in months else None,
            "service_not_worse_than_schedule": not_worse(live),
            "service_not_worse_than_schedule_12_months_after": {name: not_worse(f) for name, f in live_after.items()},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", default=None,
                        help=f"a tidy counts file month,community_area,primary_type,count (repeatable; default {AREA_TYPE_FILE})")
    parser.add_argument("--as-of", default="2016-10", help="the last month the service starts with (default 2016-10)")
    parser.add_argument("--steps", type=int, default=24, help="months replayed after it (default 24)")
    parser.add_argument("--areas", default=None, help="only these areas, e.g. 8,25,32 (0: the unplaced reports)")
    parser.add_argument("--types", default=None, help="only these types, e.g. ASSAULT,THEFT")
    parser.add_argument("--workers", type=int, default=None, help="training processes (default: every core)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--name", default="replay", help="bench/results/<name>.json")
    parser.add_argument("--start-timeout", type=float, default=4 * 3600)
    args = parser.parse_args(argv)
    args.data = args.data or [args.data_dir / AREA_TYPE_FILE]
    as_of = pd.Period(args.as_of, "M")
    served = load_replay_files(args.data, [int(a) for a in args.areas.split(",")] if args.areas else None,
                               [t.strip() for t in args.types.split(",")] if args.types else None)
    frame = served.frame
    tidy = pd.DataFrame({"month": frame["date"].dt.strftime("%Y-%m"), "community_area": frame["community_area"].fillna("0"),
                         "primary_type": frame["primary_type"], "count": frame["_n"]})
    counts = counts_from_tidy(tidy)
    tasks, skipped = tasks_of(counts, as_of, args.steps, served.given_series)  # the series the service is given
    if not tasks:
        parser.error("no series worth a model in the data at --as-of")
    if as_of + args.steps > counts.last_complete_month:
        parser.error(f"--as-of {as_of} + {args.steps} steps runs past the data's last month {counts.last_complete_month}")
    labels = [t.label for t in tasks]
    log = Path(tempfile.mkdtemp(prefix="crimecast-replay-")) / "stack.err"
    print(f"stack output: {log}", file=sys.stderr)
    started = time.monotonic()
    process, stack = start_stack(args, log)
    steps: list[dict[str, Any]] = []
    published: dict[str, dict[str, dict[str, float]]] = {label: {} for label in labels}  # label -> month -> forecast
    try:
        wait_ready(process, stack, log, args.start_timeout)
        start_s = round(time.monotonic() - started, 1)
        trained = stack.get("/evaluate")["summary"].get("series")
        print(f"ready in {start_s} s ({trained} series trained)", file=sys.stderr)
        for n in range(args.steps):
            for label, row in stack.forecasts(labels, str(as_of + n + 1)).items():
                published[label][str(as_of + n + 1)] = row
            step = stack.step()
            steps.append(step)
            print(f"{step['month']}: alarm {step['alarm']} ({(step['drift'] or {}).get('summary')}), retrains "
                  f"{[r['trigger'] for r in step['retrains']]}, promoted {step['promoted']}, {step['step_s']} s", file=sys.stderr)
    finally:
        stop(process)
    stack_s = round(time.monotonic() - started, 1)
    policies = replay(tasks, drift.DriftRule(), [], args.workers)  # the model alone: never, schedule, alarm
    started_reconcile = time.monotonic()
    planned = planned_series(counts, list(pd.period_range(as_of, periods=args.steps, freq="M")), served.given_series)
    joining = joining_forecasts(counts, planned, frozenset(labels), tasks[0].months, policies["alarm_policy_retrains"],
                                args.workers)
    for policy, by_label in joining.items():
        policies["forecasts"][policy] |= by_label
    compared = reconciled_policies(policies["forecasts"], tidy, as_of, policies["alarm_policy_retrains"], planned)
    compared[UNRECONCILED] = {label: {m: served_row(m, f["yhat"], f["yhat_lower"], f["yhat_upper"]) for m, f in by_month.items()}
                              for label, by_month in policies["forecasts"]["schedule"].items()}
    reconcile_s = round(time.monotonic() - started_reconcile, 1)
    records = []
    for step, fixed in zip(steps, policies["months"], strict=True):
        record = month_record(step)
        record["live"], record["series_scored"] = live_scores(step["month"], policies["series_results"], published, compared)
        record["model_alone_alarm"] = fixed["alarm"]
        records.append(record)
    write(args.name, {
        "data": [str(p) for p in args.data], "as_of": str(as_of), "steps": args.steps,
        "areas": args.areas or "all", "types": args.types or "all", "workers": args.workers, "cores": os.cpu_count(),
        "series": len(tasks), "series_labels": labels, "series_trained_at_start": trained, "skipped": skipped,
        "series_planned_by_month": {str(origin + 1): len(p) for origin, p in planned.items()},
        "series_joining": sorted(set().union(*planned.values()) - set(labels)),
        "cross_tabulation_made_up": served.given_series is not None,
        "rule": {"q": drift.DriftRule().q, "min_cells": drift.DriftRule().min_cells},
        "start_s": start_s, "stack_s": stack_s, "policies_s": policies["seconds"], "reconcile_policies_s": reconcile_s,
        "steps_s": round(sum(s["step_s"] for s in steps), 1),
        "summary": summary(records), "months": records,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
