"""template.yaml and the handlers agree: every API route of the template is served by
the function the template sends it to."""

from __future__ import annotations

import copy
import re

import pytest

from local.aws.template import api_routes, load_template
from tests.conftest import REPO
from tests.functions.conftest import body, invoke, load_event

ROUTES = api_routes(load_template(REPO / "template.yaml"))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_template_route_reaches_a_handler(aws, route) -> None:
    assert route.handler == "app.lambda_handler"
    function = route.codeuri.strip("/").split("/")[-1]
    path = re.sub(r"\{(\w+)\}", "example", route.path)
    event = copy.deepcopy(load_event("predict-health"))
    event.update(httpMethod=route.method, resource=route.path, path=path, body="{}" if route.method in ("POST", "PUT") else None)
    event["headers"]["Content-Type"] = "application/json"
    response = invoke(function, event)
    assert response["statusCode"] < 500
    if response["statusCode"] == 404:
        assert body(response)["error"]["message"] != "no such route"

