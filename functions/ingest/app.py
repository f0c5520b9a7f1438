"""POST /ingest (admin), the daily EventBridge schedule, the ingest worker, and the
async-failures queue (what Lambda and EventBridge gave up on).

The API and the schedule only start a run (a queued run record holding the ingest
lease) and invoke this same function asynchronously with a worker event: API Gateway
cuts requests at 29 s, an ingest takes minutes. The worker invocation does the work,
and hands over to a new invocation when its 15 minutes run short. All three are
idempotent (Powertools idempotency on the request id, the event id, the run and leg).
"""

import json

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.adapters.idempotency import run_once
from crimecast.adapters.stores import get_stores
from crimecast.api import create_resolver
from crimecast.api.ingest import router
from crimecast.domain.errors import ConflictError
from crimecast.jobs import pipeline

settings.check(*settings.INGEST)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(router)
queue_batch = BatchProcessor(event_type=EventType.SQS)  # a message that fails is read again, not the batch


def _scheduled(event: dict, context: LambdaContext) -> dict:
    key = str(event.get("id") or event.get("time"))  # EventBridge may deliver an event twice: same id
    try:
        return pipeline.request_ingest(get_stores(), trigger="schedule", idempotency_key=key, context=context)
    except ConflictError as exc:  # yesterday's run is still going (or a backfill): nothing to add
        logger.warning("scheduled ingest skipped", extra={"reason": str(exc)})
        return {"status": "skipped", "reason": str(exc)}


def _worker(job: dict, context: LambdaContext) -> dict:
    run_id, leg = str(job["run_id"]), int(job.get("leg", 0))
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def work() -> dict:
        return pipeline.ingest_worker(get_stores(), run_id, leg=leg, function_name=context.function_name,
                                      deadline=(lambda: remaining() / 1000) if remaining else None)

    view = run_once(get_stores(), "ingest-worker", {"run_id": run_id, "leg": leg}, work, context)
    if view["status"] in ("succeeded", "failed"):
        metrics.add_metric(name=f"IngestRuns{view['status'].capitalize()}", unit=MetricUnit.Count, value=1)
    if view["status"] == "failed":
        logger.error("ingest run failed", extra={"run_id": run_id, "error": view["detail"].get("error")})
    return view


def _async_failure(record: SQSRecord) -> None:
    """One message of the async-failures queue: Lambda's record of an invocation it gave up on
    (a worker's run then ends failed, with the reason), or a schedule event EventBridge could not
    deliver. Logged as an error either way: something did not run."""
    body = json.loads(record.body)
    view = pipeline.record_async_failure(get_stores(), body)
    context = body.get("requestContext") or {}
    extra = {
        "condition": context.get("condition"), "function": context.get("functionArn"),
        "attempts": context.get("approximateInvokeCount"), "error": body.get("responsePayload"),
        "run_failed": view and view["run_id"],
    }
    if view:
        metrics.add_metric(name="IngestRunsFailed", unit=MetricUnit.Count, value=1)
    if not context:  # EventBridge's dead letter: the event itself, why in the message's attributes
        code = record.message_attributes["ERROR_CODE"]  # None when absent
        extra |= {"undelivered_event": body, "error_code": code.string_value if code else None}
    logger.error("asynchronous work failed for good", extra=extra)


def _is_from_queue(event: dict) -> bool:
    records = event.get("Records")
    return isinstance(records, list) and bool(records) and records[0].get("eventSource") == "aws:sqs"


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if pipeline.WORKER_EVENT_KEY in event:
        return _worker(event[pipeline.WORKER_EVENT_KEY], context)
    if _is_from_queue(event):  # the async-failures queue (its AsyncFailures event)
        return process_partial_response(event=event, record_handler=_async_failure, processor=queue_batch, context=context)
    if event.get("source") == "aws.events":  # the schedule, not API Gateway
        return _scheduled(event, context)
    return app.resolve(event, context)
