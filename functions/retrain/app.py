"""Retraining: POST /retrain and the monthly schedule start the workflow; the Step
Functions state machine then calls the steps in steps.py (plan, train once per batch in a
Distributed Map, promote), in functions of their own."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.adapters.stores import get_stores
from crimecast.api import create_resolver
from crimecast.api.retrain import router
from crimecast.domain.errors import ConflictError
from crimecast.jobs import pipeline

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
        try:
            return pipeline.scheduled_retrain(get_stores())
        except ConflictError as exc:  # one is running: that one is this month's retrain (no error, no redelivery)
            logger.info("scheduled retrain not started: one is running", extra={"run_id": exc.run_id})
            return {"started": False, "already_running": exc.run_id}
    return app.resolve(event, context)
