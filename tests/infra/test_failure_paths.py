"""template.yaml's failure paths: the retrain workflow's Retry and Catch, the dead-letter
queue of asynchronous work and its alarm, and the rule that a prod stack notifies someone."""

from __future__ import annotations

import copy
import shlex
import tomllib
from typing import Any

import pytest

from local.aws.template import event_source_refusals, load_template, queue_attributes, resources_of_type
from tests.conftest import REPO

# Errors of the Lambda service, not of the code: worth another try with backoff.
LAMBDA_TRANSIENT = {"Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.AWSLambdaException",
                    "Lambda.SdkClientException"}
QUEUE = {"Fn::GetAtt": ["AsyncFailureQueue", "Arn"]}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


@pytest.fixture(scope="module")
def states(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]["RetrainStateMachine"]["Properties"]["Definition"]["States"]


def _tasks(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task":
            found[name] = state
        if state["Type"] == "Map":
            found |= _tasks(state["ItemProcessor"]["States"])
    return found


def test_every_task_retries_lambda_s_transient_errors_with_backoff(states: dict[str, dict[str, Any]]) -> None:
    tasks = _tasks(states)
    assert set(tasks) == {"Plan", "TrainBatch", "Promote", "RecordFailure"}
    for name, task in tasks.items():
        retried = [r for r in task.get("Retry", []) if LAMBDA_TRANSIENT <= set(r["ErrorEquals"])]
        assert retried, f"{name} does not retry Lambda's throttling and service errors"
        assert retried[0]["BackoffRate"] >= 2 and retried[0]["MaxAttempts"] >= 3 and retried[0]["IntervalSeconds"] >= 1, name
        assert "States.ALL" not in retried[0]["ErrorEquals"], f"{name} would retry its own bugs"


def test_every_step_of_the_run_is_caught_and_the_run_marked_failed(states: dict[str, dict[str, Any]]) -> None:
    for name in ("Plan", "Train", "Promote"):
        (catch,) = states[name]["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}, name
    record = states["RecordFailure"]
    assert record["Parameters"]["FunctionName"] == "${FailFunctionArn}"
    assert record["Parameters"]["Payload"] == {"run_id.$": "$$.Execution.Input.run_id", "error.$": "$.error"}
    assert record["Next"] == "RunFailed" and record["Catch"][0]["Next"] == "RunFailed"
    assert states["RunFailed"]["Type"] == "Fail"  # the execution fails too: the RetrainFailed alarm counts it
    # A run promote itself ended failed (series missing) fails the execution as well.
    assert states["Promote"]["Next"] == "Outcome"
    (failed,) = states["Outcome"]["Choices"]
    assert failed == {"Variable": "$.status", "StringEquals": "failed", "Next": "RunFailed"}
    assert states[states["Outcome"]["Default"]]["Type"] == "Succeed"


def test_the_catch_function_is_the_state_machine_s_to_call(template: dict[str, Any]) -> None:
    machine = template["Resources"]["RetrainStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["FailFunctionArn"] == {"Fn::GetAtt": ["RetrainFailFunction", "Arn"]}
    assert {"LambdaInvokePolicy": {"FunctionName": {"Ref": "RetrainFailFunction"}}} in machine["Policies"]


@pytest.mark.parametrize("function", ["IngestFunction", "RetrainFunction"])
def test_failed_async_invocations_go_to_the_queue(template: dict[str, Any], function: str) -> None:
    """The ingest worker invokes itself asynchronously, and EventBridge invokes both scheduled
    functions asynchronously: what fails after Lambda's retries goes to the queue."""
    properties = template["Resources"][function]["Properties"]
    config = properties["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS", "Destination": QUEUE}
    assert config["MaximumRetryAttempts"] == 2
    assert {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}} in properties["Policies"]


def test_the_ingest_function_reads_the_queue_back(template: dict[str, Any]) -> None:
    """Its AsyncFailures event ends the run of a worker Lambda gave up on; Lambda refuses an event
    source queue whose visibility timeout is shorter than the function's Timeout."""
    properties = template["Resources"]["IngestFunction"]["Properties"]
    (event,) = [e["Properties"] for e in properties["Events"].values() if e["Type"] == "SQS"]
    assert event["Queue"] == QUEUE and event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert {"SQSPollerPolicy": {"QueueName": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}} in properties["Policies"]
    assert event_source_refusals(template) == []
    readers = [name for name, f in resources_of_type(template, "AWS::Serverless::Function").items()
               if any(e["Type"] == "SQS" for e in f["Properties"].get("Events", {}).values())]
    assert readers == ["IngestFunction"]  # one reader: each message is handled once


def test_an_event_source_queue_read_back_sooner_than_the_function_may_run_is_refused(template: dict[str, Any]) -> None:
    """As Lambda refuses the event source mapping (the local stack then does not start)."""
    assert queue_attributes(template, "AsyncFailureQueue") == {
        "MessageRetentionPeriod": "1209600", "VisibilityTimeout": "5400", "SqsManagedSseEnabled": "true"}
    fifo = copy.deepcopy(template)
    fifo["Resources"]["AsyncFailureQueue"]["Properties"]["FifoQueue"] = True
    with pytest.raises(ValueError, match="AsyncFailureQueue: the local stack does not create queues with FifoQueue"):
        queue_attributes(fifo, "AsyncFailureQueue")
    shorter = copy.deepcopy(template)
    queue = shorter["Resources"]["AsyncFailureQueue"]["Properties"]
    queue["VisibilityTimeout"] = 60
    assert event_source_refusals(shorter) == [
        "IngestFunction: Queue visibility timeout: 60 seconds is less than Function timeout: 900 seconds"]
    queue["VisibilityTimeout"] = 900  # as long as the function may run: enough
    assert event_source_refusals(shorter) == []
    del queue["VisibilityTimeout"]  # SQS's default
    assert event_source_refusals(shorter)[0].startswith("IngestFunction: Queue visibility timeout: 30 seconds")


def test_every_schedule_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    schedules = {f"{name}.{event}": e["Properties"]
                 for name, f in resources_of_type(template, "AWS::Serverless::Function").items()
                 for event, e in f["Properties"].get("Events", {}).items() if e["Type"] in ("Schedule", "ScheduleV2")}
    assert set(schedules) == {"IngestFunction.Daily", "RetrainFunction.Monthly"}
    for name, schedule in schedules.items():
        assert schedule["DeadLetterConfig"] == {"Arn": QUEUE}, name
        assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1, name
    # EventBridge sends with the rule's identity: the queue's policy must let it.
    policy = template["Resources"]["AsyncFailureQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "AsyncFailureQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]


def test_a_message_in_the_queue_raises_an_alarm(template: dict[str, Any]) -> None:
    alarms = [a["Properties"] for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
              if a["Properties"]["Namespace"] == "AWS/SQS"]
    (alarm,) = alarms
    # The ingest function reads the queue (its AsyncFailures event): what was sent counts, not what is left.
    assert alarm["MetricName"] == "NumberOfMessagesSent" and alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}


# --- the prod rule, evaluated as CloudFormation would ---------------------------------------------


def _evaluate(node: Any, parameters: dict[str, str]) -> Any:
    """The few intrinsic functions a rule may use here: Ref, Fn::Equals, Fn::Not, Fn::And, Fn::Or."""
    if not isinstance(node, dict):
        return node
    ((name, args),) = node.items()
    if name == "Ref":
        return parameters[args]
    values = [_evaluate(a, parameters) for a in args]
    return {"Fn::Equals": lambda: values[0] == values[1], "Fn::Not": lambda: not values[0],
            "Fn::And": lambda: all(values), "Fn::Or": lambda: any(values)}[name]()


def refused(template: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """The assertions a stack with these parameters breaks (CloudFormation refuses it if any)."""
    parameters = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()} | overrides
    broken = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not _evaluate(rule["RuleCondition"], parameters):
            continue
        broken += [a["AssertDescription"] for a in rule["Assertions"] if not _evaluate(a["Assert"], parameters)]
    return broken


def _samconfig_overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    return dict(item.split("=", 1) for item in shlex.split(config[env]["deploy"]["parameters"]["parameter_overrides"]))


def test_prod_is_refused_without_an_alarm_email_or_a_portal_token(template: dict[str, Any]) -> None:
    assert refused(template, _samconfig_overrides("dev")) == []
    prod = _samconfig_overrides("prod")
    assert prod["Stage"] == "prod"
    broken = refused(template, prod)  # the repository holds neither: the operator passes them
    assert any("AlarmEmail" in b for b in broken) and any("SocrataAppTokenSecretArn" in b for b in broken)
    token = "arn:aws:secretsmanager:us-east-1:123456789012:secret:socrata-AbCdEf"
    assert any("AlarmEmail" in b for b in refused(template, prod | {"SocrataAppTokenSecretArn": token}))
    assert refused(template, prod | {"AlarmEmail": "ops@example.org", "SocrataAppTokenSecretArn": token}) == []


def test_the_alarm_email_must_look_like_an_address(template: dict[str, Any]) -> None:
    import re

    pattern = template["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "ops@example.org")
    assert not re.fullmatch(pattern, "ops") and not re.fullmatch(pattern, "a b@example.org")


def test_every_transition_names_a_state_and_every_state_is_reached(states: dict[str, dict[str, Any]]) -> None:
    """cfn-lint does not check a SAM state machine's transitions: a misspelt Next would only
    fail at deploy time."""
    def targets(state: dict[str, Any]) -> list[str]:
        found = [state[k] for k in ("Next", "Default") if k in state]
        found += [c["Next"] for c in state.get("Catch", []) + state.get("Choices", [])]
        return found

    reached = {"Plan"}
    for name, state in states.items():
        for target in targets(state):
            assert target in states, f"{name} goes to {target}, which is not a state"
            reached.add(target)
        terminal = state["Type"] in ("Succeed", "Fail") or state.get("End") is True
        assert terminal or "Next" in state or state["Type"] == "Choice", f"{name} neither ends nor goes on"
    assert reached == set(states)
