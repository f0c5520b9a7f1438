"""The template's functions and queues on the embedded Lambda and SQS.

The template's functions are created in moto's Lambda service, and an Invoke of one of them
runs its real handler with the :class:`~local.aws.lambda_runtime.Functions` given (moto itself
would start a Docker container; the stack's runs each invocation in a sandbox process of its function,
the tests' mostly in this process): a ``RequestResponse`` invoke answers with the handler's result, or
with Lambda's error document and ``X-Amz-Function-Error: Unhandled``; an ``Event`` invoke answers
202 and runs the handler on a thread, as Lambda's asynchronous contract has it
(``local.aws.lambda_async``: retried, dropped past its age, its invocation record sent to the
OnFailure queue). No more of a function's invocations run at once than its
``ReservedConcurrentExecutions``, nor of those that reserve none than the account's quota leaves
them: one more is answered 429 ``TooManyRequestsException``, or, an ``Event`` one, goes back to
Lambda's queue; a reservation the quota cannot give is refused (400). The template's queues are created, and its
``Type: SQS`` events read them as Lambda's event source mappings do (``poll_queue_events``). The same code serves the local stack
(moto's server in this process) and the tests (``mock_aws``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import io
import json
import logging
import threading
from typing import Any
import zipfile

from local.aws.embedded import patch_once
from local.aws.lambda_async import Throttled
from local.aws.lambda_runtime import Functions, ReservationRefused, error_document
from local.aws.template import (
    LAMBDA_ASYNC_DEFAULTS,
    SQS_QUEUE,
    AsyncInvokeConfig,
    async_invoke_config,
    entry_points,
    function_timeout,
    queue_attributes,
    queue_events,
    queue_name,
    reserved_concurrency,
    resources_of_type,
)
from local.aws.template import function_name as template_function_name
from local.http_headers import header

logger = logging.getLogger(__name__)

ROLE_NAME = "crimecast-local-lambda"


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    codeuri: str
    handler: str
    timeout: float
    async_config: AsyncInvokeConfig = LAMBDA_ASYNC_DEFAULTS
    reserved: int | None = None  # its ReservedConcurrentExecutions


_registry: dict[str, tuple[LocalFunction, Functions]] = {}  # function name -> its code and what runs it
_queue_urls: dict[str, str] = {}  # logical id -> the URL of a queue the template defines, on the embedded AWS
_names: dict[str, str] = {}  # logical id -> the function's name on the embedded AWS


def registered(logical_id: str) -> tuple[LocalFunction, Functions]:
    """A registered function of the template: its code and settings, and what runs it."""
    return _registry[function_name(logical_id)]


def function_name(logical_id: str) -> str:
    """The name a registered template function has on the embedded AWS: the name it would
    have deployed (``local.aws.template.function_name``), so that its grants name it."""
    return _names.get(logical_id, logical_id)


# --- Lambda: invoke runs the handler here -----------------------------------------------------


def _too_many_requests(throttled: Throttled) -> Exception:
    """Lambda's answer (429) to an invocation its function (or the account) has no concurrency left for."""
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("TooManyRequestsException", "Rate Exceeded.")
    error.code = 429
    error.description = json.dumps({"__type": "TooManyRequestsException", "Type": "User", "message": "Rate Exceeded.",
                                    "Reason": throttled.reason})
    return error


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
        if (header(request_headers, "x-amz-invocation-type") or "RequestResponse") == "Event":
            destination = spec.async_config.on_failure
            runner.invoke_async(spec.codeuri, spec.handler, event, spec.timeout,
                                on_failure=_send_to_queue(destination) if destination else None,
                                name=self.function_name, config=spec.async_config, function_arn=self.function_arn)
            return b""
        try:
            result = runner.invoke(spec.codeuri, spec.handler, event, spec.timeout, name=self.function_name)
        except Throttled as throttled:  # Lambda ran nothing: the caller's to retry
            raise _too_many_requests(throttled) from None
        except Exception as exc:  # noqa: BLE001 - Lambda's answer for a function error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(error_document(exc)).encode()
        return json.dumps(result).encode()

    LambdaFunction.invoke = invoke
    _follow_concurrency_settings()


def _follow_concurrency_settings() -> None:
    """PutFunctionConcurrency and DeleteFunctionConcurrency on a registered function set what its
    runner allows at once (moto records them and would allow any number), a reservation the account
    cannot give refused as Lambda refuses it (400 InvalidParameterValueException), nothing recorded."""
    from moto.awslambda.models import LambdaBackend
    from moto.core.exceptions import JsonRESTError

    put, delete = LambdaBackend.put_function_concurrency, LambdaBackend.delete_function_concurrency

    def put_function_concurrency(self: Any, function_name: str, reserved_concurrency: str) -> str:
        name = self.get_function(function_name).function_name
        if name in _registry:
            try:
                _registry[name][1].concurrency.check(name, int(reserved_concurrency))
            except ReservationRefused as refused:
                raise JsonRESTError("InvalidParameterValueException", str(refused)) from None
        answer = put(self, function_name, reserved_concurrency)
        _reserve(name, int(reserved_concurrency))
        return answer

    def delete_function_concurrency(self: Any, function_name: str) -> str | None:
        answer = delete(self, function_name)
        _reserve(self.get_function(function_name).function_name, None)
        return answer

    LambdaBackend.put_function_concurrency = put_function_concurrency
    LambdaBackend.delete_function_concurrency = delete_function_concurrency


def _reserve(name: str, executions: int | None) -> None:
    if name in _registry:
        _registry[name][1].concurrency.reserve(name, executions)


# --- the template's functions and queues ---------------------------------------------------------


def install() -> None:
    """Patch moto's Lambda once per process: an invoke of a registered function runs its handler here."""
    patch_once(_patch_lambda)


def local_functions(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, LocalFunction]:
    """Every function of the template: its code, its timeout, its asynchronous settings and its
    reserved concurrency (the template's parameters at their defaults unless ``parameters`` gives them)."""
    return {logical_id: LocalFunction(logical_id, codeuri, handler, function_timeout(template, logical_id),
                                      async_invoke_config(template, logical_id),
                                      reserved_concurrency(template, logical_id, parameters))
            for logical_id, (codeuri, handler) in entry_points(template).items()}


def create_queues(template: dict[str, Any]) -> dict[str, str]:
    """The template's SQS queues on the embedded AWS, named as deployed (``local.aws.template.queue_name``)
    with the attributes it gives them (its VisibilityTimeout: when a batch the function failed on is
    read again); per logical id, its URL (what its ``Ref`` gives)."""
    import boto3

    sqs = boto3.client("sqs")
    for logical_id in resources_of_type(template, SQS_QUEUE):
        _queue_urls[logical_id] = sqs.create_queue(QueueName=queue_name(template, logical_id),
                                                   Attributes=queue_attributes(template, logical_id))["QueueUrl"]
    return dict(_queue_urls)


def register_functions(template: dict[str, Any], runner: Functions, parameters: dict[str, str] | None = None
                       ) -> dict[str, str]:
    """Create the template's queues and every function of it on the embedded AWS, run by ``runner``
    (an asynchronous invocation as the function's EventInvokeConfig says, no more at once than its
    ReservedConcurrentExecutions, ``parameters`` overriding the template's defaults); their ARNs."""
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
        archive.writestr("README.txt", "run by local/aws/lambda_service.py with local/aws/lambda_runtime.py")
    client = boto3.client("lambda")
    arns = {}
    for logical_id, spec in local_functions(template, parameters).items():
        name = _names[logical_id] = template_function_name(template, logical_id)
        module = spec.handler.rsplit(".", 1)[0]
        arns[logical_id] = client.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler=spec.handler, Timeout=int(spec.timeout),
            Code={"ZipFile": code.getvalue()}, Description=f"{spec.codeuri}{module}.py")["FunctionArn"]
        _registry[name] = (spec, runner)
        if spec.reserved is not None:
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=spec.reserved)
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
                except Throttled as exc:  # Lambda tries the batch again while it is in flight: here at the next pass
                    logger.warning("%s: a batch of %s is tried again", exc, event.queue)
                    sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for n, m in enumerate(messages)])
                    break
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
