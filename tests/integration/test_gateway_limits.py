"""The local gateway holds to API Gateway's and Lambda's limits, each checked over real HTTP
against a template of test functions (no AWS needed): a method or path the API does not
have, 6 MB in and out of a Lambda, API Gateway's 10 MB and 29 s (made short here), each
function's own Timeout, the authorizer's result cached per token for the template's TTL,
and 256 KB for an asynchronous invocation."""

from __future__ import annotations

from collections.abc import Iterator
import http.client
import json
from pathlib import Path
import threading
import time
from typing import Any

import pytest

from crimecast.adapters import launcher, limits
from local.aws.template import SERVERLESS_FUNCTION, AsyncInvokeConfig
from local.gateway.api import Gateway
from local.gateway.server import make_handler

APP = '''
import json, time

CALLS = {"authorizer": 0}


def handler(event, context):
    query = event["queryStringParameters"] or {}
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    body = {"pad": "x" * int(query.get("size", 0)), "received": len(event["body"] or ""),
            "authorizer": event["requestContext"]["authorizer"]}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def authorizer(event, context):
    CALLS["authorizer"] += 1
    if event["authorizationToken"] == "Bearer crash":  # e.g. AccessDenied reading its signing key
        raise RuntimeError("AccessDeniedException: not authorized to perform: secretsmanager:GetSecretValue")
    if not event["authorizationToken"].startswith("Bearer good"):
        raise Exception("Unauthorized")
    return {"principalId": event["authorizationToken"][7:],
            "policyDocument": {"Version": "2012-10-17",
                               "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]},
            "context": {"calls": CALLS["authorizer"]}}
'''
TTL_S = 1.5


def _template(code: Path) -> dict[str, Any]:
    def route(path: str, method: str, auth: bool = False) -> dict[str, Any]:
        spec: dict[str, Any] = {"Path": path, "Method": method}
        if not auth:
            spec["Auth"] = {"Authorizer": "NONE"}
        return {"Type": "Api", "Properties": spec}

    return {"Globals": {"Function": {"Timeout": 3}}, "Resources": {
        "Api": {"Type": "AWS::Serverless::Api", "Properties": {
            "Cors": {"AllowOrigin": {"Fn::Sub": "'${WebOrigin}'"}, "AllowHeaders": "'Authorization,Content-Type'",
                     "AllowMethods": "'GET,POST,OPTIONS'", "MaxAge": "'600'"},
            "Auth": {"DefaultAuthorizer": "Jwt", "Authorizers": {"Jwt": {
                "FunctionArn": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]},
                "Identity": {"Header": "Authorization", "ReauthorizeEvery": TTL_S}}}}}},
        "AuthorizerFunction": {"Type": SERVERLESS_FUNCTION, "Properties": {"CodeUri": str(code), "Handler": "app.authorizer"}},
        "Quick": {"Type": SERVERLESS_FUNCTION, "Properties": {"CodeUri": str(code), "Handler": "app.handler", "Timeout": 1,
                                                              "Events": {"Get": route("/quick", "GET"),
                                                                         "Post": route("/quick", "POST"),
                                                                         "Me": route("/me", "GET", auth=True)}}},
        "Slow": {"Type": SERVERLESS_FUNCTION, "Properties": {"CodeUri": str(code), "Handler": "app.handler", "Timeout": 10,
                                                             "Events": {"Get": route("/slow", "GET")}}},
    }}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[Gateway, int]]:
    from http.server import ThreadingHTTPServer

    code = tmp_path_factory.mktemp("gateway-functions")
    (code / "app.py").write_text(APP)
    gateway = Gateway.from_template(_template(code), {"ready": True})
    gateway.integration_timeout = 2.0  # API Gateway's 29 s, made short for the test
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(gateway))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield gateway, server.server_address[1]
    server.shutdown()
    server.server_close()


def _call(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
          content_length: int | None = None) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None or content_length is not None:
            connection.putheader("Content-Length", str(content_length if content_length is not None else len(body or b"")))
        connection.endheaders()
        if body:
            try:
                connection.send(body)
            except OSError:  # the gateway answered without reading it
                pass
        response = connection.getresponse()
        raw = response.read()
        return response.status, dict(response.headers), json.loads(raw) if raw else None
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "path"), [("TRACE", "/quick"), ("DELETE", "/quick"), ("PUT", "/slow"), ("HEAD", "/quick"),
                                              ("CONNECT", "/quick"), ("FOO", "/quick"), ("POST", "/nope"), ("TRACE", "/")])
def test_a_method_or_path_the_api_does_not_have_answers_403_in_json(gateway, method: str, path: str) -> None:
    status, headers, body = _call(gateway[1], method, path)
    assert status == 403 and headers["Content-Type"] == "application/json"
    if method != "HEAD":
        assert body == {"message": "Missing Authentication Token"}


def test_a_preflight_gets_the_templates_cors_headers(gateway) -> None:
    status, headers, _ = _call(gateway[1], "OPTIONS", "/quick")
    assert status == 200 and headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    assert headers["Access-Control-Max-Age"] == "600"


def test_a_malformed_request_is_answered_in_json(gateway) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", gateway[1]), timeout=10) as raw:
        raw.sendall(b"GET /quick HTTP/1.1\r\nX-Long: " + b"x" * 70_000 + b"\r\n\r\n")  # a header line over 64 KB
        answer = raw.recv(65536).decode()
    assert answer.split()[1] == "431" and "application/json" in answer and "<html" not in answer.lower()


def test_a_response_over_6_mb_is_a_502(gateway) -> None:
    assert _call(gateway[1], "GET", f"/quick?size={limits.LAMBDA_RESPONSE_BYTES - 1000}")[0] == 200
    status, _, body = _call(gateway[1], "GET", f"/quick?size={limits.LAMBDA_RESPONSE_BYTES}")
    assert status == 502 and body == {"message": "Internal server error"}


def test_a_request_over_6_mb_is_refused_by_lambda(gateway) -> None:
    status, _, body = _call(gateway[1], "POST", "/quick", b"x" * (limits.LAMBDA_REQUEST_BYTES - 10_000))
    assert status == 200 and body["received"] == limits.LAMBDA_REQUEST_BYTES - 10_000
    status, _, body = _call(gateway[1], "POST", "/quick", b"x" * (limits.LAMBDA_REQUEST_BYTES + 1))
    assert status == 413 and body == {"message": "Request Entity Too Large"}


def test_a_request_over_10_mb_is_refused_by_api_gateway_unread(gateway) -> None:
    status, _, body = _call(gateway[1], "POST", "/quick", b"x" * 1000, content_length=limits.API_GATEWAY_PAYLOAD_BYTES + 1)
    assert status == 413 and body == {"message": "Request Too Long"}


def test_a_function_past_its_timeout_is_a_502_and_the_next_call_does_not_wait(gateway) -> None:
    started = time.monotonic()
    status, _, body = _call(gateway[1], "GET", "/quick?sleep=3")  # Quick's Timeout: 1 s
    assert status == 502 and body == {"message": "Internal server error"}
    assert time.monotonic() - started < 1.9
    started = time.monotonic()
    assert _call(gateway[1], "GET", "/quick")[0] == 200
    assert time.monotonic() - started < 1.0  # the timed-out handler no longer holds the functions


def test_no_answer_within_the_integration_timeout_is_a_504(gateway) -> None:
    started = time.monotonic()
    status, _, body = _call(gateway[1], "GET", "/slow?sleep=4")  # Slow's Timeout: 10 s; the gateway's: 2 s here
    assert status == 504 and body == {"message": "Endpoint request timed out"}
    assert time.monotonic() - started < 3.0


def test_a_function_with_no_reserved_execution_free_is_a_500_until_its_handler_ends(gateway) -> None:
    """Lambda's 429 reaches the client as API Gateway's integration failure; an execution API Gateway
    stopped waiting for stays in use until its handler ends."""
    runner, name = gateway[0].functions, gateway[0].names["Slow"]
    deadline = time.monotonic() + 30
    while runner.concurrency.in_use(name):  # an earlier test's handler, still running, would count in the reservation
        assert time.monotonic() < deadline, "an earlier handler never ended"
        time.sleep(0.05)
    runner.concurrency.reserve(name, 1)
    try:
        assert _call(gateway[1], "GET", "/slow?sleep=3.5")[0] == 504  # the gateway's 2 s; the handler runs on
        assert _call(gateway[1], "GET", "/slow")[:3:2] == (500, {"message": "Internal server error"})
        time.sleep(2.5)  # the first handler has ended
        assert _call(gateway[1], "GET", "/slow")[0] == 200
    finally:
        runner.concurrency.reserve(name, None)


def test_the_authorizer_result_is_cached_per_token_for_the_templates_ttl(gateway) -> None:
    port = gateway[1]
    assert gateway[0].authorizer.spec.ttl == TTL_S
    assert _call(port, "GET", "/me")[0] == 401
    assert _call(port, "GET", "/me", headers={"Authorization": "Bearer bad"})[0] == 401
    first = _call(port, "GET", "/me", headers={"Authorization": "Bearer good-1"})
    again = _call(port, "GET", "/me", headers={"Authorization": "Bearer good-1"})
    assert first[0] == again[0] == 200
    assert again[2]["authorizer"] == first[2]["authorizer"]  # the same answer: the authorizer did not run
    other = _call(port, "GET", "/me", headers={"Authorization": "Bearer good-2"})
    assert other[2]["authorizer"]["calls"] > first[2]["authorizer"]["calls"]  # per token
    time.sleep(TTL_S + 0.1)
    later = _call(port, "GET", "/me", headers={"Authorization": "Bearer good-1"})
    assert later[2]["authorizer"]["calls"] > other[2]["authorizer"]["calls"]  # the TTL has lapsed: asked again


def test_an_authorizer_that_fails_is_a_500_not_a_401(gateway) -> None:
    """Only "Unauthorized" is a 401: any other error of the authorizer is API Gateway's 500
    (AUTHORIZER_FAILURE), which says nothing of the error."""
    status, _, answer = _call(gateway[1], "GET", "/me", headers={"Authorization": "Bearer crash"})
    assert (status, answer) == (500, {"message": None})


def test_an_async_invocation_over_256_kb_is_refused(gateway, monkeypatch) -> None:
    functions = gateway[0].functions
    code = gateway[0].authorizer.spec.codeuri
    big = {"pad": "x" * limits.LAMBDA_ASYNC_PAYLOAD_BYTES}
    with pytest.raises(limits.PayloadTooLargeError):
        functions.invoke_async(code, "app.handler", big)
    sent: list[Any] = []
    monkeypatch.setattr(launcher.aws, "client", lambda name: type("C", (), {"invoke": lambda self, **kw: sent.append(kw)})())
    with pytest.raises(limits.PayloadTooLargeError):
        launcher.AwsLauncher().invoke_async("crimecast-ingest", big)
    launcher.AwsLauncher().invoke_async("crimecast-ingest", {"run_id": "r"})
    assert not sent[1:] and json.loads(sent[0]["Payload"]) == {"run_id": "r"}


def test_an_async_invocation_past_its_timeout_fails_with_lambdas_error(gateway) -> None:
    functions = gateway[0].functions
    failures: list[dict[str, Any]] = []
    event = {"queryStringParameters": {"sleep": "2"}, "body": None, "requestContext": {"authorizer": None}}
    no_retry = AsyncInvokeConfig(max_retry_attempts=0, max_event_age_s=60, on_failure=None)
    functions.invoke_async(gateway[0].authorizer.spec.codeuri, "app.handler", event, timeout=0.5, on_failure=failures.append,
                           config=no_retry).join(10)
    (record,) = failures
    assert record["requestContext"]["condition"] == "RetriesExhausted" and record["requestPayload"] == event
    assert record["responsePayload"] == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 0.50 seconds"}
