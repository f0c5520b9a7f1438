"""The role coverage check (local/aws/iam_calls.py), on calls made up here and on calls recorded under
IAM: it names a call a role is not granted and a grant no call used. The check of the suite's own
calls runs at the end of every pytest session (tests/conftest.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from local.aws.iam_calls import UNREACHABLE, Call, check
from local.aws.template import load_template
from tests.conftest import REPO

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:crimecast-retrain-dev:retrain-1"
SERIES = "arn:aws:dynamodb:us-east-1:123456789012:table/crimecast-local-SeriesTable"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(REPO / "template.yaml")


def _call(role: str, action: str, resource: str, context: dict[str, Any] | None = None, expected: bool = False) -> Call:
    return Call(role, action, resource, context or {}, True, expected, "tests/made_up.py::test (call)")


def _before_df04b28(template: dict[str, Any]) -> dict[str, Any]:
    """template.yaml as it was before df04b28: the retrain function not granted states:DescribeExecution."""
    old = copy.deepcopy(template)
    policies = old["Resources"]["RetrainFunction"]["Properties"]["Policies"]
    old["Resources"]["RetrainFunction"]["Properties"]["Policies"] = [
        p for p in policies if "states:DescribeExecution" not in json.dumps(p)]
    return old


def test_the_retrain_functions_lease_takeover_fails_the_check_on_the_template_before_its_grant(template) -> None:
    takeover = _call("RetrainFunction", "states:DescribeExecution", EXECUTION)
    assert check([takeover], template, unused=False) == []
    (problem,) = check([takeover], _before_df04b28(template), unused=False)
    assert problem.startswith(f"RetrainFunction calls states:DescribeExecution on {EXECUTION}, which its role is not granted")
    assert "tests/made_up.py::test (call)" in problem  # where it was seen


def test_a_refusal_a_test_expected_is_no_problem_and_no_use(template) -> None:
    probe = _call("PredictFunction", "dynamodb:PutItem", SERIES, expected=True)
    assert check([probe], template, unused=False) == []
    assert "PredictFunction: dynamodb:Query is granted and no recorded call used it" in check([probe], template)


def test_a_role_the_template_does_not_have_is_named(template) -> None:
    (problem,) = check([_call("GoneFunction", "s3:GetObject", "arn:aws:s3:::b/k")], template, unused=False)
    assert problem.startswith("GoneFunction (no such role in the template) calls s3:GetObject")


def test_every_action_and_resource_of_a_statement_and_every_policy_template_must_be_used(template) -> None:
    unused = check([], template)
    # a written-out statement: each action, each resource (and its condition must hold: the listing's prefix)
    assert "PredictFunction: dynamodb:GetItem is granted and no recorded call used it" in unused
    assert f"PredictFunction: {SERIES}/index/ByTypeVersion is granted and no recorded call used it" in unused
    # a SAM policy template, as a whole
    assert "EvaluateFunction: DynamoDBCrudPolicy (RunsTable) is granted and no recorded call used it" in unused
    assert not [p for p in unused if any(p.startswith(f"{name} ") for name in UNREACHABLE)]
    used = check([_call("PredictFunction", "dynamodb:GetItem", SERIES),
                  _call("PredictFunction", "dynamodb:Query", f"{SERIES}/index/ByTypeVersion"),
                  _call("PredictFunction", "s3:ListBucket", "arn:aws:s3:::crimecast-local-databucket", {"s3:prefix": "counts/"}),
                  _call("EvaluateFunction", "dynamodb:Scan",
                        "arn:aws:dynamodb:us-east-1:123456789012:table/crimecast-local-RunsTable")], template)
    assert not [p for p in used if p.startswith(("PredictFunction: dynamodb:", f"PredictFunction: {SERIES}",
                                                 "EvaluateFunction: DynamoDBCrudPolicy (RunsTable)"))]
    # refused (counts/ is not predict's prefix): the listing grant stays unused
    assert "PredictFunction: s3:ListBucket is granted and no recorded call used it" in used
    assert any(p.startswith("PredictFunction calls s3:ListBucket") for p in used)


def test_a_grant_listed_as_unreachable_that_a_call_used_must_leave_the_list(template) -> None:
    queue = "arn:aws:sqs:us-east-1:123456789012:crimecast-async-failures-dev"
    assert f"RetrainFunction: {queue}" in UNREACHABLE  # the template's queue, as check() names it
    problems = check([_call("RetrainFunction", "sqs:SendMessage", queue)], template)
    assert "RetrainFunction: sqs:SendMessage is listed as unreachable by the tests, yet a recorded call used it: " \
           "take it off the list" in problems
