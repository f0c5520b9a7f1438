"""Retraining: POST /retrain and the monthly schedule start the workflow; the Step
Functions state machine then calls plan_handler, train_handler (once per batch, in a
Distributed Map) and promote_handler."""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import lifecycle, retrain
from crimecast.api import create_resolver, storage
from crimecast.api.retrain import router

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("source") == "aws.events":  # the monthly schedule
        return lifecycle.request_retrain(storage(), trigger="schedule")
    return app.resolve(event, context)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def plan_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    batch_size = int(os.environ.get("RETRAIN_BATCH_SIZE", retrain.DEFAULT_BATCH_SIZE))
    return retrain.plan(storage(), event["run_id"], batch_size)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def train_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """One Distributed Map item: ``{"Items": [batch]}`` when batched by Step Functions, or a batch."""
    batches = event.get("Items") or [event]
    results = [retrain.train_batch(storage(), batch) for batch in batches]
    return {"trained": [s for r in results for s in r["trained"]], "failed": [f for r in results for f in r["failed"]]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def promote_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return retrain.promote(storage(), event["run_id"], event["version"], event.get("results", []))
