"""Retraining: POST /retrain and the monthly schedule start the workflow; the Step
Functions state machine then calls plan_handler, train_handler (once per batch, in a
Distributed Map) and promote_handler."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.adapters.stores import get_stores
from crimecast.api import create_resolver
from crimecast.api.retrain import router
from crimecast.jobs import pipeline, retrain

settings.check(*settings.RETRAIN)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("source") == "aws.events":  # the monthly schedule
        return pipeline.request_retrain(get_stores(), trigger="schedule")
    return app.resolve(event, context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return retrain.plan(get_stores(), event["run_id"])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def train_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """One Distributed Map item: ``{"Items": [batch]}`` when batched by Step Functions, or a batch."""
    batches = event.get("Items") or [event]
    results = [retrain.train_batch(get_stores(), batch) for batch in batches]
    return {"trained": [s for r in results for s in r["trained"]], "failed": [f for r in results for f in r["failed"]]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def promote_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return retrain.promote(get_stores(), event["run_id"], event["version"], event.get("results", []))
