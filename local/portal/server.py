"""The stand-in's HTTP server: a table of routes (``GET_ROUTES``, ``POST_ROUTES``) to small
functions, each answering a :class:`Reply`; :class:`StandInPortal` runs it on a thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
from pathlib import Path
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import pandas as pd

from crimecast.tools.data import AREA_TYPE_FILE
from local.portal.rows import (
    API_FILE,
    BOUNDARIES_FILE,
    CSV_FILE,
    data_dir,
    load_api_sample,
    load_area_type,
    load_csv,
    load_replay_files,
)
from local.portal.soql import SoqlError, soql_params
from local.portal.state import Fault, PortalState, ReplayEnded

CRIMES = "ijzp-q8t2"
BOUNDARIES = "igwz-8jzy"
JSON = "application/json; charset=utf-8"
SODA3_PATH = re.compile(r"/api/v3/views/(?P<dataset>[a-z0-9]{4}-[a-z0-9]{4})/query\.json")
CONTROL = "/__control/"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    cut: bool = False  # half the body sent, then the connection closed (a truncated answer)
    hang_up: bool = False  # no answer at all: the connection closed (a reset)


def reply(doc: Any) -> Reply:
    return Reply(200, json.dumps(doc, default=str).encode())


def error(status: int, message: str, headers: Mapping[str, str] | None = None, code: str = "query.soql.error") -> Reply:
    """The portal's error document."""
    return Reply(status, json.dumps({"code": code, "error": True, "message": message}).encode(), headers or {})


@dataclass
class Request:
    path: str
    query: str
    app_token: bool
    body: bytes = b""


# --- the datasets -----------------------------------------------------------------------------


def dataset_query(state: PortalState, path: str, params: dict[str, str], query: str | None, entry: dict[str, Any]) -> Reply:
    """A query on a dataset, faults first; ``query``: the text faults match (None: none may);
    ``entry``: its line of the log, told the fault."""
    fault = state.take_fault(query) if query is not None else None
    kind = entry["fault"] = fault.kind if fault else None
    if fault and kind == "reset":
        return Reply(0, b"", hang_up=True)
    if fault and kind in ("429", "500", "503"):
        return error(int(kind), "injected fault", {"Retry-After": str(fault.retry_after)} if kind == "429" else None)
    if fault and kind == "slow":
        time.sleep(fault.delay)
    try:
        body = _dataset(state, path, params)
    except (SoqlError, ValueError) as exc:
        return error(400, str(exc))
    if body is None:
        return error(404, f"no dataset at {path}")
    if kind == "garbage":
        return Reply(200, body[: len(body) // 2])
    return Reply(200, body, cut=kind == "truncate")


def _dataset(state: PortalState, path: str, params: dict[str, str]) -> bytes | None:
    if path == f"/resource/{CRIMES}.json":
        return json.dumps(state.answer(params), separators=(",", ":")).encode()
    if path == f"/resource/{BOUNDARIES}.geojson":
        return state.boundaries.read_bytes()
    return None


def soda2(state: PortalState, request: Request, entry: dict[str, Any]) -> Reply:
    """SODA 2.1: ``GET /resource/<dataset>.json?$select=...``."""
    params = dict(parse_qsl(request.query, keep_blank_values=True))
    entry["params"] = params
    query = unquote_plus(request.query) if request.path.startswith("/resource/") else None
    return dataset_query(state, request.path, params, query, entry)


def soda3(state: PortalState, request: Request, entry: dict[str, Any]) -> Reply:
    """SODA 3's query.json: the SoQL from the body, answered as SODA 2.1 answers it."""
    if not state.soda3:
        return error(404, f"no such path {request.path}")
    if not request.app_token:
        return error(403, "SODA 3 requests need an app token (X-App-Token)", code="forbidden")
    try:
        body = json.loads(request.body or b"{}")
        query = str(body["query"])
        params = soql_params(query) | _page(body.get("page"))
    except (ValueError, KeyError, TypeError) as exc:
        return error(400, f"bad SODA 3 request: {exc}")
    entry["params"] = params
    dataset = SODA3_PATH.fullmatch(request.path)["dataset"]  # type: ignore[index]
    return dataset_query(state, f"/resource/{dataset}.json", params, query, entry)


def _page(page: dict[str, Any] | None) -> dict[str, str]:
    """SODA 3's page as ``$limit`` and ``$offset``."""
    if not page:
        return {}
    size, number = int(page["pageSize"]), int(page["pageNumber"])
    if number < 1 or size < 1:
        raise SoqlError("page.pageNumber and page.pageSize start at 1")
    return {"$limit": str(size), "$offset": str((number - 1) * size)}


def logged(protocol: str, serve: Callable[[PortalState, Request, dict[str, Any]], Reply]) -> Callable[[PortalState, Request], Reply]:
    """``serve``, its request kept in the log (``GET /__control/log``) with its status and fault."""

    def serve_logged(state: PortalState, request: Request) -> Reply:
        entry: dict[str, Any] = {"path": request.path, "params": {}, "app_token": request.app_token, "protocol": protocol}
        state.log_request(entry)
        answer = serve(state, request, entry)
        if not answer.hang_up:
            entry["status"] = answer.status
        return answer

    return serve_logged


# --- the controls -----------------------------------------------------------------------------


def _soda3_switch(state: PortalState, body: dict[str, Any]) -> Any:
    state.soda3 = bool(body.get("enabled", True))
    return {"soda3": state.soda3}


def _set_now(state: PortalState, body: dict[str, Any]) -> Any:
    state.set_now(datetime.fromisoformat(body["now"]) if body.get("now") else None)
    return {"now": body.get("now")}


def _reset(state: PortalState, body: dict[str, Any]) -> Any:
    state.reset()
    return {"reset": True}


Control = Callable[[PortalState, dict[str, Any]], Any]  # the state and the request's JSON body -> the answer
GET_CONTROLS: dict[str, Control] = {
    "log": lambda state, body: state.recent_requests(1000),
    "revisions": lambda state, body: state.revisions,
    "replay": lambda state, body: state.replay_state(),
}
POST_CONTROLS: dict[str, Control] = {
    "soda3": _soda3_switch,
    "fault": lambda state, body: asdict(state.add_fault(**body)),
    "revise": lambda state, body: state.revise(body.get("id"), body.get("index"), body.get("primary_type"), body.get("date")),
    "now": _set_now,
    "reset": _reset,
    "advance": lambda state, body: state.advance(int(body.get("months", 1))),
}


def controls(table: dict[str, Control]) -> Callable[[PortalState, Request], Reply]:
    """``/__control/<action>`` answered by the action's entry of ``table``: 409 past a replay's
    end, 400 for a bad body, 404 for an action the table does not have."""

    def control(state: PortalState, request: Request) -> Reply:
        action = request.path.removeprefix(CONTROL)
        if action not in table:
            return error(404, f"no control action {action}")
        try:
            return reply(table[action](state, json.loads(request.body or b"{}")))
        except ReplayEnded as exc:
            return error(409, str(exc))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return error(400, f"{type(exc).__name__}: {exc}")

    return control


def no_post(state: PortalState, request: Request) -> Reply:
    return error(405 if request.path.startswith("/resource/") else 404, f"no POST on {request.path}")


# Per method, (does the path match, what answers it): the first match wins.
Route = tuple[Callable[[str], bool], Callable[[PortalState, Request], Reply]]
GET_ROUTES: tuple[Route, ...] = (
    (lambda path: path.startswith(CONTROL), controls(GET_CONTROLS)),
    (lambda path: True, logged("soda2.1", soda2)),
)
POST_ROUTES: tuple[Route, ...] = (
    (lambda path: SODA3_PATH.fullmatch(path) is not None, logged("soda3", soda3)),
    (lambda path: path.startswith(CONTROL), controls(POST_CONTROLS)),
    (lambda path: True, no_post),
)


def route(routes: tuple[Route, ...], state: PortalState, request: Request) -> Reply:
    return next(serve(state, request) for matches, serve in routes if matches(request.path))


# --- HTTP -------------------------------------------------------------------------------------


class PortalHandler(BaseHTTPRequestHandler):
    """Reads a request, writes the reply its route gives."""

    state: PortalState
    quiet: bool = True
    server_version = "crimecast-portal-stand-in"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.quiet:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        self._send(route(GET_ROUTES, self.state, self._request(with_body=False)))

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        self._send(route(POST_ROUTES, self.state, self._request(with_body=True)))

    def _request(self, with_body: bool) -> Request:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0) if with_body else 0
        return Request(url.path, url.query, bool(self.headers.get("X-App-Token")), self.rfile.read(length) if length else b"")

    def _send(self, answer: Reply) -> None:
        if answer.hang_up:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", JSON)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body[: len(answer.body) // 2] if answer.cut else answer.body)
        if answer.cut:
            self.wfile.flush()
            self.close_connection = True


def make_handler(state: PortalState, quiet: bool = True) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (PortalHandler,), {"state": state, "quiet": quiet})


class StandInPortal:
    """The stand-in on a background thread: ``with StandInPortal() as portal: portal.url``."""

    def __init__(self, dataset: str = "csv", data: Path | None = None, port: int = 0, host: str = "127.0.0.1",
                 replicate_years: int = 1, now: datetime | None = None, quiet: bool = True, *,
                 replay_from: str | None = None, areas: list[int] | None = None, types: list[str] | None = None,
                 replay_files: list[Path] | None = None) -> None:
        folder = data or data_dir()
        raw = None
        self.given_series: list[str] | None = None  # replay of totals only: the series the files give
        if dataset == "csv":
            frame = load_csv(folder / CSV_FILE, replicate_years)
        elif dataset == "api-sample":
            frame, raw = load_api_sample(folder / API_FILE)
        elif dataset == "replay":
            if not replay_from:
                raise ValueError("the replay dataset needs replay_from (YYYY-MM): the month the city is shown as of")
            if replay_files:
                replayed = load_replay_files(replay_files, areas, types)
                frame, self.given_series = replayed.frame, replayed.given_series
            else:
                frame = load_area_type(folder / AREA_TYPE_FILE, areas, types)
        else:
            raise ValueError(f"unknown dataset {dataset!r}: csv, api-sample or replay")
        self.state = PortalState(frame, raw, folder / BOUNDARIES_FILE, now, today=replay_from if dataset == "replay" else None)
        if self.state.today is not None:
            first = pd.Period(frame["date"].min(), freq="M")
            if not first <= self.state.today <= self.state.last_month:
                raise ValueError(f"replay month {replay_from} is outside the data ({first}..{self.state.last_month})")
        self.server = ThreadingHTTPServer((host, port), make_handler(self.state, quiet))
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandInPortal:
        self._thread = threading.Thread(target=self.server.serve_forever, name="portal-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> StandInPortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # shortcuts for tests
    def add_fault(self, kind: str, **options: Any) -> Fault:
        return self.state.add_fault(kind, **options)

    def revise(self, **change: Any) -> dict[str, Any]:
        return self.state.revise(**change)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.state.log)

    def advance(self, months: int = 1) -> dict[str, Any]:
        return self.state.advance(months)

    def serve_soda3(self, enabled: bool = True) -> None:
        """Serve SODA 3 too (the city's portal today), or only SODA 2.1 (404 on SODA 3's path)."""
        self.state.soda3 = enabled


def advance(url: str, months: int = 1, timeout: float = 30.0) -> dict[str, Any]:
    """Move a replaying portal's "today" on, over HTTP: its new state (ValueError when it refuses)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{url.rstrip('/')}/__control/advance", data=json.dumps({"months": months}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310  # a portal URL its operator gave
            return json.loads(response.read())
    except urllib.error.HTTPError as refused:
        raise ValueError(json.loads(refused.read() or b"{}").get("message") or f"HTTP {refused.code}") from None
