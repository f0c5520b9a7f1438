"""Route of the ingest function: start an ingest run (admin)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from crimecast.adapters.stores import get_stores
from crimecast.api import require_role

router = Router()


class IngestRequest(BaseModel):
    """What to pull: the trailing window (default) or the whole history."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["incremental", "backfill"] = "incremental"
    window_months: int = Field(13, ge=2, le=480, description="months re-pulled and replaced by an incremental run")


@router.post("/ingest", summary="Start an ingest run (admin): 202 with the queued run, 409 while one runs")
def start_ingest(request: Annotated[IngestRequest | None, Body()] = None) -> Response[dict[str, Any]]:
    """The run is done asynchronously (follow it at GET /runs/{run_id}). A repeated request
    with the same ``Idempotency-Key`` header gets the same run back."""
    from crimecast.jobs import pipeline

    require_role(router, "admin")
    options = request or IngestRequest()
    event = router.current_event
    key = event.headers.get("Idempotency-Key") or event.request_context.request_id
    run = pipeline.request_ingest(get_stores(), trigger="api", idempotency_key=key, context=router.lambda_context,
                                   mode=options.mode, window_months=options.window_months)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=run)
