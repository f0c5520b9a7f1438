"""The HTTP face of the service: routes, request validation and error mapping.

An adapter, not domain code: each route parses its parameters, calls one domain
function and returns its result. Every Lambda builds its resolver here with the routers
it serves, so the errors look the same everywhere, and ``/openapi.json`` can describe
the whole API from the same route definitions. Heavy domain modules are imported inside
the routes that need them, so the predict function never loads pandas or Prophet.
"""

from __future__ import annotations

from functools import cache
import json
import os
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from . import forecasts, runs
from .errors import (
    ConfigurationError,
    ConflictError,
    CrimecastError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OutOfRangeError,
)
from .storage import Storage

logger = Logger(child=True)

API_TITLE = "crimecast API"
API_VERSION = "1.0.0"

# Domain errors to HTTP: the status comes from the error's type, never from its text.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (OutOfRangeError, 422, "out_of_range"),
    (InvalidInputError, 400, "invalid_request"),
    (ConflictError, 409, "conflict"),
    (ForbiddenError, 403, "forbidden"),
)


@cache
def storage() -> Storage:
    """The deployment's storage, read from the environment once per warm container."""
    return Storage.from_env()


def error_response(status: int, code: str, message: str) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps({"error": {"code": code, "message": message}}))


def _map_domain_error(exc: CrimecastError) -> Response:
    for error_type, status, code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return error_response(status, code, str(exc))
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


def _route_not_found(exc: Exception) -> Response:
    return error_response(404, "not_found", "no such route")


def _map_unexpected(exc: Exception) -> Response:
    logger.exception("unexpected error")
    return error_response(500, "internal_error", "the service failed; the error is logged")


def create_resolver(*routers: Router) -> APIGatewayRestResolver:
    """A REST resolver with validation, CORS for the web origin and one error format."""
    origin = os.environ.get("WEB_ORIGIN")
    cors = CORSConfig(allow_origin=origin, allow_headers=["Authorization", "Content-Type"]) if origin else None
    app = APIGatewayRestResolver(enable_validation=True, cors=cors)
    app.exception_handler(CrimecastError)(_map_domain_error)
    app.exception_handler(RequestValidationError)(_map_validation_error)
    app.not_found(_route_not_found)
    app.exception_handler(Exception)(_map_unexpected)
    for router in routers:
        app.include_router(router)
    return app


# --- predict -----------------------------------------------------------------------

predict_router = Router()

AreaQuery = Annotated[str, Query(description="area number 1..77, area name, or 'city'", max_length=64)]
TypeQuery = Annotated[str, Query(description="crime type (e.g. ASSAULT) or ALL", max_length=64)]


@predict_router.get("/health", summary="Liveness: the function answers")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@predict_router.get("/predict", summary="History, forecast and accuracy of one series")
def predict(
    community_area: AreaQuery = "city",
    crime_type: TypeQuery = "ALL",
    months: Annotated[int, Query(description="months ahead, 1..24")] = 12,
) -> dict[str, Any]:
    return forecasts.prediction(storage(), community_area, crime_type, months)


@predict_router.get("/catalog", summary="The serving model version, its crime types and series")
def catalog() -> dict[str, Any]:
    return forecasts.catalog(storage())


@predict_router.get("/boundaries", summary="GeoJSON of the 77 community areas, as ingested")
def boundaries() -> Response[str]:
    return Response(status_code=200, content_type="application/geo+json", body=forecasts.boundaries(storage()))


@predict_router.get("/predict/map", summary="Every area's forecast for one month, ranked")
def predict_map(
    crime_type: TypeQuery = "ALL",
    month: Annotated[str | None, Query(description="YYYY-MM; default: the first forecast month", pattern=r"^\d{4}-\d{2}$")] = None,
) -> dict[str, Any]:
    return forecasts.area_map(storage(), crime_type, month)


# --- evaluate and runs -------------------------------------------------------------

evaluate_router = Router()


@evaluate_router.get("/evaluate", summary="Metrics of one series, or the summary over all")
def evaluate(community_area: Annotated[str | None, Query(max_length=64)] = None,
             crime_type: Annotated[str | None, Query(max_length=64)] = None,
             version: Annotated[str | None, Query(max_length=40, pattern=r"^v[0-9TZ]+$")] = None) -> dict[str, Any]:
    return forecasts.evaluation(storage(), community_area, crime_type, version)


@evaluate_router.post("/evaluate", summary="Score the champion on the months since arrived (admin); may start a retrain")
def evaluate_now() -> dict[str, Any]:
    from . import evaluation

    require_role(evaluate_router, "admin")
    return evaluation.evaluate_live(storage(), trigger="api")


@evaluate_router.get("/runs", summary="Recent runs of one kind, newest first")
def recent_runs(kind: Annotated[str, Query(pattern="^(ingest|retrain|evaluate)$")] = "retrain",
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    return {"runs": runs.recent_runs(storage(), kind, limit)}


@evaluate_router.get("/runs/<run_id>", summary="Status of an ingest, retrain or evaluation run")
def run_status(run_id: Annotated[str, Path(max_length=80, pattern=r"^[A-Za-z0-9T_-]+$")]) -> dict[str, Any]:
    return runs.get_run(storage(), run_id)


# --- ingest and retrain (admin) ------------------------------------------------------

ingest_router = Router()
retrain_router = Router()


def require_role(router: Router, role: str) -> None:
    """403 unless the authorizer vouched for ``role`` (it passes the roles as context)."""
    context = router.current_event.request_context.authorizer or {}
    if role not in str(context.get("roles", "")).split(","):
        raise ForbiddenError(f"this action needs the {role} role")


class IngestRequest(BaseModel):
    """What to pull: the trailing window (default) or the whole history."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["incremental", "backfill"] = "incremental"
    window_months: int = Field(13, ge=2, le=480, description="months re-pulled and replaced by an incremental run")


@ingest_router.post("/ingest", summary="Start an ingest run (admin): 202 with the queued run, 409 while one runs")
def start_ingest(request: Annotated[IngestRequest | None, Body()] = None) -> Response[dict[str, Any]]:
    """The run is done asynchronously (follow it at GET /runs/{run_id}). A repeated request
    with the same ``Idempotency-Key`` header gets the same run back."""
    from . import lifecycle

    require_role(ingest_router, "admin")
    options = request or IngestRequest()
    event = ingest_router.current_event
    key = event.headers.get("Idempotency-Key") or event.request_context.request_id
    run = lifecycle.request_ingest(storage(), trigger="api", idempotency_key=key, context=ingest_router.lambda_context,
                                   mode=options.mode, window_months=options.window_months)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=run)


@retrain_router.post("/retrain", summary="Start a retrain run (admin)")
def start_retrain() -> Response[dict[str, Any]]:
    from . import lifecycle

    require_role(retrain_router, "admin")
    run = lifecycle.request_retrain(storage(), trigger="api")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=run)


ALL_ROUTERS = (predict_router, evaluate_router, ingest_router, retrain_router)


def openapi_json() -> str:
    """The OpenAPI document of every route of the service, whichever function serves it."""
    return create_resolver(*ALL_ROUTERS).get_openapi_json_schema(title=API_TITLE, version=API_VERSION)
