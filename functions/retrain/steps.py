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
    """One Distributed Map item: ``{"Items": [batch]}`` when batched by Step Functions, or a batch."""
    batches = event.get("Items") or [event]
    results = [retrain.train_batch(get_stores(), batch) for batch in batches]
    return {"trained": [s for r in results for s in r["trained"]], "failed": [f for r in results for f in r["failed"]]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def promote_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    return retrain.promote(get_stores(), event["run_id"], event["version"], event.get("results", []))
