"""Request bodies through the real handlers on moto: every route that reads a JSON body (found
in the OpenAPI document, so a new one is covered without being named here) refuses another
media type with a 415 and malformed JSON with a 400, never a 500; its document says so."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from crimecast.api import openapi
from local.aws.template import api_routes, load_template
from tests.conftest import REPO
from tests.functions.conftest import ASYNC_INVOCATIONS, body, invoke, load_event

FUNCTION_BY_ROUTE = {(r.method, r.path): r.codeuri.strip("/").split("/")[-1] for r in api_routes(load_template(REPO / "template.yaml"))}
PATH_VALUES = {"name": "ghost", "version": "v20261101T000000Z"}
# A body each route would accept (or answer with a domain 404), were it sent as JSON.
VALID_BODIES = {"/auth/users": {"username": "ghost", "password": "a-long-enough-passphrase", "role": "viewer"},
                "/auth/users/{name}": {"role": "viewer"}, "/ingest": {"mode": "incremental"},
                "/models/{version}/promote": {"reason": "the new version over-forecasts"}}
FOREIGN_MEDIA_TYPES = ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                       "multipart/form-data", "multipart/form-data; boundary=x", "application/xml", "text/json",
                       "application/jsonp", "application/octet-stream", ""]


def _document() -> dict[str, Any]:
    return json.loads(openapi.openapi_json())


def _body_routes() -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, operations in _document()["paths"].items()
                  for method, operation in operations.items() if "requestBody" in operation)


BODY_ROUTES = _body_routes()


def _send(method: str, path: str, raw: str | None, content_type: str | None, *, base64_encoded: bool = False) -> dict[str, Any]:
    """The route as API Gateway calls its function: an admin's request with this body and Content-Type."""
    concrete = path.format(**PATH_VALUES)
    event = copy.deepcopy(load_event("predict-health"))
    event.update(httpMethod=method, resource=path, path=concrete, body=raw, isBase64Encoded=base64_encoded,
                 pathParameters={k: v for k, v in PATH_VALUES.items() if "{" + k + "}" in path} or None)
    event["headers"] = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
    event["requestContext"]["authorizer"] = {"principalId": "root", "username": "root", "roles": "admin,viewer"}
    return invoke(FUNCTION_BY_ROUTE[(method, path)], event)


def test_the_routes_with_a_json_body_are_the_ones_the_schemathesis_run_found() -> None:
    assert set(BODY_ROUTES) >= {("POST", "/auth/users"), ("PATCH", "/auth/users/{name}"), ("POST", "/ingest"),
                                ("POST", "/models/{version}/promote")}
    assert set(VALID_BODIES) == {path for _, path in BODY_ROUTES}


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=" ".join)
def test_a_body_in_another_media_type_is_a_415_that_names_it(aws, method: str, path: str) -> None:
    for content_type in FOREIGN_MEDIA_TYPES:
        response = _send(method, path, json.dumps(VALID_BODIES[path]), content_type or None)
        assert response["statusCode"] == 415, (content_type, response["body"])
        error = body(response)["error"]
        assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
        assert (content_type.split(";")[0] if content_type else "no Content-Type") in error["message"]
    assert not ASYNC_INVOCATIONS  # no ingest was started by a refused body


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=" ".join)
def test_malformed_json_is_a_400_that_says_so(aws, method: str, path: str) -> None:
    for raw, encoded in [("{not json", False), ('{"a": 1,}', False), ("[" * 100_000, False), ("1" * 5000, False),
                         ("!!not base64!!", True), (base64.b64encode(b'{"reason": "\xff"}').decode(), True)]:
        response = _send(method, path, raw, "application/json", base64_encoded=encoded)
        assert response["statusCode"] == 400, (raw[:20], response["body"])
        error = body(response)["error"]
        assert error["code"] == "invalid_request" and error["message"].startswith("the body is not valid JSON"), error


def test_json_is_read_whatever_its_charset_parameter_case_or_encoding(aws) -> None:
    promote = ("POST", "/models/{version}/promote")
    for content_type in ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"]:
        response = _send(*promote, json.dumps(VALID_BODIES[promote[1]]), content_type)
        assert response["statusCode"] == 404 and "no model version" in body(response)["error"]["message"], response["body"]
    encoded = base64.b64encode(json.dumps(VALID_BODIES[promote[1]]).encode()).decode()
    assert _send(*promote, encoded, "application/json", base64_encoded=True)["statusCode"] == 404
    created = _send("POST", "/auth/users", json.dumps(VALID_BODIES["/auth/users"]), "application/json; charset=UTF-8")
    assert created["statusCode"] == 201, created["body"]


def test_a_route_without_a_body_needs_no_content_type(aws) -> None:
    """No body, no type to check: a bare ``curl -X POST /ingest`` starts an ingest with the defaults."""
    for raw in (None, ""):
        response = _send("POST", "/ingest", raw, None)
        assert response["statusCode"] in (202, 409), response["body"]
    assert ASYNC_INVOCATIONS
    assert _send("POST", "/retrain", "not json", "text/plain")["statusCode"] == 202  # a route that reads no body ignores one


def test_the_document_lists_the_400_and_415_on_every_route_with_a_body_and_only_there() -> None:
    for path, operations in _document()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if "requestBody" in operation:
                assert {"400", "415"} <= set(responses), (method, path)
                assert responses["415"]["content"]["application/json"]["schema"]["required"] == ["error"]
            elif path != "/auth/token":  # whose own 400 is RFC 6749's
                assert "415" not in responses, (method, path)
                assert "body" not in responses.get("400", {}).get("description", ""), (method, path)  # a query's 400
