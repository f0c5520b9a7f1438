"""The whole service on one machine, without Docker: ``make demo``.

moto's server stands in for AWS (``local/aws/``). The bucket, tables, secret, queues,
functions and state machine are the ones ``template.yaml`` defines, read from it, each
function held to its IAM grants. A small HTTP server plays API Gateway (``local/gateway/``):
it routes each request by the template's ``Api`` events to the same handlers, through the
same authorizer, with API Gateway's proxy event shape, and serves the web UI at ``/``.

With ``CRIMECAST_AS_OF=YYYY-MM`` (``--as-of``) it replays the city from the end of that
month: it starts the portal stand-in (``local/portal/``) in replay mode over
``area_type_monthly_2001_2018.csv.gz`` in ``CRIMECAST_DATA_DIR``, on ``CRIMECAST_REPLAY_PORT``
(default 8089), optionally cut to ``CRIMECAST_REPLAY_AREAS`` / ``CRIMECAST_REPLAY_TYPES``
(comma-separated), or over other tidy files (``CRIMECAST_REPLAY_DATA``); backfills from it
through the normal ingest path, trains and serves.
``python -m local.portal advance`` publishes the next month; ``POST /ingest`` brings it in.
"""

from __future__ import annotations

import argparse
import http.client
import os
from pathlib import Path
import re
import secrets
import signal
import sys
import threading
import time
from typing import Any
import warnings

from crimecast import settings
from crimecast.adapters import aws
from crimecast.domain import parallel
from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES
from local.aws import faults, iam, iam_calls, lambda_service
from local.aws.embedded import provision, start_moto
from local.aws.enforcement import enforce_from_now
from local.aws.lambda_runtime import (
    ACCOUNT_CONCURRENCY_ENV,
    Concurrency,
    Functions,
    ReservationRefused,
    account_concurrency,
)
from local.aws.template import (
    SQS_QUEUE,
    entry_points,
    event_source_refusals,
    load_template,
    parameter_value,
    queue_attributes,
    reserved_concurrency,
    resources_of_type,
)
from local.console import say
from local.gateway.api import Gateway
from local.gateway.server import GatewayServer, make_handler
from local.workflow import machine

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "template.yaml"
ADMIN = "admin"
# Area totals and citywide types to 2026, and every area x type to 2018-10 and in 2024 when
# the snapshot has them (each series keeps the span of its own files; the first file that gives
# a series outright wins; the area x type files are joined, the months between them unknown).
SNAPSHOT_FILES = ("area_monthly_all_types_2001_2026.csv", "citywide_monthly_by_type_2001_2026.csv")
# The template's parameter that sets its Distributed Map's MaxConcurrency (and the train function's
# reserved concurrency); the local stack deploys it bounded by the cores.
MAP_CONCURRENCY_PARAMETER = "RetrainMaxConcurrency"


def map_concurrency(template: dict[str, Any], workers: int | None) -> int:
    """The retrain Map's MaxConcurrency here: the template's, bounded by the cores (``workers``)."""
    default = int(parameter_value(template, MAP_CONCURRENCY_PARAMETER))
    return max(1, min(default, workers or parallel.default_workers()))


def invoked_functions(template: dict[str, Any]) -> Functions:
    """What runs the functions the embedded Lambda service is asked to invoke (the state machine's
    steps, the schedules' and the ingest's asynchronous invocations, the queues' event sources):
    every one in sandbox processes, as Lambda runs each invocation in an environment of its own,
    apart from the API's (in this process, the retrain plan's CPU work held the gateway's thread
    for seconds, and so could the ingest worker's live evaluation)."""
    return Functions(sandboxed=set(entry_points(template).values()))


def start_workflows(template: dict[str, Any], functions: Functions, concurrency: int | None = None) -> dict[str, str]:
    """The template's queues and functions on the embedded Lambda service (each invoke runs its handler
    with ``functions``, an asynchronous one on a thread, retried and dropped as its EventInvokeConfig
    says) and its retrain state machine, run by moto's Step Functions interpreter, its Map's
    MaxConcurrency and the train function's reserved concurrency ``concurrency`` (the template's
    default otherwise); the environment that points the functions at it."""
    machine.enable_execution(os.environ["AWS_ENDPOINT_URL"])
    parameters = {MAP_CONCURRENCY_PARAMETER: str(concurrency)} if concurrency else None
    arns = lambda_service.register_functions(template, functions, parameters)
    return {"RETRAIN_STATE_MACHINE_ARN": machine.create_state_machine(template, arns, dict(os.environ),
                                                                      parameters=parameters)}


def secure(template: dict[str, Any], env: dict[str, str], functions: Functions) -> None:
    """IAM as the template grants it: a role per function (its policies from the SAM translator),
    each invocation signed with its function's session; the process's own keys ("local": the
    set-up, start-up training, the CLI) an admin user's; then moto's enforcement on."""
    import boto3

    physical = iam.physical_names(template, env)
    policies = iam.function_policies(template, physical)
    iam_client, sts = boto3.client("iam"), boto3.client("sts")
    sessions = iam.create_roles(iam_client, sts, policies)
    if template == load_template(TEMPLATE):  # the role coverage check holds the calls against template.yaml
        iam_calls.register({iam.role_name("crimecast-local", name): name for name in policies}, template, physical)
    iam.create_admin(iam_client, aws.Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    run_as_roles(template, sessions, functions)
    enforce_from_now()


def run_as_roles(template: dict[str, Any], sessions: dict[str, aws.Credentials], functions: Functions) -> None:
    """Each function's invocations signed with its role's session (``sessions``, per logical id),
    the state machine interpreter's calls with the machine's."""
    functions.sessions = {entry: sessions[name] for name, entry in entry_points(template).items() if name in sessions}
    machines = [name for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::StateMachine"]
    if len(machines) != 1:  # the interpreter's clients carry one role: one machine, as the template has
        raise ValueError(f"the local stack runs one state machine, the template has {len(machines)}")
    iam.sign_workflow_calls(sessions[machines[0]])


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
    from local.portal.cli import area_list
    from local.portal.rows import data_dir
    from local.portal.server import StandInPortal
    from local.portal.soql import comma_separated

    folder = data_dir()
    paths = [Path(p) for p in files.split(os.pathsep) if p.strip()] if files else [folder / AREA_TYPE_FILE]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"replay needs {path}: set CRIMECAST_DATA_DIR to the folder that holds {AREA_TYPE_FILE}, "
                                    "or CRIMECAST_REPLAY_DATA to the files to replay")
    portal = StandInPortal("replay", folder, port, replay_from=as_of, areas=area_list(areas) if areas else None,
                           types=comma_separated(types) if types else None, replay_files=paths if files else None).start()
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
    from local.portal.rows import BOUNDARIES_FILE

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


def shut_down(server: GatewayServer | None, moto: Any, portal: Any, grace: float = 2.0) -> None:
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    return parser.parse_args(argv)


def set_function_environment(port: int) -> None:
    """What the functions read from their environment on AWS, as the template sets it; no metrics here."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "crimecast")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Crimecast")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("WEB_ORIGIN", f"http://127.0.0.1:{port}")
    # Metrics are off here (no CloudWatch): Powertools' "no application metrics" on every flush is noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def check_deployable(template: dict[str, Any]) -> None:
    """CannotStart where CloudFormation would fail the deploy (said on the console): an SQS event
    source whose queue's visibility timeout is shorter than its function's timeout, or reservations,
    at the template's parameters' defaults as `sam deploy` makes them (here the train function's is
    then bounded by the cores), that the account's quota cannot give."""
    try:
        for queue in resources_of_type(template, SQS_QUEUE):
            queue_attributes(template, queue)
        refusals = event_source_refusals(template)
    except ValueError as exc:  # a template the local stack cannot run as written
        say(f"template: {exc}")
        raise CannotStart(str(exc)) from exc
    if refusals:
        for refusal in refusals:
            say(f"lambda: {refusal} (CreateEventSourceMapping refuses it: `sam deploy` would fail)")
        raise CannotStart(refusals[0])
    account = Concurrency(account_concurrency())
    for logical_id in entry_points(template):
        try:
            account.reserve(logical_id, reserved_concurrency(template, logical_id))
        except ReservationRefused as refused:
            say(f"lambda: {logical_id}: {refused} The account's quota here is {account.account_limit} concurrent "
                f"executions ({ACCOUNT_CONCURRENCY_ENV}): `sam deploy` would fail the same way on such an account "
                "(docs/operating-on-aws.md).")
            raise CannotStart(str(refused)) from refused


def start_embedded_aws(template: dict[str, Any], gateway: Gateway, workers: int | None, polling_stops: threading.Event) -> Any:
    """moto with the template's resources, functions, queues and state machine, IAM enforced; moto's server."""
    check_deployable(template)
    moto = start_moto()
    say(f"embedded AWS at {os.environ['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL for the CLI: users, keys rotate)")
    if injected := faults.from_environment():
        say(f"fault injection ({faults.ENV}): {injected.shares} of the calls fail (seed {injected.seed})")
    provisioned = provision(template)
    os.environ.update(provisioned)
    # Every invocation through the embedded Lambda service runs in a sandbox process of its function,
    # apart from the API's handlers (the gateway's own, in this process).
    invoked = invoked_functions(template)
    concurrency = map_concurrency(template, workers)
    workflows = start_workflows(template, invoked, concurrency)
    gateway.functions.concurrency = invoked.concurrency  # POST /ingest and the schedule's share the ingest's 5
    os.environ.update(workflows)
    say(f"retrain: the Distributed Map trains up to {concurrency} batches at once, each in a worker process "
        f"({MAP_CONCURRENCY_PARAMETER} bounded by the cores)")
    secure(template, {**provisioned, **workflows}, gateway.functions)  # the grants name the real machine
    invoked.sessions = gateway.functions.sessions
    lambda_service.start_queue_pollers(template, polling_stops)  # the AsyncFailures event: with its role
    say("IAM enforced: each function's calls, and the state machine's, are signed with its own role's session, "
        "allowed what template.yaml grants it; the keys \"local\" (the CLI's) are an admin's")
    settings.reset()  # the functions read the environment the stack has just provisioned
    return moto


def serve_the_city(args: argparse.Namespace, state: dict[str, Any], replay: bool) -> None:
    """The admin, the data and the models; then the gateway answers every route."""
    password = create_admin(os.environ.get("CRIMECAST_ADMIN_PASSWORD"))
    state["step"] = "loading data"
    load_data(args.snapshot, replay=replay)
    state["step"] = "training"
    serve_models(args.workers, state, fresh=args.fresh)
    state.update(ready=True, step="ready")
    say(f"ready: http://127.0.0.1:{args.port}/  (user {ADMIN}"
        + (f", password {password} - printed once)" if password else ", password from CRIMECAST_ADMIN_PASSWORD)"))
    say("press Ctrl-C to stop")


class CannotStart(Exception):
    """A part of the stack cannot start (said on the console): the stack exits with status 1."""


def replay_portal(args: argparse.Namespace) -> Any:
    """The portal stand-in when replaying (``--as-of``), else None."""
    if not args.as_of:
        return None
    try:
        return start_replay_portal(args.as_of, args.replay_port, args.replay_areas, args.replay_types, args.replay_data)
    except (OSError, ValueError) as exc:
        port_taken = isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)
        say(f"replay: cannot start the portal stand-in: {exc}" + (" (CRIMECAST_REPLAY_PORT picks another port)" if port_taken else ""))
        raise CannotStart(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.as_of and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.as_of):
        say(f"CRIMECAST_AS_OF must be YYYY-MM, not {args.as_of!r}")
        return 2
    try:
        account_concurrency()
    except ValueError as exc:
        say(str(exc))
        return 2
    if already_running(args.port):
        say(f"crimecast is already running at http://127.0.0.1:{args.port}/")
        return 1
    set_function_environment(args.port)
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
        portal = replay_portal(args)
        moto = start_embedded_aws(template, gateway, args.workers, polling_stops)
        serve_the_city(args, state, replay=portal is not None)
        while True:  # until SIGINT or SIGTERM raises Stopping here
            # Short sleeps: the kernel may deliver the signal to another thread, and Python runs
            # its handler only when the main thread next wakes (a CI run waited out 10 s).
            time.sleep(STOP_POLL_S)
    except CannotStart:
        return 1
    except (KeyboardInterrupt, Stopping):
        pass
    finally:
        say("stopping")
        polling_stops.set()
        shut_down(server if serving.is_alive() else None, moto, portal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
