"""GET /health, /predict, /predict/map, /openapi.json: reads precomputed forecasts.

No pandas and no Prophet on this path: it answers from DynamoDB alone. It also goes
without Powertools' Tracer: importing the X-Ray SDK doubled this function's cold start
(bench/cold_import.py), and Lambda's active tracing still records every invocation.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast.api import create_resolver, openapi_json, predict_router

logger = Logger()
metrics = Metrics()
app = create_resolver(predict_router)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
