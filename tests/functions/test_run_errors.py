"""Run records over HTTP: every signed-in user reads a failed run's error code and a safe
message; only an admin reads the exception text, which on AWS can name accounts and roles."""

from __future__ import annotations

import copy
import json
from typing import Any

from crimecast.domain.errors import InvalidInputError
from crimecast.jobs import ingest, retrain, runs
from tests.functions.conftest import body, invoke, load_event

ARN = "arn:aws:iam::123456789012:role/crimecast-prod-IngestFunctionRole-ABC123"
LEAK = f"User: {ARN} is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::crimecast-prod-data/counts"
ROLES = {"admin": "admin", "viewer": "viewer"}


class BrokenSource:
    """A source whose first call fails the way an AWS client does: with an ARN in its text."""

    def describe(self) -> str:
        return "broken"

    def window(self, *args: Any) -> Any:
        raise RuntimeError(LEAK)


def _get(path: str, role: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("evaluate-run"))
    event["path"], event["resource"] = path, "/runs/{run_id}" if path.count("/") == 2 else "/runs"
    event["pathParameters"] = {"run_id": path.rsplit("/", 1)[1]} if path.count("/") == 2 else None
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    event["requestContext"]["authorizer"] = {"principalId": "ann", "username": "ann", "roles": ROLES[role]}
    response = invoke("evaluate", event)
    assert response["statusCode"] == 200, response["body"]
    return body(response)


def _failed_ingest(aws) -> str:
    run_id = ingest.open_run(aws, "test")["run_id"]
    view = ingest.execute(aws, run_id, BrokenSource())
    assert view["status"] == "failed"
    return run_id


def test_an_unexpected_failure_shows_its_arn_to_an_admin_only(aws) -> None:
    run_id = _failed_ingest(aws)
    seen = _get(f"/runs/{run_id}", "viewer")
    assert seen["status"] == "failed" and ARN not in json.dumps(seen) and "error_detail" not in seen
    assert seen["detail"]["error_code"] == runs.INTERNAL and seen["detail"]["error"] == runs.INTERNAL_MESSAGE
    listed = _get("/runs", "viewer", {"kind": "ingest"})
    assert [r["run_id"] for r in listed["runs"]] == [run_id] and ARN not in json.dumps(listed)

    admin = _get(f"/runs/{run_id}", "admin")
    assert admin["detail"] == seen["detail"] and admin["error_detail"] == f"RuntimeError: {LEAK}"
    assert ARN in _get("/runs", "admin", {"kind": "ingest"})["runs"][0]["error_detail"]


def test_a_domain_error_keeps_its_message_for_everyone(aws) -> None:
    run_id = ingest.open_run(aws, "test")["run_id"]
    runs.fail_run(aws, run_id, InvalidInputError("the source holds no incident at all"))
    seen = _get(f"/runs/{run_id}", "viewer")
    assert seen["detail"]["error"] == "the source holds no incident at all"
    assert seen["detail"]["error_code"] == "invalid_input" and "error_detail" not in seen
    assert _get(f"/runs/{run_id}", "admin")["error_detail"] == "InvalidInputError: the source holds no incident at all"


def test_a_misconfiguration_is_internal(aws) -> None:
    """A ConfigurationError names the deployment's settings: not for viewers."""
    from crimecast.domain.errors import ConfigurationError

    error = runs.describe_error(ConfigurationError(f"environment variable X is not set ({ARN})"))
    assert error["code"] == runs.INTERNAL and ARN not in error["message"] and ARN in error["detail"]


def test_a_retrain_whose_workflow_crashes_records_a_safe_error(aws) -> None:
    run_id = runs.start_run(aws, "retrain", {"trigger": "test"})["run_id"]
    retrain.record_failure(aws, run_id, "Lambda.Unknown", f"PermissionError: {LEAK}")  # the workflow's Catch
    seen = _get(f"/runs/{run_id}", "viewer")
    assert seen["status"] == "failed" and seen["detail"]["error_code"] == "workflow_failed" and ARN not in json.dumps(seen)
    assert ARN in _get(f"/runs/{run_id}", "admin")["error_detail"]


def test_series_failures_of_a_retrain_show_their_text_to_an_admin_only(aws) -> None:
    run_id = runs.start_run(aws, "retrain", {"trigger": "test"})["run_id"]
    failed = [{"series": "25:THEFT", "code": runs.INTERNAL, "error": runs.INTERNAL_MESSAGE, "detail": f"ValueError: {LEAK}"},
              {"series": "24:THEFT", "code": "not_found", "error": "no series 24:THEFT", "detail": "NotFoundError: no series"}]
    aws.blobs.put_json(f"runs/{run_id}/results/00000.json", {"trained": [], "failed": failed})
    view = retrain.promote(aws, run_id, "v1", [{"result_key": f"runs/{run_id}/results/00000.json"}])
    assert view["status"] == "failed" and view["detail"]["error_code"] == "no_series_trained"
    seen = _get(f"/runs/{run_id}", "viewer")
    assert ARN not in json.dumps(seen) and "failure_details" not in seen
    assert seen["detail"]["failures"] == [{"series": "25:THEFT", "code": "internal", "error": runs.INTERNAL_MESSAGE},
                                          {"series": "24:THEFT", "code": "not_found", "error": "no series 24:THEFT"}]
    admin = _get(f"/runs/{run_id}", "admin")
    assert admin["failure_details"][0] == {"series": "25:THEFT", "error": f"ValueError: {LEAK}"}
