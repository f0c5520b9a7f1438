"""The whole service on one machine, without Docker: ``make demo``.

moto's server stands in for AWS. The bucket, tables and secret are the ones
``template.yaml`` defines, read from it. A small HTTP server plays API Gateway: it routes
each request by the template's ``Api`` events to the same handlers, through the same
authorizer, with API Gateway's proxy event shape, and serves the web UI at ``/``.

With ``CRIMECAST_AS_OF=YYYY-MM`` (``--as-of``) it replays the city from the end of that
month: it starts the portal stand-in (``local/portal.py``) in replay mode over
``area_type_monthly_2001_2018.csv.gz`` in ``CRIMECAST_DATA_DIR``, on ``CRIMECAST_REPLAY_PORT``
(default 8089), optionally cut to ``CRIMECAST_REPLAY_AREAS`` / ``CRIMECAST_REPLAY_TYPES``
(comma-separated), or over other tidy files (``CRIMECAST_REPLAY_DATA``); backfills from it
through the normal ingest path, trains and serves.
``python -m local.portal advance`` publishes the next month; ``POST /ingest`` brings it in.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import importlib.util
import json
import logging
import mimetypes
import os
from pathlib import Path
import re
import secrets
import signal
import socket
import sys
import threading
import time
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit
import uuid
import warnings

from crimecast import settings
from crimecast.adapters import aws, limits
from crimecast.domain import parallel
from crimecast.security_headers import security_headers
from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES
from local import faults, lambda_async, workflow
from local.iam import ACCOUNT, REGION  # moto's: the ARNs the embedded AWS gives the functions
from local.template import (
    LAMBDA_ASYNC_DEFAULTS,
    ApiRoute,
    AsyncInvokeConfig,
    Authorizer,
    api_routes,
    default_authorizer,
    distributed_map_functions,
    dynamodb_table_specs,
    entry_points,
    function_timeout,
    load_template,
    resources_of_type,
)

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
WEB = REPO / "web"
ADMIN = "admin"
# Area totals and citywide types to 2026, and every area x type to 2018-10 and in 2024 when
# the snapshot has them (each series keeps the span of its own files; the first file that gives
# a series outright wins; the area x type files are joined, the months between them unknown).
SNAPSHOT_FILES = ("area_monthly_all_types_2001_2026.csv", "citywide_monthly_by_type_2001_2026.csv")
BOUNDARIES_FILE = "community_areas.geojson"
# The page's policy with connect-src 'self': here the API is on the page's own origin.
SECURITY_HEADERS = security_headers()
# The template's parameter that sets its Distributed Map's MaxConcurrency (and the train function's
# reserved concurrency); the local stack deploys it bounded by the cores.
MAP_CONCURRENCY_PARAMETER = "RetrainMaxConcurrency"
# An idle sandbox is reclaimed after this long (Lambda reclaims idle execution environments too):
# its process and what it loaded (a warm train sandbox keeps the whole city's counts) go.
SANDBOX_IDLE_S = 600.0
# API Gateway's answer to a method or path the REST API does not have (not a 404 or 405).
MISSING_TOKEN = {"message": "Missing Authentication Token"}


@dataclass
class LocalContext:
    """The parts of Lambda's context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _context(codeuri: str, name: str | None, request_id: str | None = None) -> LocalContext:
    """``request_id``: an asynchronous event's, the same for each of its attempts (as Lambda's)."""
    ids = {"aws_request_id": request_id} if request_id else {}
    if name is None:
        return LocalContext(function_name=Path(codeuri).name, **ids)
    return LocalContext(function_name=name, invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}", **ids)


def say(message: str) -> None:
    print(f"[crimecast] {message}", file=sys.stderr, flush=True)


# --- the embedded AWS ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> Any:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per AWS call
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
    })
    return server


def provision(template: dict[str, Any]) -> dict[str, str]:
    """Create the template's bucket, tables and signing secret; return the functions' environment."""
    import boto3

    env: dict[str, str] = {}
    bucket = "crimecast-local-data"
    boto3.client("s3").create_bucket(Bucket=bucket)
    env["DATA_BUCKET"] = bucket
    for logical_id, spec in dynamodb_table_specs(template).items():
        name = f"crimecast-local-{logical_id}"
        boto3.client("dynamodb").create_table(TableName=name, **spec)
        env[re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).upper()] = name  # SeriesTable -> SERIES_TABLE
    for logical_id in resources_of_type(template, "AWS::SecretsManager::Secret"):
        secret = boto3.client("secretsmanager").create_secret(Name=f"crimecast-local-{logical_id}",
                                                              SecretString=secrets.token_urlsafe(48))
        env["JWT_SECRET_ARN"] = secret["ARN"]
    return env


def map_concurrency(template: dict[str, Any], workers: int | None) -> int:
    """The retrain Map's MaxConcurrency here: the template's, bounded by the cores (``workers``)."""
    default = int(template["Parameters"][MAP_CONCURRENCY_PARAMETER]["Default"])
    return max(1, min(default, workers or parallel.default_workers()))


def lambda_service(template: dict[str, Any]) -> Functions:
    """What runs the functions the embedded Lambda service is asked to invoke: a Distributed Map's
    item function (the retrain's batches) in sandbox processes, the others in this process."""
    entries = entry_points(template)
    return Functions(sandboxed={entries[name] for name in distributed_map_functions(template)})


def start_workflows(template: dict[str, Any], functions: Functions, concurrency: int | None = None) -> dict[str, str]:
    """The template's queues and functions on the embedded Lambda service (each invoke runs its handler
    with ``functions``, an asynchronous one on a thread, retried and dropped as its EventInvokeConfig
    says) and its retrain state machine, run by moto's Step Functions interpreter, its Map's
    MaxConcurrency ``concurrency`` (the template's default otherwise); the environment that points
    the functions at it."""
    workflow.enable_execution(os.environ["AWS_ENDPOINT_URL"])
    arns = workflow.register_functions(template, functions)
    parameters = {MAP_CONCURRENCY_PARAMETER: str(concurrency)} if concurrency else None
    return {"RETRAIN_STATE_MACHINE_ARN": workflow.create_state_machine(template, arns, dict(os.environ),
                                                                       parameters=parameters)}


def secure(template: dict[str, Any], env: dict[str, str], functions: Functions) -> None:
    """IAM as the template grants it: a role per function (its policies from the SAM translator),
    each invocation signed with its function's session; the process's own keys ("local": the
    set-up, start-up training, the CLI) an admin user's; then moto's enforcement on."""
    import boto3

    from local import iam, iam_calls

    physical = iam.physical_names(template, env)
    policies = iam.function_policies(template, physical)
    iam_client, sts = boto3.client("iam"), boto3.client("sts")
    sessions = iam.create_roles(iam_client, sts, policies)
    if template == load_template(TEMPLATE):  # the role coverage check holds the calls against template.yaml
        iam_calls.register({iam.role_name("crimecast-local", name): name for name in policies}, template, physical)
    iam.create_admin(iam_client, aws.Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    run_as_roles(template, sessions, functions)
    iam.enforce_from_now()


def run_as_roles(template: dict[str, Any], sessions: dict[str, aws.Credentials], functions: Functions) -> None:
    """Each function's invocations signed with its role's session (``sessions``, per logical id),
    the state machine interpreter's calls with the machine's."""
    from local import iam

    functions.sessions = {entry: sessions[name] for name, entry in entry_points(template).items() if name in sessions}
    machines = [name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::StateMachine"]
    if len(machines) != 1:  # the interpreter's clients carry one role: one machine, as the template has
        raise ValueError(f"the local stack runs one state machine, the template has {len(machines)}")
    iam.sign_workflow_calls(sessions[machines[0]])


# --- the functions -------------------------------------------------------------------


class FunctionTimeout(Exception):
    """A handler ran past its function's Timeout (Lambda ends the invocation: "Task timed out")."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Task timed out after {seconds:.2f} seconds")
        self.seconds = seconds


def error_document(exc: BaseException) -> dict[str, str]:
    """Lambda's answer for a function error: the handler's exception, or its timeout."""
    if isinstance(exc, FunctionTimeout):
        return {"errorType": "Sandbox.Timedout", "errorMessage": str(exc)}
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


class IntegrationTimeout(Exception):
    """API Gateway stopped waiting for the integration (29 s, or what was left of them)."""


class AuthorizerFailure(Exception):
    """The authorizer failed otherwise than by saying "Unauthorized" (it crashed, e.g. AccessDenied
    reading the signing key): API Gateway answers 500 (AUTHORIZER_FAILURE), not 401."""


class SandboxError(Exception):
    """The handler failed in its sandbox (a worker process): ``error_type`` is what Lambda's error
    document names (the handler's exception's type; ``Runtime.ExitError`` when the sandbox died)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class Functions:
    """Handler modules loaded once each, as warm Lambda containers keep them.

    Handlers run one at a time (Powertools' resolvers keep the current event in a class
    attribute shared by every function), each on a thread of its own so that a caller stops
    waiting at the function's timeout; a handler still running then is abandoned, as Lambda
    drops the container: the next invocations no longer wait for it.

    The functions in ``sandboxed`` (a Distributed Map's item function: the retrain's batches)
    run instead in sandboxes, worker processes of their own, as many at once as they are
    invoked (the Map's MaxConcurrency bounds it): a sandbox runs one invocation at a time and
    stays warm for the next (what it loaded stays loaded); it is ended when its invocation
    times out or it dies, after SANDBOX_IDLE_S without one, and with the stack
    (``parallel.stop_workers``)."""

    def __init__(self, sandboxed: Iterable[tuple[str, str]] = ()) -> None:
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self._swap = threading.Lock()
        self._loading = threading.Lock()
        # Per (CodeUri, Handler), the session of the function's role its calls are signed with
        # (``secure``); none: the process's own credentials.
        self.sessions: dict[tuple[str, str], aws.Credentials] = {}
        self.sandboxed = frozenset(sandboxed)
        # Per function, its warm sandboxes and when each was last released.
        self._idle: dict[tuple[str, str, str | None], list[tuple[parallel.Worker, float]]] = {}

    def _call(self, codeuri: str, handler: str, event: dict[str, Any], context: LocalContext) -> Any:
        with self.as_role(codeuri, handler):
            return self.handler(codeuri, handler)(event, context)

    def as_role(self, codeuri: str, handler: str) -> AbstractContextManager[None]:
        """The calls of a block signed with the function's role session (what Lambda does with the
        execution role: the handler's calls, its OnFailure records, its event source mappings' reads)."""
        return aws.use_credentials(self.sessions.get((codeuri, handler)))

    def handler(self, codeuri: str, handler: str) -> Any:
        folder = REPO / codeuri
        module_name, function_name = handler.rsplit(".", 1)
        key = f"{folder.name}_{module_name}"
        if key not in self._modules:
            spec = importlib.util.spec_from_file_location(f"lambda_{key}", folder / f"{module_name}.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            self._modules[key] = module
        return getattr(self._modules[key], function_name)

    def invoke(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None = None,
               give_up_at: float | None = None, name: str | None = None, start_by: float | None = None,
               request_id: str | None = None) -> Any:
        """The handler's answer to ``event``. With ``timeout``: FunctionTimeout once it has run that
        long; with ``give_up_at`` (a ``time.monotonic()``): IntegrationTimeout if that comes first;
        with ``start_by`` (likewise): EventExpired if it is still queued behind other invocations then.
        ``name``: the function's name on the embedded AWS (its context's, which it may invoke)."""
        if (codeuri, handler) in self.sandboxed:
            return self._invoke_in_sandbox(codeuri, handler, event, timeout, name)
        context = _context(codeuri, name, request_id)
        if timeout is None and give_up_at is None and start_by is None:
            with self._lock:
                return self._call(codeuri, handler, event, context)
        lock = self._lock
        started, finished = threading.Event(), threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            with lock:
                if box.get("abandoned"):
                    return
                box["started"] = time.monotonic()
                started.set()
                try:
                    box["result"] = self._call(codeuri, handler, event, context)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    box["error"] = exc
                finally:
                    finished.set()

        threading.Thread(target=run, name=f"lambda-{context.function_name}", daemon=True).start()
        waits = [(at, error) for at, error in ((give_up_at, IntegrationTimeout()), (start_by, lambda_async.EventExpired()))
                 if at is not None]
        start_limit, not_started = min(waits, key=lambda w: w[0]) if waits else (None, None)
        if not started.wait(None if start_limit is None else max(0.0, start_limit - time.monotonic())):
            box["abandoned"] = True  # still queued behind another invocation
            raise not_started or IntegrationTimeout()
        ends = [(box["started"] + timeout, FunctionTimeout(timeout))] if timeout is not None else []
        if give_up_at is not None:
            ends.append((give_up_at, IntegrationTimeout()))
        end, error = min(ends, key=lambda e: e[0])
        if not finished.wait(max(0.0, end - time.monotonic())):
            with self._swap:
                if self._lock is lock:
                    self._lock = threading.Lock()  # a new container for the next invocations
            raise error
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _invoke_in_sandbox(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None,
                           name: str | None) -> Any:
        """The handler's answer from a warm sandbox of its function, or a new one (forked once the
        handler is loaded here, so it starts warm); its calls signed with the function's session."""
        key = (codeuri, handler, name)
        with self._loading:
            self.handler(codeuri, handler)
            idle = [(s, released) for s, released in self._idle.get(key, []) if s.alive()]
            sandbox = idle.pop()[0] if idle else None
            self._idle[key] = idle
        if sandbox is None:
            sandbox = parallel.Worker(partial(self._run_in_sandbox, codeuri, handler, name), setup=aws.reset_clients)
        try:
            result = sandbox.call(event, timeout)
        except TimeoutError:  # the sandbox is gone, as Lambda ends the one that timed out
            raise FunctionTimeout(timeout or 0.0) from None
        except parallel.WorkerDied as exc:
            raise SandboxError("Runtime.ExitError", f"Error: Runtime exited with error: exit status {exc.exitcode}") from None
        except parallel.CallFailed as exc:
            self._keep_warm(key, sandbox)
            raise SandboxError(exc.error_type, exc.error_message) from None
        self._keep_warm(key, sandbox)
        return result

    def _keep_warm(self, key: tuple[str, str, str | None], sandbox: parallel.Worker) -> None:
        """Back in the pool for the next invocation; reclaimed if none comes within SANDBOX_IDLE_S."""
        entry = (sandbox, time.monotonic())
        with self._loading:
            self._idle.setdefault(key, []).append(entry)
        timer = threading.Timer(SANDBOX_IDLE_S, self._reclaim, (key, entry))
        timer.daemon = True
        timer.start()

    def _reclaim(self, key: tuple[str, str, str | None], entry: tuple[parallel.Worker, float]) -> None:
        with self._loading:
            idle = self._idle.get(key, [])
            if entry not in idle:  # invoked again since (or gone)
                return
            idle.remove(entry)
        entry[0].stop()

    def _run_in_sandbox(self, codeuri: str, handler: str, name: str | None, event: dict[str, Any]) -> Any:
        return self._call(codeuri, handler, event, _context(codeuri, name))

    def invoke_async(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None = None,
                     on_failure: Callable[[dict[str, Any]], None] | None = None, name: str | None = None,
                     config: AsyncInvokeConfig = LAMBDA_ASYNC_DEFAULTS,
                     function_arn: str | None = None) -> threading.Thread:
        """An asynchronous invocation (InvocationType Event): PayloadTooLargeError over 256 KB, as
        Lambda refuses it; else the event is run on a thread as Lambda runs it (``local.lambda_async``:
        retried as ``config`` says, dropped past its age), and the invocation record of one that
        finally failed goes to ``on_failure``, called with the function's role (Lambda sends it to
        the OnFailure destination with the execution role)."""
        limits.check_async_payload(Path(codeuri).name, event)
        label = name or Path(codeuri).name
        arn = function_arn or f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{label}"

        def attempt(start_by: float, request_id: str) -> None:
            try:
                self.invoke(codeuri, handler, event, timeout, name=name, start_by=start_by, request_id=request_id)
            except lambda_async.EventExpired:
                raise
            except Exception as exc:
                say(f"async {label} failed: {error_document(exc)['errorMessage']}")
                raise

        def run() -> None:
            record = lambda_async.run_attempts(attempt, config, arn, event, error_document)
            if record is None:
                return
            context = record["requestContext"]
            say(f"async {label}: dropped after {context['approximateInvokeCount']} attempt(s) ({context['condition']})")
            if on_failure is not None:
                with self.as_role(codeuri, handler):
                    on_failure(record)

        thread = threading.Thread(target=run, name=f"event-{label}", daemon=True)
        thread.start()
        return thread


# --- API Gateway, played locally --------------------------------------------------------


def _cors_of(template: dict[str, Any]) -> dict[str, str]:
    """The preflight answer's headers SAM builds from the Api's ``Cors`` (its quoted values unquoted;
    the origin is WEB_ORIGIN, which the template's ``!Sub`` names)."""
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        cors = api["Properties"].get("Cors") or {}
        if cors:
            plain = {k: v.strip("'") for k, v in cors.items() if isinstance(v, str)}
            return {"Access-Control-Allow-Origin": os.environ.get("WEB_ORIGIN", "*"),
                    "Access-Control-Allow-Headers": plain.get("AllowHeaders", ""),
                    "Access-Control-Allow-Methods": plain.get("AllowMethods", ""),
                    **({"Access-Control-Max-Age": plain["MaxAge"]} if "MaxAge" in plain else {})}
    return {}


@dataclass
class Gateway:
    """API Gateway's REST API as the template declares it: its routes, its TOKEN authorizer with
    its result cached per token for the template's TTL, each function's timeout and API
    Gateway's own limits (29 s, 10 MB; 6 MB in and out of a Lambda)."""

    routes: list[tuple[re.Pattern[str], ApiRoute]]
    authorizer: tuple[str, str]
    functions: Functions
    state: dict[str, Any]
    timeouts: dict[str, float] = field(default_factory=dict)  # per function logical id
    authorizer_spec: Authorizer | None = None
    cors: dict[str, str] = field(default_factory=dict)
    integration_timeout: float = limits.API_GATEWAY_TIMEOUT_S
    _auth_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _auth_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_template(cls, template: dict[str, Any], state: dict[str, Any]) -> Gateway:
        routes = [(re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(r.path)) + "$"), r)
                  for r in api_routes(template)]
        spec = default_authorizer(template)
        ttl = os.environ.get("CRIMECAST_AUTHORIZER_TTL")  # tests that need every request re-authorized: 0
        if ttl is not None:
            spec = spec._replace(ttl=float(ttl))
        timeouts = {r.function: function_timeout(template, r.function) for _, r in routes}
        timeouts[spec.function] = function_timeout(template, spec.function)
        return cls(routes, (spec.codeuri, spec.handler), Functions(), state, timeouts, spec, _cors_of(template))

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for pattern, route in self.routes:
            found = pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None

    def is_api_path(self, path: str) -> bool:
        """A resource of the API (whatever the method)."""
        return any(pattern.match(path) for pattern, _ in self.routes)

    def authorize(self, header: str | None, give_up_at: float | None = None) -> dict[str, Any] | None:
        """The authorizer's context for this token, from the cache while its TTL lasts (as API Gateway
        keeps it per identity source), or None for a 401."""
        if not header:
            return None  # API Gateway answers 401 without calling the authorizer
        ttl = self.authorizer_spec.ttl if self.authorizer_spec else 0.0
        now = time.monotonic()
        if ttl > 0:
            with self._auth_lock:
                cached = self._auth_cache.get(header)
            if cached and cached[0] > now:
                return cached[1]
        event = {"type": "TOKEN", "authorizationToken": header,
                 "methodArn": "arn:aws:execute-api:us-east-1:000000000000:local/local/*/*"}
        timeout = self.timeouts.get(self.authorizer_spec.function) if self.authorizer_spec else None
        try:
            policy = self.functions.invoke(*self.authorizer, event, timeout, give_up_at)
        except IntegrationTimeout:
            raise
        except Exception as exc:
            if str(exc) == "Unauthorized":  # the authorizer's way to say 401
                return None
            raise AuthorizerFailure(f"{type(exc).__name__}: {exc}") from exc  # any other error: a 500
        context = {"principalId": policy["principalId"], **policy.get("context", {})}
        if ttl > 0:
            with self._auth_lock:
                if len(self._auth_cache) > 10_000:  # tokens expire: drop the lapsed entries
                    self._auth_cache = {k: v for k, v in self._auth_cache.items() if v[0] > now}
                self._auth_cache[header] = (now + ttl, context)
        return context

    def event(self, route: ApiRoute, path: str, params: dict[str, str], query: str, headers: dict[str, str],
              body: str | None, authorizer: dict[str, Any] | None, client: str) -> dict[str, Any]:
        multi = parse_qs(query, keep_blank_values=True)
        return {
            "resource": route.path, "path": path, "httpMethod": route.method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
            "multiValueQueryStringParameters": multi or None, "pathParameters": params or None,
            "stageVariables": None, "body": body, "isBase64Encoded": False,
            "requestContext": {"resourcePath": route.path, "httpMethod": route.method, "path": path, "stage": "local",
                               "requestId": str(uuid.uuid4()), "requestTimeEpoch": int(time.time() * 1000),
                               "identity": {"sourceIp": client}, "authorizer": authorizer},
        }


def make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "crimecast-local"
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway: every answer carries its Content-Length
        # TCP_NODELAY: an answer goes out as two writes (the head, then the body); with Nagle's
        # algorithm the body waited for the client's delayed ACK of the head, 40 ms on Linux,
        # on every answer of a kept-alive connection.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # The security headers on every answer (the page, its files, the API's), as CloudFront adds
            # them on AWS; an answer's own (Swagger UI's CSP, with its hashes) takes their place.
            merged = {name.lower(): (name, value) for name, value in {**SECURITY_HEADERS, **(headers or {})}.items()}
            for name, value in merged.values():
                if name.lower() not in ("content-length", "content-type"):
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc).encode())

        def _dispatch(self) -> None:
            arrived = time.monotonic()
            url = urlsplit(self.path)
            if not gateway.state.get("ready") and url.path.startswith("/health"):
                return self._json(503, {"status": "starting", "step": gateway.state.get("step")})
            found = gateway.match(self.command, url.path)
            if not found:
                if gateway.is_api_path(url.path):
                    if self.command == "OPTIONS" and gateway.cors:  # the CORS preflight SAM adds to each resource
                        return self._send(200, b"{}", headers=gateway.cors)
                    return self._json(403, MISSING_TOKEN)  # API Gateway: a method the resource does not have
                if self.command not in ("GET", "HEAD"):
                    return self._json(403, MISSING_TOKEN)  # nor any resource: API Gateway's answer again
                return self._static(url.path)
            if not gateway.state.get("ready"):
                return self._json(503, {"message": "the service is starting", "step": gateway.state.get("step")})
            route, params = found
            length = int(self.headers.get("Content-Length") or 0)
            if length > limits.API_GATEWAY_PAYLOAD_BYTES:
                self.close_connection = True  # the body is not read
                return self._json(413, {"message": "Request Too Long"})
            body = self.rfile.read(length).decode("utf-8", "replace") if length else None
            headers = {k: v for k, v in self.headers.items()}
            give_up_at = arrived + gateway.integration_timeout
            authorizer = None
            try:
                if not route.auth_none:
                    authorizer = gateway.authorize(self.headers.get("Authorization"), give_up_at)
                    if authorizer is None:
                        return self._json(401, {"message": "Unauthorized"})
                event = gateway.event(route, url.path, params, url.query, headers, body, authorizer, self.client_address[0])
                if body is not None and limits.json_bytes(event) > limits.LAMBDA_REQUEST_BYTES:
                    return self._json(413, {"message": "Request Entity Too Large"})  # Lambda's 6 MB for a request
                response = gateway.functions.invoke(route.codeuri, route.handler, event, gateway.timeouts.get(route.function),
                                                    give_up_at, name=workflow.function_name(route.function))
            except AuthorizerFailure as exc:
                say(f"{route.method} {route.path}: the authorizer failed: {exc}")
                return self._json(500, {"message": None})
            except IntegrationTimeout:
                say(f"{route.method} {route.path}: no answer within {gateway.integration_timeout:.0f} s")
                return self._json(504, {"message": "Endpoint request timed out"})
            except FunctionTimeout as exc:  # Lambda's error to API Gateway, which answers 502
                say(f"{route.method} {route.path}: {exc}")
                return self._json(502, {"message": "Internal server error"})
            except Exception as exc:  # what API Gateway answers when a Lambda crashes
                say(f"{route.method} {route.path} crashed: {type(exc).__name__}: {exc}")
                return self._json(502, {"message": "Internal server error"})
            if limits.json_bytes(response) > limits.LAMBDA_RESPONSE_BYTES:
                say(f"{route.method} {route.path}: the response is over Lambda's 6 MB")
                return self._json(502, {"message": "Internal server error"})
            answer_headers = {**(response.get("headers") or {}),
                              **{k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items() if v}}
            content_type = next((v for k, v in answer_headers.items() if k.lower() == "content-type"), "application/json")
            self._send(int(response.get("statusCode", 200)), str(response.get("body") or "").encode(), content_type,
                       answer_headers)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own errors (a malformed request line, a header too long) in JSON, not HTML."""
            self.close_connection = True
            try:
                self._json(code, {"message": message or HTTPStatus(code).phrase})
            except OSError:
                pass

        def __getattr__(self, name: str) -> Any:
            if name.startswith("do_"):  # every method, TRACE and made-up ones too, is API Gateway's to answer
                return self._dispatch
            raise AttributeError(name)

        def _static(self, path: str) -> None:
            if self.command not in ("GET", "HEAD"):
                return self._json(404, {"message": "Not Found"})
            relative = "index.html" if path in ("", "/") else path.lstrip("/")
            target = (WEB / relative).resolve()
            if not target.is_relative_to(WEB.resolve()) or not target.is_file():
                return self._json(404, {"message": "Not Found"})
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self._send(200, target.read_bytes(), content_type, {"Cache-Control": "no-cache"})


    return Handler


# --- start-up ---------------------------------------------------------------------------


def already_running(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/health")
        return connection.getresponse().getheader("Server", "").startswith("crimecast-local")
    except OSError:
        return False


def create_admin(password: str | None) -> str:
    from crimecast.adapters.stores import get_stores
    from crimecast.jobs import accounts

    generated = password is None
    password = password or secrets.token_urlsafe(12)
    accounts.add_user(get_stores(), ADMIN, password, role="admin")
    return password if generated else ""


def _portal_for_demo() -> tuple[str | None, str]:
    """The portal to ingest from, or None and why not: CRIMECAST_SOCRATA_URL if it answers,
    else the city's when it answers within 3 s and no snapshot was asked for (CRIMECAST_SNAPSHOT)."""
    from crimecast import settings
    from crimecast.adapters.socrata import SocrataClient

    explicit = settings.load(settings.PortalSettings).url
    if not explicit and os.environ.get("CRIMECAST_SNAPSHOT"):
        return None, "CRIMECAST_SNAPSHOT is set"
    client = SocrataClient(explicit or None)
    if client.probe(timeout=3.0):
        return client.base_url, ""
    return None, f"the portal at {client.base_url} did not answer within 3 s"


def start_replay_portal(as_of: str, port: int, areas: str | None, types: str | None, files: str | None = None) -> Any:
    """The portal stand-in replaying the city as of the end of ``as_of``, on a thread of this
    process, over ``files`` (os.pathsep-separated tidy counts files; default the area x type
    file in CRIMECAST_DATA_DIR); CRIMECAST_SOCRATA_URL points the functions at it. When the
    files hold totals only, the service forecasts only their series (CRIMECAST_FORECAST_SERIES):
    the area x type cells the stand-in made up to serve them are stored, never forecast."""
    from local.portal import StandInPortal, data_dir

    folder = data_dir()
    paths = [Path(p) for p in files.split(os.pathsep) if p.strip()] if files else [folder / AREA_TYPE_FILE]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"replay needs {path}: set CRIMECAST_DATA_DIR to the folder that holds {AREA_TYPE_FILE}, "
                                    "or CRIMECAST_REPLAY_DATA to the files to replay")
    area_list = [int(a) for a in areas.split(",") if a.strip()] if areas else None
    type_list = [t.strip() for t in types.split(",") if t.strip()] if types else None
    portal = StandInPortal("replay", folder, port, replay_from=as_of, areas=area_list, types=type_list,
                           replay_files=paths if files else None).start()
    os.environ["CRIMECAST_SOCRATA_URL"] = portal.url
    if portal.given_series is not None:
        os.environ["CRIMECAST_FORECAST_SERIES"] = ",".join(portal.given_series)
        say(f"replay: the files hold totals only; the portal serves them as a made-up area x type cross-tabulation "
            f"with their margins, and the service forecasts only their {len(portal.given_series)} series "
            "(CRIMECAST_FORECAST_SERIES)")
    cut = (f", areas {areas}" if areas else "") + (f", types {types}" if types else "")
    say(f"replay: the portal stand-in at {portal.url} shows the city as of the end of {as_of} "
        f"({', '.join(str(p) for p in paths)}{cut}); `python -m local.portal advance --url {portal.url}` publishes the next "
        "month, then POST /ingest brings it in")
    return portal


def snapshot_files(snapshot: Path) -> list[Path]:
    """The files of a snapshot the stack loads: every one of SNAPSHOT_FILES, the area x type ones it has."""
    files = [snapshot / name for name in SNAPSHOT_FILES]
    return files + [snapshot / name for name in (AREA_TYPE_FILE, *AREA_TYPE_RECENT_FILES) if (snapshot / name).is_file()]


def load_data(snapshot: Path, replay: bool = False) -> None:
    from crimecast.adapters.blobs import BOUNDARIES_KEY
    from crimecast.adapters.stores import get_stores
    from crimecast.domain.series import read_many
    from crimecast.jobs import counts, pipeline

    stores = get_stores()
    portal, why_not = _portal_for_demo()
    if portal:
        say(f"data: ingesting from the portal at {portal} (a backfill, through the ingest's own code path)")
        run = pipeline.ingest_now(stores, "local stack start", progress=lambda message: say(f"ingest: {message}"),
                                  mode="backfill", source_label=portal)
        if run["status"] == "succeeded":
            return
        why_not = f"the ingest from {portal} failed: {run['detail'].get('error')}"
    if replay:  # the snapshot is another city than the one replayed: no fallback
        raise RuntimeError(f"replay: {why_not}")
    say(f"data: loading the snapshot in {snapshot} ({why_not}; CRIMECAST_SOCRATA_URL points the stack at a portal)")
    counts.store_counts(stores, read_many(snapshot_files(snapshot)))
    if (snapshot / BOUNDARIES_FILE).is_file():
        stores.blobs.put_bytes(BOUNDARIES_KEY, (snapshot / BOUNDARIES_FILE).read_bytes(), "application/geo+json")


def train_everything(workers: int | None, state: dict[str, Any]) -> dict[str, Any]:
    """The retrain workflow's steps, with the batches spread over every core."""
    from crimecast.adapters.stores import get_stores
    from crimecast.domain.parallel import StderrProgress
    from crimecast.jobs import retrain

    progress = StderrProgress("training")

    def report(done: int, total: int) -> None:
        state["step"] = f"training {done}/{total} batches"
        progress(done, total)

    return retrain.run_locally(get_stores(), workers=workers, progress=report, trigger="local stack start")


def serve_models(workers: int | None, state: dict[str, Any], fresh: bool = False) -> None:
    """The models an earlier start trained on the same data and code, else a full training."""
    from crimecast.adapters.stores import get_stores
    from local import model_cache

    stores = get_stores()
    started = time.monotonic()
    key = model_cache.fingerprint(stores)
    version = None if fresh else model_cache.restore(stores, key)
    if version:
        say(f"reused model {version} trained at an earlier start on the same data and code "
            f"({time.monotonic() - started:.0f} s; --fresh or `make demo-fresh` trains anew)")
        return
    summary = train_everything(workers, state)
    say(f"trained {summary['series_trained']} series ({summary['series_skipped']} skipped, "
        f"{summary['series_failed']} failed) in {time.monotonic() - started:.0f} s; model {summary['version']}")
    if summary["promoted"]:
        model_cache.save(stores, key, summary["version"])


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


class Stopping(BaseException):
    """Raised in the main thread by SIGTERM (and SIGINT): whatever it is doing (starting up,
    training every series, serving) ends and the stack shuts down."""


_stop_requested = threading.Event()
STOP_POLL_S = 0.2  # how often the idle main thread wakes to run a pending signal handler


def install_stop_signals() -> None:
    """SIGTERM and SIGINT interrupt the main thread at once; a second one during the shut-down
    ends the process there and then (its workers first)."""
    stack_pid = os.getpid()

    def on_signal(signum: int, _frame: Any) -> None:
        if os.getpid() != stack_pid:  # a worker forked a moment ago, before it reset its handlers
            os._exit(128 + signum)
        if _stop_requested.is_set():
            say("stopping now")
            parallel.signal_all(parallel.descendants([stack_pid]), signal.SIGKILL)
            os._exit(128 + signum)
        _stop_requested.set()
        raise Stopping(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def shut_down(server: ThreadingHTTPServer | None, moto: Any, portal: Any, grace: float = 2.0) -> None:
    """Everything the stack started, whatever it was doing: the training workers of a start-up
    or of a retrain in a thread (SIGTERM, then SIGKILL), any other child (a Stan run of a fit
    in this process), the HTTP server, the embedded AWS and the portal stand-in."""
    parallel.stop_workers()
    below = parallel.descendants([os.getpid()])
    parallel.signal_all(below, signal.SIGTERM)
    if server is not None:  # serving: shutdown() waits for its loop to end
        server.shutdown()
        server.server_close()
    if moto is not None:
        moto.stop()
    if portal is not None:
        portal.stop()
    deadline = time.monotonic() + grace
    while (below := parallel.descendants([os.getpid()])) and time.monotonic() < deadline:
        time.sleep(0.05)
    parallel.signal_all(below, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("CRIMECAST_PORT", 3000)))
    parser.add_argument("--snapshot", type=Path,
                        default=Path(os.environ.get("CRIMECAST_SNAPSHOT", REPO.parent / "shared" / "data")))
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--fresh", action="store_true", help="train every series even when an earlier start's models fit")
    parser.add_argument("--as-of", metavar="YYYY-MM", default=os.environ.get("CRIMECAST_AS_OF") or None,
                        help="replay the city from the end of this month (CRIMECAST_AS_OF; 2001-01..2018-10)")
    parser.add_argument("--replay-port", type=int, default=int(os.environ.get("CRIMECAST_REPLAY_PORT", 8089)))
    parser.add_argument("--replay-areas", default=os.environ.get("CRIMECAST_REPLAY_AREAS"), help="e.g. 8,25,32")
    parser.add_argument("--replay-types", default=os.environ.get("CRIMECAST_REPLAY_TYPES"), help="e.g. ASSAULT,THEFT")
    parser.add_argument("--replay-data", default=os.environ.get("CRIMECAST_REPLAY_DATA"),
                        help=f"tidy counts files to replay, separated by {os.pathsep!r} (default: {AREA_TYPE_FILE})")
    args = parser.parse_args(argv)
    if args.as_of and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.as_of):
        say(f"CRIMECAST_AS_OF must be YYYY-MM, not {args.as_of!r}")
        return 2
    if already_running(args.port):
        say(f"crimecast is already running at http://127.0.0.1:{args.port}/")
        return 1
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        os.environ.setdefault(name, "crimecast" if name.endswith("NAME") else "Crimecast")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("WEB_ORIGIN", f"http://127.0.0.1:{args.port}")
    # Metrics are off here (no CloudWatch): Powertools' "no application metrics" on every flush is noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
    state: dict[str, Any] = {"ready": False, "step": "starting the embedded AWS"}
    # Another template (a copy with a grant taken away, in a test): the code still runs from this checkout.
    template = load_template(os.environ.get("CRIMECAST_TEMPLATE") or TEMPLATE)
    try:
        gateway = Gateway.from_template(template, state)
        server = GatewayServer(("127.0.0.1", args.port), make_handler(gateway))
    except OSError as exc:
        say(f"port {args.port} is in use ({exc.strerror}); set CRIMECAST_PORT to another port")
        return 1
    portal = moto = None
    polling_stops = threading.Event()
    install_stop_signals()
    serving = threading.Thread(target=server.serve_forever, name="gateway", daemon=True)
    try:
        serving.start()  # answers 503 (/health: the step) until every series is served
        if args.as_of:
            try:
                portal = start_replay_portal(args.as_of, args.replay_port, args.replay_areas, args.replay_types,
                                             args.replay_data)
            except (OSError, ValueError) as exc:
                port_taken = isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
                say(f"replay: cannot start the portal stand-in: {exc}"
                    + (" (CRIMECAST_REPLAY_PORT picks another port)" if port_taken else ""))
                return 1
        moto = start_moto()
        say(f"embedded AWS at {os.environ['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL for the CLI: users, keys rotate)")
        if injected := faults.from_environment():
            say(f"fault injection ({faults.ENV}): {injected.shares} of the calls fail (seed {injected.seed})")
        provisioned = provision(template)
        os.environ.update(provisioned)
        # Their own container pool: an ingest worker does not hold up the API's handlers (they use no
        # API resolver, whose state the API's share); a retrain's batches run in sandbox processes.
        invoked = lambda_service(template)
        concurrency = map_concurrency(template, args.workers)
        workflows = start_workflows(template, invoked, concurrency)
        os.environ.update(workflows)
        say(f"retrain: the Distributed Map trains up to {concurrency} batches at once, each in a worker process "
            f"({MAP_CONCURRENCY_PARAMETER} bounded by the cores)")
        secure(template, {**provisioned, **workflows}, gateway.functions)  # the grants name the real machine
        invoked.sessions = gateway.functions.sessions
        workflow.start_queue_pollers(template, polling_stops)  # the AsyncFailures event: with its role
        say("IAM enforced: each function's calls, and the state machine's, are signed with its own role's session, "
            "allowed what template.yaml grants it; the keys \"local\" (the CLI's) are an admin's")
        settings.reset()  # the functions read the environment the stack has just provisioned
        password = create_admin(os.environ.get("CRIMECAST_ADMIN_PASSWORD"))
        state["step"] = "loading data"
        load_data(args.snapshot, replay=portal is not None)
        state["step"] = "training"
        serve_models(args.workers, state, fresh=args.fresh)
        state.update(ready=True, step="ready")
        say(f"ready: http://127.0.0.1:{args.port}/  (user {ADMIN}"
            + (f", password {password} - printed once)" if password else ", password from CRIMECAST_ADMIN_PASSWORD)"))
        say("press Ctrl-C to stop")
        while True:  # until SIGINT or SIGTERM raises Stopping here
            # Short sleeps: the kernel may deliver the signal to another thread, and Python runs
            # its handler only when the main thread next wakes (a CI run waited out 10 s).
            time.sleep(STOP_POLL_S)
    except (KeyboardInterrupt, Stopping):
        pass
    finally:
        say("stopping")
        polling_stops.set()
        shut_down(server if serving.is_alive() else None, moto, portal)
    return 0

if __name__ == "__main__":
    sys.exit(main())
