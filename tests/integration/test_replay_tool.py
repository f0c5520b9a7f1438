"""``bench/replay.py``, the service replayed month by month as deployed, on a file it has never
seen: the fixture's area totals (8, 25, 32) and citywide types whose names no code knows,
from 2021-12, two months. Each month goes through the real stack (the portal publishes it, the
daily and monthly schedules fire as EventBridge fires them) and is compared with the three
fixed policies on the same months and series."""

from __future__ import annotations

import json
from pathlib import Path
import sys

import pytest

from tests.conftest import FIXTURES, bench_module
from tests.ingest.test_replay_portal import _totals_with_new_type_names

AS_OF, STEPS = "2021-12", 2


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("replay-tool")
    tool = bench_module("replay")
    results = sys.modules["results"]  # bench/results.py, as the tool imported it
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "RESULTS", folder)  # not into the checkout's bench/results
        for name, value in (("CRIMECAST_BCRYPT_ROUNDS", "4"), ("CRIMECAST_BCRYPT_MIN_ROUNDS", "4")):
            patch.setenv(name, value)
        args = [arg for path in _totals_with_new_type_names(folder) for arg in ("--data", str(path))]
        assert tool.main([*args, "--data-dir", str(FIXTURES), "--as-of", AS_OF, "--steps", str(STEPS),
                          "--workers", "1", "--name", "replay_test"]) == 0
    return json.loads(Path(folder / "replay_test.json").read_text())["figures"]


def test_every_month_is_recorded_as_the_service_ran_it(result: dict) -> None:
    assert result["cross_tabulation_made_up"] is True and result["series"] == result["series_trained_at_start"] == 6
    assert "city:TIME-TRAVEL FRAUD" in result["series_labels"] and "city:MOONLIGHT MISCHIEF" in result["series_labels"]
    months = result["months"]
    assert [m["month"] for m in months] == ["2022-01", "2022-02"]
    for month in months:
        assert isinstance(month["alarm"], bool) and month["evidence"]["newest_month"] == month["month"]
        assert month["evidence"]["series_tested"] == 6 and month["evidence"]["summary"]
        # after an alarm's retrain the schedule's has nothing new to train: recorded, skipped
        assert month["retrains"] == (["alarm"] if month["alarm"] else ["schedule"])
        assert month["skipped_retrains"] == (["schedule"] if month["alarm"] else [])
        trained = month["retrain_runs"][0]
        assert trained["status"] == "succeeded" and trained["series_planned"] == 6 and not trained["skipped"]
        assert month["promoted"] == (trained["version"] if trained["promotion"]["promoted"] else None)
        assert month["series_evaluated"] == 6 and month["step_s"] > 0


def test_the_service_is_compared_with_the_three_policies_on_the_same_months(result: dict) -> None:
    for month in result["months"]:
        assert set(month["live"]) == {"service", "never", "schedule", "alarm", "schedule_unreconciled"}
        assert all(month["live"][p]["mase"] is not None for p in month["live"])
    first = result["months"][0]["live"]  # before any retrain every fixed policy serves the same model
    assert first["never"] == first["schedule"] == first["alarm"]
    # ... and the service too, in every month its champion is the monthly schedule's model: the same
    # model on the same months, reconciled the same way, rounded to the cent once
    for before, month in zip([None, *result["months"]], result["months"]):
        if before is None or before["promoted"]:
            assert month["live"]["service"] == month["live"]["schedule"], month["month"]
    summary = result["summary"]
    mean = sum(m["live"]["service"]["mase"] for m in result["months"]) / STEPS
    assert summary["live_mase"]["service"] == pytest.approx(mean, abs=1e-4)
    alarms = sum(m["alarm"] for m in result["months"])
    assert summary["retrains"]["schedule"] == STEPS - alarms and summary["retrains"]["alarm"] == alarms
    targets = summary["targets"]
    assert targets["service_not_worse_than_schedule"] == (summary["live_mase"]["service"] <= summary["live_mase"]["schedule"])
    assert targets["at_most_1_alarm_in_the_calm_months"] is None and targets["first_alarm_by_2020_04"] is None  # not covered
