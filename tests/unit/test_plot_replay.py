"""``bench/plot_replay.py``: a replay result drawn as a chart, and its targets as a table whose
every number links to the place in the result file that holds it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import bench_module

LINK = re.compile(r"\[(?P<text>[^\]]+)\]\(\.\./bench/results/replay_x\.json#(?P<path>[^)]+)\)")


@pytest.fixture(scope="module")
def tool() -> Any:
    return bench_module("plot_replay")


def _month(month: str, alarm: bool, service: float, promoted: str | None) -> dict[str, Any]:
    live = {"service": service, "never": 1.4, "schedule": 0.7, "alarm": 0.9}
    return {"month": month, "alarm": alarm, "promoted": promoted,
            "live": {p: {"mase": m, "coverage": 0.8} for p, m in live.items()}}


def _result() -> dict[str, Any]:
    months = [_month("2020-01", False, 0.6, "v1"), _month("2020-02", False, 0.65, None), _month("2020-03", True, 1.3, "v3")]
    summary = {
        "months": 3, "from": "2020-01", "to": "2020-03", "alarm_months": ["2020-03"], "alarm_share": 0.333,
        "calm_alarms": 0, "calm_months": 2, "first_alarm_from_covid": "2020-03",
        "retrains": {"schedule": 3, "alarm": 1}, "promotions": 2,
        "live_mase": {"service": 0.85, "schedule": 0.7}, "live_mase_12_months_after": {"covid": {"service": 1.3, "schedule": 0.7}},
        "targets": {"alarm_in_at_most_a_quarter_of_months": False, "at_most_1_alarm_in_the_calm_months": None,
                    "first_alarm_by_2020_04": True, "service_not_worse_than_schedule": False,
                    "service_not_worse_than_schedule_12_months_after": {"covid": False}},
    }
    return {"benchmark": "replay_x", "figures": {"series": 5, "stack_s": 1500.4, "policies_s": 200.0,
                                                 "summary": summary, "months": months}}


def test_the_chart_is_drawn_to_the_file_named(tool, tmp_path) -> None:
    out = tool.draw(_result(), tmp_path / "img" / "replay_x.svg")
    assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()


def test_every_figure_of_the_table_is_its_value_in_the_file(tool) -> None:
    result = _result()
    table = tool.markdown(result, "replay_x")
    links = LINK.findall(table)
    assert len(links) == 11  # the calm months' row is left out: this replay has none of them
    for text, path in links:
        value: Any = result["figures"]
        for key in path.split("/"):
            value = value[key]
        written = re.sub(r"[^\d.]", "", text)
        decimals = len(written.partition(".")[2])
        expected = value * 100 if text.endswith("%") else value
        assert abs(float(written) - expected) <= 0.5 * 10 ** -decimals, (text, path)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()}
    assert rows["alarm in at most a quarter of the months"].endswith("**not met** |")
    assert rows["first alarm by the evaluation of 2020-04"].endswith("| met |")
    assert rows["within 30 minutes on this 2-core machine"].endswith("| met |")  # 1,700 s
    assert "at most 1 alarm in the 14 calm months 2019-01..2020-02" not in rows


def test_a_replay_with_its_own_limits_is_held_to_them(tool, monkeypatch) -> None:
    """The whole-city replay: at most 2 alarm months and 2 hours, its months before every break."""
    result = _result()
    result["figures"]["summary"].update(live_mase_12_months_after={}, first_alarm_from_covid=None)
    result["figures"]["summary"]["targets"].update(first_alarm_by_2020_04=None, service_not_worse_than_schedule_12_months_after={})
    monkeypatch.setitem(tool.LIMITS, "replay_x", {"minutes": 120, "alarms": 2})
    rows = {line.split(" | ")[0].lstrip("| "): line for line in tool.markdown(result, "replay_x").splitlines()}
    assert rows["at most 2 alarm months"].startswith("| at most 2 alarm months | 1 (2020-03) of [3]")
    assert rows["at most 2 alarm months"].endswith("| met |")
    assert rows["within 120 minutes on this 2-core machine"].endswith("| met |")
    assert not any("2020-04" in r or "break" in r for r in rows)
