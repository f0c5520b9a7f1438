"""template.yaml's grants and resource policies, decided as IAM decides them (local/aws/policy.py over
the SAM translator's output): each function reaches the data bucket's prefixes its code uses and
no other, the bucket refuses requests without TLS, and the signing key's own policy keeps it to
the auth functions whatever a role is granted. Then the rest of the template's hardening: log
retention, reserved concurrency, ACLs off, every scanner exception with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from local.aws import iam
from local.aws.embedded import ACCOUNT
from local.aws.policy import decide, listed
from local.aws.template import load_template, resources_of_type
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml")
BUCKET = "arn:aws:s3:::data"
SERIES = "arn:aws:dynamodb:us-east-1:123456789012:table/series"
FUNCTIONS = sorted(resources_of_type(TEMPLATE, "AWS::Serverless::Function"))


@pytest.fixture(scope="module")
def translated() -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks boto3 for a region
        yield iam.translate(TEMPLATE)


@pytest.fixture(scope="module")
def policies(translated: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    del translated  # the region for the translator
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        found = iam.function_policies(TEMPLATE, iam.physical_names(TEMPLATE, {"DATA_BUCKET": "data",
                                                                             "SERIES_TABLE": "series"}))
    return {name: [p["PolicyDocument"] for p in documents] for name, documents in found.items()}


def _object(key: str) -> str:
    return f"{BUCKET}/{key}"


# (function, action, key or None for the bucket, the listing's prefix, allowed)
S3_CASES = [
    # ingest: the counts and the boundaries; deletes only staged chunks and old versions
    ("IngestFunction", "s3:GetObject", "counts/current.json", None, True),
    ("IngestFunction", "s3:PutObject", "counts/versions/v1/parts/2024.csv.gz", None, True),
    ("IngestFunction", "s3:PutObject", "boundaries/community_areas.geojson", None, True),
    ("IngestFunction", "s3:DeleteObject", "counts/staging/ingest-1/2024-01.csv.gz", None, True),
    ("IngestFunction", "s3:DeleteObject", "counts/versions/v1/manifest.json", None, True),
    ("IngestFunction", "s3:ListBucket", None, "counts/versions/", True),
    ("IngestFunction", "s3:DeleteObject", "counts/current.json", None, False),
    ("IngestFunction", "s3:DeleteObject", "models/v1/THEFT.json", None, False),
    ("IngestFunction", "s3:PutObject", "models/v1/THEFT.json", None, False),
    ("IngestFunction", "s3:GetObject", "models/v1/THEFT.json", None, False),
    ("IngestFunction", "s3:PutObject", "runs/retrain-1/manifest.json", None, False),
    ("IngestFunction", "s3:ListBucket", None, "models/", False),
    ("IngestFunction", "s3:ListBucket", None, None, False),
    ("IngestFunction", "s3:PutObjectAcl", "counts/current.json", None, False),
    ("IngestFunction", "s3:PutLifecycleConfiguration", None, None, False),
    ("IngestFunction", "s3:DeleteBucket", None, None, False),
    # plan: reads the counts, writes the run's batches and manifest
    ("RetrainPlanFunction", "s3:GetObject", "counts/versions/v1/monthly_counts.csv.gz", None, True),
    ("RetrainPlanFunction", "s3:PutObject", "runs/retrain-1/batches.json", None, True),
    ("RetrainPlanFunction", "s3:PutObject", "runs/retrain-1/manifest.json", None, True),
    ("RetrainPlanFunction", "s3:PutObject", "runs/retrain-1/results/00000.json", None, False),
    ("RetrainPlanFunction", "s3:PutObject", "counts/current.json", None, False),
    ("RetrainPlanFunction", "s3:DeleteObject", "runs/retrain-1/batches.json", None, False),
    # train (third-party code over outside data): reads the counts, writes models and its result (its forecasts)
    ("RetrainTrainFunction", "s3:GetObject", "counts/versions/v1/monthly_counts.csv.gz", None, True),
    ("RetrainTrainFunction", "s3:PutObject", "models/v1/THEFT.json", None, True),
    ("RetrainTrainFunction", "s3:PutObject", "runs/retrain-1/results/00003.json", None, True),
    ("RetrainTrainFunction", "s3:PutObject", "counts/current.json", None, False),
    ("RetrainTrainFunction", "s3:PutObject", "runs/retrain-1/manifest.json", None, False),
    ("RetrainTrainFunction", "s3:DeleteObject", "models/v1/THEFT.json", None, False),
    ("RetrainTrainFunction", "s3:GetObject", "boundaries/community_areas.geojson", None, False),
    ("RetrainTrainFunction", "s3:ListBucket", None, "models/", False),
    # promote: reads the run's files and the Map's results, writes nothing there
    ("RetrainPromoteFunction", "s3:GetObject", "runs/retrain-1/results/00000.json", None, True),
    ("RetrainPromoteFunction", "s3:GetObject", "runs/map-results/abc/manifest.json", None, True),
    ("RetrainPromoteFunction", "s3:PutObject", "runs/retrain-1/manifest.json", None, False),
    ("RetrainPromoteFunction", "s3:GetObject", "counts/current.json", None, False),
    # the API: predict reads the boundaries, evaluate the counts
    ("PredictFunction", "s3:GetObject", "boundaries/community_areas.geojson", None, True),
    ("PredictFunction", "s3:ListBucket", None, "boundaries/community_areas.geojson", True),
    ("PredictFunction", "s3:GetObject", "counts/current.json", None, False),
    ("PredictFunction", "s3:ListBucket", None, "counts/", False),
    ("EvaluateFunction", "s3:GetObject", "counts/current.json", None, True),
    ("EvaluateFunction", "s3:GetObject", "models/v1/THEFT.json", None, False),
    ("EvaluateFunction", "s3:PutObject", "counts/current.json", None, False),
    # the rest never touch the bucket
    ("AuthFunction", "s3:GetObject", "counts/current.json", None, False),
    ("AuthorizerFunction", "s3:GetObject", "boundaries/community_areas.geojson", None, False),
    ("RetrainFunction", "s3:GetObject", "runs/retrain-1/manifest.json", None, False),
    ("RetrainFailFunction", "s3:GetObject", "runs/retrain-1/manifest.json", None, False),
]


@pytest.mark.parametrize(("function", "action", "key", "prefix", "allowed"), S3_CASES)
def test_each_function_reaches_only_its_prefixes_of_the_data_bucket(policies: dict[str, list[dict[str, Any]]], function: str,
                                                                    action: str, key: str | None, prefix: str | None,
                                                                    allowed: bool) -> None:
    resource = BUCKET if key is None else _object(key)
    context = {} if prefix is None else {"s3:prefix": prefix}
    assert decide(policies[function], action, resource, context) == ("Allow" if allowed else "None")


def test_no_function_may_do_more_to_the_bucket_than_read_write_delete_or_list_objects(
        policies: dict[str, list[dict[str, Any]]]) -> None:
    """No SAM S3 policy template (S3CrudPolicy allowed ACLs, lifecycle and deletes bucket-wide)."""
    for name in FUNCTIONS:
        assert not any(key.startswith("S3") for p in TEMPLATE["Resources"][name]["Properties"].get("Policies", [])
                       if isinstance(p, dict) for key in p), name
        actions = {a for document in policies.get(name, []) for s in document["Statement"]
                   for a in listed(s.get("Action", [])) if str(a).startswith("s3:")}
        assert actions <= {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}, name


@pytest.mark.parametrize(("function", "action", "resource", "allowed"), [
    ("RetrainTrainFunction", "dynamodb:BatchWriteItem", SERIES, False),  # its forecasts go to S3; promote stores them
    ("RetrainTrainFunction", "dynamodb:GetItem", SERIES, False),
    ("RetrainTrainFunction", "dynamodb:DeleteItem", SERIES, False),
    ("RetrainTrainFunction", "dynamodb:Scan", SERIES, False),
    ("PredictFunction", "dynamodb:GetItem", SERIES, True),
    ("PredictFunction", "dynamodb:Query", f"{SERIES}/index/ByTypeVersion", True),
    ("PredictFunction", "dynamodb:Scan", SERIES, False),
    ("PredictFunction", "dynamodb:PutItem", SERIES, False),
    ("PredictFunction", "dynamodb:BatchGetItem", SERIES, False),
])
def test_the_train_function_has_no_series_table_and_predict_only_gets_and_queries(
        policies: dict[str, list[dict[str, Any]]], function: str, action: str, resource: str, allowed: bool) -> None:
    assert decide(policies[function], action, resource) == ("Allow" if allowed else "None")


def _resolved(translated: dict[str, Any], logical_id: str, field: str) -> dict[str, Any]:
    """A resource policy of the translated template, with this stack's names (roles as IAM names them)."""
    physical = iam.physical_names(TEMPLATE, {"DATA_BUCKET": "data"})
    physical |= {name: {"Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"} for name, resource in
                 translated["Resources"].items() if resource["Type"] == "AWS::IAM::Role"}
    return iam.Resolver(translated, physical).value(translated["Resources"][logical_id]["Properties"][field])


def test_the_data_bucket_refuses_every_request_without_tls(translated: dict[str, Any]) -> None:
    policy = _resolved(translated, "DataBucketPolicy", "PolicyDocument")
    admin = f"arn:aws:iam::{ACCOUNT}:role/admin"
    for action, resource in (("s3:GetObject", _object("counts/current.json")), ("s3:ListBucket", BUCKET),
                             ("s3:PutObject", _object("models/v1/a.json"))):
        plain = decide([policy], action, resource, {"aws:SecureTransport": "false"}, principal=admin)
        assert plain == "Deny", action
        assert decide([policy], action, resource, {"aws:SecureTransport": "true"}, principal=admin) == "None"


def _on_key(translated: dict[str, Any], role: str, action: str, account: str = ACCOUNT) -> str:
    policy = _resolved(translated, "JwtSigningKeyPolicy", "ResourcePolicy")
    arn = f"arn:aws:iam::{account}:role/{role}"
    return decide([policy], action, "*", {"aws:PrincipalArn": arn, "aws:PrincipalAccount": account}, principal=arn)


def test_only_the_auth_functions_may_read_the_signing_key_whatever_their_roles_say(translated: dict[str, Any]) -> None:
    """The key's resource policy denies (an explicit Deny beats any Allow a role is given later)."""
    for function in FUNCTIONS:
        expected = "None" if function in ("AuthFunction", "AuthorizerFunction") else "Deny"
        assert _on_key(translated, f"{function}Role", "secretsmanager:GetSecretValue") == expected, function
        assert _on_key(translated, f"{function}Role", "secretsmanager:PutSecretValue") == "Deny", function
        assert _on_key(translated, f"{function}Role", "secretsmanager:DeleteSecret") == "Deny", function
    # an operator's role of this account (`keys rotate`) is left to its own grants
    assert _on_key(translated, "operator", "secretsmanager:PutSecretValue") == "None"
    assert _on_key(translated, "operator", "secretsmanager:GetSecretValue", account="999999999999") == "Deny"
    key = translated["Resources"]["JwtSigningKeyPolicy"]["Properties"]
    assert key["SecretId"] == {"Ref": "JwtSigningKey"} and key["BlockPublicPolicy"] is True


def test_every_function_logs_to_its_own_group_with_retention() -> None:
    groups = resources_of_type(TEMPLATE, "AWS::Logs::LogGroup")
    used = []
    for name in FUNCTIONS:
        group = TEMPLATE["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups, name
        used.append(group)
    assert len(set(used)) == len(FUNCTIONS)
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] in TEMPLATE["Parameters"]["LogRetentionDays"]["AllowedValues"]


def test_the_functions_that_can_run_away_have_reserved_concurrency() -> None:
    """Ingest invokes itself; train fans out in the Map and runs third-party code: neither may
    take the account's concurrency (and starve the API)."""
    resources = TEMPLATE["Resources"]
    assert resources["RetrainTrainFunction"]["Properties"]["ReservedConcurrentExecutions"] == {"Ref": "RetrainMaxConcurrency"}
    assert 1 <= resources["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"] <= 10


def test_the_buckets_have_acls_off() -> None:
    for name, bucket in resources_of_type(TEMPLATE, "AWS::S3::Bucket").items():
        rules = bucket["Properties"]["OwnershipControls"]["Rules"]
        assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}], name


def test_every_checkov_exception_names_its_check_and_a_reason() -> None:
    skipped = 0
    for name, resource in TEMPLATE["Resources"].items():
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), name
            assert len(skip.get("comment", "").split()) >= 8, f"{name} skips {skip['id']} without a reason"
            skipped += 1
    assert skipped > 0
