"""local/aws/policy.py decides as IAM does (the policy evaluation logic), conditions included: the
enforcement on moto and the template's least-privilege tests rest on it."""

from __future__ import annotations

from typing import Any

import pytest

from local.aws.policy import decide

BUCKET = "arn:aws:s3:::data"


def _allow(action: str, resource: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return {"Statement": [statement | ({"Condition": condition} if condition else {})]}


LIST_COUNTS = _allow("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["counts/*", "boundaries/*"]}})


@pytest.mark.parametrize(("prefix", "decision"), [
    ("counts/versions/", "Allow"), ("counts/", "Allow"), ("boundaries/community_areas.geojson", "Allow"),
    ("models/", "None"), ("", "None"), ("countsX/", "None"), (None, "None")])
def test_a_listing_is_allowed_only_under_the_prefixes_its_condition_names(prefix: str | None, decision: str) -> None:
    context = {} if prefix is None else {"s3:prefix": prefix}  # no prefix parameter: the key is absent
    assert decide([LIST_COUNTS], "s3:ListBucket", BUCKET, context) == decision


def test_an_allow_whose_condition_fails_does_not_deny_what_another_allows() -> None:
    """moto denied on any failed condition; IAM only leaves that statement out."""
    everything = _allow("s3:ListBucket", BUCKET)
    assert decide([LIST_COUNTS, everything], "s3:ListBucket", BUCKET, {"s3:prefix": "models/"}) == "Allow"


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": f"{BUCKET}/*",
                           "Condition": {"Bool": {"aws:SecureTransport": False}}}]}  # YAML's false
    allow = _allow("s3:GetObject", f"{BUCKET}/*")
    assert decide([allow, deny], "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": "false"}) == "Deny"
    assert decide([allow, deny], "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": "true"}) == "Allow"


def test_actions_match_without_case_and_resources_with_it() -> None:
    allow = _allow("S3:getobject", f"{BUCKET}/counts/*")
    assert decide([allow], "s3:GetObject", f"{BUCKET}/counts/x") == "Allow"
    assert decide([allow], "s3:GetObject", f"{BUCKET}/Counts/x") == "None"
    assert decide([_allow("s3:Get?bject", f"{BUCKET}/*")], "s3:GetObject", f"{BUCKET}/x") == "Allow"


def test_a_key_absent_from_the_request_fails_a_condition_but_a_negated_one_or_if_exists() -> None:
    def deciding(operator: str, context: dict[str, str]) -> str:
        return decide([_allow("s3:GetObject", "*", {operator: {"aws:PrincipalAccount": "111122223333"}})],
                      "s3:GetObject", f"{BUCKET}/x", context)

    assert deciding("StringEquals", {}) == "None"
    assert deciding("StringNotEquals", {}) == "Allow"  # IAM: a negated operator holds when the key is absent
    assert deciding("StringEqualsIfExists", {}) == "Allow"
    assert deciding("StringEquals", {"aws:PrincipalAccount": "111122223333"}) == "Allow"
    assert deciding("StringNotEquals", {"aws:PrincipalAccount": "111122223333"}) == "None"


def test_null_checks_whether_the_key_is_there() -> None:
    absent = _allow("s3:ListBucket", BUCKET, {"Null": {"s3:prefix": "true"}})
    assert decide([absent], "s3:ListBucket", BUCKET, {}) == "Allow"
    assert decide([absent], "s3:ListBucket", BUCKET, {"s3:prefix": "a/"}) == "None"


def test_arn_like_matches_each_part_of_the_arn() -> None:
    roles = _allow("s3:GetObject", "*", {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/train-*"}})
    assert decide([roles], "s3:GetObject", f"{BUCKET}/x", {"aws:PrincipalArn": "arn:aws:iam::1:role/train-x"}) == "Allow"
    assert decide([roles], "s3:GetObject", f"{BUCKET}/x", {"aws:PrincipalArn": "arn:aws:iam::1:user/train-x"}) == "None"


def test_a_resource_policy_names_its_principals() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                             "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    assert decide([policy], "secretsmanager:GetSecretValue", "s", principal="arn:aws:iam::123456789012:role/a") == "Allow"
    assert decide([policy], "secretsmanager:GetSecretValue", "s", principal="arn:aws:iam::999999999999:role/a") == "None"


def test_an_operator_it_does_not_know_is_an_error_not_a_guess() -> None:
    policy = _allow("s3:GetObject", "*", {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    with pytest.raises(ValueError, match="DateGreaterThan"):
        decide([policy], "s3:GetObject", f"{BUCKET}/x", {"aws:CurrentTime": "2031-01-01T00:00:00Z"})
