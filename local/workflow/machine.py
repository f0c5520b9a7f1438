"""The template's retrain state machine on the embedded AWS, created from its own definition
(the ``DefinitionSubstitutions`` resolved) and run by moto's Step Functions interpreter, whose
Lambda tasks call the functions registered on the embedded Lambda. The same code serves the
local stack (moto's server in this process) and the tests (``mock_aws``).

moto's grammar refuses an integer ``ToleratedFailurePercentage`` (``5``): the definition given
to it says ``5.0``, the same value.
"""

from __future__ import annotations

from collections.abc import Callable
import json
from typing import Any

from local.aws.lambda_service import ROLE_NAME
from local.aws.template import deployed_name, parameter_value
from local.workflow import interpreter


def _resolve(value: Any, template: dict[str, Any], arns: dict[str, str], env: dict[str, str],
             parameters: dict[str, str] | None = None) -> str:
    if isinstance(value, str):
        return value
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
        return arns[value["Fn::GetAtt"][0]]
    if "Ref" in value:
        name = value["Ref"]
        if name in (parameters or {}) or name in template.get("Parameters", {}):
            return parameter_value(template, name, parameters)
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

    interpreter.install()
    name = name or deployed_name(template, logical_id, "Name")
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
