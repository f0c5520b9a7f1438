"""The browser tests' fake API (tests/e2e/fake_api.py) against the API's own OpenAPI document,
made in-process as ``/openapi.json`` serves it: every route the fake serves is one the API
documents, every answer it gives to a representative request (successes and the errors the page
handles) has a status the route documents and a body that matches that status's schema, and the
page (web/) calls only documented routes the fake serves. So the page cannot pass its browser
tests against answers the real API does not give."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import importlib.util
import json
import re
import sys
import threading
from types import ModuleType
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from tests.api_document import answer_problem, api_document, find_operation
from tests.conftest import REPO

FAKE = REPO / "tests" / "e2e" / "fake_api.py"
WEB = REPO / "web"
ADMIN = ("admin", "correct-horse-battery")  # the fake's own users (State.reset)
VIEWER = ("viewer", "viewer-password-1")


@dataclass(frozen=True)
class Call:
    """One request to the fake: as whom (None: no token), and the status it must answer."""

    method: str
    path: str
    status: int
    who: str | None = "viewer"
    query: dict[str, str] | None = None
    json_body: Any = None
    form: dict[str, str] | None = None
    raw_body: tuple[str, bytes] | None = None  # (Content-Type, body) sent as they are


def load_fake() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fake_api_under_test", FAKE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fake() -> ModuleType:
    return load_fake()


@pytest.fixture(scope="module")
def base(fake: ModuleType) -> Iterator[str]:
    server = fake.ThreadingHTTPServer(("127.0.0.1", 0), fake.Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def send(base: str, call: Call, tokens: dict[str, str], accept: str = "application/json") -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of one call, errors included."""
    headers = {"Accept": accept}
    data = None
    if call.who:
        headers["Authorization"] = f"Bearer {tokens[call.who]}"
    if call.json_body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(call.json_body).encode()
    elif call.raw_body is not None:
        headers["Content-Type"], data = call.raw_body
    elif call.form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        data = urlencode(call.form).encode()
    elif call.method == "POST":
        data = b""
    url = base + call.path + (f"?{urlencode(call.query)}" if call.query else "")
    try:
        with urlopen(Request(url, data=data, headers=headers, method=call.method), timeout=60) as answer:  # noqa: S310 - our own server
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def sign_in(base: str, user: tuple[str, str]) -> str:
    status, _, body = send(base, Call("POST", "/auth/token", 200, None, form={
        "grant_type": "password", "username": user[0], "password": user[1]}), {})
    assert status == 200, body
    return json.loads(body)["access_token"]


def calls(fake: ModuleType) -> list[Call]:
    """A representative request to every route of the fake, in an order where each finds the
    state it needs (a queued ingest for the 409, a user to remove ...)."""
    current = fake.STATE.model_version
    older = next(v for v, d in fake.STATE.versions.items() if v != current and not d.get("problem"))
    broken = next(v for v, d in fake.STATE.versions.items() if d.get("problem"))
    area, crime_type = fake.GAP_SERIES
    return [
        Call("POST", "/auth/token", 200, None, form={"grant_type": "password", "username": VIEWER[0], "password": VIEWER[1]}),
        Call("POST", "/auth/token", 401, None, form={"grant_type": "password", "username": VIEWER[0], "password": "wrong"}),
        Call("POST", "/auth/token", 400, None, form={"username": VIEWER[0]}),
        Call("GET", "/health", 200, None),
        Call("GET", "/auth/me", 200),
        Call("GET", "/auth/me", 401, None),
        Call("GET", "/catalog", 200),
        Call("GET", "/boundaries", 200),
        Call("GET", "/predict", 200),
        Call("GET", "/predict", 200, query={"community_area": str(area), "crime_type": crime_type}),
        Call("GET", "/predict", 200, query={"community_area": str(fake.NULL_SCORES_AREA), "crime_type": "ALL", "months": "24"}),
        Call("GET", "/predict", 200, query={"community_area": "25", "format": "csv"}),
        Call("GET", "/predict", 422, query={"months": "99"}),
        Call("GET", "/predict", 404, query={"community_area": "999"}),
        Call("GET", "/predict", 400, query={"format": "xml"}),
        Call("GET", "/predict/map", 200),
        Call("GET", "/predict/map", 200, query={"crime_type": "THEFT", "format": "csv"}),
        Call("GET", "/predict/map", 400, query={"month": "2026-13"}),
        Call("GET", "/predict/map", 422, query={"month": "1999-01"}),
        Call("GET", "/alerts", 200),
        Call("GET", "/alerts", 200, query={"crime_type": "THEFT"}),
        Call("GET", "/evaluate", 200),
        Call("GET", "/evaluate", 200, query={"community_area": "25", "crime_type": "ALL"}),
        Call("GET", "/models", 200, "admin"),
        Call("GET", "/models", 403),
        Call("POST", f"/models/{older}/promote", 400, "admin", json_body={"reason": " "}),
        Call("POST", f"/models/{older}/promote", 422, "admin", json_body={"why": "no reason given"}),
        Call("POST", "/models/v19990101T000000Z/promote", 404, "admin", json_body={"reason": "test"}),
        Call("POST", f"/models/{current}/promote", 409, "admin", json_body={"reason": "test"}),
        Call("POST", f"/models/{broken}/promote", 409, "admin", json_body={"reason": "test"}),
        Call("POST", f"/models/{older}/promote", 200, "admin", json_body={"reason": "the newer one is off"}),
        Call("POST", "/ingest", 403),
        Call("POST", "/ingest", 422, "admin", json_body={"mode": "sometimes"}),
        Call("POST", "/ingest", 202, "admin", json_body={"mode": "incremental", "window_months": 13}),
        Call("POST", "/ingest", 409, "admin", json_body={}),
        Call("POST", "/retrain", 202, "admin"),
        Call("POST", "/retrain", 409, "admin"),
        Call("GET", "/runs", 200),
        Call("GET", "/runs", 200, "admin", query={"kind": "ingest"}),
        Call("GET", "/runs", 200, query={"kind": "promote"}),
        Call("GET", "/runs", 422, query={"kind": "party"}),
        Call("GET", f"/runs/{next(iter(fake.STATE.runs))}", 200),
        Call("GET", "/runs/nothing-here", 404),
        Call("POST", "/auth/users", 201, "admin", json_body={"username": "contract-user", "password": "a-long-unusual-passphrase"}),
        Call("POST", "/auth/users", 409, "admin", json_body={"username": "contract-user", "password": "a-long-unusual-passphrase"}),
        Call("POST", "/auth/users", 400, "admin", json_body={"username": "other-user", "password": "password"}),
        Call("POST", "/auth/users", 422, "admin", json_body={"username": "no spaces allowed", "password": "x" * 20}),
        Call("POST", "/auth/users", 400, "admin", raw_body=("application/json", b'{"username": "other-user",')),
        Call("POST", "/auth/users", 415, "admin", raw_body=("text/plain", b'{"username": "other-user"}')),
        Call("POST", "/ingest", 415, "admin", raw_body=("application/x-www-form-urlencoded", b"mode=backfill")),
        Call("POST", "/auth/users", 403, json_body={"username": "other-user", "password": "a-long-unusual-passphrase"}),
        Call("DELETE", "/auth/users/contract-user", 204, "admin"),
        Call("DELETE", "/auth/users/contract-user", 404, "admin"),
        Call("POST", "/auth/logout", 200),
    ]


def test_every_route_of_the_fake_is_a_route_of_the_api(fake: ModuleType) -> None:
    undocumented = [f"{method} {path}" for method, path, _ in fake.ROUTES
                    if (method, path) not in fake.TEST_HOOKS and find_operation(method, path) is None]
    assert not undocumented, f"the fake serves routes the API's OpenAPI document does not have: {undocumented}"


def test_every_answer_of_the_fake_matches_the_api_document(fake: ModuleType, base: str) -> None:
    send(base, Call("POST", "/__reset", 200, None), {})
    tokens = {"admin": sign_in(base, ADMIN), "viewer": sign_in(base, VIEWER)}
    problems, served = [], set()
    try:
        for call in calls(fake):
            status, content_type, body = send(base, call, tokens)
            served.add(fake.route_of(call.method, call.path)[0])
            if status != call.status:
                problems.append(f"{call.method} {call.path} {call.query or ''}: the fake answered {status}, "
                                f"this check expects {call.status}: {body[:200]!r}")
            problems.append(answer_problem(call.method, call.path, status, content_type, body))
    finally:
        send(base, Call("POST", "/__reset", 200, None), {})
    found = [p for p in problems if p]
    assert not found, "the fake API's answers drift from the API's OpenAPI document:\n" + "\n".join(found)
    unchecked = {handler for method, path, handler in fake.ROUTES if (method, path) not in fake.TEST_HOOKS} - served
    assert not unchecked, f"routes of the fake no call here checks: {sorted(unchecked)}"


# A path the page asks for: a string or template literal starting with "/" (each ${...} one segment).
PAGE_PATH = re.compile(r"""(['"`])(/[A-Za-z$][^'"`\s]*)\1""")
PLACEHOLDER = re.compile(r"^(\{\w+\}|\$\{[^}]*\})$")


def page_paths() -> set[str]:
    return {literal for script in WEB.rglob("*.js") for _, literal in PAGE_PATH.findall(script.read_text())}


def same_route(page_path: str, template: str) -> bool:
    """Whether a path the page builds can be the route ``template``: segment by segment, equal
    or either one a placeholder (``${...}`` in the page, ``{name}`` in a template)."""
    ours, theirs = page_path.split("/"), template.split("/")
    return len(ours) == len(theirs) and all(a == b or PLACEHOLDER.match(a) or PLACEHOLDER.match(b) for a, b in zip(ours, theirs))


def test_the_page_calls_only_routes_the_api_documents_and_the_fake_serves(fake: ModuleType) -> None:
    paths = page_paths()
    assert {"/predict", "/auth/token"} <= paths, f"no API path found in the page's scripts: {sorted(paths)}"
    documented = list(api_document()["paths"])
    undocumented = sorted(p for p in paths if not any(same_route(p, t) for t in documented))
    assert not undocumented, f"the page (web/) calls paths the API's OpenAPI document does not have: {undocumented}"
    unserved = sorted(p for p in paths if not any(same_route(p, path) for _, path, _ in fake.ROUTES))
    assert not unserved, f"the page calls paths the fake API does not serve, so no browser test covers them: {unserved}"
