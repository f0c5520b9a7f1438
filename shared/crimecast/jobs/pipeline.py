"""The one place that starts the service's long jobs and chains them.

ingest -> live evaluation after every published ingest -> retrain when accuracy fell
past the threshold. On AWS each step starts elsewhere (the ingest Lambda invoking itself
asynchronously, the retrain state machine), and so on the local stack, whose embedded
AWS runs them. The steps themselves are in :mod:`~crimecast.jobs.ingest`, :mod:`~crimecast.jobs.live_evaluation`
and :mod:`~crimecast.jobs.retrain`, which know nothing of each other.

Entry points: ``request_ingest`` (API and schedule: queue a run, start its worker),
``ingest_worker`` (the worker: do the run, hand over when short of time, evaluate),
``ingest_now`` (CLI and local stack: all of it in this process, or carry on a run),
``record_async_failure`` (a worker invocation Lambda gave up on: its run ends failed),
``evaluate_live`` and ``request_retrain``.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
from typing import Any

from crimecast import settings
from crimecast.adapters.stores import Stores
from crimecast.domain.errors import ConfigurationError, ConflictError, CrimecastError, NotFoundError
from crimecast.jobs import forecasts, ingest, live_evaluation, retrain, runs
from crimecast.jobs.counts import current_manifest, load_counts

logger = logging.getLogger(__name__)
WORKER_EVENT_KEY = ingest.WORKER_EVENT_KEY  # an invocation of the ingest function carrying this key is a worker

# --- ingest -----------------------------------------------------------------------------------


def request_ingest(stores: Stores, trigger: str, *, idempotency_key: str | None = None, context: Any = None,
                   **options: Any) -> dict[str, Any]:
    """Queue an ingest run and start its worker; the queued run (the API answers 202 with it).

    With ``idempotency_key`` a repeated request gets the first one's run back instead of
    starting another (or a 409 while another run is in progress)."""
    function_name = getattr(context, "function_name", None)

    def start() -> dict[str, Any]:
        run = ingest.open_run(stores, trigger, **options)
        try:
            start_ingest_worker(stores, run["run_id"], function_name)
        except Exception as exc:
            ingest.Lease(stores, run["run_id"]).release()
            runs.fail_run(stores, run["run_id"], {"code": "worker_not_started", "message": "could not start the ingest worker",
                                                  "detail": runs.describe_error(exc)["detail"]})
            raise
        return run

    if idempotency_key is None:
        return start()
    from crimecast.adapters.idempotency import run_once

    return run_once(stores, "ingest-start", {"trigger": trigger, "key": idempotency_key, **options}, start, context)


def start_ingest_worker(stores: Stores, run_id: str, function_name: str | None = None, leg: int = 0) -> None:
    """Start the worker of a queued run: an asynchronous invocation of the ingest Lambda (the
    function itself: AWS_LAMBDA_FUNCTION_NAME)."""
    name = function_name or settings.load(settings.LaunchSettings).function_name
    if not name:
        raise ConfigurationError("no ingest worker: AWS_LAMBDA_FUNCTION_NAME is not set (the ingest function "
                                 "invokes itself; ingest_now runs a whole ingest in this process)")
    stores.launcher.invoke_async(name, ingest.worker_event(run_id, leg))


def ingest_worker(stores: Stores, run_id: str, *, leg: int = 0, deadline: Callable[[], float] | None = None,
                  function_name: str | None = None, **options: Any) -> dict[str, Any]:
    """Do (or carry on) a run; when short of time hand over to a new worker, and when this
    call published, score the champion on the new months (a run that had already succeeded,
    e.g. a worker event delivered again, is returned as it is)."""
    done_before = runs.get_run(stores, run_id)["status"] == "succeeded"
    view = ingest.execute(stores, run_id, deadline=deadline, **options)
    if view["status"] == "running":  # out of time here: a new invocation carries on from the checkpoint
        start_ingest_worker(stores, run_id, function_name, leg + 1)
    if view["status"] != "succeeded" or done_before:
        return view
    return after_ingest(stores, view)


WORKER_FAILED = "worker_failed"
# The conditions of a Lambda invocation record (what an OnFailure destination receives).
_GAVE_UP = {"RetriesExhausted": "Lambda ran it {attempts} times and gave up",
            "EventAgeExceeded": "its invocation waited past its maximum age and Lambda dropped it "
                                "after {attempts} attempt(s)"}


def record_async_failure(stores: Stores, record: dict[str, Any]) -> dict[str, Any] | None:
    """A failed asynchronous invocation of the ingest function, as Lambda's invocation record
    (its OnFailure destination) says it: a worker's run, unless it has ended meanwhile, ends
    failed with the reason and lets its lease go; the run's view. None when no run ended here:
    the record names none (a scheduled invocation, another function's, a schedule event
    EventBridge could not deliver), or its run had ended (the same record read again)."""
    payload, response = record.get("requestPayload"), record.get("responsePayload")
    job = payload.get(WORKER_EVENT_KEY) if isinstance(payload, dict) else None
    if not isinstance(job, dict) or not job.get("run_id"):
        return None
    run_id, leg = str(job["run_id"]), int(job.get("leg", 0))
    try:
        run = runs.get_run(stores, run_id)
    except NotFoundError:
        return None
    if run["kind"] != "ingest" or run["status"] in runs.ENDED:
        return None
    context = record.get("requestContext") or {}
    condition = str(context.get("condition"))
    why = _GAVE_UP.get(condition, "Lambda gave up on it ({condition})").format(
        attempts=context.get("approximateInvokeCount", "?"), condition=condition)
    error_type = str(response.get("errorType") or "")[:80] if isinstance(response, dict) else ""
    message = f"the ingest worker (leg {leg}) failed: {why}" + (f"; its last error: {error_type}" if error_type else "")
    detail = f"{condition}: {json.dumps(response)}"  # the error's text: an admin's to read
    view = runs.fail_run(stores, run_id, {"code": WORKER_FAILED, "message": message, "detail": detail},
                         {"phase": "failed"})
    ingest.Lease(stores, run_id).release()
    return view


def ingest_now(stores: Stores, trigger: str, source: ingest.Source | None = None, *, resume_run: str | None = None,
               progress: ingest.Progress | None = None, page_size: int | None = None, **options: Any) -> dict[str, Any]:
    """A whole run in this process (CLI, local stack, tests); its final view. Without
    ``source`` the portal is read (``options["source_label"]``: its URL). ``resume_run``
    carries on a run that crashed or failed, from its checkpoint."""
    extra: dict[str, Any] = {"progress": progress} if progress else {}
    if resume_run is None:
        if source is not None:
            options["source_label"] = source.describe()
        run_id = ingest.open_run(stores, trigger, **options)["run_id"]
    else:
        run_id = resume_run
        extra["resume"] = True
    return ingest_worker(stores, run_id, source=source, page_size=page_size, **extra)


def after_ingest(stores: Stores, view: dict[str, Any]) -> dict[str, Any]:
    """New months in: score the champion on them (which may start a retrain). An ingest does
    not fail because of it, whatever goes wrong; the outcome is noted on the ingest run."""
    try:
        evaluated = evaluate_live(stores, trigger=f"after ingest {view['run_id']}")
    except NotFoundError:
        note: dict[str, Any] = {"skipped": "no model has been trained yet: nothing to score"}
    except Exception as exc:  # noqa: BLE001 - the counts are published: the ingest stands, the failure is recorded
        if not isinstance(exc, CrimecastError):
            logger.exception("live evaluation after ingest %s failed", view["run_id"])
        error = runs.describe_error(exc)
        return runs.update_run(stores, view["run_id"], "succeeded",
                               {"live_evaluation": {"error": error["message"], "error_code": error["code"]}},
                               admin_only={"error_detail": f"live evaluation: {error['detail']}"})
    else:
        note = {"run_id": evaluated["run_id"], "series_evaluated": evaluated["detail"]["series_evaluated"],
                "retrain": evaluated["detail"]["retrain"]}
    return runs.update_run(stores, view["run_id"], "succeeded", {"live_evaluation": note})


# --- live evaluation and retrain ------------------------------------------------------------


def evaluate_live(stores: Stores, counts: Any = None, threshold: settings.LiveThreshold | None = None,
                  trigger: str = "api") -> dict[str, Any]:
    """Score the champion on what has arrived, record it, and start a retrain if it degraded."""
    threshold = threshold or settings.load(settings.LiveThreshold)
    version = forecasts.champion_version(stores)  # NotFoundError before any run is recorded
    counts = counts if counts is not None else load_counts(stores)
    run = runs.start_run(stores, "evaluate", {"trigger": trigger})
    try:
        detail, reason = live_evaluation.score_champion(stores, version, counts, threshold, run["run_id"])
    except Exception as exc:
        runs.fail_run(stores, run["run_id"], exc)
        raise
    if reason:
        try:
            retrain_run = request_retrain(stores, trigger="evaluate", reason=reason)
        except ConflictError as exc:  # one is running already (on data at most a day older): not a second
            detail["retrain"] = {"started": False, "reason": reason, "already_running": exc.run_id}
        except Exception as exc:  # the retrain it calls for did not start (e.g. AccessDenied): not left queued
            runs.fail_run(stores, run["run_id"], exc)
            raise
        else:
            detail["retrain"] = {"started": True, "reason": reason, "run_id": retrain_run["run_id"]}
    return runs.update_run(stores, run["run_id"], "succeeded", detail)


def request_retrain(stores: Stores, trigger: str, reason: str | None = None) -> dict[str, Any]:
    """Record a retrain run and start the retrain workflow for it: the Step Functions state
    machine (on the local stack, the embedded one)."""
    target = settings.load(settings.RetrainTarget)  # a state machine, or a ConfigurationError
    detail: dict[str, Any] = {"trigger": trigger, **({"reason": reason} if reason else {})}
    run_id = runs.new_run_id("retrain")
    # recorded before the start: the execution may move the run on at once
    detail["execution_arn"] = execution_arn(target.retrain_state_machine_arn, run_id)
    retrain.take_lease(stores, run_id)  # ConflictError (409) naming the running retrain
    try:
        run = runs.start_run(stores, "retrain", detail, run_id=run_id)
    except BaseException:
        retrain.release_lease(stores, run_id)
        raise
    try:
        stores.launcher.start_workflow(target.retrain_state_machine_arn, run_id, {"run_id": run_id})
    except Exception as exc:
        retrain.release_lease(stores, run_id)
        runs.fail_run(stores, run_id, exc)
        raise
    return run


def scheduled_retrain(stores: Stores) -> dict[str, Any]:
    """The monthly schedule's retrain, unless a retrain has already trained on the counts there
    are now (the one the drift alarm started after the same ingest): on the same counts the same
    code trains the same models again, so the schedule records a run that says which retrain
    knows them, and trains nothing. A ConflictError while a retrain runs (that one is the month's)."""
    version = (current_manifest(stores) or {}).get("version")
    done = trained_on(stores, version) if version else None
    if done is None:
        return request_retrain(stores, trigger="schedule")
    run = runs.start_run(stores, "retrain", {"trigger": "schedule"})
    reason = (f"not retrained: run {done['run_id']} ({done['detail'].get('trigger', 'a retrain')}) already trained "
              f"on counts version {version}, the newest")
    return runs.update_run(stores, run["run_id"], "succeeded", {"skipped": True, "reason": reason,
                                                              "counts_version": version, "trained_by": done["run_id"]})


def trained_on(stores: Stores, counts_version: str, newest: int = 20) -> dict[str, Any] | None:
    """The newest retrain among the last ``newest`` that succeeded in training on ``counts_version``
    (its plan pinned it), promoted or not; None when none did."""
    for item in stores.runs.newest("retrain", newest):
        run = runs.view(item)
        detail = run.get("detail", {})
        if run["status"] == "succeeded" and not detail.get("skipped") and detail.get("counts_version") == counts_version:
            return run
    return None


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution of ``state_machine_arn`` named ``name``."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def run_with_workflow(stores: Stores, run: dict[str, Any]) -> dict[str, Any]:
    """A retrain run's view with its execution's status and each state's outcome (from the execution
    history) under ``detail.workflow``; unchanged when it has no execution or it cannot be read."""
    arn = run.get("detail", {}).get("execution_arn")
    if run.get("kind") != "retrain" or not arn:
        return run
    try:
        workflow = stores.launcher.workflow_history(arn)
    except Exception as exc:  # noqa: BLE001 - the run record stands without it
        logger.error("execution history of %s not read: %s", arn, exc)  # a refusal names the action and the role
        return run
    return {**run, "detail": {**run["detail"], "workflow": workflow}}

