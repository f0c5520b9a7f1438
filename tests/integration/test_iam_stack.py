"""IAM on the local stack, with no setting: every function's calls and the state machine's are
signed with their role's session and checked. The same stack from a copy of the template whose
predict function has no policies cannot serve a forecast, while the retrain, whose roles are
untouched, runs through the state machine to a promotion."""

from __future__ import annotations

from pathlib import Path
import time

import yaml

from local.aws.template import load_template
from tests.conftest import REPO
from tests.integration.conftest import PASSWORD, request, running_stack


def _template_without_predict_grants(folder: Path) -> Path:
    template = load_template(REPO / "template.yaml")
    template["Resources"]["PredictFunction"]["Properties"]["Policies"] = []
    path = folder / "template-without-predict-grants.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return path


def test_predict_without_its_grants_fails_and_a_retrain_runs_through_the_state_machine(tmp_path: Path) -> None:
    env = {"CRIMECAST_TEMPLATE": str(_template_without_predict_grants(tmp_path))}
    with running_stack(tmp_path, env) as stack:
        assert "IAM enforced" in stack.log.read_text()
        status, answer = request(f"{stack.base}/auth/token",
                                 {"grant_type": "password", "username": "admin", "password": PASSWORD})
        assert status == 200, answer
        token = answer["access_token"]
        status, answer = request(f"{stack.base}/predict?community_area=25&crime_type=ALL&months=3", token=token)
        assert status == 500 and answer["error"]["code"] == "internal_error", (status, answer)
        status, started = request(f"{stack.base}/retrain", token=token, method="POST", json_body={})
        assert status == 202, started
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, run = request(f"{stack.base}/runs/{started['run_id']}", token=token)
            if run.get("status") in ("succeeded", "failed"):
                break
            time.sleep(1)
        assert run["status"] == "succeeded", run
        assert run["detail"]["promotion"]["promoted"] is True, run["detail"]["promotion"]
        assert [(s["state"], s["outcome"]) for s in run["detail"]["workflow"]["states"]][:3] == [
            ("Plan", "succeeded"), ("Train", "succeeded"), ("Promote", "succeeded")]
