"""Handlers under moto: the bucket, tables and state machine come from template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import importlib.util
import json
import os
from pathlib import Path
import sys
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
import pytest

from crimecast import settings
from crimecast.adapters.aws import Credentials, reset_clients, use_credentials
from crimecast.adapters.launcher import AwsLauncher
from crimecast.adapters.stores import get_stores, use_stores
from local.aws import lambda_service
from local.aws.lambda_runtime import Functions
from local.aws.template import dynamodb_table_specs, entry_points, function_name, load_template
from local.workflow.interpreter import set_retry_time_scale
from local.workflow.machine import create_state_machine, wait_for_execution
from tests.conftest import REPO

EVENTS = REPO / "events"
TABLE_ENV = {"SeriesTable": "SERIES_TABLE", "RunsTable": "RUNS_TABLE", "UsersTable": "USERS_TABLE",
             "LoginAttemptsTable": "LOGIN_ATTEMPTS_TABLE",
             "IdempotencyTable": "IDEMPOTENCY_TABLE"}
# moto runs no Lambda code without Docker: asynchronous invocations (the ingest worker) are
# recorded here instead, and a test runs one by calling the handler with its payload.
ASYNC_INVOCATIONS: list[dict[str, Any]] = []


class RecordingLauncher(AwsLauncher):
    """Records asynchronous Lambda invocations (moto cannot run them); starts Step Functions
    executions on moto as AWS would."""

    def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None:
        ASYNC_INVOCATIONS.append({"function": function_name, "payload": payload})


@dataclass
class FakeContext:
    function_name: str = "crimecast-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:crimecast-test"
    aws_request_id: str = "test-request"


def load_function(name: str, module: str = "app") -> ModuleType:
    """functions/<name>/<module>.py under a unique module name (every function has an app.py)."""
    spec = importlib.util.spec_from_file_location(f"functions_{name}_{module}", REPO / "functions" / name / f"{module}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as Lambda's import would; pydantic resolves models through it
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    return load_function(function).lambda_handler(event, FakeContext())


def body(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def write_map_results(stores: Any, outputs: list[Any], failed: list[Any] = (), prefix: str = "runs/map-results",
                      per_file: int = 1000) -> dict[str, str]:
    """What a Distributed Map's ResultWriter leaves in S3 for these child outputs (and failed
    children's inputs), and the ``ResultWriterDetails`` the Map returns: a manifest naming
    result files of executions, each with its ``Input`` and ``Output`` as JSON text."""
    run = f"{prefix}/0c5e7b1a-map-run"
    arn = "arn:aws:states:us-east-1:123456789012:execution:crimecast-retrain-dev/TrainBatches:"

    def execution(n: int, status: str, doc: Any) -> dict[str, Any]:
        entry = {"ExecutionArn": f"{arn}{n}", "Name": str(n), "Status": status, "StartDate": "2030-01-01T00:00:00Z",
                 "StopDate": "2030-01-01T00:05:00Z", "StateMachineArn": arn.split(":execution:")[0], "RedriveCount": 0,
                 "Input": json.dumps(doc if status == "FAILED" else {}), "InputDetails": {"Included": True}}
        if status == "SUCCEEDED":
            entry |= {"Output": json.dumps(doc), "OutputDetails": {"Included": True}}
        else:
            entry |= {"Error": "States.TaskFailed", "Cause": "Lambda timed out"}
        return entry

    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, docs in (("SUCCEEDED", list(outputs)), ("FAILED", list(failed))):
        for part, start in enumerate(range(0, len(docs), per_file)):
            key = f"{run}/{status}_{part}.json"
            chunk = [execution(start + n, status, doc) for n, doc in enumerate(docs[start:start + per_file])]
            stores.blobs.put_json(key, chunk)
            files[status].append({"Key": key, "Size": len(json.dumps(chunk))})
    manifest_key = f"{run}/manifest.json"
    stores.blobs.put_json(manifest_key, {"DestinationBucket": stores.blobs.bucket, "MapRunArn": f"{arn}map",
                                         "ResultFiles": files})
    return {"Bucket": stores.blobs.bucket, "Key": manifest_key}


@pytest.fixture
def functions() -> Functions:
    """What runs the template's functions when moto's Lambda invokes them (each handler in this process)."""
    return Functions()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, functions: Functions):
    executing = request.node.get_closest_marker("workflow") is not None
    if executing:  # the Retry waits of the definition, a hundredth as long
        monkeypatch.setattr(retrier_decl, "time", retrier_decl.time)
        set_retry_time_scale(0.01)
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "crimecast", "POWERTOOLS_METRICS_NAMESPACE": "Crimecast",
        "DATA_BUCKET": "crimecast-test-data", "CRIMECAST_BCRYPT_ROUNDS": "4", "CRIMECAST_BCRYPT_MIN_ROUNDS": "4",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    ASYNC_INVOCATIONS.clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": executing}}):
        machine = provision(monkeypatch, functions)
        yield use_stores(get_stores().with_launcher(RecordingLauncher()))
        # No execution may outlive its test: it would call AWS after the mock is gone, or cache a
        # client for the next test.
        if executing:
            wait_for_executions(machine)
        lambda_service.unregister_all()
        reset_clients()
        settings.reset()
        use_stores(None)


def provision(monkeypatch: pytest.MonkeyPatch, functions: Functions | None = None) -> str:
    """The template's bucket, tables, secret, functions (run by ``functions``) and retrain state
    machine on moto, named as the template names them at its default stage (their grants name
    them); the machine's ARN. Executions are recorded (moto's default) or, in a test marked
    ``workflow``, run by moto's interpreter, whose Lambda tasks call the real handlers in this process."""
    reset_clients()
    settings.reset()
    use_stores(None)
    boto3.client("s3").create_bucket(Bucket="crimecast-test-data")
    dynamodb = boto3.client("dynamodb")
    template = load_template(REPO / "template.yaml")
    for logical_id, spec in dynamodb_table_specs(template).items():
        name = f"crimecast-test-{logical_id}"
        dynamodb.create_table(TableName=name, **spec)
        monkeypatch.setenv(TABLE_ENV[logical_id], name)
    secret = boto3.client("secretsmanager").create_secret(Name="crimecast-jwt", SecretString="k" * 64)
    monkeypatch.setenv("JWT_SECRET_ARN", secret["ARN"])
    arns = lambda_service.register_functions(template, functions or Functions())
    machine = create_state_machine(template, arns, {"DATA_BUCKET": "crimecast-test-data"})
    monkeypatch.setenv("RETRAIN_STATE_MACHINE_ARN", machine)
    settings.reset()
    return machine


def wait_for_executions(machine: str, timeout: float = 120) -> None:
    sfn = boto3.client("stepfunctions")
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        wait_for_execution(execution["executionArn"], timeout=timeout)


@dataclass
class Roles:
    """Each function's role on moto, as template.yaml grants it (the SAM translator's policies),
    with moto's IAM enforcement on: ``as_function`` signs the calls of a block with a function's
    session, ``invoke`` runs a function's handler so (its own role, as Lambda runs it)."""

    sessions: dict[str, Credentials]
    template: dict[str, Any]

    def as_function(self, function: str) -> Any:
        return use_credentials(self.sessions[function])

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """The handler run as Lambda runs it: its role's session, its deployed name in the context."""
        codeuri, handler = entry_points(self.template)[function]
        module, name = handler.rsplit(".", 1)
        loaded = load_function(Path(codeuri).name, module)
        deployed = function_name(self.template, function)
        context = FakeContext(function_name=deployed, invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{deployed}")
        with self.as_function(function):
            return getattr(loaded, name)(event, context)


@pytest.fixture
def iam_roles(aws):
    """``grant(template=None)``: roles for the template (a copy with a statement removed, say),
    each function's session, moto enforcing IAM from then on; the test's own calls (outside
    ``Roles.as_function``) are an admin's. The calls of the roles of template.yaml itself are
    recorded for the role coverage check (local/aws/iam_calls.py)."""
    from local.aws import enforcement, iam, iam_calls

    # The test's own keys (mock_aws puts its fake ones in the environment) are an admin's.
    iam.create_admin(boto3.client("iam"), Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]))
    env = {name: value for name, value in os.environ.items() if name.isupper()}
    made = [0]

    def grant(template: dict[str, Any] | None = None) -> Roles:
        recorded = template is None
        template = template if template is not None else load_template(REPO / "template.yaml")
        physical = iam.physical_names(template, env)
        policies = iam.function_policies(template, physical)
        made[0] += 1
        prefix = f"test{made[0]}"
        with enforcement.paused():
            sessions = iam.create_roles(boto3.client("iam"), boto3.client("sts"), policies, prefix=prefix)
        iam_calls.register({iam.role_name(prefix, name): name for name in policies}, template, physical, recorded)
        return Roles(sessions, template)

    with enforcement.enforce():
        yield grant


@pytest.fixture
def iam_workflow(iam_roles, functions: Functions) -> Iterator[Roles]:
    """A test marked ``workflow`` under IAM as the local stack runs it: each Lambda task's handler
    signed with its function's role, the state machine interpreter's calls with the machine's."""
    from local.aws import iam
    from local.stack import run_as_roles

    roles = iam_roles()
    run_as_roles(roles.template, roles.sessions, functions)
    try:
        yield roles
    finally:
        iam.sign_workflow_calls(None)
        functions.sessions = {}
