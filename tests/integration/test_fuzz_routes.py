"""Every route of the OpenAPI document, fuzzed with schemathesis against the local stack over
HTTP, as a viewer and as an admin: valid and invalid parameters and bodies (long strings,
wrong types, missing fields, unicode, out-of-range numbers). No answer may be a 5xx, and
every error has the API's one shape, ``{"error": {"code", "message"}}`` (RFC 6749's
``{"error", "error_description"}`` on ``/auth/token``).

Every valid case of a route that reads a JSON body is sent again as another media type
(text/plain, a form, multipart, XML, or no Content-Type, in turn), which must be a 415:
schemathesis sends only the media types the document declares, so a 500 on text/plain went
unseen here until a run of the schemathesis CLI found it.

Bounded for CI: ``CRIMECAST_FUZZ_EXAMPLES`` examples per route, role and mode (default 20),
derandomized so every run sends the same requests. Routes that start long jobs are sent
only what cannot start one: ``POST /retrain`` (no parameters) goes as a viewer only (403),
``POST /ingest`` as an admin only with invalid bodies (or as another media type). Routes
that end the session (``/auth/logout``) are never fuzzed: they would revoke the fuzzer's own
token and hide every later answer behind a 401.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
import json
import os
import re
from typing import Any
import uuid

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
import jsonschema
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from tests.integration.conftest import PASSWORD, Stack, request, running_stack

EXAMPLES = int(os.environ.get("CRIMECAST_FUZZ_EXAMPLES", "20"))
VIEWER = "fuzz-viewer"
# Never fuzzed while signed in: routes that would end the session the fuzzing runs on.
SESSION_ENDING = re.compile(r"logout|revoke|rotate", re.I)
STATS: Counter[str] = Counter()
ROUTES: Counter[str] = Counter()
# Sent in turn, with each valid case of a route that reads JSON: each must be a 415 (None: no Content-Type).
FOREIGN_MEDIA_TYPES: tuple[str | None, ...] = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                               "application/xml", "text/plain; charset=utf-8", None)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("snapshot")) as started:
        yield started


@pytest.fixture(scope="module")
def tokens(stack) -> dict[str, str]:
    base = stack[0]
    status, admin = request(f"{base}/auth/token", {"grant_type": "password", "username": "admin", "password": PASSWORD})
    assert status == 200, admin
    password = f"pw-{uuid.uuid4().hex}"
    status, created = request(f"{base}/auth/users", token=admin["access_token"], json_body={"username": VIEWER, "password": password})
    assert status in (200, 201), created
    status, viewer = request(f"{base}/auth/token", {"grant_type": "password", "username": VIEWER, "password": password})
    assert status == 200, viewer
    return {"admin": admin["access_token"], "viewer": viewer["access_token"]}


@pytest.fixture(scope="module")
def schema(stack, tokens) -> Any:
    response = requests.get(f"{stack[0]}/openapi.json", headers={"Authorization": f"Bearer {tokens['viewer']}"}, timeout=30)
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def check_answer(method: str, path: str, response: Any, sent: str = "") -> None:
    """No 5xx; an error in the API's shape (RFC 6749's on /auth/token)."""
    where = f"{method} {response.request.url} {sent[:300]} -> {response.status_code}: {response.text[:300]}"
    STATS[f"{response.status_code}"] += 1
    STATS["requests"] += 1
    ROUTES[f"{method} {path} {response.status_code}"] += 1
    assert response.status_code < 500, where
    if response.status_code < 400:
        return
    body = response.json()
    if path == "/auth/token":
        assert isinstance(body.get("error"), str) and set(body) <= {"error", "error_description", "error_uri"}, where
        return
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, where
    assert all(isinstance(v, str) and v for v in body["error"].values()), where


def _skip(role: str, mode: GenerationMode, operation: Any, case: Any, ingest_schema: dict | None) -> bool:
    method, path = operation.method.upper(), operation.path
    if method == "POST" and path == "/retrain":
        return role == "admin"
    if method == "POST" and path == "/ingest" and role == "admin":
        if mode is GenerationMode.POSITIVE or not isinstance(case.body, dict):
            return True  # no body, or a valid one, would start an ingest
        return jsonschema.Draft202012Validator(ingest_schema or {}).is_valid(case.body)
    if method in ("DELETE", "PATCH") and path == "/auth/users/{name}":  # would remove, disable or demote the fuzzers
        return str((case.path_parameters or {}).get("name")) in ("admin", VIEWER)
    return False


def _operations(schema: Any) -> list[Any]:
    found = [result.ok() for result in schema.get_all_operations()]
    kept = [op for op in found if not SESSION_ENDING.search(op.path)]
    assert ("POST", "/auth/logout") in {(op.method.upper(), op.path) for op in found} - {(op.method.upper(), op.path) for op in kept}
    return kept


def _ingest_schema(schema: Any) -> dict | None:
    document = schema.raw_schema
    body = document["paths"]["/ingest"]["post"].get("requestBody", {}).get("content", {}).get("application/json", {})
    resolved = dict(body.get("schema", {}))
    return {**resolved, "components": document.get("components", {})} if resolved else None


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_every_route_answers_every_input_without_a_5xx(stack, tokens, schema, role: str) -> None:
    base = stack[0]
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    ingest_schema = _ingest_schema(schema)
    session = requests.Session()
    operations = _operations(schema)
    assert {(op.method.upper(), op.path) for op in operations} >= {("GET", "/predict"), ("GET", "/runs/{run_id}"),
                                                                    ("POST", "/auth/users"), ("POST", "/ingest")}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation.as_strategy(generation_mode=mode), lambda case, operation=operation, mode=mode: _send(
                role, mode, operation, case, ingest_schema, base, session, headers))


def _run(strategy: Any, send: Any) -> None:
    """``send`` each of ``EXAMPLES`` cases drawn from ``strategy`` (the same ones every run)."""

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)

    try:
        run()
    except Unsatisfiable:  # a route without parameters or body has no invalid input
        STATS["routes without invalid input"] += 1


def _send(role: str, mode: GenerationMode, operation: Any, case: Any, ingest_schema: dict | None, base: str,
          session: requests.Session, headers: dict[str, str]) -> None:
    if _skip(role, mode, operation, case, ingest_schema):
        STATS["skipped"] += 1
        return
    response = case.call(base_url=base, session=session, headers=headers, timeout=30)
    check_answer(operation.method.upper(), operation.path, response,
                 f"{case.path_parameters!r} {case.query!r} {case.media_type} {case.body!r}")
    if role == "viewer" and operation.path.startswith("/runs") and response.status_code == 200:
        assert "error_detail" not in response.text and "failure_details" not in response.text  # admins only
    if mode is GenerationMode.POSITIVE and [b for b in operation.body if b.media_type == "application/json"]:
        _send_as_another_media_type(operation, case, base, session, headers)


def _send_as_another_media_type(operation: Any, case: Any, base: str, session: requests.Session,
                                headers: dict[str, str]) -> None:
    """The valid case again, its body as JSON text but labelled another media type (or none): a 415.
    Only valid cases: an invalid path parameter could make a 404 the right answer."""
    media_type = FOREIGN_MEDIA_TYPES[STATS["foreign media types"] % len(FOREIGN_MEDIA_TYPES)]
    request = case.as_transport_kwargs(base_url=base, headers=headers)
    request.pop("json", None)
    request.pop("data", None)
    request["headers"] = {k: v for k, v in request["headers"].items() if k.lower() != "content-type"}
    if media_type is not None:
        request["headers"]["Content-Type"] = media_type
    request["data"] = json.dumps(case.body if case.body is not NOT_SET and case.body is not None else {}).encode()
    response = session.request(**request, timeout=30)
    STATS["foreign media types"] += 1
    check_answer(operation.method.upper(), operation.path, response, f"as {media_type}: {request['data'][:200]!r}")
    assert response.status_code == 415, (operation.path, media_type, response.status_code, response.text[:300])


TOKEN_FORMS: list[tuple[str, str | None]] = [
    ("", "application/x-www-form-urlencoded"),
    ("grant_type=password", "application/x-www-form-urlencoded"),
    ("grant_type=client_credentials&username=x&password=y", "application/x-www-form-urlencoded"),
    ("grant_type=password&username=&password=", "application/x-www-form-urlencoded"),
    ("grant_type=password&username=" + "n" * 5000 + "&password=x", "application/x-www-form-urlencoded"),
    ("grant_type=password&username=%E2%9C%93%F0%9F%92%A5&password=%00%01", "application/x-www-form-urlencoded"),
    ("grant_type=password&username=nobody-fuzz&password=wrong", "application/x-www-form-urlencoded"),
    ("grant_type=password&grant_type=password&username=nobody-fuzz&password=x&password=y", "application/x-www-form-urlencoded"),
    ('{"grant_type": "password", "username": "nobody-fuzz", "password": "x"}', "application/json"),
    ("[1, 2, 3]", "application/json"),
    ("%%%==&&&", "application/x-www-form-urlencoded"),
    ("\udcff-not-utf8", "text/plain"),
    ("grant_type=password&username=nobody-fuzz&password=" + "p" * 100_000, "application/x-www-form-urlencoded"),
    ("grant_type=password&username=-1&password=-1", None),
]


def test_the_token_route_answers_malformed_forms_in_the_oauth_shape(stack) -> None:
    """/auth/token takes a form the OpenAPI document does not describe: these cases by hand
    (never the admin's name, so the admin's sign-in from this address is never held)."""
    base = stack[0]
    for form, content_type in TOKEN_FORMS:
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.post(f"{base}/auth/token", data=form.encode("utf-8", "surrogateescape"), headers=headers, timeout=30)
        check_answer("POST", "/auth/token", response)
        assert 400 <= response.status_code < 500, (form[:80], response.status_code, response.text[:200])


def test_report(stack) -> None:
    """The figures of this run (``pytest -s`` shows them; the README quotes them)."""
    print("\nfuzz:", json.dumps(dict(sorted(STATS.items())), sort_keys=True))
    print("by route and status:", json.dumps(dict(sorted(ROUTES.items()))))
    assert STATS["requests"] > 0
