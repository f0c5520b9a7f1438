"""The predict function stays light: a fresh interpreter imports it and answers requests
without loading pandas, numpy, Prophet or pydantic (its cold start depends on it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import json, sys
from types import SimpleNamespace
import app

context = SimpleNamespace(function_name="predict", memory_limit_in_mb=256, aws_request_id="r1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:predict")
event = json.load(open(sys.argv[1]))
health = app.lambda_handler(event, context)
event.update(path="/predict", resource="/predict", queryStringParameters={"months": "twelve"})
bad = app.lambda_handler(event, context)
heavy = [m for m in ("pandas", "numpy", "prophet", "pydantic") if m in sys.modules]
print(json.dumps({"health": health["statusCode"], "bad": bad["statusCode"], "bad_body": bad["body"], "heavy": heavy}))
"""


STORE_ENV = {"DATA_BUCKET": "crimecast-data", "SERIES_TABLE": "crimecast-series", "RUNS_TABLE": "crimecast-runs"}


def _run(script: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess:
    env = {**env, "PYTHONPATH": str(REPO / "shared"), "POWERTOOLS_TRACE_DISABLED": "1",
           "POWERTOOLS_METRICS_NAMESPACE": "Crimecast", "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([sys.executable, "-c", script, str(REPO / "events" / "predict-health.json")],
                          cwd=REPO / "functions" / "predict", env=env, capture_output=True, text=True, check=check)


def test_predict_answers_without_pandas_prophet_or_pydantic() -> None:
    done = _run(SCRIPT, {**os.environ, **STORE_ENV})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["health"] == 200
    assert result["bad"] == 422 and "months" in json.loads(result["bad_body"])["error"]["message"]
    assert result["heavy"] == []


def test_a_missing_variable_fails_the_cold_start_naming_it() -> None:
    env = {k: v for k, v in {**os.environ, **STORE_ENV}.items() if k != "SERIES_TABLE"}
    done = _run("import app", env, check=False)
    assert done.returncode != 0
    assert "ConfigurationError" in done.stderr and "SERIES_TABLE is not set" in done.stderr
    assert "DATA_BUCKET" not in done.stderr.splitlines()[-1]  # only what is missing is named
