"""The read path, served by the predict function: health, forecasts, the map, the catalog.

No pydantic here (see the package docstring): query parameters are bound by
``query_parameters``, and the domain (``forecasts``) checks areas, types, months and
ranges. Annotations are evaluated eagerly (no ``from __future__ import annotations``) so
the OpenAPI document reads real types from the signatures.
"""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crimecast.adapters.stores import get_stores
from crimecast.api import query_parameters
from crimecast.jobs import forecasts

router = Router()


@router.get("/health", summary="Liveness: the function answers")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/predict", summary="History, forecast and accuracy of one series",
            description="community_area: area number 1..77, area name, or 'city'. "
                        "crime_type: a crime type (e.g. ASSAULT) or ALL. months: months ahead, 1..24.")
@query_parameters(router)
def predict(community_area: str = "city", crime_type: str = "ALL", months: int = 12) -> dict[str, Any]:
    return forecasts.prediction(get_stores(), community_area, crime_type, months)


@router.get("/catalog", summary="The serving model version, its crime types and series")
def catalog() -> dict[str, Any]:
    return forecasts.catalog(get_stores())


@router.get("/boundaries", summary="GeoJSON of the 77 community areas, as ingested")
def boundaries() -> Response[str]:
    return Response(status_code=200, content_type="application/geo+json", body=forecasts.boundaries(get_stores()))


@router.get("/predict/map", summary="Every area's forecast for one month, ranked",
            description="crime_type: a crime type or ALL. month: YYYY-MM; default: the first forecast month.")
@query_parameters(router)
def predict_map(crime_type: str = "ALL", month: str | None = None) -> dict[str, Any]:
    return forecasts.area_map(get_stores(), crime_type, month)
