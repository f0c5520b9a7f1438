"""Routes of the evaluate function: accuracy of a series or of all, run status, and the model
versions (admin: list, and serve a previous one again)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, Field

from crimecast.adapters.stores import get_stores
from crimecast.api import has_role, require_role
from crimecast.jobs import forecasts, models, pipeline, runs

router = Router()


@router.get("/evaluate", summary="Metrics of one series, or the summary over all")
def evaluate(community_area: Annotated[str | None, Query(max_length=64)] = None,
             crime_type: Annotated[str | None, Query(max_length=64)] = None,
             version: Annotated[str | None, Query(max_length=40, pattern=r"^v[0-9TZ]+$")] = None) -> dict[str, Any]:
    return forecasts.accuracy(get_stores(), community_area, crime_type, version)


@router.post("/evaluate", summary="Score the champion on the months since arrived (admin); may start a retrain")
def evaluate_now() -> dict[str, Any]:
    from crimecast.jobs import pipeline  # the jobs and pandas: only on this admin route

    require_role(router, "admin")
    return pipeline.evaluate_live(get_stores(), trigger="api")


@router.get("/runs", summary="Recent runs of one kind, newest first (an admin also gets each failure's detail)")
def recent_runs(kind: Annotated[str, Query(pattern="^(ingest|retrain|evaluate|promote)$")] = "retrain",
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    return {"runs": runs.recent_runs(get_stores(), kind, limit, admin=has_role(router, "admin"))}


@router.get("/runs/<run_id>", summary="Status of an ingest, retrain or evaluation run (an admin also gets its error detail)")
def run_status(run_id: Annotated[str, Path(max_length=80, pattern=r"^[A-Za-z0-9T_-]+$")]) -> dict[str, Any]:
    stores = get_stores()
    admin = has_role(router, "admin")
    # The execution is found by its ARN, which only an admin's answer shows.
    return runs.for_reader(pipeline.run_with_workflow(stores, runs.get_run(stores, run_id, admin=True)), admin)


VERSION_PATTERN = r"^v[0-9TZ]+$"


class PromoteRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=models.MAX_REASON)


@router.get("/models", summary="Every model version: backtest and live accuracy, which serves (admin)")
def list_models() -> dict[str, Any]:
    require_role(router, "admin")
    return models.list_versions(get_stores())


@router.post("/models/<version>/promote", summary="Serve a previous model version again (admin; a rollback, with why)")
def promote_model(version: Annotated[str, Path(max_length=40, pattern=VERSION_PATTERN)],
                  request: Annotated[PromoteRequest, Body()]) -> dict[str, Any]:
    require_role(router, "admin")
    who = str((router.current_event.request_context.authorizer or {}).get("username") or "unknown")
    return models.promote_version(get_stores(), version, request.reason, who)
