"""Routes of the auth function: the OAuth2 password grant, the caller's identity, logout,
and user management (admin). Logout, a role change, disabling and deleting a user revoke
the user's tokens (see :mod:`crimecast.jobs.accounts`)."""

from __future__ import annotations

import binascii
import json
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import BaseModel, Field

from crimecast.adapters.stores import get_stores
from crimecast.api import require_role
from crimecast.domain import auth
from crimecast.domain.errors import ForbiddenError
from crimecast.jobs import accounts

logger = Logger(child=True)
metrics = Metrics()
router = Router()
MAX_FORM_BYTES = 4096


def _oauth_error(status: int, error: str, description: str) -> Response[dict[str, Any]]:
    """RFC 6749 section 5.2 error body."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body={"error": error, "error_description": description}, headers={"Cache-Control": "no-store"})


def _form(raw: str | None, content_type: str) -> dict[str, str]:
    if not raw or len(raw) > MAX_FORM_BYTES:
        return {}
    if content_type.startswith("application/json"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw).items()}


def _is_unicode(text: str) -> bool:
    """False for a string UTF-8 cannot encode: a lone surrogate, as JSON's "\\ud800" or a
    form's invalid percent-escapes decoded with ``surrogateescape`` give; DynamoDB would
    refuse it as a key."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _source_ip(event: dict[str, Any]) -> str | None:
    """The client's address as API Gateway saw it (``requestContext.identity.sourceIp``; the
    local stack sets it from the socket); None when the event has none."""
    address = ((event.get("requestContext") or {}).get("identity") or {}).get("sourceIp")
    return address if isinstance(address, str) else None


@router.post("/auth/token", summary="Sign in: OAuth2 password grant, a bearer token for the other routes",
             responses={200: {"description": "a bearer token (access_token, token_type, expires_in, scope)"},
                        400: {"description": "RFC 6749 invalid_request or unsupported_grant_type"},
                        401: {"description": "RFC 6749 invalid_grant: wrong name or password, or an address the sign-in throttle holds"}})
def token() -> Response[dict[str, Any]]:
    """Form-encoded (``application/x-www-form-urlencoded``) or JSON body:
    ``grant_type=password&username=..&password=..``. Errors follow RFC 6749."""
    event = router.current_event
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    try:
        raw = event.decoded_body
    except (ValueError, binascii.Error):  # a base64 body that is not base64, or not UTF-8 once decoded
        return _oauth_error(400, "invalid_request", "the body must be UTF-8 text")
    form = _form(raw, headers.get("content-type", "application/x-www-form-urlencoded"))
    if form.get("grant_type") != "password":
        if not form.get("grant_type"):
            return _oauth_error(400, "invalid_request", "grant_type, username and password are required")
        return _oauth_error(400, "unsupported_grant_type", "only grant_type=password is supported")
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password or len(username) > auth.MAX_FIELD_LENGTH:
        return _oauth_error(400, "invalid_request", "grant_type, username and password are required")
    if not _is_unicode(username):
        return _oauth_error(400, "invalid_request", "the username must be valid Unicode text")
    try:
        issued = accounts.login(get_stores(), username, password, _source_ip(event.raw_event))
    except auth.AuthError:
        logger.info("login refused")
        metrics.add_metric(name="LoginRefused", unit="Count", value=1)
        return _oauth_error(401, "invalid_grant", "invalid username or password")
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, headers={"Cache-Control": "no-store"},
                    body={"access_token": issued.access_token, "token_type": "bearer", "expires_in": issued.expires_in,
                          "scope": " ".join(issued.roles)})


@router.get("/auth/me", summary="The signed-in caller's name and roles")
def me() -> dict[str, Any]:
    context = router.current_event.request_context.authorizer or {}
    return {"username": context.get("username"), "roles": [r for r in str(context.get("roles", "")).split(",") if r]}


@router.post("/auth/logout", summary="Sign out everywhere: every token of the caller stops working",
             responses={200: {"description": "the caller's tokens are revoked, on every device"}})
def logout() -> Response[dict[str, Any]]:
    """Revokes the caller's tokens by giving the user a new token version: this signs the
    user out of every session, not only this one. On AWS a revoked token may still pass for
    up to 60 s, the authorizer's cache."""
    context = router.current_event.request_context.authorizer or {}
    username = str(context.get("username") or "")
    if not username:
        raise ForbiddenError("no signed-in user")
    accounts.logout(get_stores(), username)
    logger.info("logged out", extra={"username": username})
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, headers={"Cache-Control": "no-store"},
                    body={"username": username, "logged_out": "every session"})


class NewUser(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
    # Checked by the domain's password rule (crimecast.domain.passwords), whose refusal is a 400
    # naming the rule, the same as the CLI's.
    password: Annotated[str, Field(description="12 to 72 bytes of UTF-8; not a common password or a keyboard run")]
    role: Literal["viewer", "admin"] = "viewer"


@router.post("/auth/users", summary="Add a user (admin)")
def add_user(user: Annotated[NewUser, Body()]) -> Response[dict[str, Any]]:
    require_role(router, "admin")
    created = accounts.add_user(get_stores(), user.username, user.password, user.role)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created)


@router.delete("/auth/users/<name>", summary="Remove a user (admin)")
def delete_user(name: Annotated[str, Path(max_length=64)]) -> Response[str]:
    require_role(router, "admin")
    accounts.delete_user(get_stores(), name)
    return Response(status_code=204, body="")


class UserChange(BaseModel):
    """A role and/or an account state; a field left out is left as it is."""

    role: Literal["viewer", "admin"] | None = None
    disabled: bool | None = None


@router.patch("/auth/users/<name>", summary="Change a user's role or disable/enable it (admin); revokes the user's tokens")
def update_user(name: Annotated[str, Path(max_length=64)], change: Annotated[UserChange, Body()]) -> dict[str, Any]:
    require_role(router, "admin")
    return accounts.update_user(get_stores(), name, role=change.role, disabled=change.disabled)
