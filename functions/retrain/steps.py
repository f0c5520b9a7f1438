"""The retrain workflow's steps, called by the Step Functions state machine: plan, train
(once per Distributed Map item) and promote. Functions of their own, without the API or a
way to start a retrain (the state machine starts them: they cannot name it), so their
cold start checks only the stores and the retrain's options."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.adapters.stores import get_stores
from crimecast.jobs import retrain

settings.check(*settings.RETRAIN_STEPS)
logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return retrain.plan(get_stores(), event["run_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def train_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """One Distributed Map item: ``{"Items": [batch]}`` when batched by Step Functions, or a batch.
    Returns where the results are (S3) and their counts: a few hundred bytes, whatever the batch."""
    batches = event.get("Items") or [event]
    refs = [retrain.train_batch(get_stores(), batch) for batch in batches]
    return {"result_keys": [r["result_key"] for r in refs], "trained": sum(r["trained"] for r in refs),
            "failed": sum(r["failed"] for r in refs)}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def promote_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """``{"run_id", "version", "map_results"}``: ``map_results`` is the Map's ResultWriterDetails
    (its child outputs are in S3); ``results``, a list of train outputs, when called directly."""
    stores = get_stores()
    outputs = (retrain.map_run_outputs(stores, event["map_results"]) if "map_results" in event
               else event.get("results", []))
    return retrain.promote(stores, event["run_id"], event["version"], outputs)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def fail_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """The state machine's Catch: ``{"run_id", "error": {"Error", "Cause"}}``. Ends the run
    failed with that error (unless it ended already) and releases the retrain lease."""
    error = event.get("error") or {}
    return retrain.record_failure(get_stores(), event["run_id"], str(error.get("Error", "unknown")), error.get("Cause"))
