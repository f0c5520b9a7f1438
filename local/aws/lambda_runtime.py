"""What runs the functions' handlers, as Lambda runs them: warm containers, timeouts, sandboxes.

The gateway, the embedded Lambda service and the workflow all invoke handlers through
:class:`Functions`, and read its failures (:class:`FunctionTimeout`, :class:`SandboxError`)
as Lambda's error document (:func:`error_document`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
import ctypes
from dataclasses import dataclass, field
from functools import partial
import importlib.util
import os
from pathlib import Path
import sys
import threading
import time
from types import ModuleType
from typing import Any
import uuid

from crimecast.adapters import aws, limits
from crimecast.domain import parallel
from local.aws import embedded, lambda_async
from local.aws.template import LAMBDA_ASYNC_DEFAULTS, AsyncInvokeConfig
from local.console import say

REPO = Path(__file__).resolve().parents[2]
# An idle sandbox is reclaimed after this long (Lambda reclaims idle execution environments too):
# its process and what it loaded (a warm train sandbox keeps the whole city's counts) go.
SANDBOX_IDLE_S = 600.0
MAX_TIMEOUT_S = 900.0  # Lambda's largest function timeout


@dataclass
class LocalContext:
    """The parts of Lambda's context object that Powertools and the handlers read, with the
    time left before the function's timeout (a long job chains its next leg before it; an
    idempotency record in progress lapses with it)."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = field(default_factory=lambda: embedded.function_arn("local"))
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: float = MAX_TIMEOUT_S
    started: float = field(default_factory=time.monotonic)  # reset when the handler starts

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_s - time.monotonic()) * 1000))


def _context(codeuri: str, name: str | None, request_id: str | None = None, timeout: float | None = None) -> LocalContext:
    """``request_id``: an asynchronous event's, the same for each of its attempts (as Lambda's);
    ``timeout``: the function's (Lambda's largest when none is given)."""
    extra: dict[str, Any] = {"aws_request_id": request_id} if request_id else {}
    extra["timeout_s"] = MAX_TIMEOUT_S if timeout is None else timeout
    if name is None:
        return LocalContext(function_name=Path(codeuri).name, **extra)
    return LocalContext(function_name=name, invoked_function_arn=embedded.function_arn(name), **extra)


class FunctionTimeout(Exception):
    """A handler ran past its function's Timeout (Lambda ends the invocation: "Task timed out")."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Task timed out after {seconds:.2f} seconds")
        self.seconds = seconds


class FunctionStopped(BaseException):
    """Raised in a handler's thread at its function's timeout: Lambda ends the invocation there, so
    nothing the handler would have done afterwards happens (a BaseException: no ``except Exception``
    of the handler's keeps it going)."""


def stop_thread(thread_id: int) -> bool:
    """FunctionStopped raised in the thread ``thread_id`` at its next Python instruction (a blocking
    call it is in returns first); False if there is no such thread."""
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(FunctionStopped)) == 1


class IntegrationTimeout(Exception):
    """The caller stopped waiting (API Gateway's 29 s, or what was left of them)."""


class SandboxError(Exception):
    """The handler failed in its sandbox (a worker process): ``error_type`` is what Lambda's error
    document names (the handler's exception's type; ``Runtime.ExitError`` when the sandbox died)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def error_document(exc: BaseException) -> dict[str, str]:
    """Lambda's answer for a function error: the handler's exception (raised here or in its
    sandbox), or its timeout."""
    if isinstance(exc, FunctionTimeout):
        return {"errorType": "Sandbox.Timedout", "errorMessage": str(exc)}
    if isinstance(exc, SandboxError):
        return {"errorType": exc.error_type, "errorMessage": str(exc)}
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


ACCOUNT_CONCURRENCY_ENV = "CRIMECAST_ACCOUNT_CONCURRENCY"
ACCOUNT_CONCURRENCY = 1000  # Lambda's default concurrent executions per account and Region
MIN_UNRESERVED = 100  # what Lambda keeps for the functions that reserve none (all of a smaller quota)
_UNNAMED = ""  # an invocation with no function name (the in-process tests'): a function that reserves none


class ReservationRefused(ValueError):
    """Lambda's InvalidParameterValueException for a reservation the account cannot give."""


def account_concurrency() -> int:
    """The account's concurrency quota the local stack keeps: CRIMECAST_ACCOUNT_CONCURRENCY (a new
    account's may be 10 or 50, and then no function may reserve any), else Lambda's default."""
    value = os.environ.get(ACCOUNT_CONCURRENCY_ENV, "").strip() or str(ACCOUNT_CONCURRENCY)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ACCOUNT_CONCURRENCY_ENV} must be a whole number of executions, at least 1 (got {value!r})")
    return int(value)


class Concurrency:
    """Per function name, its ``ReservedConcurrentExecutions`` and its executions in use, as Lambda
    keeps them: an invocation takes one until its handler ends (not when its caller stops waiting),
    and is Throttled when none is free. The functions that reserve none share what the account's
    quota leaves (``account_limit`` less every reservation); a reservation that would leave them
    less than MIN_UNRESERVED (or, under a smaller quota, anything less than all of it) is refused."""

    def __init__(self, account_limit: int | None = None) -> None:
        self.account_limit = account_concurrency() if account_limit is None else account_limit
        self._reserved: dict[str, int] = {}
        self._in_use: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, name: str, executions: int) -> None:
        """ReservationRefused if reserving ``executions`` for the function would leave the functions
        that reserve none fewer than MIN_UNRESERVED (all of a smaller quota); nothing recorded."""
        with self._lock:
            self._check(name, executions)

    def _check(self, name: str, executions: int) -> None:
        minimum = min(MIN_UNRESERVED, self.account_limit)
        others = sum(reserved for other, reserved in self._reserved.items() if other != name)
        if self.account_limit - others - executions < minimum:
            raise ReservationRefused("Specified ReservedConcurrentExecutions for function decreases account's "
                                     f"UnreservedConcurrentExecution below its minimum value of [{minimum}].")

    def reserve(self, name: str, executions: int | None) -> None:
        """The function's reserved concurrency from now on (None: it reserves none), its executions
        running now counted in it; ReservationRefused (nothing changed) as ``check`` says."""
        with self._lock:
            if executions is None:
                self._reserved.pop(name, None)
            else:
                self._check(name, executions)
                self._reserved[name] = executions

    def in_use(self, name: str) -> int:
        """The function's executions running now (Lambda's ConcurrentExecutions metric)."""
        with self._lock:
            return self._in_use.get(name, 0)

    def take(self, name: str | None) -> Callable[[], None]:
        """One of the function's reserved executions, or of the unreserved pool if it reserves none,
        given back by calling the result (once: later calls do nothing); Throttled when all are in use."""
        key = name or _UNNAMED
        with self._lock:
            reserved = self._reserved.get(key)
            if reserved is None:
                limit = self.account_limit - sum(self._reserved.values())
                in_use = sum(count for function, count in self._in_use.items() if function not in self._reserved)
            else:
                limit, in_use = reserved, self._in_use.get(key, 0)
            if in_use >= limit:
                raise lambda_async.Throttled(name or "a function", limit, account=reserved is None)
            self._in_use[key] = self._in_use.get(key, 0) + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self._in_use[key] -= 1

        return give_back


class Functions:
    """Handler modules loaded once each, as warm Lambda containers keep them.

    Handlers run one at a time (Powertools' resolvers keep the current event in a class
    attribute shared by every function), each on a thread of its own so that a caller stops
    waiting at the function's timeout. A handler still running then is stopped (FunctionStopped,
    at its next Python instruction) and its container dropped, as Lambda ends the invocation: the
    next invocations do not wait for it. One that API Gateway stopped waiting for first runs on,
    as on AWS, until its own timeout stops it.

    The functions in ``sandboxed`` (the local stack's embedded Lambda service runs every function
    so: the retrain's plan, batches and promotion, the ingest worker and its live evaluation, the
    schedules' invocations) run instead in sandboxes, worker processes of their own, as many at
    once as they are invoked, up to the function's reserved concurrency (``concurrency``; the
    Map's MaxConcurrency bounds the batches too): a sandbox runs one
    invocation at a time and stays warm for the next (what it loaded stays loaded); it is ended
    when its invocation times out or it dies, after SANDBOX_IDLE_S without one, and with the
    stack (``parallel.stop_workers``). An invocation never waits for another's sandbox, so
    ``start_by`` is only missed when loading the handler outlasts it; ``give_up_at`` (the
    gateway's, whose handlers run in this process) is not theirs to use."""

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
        # Per function name, its reserved concurrency and its executions in use: shared by every
        # runner of the stack (the gateway's and the embedded Lambda service's count together).
        self.concurrency = Concurrency()

    def _call(self, codeuri: str, handler: str, event: dict[str, Any], context: LocalContext) -> Any:
        with self.as_role(codeuri, handler):
            return self.handler(codeuri, handler)(event, context)

    def as_role(self, codeuri: str, handler: str) -> AbstractContextManager[None]:
        """The calls of a block signed with the function's role session (what Lambda does with the
        execution role: the handler's calls, its OnFailure records, its event source mappings' reads)."""
        return aws.use_credentials(self.sessions.get((codeuri, handler)))

    @staticmethod
    def _module_key(codeuri: str, handler: str) -> str:
        return f"{(REPO / codeuri).name}_{handler.rsplit('.', 1)[0]}"

    def forget(self, codeuri: str, handler: str) -> None:
        """The handler's module loaded anew at its next invocation (a container Lambda ended)."""
        self._modules.pop(self._module_key(codeuri, handler), None)

    def handler(self, codeuri: str, handler: str) -> Any:
        folder = REPO / codeuri
        module_name, function_name = handler.rsplit(".", 1)
        key = self._module_key(codeuri, handler)
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
        with ``start_by`` (likewise): EventExpired if it cannot start by then (queued behind other
        invocations in this process; in a sandbox, still loading). ``name``: the function's name on
        the embedded AWS (its context's, which it may invoke); Throttled when all the function's
        reserved concurrency (``concurrency``) is in use."""
        release = self.concurrency.take(name)
        if (codeuri, handler) in self.sandboxed:
            try:
                return self._invoke_in_sandbox(codeuri, handler, event, timeout, name, start_by, request_id)
            finally:
                release()
        context = _context(codeuri, name, request_id, timeout)
        if timeout is None and give_up_at is None and start_by is None:
            try:
                with self._lock:
                    context.started = time.monotonic()
                    return self._call(codeuri, handler, event, context)
            finally:
                release()
        return self._invoke_with_limits(codeuri, handler, event, context, timeout, give_up_at, start_by, release)

    def _invoke_with_limits(self, codeuri: str, handler: str, event: dict[str, Any], context: LocalContext,
                            timeout: float | None, give_up_at: float | None, start_by: float | None,
                            release: Callable[[], None]) -> Any:
        """The handler run on a thread of its own, the caller waiting only until the first limit;
        a handler still running at its timeout is stopped, and its container (the lock) dropped.
        ``release`` gives its execution back when the handler ends, or when it never starts."""
        lock = self._lock
        started, finished = threading.Event(), threading.Event()
        ending, claiming = threading.Lock(), threading.Lock()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                with lock:
                    with claiming:  # it starts (loading the handler first), or its caller has given up
                        if box.get("abandoned"):
                            return
                        box["claimed"] = True
                    run_until_timeout()
            except FunctionStopped:  # it came as the handler returned: the caller has stopped waiting
                pass
            finally:
                if box.get("claimed"):
                    release()

        def run_until_timeout() -> None:
            with self.as_role(codeuri, handler):
                try:
                    target = self.handler(codeuri, handler)  # the init phase: not counted in the timeout, as Lambda's
                except BaseException as exc:  # noqa: BLE001 - its error is the invocation's
                    box["error"] = exc
                context.started = time.monotonic()
                started.set()
                if "error" in box:
                    finished.set()
                    return
                stopper = None if timeout is None else threading.Timer(timeout, stop_unless_finished, (threading.get_ident(),))
                if stopper:
                    stopper.daemon = True
                    stopper.start()
                try:
                    box["result"] = target(event, context)
                except FunctionStopped:
                    self.forget(codeuri, handler)  # its container is gone: the next invocation starts cold
                    box["error"] = FunctionTimeout(timeout or 0.0)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    box["error"] = exc
                finally:
                    with ending:
                        finished.set()
                    if stopper:
                        stopper.cancel()

        def stop_unless_finished(thread_id: int) -> None:
            with ending:  # not once the handler has returned: the exception would hit whatever its thread does next
                if not finished.is_set():
                    stop_thread(thread_id)

        threading.Thread(target=run, name=f"lambda-{context.function_name}", daemon=True).start()
        waits = [(at, error) for at, error in ((give_up_at, IntegrationTimeout()), (start_by, lambda_async.EventExpired()))
                 if at is not None]
        start_limit, not_started = min(waits, key=lambda w: w[0]) if waits else (None, None)
        if not started.wait(None if start_limit is None else max(0.0, start_limit - time.monotonic())):
            with claiming:
                if not box.get("claimed"):  # still queued behind another invocation: it never runs
                    box["abandoned"] = True
                    release()
                    raise not_started or IntegrationTimeout()
            if isinstance(not_started, IntegrationTimeout):  # API Gateway stops waiting; its init goes on
                raise not_started
            started.wait()  # an event that has begun its init runs (the init is not timed)
        ends = [(context.started + timeout, FunctionTimeout(timeout))] if timeout is not None else []
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
        if "result" not in box:  # stopped at its timeout as it ended
            raise FunctionTimeout(timeout or 0.0)
        return box["result"]

    def _invoke_in_sandbox(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None,
                           name: str | None, start_by: float | None = None, request_id: str | None = None) -> Any:
        """The handler's answer from a warm sandbox of its function, or a new one (forked once the
        handler is loaded here, so it starts warm); its calls signed with the function's session.
        EventExpired when it cannot start by ``start_by``; ``request_id``: its context's."""
        key = (codeuri, handler, name)
        with self._loading:
            self.handler(codeuri, handler)
            idle = [(s, released) for s, released in self._idle.get(key, []) if s.alive()]
            sandbox = idle.pop()[0] if idle else None
            self._idle[key] = idle
        if start_by is not None and time.monotonic() > start_by:
            if sandbox is not None:
                self._keep_warm(key, sandbox)
            raise lambda_async.EventExpired()
        if sandbox is None:
            sandbox = parallel.Worker(partial(self._run_in_sandbox, codeuri, handler, name), setup=aws.reset_clients)
        try:
            result = sandbox.call((event, timeout, request_id), timeout)
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

    def _run_in_sandbox(self, codeuri: str, handler: str, name: str | None,
                        invocation: tuple[dict[str, Any], float | None, str | None]) -> Any:
        event, timeout, request_id = invocation
        return self._call(codeuri, handler, event, _context(codeuri, name, request_id, timeout))

    def invoke_async(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None = None,
                     on_failure: Callable[[dict[str, Any]], None] | None = None, name: str | None = None,
                     config: AsyncInvokeConfig = LAMBDA_ASYNC_DEFAULTS,
                     function_arn: str | None = None) -> threading.Thread:
        """An asynchronous invocation (InvocationType Event): PayloadTooLargeError over 256 KB, as
        Lambda refuses it; else the event is run on a thread as Lambda runs it (``local.aws.lambda_async``:
        retried as ``config`` says, dropped past its age), and the invocation record of one that
        finally failed goes to ``on_failure``, called with the function's role (Lambda sends it to
        the OnFailure destination with the execution role)."""
        limits.check_async_payload(Path(codeuri).name, event)
        label = name or Path(codeuri).name
        arn = function_arn or embedded.function_arn(label)

        def attempt(start_by: float, request_id: str) -> None:
            try:
                self.invoke(codeuri, handler, event, timeout, name=name, start_by=start_by, request_id=request_id)
            except lambda_async.EventExpired:
                raise
            except lambda_async.Throttled as exc:
                say(f"async {label} throttled, back to the queue: {exc}")
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


