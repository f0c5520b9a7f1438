"""The read path, served by the predict function: health, forecasts, the map, the catalog.

No pydantic here (see the package docstring): query parameters are bound by
``query_parameters``, and the domain (``forecasts``) checks areas, types, months and
ranges. Annotations are evaluated eagerly (no ``from __future__ import annotations``) so
the OpenAPI document reads real types from the signatures.
"""

import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crimecast.adapters.stores import get_stores
from crimecast.api import query_parameters
from crimecast.domain.errors import InvalidInputError
from crimecast.jobs import forecasts

router = Router()
CSV = "text/csv"
# A download's name goes between quotes in a header (Content-Disposition): anything but these
# (a quote, a semicolon, CR or LF, a non-ASCII letter) becomes "_".
UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._()-]")


def download_name(*parts: object) -> str:
    """``crimecast-<part>-<part>....csv``, each part made safe for the Content-Disposition header."""
    return "-".join(UNSAFE_IN_FILENAME.sub("_", str(part)) for part in ("crimecast", *parts)) + ".csv"


def _wants_csv(format: str | None) -> bool:  # noqa: A002 - the query parameter's name
    """CSV when asked by ``format=csv`` or by an Accept header that prefers text/csv."""
    if format is not None:
        if format not in ("csv", "json"):
            raise InvalidInputError(f"format must be csv or json, got {format!r}")
        return format == "csv"
    headers = router.current_event.headers or {}
    accept = next((v for k, v in headers.items() if k.lower() == "accept"), "") or ""
    return accept.split(",")[0].split(";")[0].strip().lower() == CSV


def _answer(doc: dict[str, Any], as_csv: bool, to_csv: Any, filename: str) -> Response[str] | dict[str, Any]:
    if not as_csv:
        return doc
    return Response(status_code=200, content_type=f"{CSV}; charset=utf-8", body=to_csv(doc),
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/health", summary="Liveness: the function answers")
def health() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/predict", summary="History, forecast and accuracy of one series",
            description="community_area: area number 1..77, area name, or 'city'. "
                        "crime_type: a crime type (e.g. ASSAULT) or ALL. months: months ahead, 1..24. "
                        "format=csv (or Accept: text/csv): the months as CSV.")
@query_parameters(router)
def predict(community_area: str = "city", crime_type: str = "ALL", months: int = 12,
            format: str | None = None) -> Any:  # noqa: A002 - the query parameter's name
    as_csv = _wants_csv(format)
    doc = forecasts.prediction(get_stores(), community_area, crime_type, months)
    name = download_name(doc["community_area"] or "city", doc["crime_type"], doc["model_version"])
    return _answer(doc, as_csv, forecasts.prediction_csv, name)


@router.get("/catalog", summary="The serving model version, its crime types and series")
def catalog() -> dict[str, Any]:
    return forecasts.catalog(get_stores())


@router.get("/boundaries", summary="GeoJSON of the 77 community areas, as ingested")
def boundaries() -> Response[str]:
    return Response(status_code=200, content_type="application/geo+json", body=forecasts.boundaries(get_stores()))


@router.get("/predict/map", summary="Every area's forecast for one month, ranked",
            description="crime_type: a crime type or ALL. month: YYYY-MM (400 when malformed, 422 when not "
                        "forecast); default: the first forecast month. format=csv (or Accept: text/csv): every area as CSV.")
@query_parameters(router)
def predict_map(crime_type: str = "ALL", month: str | None = None,
                format: str | None = None) -> Any:  # noqa: A002 - the query parameter's name
    as_csv = _wants_csv(format)
    doc = forecasts.area_map(get_stores(), crime_type, month)
    return _answer(doc, as_csv, forecasts.map_csv, download_name("map", doc["crime_type"], doc["month"]))


@router.get("/alerts", summary="Series whose latest complete month fell outside the 80% band forecast for it",
            description="crime_type: a crime type or ALL; every series when absent. month: YYYY-MM; default: each "
                        "series' latest complete month. The band is the one the newest served version forecast "
                        "before that month; by chance alone about 1 month in 5 falls outside an 80% band.")
@query_parameters(router)
def alerts(crime_type: str | None = None, month: str | None = None) -> dict[str, Any]:
    return forecasts.alerts(get_stores(), crime_type, month)
