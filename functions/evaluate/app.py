"""GET /evaluate (metrics of a series or the summary), POST /evaluate (live accuracy, admin),
GET /runs and GET /runs/{run_id}."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.api import create_resolver
from crimecast.api.evaluate import router

settings.check(*settings.EVALUATE)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
