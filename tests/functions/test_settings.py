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
    environ = {"DATA_BUCKET": "b", "CRIMECAST_BACKTEST_ORIGINS": "two", "CRIMECAST_INLINE_RETRAIN": "maybe"}
    with pytest.raises(ConfigurationError) as missing:
        settings.read(settings.StoreSettings, environ)
    assert "SERIES_TABLE is not set" in str(missing.value) and "RUNS_TABLE is not set" in str(missing.value)
    with pytest.raises(ConfigurationError, match="CRIMECAST_BACKTEST_ORIGINS='two' is not valid"):
        settings.read(settings.RetrainOptions, environ)
    with pytest.raises(ConfigurationError, match="CRIMECAST_INLINE_RETRAIN='maybe' is not valid"):
        settings.read(settings.RetrainTarget, environ)


def test_values_are_typed_and_defaults_apply() -> None:
    launch = settings.read(settings.LaunchSettings, {"CRIMECAST_INLINE_INGEST": "1", "CRIMECAST_RETRAIN_WORKERS": "2"})
    assert launch.inline_ingest is True and launch.retrain_workers == 2
    assert settings.read(settings.RetrainTarget, {"RETRAIN_STATE_MACHINE_ARN": "arn"}).inline_retrain is False
    assert settings.read(settings.LiveThreshold, {}) == settings.LiveThreshold(0.01, 1)
    assert settings.read(settings.UserSettings, {"USERS_TABLE": "u", "JWT_SECRET_ARN": "arn"}).token_minutes == 30.0


def test_an_empty_optional_variable_counts_as_unset() -> None:
    launch = settings.read(settings.LaunchSettings, {"CRIMECAST_RETRAIN_WORKERS": "", "CRIMECAST_INLINE_INGEST": ""})
    assert launch.retrain_workers is None and launch.inline_ingest is False


def test_a_function_that_starts_retrains_needs_a_state_machine_or_inline() -> None:
    with pytest.raises(ConfigurationError, match="RETRAIN_STATE_MACHINE_ARN is not set"):
        settings.read(settings.RetrainTarget, {})
    assert settings.read(settings.RetrainTarget, {"CRIMECAST_INLINE_RETRAIN": "1"}).inline_retrain


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
