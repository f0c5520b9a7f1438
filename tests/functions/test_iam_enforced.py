"""The template's IAM, enforced: each function's calls signed with its own role's session (the
SAM translator's statements for template.yaml), moto checking them. The main flows work as
granted; a statement taken out of a copy of the template fails its route as AWS would."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.exceptions import ClientError
import pytest

from crimecast.adapters.aws import client
from crimecast.adapters.blobs import BOUNDARIES_KEY
from crimecast.adapters.launcher import AwsLauncher
from crimecast.adapters.stores import use_stores
from crimecast.domain.errors import NotFoundError
from crimecast.jobs import accounts, ingest, pipeline, retrain, runs
from local.aws import iam_calls
from local.aws.iam_calls import read_calls, refusal_expected
from local.aws.template import load_template, references
from tests.conftest import REPO
from tests.functions.conftest import body, load_event
from tests.functions.test_api import _publish
from tests.functions.test_ingest_then_evaluate import _write


def _without(template: dict[str, Any], function: str, policy_template: str, resource: str) -> dict[str, Any]:
    """A copy of the template without one of a function's policies on a resource: a SAM policy
    template, or (``policy_template="Statement"``) the written-out statements that name it."""
    changed = copy.deepcopy(template)
    policies = changed["Resources"][function]["Properties"]["Policies"]
    kept = [p for p in policies if not (isinstance(p, dict) and policy_template in p
                                        and resource in references(p[policy_template]))]
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


def test_the_roles_are_enforced_a_function_cannot_reach_what_it_was_not_granted(iam_roles, aws, caplog) -> None:
    roles = iam_roles()
    with roles.as_function("PredictFunction"), refusal_expected(), pytest.raises(ClientError) as denied:
        aws.runs.get("ingest-nothing")  # the predict function has no grant on the runs table
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"  # DynamoDB's words
    assert "dynamodb:GetItem on resource: arn:aws:dynamodb:" in str(denied.value)
    # logged as an error naming the call and the role, whatever the code does with the exception
    (logged,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert logged.startswith("dynamodb GetItem refused to arn:aws:sts::123456789012:assumed-role/test1-PredictFunction/")
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
    template = _without(load_template(REPO / "template.yaml"), "PredictFunction", "Statement", "SeriesTable")
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


def _a_champion_then_degraded_months(aws, tmp_path) -> Path:
    """A backfill and its promoted retrain; the file of the degraded months that follow it."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _write(first, 72, degrade=False)
    _write(second, 78, degrade=True)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert retrain.run_locally(aws, workers=1)["promoted"]
    return second


def test_an_ingest_publishes_evaluates_and_starts_the_retrain_as_the_ingest_function(iam_roles, aws, tmp_path) -> None:
    second = _a_champion_then_degraded_months(aws, tmp_path)
    roles = iam_roles()
    stale = _a_lease_held_by_an_aborted_execution(roles)  # the retrain it starts takes the lease over
    with roles.as_function("IngestFunction"):  # what the API path and then the worker invocation do
        queued = ingest.open_run(aws, "test", mode="backfill", source_label="file:second.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(second))
    assert view["status"] == "succeeded", view
    live = view["detail"]["live_evaluation"]
    assert live["series_evaluated"] >= 3 and live["retrain"]["started"] is True, live
    started = runs.get_run(aws, live["retrain"]["run_id"], admin=True)  # the ARN: an admin's view
    assert started["status"] == "queued" and started["detail"]["execution_arn"]
    assert runs.get_run(aws, stale["run_id"], admin=True)["status"] == "failed"  # states:DescribeExecution


def test_post_ingest_starts_its_worker_by_invoking_the_ingest_function_itself(iam_roles, aws, functions,
                                                                           monkeypatch) -> None:
    """The API path's worker is an asynchronous invocation of the function itself (as Lambda names
    it in the context), on the embedded Lambda: lambda:InvokeFunction on its own ARN, granted."""
    started: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(functions, "invoke_async", lambda codeuri, handler, event, *args, **kwargs:
                        started.append((f"{codeuri}{handler}", event)))  # the worker itself is tested elsewhere
    use_stores(aws.with_launcher(AwsLauncher()))
    roles = iam_roles()
    answer = roles.invoke("IngestFunction", load_event("ingest-api"))
    assert answer["statusCode"] == 202, answer["body"]
    assert started == [("functions/ingest/app.lambda_handler", ingest.worker_event(body(answer)["run_id"]))]


def test_without_start_execution_the_ingest_publishes_and_the_evaluation_and_retrain_end_failed(iam_roles, aws,
                                                                                                 tmp_path) -> None:
    second = _a_champion_then_degraded_months(aws, tmp_path)
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


# --- the data bucket, prefix by prefix --------------------------------------------------------

MODEL_KEY = "models/v20260101T000000Z/25:THEFT.json"


def _denied(call: Any) -> str:
    """The error code of a call the test expects refused (a probe, not a code path: local/aws/iam_calls.py)."""
    with refusal_expected(), pytest.raises(ClientError) as denied:
        call()
    return denied.value.response["Error"]["Code"]


def test_ingest_cannot_delete_overwrite_read_or_list_the_models(iam_roles, aws, caplog) -> None:
    aws.blobs.put_bytes(MODEL_KEY, b"{}")
    aws.blobs.put_bytes("counts/staging/ingest-1/2024-01.csv.gz", b"staged")
    roles = iam_roles()
    with roles.as_function("IngestFunction"):
        # DeleteObjects decides key by key, as S3 does
        with refusal_expected():
            refused = aws.blobs.delete_keys([MODEL_KEY, "counts/staging/ingest-1/2024-01.csv.gz"])
        assert _denied(lambda: aws.blobs.put_bytes(MODEL_KEY, b"overwritten")) == "AccessDenied"
        assert _denied(lambda: aws.blobs.get_bytes(MODEL_KEY)) == "AccessDenied"
        assert _denied(lambda: aws.blobs.list_keys("models/")) == "AccessDenied"
        assert _denied(lambda: aws.blobs.put_json("runs/retrain-1/manifest.json", {})) == "AccessDenied"
        # a copy reads its source with the caller's rights: no model smuggled into the counts
        assert _denied(lambda: aws.blobs.copy(MODEL_KEY, "counts/staging/ingest-1/copied")) == "AccessDenied"
        assert _denied(lambda: client("s3").put_bucket_lifecycle_configuration(
            Bucket=aws.blobs.bucket, LifecycleConfiguration={"Rules": []})) == "AccessDenied"
    assert [(e["Key"], e["Code"]) for e in refused] == [(MODEL_KEY, "AccessDenied")]
    (logged,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "DeleteObject" in r.getMessage()]
    assert logged.startswith("s3:DeleteObject refused to arn:aws:sts::123456789012:assumed-role/test1-IngestFunction/")
    assert logged.endswith(f"on 1 of 2 objects: {MODEL_KEY}")  # S3's entry names neither: the log does
    assert aws.blobs.get_bytes(MODEL_KEY) == b"{}"  # untouched
    assert aws.blobs.list_keys("counts/staging/") == []  # its own staged chunk did go


def test_train_writes_models_and_its_result_and_cannot_change_the_counts(iam_roles, aws) -> None:
    aws.blobs.put_json("counts/current.json", {"version": "v1"})
    roles = iam_roles()
    with roles.as_function("RetrainTrainFunction"):
        aws.blobs.put_bytes(MODEL_KEY, b"{}")
        aws.blobs.put_json("runs/retrain-1/results/00000.json", {"trained": [], "failed": []})
        assert _denied(lambda: aws.blobs.put_json("counts/current.json", {"version": "forged"})) == "AccessDenied"
        assert _denied(lambda: aws.blobs.put_json("runs/retrain-1/manifest.json", {})) == "AccessDenied"
        with refusal_expected():
            assert [e["Code"] for e in aws.blobs.delete_keys([MODEL_KEY])] == ["AccessDenied"]
        assert _denied(lambda: client("s3").put_object_acl(Bucket=aws.blobs.bucket, Key=MODEL_KEY,
                                                           ACL="public-read")) == "AccessDenied"
    assert aws.blobs.get_json("counts/current.json") == {"version": "v1"}
    assert aws.blobs.get_bytes(MODEL_KEY) == b"{}"


def test_a_missing_key_reads_as_none_only_to_a_function_that_may_list_its_prefix(iam_roles, aws, caplog) -> None:
    """S3 answers AccessDenied for a missing key to a caller who may not list it: predict may list
    the boundaries' prefix, so a map before the first portal ingest is "not there yet"; the train
    function may not, so the same read stays refused (a refusal is never taken for absence)."""
    roles = iam_roles()
    with roles.as_function("PredictFunction"):
        assert aws.blobs.get_bytes(BOUNDARIES_KEY) is None
    with roles.as_function("RetrainTrainFunction"):
        assert _denied(lambda: aws.blobs.get_bytes(BOUNDARIES_KEY)) == "AccessDenied"
        assert aws.blobs.get_json("counts/versions/v-gone/manifest.json") is None  # its own prefix: absent
    aws.blobs.put_bytes(BOUNDARIES_KEY, b"{}")
    caplog.clear()
    with roles.as_function("RetrainTrainFunction"):
        assert _denied(lambda: aws.blobs.get_bytes(BOUNDARIES_KEY)) == "AccessDenied"
    role = "arn:aws:sts::123456789012:assumed-role/test1-RetrainTrainFunction/RetrainTrainFunction"
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [  # a missing grant, not a missing key
        f"s3 ListObjectsV2 refused to {role}: Access Denied", f"s3 GetObject of {BOUNDARIES_KEY} refused to {role}"]


def test_predict_serves_every_read_route_with_its_grants(iam_roles, aws) -> None:
    _publish(aws, {25: 80.0, None: 900.0})
    roles = iam_roles()
    assert roles.invoke("PredictFunction", _get("/boundaries"))["statusCode"] == 404  # not stored yet: not a 500
    aws.blobs.put_bytes(BOUNDARIES_KEY, b'{"type": "FeatureCollection", "features": []}')
    for path, query in (("/boundaries", None), ("/catalog", None), ("/alerts", None),
                        ("/predict/map", {"crime_type": "ASSAULT"})):
        answer = roles.invoke("PredictFunction", _get(path, query))
        assert answer["statusCode"] == 200, (path, answer["body"])


def _post_evaluate() -> dict[str, Any]:
    event = load_event("retrain-api")
    event.update(path="/evaluate", resource="/evaluate")
    return event


def test_post_evaluate_without_counts_answers_without_an_access_error(iam_roles, aws) -> None:
    """A champion but no serving counts pointer: S3 refuses the missing key to the evaluate
    function, whose listing of counts/ then tells it is missing (a 4xx, not a 500)."""
    _publish(aws, {25: 80.0, None: 900.0})
    answer = iam_roles().invoke("EvaluateFunction", _post_evaluate())
    assert answer["statusCode"] == 400 and "no monthly counts" in body(answer)["error"]["message"], answer["body"]
    assert "AccessDenied" not in answer["body"]


def test_post_evaluate_of_degraded_months_takes_over_a_dead_lease_and_starts_a_retrain(iam_roles, aws, tmp_path) -> None:
    second = _a_champion_then_degraded_months(aws, tmp_path)
    view = pipeline.ingest_now(aws, "test", ingest.FileSource(second), mode="backfill")
    stale = runs.get_run(aws, view["detail"]["live_evaluation"]["retrain"]["run_id"], admin=True)
    boto3.client("stepfunctions").stop_execution(executionArn=stale["detail"]["execution_arn"])  # ended unrecorded
    answer = iam_roles().invoke("EvaluateFunction", _post_evaluate())
    assert answer["statusCode"] == 200, answer["body"]
    assert body(answer)["detail"]["retrain"]["started"] is True, body(answer)  # states:StartExecution
    assert runs.get_run(aws, stale["run_id"], admin=True)["status"] == "failed"  # states:DescribeExecution


def test_promote_tells_a_missing_map_results_manifest_from_a_refused_one(iam_roles, aws) -> None:
    """The manifest is not there: NotFound through the promote function's listing of runs/, not AccessDenied."""
    with iam_roles().as_function("RetrainPromoteFunction"), pytest.raises(NotFoundError, match="no Map results manifest"):
        retrain.map_run_outputs(aws, {"Bucket": aws.blobs.bucket, "Key": "runs/map-results/gone/manifest.json"})


def test_post_evaluate_reads_the_counts_with_its_grants(iam_roles, aws, tmp_path) -> None:
    first = tmp_path / "first.csv"
    _write(first, 72, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    assert retrain.run_locally(aws, workers=1)["promoted"]
    answer = iam_roles().invoke("EvaluateFunction", _post_evaluate())
    assert answer["statusCode"] == 200, answer["body"]
    assert body(answer)["status"] == "succeeded"


def _recent(path, first_month: str, months: int) -> None:
    """A file of the last months only (the three areas of ``_write``)."""
    import pandas as pd

    from tests.conftest import seasonal_series, tidy_frame

    frames = [tidy_frame(seasonal_series(first_month, months, level=level, seed=area), area, "THEFT")
              for area, level in {25: 80, 8: 300, 24: 150}.items()]
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def test_an_incremental_ingest_copies_the_years_it_does_not_fetch_as_the_ingest_function(iam_roles, aws,
                                                                                         tmp_path) -> None:
    first, recent = tmp_path / "first.csv", tmp_path / "recent.csv"
    _write(first, 72, degrade=False)  # 2018-01 .. 2023-12
    _recent(recent, "2023-07", 8)  # 2023-07 .. 2024-02
    pipeline.ingest_now(aws, "test", ingest.FileSource(first), mode="backfill")
    roles = iam_roles()
    with roles.as_function("IngestFunction"):
        queued = ingest.open_run(aws, "test", mode="incremental", source_label="file:recent.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(recent))
    assert view["status"] == "succeeded", view
    manifest = aws.blobs.get_json("counts/current.json")
    version = view["detail"]["version"]
    assert manifest["version"] == version and manifest["last_month"] == "2024-02"
    assert all(part["key"].startswith(f"counts/versions/{version}/") for part in manifest["parts"].values())
    assert set(manifest["parts"]) == {str(y) for y in range(2018, 2025)}  # 2018-2022 copied server-side


def test_a_first_ingest_into_an_empty_bucket_runs_as_the_ingest_function(iam_roles, aws, tmp_path) -> None:
    """The serving pointer is not there yet: the ingest's listing of counts/ tells it so (S3 would
    answer AccessDenied to its GetObject), and the incremental run turns into a backfill."""
    first = tmp_path / "first.csv"
    _write(first, 24, degrade=False)
    roles = iam_roles()
    with roles.as_function("IngestFunction"):
        queued = ingest.open_run(aws, "test", mode="incremental", source_label="file:first.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(first))
    assert view["status"] == "succeeded", view
    assert view["detail"]["mode"] == "backfill" and "no counts stored yet" in view["detail"]["note"]


def test_without_its_listing_grant_a_first_ingest_fails_rather_than_guess(iam_roles, aws, tmp_path) -> None:
    """Local IAM is as strict as S3: the missing pointer is AccessDenied, and the run says it failed."""
    first = tmp_path / "first.csv"
    _write(first, 24, degrade=False)
    template = load_template(REPO / "template.yaml")
    (bucket,) = [p for p in template["Resources"]["IngestFunction"]["Properties"]["Policies"]
                 if isinstance(p, dict) and "DataBucket" in references(p.get("Statement", []))]
    bucket["Statement"] = [s for s in bucket["Statement"] if s["Action"] != "s3:ListBucket"]
    roles = iam_roles(template)
    with roles.as_function("IngestFunction"):
        queued = ingest.open_run(aws, "test", mode="incremental", source_label="file:first.csv")
        view = pipeline.ingest_worker(aws, queued["run_id"], source=ingest.FileSource(first))
    assert view["status"] == "failed" and aws.blobs.get_json("counts/current.json") is None


def _a_lease_held_by_an_aborted_execution(roles: Any) -> dict[str, Any]:
    """A retrain run started as the retrain function (its execution recorded, then aborted by
    hand, so its run never ends): what the next start must take over."""
    first = roles.invoke("RetrainFunction", load_event("retrain-api"))
    assert first["statusCode"] == 202, first["body"]
    assert roles.invoke("RetrainFunction", load_event("retrain-api"))["statusCode"] == 409  # it holds the lease
    boto3.client("stepfunctions").stop_execution(executionArn=body(first)["detail"]["execution_arn"])
    return body(first)


def test_the_retrain_function_takes_over_a_lease_whose_execution_ended_unrecorded(iam_roles, aws, tmp_path) -> None:
    _write(tmp_path / "first.csv", 72, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(tmp_path / "first.csv"), mode="backfill")
    roles = iam_roles()
    first = _a_lease_held_by_an_aborted_execution(roles)
    assert roles.invoke("RetrainFunction", load_event("retrain-api"))["statusCode"] == 202  # states:DescribeExecution
    stale = runs.get_run(aws, first["run_id"], admin=True)
    assert stale["status"] == "failed" and stale["detail"]["error_code"] == "workflow_failed"


def test_without_describe_execution_the_lease_stands_and_the_refusal_is_logged(iam_roles, aws, tmp_path, caplog) -> None:
    _write(tmp_path / "first.csv", 72, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(tmp_path / "first.csv"), mode="backfill")
    template = load_template(REPO / "template.yaml")  # as it was: DescribeExecution granted to ingest only
    policies = template["Resources"]["RetrainFunction"]["Properties"]["Policies"]
    template["Resources"]["RetrainFunction"]["Properties"]["Policies"] = [
        p for p in policies if "states:DescribeExecution" not in json.dumps(p)]
    roles = iam_roles(template)
    first = _a_lease_held_by_an_aborted_execution(roles)
    with caplog.at_level("ERROR", logger="crimecast.jobs.retrain"):
        assert roles.invoke("RetrainFunction", load_event("retrain-api"))["statusCode"] == 409  # AWS's answer then
    assert runs.get_run(aws, first["run_id"], admin=True)["status"] == "queued"
    refused = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("states:DescribeExecution" in m and "RetrainFunction" in m for m in refused), refused


# --- the calls recorded for the role coverage check (local/aws/iam_calls.py) -----------------------

SERIES = "arn:aws:dynamodb:us-east-1:123456789012:table/crimecast-local-SeriesTable"


def test_the_calls_of_a_role_are_recorded_with_the_templates_names(iam_roles, aws, tmp_path, monkeypatch) -> None:
    """Under IAM, a role of template.yaml: each decision once, its table named as the template's
    reference names it; a probe marked expected; a role of an altered template not at all."""
    record = tmp_path / "calls.jsonl"
    monkeypatch.setenv(iam_calls.RECORD_ENV, str(record))
    roles = iam_roles()
    with roles.as_function("PredictFunction"):
        for _ in range(2):
            aws.series.champion()
        with refusal_expected(), pytest.raises(ClientError):
            aws.runs.get("ingest-nothing")
    altered = copy.deepcopy(roles.template)
    altered["Resources"]["PredictFunction"]["Properties"]["Policies"] = []
    with iam_roles(altered).as_function("PredictFunction"), pytest.raises(ClientError):
        aws.series.champion()
    with pytest.raises(ClientError):  # keys moto does not know: no role, nothing recorded
        boto3.client("dynamodb", aws_access_key_id="AKIAUNKNOWN000000000", aws_secret_access_key="x").list_tables()
    calls = read_calls(record)
    assert [(c.role, c.action, c.resource, c.allowed, c.expected_refusal) for c in calls] == [
        ("PredictFunction", "dynamodb:GetItem", SERIES, True, False),
        ("PredictFunction", "dynamodb:GetItem", SERIES.replace("SeriesTable", "RunsTable"), False, True)]
    assert calls[0].test.startswith("tests/functions/test_iam_enforced.py::test_the_calls_of_a_role_are_recorded")


def test_the_schedule_before_any_counts_starts_a_retrain_without_an_access_error(iam_roles, aws) -> None:
    started = iam_roles().invoke("RetrainFunction", load_event("retrain-schedule"))  # S3 refuses the missing pointer
    assert started["status"] == "queued" and started["detail"]["trigger"] == "schedule"


def test_the_schedule_reads_the_counts_pointer_and_skips_counts_already_trained(iam_roles, aws, tmp_path) -> None:
    _write(tmp_path / "first.csv", 72, degrade=False)
    pipeline.ingest_now(aws, "test", ingest.FileSource(tmp_path / "first.csv"), mode="backfill")
    trained = retrain.run_locally(aws, workers=1, trigger="evaluate")
    skipped = iam_roles().invoke("RetrainFunction", load_event("retrain-schedule"))
    assert skipped["status"] == "succeeded" and skipped["detail"]["trained_by"] == trained["run_id"]
