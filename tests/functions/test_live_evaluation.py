"""Live accuracy after new months arrive, and the automatic retrain in both directions."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from crimecast.domain.series import counts_from_tidy
from crimecast.jobs import forecasts, retrain
from crimecast.jobs.counts import store_counts
from tests.conftest import seasonal_series, tidy_frame
from tests.functions.conftest import body, invoke, load_event

PAST = date(2030, 1, 1)
AREAS = {25: 80, 8: 300, 24: 150, 32: 120, 6: 220, 28: 60, 43: 180, 71: 90}  # enough series that one noisy one is not a fifth


def _counts(months: int, degrade: bool = False):
    frames = []
    for area, level in AREAS.items():
        frame = tidy_frame(seasonal_series("2018-01", months, level=level, seed=area), area, "THEFT")
        if degrade:
            frame.loc[frame.index[72:], "count"] *= 3  # a sudden tripling after the champion was trained
        frames.append(frame)
    return counts_from_tidy(pd.concat(frames, ignore_index=True), as_of=PAST)


@pytest.fixture
def champion(aws):
    store_counts(aws, _counts(72))
    summary = retrain.run_locally(aws, workers=1)
    assert summary["promoted"]
    return summary["version"]


def _post_evaluate() -> dict:
    event = load_event("retrain-api")
    event.update(path="/evaluate", resource="/evaluate")
    response = invoke("evaluate", event)
    assert response["statusCode"] == 200, response["body"]
    return body(response)


def test_healthy_months_do_not_trigger_a_retrain(aws, champion) -> None:
    store_counts(aws, _counts(78))
    run = _post_evaluate()
    assert run["kind"] == "evaluate" and run["status"] == "succeeded"
    assert run["detail"]["series_evaluated"] >= 3 and run["detail"]["retrain"]["started"] is False
    live = forecasts.accuracy(aws, "Austin", "THEFT")["live"]
    assert live["months"] == [f"2024-0{m}" for m in range(1, 7)] and live["mae"] > 0


def test_degraded_months_trigger_a_retrain_and_say_why(aws, champion) -> None:
    store_counts(aws, _counts(78, degrade=True))
    run = _post_evaluate()
    retrain_info = run["detail"]["retrain"]
    assert run["detail"]["alarm"] is True and run["detail"]["drift"]["series_moved"] == len(AREAS) + 1  # and the city
    assert retrain_info["started"] is True
    assert retrain_info["reason"] == ("drift alarm: THEFT in 8 of 8 areas rose above their bands for 3 months running; "
                                      "THEFT citywide rose above its band for 3 months running (9 of 9 series moved).")
    for moved in run["detail"]["drift"]["moved"]:
        assert moved["direction"] == "above" and moved["months"][-1] == "2024-06" and moved["mean_z"] > 3
    status = body(invoke("evaluate", {**load_event("evaluate-run"), "path": f"/runs/{retrain_info['run_id']}",
                                      "pathParameters": {"run_id": retrain_info["run_id"]}}))
    assert status["kind"] == "retrain" and status["detail"]["trigger"] == "evaluate"


def test_nothing_to_score_before_new_months_arrive(aws, champion) -> None:
    run = _post_evaluate()
    assert run["detail"]["series_evaluated"] == 0 and run["detail"]["retrain"]["reason"] == "no months to score yet"


def test_a_viewer_cannot_start_an_evaluation(aws, champion) -> None:
    event = load_event("retrain-api")
    event.update(path="/evaluate", resource="/evaluate")
    event["requestContext"]["authorizer"] = {"principalId": "v", "username": "v", "roles": "viewer"}
    assert invoke("evaluate", event)["statusCode"] == 403


def test_metrics_stay_queryable_by_version(aws, champion) -> None:
    assert forecasts.accuracy(aws, version=champion)["model_version"] == champion
    event = load_event("evaluate-summary")
    event["queryStringParameters"] = {"version": "v19990101T000000Z"}
    assert invoke("evaluate", event)["statusCode"] == 404
