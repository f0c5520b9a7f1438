"""The service's own answers, through each function's Lambda handler on moto, against the shapes
its OpenAPI document gives them (crimecast.api.responses): the document the browser tests' fake
API is checked against (tests/infra/test_fake_api_contract.py) is the real API's."""

from __future__ import annotations

import copy
import json
from typing import Any

from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.api import responses
from crimecast.jobs import accounts
from tests.api_document import answer_problem, api_document
from tests.functions.conftest import body, invoke, load_event
from tests.functions.test_api import _publish
from tests.functions.test_page_routes import OLD, _get, _judge_april, _promote

ADMIN = {"principalId": "admin", "username": "admin", "roles": "admin,viewer"}
PASSWORD = "a-long-unusual-passphrase"


def _event(name: str, path: str | None = None, method: str | None = None, query: dict[str, str] | None = None,
           json_body: Any = None, path_parameters: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    if path is not None:
        event.update(path=path, resource=path)
    if method is not None:
        event["httpMethod"] = method
    if query is not None:
        event.update(queryStringParameters=query, multiValueQueryStringParameters={k: [v] for k, v in query.items()})
    if json_body is not None:
        event["body"] = json.dumps(json_body)
        event.setdefault("headers", {})["Content-Type"] = "application/json"
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    return event


def _problem(function: str, event: dict[str, Any], status: int) -> str | None:
    answer = invoke(function, event)
    if answer["statusCode"] != status:
        return f"{event['httpMethod']} {event['path']}: answered {answer['statusCode']}, expected {status}: {answer['body'][:300]}"
    return _answer_problem(event["httpMethod"], event["path"], answer)


def test_every_documented_route_has_its_answers_described() -> None:
    operations = {(method, path) for path, item in api_document()["paths"].items() for method in item}
    assert operations == set(responses.ANSWERS), "routes of the document and of crimecast.api.responses.ANSWERS differ"


def test_the_service_answers_as_its_document_says(aws) -> None:
    _publish(aws, {25: 100.0, 24: 50.0, None: 900.0})
    aws.blobs.put_bytes(BOUNDARIES_KEY, b'{"type": "FeatureCollection", "features": []}')
    accounts.add_user(aws, "admin", PASSWORD, "admin")
    retrain = body(invoke("retrain", load_event("retrain-api")))
    cases = [
        ("predict", _event("predict-health"), 200),
        ("predict", _event("predict-predict"), 200),
        ("predict", _event("predict-predict", query={"community_area": "25", "crime_type": "ASSAULT", "format": "csv"}), 200),
        ("predict", _event("predict-predict", query={"months": "99"}), 422),
        ("predict", _event("predict-predict", query={"format": "xml"}), 400),
        ("predict", _event("predict-predict", query={"community_area": "999"}), 404),
        ("predict", _event("predict-map"), 200),
        ("predict", _event("predict-alerts", query={"crime_type": "ASSAULT"}), 200),
        ("predict", _event("predict-health", path="/catalog"), 200),
        ("predict", _event("predict-health", path="/boundaries"), 200),
        ("evaluate", _event("evaluate-series"), 200),
        ("evaluate", _event("evaluate-summary"), 200),
        ("evaluate", _event("evaluate-models"), 200),
        ("evaluate", _event("evaluate-promote"), 409),
        ("evaluate", _event("evaluate-run", path=f"/runs/{retrain['run_id']}", path_parameters={"run_id": retrain["run_id"]}), 200),
        ("evaluate", _event("evaluate-run"), 404),
        ("evaluate", _event("evaluate-summary", path="/runs", query={"kind": "retrain"}), 200),
        ("ingest", _event("ingest-api"), 202),
        ("auth", _event("auth-token") | {"body": f"grant_type=password&username=admin&password={PASSWORD}"}, 200),
        ("auth", _event("auth-token"), 401),
        ("auth", _event("auth-me"), 200),
        ("auth", _event("auth-me", path="/auth/users", method="POST", json_body={"username": "ann", "password": PASSWORD}), 201),
        ("auth", _event("auth-me", path="/auth/users/ann", method="PATCH", json_body={"disabled": True},
                        path_parameters={"name": "ann"}), 200),
        ("auth", _event("auth-me", path="/auth/users/ann", method="DELETE", path_parameters={"name": "ann"}), 204),
        ("auth", _event("auth-logout"), 200),
    ]
    for _, event, _ in cases:  # the authorizer's context, as API Gateway passes it
        event.setdefault("requestContext", {}).setdefault("authorizer", ADMIN)
    problems = [_problem(function, event, status) for function, event, status in cases]
    found = [p for p in problems if p]
    assert not found, "the service's answers differ from its OpenAPI document:\n" + "\n".join(found)


def _answer_problem(method: str, path: str, answer: dict[str, Any]) -> str | None:
    headers = {k.lower(): v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer_problem(method, path, answer["statusCode"], headers.get("content-type", ""), (answer.get("body") or "").encode())


def test_unusual_months_alerts_and_a_rollback_answer_as_documented(aws) -> None:
    """The rows only a live evaluation fills (unusual months, alerts), and a promote that succeeds."""
    _judge_april(aws, {25: 400, 8: 165})
    alerts = _get("/alerts", {"crime_type": "THEFT"})
    prediction = _get("/predict", {"community_area": "25", "crime_type": "THEFT"})
    assert body(alerts)["alerts"] and body(prediction)["unusual"]  # rows to check
    rollback = _promote(OLD, "the newer version over-forecasts")
    assert rollback["statusCode"] == 200, rollback["body"]
    found = [_answer_problem("GET", "/alerts", alerts), _answer_problem("GET", "/predict", prediction),
             _answer_problem("POST", f"/models/{OLD}/promote", rollback)]
    assert not [p for p in found if p], found
