"""The template's REST API: its routes, each function's timeout and name, its CORS preflight,
and API Gateway's proxy event for a request."""

from __future__ import annotations

from dataclasses import dataclass
import os
import re
import time
from typing import Any
from urllib.parse import parse_qs
import uuid

from crimecast.adapters import limits
from local.aws.lambda_runtime import Functions
from local.aws.template import ApiRoute, api_routes, default_authorizer, function_name, function_timeout, resources_of_type
from local.gateway.authorizer import TokenAuthorizer

# Tests that need every request re-authorized set it to 0 (the template's TTL otherwise).
AUTHORIZER_TTL_ENV = "CRIMECAST_AUTHORIZER_TTL"


def cors_of(template: dict[str, Any]) -> dict[str, str]:
    """The preflight answer's headers SAM builds from the Api's ``Cors`` (its quoted values unquoted;
    the origin is WEB_ORIGIN, which the template's ``!Sub`` names)."""
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        cors = api["Properties"].get("Cors") or {}
        if cors:
            plain = {k: v.strip("'") for k, v in cors.items() if isinstance(v, str)}
            return {"Access-Control-Allow-Origin": os.environ.get("WEB_ORIGIN", "*"),
                    "Access-Control-Allow-Headers": plain.get("AllowHeaders", ""),
                    "Access-Control-Allow-Methods": plain.get("AllowMethods", ""),
                    **({"Access-Control-Max-Age": plain["MaxAge"]} if "MaxAge" in plain else {})}
    return {}


def _path_pattern(path: str) -> re.Pattern[str]:
    """An API Gateway resource path (``/runs/{run_id}``) as a pattern naming its parameters."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")


@dataclass
class Gateway:
    """API Gateway's REST API as the template declares it: its routes, its TOKEN authorizer, each
    function's timeout and name on the embedded Lambda, and API Gateway's own limits (29 s, 10 MB;
    6 MB in and out of a Lambda). ``state``: the stack's start-up (``ready``, ``step``)."""

    routes: list[tuple[re.Pattern[str], ApiRoute]]
    authorizer: TokenAuthorizer
    functions: Functions
    state: dict[str, Any]
    timeouts: dict[str, float]  # per function logical id
    names: dict[str, str]  # per function logical id, its name on the embedded Lambda
    cors: dict[str, str]
    integration_timeout: float = limits.API_GATEWAY_TIMEOUT_S

    @classmethod
    def from_template(cls, template: dict[str, Any], state: dict[str, Any]) -> Gateway:
        routes = [(_path_pattern(r.path), r) for r in api_routes(template)]
        spec = default_authorizer(template)
        if (ttl := os.environ.get(AUTHORIZER_TTL_ENV)) is not None:
            spec = spec._replace(ttl=float(ttl))
        functions = {r.function for _, r in routes} | {spec.function}
        timeouts = {name: function_timeout(template, name) for name in functions}
        names = {name: function_name(template, name) for name in functions}
        runner = Functions()
        authorizer = TokenAuthorizer(spec, runner, timeouts[spec.function], names[spec.function])
        return cls(routes, authorizer, runner, state, timeouts, names, cors_of(template))

    @property
    def ready(self) -> bool:
        return bool(self.state.get("ready"))

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for pattern, route in self.routes:
            found = pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def is_api_path(self, path: str) -> bool:
        """A resource of the API (whatever the method)."""
        return any(pattern.match(path) for pattern, _ in self.routes)

    def invoke(self, route: ApiRoute, event: dict[str, Any], give_up_at: float) -> Any:
        """The route's function's answer to ``event``, within its timeout and API Gateway's."""
        return self.functions.invoke(route.codeuri, route.handler, event, self.timeouts.get(route.function),
                                     give_up_at, name=self.names.get(route.function))


def proxy_event(route: ApiRoute, path: str, params: dict[str, str], query: str, headers: dict[str, str],
                body: str | None, authorizer: dict[str, Any] | None, client: str) -> dict[str, Any]:
    """API Gateway's proxy integration event for a request on ``route``."""
    multi = parse_qs(query, keep_blank_values=True)
    return {
        "resource": route.path, "path": path, "httpMethod": route.method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None, "pathParameters": params or None,
        "stageVariables": None, "body": body, "isBase64Encoded": False,
        "requestContext": {"resourcePath": route.path, "httpMethod": route.method, "path": path, "stage": "local",
                           "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
                           "identity": {"sourceIp": client}, "authorizer": authorizer},
    }
