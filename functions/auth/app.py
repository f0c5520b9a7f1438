"""POST /auth/token (OAuth2 password grant), GET /auth/me, user management (admin)
and the API's TOKEN authorizer."""

import json
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from crimecast import auth
from crimecast.api import create_resolver, require_role, storage
from crimecast.errors import NotFoundError

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = create_resolver()


def _oauth_error(status: int, error: str, description: str) -> Response[dict[str, Any]]:
    """RFC 6749 section 5.2 error body."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": error, "error_description": description},
                    headers={"Cache-Control": "no-store"})


def _form(raw: str | None, content_type: str) -> dict[str, str]:
    if not raw or len(raw) > 4096:
        return {}
    if content_type.startswith("application/json"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw).items()}


@app.post("/auth/token")
def token() -> Response[dict[str, Any]]:
    headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    form = _form(app.current_event.decoded_body, headers.get("content-type", "application/x-www-form-urlencoded"))
    if form.get("grant_type") != "password":
        if not form.get("grant_type"):
            return _oauth_error(400, "invalid_request", "grant_type, username and password are required")
        return _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password or len(username) > auth.MAX_FIELD_LENGTH:
        return _oauth_error(400, "invalid_request", "grant_type, username and password are required")
    user = storage().get_user(username)
    try:
        identity = auth.authenticate(user, password)
    except auth.AuthError:
        if user:
            storage().put_user(auth.after_failure(user, auth.LockoutPolicy.from_env()))
        logger.info("login refused")
        metrics.add_metric(name="LoginRefused", unit="Count", value=1)
        return _oauth_error(401, "invalid_grant", "invalid username or password")
    if user and ("failed_attempts" in user or "locked_until" in user):
        storage().put_user(auth.after_success(user))
    lifetime = auth.token_lifetime_seconds()
    access_token = auth.generate_token(identity.username, identity.roles, lifetime_seconds=lifetime)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, headers={"Cache-Control": "no-store"},
                    body={"access_token": access_token, "token_type": "bearer",
                          "expires_in": lifetime, "scope": " ".join(identity.roles)})


@app.get("/auth/me")
def me() -> dict[str, Any]:
    context = app.current_event.request_context.authorizer or {}
    return {"username": context.get("username"), "roles": [r for r in str(context.get("roles", "")).split(",") if r]}


class NewUser(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
    password: Annotated[str, Field(min_length=12, max_length=auth.MAX_FIELD_LENGTH)]
    role: Literal["viewer", "admin"] = "viewer"


@app.post("/auth/users")
def add_user(user: NewUser) -> Response[dict[str, Any]]:
    require_role(app, "admin")
    roles = sorted({user.role, "viewer"})
    storage().put_user({"username": user.username, "password_hash": auth.hash_password(user.password), "roles": roles},
                       only_if_new=True)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body={"username": user.username, "roles": roles})


@app.delete("/auth/users/<name>")
def delete_user(name: Annotated[str, Path(max_length=64)]) -> Response[str]:
    require_role(app, "admin")
    if not storage().delete_user(name):
        raise NotFoundError(f"no user {name!r}")
    return Response(status_code=204, body="")


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
        identity = auth.verify_token(token_text.strip())
    except auth.AuthError:
        raise Exception("Unauthorized") from None
    if not auth.usable(storage().get_user(identity.username)):  # deleted or disabled since the token was issued
        raise Exception("Unauthorized")
    arn_parts = str(event["methodArn"]).split("/")
    any_route = "/".join(arn_parts[:2]) + "/*/*"  # cache-safe: the same policy for every route
    return {
        "principalId": identity.username,
        "policyDocument": {"Version": "2012-10-17",
                           "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": any_route}]},
        "context": {"username": identity.username, "roles": ",".join(identity.roles)},
    }
