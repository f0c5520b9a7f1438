"""template.yaml limits sign-in per address: a WAF rate-based rule on POST /auth/token,
attached to the API's stage, on in prod and a parameter elsewhere."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.template import load_template
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml")


def _evaluate(condition: Any, parameters: dict[str, str]) -> Any:
    """A template condition, evaluated for the given parameter values."""
    if isinstance(condition, dict):
        (function, argument), = condition.items()
        if function == "Ref":
            return parameters[argument]
        values = [_evaluate(a, parameters) for a in argument]
        return {"Fn::Equals": lambda: values[0] == values[1], "Fn::Or": lambda: any(values),
                "Fn::And": lambda: all(values), "Fn::Not": lambda: not values[0]}[function]()
    return condition


@pytest.mark.parametrize(("stage", "setting", "on"), [("prod", "auto", True), ("dev", "auto", False),
                                                      ("dev", "on", True), ("prod", "off", False)])
def test_the_limit_is_on_in_prod_and_a_parameter_elsewhere(stage: str, setting: str, on: bool) -> None:
    assert TEMPLATE["Parameters"]["LoginRateLimiting"]["Default"] == "auto"
    assert _evaluate(TEMPLATE["Conditions"]["LimitsLogins"], {"Stage": stage, "LoginRateLimiting": setting}) is on


def test_sign_in_is_rate_limited_per_address_and_answered_429() -> None:
    acl = TEMPLATE["Resources"]["LoginRateLimitAcl"]
    assert acl["Condition"] == "LimitsLogins" and acl["Properties"]["Scope"] == "REGIONAL"
    (rule,) = acl["Properties"]["Rules"]
    rate = rule["Statement"]["RateBasedStatement"]
    assert rate["AggregateKeyType"] == "IP" and rate["Limit"] == {"Ref": "LoginRateLimit"}
    match = rate["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"UriPath": {}} and match["SearchString"] == "/auth/token"
    assert rule["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429
    body = acl["Properties"]["CustomResponseBodies"][rule["Action"]["Block"]["CustomResponse"]["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON" and '"error"' in body["Content"]  # RFC 6749's shape, as /auth/token


def test_the_rule_guards_the_api_stage() -> None:
    association = TEMPLATE["Resources"]["LoginRateLimitAssociation"]
    assert association["Condition"] == "LimitsLogins"
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["LoginRateLimitAcl", "Arn"]}
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("/restapis/${CrimecastApi}/stages/${CrimecastApi.Stage}")
