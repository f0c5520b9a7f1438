"""The gateway's HTTP server: what it answers is a table (``ROUTES``) of small functions; the
request handler only reads the request and writes the answer, with the page's security headers
on every answer as CloudFront adds them on AWS."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from crimecast.adapters import limits
from crimecast.security_headers import security_headers
from local.aws.lambda_async import Throttled
from local.aws.lambda_runtime import FunctionTimeout, IntegrationTimeout
from local.aws.template import ApiRoute
from local.console import say
from local.gateway.api import Gateway, proxy_event
from local.gateway.authorizer import AuthorizerFailure
from local.gateway.static import web_file
from local.http_headers import header

# The page's policy with connect-src 'self': here the API is on the page's own origin.
SECURITY_HEADERS = security_headers()
# API Gateway's answer to a method or path the REST API does not have (not a 404 or 405).
MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL_ERROR = {"message": "Internal server error"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    client: str
    arrived: float  # time.monotonic()
    length: int  # the body's Content-Length
    read: Callable[[int], bytes]  # reads the body (only an API call does)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False  # the connection closes after it (a body left unread)


def json_answer(status: int, doc: Any, headers: Mapping[str, str] | None = None, close: bool = False) -> Answer:
    return Answer(status, json.dumps(doc).encode(), headers=headers or {}, close=close)


class Refused(Exception):
    """API Gateway answers before (or instead of) the integration: 401, 413."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


# --- what is answered, first match wins ------------------------------------------------------


def _starting_health(gateway: Gateway, request: Request) -> bool:
    return not gateway.ready and request.path.startswith("/health")


def _api_method(gateway: Gateway, request: Request) -> bool:
    return gateway.match(request.method, request.path) is not None


def _preflight(gateway: Gateway, request: Request) -> bool:
    """The CORS preflight SAM adds to each resource."""
    return request.method == "OPTIONS" and bool(gateway.cors) and gateway.is_api_path(request.path)


def _api_resource(gateway: Gateway, request: Request) -> bool:
    return gateway.is_api_path(request.path)


def _not_a_read(gateway: Gateway, request: Request) -> bool:
    return request.method not in ("GET", "HEAD")


def _anything(gateway: Gateway, request: Request) -> bool:
    return True


def starting(gateway: Gateway, request: Request) -> Answer:
    return json_answer(503, {"status": "starting", "step": gateway.state.get("step")})


def preflight(gateway: Gateway, request: Request) -> Answer:
    return Answer(200, b"{}", headers=gateway.cors)


def missing_token(gateway: Gateway, request: Request) -> Answer:
    """A method the resource does not have, or no resource: API Gateway's 403."""
    return json_answer(403, MISSING_TOKEN)


def web_page(gateway: Gateway, request: Request) -> Answer:
    found = web_file(request.path)
    if found is None:
        return json_answer(404, {"message": "Not Found"})
    return Answer(200, found[0], found[1], {"Cache-Control": "no-cache"})


def api_call(gateway: Gateway, request: Request) -> Answer:
    """A route of the API: its function's answer, through the authorizer and API Gateway's limits."""
    if not gateway.ready:
        return json_answer(503, {"message": "the service is starting", "step": gateway.state.get("step")})
    found = gateway.match(request.method, request.path)
    if found is None:  # not a method of the API (ROUTES sends none here)
        return missing_token(gateway, request)
    route, params = found
    try:
        return proxy_answer(route, integration(gateway, request, route, params))
    except Refused as refused:
        return refused.answer
    except Exception as exc:  # noqa: BLE001 - API Gateway's answer for a failed integration
        return failure(gateway, route, exc)


ROUTES: tuple[tuple[Callable[[Gateway, Request], bool], Callable[[Gateway, Request], Answer]], ...] = (
    (_starting_health, starting),  # /health answers 503 and the step until every series is served
    (_api_method, api_call),
    (_preflight, preflight),
    (_api_resource, missing_token),
    (_not_a_read, missing_token),
    (_anything, web_page),
)


def answer(gateway: Gateway, request: Request) -> Answer:
    return next(respond(gateway, request) for applies, respond in ROUTES if applies(gateway, request))


# --- an API call --------------------------------------------------------------------------------


def integration(gateway: Gateway, request: Request, route: ApiRoute, params: dict[str, str]) -> dict[str, Any]:
    """The function's proxy response; Refused when API Gateway answers first."""
    if request.length > limits.API_GATEWAY_PAYLOAD_BYTES:
        raise Refused(json_answer(413, {"message": "Request Too Long"}, close=True))  # the body is not read
    body = request.read(request.length).decode("utf-8", "replace") if request.length else None
    give_up_at = request.arrived + gateway.integration_timeout
    authorizer = None
    if not route.auth_none:
        authorizer = gateway.authorizer.authorize(header(request.headers, "Authorization"), give_up_at)
        if authorizer is None:
            raise Refused(json_answer(401, {"message": "Unauthorized"}))
    event = proxy_event(route, request.path, params, request.query, dict(request.headers), body, authorizer, request.client)
    if body is not None and limits.json_bytes(event) > limits.LAMBDA_REQUEST_BYTES:
        raise Refused(json_answer(413, {"message": "Request Entity Too Large"}))  # Lambda's 6 MB for a request
    response: dict[str, Any] = gateway.invoke(route, event, give_up_at)
    if limits.json_bytes(response) > limits.LAMBDA_RESPONSE_BYTES:
        raise OverflowError("the response is over Lambda's 6 MB")
    return response


def proxy_answer(route: ApiRoute, response: dict[str, Any]) -> Answer:
    """The function's proxy response as API Gateway sends it on (its last value of a multi-value header)."""
    headers = {**(response.get("headers") or {}),
               **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v}}
    return Answer(int(response.get("statusCode", 200)), str(response.get("body") or "").encode(),
                  header(headers, "Content-Type") or "application/json", headers)


# API Gateway's answer and the console's line per failure of the integration (the first that matches).
FAILURES: tuple[tuple[type[BaseException], int, Any, str], ...] = (
    (AuthorizerFailure, 500, {"message": None}, "the authorizer failed: {exc}"),
    (IntegrationTimeout, 504, {"message": "Endpoint request timed out"}, "no answer within {timeout:.0f} s"),
    (FunctionTimeout, 502, INTERNAL_ERROR, "{exc}"),  # Lambda's error to API Gateway, which answers 502
    (Throttled, 500, INTERNAL_ERROR, "throttled: {exc}"),  # Lambda's 429: API Gateway's integration failure, 500
    (OverflowError, 502, INTERNAL_ERROR, "{exc}"),
    (Exception, 502, INTERNAL_ERROR, "the function crashed: {kind}: {exc}"),  # what API Gateway answers when a Lambda crashes
)


def failure(gateway: Gateway, route: ApiRoute, exc: Exception) -> Answer:
    status, doc, line = next((s, d, line) for kind, s, d, line in FAILURES if isinstance(exc, kind))
    say(f"{route.method} {route.path}: " + line.format(exc=exc, kind=type(exc).__name__, timeout=gateway.integration_timeout))
    return json_answer(status, doc)


# --- HTTP ---------------------------------------------------------------------------------------


class GatewayHandler(BaseHTTPRequestHandler):
    """Reads a request, writes ``answer``'s answer. Every method (TRACE and made-up ones too) is
    API Gateway's to answer."""

    gateway: Gateway
    server_version = "crimecast-local"
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway: every answer carries its Content-Length
    # TCP_NODELAY: an answer goes out as two writes (the head, then the body); with Nagle's
    # algorithm the body waited for the client's delayed ACK of the head, 40 ms on Linux,
    # on every answer of a kept-alive connection.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        request = Request(self.command, url.path, url.query, {k: v for k, v in self.headers.items()}, self.client_address[0],
                          time.monotonic(), int(self.headers.get("Content-Length") or 0), self.rfile.read)
        self._send(answer(self.gateway, request))

    def _send(self, answer: Answer) -> None:
        self.close_connection = self.close_connection or answer.close
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        # An answer's own headers (Swagger UI's CSP, with its hashes) take the place of the page's.
        merged = {name.lower(): (name, value) for name, value in {**SECURITY_HEADERS, **answer.headers}.items()}
        for name, value in merged.values():
            if name.lower() not in ("content-length", "content-type"):
                self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (a malformed request line, a header too long) in JSON, not HTML."""
        self.close_connection = True
        try:
            self._send(json_answer(code, {"message": message or HTTPStatus(code).phrase}))
        except OSError:
            pass


def make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (GatewayHandler,), {"gateway": gateway})


class GatewayServer(ThreadingHTTPServer):
    """The gateway's HTTP server: a client that hangs up mid-answer (a health probe with a short
    timeout) is routine, not a traceback on the console."""

    # Connections waiting to be accepted (socketserver's default is 5): beyond it the kernel drops
    # a client's SYN, and the client tries again 1 s later (8 clients connecting at once did).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
