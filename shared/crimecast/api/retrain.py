"""Route of the retrain function: start a retrain run (admin)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from . import require_role, storage

router = Router()


@router.post("/retrain", summary="Start a retrain run (admin)")
def start_retrain() -> Response[dict[str, Any]]:
    from .. import lifecycle

    require_role(router, "admin")
    run = lifecycle.request_retrain(storage(), trigger="api")
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=run)
