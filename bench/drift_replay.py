"""The drift alarm replayed on the city's real months, with the model itself (no stack).

From ``--as-of`` on, month after month, as the service runs: the month arrives, each series'
count is read against the forecast published for it before it happened (standardised error,
``crimecast.domain.drift``), the alarm decides on every series' newest three months, and the
monthly schedule retrains every series on data through that month. Beside the service's
policy it scores, on the same months and series, three fixed policies:

- ``never``: the model trained at ``--as-of`` forecasts every later month;
- ``schedule``: a retrain every month (the template's monthly schedule): each month is
  forecast one month ahead;
- ``alarm``: a retrain only when the alarm sounds (on that policy's own errors).

The service's policy is the schedule plus the alarm's notice: an alarm adds no forecast of
its own, so its live error is the schedule's.

Per month it records the alarm and its evidence, the live error of each policy (mean
absolute error scaled by the series' in-sample seasonal-naive error up to ``--as-of``, as
the live evaluation scales it: a month's MASE), the share of months inside the 80% band, and the alarms the rule would have raised at
other false-discovery rates (``--rates``), so the rate is chosen by replay, not by taste.

Writes bench/results/<name>.json (figures.months: one record per month).

Usage:
    python bench/drift_replay.py                      # 97 series (area totals, city types, city) 2019-01..2026-05
    python bench/drift_replay.py --data my.csv --as-of 2016-10 --steps 24 --name drift_replay_mine
"""

from __future__ import annotations

import argparse
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
import sys
import time
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from results import write  # noqa: E402

from crimecast.domain import drift, metrics  # noqa: E402
from crimecast.domain.model import CrimeForecaster, quiet_stan_logging  # noqa: E402
from crimecast.domain.parallel import StderrProgress, map_processes  # noqa: E402
from crimecast.domain.series import MonthlyCounts, read_many  # noqa: E402
from crimecast.jobs.retrain import series_histories, worth_a_model  # noqa: E402
from crimecast.settings import RetrainOptions  # noqa: E402
from crimecast.tools.data import default_data_dir  # noqa: E402

DEFAULT_FILES = ("citywide_monthly_by_type_2001_2026.csv", "area_monthly_all_types_2001_2026.csv")
CALM = ("2019-01", "2020-02")
BREAKS = {"covid": "2020-03", "vehicle_theft_surge": "2022-06"}
POLICIES = ("never", "schedule", "alarm")


@dataclass(frozen=True)
class SeriesTask:
    label: str
    history: pd.Series  # every complete month of the series
    as_of: pd.Period
    months: tuple[pd.Period, ...]


def _band(model: CrimeForecaster, horizon: int) -> pd.DataFrame:
    return model.predict(horizon).set_index("month")


def replay_series(task: SeriesTask) -> dict[str, Any]:
    """The never and schedule policies' forecasts of one series for every replayed month."""
    quiet_stan_logging()
    history = task.history
    scale = metrics.seasonal_naive_scale(history.loc[:task.as_of].to_numpy(dtype=float))  # as the live MASE's
    scale = scale if scale > 0 else 1.0  # nan (too short) or a flat history: plain absolute errors
    never = _band(CrimeForecaster().fit(history.loc[:task.as_of]), len(task.months))
    out: dict[str, Any] = {"label": task.label, "scale": scale, "months": {}}
    for month in task.months:
        if month not in history.index:
            continue
        scheduled = _band(CrimeForecaster().fit(history.loc[:month - 1]), 1).iloc[0]
        out["months"][str(month)] = {
            "actual": float(history[month]),
            "never": _row(never.loc[month]), "schedule": _row(scheduled),
        }
    return out


def _row(row: pd.Series) -> dict[str, float]:
    return {"yhat": float(row["yhat"]), "yhat_lower": float(row["yhat_lower"]), "yhat_upper": float(row["yhat_upper"])}


def fit_at(task: tuple[SeriesTask, pd.Period]) -> dict[str, dict[str, float]]:
    """Forecasts of one series from a model trained through ``origin``, for the months after it."""
    quiet_stan_logging()
    series, origin = task
    ahead = [m for m in series.months if m > origin]
    if not ahead:
        return {}
    band = _band(CrimeForecaster().fit(series.history.loc[:origin]), (ahead[-1] - origin).n)
    return {str(m): _row(band.loc[m]) for m in ahead}


def month_scores(month: str, results: list[dict[str, Any]], forecasts: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """A month's MASE and band coverage over the series that have it, for one policy's forecasts."""
    errors, inside = [], []
    for r in results:
        cell = r["months"].get(month)
        forecast = forecasts.get(r["label"], {}).get(month)
        if cell is None or forecast is None:
            continue
        errors.append(abs(cell["actual"] - forecast["yhat"]) / r["scale"])
        inside.append(forecast["yhat_lower"] <= cell["actual"] <= forecast["yhat_upper"])
    return {"mase": round(float(np.mean(errors)), 4) if errors else None,
            "coverage": round(float(np.mean(inside)), 4) if inside else None}


def errors_of(month: str, results: list[dict[str, Any]], forecasts: dict[str, dict[str, dict[str, float]]]
              ) -> dict[str, dict[str, float]]:
    return {r["label"]: drift.band_errors([{"month": month, **forecasts[r["label"]][month]}],
                                          {month: r["months"][month]["actual"]})
            for r in results if month in r["months"] and month in forecasts.get(r["label"], {})}


def replay(tasks: list[SeriesTask], rule: drift.DriftRule, rates: list[float], workers: int | None) -> dict[str, Any]:
    started = time.monotonic()
    results = map_processes(replay_series, tasks, workers, StderrProgress("never + schedule"))
    fit_s = time.monotonic() - started
    months = [str(m) for m in tasks[0].months]
    by_policy: dict[str, dict[str, dict[str, dict[str, float]]]] = {
        p: {r["label"]: {m: c[p] for m, c in r["months"].items()} for r in results} for p in ("never", "schedule")}
    by_policy["alarm"] = {label: dict(f) for label, f in by_policy["never"].items()}
    kept: dict[str, dict[str, dict[str, float]]] = {"schedule": {}, "alarm": {}}
    alarm_retrains, records = [], []
    for month in months:
        step_started = time.monotonic()
        kept = {p: drift.merge_errors(kept[p], errors_of(month, results, by_policy[p])) for p in kept}
        decision = drift.decide(kept["schedule"], rule)
        other_rates = {str(q): drift.decide(kept["schedule"], drift.DriftRule(q=q, min_cells=rule.min_cells))["alarm"]
                       for q in rates}
        alarm_policy = drift.decide(kept["alarm"], rule)
        if alarm_policy["alarm"] and month != months[-1]:  # the alarm-only policy retrains now
            origin = pd.Period(month, "M")
            refits = map_processes(fit_at, [(t, origin) for t in tasks], workers)
            for task, forecast in zip(tasks, refits):
                by_policy["alarm"][task.label].update(forecast)
            alarm_retrains.append(month)
        records.append({
            "month": month, "alarm": decision["alarm"], "evidence": decision["evidence"],
            "retrains": ["schedule"] + (["alarm"] if decision["alarm"] else []),
            "live": {p: month_scores(month, results, by_policy[p]) for p in POLICIES},
            "alarm_at_rates": other_rates, "alarm_policy_alarm": alarm_policy["alarm"],
            "step_s": round(time.monotonic() - step_started + fit_s / len(months), 2),
        })
        e = decision["evidence"]
        print(f"{month}: alarm {decision['alarm']} ({e['series_moved']}/{e['series_tested']} moved), "
              f"MASE never {records[-1]['live']['never']['mase']} schedule {records[-1]['live']['schedule']['mase']} "
              f"alarm {records[-1]['live']['alarm']['mase']}", file=sys.stderr)
    return {"months": records, "alarm_policy_retrains": alarm_retrains, "seconds": round(time.monotonic() - started, 1),
            "series_results": results, "forecasts": by_policy}  # per policy, label -> month -> the forecast it served


def summary(records: list[dict[str, Any]], rates: list[float]) -> dict[str, Any]:
    months = [r["month"] for r in records]
    calm = [r for r in records if CALM[0] <= r["month"] <= CALM[1]]

    def mean_mase(policy: str, rows: list[dict[str, Any]]) -> float | None:
        values = [r["live"][policy]["mase"] for r in rows if r["live"][policy]["mase"] is not None]
        return round(float(np.mean(values)), 4) if values else None

    after = {name: [r for r in records if start <= r["month"] < str(pd.Period(start, "M") + 12)]
             for name, start in BREAKS.items()}
    first_alarm_after_covid = next((r["month"] for r in records if r["month"] >= BREAKS["covid"] and r["alarm"]), None)
    return {
        "months": len(records), "from": months[0], "to": months[-1],
        "alarm_months": [r["month"] for r in records if r["alarm"]],
        "alarm_share": round(sum(r["alarm"] for r in records) / len(records), 3),
        "calm_alarms": sum(r["alarm"] for r in calm), "calm_months": len(calm),
        "first_alarm_from_covid": first_alarm_after_covid,
        "alarm_share_at_rates": {str(q): round(sum(r["alarm_at_rates"][str(q)] for r in records) / len(records), 3) for q in rates},
        "calm_alarms_at_rates": {str(q): sum(r["alarm_at_rates"][str(q)] for r in calm) for q in rates},
        # the same decisions had the alarm needed k moved series of any level (series_moved at the rule's q)
        "alarm_months_if_moved_at_least": {str(k): [r["month"] for r in records if r["evidence"]["series_moved"] >= k]
                                       for k in (1, 2, 3, 5, 10)},
        "calm_alarms_if_moved_at_least": {str(k): sum(r["evidence"]["series_moved"] >= k for r in calm) for k in (1, 2, 3, 5, 10)},
        "live_mase": {p: mean_mase(p, records) for p in POLICIES},
        "live_mase_12_months_after": {name: {p: mean_mase(p, rows) for p in POLICIES} for name, rows in after.items() if rows},
        "coverage": {p: round(float(np.mean([r["live"][p]["coverage"] for r in records if r["live"][p]["coverage"] is not None])), 4)
                     for p in POLICIES},
    }


def load_tasks(paths: list[Path], as_of: pd.Period, steps: int) -> tuple[list[SeriesTask], list[dict[str, str]]]:
    return tasks_of(read_many(paths), as_of, steps)


def tasks_of(counts: MonthlyCounts, as_of: pd.Period, steps: int, only: Collection[str] | None = None
             ) -> tuple[list[SeriesTask], list[dict[str, str]]]:
    """The series worth a model at ``as_of`` (among ``only``, labels, when given), and the others with why not."""
    months = tuple(pd.period_range(as_of + 1, periods=steps, freq="M"))
    histories = series_histories(counts, only)
    keys, skipped = worth_a_model(histories, RetrainOptions(), through=as_of)
    return [SeriesTask(key.label, histories[key], as_of, months) for key in keys], skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append",
                        help="a tidy CSV month,community_area,primary_type,count (repeatable; default: the 2026 files)")
    parser.add_argument("--as-of", default="2018-12", help="the last month the first model knows (default 2018-12)")
    parser.add_argument("--steps", type=int, default=89, help="months replayed after it (default 89: to 2026-05)")
    parser.add_argument("--q", type=float, default=drift.DriftRule().q, help="the alarm's false-discovery rate")
    parser.add_argument("--rates", default="0.001,0.005,0.01,0.05", help="other rates to report")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--name", default="drift_replay")
    args = parser.parse_args(argv)
    paths = args.data or [default_data_dir() / name for name in DEFAULT_FILES]
    as_of = pd.Period(args.as_of, "M")
    tasks, skipped = load_tasks(paths, as_of, args.steps)
    if not tasks:
        parser.error("no series worth a model in the data at --as-of")
    last = max(t.history.index[-1] for t in tasks)
    if as_of + args.steps > last:
        parser.error(f"--as-of {as_of} + {args.steps} steps runs past the data's last complete month {last}")
    rates = [float(q) for q in args.rates.split(",") if q]
    rule = drift.DriftRule(q=args.q)
    done = replay(tasks, rule, rates, args.workers)
    write(args.name, {
        "data": [str(p) for p in paths], "as_of": str(as_of), "steps": args.steps,
        "series": len(tasks), "skipped": skipped, "rule": {"q": rule.q, "min_cells": rule.min_cells},
        "summary": summary(done["months"], rates), "alarm_policy_retrains": done["alarm_policy_retrains"],
        "seconds": done["seconds"], "months": done["months"],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
