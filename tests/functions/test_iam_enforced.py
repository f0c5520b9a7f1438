"""The template's IAM, enforced: each function's calls signed with its own role's session (the
SAM translator's statements for template.yaml), moto checking them. The main flows work as
granted; a statement taken out of a copy of the template fails its route as AWS would."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import ClientError
import pytest

from crimecast.jobs import accounts, ingest, pipeline, retrain, runs
from local.template import load_template
from tests.conftest import REPO
from tests.functions.conftest import body, load_event
from tests.functions.test_api import _publish
from tests.functions.test_ingest_then_evaluate import _write


def _without(template: dict[str, Any], function: str, policy_template: str, resource: str) -> dict[str, Any]:
    """A copy of the template without one of a function's policies (a SAM policy template on a resource)."""
    changed = copy.deepcopy(template)
    policies = changed["Resources"][function]["Properties"]["Policies"]
    kept = [p for p in policies if not (isinstance(p, dict) and policy_template in p
                                        and resource in json.dumps(p[policy_template]))]
    assert len(kept) == len(policies) - 1, f"{function} has no {policy_template} on {resource}"
    changed["Resources"][function]["Properties"]["Policies"] = kept
    return changed


def _get(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("predict-predict"))
    event.update(path=path, resource=path, queryStringParameters=query,
                 multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None)
    return event


def _login_event(username: str, password: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("ingest-api"))
    event.update(path="/auth/token", resource="/auth/token", httpMethod="POST",
                 body=urlencode({"grant_type": "password", "username": username, "password": password}))
    event["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    event["requestContext"].pop("authorizer")
    return event


def test_the_roles_are_enforced_a_function_cannot_reach_what_it_was_not_granted(iam_roles, aws) -> None:
    roles = iam_roles()
    with roles.as_function("PredictFunction"), pytest.raises(ClientError) as denied:
        aws.runs.get("ingest-nothing")  # the predict function has no grant on the runs table
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"  # DynamoDB's words
    assert "dynamodb:GetItem on resource: arn:aws:dynamodb:" in str(denied.value)
    with pytest.raises(ClientError) as unsigned:  # keys moto does not know: refused, as on AWS
        boto3.client("dynamodb", aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x").list_tables()
    assert unsigned.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_predict_serves_with_its_grants(iam_roles, aws) -> None:
    _publish(aws, {25: 80.0, None: 900.0})
    roles = iam_roles()
    answer = roles.invoke("PredictFunction", _get("/predict", {"community_area": "Austin", "crime_type": "ASSAULT"}))
    assert answer["statusCode"] == 200, answer["body"]
    ranked = roles.invoke("PredictFunction", _get("/predict/map", {"crime_type": "ASSAULT"}))  # the GSI query
    assert ranked["statusCode"] == 200, ranked["body"]


def test_without_its_read_grant_on_the_series_table_predict_fails_with_an_internal_error(iam_roles, aws) -> None:
    _publish(aws, {25: 80.0, None: 900.0})
    template = _without(load_template(REPO / "template.yaml"), "PredictFunction", "DynamoDBReadPolicy", "SeriesTable")
    roles = iam_roles(template)
    answer = roles.invoke("PredictFunction", _get("/predict", {"community_area": "Austin", "crime_type": "ASSAULT"}))
    assert answer["statusCode"] == 500  # API Gateway passes the function's 500 on
    assert body(answer)["error"]["code"] == "internal_error"
    assert "AccessDenied" not in answer["body"] and "arn:" not in answer["body"] and "Traceback" not in answer["body"]
    assert roles.invoke("PredictFunction", _get("/health"))["statusCode"] == 200  # no table on that route


def test_sign_in_the_authorizer_and_me_work_with_their_grants(iam_roles, aws) -> None:
    accounts.add_user(aws, "alice", "wonderland-12", "viewer")
    roles = iam_roles()
    signed_in = roles.invoke("AuthFunction", _login_event("alice", "wonderland-12"))
    assert signed_in["statusCode"] == 200, signed_in["body"]
    token = body(signed_in)["access_token"]
    policy = roles.invoke("AuthorizerFunction", {"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                                                 "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/dev/GET/auth/me"})
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    event = copy.deepcopy(load_event("auth-me"))
    event["requestContext"]["authorizer"] = {"principalId": policy["principalId"], **policy["context"]}
    me = roles.invoke("AuthFunction", event)
    assert me["statusCode"] == 200 and body(me)["username"] == "alice"


def test_without_its_secret_grant_the_authorizer_fails_every_request(iam_roles, aws) -> None:
    accounts.add_user(aws, "alice", "wonderland-12", "viewer")
    roles = iam_roles()
    token = body(roles.invoke("AuthFunction", _login_event("alice", "wonderland-12")))["access_token"]
    template = _without(load_template(REPO / "template.yaml"), "AuthorizerFunction",
                        "AWSSecretsManagerGetSecretValuePolicy", "JwtSigningKey")
    denied = iam_roles(template)
    with pytest.raises(Exception, match="AccessDeniedException"):  # not "Unauthorized": API Gateway answers 500
        denied.invoke("AuthorizerFunction", {"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                                             "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc/dev/GET/auth/me"})


def test_an_ingest_publishes_evaluates_and_starts_the_retrain_as_the_ingest_function(iam_roles, aws, tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, 72, degrade=False)
    _write(second, 78, degrade=True)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert retrain.run_locally(aws, workers=1)["promoted"]
    roles = iam_roles()
    with roles.as_function("IngestFunction"):  # what the API path and then the worker invocation do
        queued = ingest.open_run(aws, "test", mode="backfill", source_label="file:second.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(second))
    assert view["status"] == "succeeded", view
    live = view["detail"]["live_evaluation"]
    assert live["series_evaluated"] >= 3 and live["retrain"]["started"] is True, live
    started = runs.get_run(aws, live["retrain"]["run_id"], admin=True)  # the ARN: an admin's view
    assert started["status"] == "queued" and started["detail"]["execution_arn"]


def test_without_start_execution_the_ingest_publishes_and_the_evaluation_and_retrain_end_failed(iam_roles, aws,
                                                                                                 tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, 72, degrade=False)
    _write(second, 78, degrade=True)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert retrain.run_locally(aws, workers=1)["promoted"]
    template = _without(load_template(REPO / "template.yaml"), "IngestFunction", "StepFunctionsExecutionPolicy",
                        "RetrainStateMachine")
    roles = iam_roles(template)
    with roles.as_function("IngestFunction"):
        queued = ingest.open_run(aws, "test", mode="backfill", source_label="file:second.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(second))
    assert view["status"] == "succeeded"  # the counts are published; what failed after is noted on the run
    assert view["detail"]["live_evaluation"]["error_code"] == "internal"
    assert "AccessDenied" not in json.dumps(view) and "arn:" not in json.dumps(view)
    (retrain_run,) = [r for r in runs.recent_runs(aws, "retrain") if r["detail"]["trigger"] == "evaluate"]
    assert retrain_run["status"] == "failed"  # its lease released: a later start may run
    (evaluation,) = runs.recent_runs(aws, "evaluate")
    assert evaluation["status"] == "failed"  # not left queued (it was, before this test)


def test_post_retrain_and_the_workflow_steps_run_with_their_grants(iam_roles, aws, tmp_path) -> None:
    first = tmp_path / "first.csv"
    _write(first, 72, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    roles = iam_roles()
    started = roles.invoke("RetrainFunction", load_event("retrain-api"))
    assert started["statusCode"] == 202, started["body"]
    run_id = body(started)["run_id"]
    assert body(started)["detail"]["execution_arn"]
    plan = roles.invoke("RetrainPlanFunction", {"run_id": run_id})
    batches = aws.blobs.get_json(plan["batches_key"])
    outputs = [roles.invoke("RetrainTrainFunction", batch) for batch in batches]
    promoted = roles.invoke("RetrainPromoteFunction", {"run_id": run_id, "version": plan["version"], "results": outputs})
    assert promoted["status"] == "succeeded", promoted
    watched = copy.deepcopy(load_event("evaluate-run"))
    watched["path"], watched["pathParameters"] = f"/runs/{run_id}", {"run_id": run_id}
    answer = roles.invoke("EvaluateFunction", watched)
    assert answer["statusCode"] == 200 and body(answer)["status"] == "succeeded"
