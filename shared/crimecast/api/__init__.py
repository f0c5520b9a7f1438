"""The HTTP face of the service: the resolver every function builds, and one error format.

An adapter, not domain code: each route parses its parameters, calls one domain function
and returns its result. The routes live in one module per function (``predict``,
``evaluate``, ``ingest``, ``retrain``), so a function imports only what it serves, and
``openapi`` describes them all from the same definitions.

This module and ``predict`` never import pydantic: the predict function answers the
public read path, and Powertools' request validation (pydantic) alone would double its
cold start (bench/cold_import.py). Its routes bind their query parameters with
``query_parameters`` instead; the other functions validate through Powertools.

A request body is read as JSON only (``bodies.json_body``): another media type is a 415, malformed
JSON a 400, whichever route reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
import inspect
import json
from typing import Any, TypeVar, get_args, get_type_hints

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from crimecast import security_headers, settings
from crimecast.api.bodies import UnsupportedMediaTypeError
from crimecast.domain.errors import (
    ConfigurationError,
    ConflictError,
    CrimecastError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OutOfRangeError,
)

logger = Logger(child=True)

# Domain errors to HTTP: the status comes from the error's type, never from its text.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (OutOfRangeError, 422, "out_of_range"),
    (InvalidInputError, 400, "invalid_request"),
    (ConflictError, 409, "conflict"),
    (ForbiddenError, 403, "forbidden"),
)
MAX_QUERY_LENGTH = 64  # longest query value a route bound by ``query_parameters`` accepts
# The documentation routes (served by ``openapi``, which a caller imports only when asked).
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"

RouteResult = TypeVar("RouteResult")


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"error": {"code": code, "message": message, **extra}}))


def _map_domain_error(exc: CrimecastError) -> Response:
    for error_type, status, code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            run_id = getattr(exc, "run_id", None)  # a conflict with a run in progress names it
            return error_response(status, code, str(exc), **({"run_id": run_id} if run_id else {}))
    if isinstance(exc, ConfigurationError):
        logger.error("misconfigured deployment", extra={"reason": str(exc)})
    else:
        logger.exception("unmapped domain error")
    return error_response(500, "internal_error", "the service failed; the error is logged")


def _map_validation_error(exc: RequestValidationError) -> Response:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}" for e in exc.errors()
    )
    return error_response(422, "validation_error", problems or "the request is not valid")


def _map_unsupported_media_type(exc: UnsupportedMediaTypeError) -> Response:
    return error_response(415, "unsupported_media_type", str(exc))


def _route_not_found(exc: Exception) -> Response:
    return error_response(404, "not_found", "no such route")


def _map_unexpected(exc: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(500, "internal_error", "the service failed; the error is logged")


API_POLICY = "default-src 'none'; frame-ancestors 'none'"  # a JSON answer loads nothing and is never framed


class SecureRestResolver(APIGatewayRestResolver):
    """The REST resolver whose every answer, errors included (they bypass Powertools'
    middlewares), carries the security headers; an answer that set its own CSP keeps it
    (Swagger UI at /docs). With validation on, a route's body is read by ``bodies.json_body``."""

    def __init__(self, *, enable_validation: bool, cors: CORSConfig | None) -> None:
        super().__init__(enable_validation=enable_validation, cors=cors)
        if enable_validation:
            # Powertools' own validation would read a form as the body's fields and answer any
            # other type with a 500; this one reads every body with json_body. Imported here:
            # it loads pydantic, which the predict function (no validation) does without.
            from crimecast.api.validation import JsonBodyValidation

            self._request_validation_middleware = JsonBodyValidation()

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = super().resolve(event, context)
        headers = result.setdefault("multiValueHeaders", {})
        for name, value in security_headers.security_headers(API_POLICY).items():
            if name not in headers and name not in (result.get("headers") or {}):
                headers[name] = [value]
        return result


def create_resolver(*routers: Router, validation: bool = True,
                    resolver: type[SecureRestResolver] = SecureRestResolver) -> APIGatewayRestResolver:
    """A REST resolver (``resolver``) with CORS for the web origin and one error format.

    ``validation`` turns on Powertools' pydantic request validation; routers bound with
    ``query_parameters`` do without it.
    """
    origin = settings.load(settings.ApiSettings).web_origin
    cors = CORSConfig(allow_origin=origin, allow_headers=["Authorization", "Content-Type"]) if origin else None
    app = resolver(enable_validation=validation, cors=cors)
    app.exception_handler(CrimecastError)(_map_domain_error)
    app.exception_handler(RequestValidationError)(_map_validation_error)
    app.exception_handler(UnsupportedMediaTypeError)(_map_unsupported_media_type)
    app.not_found(_route_not_found)
    app.exception_handler(Exception)(_map_unexpected)
    for router in routers:
        app.include_router(router)
    return app


def _query_error(name: str, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", name), "msg": message, "type": "value_error"}])


def _parse_query_value(name: str, raw: str, annotation: Any) -> str | int:
    if len(raw) > MAX_QUERY_LENGTH:
        raise _query_error(name, f"at most {MAX_QUERY_LENGTH} characters")
    if int in (get_args(annotation) or (annotation,)):
        try:
            return int(raw)
        except ValueError:
            raise _query_error(name, f"must be a whole number, got {raw!r}") from None
    return raw


def query_parameters(router: Router) -> Callable[[Callable[..., RouteResult]], Callable[[], RouteResult]]:
    """Call a route with its keyword parameters taken from the query string, typed by its
    annotations (``str``, ``int``, or either or ``None``), without pydantic.

    An absent parameter keeps its default; a value that does not parse, or is longer than
    ``MAX_QUERY_LENGTH``, is a 422 naming it. The route keeps its signature (``__wrapped__``),
    so the OpenAPI document still lists each parameter with its type and default.
    """

    def decorate(route: Callable[..., RouteResult]) -> Callable[[], RouteResult]:
        hints = get_type_hints(route)
        names = list(inspect.signature(route).parameters)

        @wraps(route)
        def bound() -> RouteResult:
            query = router.current_event.query_string_parameters or {}
            return route(**{name: _parse_query_value(name, query[name], hints[name]) for name in names if name in query})

        return bound

    return decorate


def has_role(router: Router, role: str) -> bool:
    """Whether the authorizer vouched for ``role`` (it passes the roles as context)."""
    context = router.current_event.request_context.authorizer or {}
    return role in str(context.get("roles", "")).split(",")


def require_role(router: Router, role: str) -> None:
    """403 unless the authorizer vouched for ``role``."""
    if not has_role(router, role):
        raise ForbiddenError(f"this action needs the {role} role")
