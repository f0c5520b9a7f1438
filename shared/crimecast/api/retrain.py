"""Route of the retrain function: start a retrain run (admin)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from crimecast.adapters.stores import get_stores
from crimecast.api import require_role

router = Router()


@router.post("/retrain", summary="Start a retrain run (admin)")
def start_retrain() -> Response[dict[str, Any]]:
    from crimecast.jobs import pipeline

    require_role(router, "admin")
    run = pipeline.request_retrain(get_stores(), trigger="api")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=run)
