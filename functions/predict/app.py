"""GET /health, /predict, /predict/map, /catalog and /boundaries: reads precomputed
forecasts; also the API's documentation, /openapi.json and Swagger UI at /docs.

The public read path, kept small for its cold start (bench/cold_import.py): no pandas,
no Prophet and no pydantic, since it answers from DynamoDB alone and binds its query
parameters without Powertools' validation (crimecast.api.predict). It also goes without
Powertools' Tracer, whose X-Ray SDK import doubled this function's cold start; Lambda's
active tracing still records every invocation.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.api import DOCS_PATH, OPENAPI_PATH, create_resolver
from crimecast.api.predict import router

settings.check(*settings.PREDICT)
logger = Logger()
metrics = Metrics()
app = create_resolver(router, validation=False)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("resource") in (OPENAPI_PATH, DOCS_PATH):
        from crimecast.api.openapi import documentation  # every route module and pydantic: only when asked

        return documentation().resolve(event, context)
    return app.resolve(event, context)
