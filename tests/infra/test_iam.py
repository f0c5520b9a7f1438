"""template.yaml's grants: each function gets what its code path uses, and no more."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.aws.template import granted_resources, load_template, references
from tests.conftest import REPO

STORES = {"DataBucket", "SeriesTable", "RunsTable", "UsersTable", "LoginAttemptsTable", "IdempotencyTable"}
# What each step of the retrain workflow touches (jobs/retrain plan, train_batch, promote;
# tests/functions/test_retrain_flow.py runs each with only these stores).
RETRAIN_STEPS = {
    "RetrainPlanFunction": {"DataBucket", "RunsTable", "SeriesTable"},  # counts in, batches and manifest out; the run; the champion
    "RetrainTrainFunction": {"DataBucket"},  # counts in; models and the batch's forecasts out
    # the Map's and batches' results, the plan's manifest; forecasts, summaries, catalogue, champion; the run
    "RetrainPromoteFunction": {"DataBucket", "SeriesTable", "RunsTable"},
    "RetrainFailFunction": {"RunsTable", "SeriesTable"},  # the Catch: the run and the retrain lease; was it promoted?
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def _policies(template: dict[str, Any], function: str) -> list[Any]:
    return template["Resources"][function]["Properties"]["Policies"]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize(("function", "stores"), RETRAIN_STEPS.items())
def test_each_retrain_step_is_granted_exactly_the_stores_it_uses(template: dict[str, Any], function: str,
                                                                  stores: set[str]) -> None:
    assert granted_resources(template, function) & STORES == stores


def test_the_authorizer_may_only_get_a_user_by_key(template: dict[str, Any]) -> None:
    policies = _policies(template, "AuthorizerFunction")
    on_users = [p for p in policies if "UsersTable" in references(p)]
    assert on_users, "the authorizer must look the user up"
    for policy in on_users:  # no SAM policy template (DynamoDBReadPolicy allows Scan and Query)
        assert list(policy) == ["Statement"], policy
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow" and _actions(statement) == ["dynamodb:GetItem"]
    granted = [a for p in policies if "Statement" in p for s in p["Statement"] for a in _actions(s)]
    assert not any(a.startswith("dynamodb:") and a != "dynamodb:GetItem" for a in granted)
    assert not any(name.startswith("DynamoDB") for p in policies for name in p)
    assert granted_resources(template, "AuthorizerFunction") & STORES == {"UsersTable"}


def test_only_the_auth_function_touches_the_sign_in_throttle_and_only_by_key(template: dict[str, Any]) -> None:
    functions = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]
    assert [f for f in functions if "LoginAttemptsTable" in granted_resources(template, f)] == ["AuthFunction"]
    (policy,) = [p for p in _policies(template, "AuthFunction") if "LoginAttemptsTable" in references(p)]
    (statement,) = policy["Statement"]
    assert sorted(_actions(statement)) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]


def test_the_account_wide_api_gateway_settings_are_optional(template: dict[str, Any]) -> None:
    """AWS::ApiGateway::Account is one per account and region: only a stack asked to sets it."""
    resources = template["Resources"]
    (account,) = [name for name, r in resources.items() if r["Type"] == "AWS::ApiGateway::Account"]
    condition = resources[account]["Condition"]
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "CreateApiGatewayAccount"}, "true"]}
    parameter = template["Parameters"]["CreateApiGatewayAccount"]
    assert parameter["Default"] == "false" and set(parameter["AllowedValues"]) == {"true", "false"}
    role = resources[account]["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert resources[role]["Condition"] == condition
    # Nothing unconditional may name a conditional resource (DependsOn, Ref or GetAtt) but through Fn::If.
    for name, resource in resources.items():
        if resource.get("Condition") == condition:
            continue
        depends = resource.get("DependsOn", [])
        assert account not in ([depends] if isinstance(depends, str) else depends), name
        if name != "ApiGatewayAccountReady":
            assert not references(resource) & {account, role}, name


@pytest.mark.parametrize("function", ["RetrainPlanFunction", "RetrainFailFunction"])
def test_the_plan_and_the_catch_may_only_get_items_of_the_series(template: dict[str, Any], function: str) -> None:
    on_series = [p for p in _policies(template, function) if "SeriesTable" in references(p)]
    assert [list(p) for p in on_series] == [["Statement"]]
    assert [_actions(s) for p in on_series for s in p["Statement"]] == [["dynamodb:GetItem"]]


# IAM actions whose boto3 operation is named otherwise; and the actions AWS itself uses with a
# function's role rather than its code (Lambda sends a failed asynchronous invocation's record
# to the OnFailure destination with the execution role).
OPERATION_OF_ACTION = {"lambda:InvokeFunction": "invoke", "s3:ListBucket": "list_objects_v2",
                       "s3:DeleteObject": "delete_objects", "dynamodb:BatchWriteItem": "batch_writer"}
USED_BY_AWS = {"sqs:SendMessage"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_action_a_function_is_granted_by_statement_is_called_by_the_code(template: dict[str, Any]) -> None:
    """A statement written out (not a SAM policy template) names actions the code makes: a grant
    no code uses (states:DescribeExecution on the evaluate and retrain functions was one) goes."""
    code = "\n".join(path.read_text() for folder in ("shared/crimecast", "functions")
                     for path in (REPO / folder).rglob("*.py"))
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for policy in resource["Properties"].get("Policies") or []:
            for statement in (policy.get("Statement", []) if isinstance(policy, dict) else []):
                for action in _actions(statement):
                    if action in USED_BY_AWS:
                        continue
                    operation = OPERATION_OF_ACTION.get(action, _snake(action.split(":", 1)[1]))
                    called = rf"\b{operation}\(|get_paginator\(\"{operation}\"\)"  # a call, or its paginator
                    assert re.search(called, code), f"{name} is granted {action}, which no code calls"
