"""`make demo`'s retrain is a Step Functions execution of the template's own definition, and
the stack survives being killed in the middle of one: started again, the champion serves and
a new retrain completes."""

from __future__ import annotations

import signal
import time

import pytest

from crimecast.jobs.forecasts import SERVING_CACHE_S
from tests.integration.conftest import PASSWORD, request, running_stack


def _token(base: str) -> str:
    status, token = request(f"{base}/auth/token", {"grant_type": "password", "username": "admin", "password": PASSWORD})
    assert status == 200, token
    return str(token["access_token"])


def _run(base: str, token: str, run_id: str) -> dict:
    status, run = request(f"{base}/runs/{run_id}", token=token)
    assert status == 200, run
    return run


def _until(condition, timeout: float, what: str) -> None:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not seen in {timeout:.0f} s")
        time.sleep(0.1)


def _predict(base: str, token: str) -> dict:
    status, prediction = request(f"{base}/predict?community_area=Austin&crime_type=ALL&months=6", token=token)
    assert status == 200, prediction
    return prediction


@pytest.mark.parametrize("faults", ["", "dynamodb:0.05,s3:0.05,lambda:0.05"], ids=["clean", "with-faults"])
def test_killed_in_the_middle_of_a_retrain_then_started_again(tmp_path, faults: str) -> None:
    env = {"CRIMECAST_MODEL_CACHE": str(tmp_path / "model-cache"), "CRIMECAST_FAULTS": faults, "CRIMECAST_FAULTS_SEED": "3"}
    with running_stack(tmp_path, env) as stack:
        assert ("fault injection (CRIMECAST_FAULTS)" in stack.log.read_text()) is bool(faults)
        token = _token(stack.base)
        champion = _predict(stack.base, token)["model_version"]
        status, started = request(f"{stack.base}/retrain", token=token, method="POST", json_body={})
        assert status == 202 and started["detail"]["execution_arn"].startswith("arn:aws:states:"), started
        _until(lambda: _run(stack.base, token, started["run_id"])["status"] == "running", 60, "the retrain running")
        stack.process.send_signal(signal.SIGKILL)  # no shut-down at all
        stack.process.wait(30)
    with running_stack(tmp_path, env) as again:
        token = _token(again.base)
        assert _predict(again.base, token)["model_version"] == champion  # restored: the same data and code
        status, started = request(f"{again.base}/retrain", token=token, method="POST", json_body={})
        assert status == 202, started  # no stale lease blocks it
        _until(lambda: _run(again.base, token, started["run_id"])["status"] in ("succeeded", "failed"), 180, "its end")
        run = _run(again.base, token, started["run_id"])
        assert run["status"] == "succeeded", run
        workflow = run["detail"]["workflow"]
        assert workflow["status"] == "SUCCEEDED"
        assert [s["state"] for s in workflow["states"]] == ["Plan", "Train", "Promote", "Outcome", "Done"]
        assert all(s["outcome"] == "succeeded" for s in workflow["states"])
        served = run["detail"]["version"] if run["detail"]["promotion"]["promoted"] else champion
        # the promotion ran in a function of its own (a sandbox): the read routes keep the champion
        # pointer SERVING_CACHE_S per warm container, as on AWS
        _until(lambda: _predict(again.base, token)["model_version"] == served, SERVING_CACHE_S + 15, "the promoted version served")
