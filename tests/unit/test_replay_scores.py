"""``bench/replay.py`` scores the service and the fixed policies on the same series each month:
the service stops forecasting a series that is no longer worth a model, the policies do not,
and a mean over different series is no comparison."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def replay_tool():
    spec = importlib.util.spec_from_file_location("bench_replay_scores", REPO / "bench" / "replay.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _forecast(yhat: float) -> dict[str, float]:
    return {"yhat": yhat, "yhat_lower": yhat - 1, "yhat_upper": yhat + 1}


def test_a_series_the_service_no_longer_forecasts_is_scored_for_no_one(replay_tool) -> None:
    month = "2017-03"
    results = [{"label": "8:THEFT", "scale": 10.0, "months": {month: {"actual": 100.0}}},
               {"label": "8:KIDNAPPING", "scale": 0.5, "months": {month: {"actual": 0.0}}}]
    published = {"8:THEFT": {month: _forecast(110.0)}}  # KIDNAPPING dropped by the service's retrain
    policies = {p: {"8:THEFT": {month: _forecast(105.0)}, "8:KIDNAPPING": {month: _forecast(2.0)}}
                for p in ("never", "schedule", "alarm")}
    live, scored = replay_tool.live_scores(month, results, published, policies)
    assert scored == 1
    assert live["service"]["mase"] == pytest.approx(1.0)  # |100 - 110| / 10
    assert all(live[p]["mase"] == pytest.approx(0.5) for p in ("never", "schedule", "alarm"))  # KIDNAPPING's 4.0 left out
