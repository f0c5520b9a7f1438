"""Each function reads its environment once, at cold start, and names what is missing or
malformed there, rather than answering 500 on first use."""

from __future__ import annotations

import pytest

from crimecast import settings
from crimecast.adapters.stores import get_stores, use_stores
from crimecast.domain.errors import ConfigurationError
from tests.functions.conftest import load_function

# A variable each function needs, by the groups it checks (settings.PREDICT, ...).
NEEDS = {"predict": "SERIES_TABLE", "evaluate": "RUNS_TABLE", "ingest": "DATA_BUCKET", "retrain": "RUNS_TABLE",
         "auth": "JWT_SECRET_ARN"}


@pytest.mark.parametrize(("function", "variable"), NEEDS.items())
def test_a_function_without_a_variable_fails_at_cold_start_naming_it(aws, monkeypatch, function: str, variable: str) -> None:
    load_function(function)  # the complete environment imports cleanly
    monkeypatch.delenv(variable)
    settings.reset()  # a new container
    with pytest.raises(ConfigurationError, match=f"{variable} is not set"):
        load_function(function)


def test_every_problem_is_named_at_once() -> None:
    environ = {"DATA_BUCKET": "b", "CRIMECAST_BACKTEST_ORIGINS": "two"}
    with pytest.raises(ConfigurationError) as missing:
        settings.read(settings.StoreSettings, environ)
    assert "SERIES_TABLE is not set" in str(missing.value) and "RUNS_TABLE is not set" in str(missing.value)
    with pytest.raises(ConfigurationError, match="CRIMECAST_BACKTEST_ORIGINS='two' is not valid"):
        settings.read(settings.RetrainOptions, environ)


def test_values_are_typed_and_defaults_apply() -> None:
    assert settings.read(settings.LaunchSettings, {"AWS_LAMBDA_FUNCTION_NAME": "f"}).function_name == "f"
    assert settings.read(settings.RetrainTarget, {"RETRAIN_STATE_MACHINE_ARN": "arn"}).retrain_state_machine_arn == "arn"
    assert settings.read(settings.LiveThreshold, {}) == settings.LiveThreshold(0.01, 3)
    assert settings.read(settings.UserSettings, {"USERS_TABLE": "u", "JWT_SECRET_ARN": "arn"}).token_minutes == 30.0


def test_an_empty_optional_variable_counts_as_unset() -> None:
    assert settings.read(settings.LaunchSettings, {"AWS_LAMBDA_FUNCTION_NAME": ""}).function_name is None


def test_a_function_that_starts_retrains_needs_a_state_machine() -> None:
    with pytest.raises(ConfigurationError, match="RETRAIN_STATE_MACHINE_ARN is not set"):
        settings.read(settings.RetrainTarget, {})


def test_new_settings_rebuild_the_stores(aws, monkeypatch) -> None:
    use_stores(None)
    assert get_stores().blobs.bucket == "crimecast-test-data"
    monkeypatch.setenv("DATA_BUCKET", "another-bucket")
    assert get_stores().blobs.bucket == "crimecast-test-data"  # read once per process
    settings.reset()  # a new container
    assert get_stores().blobs.bucket == "another-bucket"


def test_the_drift_alarm_refuses_a_rate_outside_0_1() -> None:
    with pytest.raises(ConfigurationError, match="CRIMECAST_DRIFT_FDR=1.5 must be in"):
        settings.read(settings.LiveThreshold, {"CRIMECAST_DRIFT_FDR": "1.5"})
    assert settings.read(settings.LiveThreshold, {"CRIMECAST_DRIFT_FDR": "0.05"}).rule().q == 0.05
