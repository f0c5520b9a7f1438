"""Read template.yaml as data: the tables the tests build on moto and the API routes.

CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) are read into their long
form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``), so the result is the template as
CloudFormation sees it; nothing here resolves them.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any, NamedTuple

import yaml

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
DYNAMODB_TABLE = "AWS::DynamoDB::Table"
# The create_table arguments that a table's properties give directly.
TABLE_KEYS = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode")


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that also accepts CloudFormation's short-form intrinsic functions."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as a dict, short tags turned into their long form."""
    with open(path, encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506  # nosec B506  # a SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return template


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template.get("Resources", {}).items() if res.get("Type") == resource_type}


def dynamodb_table_specs(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per table logical id, the keyword arguments of boto3's ``create_table`` (without TableName).

    Only the keys present in the template are given (no empty GlobalSecondaryIndexes),
    so ``client.create_table(TableName=name, **spec)`` works on moto and on AWS.
    """
    specs = {}
    for logical_id, resource in resources_of_type(template, DYNAMODB_TABLE).items():
        properties = resource.get("Properties", {})
        specs[logical_id] = {key: properties[key] for key in TABLE_KEYS if properties.get(key)}
    return specs


class ApiRoute(NamedTuple):
    method: str  # upper case, e.g. "GET"
    path: str  # API Gateway form, e.g. "/runs/{run_id}"
    function: str  # logical id of the function
    handler: str  # e.g. "app.lambda_handler"
    codeuri: str  # e.g. "functions/predict/"
    auth_none: bool  # True where the route opts out of the default authorizer


def default_stage(template: dict[str, Any]) -> str:
    """The ``Stage`` parameter's default: the stage the local stack runs as, naming what AWS would."""
    return str(template.get("Parameters", {}).get("Stage", {}).get("Default", "dev"))


def deployed_name(template: dict[str, Any], logical_id: str, name_property: str, stage: str | None = None) -> str:
    """A resource's name once deployed: its ``name_property`` (``FunctionName``, ``QueueName``,
    ``Name``; a ``!Sub`` of the stage) if the template gives one; else its logical id (AWS would
    add the stack's name and a suffix)."""
    given = template["Resources"][logical_id].get("Properties", {}).get(name_property)
    if isinstance(given, dict) and "Fn::Sub" in given:
        return str(given["Fn::Sub"]).replace("${Stage}", stage or default_stage(template))
    return str(given) if isinstance(given, str) else logical_id


def function_name(template: dict[str, Any], logical_id: str, stage: str | None = None) -> str:
    """A function's name once deployed (its ``FunctionName``)."""
    return deployed_name(template, logical_id, "FunctionName", stage)


def queue_name(template: dict[str, Any], logical_id: str, stage: str | None = None) -> str:
    """An SQS queue's name once deployed (its ``QueueName``)."""
    return deployed_name(template, logical_id, "QueueName", stage)


# Lambda's asynchronous invocation settings when a function has no EventInvokeConfig.
LAMBDA_ASYNC_RETRIES = 2
LAMBDA_ASYNC_MAX_AGE_S = 21600


class AsyncInvokeConfig(NamedTuple):
    """A function's ``EventInvokeConfig``: how Lambda retries its asynchronous invocations."""

    max_retry_attempts: int
    max_event_age_s: int
    on_failure: str | None  # the logical id of the OnFailure destination (an SQS queue here)


LAMBDA_ASYNC_DEFAULTS = AsyncInvokeConfig(LAMBDA_ASYNC_RETRIES, LAMBDA_ASYNC_MAX_AGE_S, None)


def async_invoke_config(template: dict[str, Any], logical_id: str) -> AsyncInvokeConfig:
    """A function's ``EventInvokeConfig`` (Lambda's defaults where it sets none: 2 retries, 6 h)."""
    config = template["Resources"][logical_id].get("Properties", {}).get("EventInvokeConfig") or {}
    on_failure = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
    if on_failure and on_failure.get("Type") != "SQS":
        raise ValueError(f"{logical_id}: the local stack sends OnFailure records to SQS only, not {on_failure.get('Type')}")
    target = references(on_failure.get("Destination")) if on_failure else set()
    if len(target) > 1:
        raise ValueError(f"{logical_id}: the OnFailure destination names {sorted(target)}, not one queue")
    return AsyncInvokeConfig(int(config.get("MaximumRetryAttempts", LAMBDA_ASYNC_RETRIES)),
                             int(config.get("MaximumEventAgeInSeconds", LAMBDA_ASYNC_MAX_AGE_S)),
                             next(iter(target), None))


class QueueEvent(NamedTuple):
    """A function's ``Type: SQS`` event: Lambda's event source mapping polls the queue for it."""

    function: str  # logical id
    queue: str  # logical id of the queue
    batch_size: int


def queue_events(template: dict[str, Any]) -> list[QueueEvent]:
    """Every ``Type: SQS`` event of every function, in template order."""
    found = []
    for logical_id, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") == "SQS":
                spec = event.get("Properties", {})
                (queue,) = references(spec["Queue"])
                found.append(QueueEvent(logical_id, queue, int(spec.get("BatchSize", 10))))
    return found


def _function_property(template: dict[str, Any], properties: dict[str, Any], name: str) -> Any:
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def parameter_value(template: dict[str, Any], name: str, parameters: dict[str, str] | None = None) -> str:
    """A template parameter's value as deployed: ``parameters``' (a deploy's overrides), else its default."""
    if name in (parameters or {}):
        return str(parameters[name])  # type: ignore[index]
    return str(template["Parameters"][name]["Default"])


def _scalar(template: dict[str, Any], logical_id: str, name: str, value: Any, parameters: dict[str, str] | None) -> Any:
    """A property that is a value or a parameter's ``Ref``, as deployed; ValueError for anything else."""
    if not isinstance(value, dict):
        return value
    if set(value) != {"Ref"} or value["Ref"] not in template.get("Parameters", {}):
        raise ValueError(f"{logical_id}: {name} must be a value or a parameter's Ref, not {value!r}")
    return parameter_value(template, value["Ref"], parameters)


def reserved_concurrency(template: dict[str, Any], logical_id: str, parameters: dict[str, str] | None = None) -> int | None:
    """A function's ``ReservedConcurrentExecutions`` (a number or a parameter's ``Ref``); None when
    it reserves none (it shares the account's unreserved concurrency)."""
    properties = template["Resources"][logical_id].get("Properties", {})
    value = _function_property(template, properties, "ReservedConcurrentExecutions")
    if value is None:
        return None
    return int(_scalar(template, logical_id, "ReservedConcurrentExecutions", value, parameters))


SQS_QUEUE = "AWS::SQS::Queue"
SQS_DEFAULT_VISIBILITY_S = 30  # a queue's VisibilityTimeout when the template sets none
# The queue properties the local stack passes to SQS as attributes of the same name, as CloudFormation
# does; the others CloudFormation passes (FIFO, KMS, redrive) it refuses rather than drop.
QUEUE_ATTRIBUTES = ("DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
                    "VisibilityTimeout", "SqsManagedSseEnabled")
QUEUE_OTHER_PROPERTIES = ("QueueName", "Tags")


def queue_attributes(template: dict[str, Any], logical_id: str, parameters: dict[str, str] | None = None) -> dict[str, str]:
    """The SQS attributes a queue of the template is created with (SQS's defaults for the others);
    ValueError for a property the local stack would not keep."""
    properties = template["Resources"][logical_id].get("Properties", {})
    if unknown := sorted(set(properties) - set(QUEUE_ATTRIBUTES) - set(QUEUE_OTHER_PROPERTIES)):
        raise ValueError(f"{logical_id}: the local stack does not create queues with {', '.join(unknown)}")
    attributes = {}
    for name in QUEUE_ATTRIBUTES:
        if name in properties:
            value = _scalar(template, logical_id, name, properties[name], parameters)
            attributes[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return attributes


def event_source_refusals(template: dict[str, Any], parameters: dict[str, str] | None = None) -> list[str]:
    """Lambda's answer to each ``Type: SQS`` event whose event source mapping it would refuse to
    create (400 InvalidParameterValueException): the queue's visibility timeout shorter than the
    function's timeout, which would let a second poller take a batch still being handled."""
    refusals = []
    for event in queue_events(template):
        visibility = int(queue_attributes(template, event.queue, parameters).get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_S))
        timeout = function_timeout(template, event.function)
        if visibility < timeout:
            refusals.append(f"{event.function}: Queue visibility timeout: {visibility} seconds is less than "
                            f"Function timeout: {timeout:g} seconds")
    return refusals


LAMBDA_DEFAULT_TIMEOUT_S = 3  # a function's Timeout when neither it nor Globals sets one (SAM's default)
AUTHORIZER_DEFAULT_TTL_S = 300  # API Gateway's authorizer result cache when the template sets none


def function_timeout(template: dict[str, Any], logical_id: str) -> float:
    """A function's ``Timeout`` in seconds (its own, else Globals', else Lambda's 3 s)."""
    properties = template["Resources"][logical_id].get("Properties", {})
    value = _function_property(template, properties, "Timeout")
    return float(value) if value is not None else float(LAMBDA_DEFAULT_TIMEOUT_S)


class Authorizer(NamedTuple):
    function: str  # logical id
    codeuri: str
    handler: str
    header: str  # where the token is read (Identity.Header)
    ttl: float  # seconds API Gateway caches its answer per token (0: not cached)


def default_authorizer(template: dict[str, Any]) -> Authorizer:
    """The API's default Lambda authorizer: its function, the header it reads and its result TTL
    (SAM's ``Identity.ReauthorizeEvery``, or CloudFormation's ``AuthorizerResultTtlInSeconds``)."""
    for api in resources_of_type(template, "AWS::Serverless::Api").values():
        auth = api["Properties"].get("Auth", {})
        spec = auth.get("Authorizers", {}).get(auth.get("DefaultAuthorizer"), {})
        target = spec.get("FunctionArn", {}).get("Fn::GetAtt", [None])[0]
        if target:
            properties = template["Resources"][target]["Properties"]
            identity = spec.get("Identity") or {}
            ttl = identity.get("ReauthorizeEvery", spec.get("AuthorizerResultTtlInSeconds", AUTHORIZER_DEFAULT_TTL_S))
            return Authorizer(target, str(_function_property(template, properties, "CodeUri")),
                              str(_function_property(template, properties, "Handler")),
                              str(identity.get("Header", "Authorization")), float(ttl))
    raise ValueError("template.yaml has no default Lambda authorizer")


def entry_points(template: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Per function (logical id), its ``(CodeUri, Handler)``: what the local stack invokes."""
    found = {}
    for logical_id, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        properties = resource.get("Properties", {})
        found[logical_id] = (str(_function_property(template, properties, "CodeUri")),
                             str(_function_property(template, properties, "Handler")))
    return found


def api_routes(template: dict[str, Any]) -> list[ApiRoute]:
    """Every ``Type: Api`` event of every function, in template order."""
    routes = []
    for logical_id, resource in resources_of_type(template, SERVERLESS_FUNCTION).items():
        properties = resource.get("Properties", {})
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            spec = event.get("Properties", {})
            auth = spec.get("Auth") or {}
            routes.append(ApiRoute(
                method=str(spec["Method"]).upper(),
                path=str(spec["Path"]),
                function=logical_id,
                handler=str(_function_property(template, properties, "Handler")),
                codeuri=str(_function_property(template, properties, "CodeUri")),
                auth_none=auth.get("Authorizer") == "NONE",
            ))
    return routes


def _sub_references(argument: Any) -> set[str]:
    """The logical ids (and parameters) a ``Fn::Sub`` names: ``${Name}``, ``${Name.Attribute}``;
    not pseudo parameters, ``${!Literal}`` or the Sub's own variables."""
    text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
    names = {m.group(1).split(".", 1)[0] for m in re.finditer(r"\$\{([^}!][^}]*)\}", str(text))}
    return {n for n in names if not n.startswith("AWS::") and n not in variables} | references(variables)


def references(node: Any) -> set[str]:
    """Every logical id ``node`` refers to (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``), at any depth."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt" and isinstance(value, list) and value:
                found.add(str(value[0]))
            elif key == "Fn::Sub":
                found |= _sub_references(value)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def granted_resources(template: dict[str, Any], function: str) -> set[str]:
    """The logical ids a function's ``Policies`` (SAM policy templates and statements) name."""
    return references(template["Resources"][function]["Properties"].get("Policies") or [])
