"""The OpenAPI document of every route, whichever function serves it, and Swagger UI.

Imported only when ``/openapi.json`` or ``/docs`` is asked for: it loads every route module
and pydantic, which the predict function's cold start does without. Swagger UI is
Powertools' own (``enable_swagger``), with its bundled script inlined (no CDN), and signs
in with the API's OAuth2 password flow against ``/auth/token``. It does not keep the token
(``persist_authorization`` off: a reload signs out), and its page is sent with a CSP that
allows exactly its inline script and style blocks, by their sha256 hashes, and nothing inline else.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.models import OAuth2, OAuthFlowPassword, OAuthFlows, OpenAPI
from aws_lambda_powertools.event_handler.openapi.models import Response as ResponseObject

from crimecast import security_headers
from crimecast.api import (
    DOCS_PATH,
    OPENAPI_PATH,
    SecureRestResolver,
    auth,
    create_resolver,
    evaluate,
    ingest,
    predict,
    responses,
    retrain,
)

API_TITLE = "crimecast API"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Monthly crime forecasts per Chicago community area and crime type. Sign in with Authorize "
    "(OAuth2 password flow). Every error, 422 included, has the body "
    '`{"error": {"code": "...", "message": "..."}}`, but for `/auth/token`\'s (RFC 6749\'s) and the 401 of a '
    'missing or expired token (API Gateway\'s `{"message": "Unauthorized"}`). '
    "A request body is JSON, sent with `Content-Type: application/json`: any other type, or none, is a 415, "
    "and JSON that does not parse a 400."
)
ROUTERS = (auth.router, predict.router, evaluate.router, ingest.router, retrain.router)
# What crimecast.api.bodies.json_body answers on every route that reads a body.
BODY_ERRORS = {400: "invalid_request: the body is not valid JSON",
               415: "unsupported_media_type: the body is not sent as application/json"}
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class DocumentedResolver(SecureRestResolver):
    """The resolver whose document gives every route the shapes of its answers
    (``responses.ANSWERS``: the routes return plain dicts, which Powertools can only call
    objects) and, on every route that reads a JSON body, the 400 and 415 its body answers
    (they come from the shared body reader, not from any one route)."""

    def get_openapi_schema(self, **options: Any) -> OpenAPI:
        document = super().get_openapi_schema(**options)
        for path, item in (document.paths or {}).items():
            for method in OPERATIONS:
                operation = getattr(item, method, None)
                if operation is None:
                    continue
                documented = responses.responses_of(method, path)
                found = operation.responses if documented is None else {
                    status: ResponseObject.model_validate(answer) for status, answer in documented.items()}
                found = found if found is not None else {}
                if operation.requestBody is not None:
                    for status, description in BODY_ERRORS.items():
                        found.setdefault(status, ResponseObject.model_validate(
                            {"description": description, "content": {"application/json": {"schema": responses.ERROR}}}))
                operation.responses = found
        return document


def _document_options() -> dict[str, Any]:
    # tokenUrl is relative, so it resolves under the API's stage in Swagger UI.
    password_flow = OAuth2(flows=OAuthFlows(password=OAuthFlowPassword(tokenUrl="auth/token")))
    return {"title": API_TITLE, "version": API_VERSION, "description": API_DESCRIPTION, "security_schemes": {"oauth2": password_flow},
            "security": [{"oauth2": []}]}


def _docs_headers(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    """The security headers on Swagger UI's page, its CSP naming the hashes of the page as built
    (the inlined spec names the stage, so the hashes are computed per answer, from its body)."""
    response = next_middleware(app)
    body = response.body if isinstance(response.body, str) else ""
    policy = security_headers.policy_for_html(body) if "html" in (response.content_type or "") else None
    response.headers.update(security_headers.security_headers(policy))
    return response


@cache
def documentation() -> APIGatewayRestResolver:
    """A resolver holding every route, used only to describe them (and serve ``/docs``)."""
    app = create_resolver(*ROUTERS, resolver=DocumentedResolver)
    app.enable_swagger(path=DOCS_PATH, persist_authorization=False, middlewares=[_docs_headers], **_document_options())

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_json())

    return app


def openapi_json() -> str:
    return documentation().get_openapi_json_schema(**_document_options())
