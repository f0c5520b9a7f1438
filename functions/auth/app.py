"""POST /auth/token (OAuth2 password grant), GET /auth/me, user management (admin),
and the API's TOKEN authorizer. Routes in crimecast.api.auth, the flow in
crimecast.jobs.accounts."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from crimecast import settings
from crimecast.adapters.stores import get_stores
from crimecast.api import create_resolver
from crimecast.api.auth import router
from crimecast.domain.auth import AuthError
from crimecast.jobs import accounts

settings.check(*settings.AUTH)
logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver(router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)


@logger.inject_lambda_context
def authorizer_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    """TOKEN authorizer: a valid bearer JWT gets an Allow policy with its user and roles as context."""
    scheme, _, token_text = str(event.get("authorizationToken", "")).partition(" ")
    if scheme.lower() != "bearer":
        raise Exception("Unauthorized")  # API Gateway's documented way to answer 401
    try:
        identity = accounts.verify_bearer(get_stores(), token_text.strip())
    except AuthError:
        raise Exception("Unauthorized") from None
    arn_parts = str(event["methodArn"]).split("/")
    any_route = "/".join(arn_parts[:2]) + "/*/*"  # cache-safe: the same policy for every route
    return {
        "principalId": identity.username,
        "policyDocument": {"Version": "2012-10-17",
                           "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": any_route}]},
        "context": {"username": identity.username, "roles": ",".join(identity.roles)},
    }
