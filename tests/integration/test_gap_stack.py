"""`make demo`'s stack over tests/fixtures: the 2001-2018 area x type history and the 2024 export
joined, so Austin ASSAULT's data run through 2024-12 (none 2018-11..2023-12) and its forecast
starts in 2025, over real HTTP as the page reads it."""

from __future__ import annotations

from collections.abc import Iterator
import shutil

import pytest

from crimecast.domain.months import month_range
from crimecast.tools.data import AREA_TYPE_FILE, AREA_TYPE_RECENT_FILES
from local.stack import SNAPSHOT_FILES
from tests.conftest import FIXTURES
from tests.integration.conftest import PASSWORD, Stack, request, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("fixture-snapshot")
    for name in (*SNAPSHOT_FILES, AREA_TYPE_FILE, *AREA_TYPE_RECENT_FILES):
        shutil.copyfile(FIXTURES / name, folder / name)
    with running_stack(folder, {"CRIMECAST_MODEL_CACHE": str(folder / "cache")}, ready_s=420, synthetic=False) as started:
        yield started


def _token(base: str) -> str:
    status, token = request(f"{base}/auth/token", {"grant_type": "password", "username": "admin", "password": PASSWORD})
    assert status == 200
    return token["access_token"]


def test_austin_assault_has_data_through_2024_and_a_2025_forecast(stack) -> None:
    token = _token(stack.base)
    status, answer = request(f"{stack.base}/predict?community_area=Austin&crime_type=ASSAULT&months=12", token=token)
    assert status == 200, answer
    assert answer["data_through"] == "2024-12" and answer["forecast"][0]["month"] == "2025-01"
    assert answer["forecast"][-1]["month"] == "2025-12"
    assert answer["data_gaps"] == [{"from": "2018-11", "to": "2023-12"}]
    assert answer["data_note"] == "data through December 2024; no data 2018-11 to 2023-12"
    months = [r["month"] for r in answer["history"]]
    assert months[-1] == "2024-12" and "2018-10" in months and not set(months) & set(month_range("2018-11", "2023-12"))
    # reconciled with Austin's total, which ends in 2024-12 too, as the share of it the three types hold: not all of it
    level = sum(r["count"] for r in answer["history"][-12:]) / 12
    assert 0.7 * level < sum(r["yhat"] for r in answer["forecast"]) / 12 < 1.3 * level
    assert all(r["yhat_lower"] <= r["yhat"] <= r["yhat_upper"] for r in answer["forecast"])
    assert answer["metrics"]["origins"] and all(o <= "2018-10" for o in answer["metrics"]["origins"])
    status, accuracy = request(f"{stack.base}/evaluate?community_area=25&crime_type=ASSAULT", token=token)
    assert status == 200 and accuracy["data_note"] == answer["data_note"]
    # the area total has no gap: its data run to the snapshot's end
    status, total = request(f"{stack.base}/predict?community_area=25&crime_type=ALL&months=3", token=token)
    assert status == 200 and total["data_gaps"] == [] and total["data_through"] == "2024-12"
