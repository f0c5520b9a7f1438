"""Each function reads its environment once, at cold start, and names what is missing or
malformed there, rather than answering 500 on first use."""

from __future__ import annotations

import pytest

from crimecast import settings
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
        settings.read(settings.LaunchSettings, environ)


def test_values_are_typed_and_defaults_apply() -> None:
    launch = settings.read(settings.LaunchSettings, {"CRIMECAST_INLINE_INGEST": "1", "CRIMECAST_RETRAIN_WORKERS": "2"})
    assert launch.inline_ingest is True and launch.inline_retrain is False and launch.retrain_workers == 2
    assert settings.read(settings.LiveThreshold, {}) == settings.LiveThreshold(1.25, 0.2)
    assert settings.read(settings.UserSettings, {"USERS_TABLE": "u", "JWT_SECRET_ARN": "arn"}).token_minutes == 30.0
