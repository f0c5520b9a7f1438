"""Starting work elsewhere: an asynchronous Lambda invocation or a Step Functions execution.

A small interface, so that tests and the local stack put their own launcher in its place
through the stores factory (``crimecast.adapters.stores``) instead of patching methods.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from crimecast.adapters import aws
from crimecast.adapters.limits import check_async_payload


class Launcher(Protocol):
    def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None: ...

    def start_workflow(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str: ...

    def workflow_history(self, execution_arn: str) -> dict[str, Any]: ...

    def workflow_status(self, execution_arn: str) -> str | None: ...


class AwsLauncher:
    """Lambda and Step Functions through boto3."""

    def invoke_async(self, function_name: str, payload: dict[str, Any]) -> None:
        """Invoke a Lambda function without waiting (InvocationType Event: Lambda queues it
        and retries it twice if it fails); over 256 KB, PayloadTooLargeError, as Lambda refuses it (moto does not)."""
        aws.client("lambda").invoke(FunctionName=function_name, InvocationType="Event",
                                    Payload=check_async_payload(function_name, payload))

    def start_workflow(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """Start a Step Functions execution; the name makes a repeated start a no-op."""
        response = aws.client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, name=name,
                                                              input=json.dumps(payload))
        return str(response["executionArn"])

    def workflow_status(self, execution_arn: str) -> str | None:
        """An execution's status (``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``), None if there is none."""
        sfn = aws.client("stepfunctions")
        try:
            return str(sfn.describe_execution(executionArn=execution_arn)["status"])
        except sfn.exceptions.ExecutionDoesNotExist:
            return None

    def workflow_history(self, execution_arn: str) -> dict[str, Any]:
        """An execution's status and each state it entered, with its outcome: ``{"status", "states":
        [{"state", "outcome", "attempts", "error"?}]}`` (DescribeExecution, GetExecutionHistory)."""
        sfn = aws.client("stepfunctions")
        described = sfn.describe_execution(executionArn=execution_arn)
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        found = {"status": described["status"], "states": state_outcomes(events)}
        if described.get("error"):
            found["error"] = described["error"]
        return found


_FAILED = ("TaskFailed", "LambdaFunctionFailed", "MapRunFailed", "MapStateFailed", "ExecutionFailed",
           "TaskTimedOut", "LambdaFunctionTimedOut", "TaskStartFailed", "TaskSubmitFailed")
_ATTEMPT = ("TaskScheduled", "LambdaFunctionScheduled", "MapRunStarted")


def state_outcomes(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state an execution entered, in order: ``{"state", "outcome"}`` (``succeeded``,
    ``failed``: the error that ended it is ``error``, a Catch's state follows; ``running``),
    and for a task or Map, ``attempts`` (more than one: retried)."""
    states: list[dict[str, Any]] = []
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            states.append({"state": event["stateEnteredEventDetails"]["name"], "outcome": "running"})
        elif not states:
            continue
        elif kind in _ATTEMPT:
            states[-1]["attempts"] = states[-1].get("attempts", 0) + 1
            states[-1].pop("error", None)
            states[-1]["outcome"] = "running"
        elif kind in _FAILED:
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            states[-1]["outcome"] = "failed"
            if details.get("error"):
                states[-1]["error"] = details["error"]
        elif kind.endswith("StateExited") and states[-1]["outcome"] == "running":
            states[-1]["outcome"] = "succeeded"
    return states
