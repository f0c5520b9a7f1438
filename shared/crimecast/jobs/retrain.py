"""Retraining every series: plan -> train batches (in parallel) -> promote.

On AWS a Step Functions Distributed Map drives the three steps; on one machine
:func:`run_locally` drives the same functions over every core. Nothing that grows with
the number of series passes through the state machine: the plan writes the batches and
its manifest to S3, each batch writes its result (its series' forecasts) to S3 and returns a
reference to it, the Map's ResultWriter writes those references to S3, and promote reads them
all back from there (:func:`map_run_outputs`), makes the forecasts add up across levels and
writes each one to the series table, once. A candidate version is written beside the champion
and only served after :func:`promote` flips the pointer, so a crash at any point leaves the
champion serving and a rerun starts clean.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
import json
import logging
import math
import statistics
import time
from typing import Any

from crimecast import settings
from crimecast.adapters.series_store import SUMMARY
from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConflictError, InvalidInputError, NotFoundError
from crimecast.domain.keys import SeriesKey
from crimecast.domain.months import complete_counts
from crimecast.jobs import forecasts, runs
from crimecast.jobs.counts import current_manifest, load_counts
from crimecast.settings import RetrainOptions

logger = logging.getLogger(__name__)

WORST_SERIES_SHOWN = 10
MISSING_SHOWN = 10  # missing series named on a run refused for them
LEASE_NAME = "lease#retrain"
LEASE_GRACE_S = 60  # a lease whose holder has no run record yet is young, not dead, for this long


# --- one retrain at a time -------------------------------------------------------------


def take_lease(stores: Stores, run_id: str, options: RetrainOptions | None = None) -> None:
    """Hold the retrain lease for ``run_id`` (the run ends: ``release_lease``; its holder
    dies: it lapses after ``lease_seconds``). ConflictError naming the running run otherwise."""
    options = options or settings.load(RetrainOptions)
    now = int(time.time())
    until = now + options.lease_seconds
    blocker = stores.leases.take(LEASE_NAME, run_id, until, now)
    if blocker is None:
        return
    holder = str(blocker.get("holder"))
    other = stores.runs.get(holder)
    taken_at = int(blocker.get("lease_until", until)) - options.lease_seconds
    ended = other is not None and other.get("status") in ("succeeded", "failed")
    dead = other is not None and not ended and _execution_over(stores, other, now)
    if (ended or dead or (other is None and now - taken_at > LEASE_GRACE_S)) and \
            stores.leases.take(LEASE_NAME, run_id, until, now, steal_from=holder) is None:
        if dead:  # its workflow ended without recording it (its Catch never ran): the run ends now
            runs.fail_run(stores, holder, {"code": "workflow_failed", "message": "the retrain workflow ended without "
                                           "recording its end; the champion keeps serving",
                                           "detail": f"execution {dead}"})
        return  # its holder ended (or never recorded its run) without letting go
    lapses = datetime.fromtimestamp(int(blocker.get("lease_until", until)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ConflictError(f"retrain run {holder} is in progress (its lease lapses at {lapses} if it never ends): "
                        f"follow it at GET /runs/{holder}", run_id=holder)


def _execution_over(stores: Stores, run: dict[str, Any], now: int) -> str | None:
    """How the execution of a run that has not ended ended (e.g. ``ABORTED``, or ``missing``
    past the grace period), or None while it runs or cannot be told."""
    arn = json.loads(run.get("detail") or "{}").get("execution_arn")
    if not arn:
        return None
    try:
        status = stores.launcher.workflow_status(arn)
    except Exception as exc:  # noqa: BLE001 - cannot tell: the lease stands until it lapses
        # AWS's refusal names the action and the role: a missing grant must not pass unseen
        logger.error("states:DescribeExecution of %s failed, the lease stands until it lapses: %s", arn, exc)
        return None
    if status is None:  # recorded before its start: young, or its start never happened
        started = datetime.strptime(run["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        return "missing" if now - started > LEASE_GRACE_S else None
    return None if status == "RUNNING" else f"{arn} {status}"


def release_lease(stores: Stores, run_id: str) -> None:
    """Let the next retrain start (a no-op unless ``run_id`` holds the lease)."""
    stores.leases.release(LEASE_NAME, run_id)


def record_failure(stores: Stores, run_id: str, error: str, cause: str | None = None) -> dict[str, Any]:
    """The workflow failed (its Catch): the run ends ``failed`` with the state's error (its
    cause, which may name resources, for admins only) unless it already ended, and the lease goes."""
    try:
        run = runs.get_run(stores, run_id)
        if run["status"] in runs.ENDED:
            return run
        promoted = _end_promoted_if_switched(stores, run, f"{error}: {cause or ''}")
        if promoted is not None:
            return promoted
        return runs.fail_run(stores, run_id, {"code": "workflow_failed",
                                              "message": f"the retrain workflow failed ({str(error)[:100]}); the champion keeps serving",
                                              "detail": f"{error}: {cause or ''}"[:4000]})
    finally:
        release_lease(stores, run_id)


def _end_promoted_if_switched(stores: Stores, run: dict[str, Any], failure: str) -> dict[str, Any] | None:
    """A run whose promote step failed after switching the champion (writing the promotion's
    record or the run's own) did promote: it ends ``succeeded`` and promoted, saying what was
    not recorded. None (nothing written) when the run's version was not switched by it. (The
    record the pointer carries is written beside the version by the next promotion.)"""
    version = run["detail"].get("version")
    record = forecasts.promotion_record(stores, version) if version else None  # reads the series table, no more
    if (record or {}).get("run_id") != run["run_id"]:
        return None
    reason = (record or {}).get("reason") or ALREADY_PROMOTED
    return runs.update_run(stores, run["run_id"], "succeeded", {
        "promotion": {"promoted": True, "reason": reason},
        "note": "the promote step failed after the switch: this version serves, but its summary was not recorded"},
        admin_only={"error_detail": failure[:4000]})


# --- plan ------------------------------------------------------------------------------


def skip_reason(history: Any, options: RetrainOptions) -> str | None:
    """Why a series gets no model, or None when it is worth one (known months only: a gap
    between two sources counts for nothing)."""
    from crimecast.domain.model import MIN_TRAINING_MONTHS

    known = history.dropna()
    needed = MIN_TRAINING_MONTHS + options.horizon
    if len(known) < needed:
        return f"only {len(known)} complete months; {needed} needed to train and backtest"
    nonzero = int((known.iloc[-60:] > 0).sum())
    if nonzero < options.min_nonzero_months:
        return f"only {nonzero} months with any report in the last five years; {options.min_nonzero_months} needed"
    return None


def series_histories(counts: Any, only: Collection[str] | None = None) -> dict[SeriesKey, Any]:
    """Every series' monthly counts, among ``only`` (labels) when given: read once, judged at many origins."""
    return {key: counts.series(key) for key in counts.keys() if only is None or key.label in only}


def worth_a_model(histories: Mapping[SeriesKey, Any], options: RetrainOptions, through: Any = None
                  ) -> tuple[list[SeriesKey], list[dict[str, str]]]:
    """The series worth a model on the data through month ``through`` (all of it when None), and
    the others with why not (``skip_reason``): the one rule a retrain plans by, and the benches
    replay it with at past origins."""
    keys, skipped = [], []
    for key, history in histories.items():
        reason = skip_reason(history if through is None else history.loc[:through], options)
        if reason:
            skipped.append({"series": key.label, "reason": reason})
        else:
            keys.append(key)
    return keys, skipped


def plan(stores: Stores, run_id: str, batch_size: int | None = None, options: RetrainOptions | None = None,
         counts: Any = None, counts_version: str | None = None) -> dict[str, Any]:
    """List the series worth a model, in batches, with a manifest of what is skipped and why.

    Pins what the run is based on: the counts version (every batch reads exactly that one,
    whatever an ingest publishes meanwhile) and the champion (promote replaces only that one).
    ``counts``: already loaded, of ``counts_version``."""
    options = options or settings.load(RetrainOptions)
    batch_size = batch_size or options.batch_size
    if counts is None:
        counts_version = (current_manifest(stores) or {}).get("version")
        counts = load_counts(stores, counts_version)  # None: "no monthly counts yet"
    try:
        champion: str | None = forecasts.champion_version(stores)
    except NotFoundError:
        champion = None
    version = f"v{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"[:-4] + "Z"
    only = options.forecast_only()
    keys, skipped = worth_a_model(series_histories(counts, only), options)
    planned = [key.label for key in keys]
    if only is not None:
        skipped += [{"series": key.label, "reason": "not among the series this deployment forecasts (CRIMECAST_FORECAST_SERIES)"}
                    for key in counts.keys() if key.label not in only]
    batches = [{"run_id": run_id, "version": version, "counts_version": counts_version, "batch": n,
                "series": planned[i:i + batch_size]} for n, i in enumerate(range(0, len(planned), batch_size))]
    prefix = f"runs/{run_id}"
    stores.blobs.put_json(f"{prefix}/batches.json", batches)
    stores.blobs.put_json(manifest_key(run_id), {"run_id": run_id, "version": version, "settings": asdict(options),
                                                 "counts_version": counts_version, "champion": champion,
                                                 "last_complete_month": str(counts.last_complete_month),
                                                 "unplaced_share": unplaced_shares(counts),
                                                 "planned": planned, "skipped": skipped})
    runs.update_run(stores, run_id, "running", {"version": version, "series_planned": len(planned),
                                                 "series_skipped": len(skipped), "batches": len(batches),
                                                 "counts_version": counts_version, "based_on_champion": champion})
    return {"run_id": run_id, "version": version, "batches_key": f"{prefix}/batches.json",
            "manifest_key": manifest_key(run_id), "batches": len(batches)}


def unplaced_shares(counts: Any, months: int = 12) -> dict[str, float]:
    """Per type (and ALL), the share of the city's reports of the last ``months`` that no area
    holds: what the area forecasts should leave out of the city's when they are made to add up.
    Only series that end with the city's own count."""
    city, placed = {}, {}
    for key in counts.keys():
        end = counts.data_end(key)
        if key.community_area is None:
            city[key.primary_type] = (end, float(counts.series(key).iloc[-months:].sum()))
        else:
            total = placed.setdefault(key.primary_type, {})
            total[end] = total.get(end, 0.0) + float(counts.series(key).iloc[-months:].sum())
    shares = {}
    for crime_type, (end, total) in city.items():
        inside = placed.get(crime_type, {}).get(end)
        if inside is not None and total > 0:
            shares[crime_type] = round(min(max(1 - inside / total, 0.0), 1.0), 6)
    return dict(sorted(shares.items()))


def reconcile_items(items: list[dict[str, Any]], unplaced: dict[str, float]) -> dict[str, Any]:
    """Make a candidate's forecasts add up across levels where the levels end in the same month:
    area x type to area totals, areas (less the unplaced share) and types to the city.
    Rewrites the items it changes in place (before they are stored: each is written once);
    says how many it changed and how far from coherent they are after."""
    import numpy as np

    from crimecast.domain.reconcile import Band, coherence_gaps, reconcile

    by_end: dict[str, dict[SeriesKey, tuple[dict[str, Any], dict[str, Any]]]] = {}
    for item in items:
        payload = json.loads(item["payload"])
        if payload.get("forecast"):
            by_end.setdefault(forecasts.data_through(payload) or "", {})[SeriesKey.parse(item["series"])] = (item, payload)
    changed, gaps = [], {}
    for end, group in sorted(by_end.items()):
        bands = {key: Band(*(np.array([row[c] for row in payload["forecast"]], dtype=float)
                             for c in ("yhat", "yhat_lower", "yhat_upper")), start=payload["forecast"][0]["month"])
                 for key, (_, payload) in group.items()}
        shares = covered_shares({key: payload for key, (_, payload) in group.items()})
        coherent = reconcile(bands, unplaced, coverage=shares)  # only forecasts that start in the same month add up
        for key, band in coherent.items():
            if band is bands[key]:
                continue
            item, payload = group[key]
            payload["forecast"] = [{**row, **model_row(row["month"], y, lo, hi)}
                                   for row, y, lo, hi in zip(payload["forecast"], band.yhat, band.lower, band.upper, strict=True)]
            payload["reconciled"] = True
            item["payload"] = json.dumps(payload)
            changed.append(item)
        gaps[end] = coherence_gaps(coherent, unplaced, shares)
    return {"series_adjusted": len(changed), "max_relative_gap": gaps}


def covered_shares(payloads: dict[SeriesKey, dict[str, Any]], months: int = 12) -> dict[SeriesKey, float]:
    """For each total among ``payloads`` (the city's ALL, each area's ALL, each city type), the
    share of its reports of the last ``months`` complete months that the finer series among
    them hold (the city types; the area's area x type cells; the type's area x type cells):
    what those add up to when reconciled. A type or cell with no forecast (too sparse, or its
    data end elsewhere) is not scaled up to stand for the reports it does not hold."""
    return shares_held({key: complete_counts(p.get("history", [])) for key, p in payloads.items()}, months)


def shares_held(counts: Mapping[SeriesKey, Mapping[str, float]], months: int = 12) -> dict[SeriesKey, float]:
    """:func:`covered_shares` from each series' complete months (month -> count), e.g. a backtest's
    history up to its origin."""
    from crimecast.domain.crime_types import ALL_TYPES

    children: dict[SeriesKey, list[SeriesKey]] = {}
    for key in counts:
        if key.primary_type != ALL_TYPES:
            children.setdefault(SeriesKey(key.community_area, ALL_TYPES), []).append(key)
            if key.community_area is not None and SeriesKey(key.community_area, ALL_TYPES) in counts:
                children.setdefault(SeriesKey(None, key.primary_type), []).append(key)  # cells reconcile() places
    shares = {}
    for parent, finer in children.items():
        if parent not in counts:
            continue
        common = [m for m in sorted(counts[parent])[-months:] if all(m in counts[c] for c in finer)]
        total = sum(counts[parent][m] for m in common)
        if total > 0:
            shares[parent] = round(sum(counts[c][m] for c in finer for m in common) / total, 6)
    return shares


def manifest_key(run_id: str) -> str:
    """The plan's manifest: every series planned, and every one skipped with its reason."""
    return f"runs/{run_id}/manifest.json"


def result_key(batch: dict[str, Any]) -> str:
    """Where a batch's result goes: one key per batch, so a retried batch overwrites its own."""
    return f"runs/{batch['run_id']}/results/{int(batch['batch']):05d}.json"


# --- train -----------------------------------------------------------------------------


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _mean_metrics(rows: list[dict[str, float | None]]) -> dict[str, float | None]:
    keys = rows[0].keys() if rows else ()
    result = {}
    for k in keys:
        values = [v for r in rows if (v := r[k]) is not None and math.isfinite(v)]
        result[k] = _finite_or_none(statistics.fmean(values)) if values else None
    return result


def backtest_origins(history: Any, options: RetrainOptions) -> list[Any]:
    """The backtest's origins, oldest first: the last ``backtest_origins`` yearly steps back from
    the last month that can be scored (an origin inside a gap between sources, or whose year
    after lies wholly in it, is passed over for an earlier one)."""
    from crimecast.domain.backtest import scorable_origin

    origins = []
    origin = history.index[-1] - options.horizon
    while len(origins) < options.backtest_origins and origin >= history.index[0]:
        if scorable_origin(history, origin, options.horizon):
            origins.append(origin)
        origin -= options.horizon
    return origins[::-1]


def backtest_series(history: Any, options: RetrainOptions) -> dict[str, Any]:
    """Yearly-origin backtest of the model and seasonal naive, on data before each origin only;
    unknown months (NaN) are not scored."""
    from crimecast.domain import metrics
    from crimecast.domain.model import CrimeForecaster, seasonal_naive

    model_rows, naive_rows, origins, wins = [], [], [], 0
    for origin in backtest_origins(history, options):
        train, test = history[history.index <= origin], history[history.index > origin].iloc[: options.horizon]
        actual, past = test.to_numpy(dtype=float), train.to_numpy(dtype=float)
        forecast = CrimeForecaster().fit(train).predict(len(actual))
        model = metrics.score(actual, forecast["yhat"], past, forecast["yhat_lower"], forecast["yhat_upper"])
        naive = metrics.score(actual, seasonal_naive(train, len(actual)), past)
        model_rows.append(model)
        naive_rows.append(naive)
        origins.append(str(origin))
        wins += model["mae"] < naive["mae"]
    return {"origins": origins, "beats_seasonal_naive": wins, "model": _mean_metrics(model_rows),
            "seasonal_naive": _mean_metrics(naive_rows)}


def model_row(month: str, yhat: float, lower: float, upper: float) -> dict[str, Any]:
    """A forecast month as the model (or reconciliation) made it, unrounded: a candidate's items
    keep these until they are published (forecasts.served_item rounds each once)."""
    return {"month": month, "yhat": float(yhat), "yhat_lower": float(lower), "yhat_upper": float(upper)}


def train_series(counts: Any, key: SeriesKey, version: str, trained_at: str,
                 options: RetrainOptions) -> tuple[dict[str, Any], str]:
    """One series: backtest, final fit on every complete month, forecast. Returns the item and the model JSON."""
    from crimecast.domain.model import CrimeForecaster

    history = counts.series(key)
    backtest = backtest_series(history, options)
    model = CrimeForecaster().fit(history)
    forecast = model.predict(options.forecast_months)
    rows = [model_row(str(r.month), r.yhat, r.yhat_lower, r.yhat_upper) for r in forecast.itertuples()]
    observed = counts.series(key, include_partial=True).dropna()  # no row for a month of a gap: unknown, not zero
    history_rows = [{"month": str(m), "count": int(c), "partial": m == counts.partial_month} for m, c in observed.items()]
    gaps = [(str(first), str(last)) for first, last in counts.data_gaps(key)]
    item = forecasts.series_item(key, version, trained_at, history_rows, rows, backtest, str(counts.data_end(key)), gaps)
    return item, model.to_json()


_pinned: dict[tuple[str, str], Any] = {}  # (bucket, counts version) -> its counts: the last version read here


def pinned_counts(stores: Stores, version: str | None) -> Any:
    """The counts of the version a plan pinned, read once per process, as a warm Lambda container
    keeps them for its next batch: a stored version never changes, and reading the whole city's
    takes seconds (every batch read it again). ``None``: the serving version, read each time."""
    if version is None:
        return load_counts(stores)
    key = (stores.blobs.bucket, version)
    if key not in _pinned:
        counts = load_counts(stores, version)
        _pinned.clear()  # one version kept: a new run's batches read a new one
        _pinned[key] = counts
    return _pinned[key]


def train_batch(stores: Stores, batch: dict[str, Any], counts: Any = None,
                options: RetrainOptions | None = None) -> dict[str, Any]:
    """Every series of one batch; a failing series is recorded, not fatal. The result
    (``{"trained": [labels], "failed": [...], "items": [forecast items]}``) goes to S3, where
    promote reads it; the return value is a small reference to it, whatever the batch's size and
    errors (a Step Functions state holds 256 KB)."""
    options = options or settings.load(RetrainOptions)
    # The version the plan pinned, not the serving one: an ingest during the run changes nothing here.
    counts = counts if counts is not None else pinned_counts(stores, batch.get("counts_version"))
    trained_at = runs.now_iso()
    items, failed = [], []
    for label in batch["series"]:
        try:
            item, model_json = train_series(counts, SeriesKey.parse(label), batch["version"], trained_at, options)
        except (InvalidInputError, ValueError, RuntimeError) as exc:
            error = runs.describe_error(exc)  # the message for every reader; the text for admins
            failed.append({"series": label, "code": error["code"], "error": error["message"], "detail": error["detail"][:1000]})
            continue
        stores.blobs.put_bytes(f"models/{batch['version']}/{label}.json", model_json.encode(), "application/json")
        items.append(item)
    key = result_key(batch)  # the items too: promote reconciles them across batches, then stores each once
    stores.blobs.put_json(key, {"trained": [i["series"] for i in items], "failed": failed, "items": items})
    return {"result_key": key, "trained": len(items), "failed": len(failed)}


def batch_results(stores: Stores, outputs: list[Any]) -> list[dict[str, Any]]:
    """The results the train outputs (``{"result_key"}`` or ``{"result_keys": [...]}``) refer to."""
    keys = [k for o in outputs if isinstance(o, dict) for k in (o.get("result_keys") or [o.get("result_key")]) if k]
    results = [stores.blobs.get_json(key) for key in keys]
    return [r for r in results if isinstance(r, dict)]


def map_run_outputs(stores: Stores, result_writer: dict[str, Any]) -> list[Any]:
    """The outputs of the Map's child executions that succeeded, as its ResultWriter wrote them.

    ``result_writer`` is the Map's ``ResultWriterDetails`` (``{"Bucket", "Key"}``): ``Key`` is a
    manifest, ``{"ResultFiles": {"SUCCEEDED": [{"Key", "Size"}], "FAILED": [...], "PENDING": [...]}}``,
    and each SUCCEEDED file is a JSON array of executions whose ``Output`` is JSON text. A
    batch that failed or never ran has no output: promote finds its series in no result.
    """
    if result_writer.get("Bucket") not in (None, stores.blobs.bucket):
        raise ValueError(f"the Map wrote its results to {result_writer['Bucket']!r}, not the data bucket")
    manifest = stores.blobs.get_json(result_writer["Key"])
    if manifest is None:
        raise NotFoundError(f"no Map results manifest at {result_writer['Key']!r}")
    outputs = []
    for part in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        for execution in stores.blobs.get_json(part["Key"]) or []:
            if execution.get("Output") is not None:
                outputs.append(json.loads(execution["Output"]))
    return outputs


# --- promote ---------------------------------------------------------------------------


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy over every series of a version, from the backtest metrics of its items.

    ``relative_mase``: the median over series of the model's backtest MASE divided by the
    seasonal naive's on the same origins, a skill comparable between versions whose
    backtests cover different years; ``data_through``: the newest month any series knows."""
    rows = []
    for item in items:
        payload = json.loads(item["payload"])
        metrics = payload["metrics"]
        rows.append({"series": item["series"], "model": metrics["model"], "naive": metrics["seasonal_naive"],
                     "data_through": forecasts.data_through(payload)})

    def spread(name: str) -> dict[str, float | None]:
        values = sorted(v for r in rows if (v := r["model"].get(name)) is not None)
        if not values:
            return {"median": None, "p25": None, "p75": None}
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        return {"median": round(statistics.median(values), 4), "p25": round(quartiles[0], 4), "p75": round(quartiles[2], 4)}

    comparable = [r for r in rows if r["model"].get("mae") is not None and r["naive"].get("mae") is not None]
    coverages = [c for r in rows if (c := r["model"].get("coverage")) is not None]
    worst = sorted((r for r in rows if r["model"].get("mase") is not None), key=lambda r: -r["model"]["mase"])
    ratios = [r["model"]["mase"] / r["naive"]["mase"] for r in rows
              if r["model"].get("mase") is not None and (r["naive"].get("mase") or 0) > 0]
    ends = [r["data_through"] for r in rows if r["data_through"]]
    return {
        "series": len(rows),
        "mae": spread("mae"),
        "mase": spread("mase"),
        "relative_mase": round(statistics.median(ratios), 4) if ratios else None,
        "data_through": max(ends) if ends else None,
        "share_beating_seasonal_naive": round(sum(r["model"]["mae"] < r["naive"]["mae"] for r in comparable) / len(comparable), 4)
        if comparable else None,
        "coverage": round(statistics.fmean(coverages), 4) if coverages else None,
        "worst": [{"series": r["series"], "mase": r["model"]["mase"], "mae": r["model"]["mae"]} for r in worst[:WORST_SERIES_SHOWN]],
    }


BROKEN_RELATIVE_MASE = 2.0  # a backtest error over twice the seasonal naive's on the same months: a broken candidate


def promotion_decision(candidate: dict[str, Any], champion: dict[str, Any] | None, tolerance: float) -> tuple[bool, str]:
    """Serve the candidate unless it is broken, or the champion knows the same months and does better.

    Like is compared with like: each version's backtest error relative to the seasonal
    naive's on its own origins (``relative_mase``). A candidate trained on newer data than
    the champion is served unless broken: the champion's backtest covered older years, so
    after a break a stale champion would otherwise keep serving a world that is gone. On the
    same data (two retrains of one month), the candidate must not be worse than the champion
    by more than ``tolerance``."""
    if not candidate["series"]:
        return False, "the candidate has no trained series"
    new = candidate.get("relative_mase")
    if new is None or not math.isfinite(new):
        return False, "the candidate's backtest has no error to compare with the seasonal naive's"
    skill = f"its backtest error is {new:.2f}x the seasonal naive's on the same months"
    if new > BROKEN_RELATIVE_MASE:
        return False, f"{skill}, more than {BROKEN_RELATIVE_MASE:.0f}x: the candidate is broken"
    if champion is None:
        return True, "no champion yet"
    new_end, old_end = candidate.get("data_through"), champion.get("data_through")
    if new_end and (old_end is None or new_end > old_end):
        return True, f"trained on data through {new_end}, newer than the champion's{f' ({old_end})' if old_end else ''}; {skill}"
    old = champion.get("relative_mase")
    if old is None:
        return True, f"the champion has no comparable backtest; {skill}"
    limit = old * (1 + tolerance)
    if new <= limit:
        return True, f"on the same data as the champion, {skill}, not worse than the champion's {old:.2f}x"
    return False, f"on the same data as the champion, {skill}, worse than the champion's {old:.2f}x (limit {limit:.2f}x)"


def _champion_summary(stores: Stores, version: str | None) -> dict[str, Any] | None:
    """Champion ``version``'s backtest summary (None: no champion, or no summary)."""
    if version is None:
        return None
    item = stores.series.get(SUMMARY, version)
    return json.loads(item["payload"]) if item else None


UNFINISHED = {"code": runs.INTERNAL, "error": "its training batch did not finish (the workflow gave up on it)"}


ALREADY_PROMOTED = "promoted by an earlier attempt of this step"


def promote(stores: Stores, run_id: str, version: str, outputs: list[Any],
            options: RetrainOptions | None = None) -> dict[str, Any]:
    """Summarise the candidate, judge it against the champion (promotion_decision), and switch if it wins.
    ``outputs``: what the train steps returned (references to their results in S3).

    Idempotent, as a retried step needs: a run that has ended is returned as it is, and a run
    whose earlier attempt switched the champion (then died, or its answer was lost) is
    recorded as promoted, not compared again with the version it now is."""
    options = options or settings.load(RetrainOptions)
    run = runs.get_run(stores, run_id)
    if run["status"] in runs.ENDED:
        release_lease(stores, run_id)
        return run
    results = batch_results(stores, outputs)  # a batch the Map tolerated as failed has no result
    trained = [label for r in results for label in r.get("trained", [])]
    failed = [f for r in results for f in r.get("failed", [])]
    manifest = stores.blobs.get_json(manifest_key(run_id)) or {}
    accounted = set(trained) | {f["series"] for f in failed}
    failed += [{"series": label, **UNFINISHED} for label in manifest.get("planned", []) if label not in accounted]
    keys = [SeriesKey.parse(label) for label in trained]
    items = list({i["series"]: i for r in results for i in r.get("items", [])}.values())
    coherence = reconcile_items(items, manifest.get("unplaced_share", {})) if options.reconcile else None
    summary = summarise(items)
    planned = manifest.get("planned", [])
    done = set(trained)
    missing = [label for label in planned if label not in done]  # in the plan's order
    # The champion this run was based on (its plan pinned it): the one it is compared with and replaces.
    based_on = manifest["champion"] if "champion" in manifest else _current_champion(stores)
    switched = forecasts.promoted_by_run(stores, version, run_id)
    if not switched:  # the one write of each forecast, reconciled (an earlier attempt that switched wrote them)
        forecasts.publish_version(stores, version, items)
    refused = not switched and bool(planned) and len(missing) > options.missing_tolerance * len(planned)
    if switched:  # an earlier attempt switched: its decision stands, as the switch recorded it
        promoted, reason = True, (forecasts.promotion_record(stores, version) or {}).get("reason") or ALREADY_PROMOTED
    elif refused:
        promoted, reason = False, (f"{len(missing)} of {len(planned)} planned series have no model, more than the "
                                   f"{options.missing_tolerance:.1%} tolerated: {', '.join(missing[:5])}"
                                   f"{', ...' if len(missing) > 5 else ''}")
    else:
        promoted, reason = promotion_decision(summary, _champion_summary(stores, based_on), options.promotion_tolerance)
    # Kept for every version, promoted or not; with the series the plan skipped, and why.
    forecasts.write_catalog(stores, version, keys, summary, manifest.get("skipped", []))
    superseded = None
    if switched:  # the switch is done; its record may not be written beside the version yet
        forecasts.write_promotion_record(stores, version)
    elif promoted:
        try:
            forecasts.promote(stores, version, runs.now_iso(), replaces=based_on, reason=reason, run_id=run_id)
        except ConflictError:
            superseded = _current_champion(stores)
            promoted, reason = False, (f"not promoted: this run was based on champion {based_on or '(none)'}, and "
                                       f"{superseded} was promoted meanwhile; a newer promotion is not overwritten")
    shown = [{"series": f["series"], "code": f.get("code", runs.INTERNAL), "error": f.get("error", runs.INTERNAL_MESSAGE)}
             for f in failed[:20]]
    details = [{"series": f["series"], "error": f.get("detail", f.get("error"))} for f in failed[:20]]
    detail: dict[str, Any] = {"version": version, "series_trained": len(trained), "series_failed": len(failed),
                              "failures": shown, "summary": summary, "coherence": coherence,
                              "promotion": {"promoted": promoted, "reason": reason}}
    if superseded:
        detail["promotion"]["superseded_by"] = superseded
    if missing:
        detail.update(series_missing=len(missing), missing_series=missing[:MISSING_SHOWN])
    if refused:
        detail.update(error=reason, error_code="series_missing")
    elif not summary["series"]:
        detail.update(error="no series could be trained", error_code="no_series_trained")
    run = runs.update_run(stores, run_id, "failed" if refused or not summary["series"] else "succeeded", detail,
                          admin_only={"failure_details": details or None})
    release_lease(stores, run_id)  # the run has ended: the next retrain may start
    return run


def _current_champion(stores: Stores) -> str | None:
    try:
        return forecasts.champion_version(stores)
    except NotFoundError:
        return None


# --- one machine -------------------------------------------------------------------------


def run_locally(stores: Stores, run_id: str | None = None, workers: int | None = None,
                progress: Callable[[int, int], None] | None = None, batch_size: int = 4,
                trigger: str = "cli") -> dict[str, Any]:
    """The whole workflow on this machine, batches spread over every core; returns a summary."""
    from crimecast.adapters.aws import reset_clients
    from crimecast.domain.parallel import map_processes

    started = time.monotonic()
    if run_id is None:  # started here (the CLI): one retrain at a time, as through the API
        run_id = runs.new_run_id("retrain")
        take_lease(stores, run_id)
        runs.start_run(stores, "retrain", {"trigger": trigger}, run_id=run_id)
    try:
        counts_version = (current_manifest(stores) or {}).get("version")
        counts = load_counts(stores, counts_version)
        planned = plan(stores, run_id, batch_size, counts=counts, counts_version=counts_version)
        batches = stores.blobs.get_json(planned["batches_key"])
        options = settings.load(RetrainOptions)

        def train(batch: dict[str, Any]) -> dict[str, Any]:
            reset_clients()  # a forked worker must not share the parent's connections
            return train_batch(stores, batch, counts, options)

        results = map_processes(train, batches, workers, progress)
        manifest = stores.blobs.get_json(planned["manifest_key"])  # before promote: the run ends there
        run = promote(stores, run_id, planned["version"], results, options)
    except Exception as exc:  # the state machine's Catch, on this machine: the run ends failed, the lease goes
        try:
            current = runs.get_run(stores, run_id)
            if current["status"] not in runs.ENDED and \
                    _end_promoted_if_switched(stores, current, runs.describe_error(exc)["detail"]) is None:
                runs.fail_run(stores, run_id, exc)
        finally:
            release_lease(stores, run_id)
        raise
    seconds = time.monotonic() - started
    detail = run["detail"]
    return {
        "run_id": run_id, "version": planned["version"], "series_planned": len(manifest["planned"]),
        "series_trained": detail["series_trained"], "series_skipped": len(manifest["skipped"]),
        "series_failed": detail["series_failed"], "wall_seconds": round(seconds, 2),
        "series_per_second": round(detail["series_trained"] / seconds, 3) if seconds else None,
        "promoted": detail["promotion"]["promoted"], "reason": detail["promotion"]["reason"],
    }
