"""Lambda and Step Functions on the embedded AWS, as the template defines them.

The template's functions are created in moto's Lambda service, and an Invoke of one of them
runs its real handler with the runner given (moto itself would start a Docker container; the
stack's runs it in this process, or in a sandbox process for a Distributed Map's items): a
``RequestResponse`` invoke answers with the handler's result, or with Lambda's error document
and ``X-Amz-Function-Error: Unhandled``; an ``Event`` invoke answers 202 and runs the handler
on a thread, as Lambda's asynchronous contract has it (``local.lambda_async``: retried, dropped
past its age, its invocation record sent to the OnFailure queue). The template's queues are
created, and its ``Type: SQS`` events read them as Lambda's event source mappings do
(``poll_queue_events``). The template's retrain state machine is created from its own definition (the
``DefinitionSubstitutions`` resolved) and run by moto's Step Functions interpreter, whose
Lambda tasks call those functions. The same code serves the local stack (moto's server in
this process) and the tests (``mock_aws``).

Where moto's interpreter (5.2) differs from Step Functions, this module makes it behave as
AWS does for this definition:

- moto's grammar refuses an integer ``ToleratedFailurePercentage`` (``5``): the definition
  given to it says ``5.0``, the same value;

- the Distributed Map's ``ResultWriter`` writes only an empty manifest in moto: here it
  writes the result files too (``SUCCEEDED_0.json``, ``FAILED_0.json``: one entry per child
  execution, its ``Output`` as JSON text), as Step Functions does;
- moto does not enforce ``ToleratedFailurePercentage`` / ``ToleratedFailureCount`` (a Map run
  succeeds whatever its children did): here a Map run with more failed children than
  tolerated fails with ``States.ExceedToleratedFailureThreshold`` (``MapRunFailed``, then the
  state's Catch); its results are then not written (Step Functions writes them).

Child executions of the Distributed Map do not appear in the execution's history (moto keeps
no separate child executions or Map Run history); their outcomes are in the result files.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
import io
import json
import logging
import threading
from typing import Any, Protocol
import zipfile

from local.template import (
    LAMBDA_ASYNC_DEFAULTS,
    AsyncInvokeConfig,
    async_invoke_config,
    default_stage,
    queue_events,
    queue_name,
    resources_of_type,
)
from local.template import function_name as template_function_name

logger = logging.getLogger(__name__)

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
ROLE_NAME = "crimecast-local-lambda"


class Runner(Protocol):
    """What runs a handler: ``local.stack.Functions``."""

    def invoke(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None = None,
               give_up_at: float | None = None, name: str | None = None) -> Any: ...

    def invoke_async(self, codeuri: str, handler: str, event: dict[str, Any], timeout: float | None = None,
                     on_failure: Any = None, name: str | None = None, config: AsyncInvokeConfig = LAMBDA_ASYNC_DEFAULTS,
                     function_arn: str | None = None) -> Any: ...

    def as_role(self, codeuri: str, handler: str) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    codeuri: str
    handler: str
    timeout: float
    async_config: AsyncInvokeConfig = LAMBDA_ASYNC_DEFAULTS


_registry: dict[str, tuple[LocalFunction, Runner]] = {}  # function name -> its code and what runs it
_installed = threading.Lock()
_patched = False
_queue_urls: dict[str, str] = {}  # logical id -> the URL of a queue the template defines, on the embedded AWS


_names: dict[str, str] = {}  # logical id -> the function's name on the embedded AWS


def registered(logical_id: str) -> tuple[LocalFunction, Runner]:
    """A registered function of the template: its code and settings, and what runs it."""
    return _registry[function_name(logical_id)]


def function_name(logical_id: str) -> str:
    """The name a registered template function has on the embedded AWS: the name it would
    have deployed (``local.template.function_name``), so that its grants name it."""
    return _names.get(logical_id, logical_id)


# --- Lambda: invoke runs the handler here -----------------------------------------------------


def _header(headers: Any, name: str, default: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return default


def _error_document(exc: BaseException) -> dict[str, Any]:
    from local.stack import FunctionTimeout, SandboxError

    if isinstance(exc, FunctionTimeout):
        return {"errorType": "Sandbox.Timedout", "errorMessage": str(exc)}
    if isinstance(exc, SandboxError):  # the handler's exception, raised in its worker process
        return {"errorType": exc.error_type, "errorMessage": str(exc)}
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def _send_to_queue(logical_id: str) -> Callable[[dict[str, Any]], None]:
    """An OnFailure destination: the invocation record, a message on the template's queue, sent
    with the credentials in use (the function's role); a refusal is logged as Lambda counts it
    (DestinationDeliveryFailures), the record then lost."""

    def send(record: dict[str, Any]) -> None:
        from crimecast.adapters import aws

        try:
            aws.client("sqs").send_message(QueueUrl=_queue_urls[logical_id], MessageBody=json.dumps(record))
            _queue_sent.set()
        except Exception:
            logger.exception("DestinationDeliveryFailures: the invocation record of %s was not sent to %s",
                             record["requestContext"]["functionArn"], logical_id)

    return send


def _patch_lambda() -> None:
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> Any:
        registered = _registry.get(self.function_name)
        if registered is None:
            return original(self, body, request_headers, response_headers)
        spec, runner = registered
        event = json.loads(body) if body else {}
        if _header(request_headers, "x-amz-invocation-type", "RequestResponse") == "Event":
            destination = spec.async_config.on_failure
            runner.invoke_async(spec.codeuri, spec.handler, event, spec.timeout,
                                on_failure=_send_to_queue(destination) if destination else None,
                                name=self.function_name, config=spec.async_config, function_arn=self.function_arn)
            return b""
        try:
            result = runner.invoke(spec.codeuri, spec.handler, event, spec.timeout, name=self.function_name)
        except Exception as exc:  # noqa: BLE001 - Lambda's answer for a function error
            from local.stack import error_document

            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error_document(exc)).encode()
        return json.dumps(result).encode()

    LambdaFunction.invoke = invoke


# --- Step Functions: what moto's interpreter lacks ---------------------------------------------


def _patch_result_writer() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    def put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        outputs = env.stack.pop()  # the children's outputs, None for a child that failed
        # the module's client factory, read at each call: IAM signs it with the machine's role (local/iam.py)
        s3 = resource_eval_s3.boto_client_for(service="s3", region=resource_runtime_part.region,
                                              state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        run_arn = record.map_run_arn
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        folder = f"{prefix}{run_arn.split(':')[-1]}/"
        execution = run_arn.replace(":mapRun:", ":execution:")
        entries: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": []}
        for index, output in enumerate(outputs or []):
            entry = {"ExecutionArn": f"{execution}:{index}", "Name": str(index), "StateMachineArn": record.map_state_machine_arn}
            if output is None:
                entries["FAILED"].append({**entry, "Status": "FAILED", "Error": "States.TaskFailed",
                                          "Cause": "the child execution failed"})
            else:
                entries["SUCCEEDED"].append({**entry, "Status": "SUCCEEDED", "Output": json.dumps(output),
                                             "OutputDetails": {"Included": True}})
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        for status, chunk in entries.items():
            if chunk:
                key = f"{folder}{status}_0.json"
                data = json.dumps(chunk).encode()
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=data)
                files[status].append({"Key": key, "Size": len(data)})
        manifest = f"{folder}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=manifest, Body=json.dumps(
            {"DestinationBucket": parameters["Bucket"], "MapRunArn": run_arn, "ResultFiles": files}).encode())
        env.stack.append({"MapRunArn": run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": manifest}})

    resource_eval_s3.ResourceEvalS3._handle_put_object = staticmethod(put_object)


def _patch_tolerance() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )

    original = distributed.DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        items = record.item_counter
        _check_tolerance(env, record, items.total.get(), items.failed.get() + items.timed_out.get())

    distributed.DistributedIterationComponent._map_run = map_run
    # moto warns, on each definition it parses, that it ignores the tolerance: here it does not.
    logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").addFilter(
        lambda record: "declarations currently have no effect" not in record.getMessage())


def _check_tolerance(env: Any, record: Any, total: int, failed: int) -> None:
    """States.ExceedToleratedFailureThreshold when more children failed than the Map tolerates."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    if not failed:
        return
    percentage = float(record.tolerated_failure_percentage or 0)
    count = int(record.tolerated_failure_count or 0)
    if failed <= count or 100.0 * failed / max(total, 1) <= percentage:
        return
    kind = StatesErrorNameType.StatesExceedToleratedFailureThreshold
    cause = (f"The specified tolerated failure threshold was exceeded: {failed} of {total} child executions failed "
             f"(tolerated: {percentage:g}% or {count})")
    raise FailureEventException(failure_event=FailureEvent(
        env=env, error_name=StatesErrorName(typ=kind), event_type=HistoryEventType.MapRunFailed,
        event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(error=kind.to_name(), cause=cause))))


def set_retry_time_scale(scale: float) -> None:
    """Scale the waits of the state machine's Retry (tests: 0.01 makes 2 s 20 ms); 1 is AWS's."""
    import time as real_time
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    retrier_decl.time = SimpleNamespace(sleep=lambda seconds: real_time.sleep(seconds * scale))


def install() -> None:
    """Patch moto once per process (Lambda's invoke, the Map's ResultWriter and tolerance)."""
    global _patched
    with _installed:
        if not _patched:
            _patch_lambda()
            _patch_result_writer()
            _patch_tolerance()
            _patched = True


# --- the template's functions and state machine ----------------------------------------------


def _property(template: dict[str, Any], properties: dict[str, Any], name: str, default: Any = None) -> Any:
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name, default)


def local_functions(template: dict[str, Any]) -> dict[str, LocalFunction]:
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != SERVERLESS_FUNCTION:
            continue
        properties = resource.get("Properties", {})
        found[logical_id] = LocalFunction(logical_id, str(_property(template, properties, "CodeUri")),
                                          str(_property(template, properties, "Handler")),
                                          float(_property(template, properties, "Timeout", 3)),
                                          async_invoke_config(template, logical_id))
    return found


def create_queues(template: dict[str, Any]) -> dict[str, str]:
    """The template's SQS queues on the embedded AWS, named as deployed (``local.template.queue_name``);
    per logical id, its URL (what its ``Ref`` gives)."""
    import boto3

    sqs = boto3.client("sqs")
    for logical_id in resources_of_type(template, "AWS::SQS::Queue"):
        _queue_urls[logical_id] = sqs.create_queue(QueueName=queue_name(template, logical_id))["QueueUrl"]
    return dict(_queue_urls)


def register_functions(template: dict[str, Any], runner: Runner) -> dict[str, str]:
    """Create the template's queues and every function of it on the embedded AWS, run by ``runner``
    (an asynchronous invocation as the function's EventInvokeConfig says); their ARNs."""
    import boto3

    install()
    create_queues(template)
    iam = boto3.client("iam")
    try:
        role = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("README.txt", "run in-process by local/workflow.py")
    client = boto3.client("lambda")
    arns = {}
    for logical_id, spec in local_functions(template).items():
        name = _names[logical_id] = template_function_name(template, logical_id)
        module = spec.handler.rsplit(".", 1)[0]
        arns[logical_id] = client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler=spec.handler, Timeout=int(spec.timeout),
            Code={"ZipFile": code.getvalue()}, Description=f"{spec.codeuri}{module}.py")["FunctionArn"]
        _registry[name] = (spec, runner)
    return arns


def unregister_all() -> None:
    _registry.clear()
    _names.clear()
    _queue_urls.clear()


def queue_url(logical_id: str) -> str:
    """The URL of a queue of the template on the embedded AWS (``create_queues``)."""
    return _queue_urls[logical_id]


# --- Lambda's event source mappings for SQS: the template's ``Type: SQS`` events -----------------

QUEUE_POLL_S = 1.0  # how often the local stack's poller looks at the queues when nothing woke it
_queue_sent = threading.Event()  # set when a record is sent to a queue: the poller looks at once


def _sqs_event_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message as Lambda hands it to the function (an SQS event's ``Records`` entry)."""
    attributes = {name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                         "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType", "String")}
                  for name, value in (message.get("MessageAttributes") or {}).items()}
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes") or {}, "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3]}


def poll_queue_events(template: dict[str, Any]) -> int:
    """One pass of Lambda's event source mappings over the template's queues: each function with
    a ``Type: SQS`` event gets the messages waiting (a batch at a time, with its role, as Lambda
    reads them with the execution role); the messages it handled are deleted, those it reported
    failed (``batchItemFailures``) or all of a batch it failed on come back later. The number of
    messages handled."""
    from crimecast.adapters import aws

    handled = 0
    for event in queue_events(template):
        spec, runner = registered(event.function)
        url = _queue_urls[event.queue]
        with runner.as_role(spec.codeuri, spec.handler):
            sqs = aws.client("sqs")
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(event.batch_size, 10),
                                                  AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages"):
                batch = {"Records": [_sqs_event_record(m, arn) for m in messages]}
                try:
                    answer = runner.invoke(spec.codeuri, spec.handler, batch, spec.timeout, name=function_name(event.function))
                except Exception:
                    logger.exception("%s failed on a batch of %s: it comes back after the visibility timeout",
                                     event.function, event.queue)
                    break
                failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    sqs.delete_message_batch(QueueUrl=url, Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)])
                handled += len(done)
                if failed:
                    break
    return handled


def start_queue_pollers(template: dict[str, Any], stop: threading.Event) -> threading.Thread | None:
    """The template's SQS event source mappings on a thread of the local stack, until ``stop``."""
    if not queue_events(template):
        return None

    def run() -> None:
        while not stop.is_set():
            try:
                poll_queue_events(template)
            except Exception:  # the embedded AWS going away at shut-down, or a refusal (logged)
                if stop.is_set():
                    return
                logger.exception("polling the template's queues failed")
            _queue_sent.wait(QUEUE_POLL_S)
            _queue_sent.clear()

    thread = threading.Thread(target=run, name="sqs-event-sources", daemon=True)
    thread.start()
    return thread


def _resolve(value: Any, template: dict[str, Any], arns: dict[str, str], env: dict[str, str],
             parameters: dict[str, str] | None = None) -> str:
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
        return arns[value["Fn::GetAtt"][0]]
    if "Ref" in value:
        name = value["Ref"]
        if name in (parameters or {}):
            return str(parameters[name])  # type: ignore[index]
        if name in template.get("Parameters", {}):
            return str(template["Parameters"][name]["Default"])
        if name == "DataBucket":
            return env["DATA_BUCKET"]
    raise ValueError(f"cannot resolve {value!r} locally")


def _percentages_as_floats(node: Any) -> Any:
    """moto's ASL grammar takes ``ToleratedFailurePercentage`` only as a decimal number (5.0, not
    5: "no viable alternative"); the same value to Step Functions."""
    if isinstance(node, dict):
        return {k: float(v) if k == "ToleratedFailurePercentage" and isinstance(v, int) else _percentages_as_floats(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_percentages_as_floats(v) for v in node]
    return node


def definition(template: dict[str, Any], logical_id: str, arns: dict[str, str], env: dict[str, str],
               parameters: dict[str, str] | None = None) -> str:
    """The state machine's definition as CloudFormation hands it to Step Functions, the template's
    parameters at their defaults unless ``parameters`` gives them (as a deploy's overrides)."""
    properties = template["Resources"][logical_id]["Properties"]
    text = json.dumps(_percentages_as_floats(properties["Definition"]))
    for name, value in (properties.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + name + "}", _resolve(value, template, arns, env, parameters))
    return text


def create_state_machine(template: dict[str, Any], arns: dict[str, str], env: dict[str, str],
                         logical_id: str = "RetrainStateMachine", name: str | None = None,
                         parameters: dict[str, str] | None = None) -> str:
    """The template's state machine on the embedded AWS (execution must be on, see ``enable_execution``),
    named as the template names it at its default stage unless ``name`` is given; ``parameters``:
    the template's parameters it is deployed with (the defaults otherwise)."""
    import boto3

    name = name or str(template["Resources"][logical_id]["Properties"]["Name"]["Fn::Sub"]).replace(
        "${Stage}", default_stage(template))
    role = boto3.client("iam").get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    machine = boto3.client("stepfunctions").create_state_machine(
        name=name, roleArn=role, type="STANDARD",
        definition=definition(template, logical_id, arns, env, parameters))
    return str(machine["stateMachineArn"])


def enable_execution(endpoint: str) -> None:
    """moto's server runs state machines from now on (POST /moto-api/config); its interpreter's own
    AWS calls go to that server (MOTO_PORT)."""
    import os
    from urllib.parse import urlsplit
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/config", method="POST",
                                     data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310  # nosec B310  # the embedded moto server
        answer.read()
    os.environ["MOTO_PORT"] = str(urlsplit(endpoint).port)


# --- waiting for an execution ------------------------------------------------------------------


def wait_for_execution(arn: str, timeout: float = 120.0, poll: float = 0.1,
                       client_factory: Callable[[], Any] | None = None) -> dict[str, Any]:
    """DescribeExecution once the execution has ended (TimeoutError if it has not by then)."""
    import time

    import boto3

    client = (client_factory or (lambda: boto3.client("stepfunctions")))()
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still running after {timeout:.0f} s")
        time.sleep(poll)
