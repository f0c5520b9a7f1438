"""Every sample event in events/ (the ones `sam local invoke -e` takes) through its handler."""

from __future__ import annotations

import pytest

from tests.functions.conftest import EVENTS, body, invoke, load_event

API_EVENTS = sorted(p.stem for p in EVENTS.glob("*.json") if load_event(p.stem).get("httpMethod"))


@pytest.mark.parametrize("name", API_EVENTS)
def test_every_api_event_gets_a_json_answer_and_never_a_5xx(aws, name: str) -> None:
    response = invoke(name.split("-")[0], load_event(name))
    assert response["statusCode"] < 500, response["body"]
    if response["multiValueHeaders"]["Content-Type"] == ["text/html"]:  # Swagger UI, at /docs
        assert response["body"].lstrip().lower().startswith("<!doctype html>")
    else:
        assert isinstance(body(response), dict | list)


@pytest.mark.parametrize("name", ["ingest-schedule", "retrain-schedule"])
def test_schedule_events_start_runs(aws, name: str) -> None:
    run = invoke(name.split("-")[0], load_event(name))
    assert run["kind"] == name.split("-")[0] and run["detail"]["trigger"] == "schedule"


def test_every_function_has_events() -> None:
    functions = {p.stem.split("-")[0] for p in EVENTS.glob("*.json")}
    assert functions >= {"auth", "predict", "evaluate", "ingest", "retrain"}
