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
