"""The live loop replayed on real data through the local stack, over HTTP.

The stack starts as ``CRIMECAST_AS_OF=2016-12 make demo`` would, its portal stand-in over
the fixture cut of ``area_type_monthly_2001_2018.csv.gz`` (areas 0, 8, 25, 32 x ASSAULT,
BATTERY, THEFT, 2010-01..2018-10: 16 series), the same here and on CI. Each step publishes
the next month; the daily ingest and the monthly retrain run as their EventBridge schedules
start them (``local/replay.py``); the test checks that the champion was scored on the month,
that the drift alarm judged it, saying why in words, and that the scheduled retrain ran.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws.embedded import free_port
from local.replay import Replay, embedded_aws
from tests.conftest import FIXTURES
from tests.integration.conftest import PASSWORD, running_stack

AS_OF = "2016-12"
MAX_STEPS = 3


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    portal_port = free_port()
    env = {"CRIMECAST_AS_OF": AS_OF, "CRIMECAST_DATA_DIR": str(FIXTURES), "CRIMECAST_REPLAY_PORT": str(portal_port),
           "CRIMECAST_BCRYPT_ROUNDS": "4", "CRIMECAST_BCRYPT_MIN_ROUNDS": "4"}
    with running_stack(tmp_path_factory.mktemp("replay"), env, ready_s=300) as stack:
        assert f"shows the city as of the end of {AS_OF}" in stack.log.read_text()
        yield Replay(stack.base, f"http://127.0.0.1:{portal_port}", PASSWORD, aws=embedded_aws(stack.log.read_text()))


def test_the_stack_starts_from_the_portal_as_of_the_month(replay: Replay) -> None:
    ingests = replay.get("/runs?kind=ingest")["runs"]
    assert ingests[-1]["detail"]["mode"] == "backfill"
    stored = ingests[-1]["detail"]["stored"]
    assert (stored["first_month"], stored["last_month"]) == ("2010-01", AS_OF)
    summary = replay.get("/evaluate")["summary"]
    assert summary["series"] == 16


def test_each_month_is_ingested_scored_and_judged_by_the_drift_alarm(replay: Replay) -> None:
    """Calm real months (2017-01..03): each scored, the alarm's decision recorded with its
    evidence in words, no alarm and so no retrain of its own (the alarm's own tests construct
    breaks); the monthly schedule's retrain runs after each, on the month it brought."""
    for month in ["2017-01", "2017-02", "2017-03"][:MAX_STEPS]:
        step = replay.step(retrain_timeout=600)
        assert step["month"] == month and step["stored_last_month"] == month
        assert step["series_evaluated"] == 16
        # scored on the new month: the champion's live accuracy of a series now ends with it
        live = replay.get(f"/evaluate?community_area=Austin&crime_type=ASSAULT&version={step['champion']}")["live"]
        assert live["months"][-1] == month and live["mase"] is not None
        evidence = step["drift"]
        assert evidence["newest_month"] == month and evidence["series_tested"] == 16
        assert step["alarm"] is False and step["alarm_retrain"]["started"] is False, evidence
        assert step["alarm_retrain"]["reason"] == evidence["summary"] == \
            "No series moved beyond its band more than chance allows (16 series tested)."
        assert [r["trigger"] for r in step["retrains"]] == ["schedule"] and step["retrains"][0]["status"] == "succeeded"
        ingest = replay.get(f"/runs/{step['ingest_run']}")
        assert ingest["detail"]["trigger"] == "schedule"  # the Daily schedule's event, as EventBridge sends it
