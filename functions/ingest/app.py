"""POST /ingest (admin) and the daily EventBridge schedule: start an ingest run."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import lifecycle
from crimecast.api import create_resolver, ingest_router, storage

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(ingest_router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("source") == "aws.events":  # the schedule, not API Gateway
        return lifecycle.request_ingest(storage(), trigger="schedule")
    return app.resolve(event, context)
