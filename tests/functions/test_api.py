"""Every route through its Lambda handler, with API Gateway's event shape, on moto."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.api import DOCS_PATH, OPENAPI_PATH
from crimecast.domain.keys import SeriesKey
from crimecast.jobs import forecasts, retrain
from crimecast.security_headers import source_hash
from local.aws.template import api_routes, load_template
from tests.conftest import REPO
from tests.functions.conftest import body, invoke, load_event

VERSION = "v20261101T000000Z"
FORECAST_MONTHS = [f"2026-{m:02d}" for m in range(6, 13)] + [f"2027-{m:02d}" for m in range(1, 13)] + [f"2028-{m:02d}" for m in range(1, 6)]


SKIPPED = {"series": "47:ASSAULT", "reason": "only 20 months with any report in the last five years; 24 needed"}


def _publish(stores, level_by_area: dict[int | None, float], crime_type: str = "ASSAULT", city_only: tuple[str, ...] = ()) -> None:
    """One version serving ``crime_type`` at these levels, and each type of ``city_only`` citywide only."""
    items, keys = [], []
    for key, level in [*((SeriesKey(a, crime_type), v) for a, v in level_by_area.items()),
                       *((SeriesKey(None, t), 900.0) for t in city_only)]:
        history = [{"month": "2026-04", "count": int(level), "partial": False}, {"month": "2026-05", "count": 7, "partial": True}]
        forecast = [{"month": m, "yhat": level + i, "yhat_lower": level - 5, "yhat_upper": level + 5 + i}
                    for i, m in enumerate(FORECAST_MONTHS)]
        metrics = {"model": {"mae": 9.4}, "seasonal_naive": {"mae": 12.2}}
        items.append(forecasts.series_item(key, VERSION, "2026-11-01T00:00:00Z", history, forecast, metrics))
        keys.append(key)
    forecasts.publish_version(stores, VERSION, items)
    forecasts.write_catalog(stores, VERSION, keys, {"series": len(keys), "failed": 0}, [SKIPPED])
    forecasts.promote(stores, VERSION, "2026-11-01T00:05:00Z", replaces=None)


def _get(path: str, query: dict[str, str] | None = None, resource: str | None = None, function: str = "predict") -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict-health"))
    event.update(path=path, resource=resource or path, httpMethod="GET", queryStringParameters=query,
                 multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None)
    return invoke(function, event)


def test_health_answers(aws) -> None:
    response = invoke("predict", load_event("predict-health"))
    assert response["statusCode"] == 200 and body(response) == {"status": "ok"}


def test_predict_before_any_training_is_a_clear_404(aws) -> None:
    response = invoke("predict", load_event("predict-predict"))
    assert response["statusCode"] == 404
    assert "no model has been trained yet" in body(response)["error"]["message"]


def test_predict_returns_the_documented_shape(aws) -> None:
    _publish(aws, {25: 100.0, 24: 50.0, None: 900.0})
    response = invoke("predict", load_event("predict-predict"))
    assert response["statusCode"] == 200, response["body"]
    result = body(response)
    assert set(result) == {"community_area", "area_name", "crime_type", "model_version", "trained_at", "data_through",
                           "data_gaps", "data_note", "metrics", "history", "forecast", "comparison", "unusual"}
    assert result["data_gaps"] == [] and result["data_note"] == "data through April 2026"
    assert (result["community_area"], result["area_name"], result["crime_type"]) == (25, "Austin", "ASSAULT")
    assert result["model_version"] == VERSION and len(result["forecast"]) == 12
    assert result["history"][-1] == {"month": "2026-05", "count": 7, "partial": True}
    assert result["data_through"] == "2026-04"  # the last complete month, not the partial one
    assert set(result["forecast"][0]) == {"month", "yhat", "yhat_lower", "yhat_upper"}


def test_predict_citywide_and_months(aws) -> None:
    _publish(aws, {25: 100.0, None: 900.0})
    result = body(_get("/predict", {"community_area": "city", "crime_type": "assault", "months": "3"}))
    assert result["community_area"] is None and result["area_name"] == "City" and len(result["forecast"]) == 3


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ({"community_area": "Gotham", "crime_type": "ASSAULT"}, 404, "Gotham"),
        ({"community_area": "25", "crime_type": "ASSAULTS"}, 404, "did you mean: ASSAULT"),
        ({"community_area": "1", "crime_type": "ASSAULT"}, 404, "no forecast for 1:ASSAULT"),
        ({"community_area": "25", "crime_type": "ASSAULT", "months": "99"}, 422, "between 1 and 24"),
        ({"community_area": "25", "crime_type": "ASSAULT", "months": "twelve"}, 422, "months"),
        ({"community_area": "x" * 200, "crime_type": "ASSAULT"}, 422, "community_area"),
    ],
)
def test_bad_predict_requests_get_a_4xx_with_a_message(aws, query: dict[str, str], status: int, fragment: str) -> None:
    _publish(aws, {25: 100.0, 24: 50.0})
    response = _get("/predict", query)
    assert response["statusCode"] == status, response["body"]
    error = body(response)["error"]
    assert fragment in error["message"] and error["code"]


def test_map_ranks_every_area(aws) -> None:
    _publish(aws, {25: 100.0, 24: 50.0, 8: 150.0, None: 900.0})
    result = body(invoke("predict", load_event("predict-map")))
    assert result["month"] == "2026-06" and result["model_version"] == VERSION
    assert [(a["community_area"], a["rank"]) for a in result["areas"]] == [(8, 1), (25, 2), (24, 3)]
    assert result["areas"][0]["name"] == "Near North Side"
    later = body(_get("/predict/map", {"crime_type": "ASSAULT", "month": "2027-01"}))
    assert later["month"] == "2027-01" and later["areas"][0]["yhat"] == 150.0 + 7


def test_map_month_not_forecast_is_a_422(aws) -> None:
    _publish(aws, {25: 100.0})
    response = _get("/predict/map", {"crime_type": "ASSAULT", "month": "2031-01"})
    assert response["statusCode"] == 422 and "forecast months run 2026-06..2028-05" in body(response)["error"]["message"]


MALFORMED_MONTHS = ["Jan", "2026-13", "2026-00", "0000-01", "2026-1", "202-01", "2026/01", "2026-01-01", "2026-01\n",
                    " 2026-01", "\uff12\uff10\uff12\uff16-\uff10\uff11", '2026-01"; filename="evil.exe', "2026-01\r\nSet-Cookie: a=b", ""]


@pytest.mark.parametrize("month", MALFORMED_MONTHS)
def test_map_month_that_is_not_a_real_yyyy_mm_is_a_400_and_never_reaches_a_header(aws, month: str) -> None:
    _publish(aws, {25: 100.0, None: 900.0}, city_only=("THEFT",))  # THEFT's map has no row to take the month from
    for crime_type in ("ASSAULT", "THEFT"):
        for csv_format in ("csv", "json"):
            response = _get("/predict/map", {"crime_type": crime_type, "month": month, "format": csv_format})
            assert response["statusCode"] == 400, (month, response["body"])
            message = body(response)["error"]["message"]
            assert message.startswith("month must be a month written YYYY-MM"), message
            assert "Content-Disposition" not in str(response.get("multiValueHeaders")) + str(response.get("headers"))


def test_map_csv_is_named_after_the_validated_month_in_header_safe_characters(aws) -> None:
    from crimecast.api.predict import download_name

    _publish(aws, {25: 100.0, None: 900.0})
    response = _get("/predict/map", {"crime_type": "ASSAULT", "month": "2027-01", "format": "csv"})
    assert response["statusCode"] == 200
    assert response["multiValueHeaders"]["Content-Disposition"] == ['attachment; filename="crimecast-map-ASSAULT-2027-01.csv"']
    assert download_name("map", "CRIM SEXUAL ASSAULT", "2027-01") == "crimecast-map-CRIM_SEXUAL_ASSAULT-2027-01.csv"
    assert download_name("map", "NON-CRIMINAL (SUBJECT SPECIFIED)", None) == "crimecast-map-NON-CRIMINAL_(SUBJECT_SPECIFIED)-None.csv"
    assert download_name('a"; b\r\nX: y', "caf\u00e9") == "crimecast-a___b__X__y-caf_.csv"


def test_evaluate_series_and_summary(aws) -> None:
    _publish(aws, {25: 100.0, None: 900.0})
    series = body(invoke("evaluate", load_event("evaluate-series")))
    assert series["series"] == "25:ASSAULT" and series["metrics"]["model"]["mae"] == 9.4
    summary = body(invoke("evaluate", load_event("evaluate-summary")))
    assert summary == {"model_version": VERSION, "summary": {"series": 2, "failed": 0}}


def test_unknown_run_is_404(aws) -> None:
    response = invoke("evaluate", load_event("evaluate-run"))
    assert response["statusCode"] == 404 and "no run" in body(response)["error"]["message"]


def test_retrain_starts_a_run_that_can_be_watched(aws) -> None:
    response = invoke("retrain", load_event("retrain-api"))
    assert response["statusCode"] == 202
    run = body(response)
    assert run["kind"] == "retrain" and run["status"] == "queued" and run["detail"]["execution_arn"]
    event = copy.deepcopy(load_event("evaluate-run"))
    event["path"], event["pathParameters"] = f"/runs/{run['run_id']}", {"run_id": run["run_id"]}
    watched = invoke("evaluate", event)
    assert watched["statusCode"] == 200 and body(watched)["run_id"] == run["run_id"]


def test_ingest_answers_202_with_a_queued_run_and_starts_its_worker(aws) -> None:
    from tests.functions.conftest import ASYNC_INVOCATIONS

    response = invoke("ingest", load_event("ingest-api"))
    assert response["statusCode"] == 202
    run = body(response)
    assert run["kind"] == "ingest" and run["status"] == "queued" and run["detail"]["trigger"] == "api"
    worker = {"crimecast_ingest_worker": {"run_id": run["run_id"], "leg": 0}}
    assert ASYNC_INVOCATIONS == [{"function": "crimecast-test", "payload": worker}]


def test_openapi_document_lists_exactly_the_template_routes(aws) -> None:
    """Every (method, path) of the template's Api events is documented, /auth/* included, and
    nothing else is; the documentation routes themselves are the only exception."""
    response = invoke("predict", load_event("predict-openapi"))
    assert response["statusCode"] == 200
    documented = {(method.upper(), path) for path, operations in json.loads(response["body"])["paths"].items()
                  for method in operations}
    routes = {(r.method, r.path) for r in api_routes(load_template(REPO / "template.yaml"))}
    assert documented == routes - {("GET", OPENAPI_PATH), ("GET", DOCS_PATH)}
    assert ("POST", "/auth/token") in documented and ("DELETE", "/auth/users/{name}") in documented


def test_docs_serve_swagger_ui_with_the_document_and_password_sign_in(aws) -> None:
    response = invoke("predict", load_event("predict-docs"))
    assert response["statusCode"] == 200
    page = response["body"]
    assert "SwaggerUIBundle" in page and "<script src=" not in page  # the bundle is inlined: no CDN
    assert '"/predict/map"' in page and '"tokenUrl": "auth/token"' in page
    assert "persistAuthorization: false" in page  # a reload signs out: the token is not kept in localStorage


def test_docs_carry_a_csp_that_allows_exactly_their_inline_blocks(aws) -> None:
    response = invoke("predict", load_event("predict-docs"))
    headers = {k: v[-1] for k, v in response["multiValueHeaders"].items()}  # API Gateway REST's proxy answer
    policy = headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    page = response["body"]
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    assert len(scripts) == 2 and len(styles) == 1  # the bundle and its start-up; the stylesheet
    assert all(source_hash(s) in directives["script-src"] for s in scripts)
    assert all(source_hash(s) in directives["style-src"] for s in styles)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert directives["frame-ancestors"] == ["'none'"] and directives["default-src"] == ["'none'"]
    assert len(directives["script-src"]) == 3  # 'self' and the two hashes: no other inline script would run
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")


def test_unknown_route_is_404_not_500(aws) -> None:
    assert _get("/nowhere")["statusCode"] == 404


@pytest.mark.parametrize("function", ["ingest", "retrain"])
def test_admin_routes_refuse_a_viewer_with_403(aws, function: str) -> None:
    event = load_event(f"{function}-api")
    event["requestContext"]["authorizer"] = {"principalId": "ann", "username": "ann", "roles": "viewer"}
    response = invoke(function, event)
    assert response["statusCode"] == 403 and "admin" in body(response)["error"]["message"]


def test_catalog_boundaries_and_run_history(aws) -> None:
    _publish(aws, {25: 100.0, None: 900.0})
    assert body(_get("/catalog")) == {"model_version": VERSION, "types": ["ASSAULT"], "series": ["city:ASSAULT", "25:ASSAULT"],
                                      "skipped": [SKIPPED]}
    assert _get("/boundaries")["statusCode"] == 404
    aws.blobs.put_bytes(BOUNDARIES_KEY, b'{"type": "FeatureCollection", "features": []}')
    response = _get("/boundaries")
    assert response["statusCode"] == 200 and json.loads(response["body"])["type"] == "FeatureCollection"
    first = body(invoke("retrain", load_event("retrain-api")))
    retrain.record_failure(aws, first["run_id"], "States.TaskFailed")  # one retrain at a time: the first ends
    second = body(invoke("retrain", load_event("retrain-api")))
    history = body(_get("/runs", {"kind": "retrain"}, function="evaluate"))["runs"]
    assert {r["run_id"] for r in history} == {first["run_id"], second["run_id"]}
    assert all(r["kind"] == "retrain" for r in history)
    assert _get("/runs", {"kind": "party"}, function="evaluate")["statusCode"] == 422


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/nowhere", 404), ("/predict?months=x", 422)])
def test_every_answer_carries_the_security_headers_errors_included(aws, path: str, status: int) -> None:
    route, _, query = path.partition("?")
    event = copy.deepcopy(load_event("predict-health"))
    event.update(path=route, resource=route, queryStringParameters=dict([query.split("=")]) if query else None)
    response = invoke("predict", event)
    headers = response["multiValueHeaders"]
    assert response["statusCode"] == status
    assert headers["X-Content-Type-Options"] == ["nosniff"] and headers["X-Frame-Options"] == ["DENY"]
    assert headers["Content-Security-Policy"] == ["default-src 'none'; frame-ancestors 'none'"]
    assert headers["Strict-Transport-Security"][0].startswith("max-age=")
